// `user` / `group`: the server drops root once the TUN device and the sockets are open, and the
// tunnel keeps working as nobody; with persist-key (and persist-tun) it also restarts as nobody.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { BIN, SERVER_UNDERLAY, VpnLab } from '../lab/vpn-lab';
import { checkoutReadableByOthers, unreadableByNobody } from './helpers/checkout-access';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

function ids(pid: number): { uid: number; gid: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { uid: Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]), gid: Number(/^Gid:\s+(\d+)/m.exec(status)?.[1]) };
}

test('user nobody / group nogroup: privileges dropped after start, clients still served', async () => {
  const server = await lab.startShardvpn(
    `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.151.0.0 255.255.255.0\nkeepalive 10 60\npersist-tun\nuser nobody\ngroup nogroup\n${lab.serverTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`,
  );
  const client = await lab.startOpenvpnClient(
    0,
    `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\n${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`,
  );
  try {
    assert.match(server.log(), /UID set to nobody/);
    // The drop says so when nobody could not load a restarted shard's code from this checkout.
    const unreadable = unreadableByNobody();
    if (unreadable === null) assert.doesNotMatch(server.log(), /WARNING: nobody cannot read/);
    else if (unreadable.endsWith('shard-worker.js'))
      assert.match(server.log(), /WARNING: nobody cannot read .*shard-worker\.js: a restart or a restarted shard will fail/);
    const { uid, gid } = ids(server.child.pid!);
    assert.notEqual(uid, 0, 'the server no longer runs as root');
    assert.notEqual(gid, 0);
    assert.equal(lab.ping(lab.clients[0]!, '10.151.0.1'), 3);
    assert.equal(lab.ping(lab.server, '10.151.0.2'), 3);
  } finally {
    await client.stop();
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
});

test('user nobody: the status and ifconfig-pool-persist files in a directory only root may write stay current', async () => {
  // As installers set it up: /var/log/openvpn or /etc/openvpn, root's, mode 0755.
  const logDir = path.join(lab.dir, 'log');
  mkdirSync(logDir, { mode: 0o755 });
  const status = path.join(logDir, 'openvpn-status.log');
  const ipp = path.join(logDir, 'ipp.txt');
  const server = await lab.startShardvpn(
    `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.151.0.0 255.255.255.0\nkeepalive 10 60\nuser nobody\ngroup nogroup\n` +
      `status ${status} 1\nifconfig-pool-persist ${ipp} 1\n${lab.serverTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`,
  );
  try {
    assert.match(server.log(), /UID set to nobody/);
    const client = await lab.startOpenvpnClient(
      0,
      `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\n${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`,
    );
    try {
      // Both are rewritten each second by a process that is nobody now: the client shows in each.
      const deadline = Date.now() + 8000;
      const text = (file: string): string => (existsSync(file) ? readFileSync(file, 'utf8') : '(missing)');
      const current = (): boolean => /^client,10\.150\.0\.10:\d+,/m.test(text(status)) && /^client,10\.151\.0\.2(,|$)/m.test(text(ipp));
      while (!current()) {
        assert.ok(Date.now() < deadline, `status:\n${text(status)}\nipp.txt:\n${text(ipp)}\nserver:\n${server.log().slice(-1500)}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.doesNotMatch(server.log(), /write failed|cannot open/);
      assert.deepEqual(readdirSync(logDir).sort(), ['ipp.txt', 'openvpn-status.log'], 'no temporary file left behind');
    } finally {
      await client.stop();
    }
  } finally {
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
});

const privilegedServer = (extra: string): string =>
  `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.151.0.0 255.255.255.0\nkeepalive 1 10\nexplicit-exit-notify 1\npersist-tun\nuser nobody\ngroup nogroup\n${lab.serverTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n${extra}`;

test('user nobody with persist-key: a hitless SIGHUP and then SIGUSR1 work with the keys read as root, and clients come back; the restarted run keeps the status and pool files', async (t) => {
  // A restart as nobody loads code again: open this checkout to others for the run.
  t.after(checkoutReadableByOthers());
  const unreadable = unreadableByNobody();
  if (unreadable !== null) {
    t.skip(`nobody cannot read ${unreadable}: a server that dropped root could not restart from this checkout`);
    return;
  }
  // The config where nobody can read it again, as /etc/openvpn/server/server.conf; the keys stay
  // in the test PKI's root-only directory.
  const confDir = mkdtempSync(path.join(os.tmpdir(), 'shardvpn-conf-'));
  chmodSync(confDir, 0o755);
  const confFile = path.join(confDir, 'server.conf');
  // Status and pool files in a directory only root may write; the pool saved only at the end of
  // each run (refresh 0), so what it holds was written by a server that was nobody.
  const logDir = path.join(confDir, 'log');
  mkdirSync(logDir, { mode: 0o755 });
  const status = path.join(logDir, 'status.log');
  const ipp = path.join(logDir, 'ipp.txt');
  const files = `status ${status} 1\nifconfig-pool-persist ${ipp} 0\n`;
  writeFileSync(confFile, privilegedServer(`persist-key\n${files}`), { mode: 0o644 });
  const server = lab.spawn(lab.server, process.execPath, [BIN, '--config', confFile], 'shardvpn');
  await server.waitFor(/Initialization Sequence Completed/);
  const client = await lab.startOpenvpnClient(
    0,
    `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\n${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`,
  );
  try {
    assert.equal(lab.ping(lab.clients[0]!, '10.151.0.1'), 3);
    // SIGHUP as nobody: the root-only key files cannot be read again; unchanged, they are kept.
    writeFileSync(confFile, privilegedServer(`persist-key\n${files}reneg-sec 1800\n`));
    process.kill(server.child.pid!, 'SIGHUP');
    await server.waitFor(/configuration reloaded without a restart \(changed: reneg-sec\); 1 client kept/, 10_000);
    assert.equal(lab.ping(lab.clients[0]!, '10.151.0.1'), 3, 'after the reload');
    assert.doesNotMatch(client.log(), /SIGUSR1/);
    process.kill(server.child.pid!, 'SIGUSR1');
    // The key files sit in root-only directories: only the kept keys let the restart succeed.
    await server.waitFor(/SIGUSR1\[hard,\] received, process restarting[\s\S]*Initialization Sequence Completed/, 20_000);
    assert.notEqual(ids(server.child.pid!).uid, 0);
    // explicit-exit-notify told the client to reconnect; it does, to the restarted server.
    await client.waitFor(/Initialization Sequence Completed[\s\S]*Initialization Sequence Completed/, 20_000);
    assert.equal(lab.ping(lab.clients[0]!, '10.151.0.1'), 3);
    // The run before the restart saved the pool as nobody; the restarted run, which could not
    // open either file again, writes through the descriptors the process kept.
    assert.match(readFileSync(ipp, 'utf8'), /^client,10\.151\.0\.2(,|$)/m);
    const restartedAt = server.log().indexOf('SIGUSR1[hard,] received');
    const before = readFileSync(status, 'utf8');
    const deadline = Date.now() + 5000;
    while (readFileSync(status, 'utf8') === before || !/^client,10\.150\.0\.10:\d+,/m.test(readFileSync(status, 'utf8'))) {
      assert.ok(Date.now() < deadline, `the restarted run did not rewrite the status file:\n${readFileSync(status, 'utf8')}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.doesNotMatch(server.log().slice(restartedAt), /cannot open|write failed/);
    assert.deepEqual(readdirSync(logDir).sort(), ['ipp.txt', 'status.log']);
  } finally {
    await client.stop();
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
    rmSync(confDir, { recursive: true, force: true });
  }
});

test('user nobody without persist-key: the SIGUSR1 restart cannot read the root-only key files and says which', async () => {
  const server = await lab.startShardvpn(privilegedServer(''));
  assert.match(server.log(), /WARNING: without persist-key a restart reads the key files again/);
  const exited = new Promise<number | null>((resolve) =>
    server.exited() ? resolve(server.child.exitCode) : server.child.once('exit', (code) => resolve(code)),
  );
  process.kill(server.child.pid!, 'SIGUSR1');
  const code = await exited;
  assert.notEqual(code, 0);
  // The first file it needs again is the CA certificate, in the test PKI's root-only directory.
  assert.match(server.log(), /ca: cannot read '[^']*ca\.crt' .*EACCES/, server.log().slice(-2000));
  await server.stop();
});
