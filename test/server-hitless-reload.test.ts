// SIGHUP on a running shardvpn server (reload-mode hitless, the default) with stock openvpn 2.6
// clients: a client whose settings did not change keeps its session and loses no ping; a client
// whose client-config-dir file changed is told to reconnect and gets the new push; a client the
// new CRL revokes is put out; a client connecting afterwards gets the new data-ciphers; a config
// that no longer parses is refused with its file:line while the old one keeps serving; and a
// change the running server cannot take (the TUN MTU) falls back to OpenVPN's restart.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { issueClientCert } from '../lab/test-pki';
import { SERVER_UNDERLAY, VpnLab, type LabProcess } from '../lab/vpn-lab';

const SERVER_TUNNEL = '10.152.0.1';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(3);
});
after(async () => {
  await lab.cleanup();
});

function serverConfig(o: { dataCiphers: string; extra?: string }): string {
  return [
    'port 1194',
    'proto udp',
    'dev tun',
    'topology subnet',
    'server 10.152.0.0 255.255.255.0',
    'workers 2',
    'keepalive 10 60',
    'duplicate-cn',
    `client-config-dir ${path.join(lab.dir, 'ccd')}`,
    `crl-verify ${path.join(lab.dir, 'crl.pem')}`,
    `data-ciphers ${o.dataCiphers}`,
    lab.serverTlsLines().trimEnd(),
    `tls-crypt ${lab.keys.tlsCrypt}`,
    'verb 3',
    o.extra ?? '',
    '',
  ].join('\n');
}

function clientConfig(cert: { cert: string; key: string } | null): string {
  const tls = cert === null ? lab.clientTlsLines() : `ca ${lab.pki.files.ca}\ncert ${cert.cert}\nkey ${cert.key}\nremote-cert-tls server\n`;
  return `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\n${tls}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`;
}

/** Starts `ping` at 50 ms intervals in the background; resolves with sent and received counts when it ends. */
function backgroundPing(ns: number, count: number): { done: Promise<{ sent: number; received: number; output: string }> } {
  const proc = lab.spawn(lab.clients[ns]!, 'ping', ['-n', '-i', '0.05', '-c', String(count), '-W', '1', SERVER_TUNNEL], `ping from c${ns}`);
  const done = new Promise<{ sent: number; received: number; output: string }>((resolve) => {
    proc.child.on('exit', () => {
      const match = /(\d+) packets transmitted, (\d+) received/.exec(proc.log());
      resolve({ sent: Number(match?.[1] ?? 0), received: Number(match?.[2] ?? 0), output: proc.log().slice(-600) });
    });
  });
  return { done };
}

function hup(server: LabProcess): void {
  assert.ok(server.child.pid !== undefined && !server.exited());
  process.kill(server.child.pid, 'SIGHUP');
}

