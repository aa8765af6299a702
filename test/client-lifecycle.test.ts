// The client's process loops against stock openvpn 2.6 servers, observed as OpenVPN behaves:
// the server dies and comes back (ping-restart, then reconnect by itself), the server restarts
// with explicit-exit-notify (RESTART message), the first remote is down (server poll timeout,
// then the second remote), SIGUSR1 (reconnect; persist-tun keeps the device), SIGHUP with a
// changed config, SIGUSR2 statistics, and AUTH_FAILED.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, test } from 'node:test';

import {
  BIN,
  clientConfig,
  count,
  links,
  routes,
  serverConfig,
  sleep,
  startOurClient,
  exitCode,
  startStockServer,
  waitCount,
} from './helpers/client-lab';
import { SERVER_UNDERLAY, VpnLab } from '../lab/vpn-lab';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

const INIT = /Initialization Sequence Completed/g;

test(
  'the server is killed and started again: the client notices (ping-restart) and reconnects by itself',
  { timeout: 60_000 },
  async () => {
    const config = serverConfig(lab, { extra: 'keepalive 1 4\n' });
    let server = await startStockServer(lab, config);
    const client = startOurClient(lab, 0, clientConfig(lab));
    let clientCode: number | null;
    try {
      await client.waitFor(INIT, 15_000);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);
      await server.stop('SIGKILL');
      await client.waitFor(/SIGUSR1\[soft,ping-restart\] received, process restarting/, 10_000);
      assert.match(client.log(), /Inactivity timeout \(--ping-restart\), restarting/);
      server = await startStockServer(lab, config);
      await waitCount(client, INIT, 2, 20_000);
      // After a completed connection the same remote is tried again, after connect-retry.
      assert.match(client.log(), /Restart pause, 1 second\(s\)/);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);
      assert.match(routes(lab, 0), /10\.160\.0\.0\/24 via 10\.152\.0\.1/);
    } finally {
      // Both always stopped, the client's code checked after: a throw here would leave the server on its port.
      clientCode = await client.stop();
      await server.stop();
    }
    assert.equal(clientCode, 0, client.log().slice(-3000));
  },
);

test('the server restarts with explicit-exit-notify: RESTART makes the client reconnect at once', { timeout: 60_000 }, async () => {
  const config = serverConfig(lab, { extra: 'explicit-exit-notify 1\n' });
  let server = await startStockServer(lab, config);
  const client = startOurClient(lab, 0, clientConfig(lab));
  let clientCode: number | null;
  try {
    await client.waitFor(INIT, 15_000);
    await server.stop('SIGTERM');
    await client.waitFor(/SIGUSR1\[soft,server-pushed-connection-reset\] received, process restarting/, 5000);
    assert.match(client.log(), /RESTART.* received from server/);
    server = await startStockServer(lab, config);
    await waitCount(client, INIT, 2, 20_000);
    assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);
  } finally {
    // Both always stopped, the client's code checked after: a throw here would leave the server on its port.
    clientCode = await client.stop();
    await server.stop();
  }
  assert.equal(clientCode, 0, client.log().slice(-3000));
});

test('remap-usr1 SIGTERM: the RESTART that would restart the client ends it instead', { timeout: 60_000 }, async () => {
  const server = await startStockServer(lab, serverConfig(lab, { extra: 'explicit-exit-notify 1\n' }));
  const client = startOurClient(lab, 0, clientConfig(lab, { extra: 'remap-usr1 SIGTERM\n' }));
  let clientCode: number | null = null;
  try {
    await client.waitFor(INIT, 15_000);
    await server.stop('SIGTERM');
    await client.waitFor(/SIGTERM\[soft,server-pushed-connection-reset\] received, process exiting/, 5000);
    clientCode = await exitCode(client);
  } finally {
    if (clientCode === null) clientCode = await client.stop();
    await server.stop();
  }
  assert.equal(clientCode, 0, client.log().slice(-3000));
  assert.doesNotMatch(client.log(), /process restarting/);
});

test(
  'session-timeout: the client exits 0 that long after it started, busy or not; a pushed one ends it too',
  { timeout: 60_000 },
  async () => {
    const server = await startStockServer(lab, serverConfig(lab, { extra: 'keepalive 1 10\n' }));
    try {
      const own = startOurClient(lab, 0, clientConfig(lab, { extra: 'session-timeout 5\n' }));
      let ownCode: number | null = null;
      try {
        await own.waitFor(INIT, 15_000);
        assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 10), 10);
        await own.waitFor(/Session timeout, exiting/, 10_000);
        ownCode = await exitCode(own);
      } finally {
        if (ownCode === null) ownCode = await own.stop();
      }
      assert.equal(ownCode, 0, own.log().slice(-3000));
      assert.match(own.log(), /SIGTERM\[soft,session-timeout\] received, process exiting/);
    } finally {
      await server.stop();
    }
    const pushing = await startStockServer(lab, serverConfig(lab, { extra: 'push "session-timeout 3"\n' }));
    const pushed = startOurClient(lab, 0, clientConfig(lab));
    let pushedCode: number | null = null;
    try {
      await pushed.waitFor(INIT, 15_000);
      await pushed.waitFor(/Session timeout, exiting/, 10_000);
      pushedCode = await exitCode(pushed);
    } finally {
      if (pushedCode === null) pushedCode = await pushed.stop();
      await pushing.stop();
    }
    assert.equal(pushedCode, 0, pushed.log().slice(-3000));
  },
);

test('first remote down, second up: server poll timeout, then the next remote connects', { timeout: 60_000 }, async () => {
  const server = await startStockServer(lab, serverConfig(lab, { port: 1196 }));
  const client = startOurClient(
    lab,
    0,
    clientConfig(lab, {
      remotes: [
        { host: SERVER_UNDERLAY, port: 1195 },
        { host: SERVER_UNDERLAY, port: 1196 },
      ],
      extra: 'server-poll-timeout 2\n',
    }),
  );
  let clientCode: number | null;
  try {
    await client.waitFor(INIT, 20_000);
    const log = client.log();
    assert.ok(log.indexOf('link remote: [AF_INET]10.150.0.1:1195') < log.indexOf('link remote: [AF_INET]10.150.0.1:1196'), log);
    assert.match(log, /Server poll timeout, restarting/);
    assert.match(log, /Peer Connection Initiated with \[AF_INET\]10\.150\.0\.1:1196/);
    assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);
  } finally {
    // Both always stopped, the client's code checked after: a throw here would leave the server on its port.
    clientCode = await client.stop();
    await server.stop();
  }
  assert.equal(clientCode, 0, client.log().slice(-3000));
});

test('connect-retry-max: with every remote down the client gives up and exits 1', { timeout: 30_000 }, async () => {
  const client = startOurClient(
    lab,
    0,
    clientConfig(lab, {
      remotes: [
        { host: SERVER_UNDERLAY, port: 1197 },
        { host: SERVER_UNDERLAY, port: 1198 },
      ],
      extra: 'server-poll-timeout 1\nconnect-retry-max 1\n',
    }),
  );
  const code = await new Promise<number | null>((resolve) => client.child.once('exit', resolve));
  assert.equal(code, 1, client.log());
  assert.match(client.log(), /All connections have been connect-retry-max \(1\) times unsuccessful, exiting/);
  assert.equal(count(client.log(), /link remote:/g), 2);
});

test(
  'SIGUSR1 reconnects (persist-tun keeps the device), SIGUSR2 logs statistics, SIGHUP re-reads a changed config',
  { timeout: 60_000 },
  async () => {
    const server = await startStockServer(lab, serverConfig(lab, { extra: 'data-ciphers AES-256-GCM:AES-128-GCM\n' }));
    const file = 'sighup-client.conf';
    const client = startOurClient(lab, 0, clientConfig(lab, { extra: 'persist-tun\ndata-ciphers AES-256-GCM\n' }), file);
    let clientCode: number | null;
    try {
      await client.waitFor(INIT, 15_000);
      const dev = /TUN\/TAP device (tun\d+) opened/.exec(client.log())![1]!;

      process.kill(client.child.pid!, 'SIGUSR2');
      await client.waitFor(/OpenVPN STATISTICS[\s\S]*TCP\/UDP read bytes,\d+[\s\S]*END/, 5000);

      process.kill(client.child.pid!, 'SIGUSR1');
      await waitCount(client, INIT, 2, 15_000);
      assert.match(client.log(), /SIGUSR1\[hard,\] received, process restarting/);
      assert.match(client.log(), new RegExp(`Preserving previous TUN/TAP instance: ${dev}`));
      assert.equal(count(client.log(), /TUN\/TAP device tun\d+ opened/g), 1);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);

      // SIGHUP: the edited config (another cipher, no persist-tun) takes effect.
      writeFileSync(`${lab.dir}/${file}`, clientConfig(lab, { extra: 'data-ciphers AES-128-GCM\n' }));
      process.kill(client.child.pid!, 'SIGHUP');
      await waitCount(client, INIT, 3, 15_000);
      assert.match(client.log(), /SIGHUP\[hard,\] received, process restarting/);
      assert.match(client.log(), /Data Channel: cipher 'AES-128-GCM'/);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);
    } finally {
      clientCode = await client.stop();
      await server.stop();
    }
    assert.equal(clientCode, 0, client.log().slice(-3000));
    assert.doesNotMatch(links(lab, 0), /tun\d+/);
  },
);