test('hitless SIGHUP: unchanged clients keep their session, changed ones reconnect, revoked ones go, new ones get the new settings', async () => {
  mkdirSync(path.join(lab.dir, 'ccd'), { recursive: true });
  lab.file('ccd/moved', 'push "route 10.198.0.0 255.255.0.0"\n');
  lab.file('crl.pem', lab.pki.emptyCrl);
  const moved = issueClientCert(lab.pki, 'moved');
  const revoked = { cert: lab.file('revoked.crt', lab.pki.revokedClientCert), key: lab.file('revoked.key', lab.pki.revokedClientKey) };
  const server = await lab.startShardvpn(serverConfig({ dataCiphers: 'AES-256-GCM:AES-128-GCM' }), 'hup.conf');
  const clients: LabProcess[] = [];
  try {
    const steady = await lab.startOpenvpnClient(0, clientConfig(null));
    const changed = await lab.startOpenvpnClient(1, clientConfig(moved));
    const victim = await lab.startOpenvpnClient(2, clientConfig(revoked));
    clients.push(steady, changed, victim);
    assert.equal((await steady.waitFor(/Data Channel: cipher '([^']+)'/, 5000))[1], 'AES-256-GCM');
    assert.match(changed.log(), /PUSH_REPLY,[^\n]*route 10\.198\.0\.0 255\.255\.0\.0/);

    // 200 pings over about 10 s span a refused edit and a real reload.
    const ping = backgroundPing(0, 200);
    await new Promise((resolve) => setTimeout(resolve, 1000));

    // An edit that does not parse: refused at its line, the running configuration stays.
    const broken = `${serverConfig({ dataCiphers: 'AES-256-GCM:AES-128-GCM' })}keepalive ten 60\n`;
    const badLine = broken.split('\n').indexOf('keepalive ten 60') + 1;
    lab.file('hup.conf', broken);
    let from = server.log().length;
    hup(server);
    await server.waitFor(new RegExp(`configuration is refused, the running one stays: [^\\n]*hup\\.conf:${badLine}`), 5000);
    assert.equal(lab.ping(lab.clients[1]!, SERVER_TUNNEL, 2), 2, 'the changed client still works before the real reload');

    // The real edit: a new data-ciphers order, a new ccd file for `moved`, a CRL revoking `revoked`.
    lab.file('hup.conf', serverConfig({ dataCiphers: 'AES-128-GCM:AES-256-GCM' }));
    lab.file('ccd/moved', 'push "route 10.197.0.0 255.255.0.0"\n');
    lab.file('crl.pem', lab.pki.crl);
    from = server.log().length;
    hup(server);
    await server.waitFor(/configuration reloaded without a restart[^\n]*1 client kept, 2 told to reconnect/, 5000);
    const reloadLog = server.log().slice(from);
    assert.match(reloadLog, /moved\/[^\n]*SIGHUP: its client-config-dir file or push list changed: told to reconnect \(RESTART\)/);
    assert.match(reloadLog, /revoked\/[^\n]*SIGHUP: certificate serial [0-9A-Fa-f]+ is revoked/);
    assert.doesNotMatch(reloadLog, /process restarting/);

    // The changed client reconnects with its new route; the revoked one is refused when it tries.
    await changed.waitFor(/PUSH_REPLY,[^\n]*route 10\.197\.0\.0 255\.255\.0\.0/, 15_000);
    await changed.waitFor(/Initialization Sequence Completed[^]*Initialization Sequence Completed/, 10_000);
    await server.waitFor(/cert-rejected: VERIFY ERROR: certificate revoked/, 15_000);

    const result = await ping.done;
    assert.equal(result.sent, 200, result.output);
    assert.equal(result.received, 200, `the unchanged client lost ${result.sent - result.received} pings:\n${result.output}`);
    assert.doesNotMatch(steady.log(), /SIGUSR1|Restart pause|Inactivity timeout/);

    // A client that connects now gets the new settings (the first of the new data-ciphers).
    await victim.stop();
    const fresh = await lab.startOpenvpnClient(2, clientConfig(null));
    clients.push(fresh);
    assert.equal((await fresh.waitFor(/Data Channel: cipher '([^']+)'/, 5000))[1], 'AES-128-GCM');
    assert.equal(lab.ping(lab.clients[2]!, SERVER_TUNNEL, 2), 2, 'the new client');
    assert.equal(lab.ping(lab.clients[0]!, SERVER_TUNNEL, 2), 2, 'the unchanged client, still on its first session');
    assert.equal((steady.log().match(/Initialization Sequence Completed/g) ?? []).length, 1);
  } finally {
    for (const client of clients) await client.stop();
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
});

test('SIGHUP with a change the running server cannot take (tun-mtu) restarts it as OpenVPN does', async () => {
  lab.file('crl.pem', lab.pki.emptyCrl);
  // explicit-exit-notify: the restarting server tells its clients (RESTART), as OpenVPN's would.
  const config = serverConfig({ dataCiphers: 'AES-256-GCM', extra: 'explicit-exit-notify 1' });
  const server = await lab.startShardvpn(config, 'mtu.conf');
  let client: LabProcess | null = null;
  try {
    client = await lab.startOpenvpnClient(0, clientConfig(null));
    lab.file('mtu.conf', `${config}tun-mtu 1400\n`);
    hup(server);
    await server.waitFor(
      /SIGHUP: tun-mtu[^\n]* changed, which needs a restart[^]*SIGHUP\[hard,\] received, process restarting[^]*Initialization Sequence Completed/,
      15_000,
    );
    await client.waitFor(/Initialization Sequence Completed[^]*Initialization Sequence Completed/, 30_000);
    assert.equal(lab.ping(lab.clients[0]!, SERVER_TUNNEL, 2), 2, 'after the restart');
  } finally {
    await client?.stop();
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
});