test(
  'persist-tun, but the server pushes another network after SIGUSR1: the kept device goes with route-pre-down and down, and a new one comes up',
  { timeout: 60_000 },
  async () => {
    const log = `${lab.dir}/pulled-changed.log`;
    const script = lab.file(
      'pulled-changed.sh',
      `#!/bin/sh\necho "$script_type signal=$signal route_network_1=$route_network_1" >> ${log}\n`,
    );
    chmodSync(script, 0o755);
    rmSync(log, { force: true });
    const scripts = `script-security 2\nup ${script}\ndown ${script}\nroute-pre-down ${script}\npersist-tun\n`;
    let server = await startStockServer(lab, serverConfig(lab));
    const client = startOurClient(lab, 0, clientConfig(lab, { extra: scripts }));
    try {
      await client.waitFor(INIT, 15_000);
      await server.stop();
      server = await startStockServer(lab, serverConfig(lab).replace('push "route 10.160.0.0', 'push "route 10.161.0.0'));
      process.kill(client.child.pid!, 'SIGUSR1');
      await waitCount(client, INIT, 2, 20_000);
      assert.match(client.log(), /Pulled options changed on restart, will need to close and reopen TUN\/TAP device/);
      assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), [
        'up signal= route_network_1=10.160.0.0',
        'route-pre-down signal=sigusr1 route_network_1=10.160.0.0',
        'down signal=sigusr1 route_network_1=10.160.0.0',
        'up signal= route_network_1=10.161.0.0',
      ]);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);
    } finally {
      await client.stop();
      await server.stop();
    }
  },
);

test('auth-user-pass: accepted credentials connect; AUTH_FAILED makes the client exit', { timeout: 60_000 }, async () => {
  const verify = lab.file('verify.sh', '#!/bin/sh\n[ "$(sed -n 1p "$1")" = alice ] && [ "$(sed -n 2p "$1")" = s3cret ]\n');
  chmodSync(verify, 0o755);
  const server = await startStockServer(lab, serverConfig(lab, { extra: `script-security 2\nauth-user-pass-verify ${verify} via-file\n` }));
  const good = lab.file('good.pass', 'alice\ns3cret\n');
  const bad = lab.file('bad.pass', 'alice\nwrong\n');
  try {
    const ok = startOurClient(lab, 0, clientConfig(lab, { extra: `auth-user-pass ${good}\n` }));
    let okCode: number | null = null;
    try {
      await ok.waitFor(INIT, 15_000);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);
    } finally {
      okCode = await ok.stop();
    }
    assert.equal(okCode, 0, ok.log().slice(-3000));
    const refused = startOurClient(lab, 0, clientConfig(lab, { extra: `auth-user-pass ${bad}\n` }));
    const code = await new Promise<number | null>((resolve) => refused.child.once('exit', resolve));
    assert.equal(code, 0, refused.log().slice(-3000));
    assert.match(refused.log(), /AUTH: Received control message: AUTH_FAILED/);
    assert.match(refused.log(), /SIGTERM\[soft,auth-failure\] received, process exiting/);
    assert.doesNotMatch(refused.log(), INIT);
  } finally {
    await server.stop();
  }
});

/** One management command on a unix socket; resolves with what came back. */
function management(path: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const socket = net.createConnection(path, () => socket.write(`${command}\r\n`));
    socket.on('data', (d: Buffer) => {
      out += d.toString();
      if (/SUCCESS|ERROR/.test(out)) {
        socket.end();
        resolve(out);
      }
    });
    socket.on('error', reject);
  });
}

test(
  'HALT from the server (management client-kill) makes the client exit; renegotiation keeps the tunnel',
  { timeout: 40_000 },
  async () => {
    const sock = `${lab.dir}/mgmt.sock`;
    const server = await startStockServer(lab, serverConfig(lab, { extra: `management ${sock} unix\nreneg-sec 3\n` }));
    const client = startOurClient(lab, 0, clientConfig(lab));
    try {
      await client.waitFor(INIT, 15_000);
      // The server renegotiates after 3 s (2.7..3 s with its jitter): key_id 1, data goes on.
      await server.waitFor(/client\/10\.150\.0\.10:\d+ .*TLS: soft reset/, 10_000);
      await sleep(1000);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 3), 3);
      assert.match(client.log(), /TLS: soft reset, key_id 1 \(peer\)/);
      // Listen for the exit before asking for it: the client may be gone before the answer arrives.
      const exited = exitCode(client);
      const answer = await management(sock, 'client-kill 0 HALT');
      assert.match(answer, /SUCCESS/);
      const code = await exited;
      assert.equal(code, 0, client.log().slice(-3000));
      assert.match(client.log(), /HALT.* received from server/);
      assert.match(client.log(), /SIGTERM\[soft,server-pushed-halt\] received, process exiting/);
      assert.doesNotMatch(links(lab, 0), /tun\d+/);
    } finally {
      await client.stop();
      await server.stop();
    }
  },
);

test('auth-user-pass without a file asks on the terminal (password without echo)', { timeout: 40_000 }, async () => {
  const verify = lab.file('verify-tty.sh', '#!/bin/sh\n[ "$(sed -n 1p "$1")" = carol ] && [ "$(sed -n 2p "$1")" = hunter2 ]\n');
  chmodSync(verify, 0o755);
  const server = await startStockServer(lab, serverConfig(lab, { extra: `script-security 2\nauth-user-pass-verify ${verify} via-file\n` }));
  const file = lab.file('tty-client.conf', clientConfig(lab, { extra: 'auth-user-pass\n' }));
  // util-linux `script` gives the client a pseudo-terminal; what we write to its stdin is typed there.
  const term = lab.spawn(
    lab.clients[0]!,
    'script',
    ['-qfec', `exec ${process.execPath} ${BIN} --config ${file}`, '/dev/null'],
    'client on a terminal',
  );
  let clientPid: number | null;
  try {
    await term.waitFor(/Enter Auth Username:/, 10_000);
    term.child.stdin!.write('carol\n');
    await term.waitFor(/Enter Auth Password:/, 5000);
    term.child.stdin!.write('hunter2\n');
    await term.waitFor(INIT, 15_000);
    assert.doesNotMatch(term.log(), /hunter2/, 'the password is not echoed');
    assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);
  } finally {
    try {
      // SIGTERM the client itself (the child of `script`), then `script` ends with it. Either may
      // have exited already: then there is no /proc entry or no child to signal.
      let children: string[] = [];
      try {
        children = readFileSync(`/proc/${term.child.pid}/task/${term.child.pid}/children`, 'utf8')
          .trim()
          .split(/\s+/)
          .filter((p) => p !== '');
      } catch {
        // `script` has exited
      }
      clientPid = children.length > 0 ? Number(children[0]) : null;
      if (clientPid !== null) {
        try {
          process.kill(clientPid, 'SIGTERM');
        } catch {
          // exited between the read and the signal
        }
      }
      // `script` ends when the client has gone; SIGTERM it only if it has not within 8 s.
      const ended = await term.waitFor(/SIGTERM\[hard,\] received[\s\S]*Closing TUN/, 8000).then(
        () => true,
        () => false,
      );
      if (!ended || !term.exited()) await term.stop('SIGTERM', 8000);
    } finally {
      await server.stop();
    }
  }
  assert.ok(clientPid !== null);
  assert.match(term.log(), /SIGTERM\[hard,\] received, process exiting/);
});

test(
  'host names: an unresolvable first remote is skipped (init_instance), the second resolves and connects',
  { timeout: 40_000 },
  async () => {
    // `ip netns exec` mounts /etc/netns/NAME/* over /etc: a hosts file and resolv.conf for this namespace only.
    const etc = `/etc/netns/${lab.clients[0]!.name}`;
    mkdirSync(etc, { recursive: true });
    writeFileSync(`${etc}/hosts`, '127.0.0.1 localhost\n10.150.0.1 vpn.shardvpn.test\n');
    writeFileSync(`${etc}/resolv.conf`, 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
    const server = await startStockServer(lab, serverConfig(lab));
    const client = startOurClient(
      lab,
      0,
      clientConfig(lab, {
        remotes: [
          { host: 'no-such-host.invalid', port: 1194 },
          { host: 'vpn.shardvpn.test', port: 1194 },
        ],
      }),
    );
    let clientCode: number | null;
    try {
      await client.waitFor(INIT, 20_000);
      assert.match(client.log(), /RESOLVE: Cannot resolve host address: no-such-host\.invalid:1194/);
      assert.match(client.log(), /SIGUSR1\[soft,init_instance\] received, process restarting/);
      assert.match(client.log(), /Peer Connection Initiated with \[AF_INET\]10\.150\.0\.1:1194/);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);
    } finally {
      clientCode = await client.stop();
      await server.stop();
      rmSync(etc, { recursive: true, force: true });
      try {
        rmdirSync('/etc/netns'); // only when no one else has a namespace folder there
      } catch {
        // not empty, or gone
      }
    }
    assert.equal(clientCode, 0, client.log().slice(-3000));
  },
);

test(
  'a name with two addresses: the first does not answer (server poll timeout), the second connects without a new lookup',
  { timeout: 40_000 },
  async () => {
    const etc = `/etc/netns/${lab.clients[0]!.name}`;
    mkdirSync(etc, { recursive: true });
    // 10.150.0.11 is on the lab's link but nobody has it. The resolver puts it first (it shares
    // the longer prefix with the client's 10.150.0.10, RFC 6724 rule 9).
    writeFileSync(`${etc}/hosts`, '127.0.0.1 localhost\n10.150.0.11 dual.shardvpn.test\n10.150.0.1 dual.shardvpn.test\n');
    const server = await startStockServer(lab, serverConfig(lab));
    const client = startOurClient(
      lab,
      0,
      clientConfig(lab, { remotes: [{ host: 'dual.shardvpn.test', port: 1194 }], extra: 'server-poll-timeout 2\n' }),
    );
    let clientCode: number | null;
    try {
      await client.waitFor(INIT, 25_000);
      const log = client.log();
      assert.match(log, /\[AF_INET\]10\.150\.0\.11:1194/, 'the first address was tried');
      assert.match(log, /TCP\/UDP: Preserving recently used remote address: \[AF_INET\]10\.150\.0\.1:1194/);
      assert.match(log, /Peer Connection Initiated with \[AF_INET\]10\.150\.0\.1:1194/);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);
    } finally {
      clientCode = await client.stop();
      await server.stop();
      rmSync(etc, { recursive: true, force: true });
      try {
        rmdirSync('/etc/netns');
      } catch {
        // not empty, or gone
      }
    }
    assert.equal(clientCode, 0, client.log().slice(-3000));
  },
);

test('inactive 3: no exit while the tunnel carries traffic, then exit 0 after 3 s without any', { timeout: 40_000 }, async () => {
  const server = await startStockServer(lab, serverConfig(lab, { extra: 'keepalive 1 10\n' }));
  const client = startOurClient(lab, 0, clientConfig(lab, { extra: 'inactive 3\n' }));
  let clientCode: number | null = null;
  try {
    await client.waitFor(INIT, 15_000);
    // 25 pings over 5 s: longer than the timeout, but the tunnel is busy throughout.
    assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 25), 25);
    assert.equal(client.exited(), false, client.log().slice(-2000));
    // Keepalive pings keep flowing on the link; they are not tunnel traffic.
    await client.waitFor(/Inactivity timeout \(--inactive\), exiting/, 10_000);
    clientCode = await exitCode(client);
  } finally {
    if (clientCode === null) clientCode = await client.stop();
    await server.stop();
  }
  assert.equal(clientCode, 0, client.log().slice(-3000));
});

test('route-nopull keeps the pushed address but not the routes; pull-filter reject refuses the push', { timeout: 40_000 }, async () => {
  const server = await startStockServer(lab, serverConfig(lab));
  try {
    const nopull = startOurClient(lab, 0, clientConfig(lab, { extra: 'route-nopull\n' }));
    let nopullCode: number | null = null;
    try {
      await nopull.waitFor(INIT, 15_000);
      const table = routes(lab, 0);
      assert.match(table, /10\.152\.0\.0\/24 dev tun\d+/);
      assert.doesNotMatch(table, /10\.160\.0\.0/);
    } finally {
      nopullCode = await nopull.stop();
    }
    assert.equal(nopullCode, 0, nopull.log().slice(-3000));
    const rejecting = startOurClient(lab, 0, clientConfig(lab, { extra: 'pull-filter reject "route 10.160"\n' }));
    let rejectingCode: number | null = null;
    try {
      await rejecting.waitFor(/SIGUSR1\[soft,Offending option received from server\] received, process restarting/, 15_000);
      assert.match(rejecting.log(), /Pushed option rejected by filter: 'route 10\.160\.0\.0 255\.255\.255\.0'\. Restarting\./);
      assert.doesNotMatch(rejecting.log(), INIT);
    } finally {
      rejectingCode = await rejecting.stop();
    }
    assert.equal(rejectingCode, 0, rejecting.log().slice(-3000));
  } finally {
    await server.stop();
  }
});
