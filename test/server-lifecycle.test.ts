// A shardvpn server's life with stock openvpn 2.6 clients: a client whose source port changes
// (float), renegotiation under load, refused clients beside a working one, explicit-exit-notify and
// ping-restart, SIGHUP with an edited config (reload-mode restart), `npm start` on an empty data
// folder, and SIGINT logged as itself. A restarted shard is test/server-shard-faults.test.ts's.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { serverStatistics } from './helpers/server-stats';
import { pacedTransfer } from './helpers/paced-transfer';
import { BIN, SERVER_UNDERLAY, VpnLab, type LabProcess } from '../lab/vpn-lab';

const MB = 1 << 20;
const RELAY = path.join(__dirname, 'fixtures', 'udp-relay.js');
const SERVER_TUNNEL = '10.151.0.1';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(3);
});
after(async () => {
  await lab.cleanup();
});

function serverConfig(extra: string): string {
  return `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.151.0.0 255.255.255.0\nworkers 2\n${lab.serverTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n${extra}`;
}

interface ClientOptions {
  port?: number;
  tls?: string;
  tlsCrypt?: string;
  extra?: string;
}

function clientConfig(o: ClientOptions = {}): string {
  return `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} ${o.port ?? 1194}\nnobind\n${o.tls ?? lab.clientTlsLines()}tls-crypt ${o.tlsCrypt ?? lab.keys.tlsCrypt}\nverb 3\n${o.extra ?? ''}`;
}

function signal(proc: LabProcess, name: NodeJS.Signals): void {
  assert.ok(proc.child.pid !== undefined && !proc.exited(), `${proc.name} is not running`);
  process.kill(proc.child.pid, name);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const count = (text: string, pattern: RegExp): number => text.match(new RegExp(pattern.source, 'g'))?.length ?? 0;

/** Stops the clients, then the server, which must exit cleanly. */
async function stopAll(server: LabProcess | null, ...others: (LabProcess | null)[]): Promise<void> {
  for (const proc of others) await proc?.stop();
  if (server !== null) assert.equal(await server.stop(), 0, server.log().slice(-2000));
}

test("float: the client's source port changes mid-session and its tunnel keeps working", async () => {
  const server = await lab.startShardvpn(serverConfig('keepalive 10 60\n'));
  let relay: LabProcess | null = null;
  let client: LabProcess | null = null;
  try {
    relay = lab.spawn(lab.server, process.execPath, [RELAY, SERVER_UNDERLAY, '1195', '127.0.0.1', '1194'], 'udp relay');
    const firstPort = (await relay.waitFor(/outbound port (\d+)/, 5000))[1]!;
    client = await lab.startOpenvpnClient(0, clientConfig({ port: 1195 }));
    // The server gave it a peer-id, so its P_DATA_V2 packets name it whatever their source.
    assert.match(client.log(), /PUSH_REPLY,[^\n]*peer-id \d+/);
    assert.equal(lab.ping(lab.clients[0]!, SERVER_TUNNEL), 3, 'before the switch');
    const before = await serverStatistics(server);
    assert.equal(before.clients.length, 1);
    assert.ok(before.clients[0]!.includes(`127.0.0.1:${firstPort},`), before.clients[0]);

    signal(relay, 'SIGUSR1');
    const secondPort = (await relay.waitFor(/outbound port \d+\n[^]*outbound port (\d+)/, 5000))[1]!;
    assert.notEqual(secondPort, firstPort);
    assert.equal(lab.ping(lab.clients[0]!, SERVER_TUNNEL, 5), 5, 'after the switch');
    assert.equal(lab.ping(lab.server, '10.151.0.2', 3), 3, 'server -> client after the switch');
    await server.waitFor(new RegExp(`floated`), 2000);
    assert.equal(count(server.log(), /floated/), 1, 'one float');
    // The main thread learns the new address with the next per-second statistics: poll for it.
    let afterSwitch = await serverStatistics(server);
    for (const until = Date.now() + 5000; Date.now() < until;) {
      if (afterSwitch.clients.length === 1 && afterSwitch.clients[0]!.includes(`127.0.0.1:${secondPort},`)) break;
      await sleep(200);
      afterSwitch = await serverStatistics(server);
    }
    assert.equal(afterSwitch.clients.length, 1);
    assert.ok(afterSwitch.clients[0]!.includes(`127.0.0.1:${secondPort},`), afterSwitch.clients[0]);
    assert.equal(afterSwitch.total.dropBadTag, 0);
    assert.equal(afterSwitch.total.clientsConnected, 1);
    assert.doesNotMatch(client.log(), /Restart|Inactivity timeout/);
  } finally {
    await stopAll(server, client, relay);
  }
});

test('renegotiation in the middle of a 50 MB transfer loses nothing', async () => {
  // The server renegotiates every 3 s and the client every 8 MB; the transfer is paced to last
  // about 5 s, so several renegotiations (both sides') finish while it runs.
  const server = await lab.startShardvpn(serverConfig('keepalive 10 60\nreneg-sec 3\n'));
  let client: LabProcess | null = null;
  try {
    client = await lab.startOpenvpnClient(0, clientConfig({ extra: 'reneg-bytes 8000000\n' }));
    const handshakesBefore = count(client.log(), /Control Channel: /);
    const result = await pacedTransfer(lab, lab.clients[0]!, lab.server, SERVER_TUNNEL, 50 * MB, 10 * MB);
    const handshakesAfter = count(client.log(), /Control Channel: /);
    assert.equal(result.received.bytes, 50 * MB);
    assert.equal(result.received.sha256, result.sent.sha256);
    assert.ok(result.ms >= 3500, `the transfer took only ${result.ms} ms`);
    assert.ok(
      handshakesAfter - handshakesBefore >= 2,
      `${handshakesAfter - handshakesBefore} renegotiations during the transfer:\n${client.log().slice(-3000)}`,
    );
    assert.equal(lab.ping(lab.clients[0]!, SERVER_TUNNEL), 3, 'after the transfer');
    const stats = await serverStatistics(server);
    assert.ok(stats.total.renegotiations! >= 2, JSON.stringify(stats.total));
    assert.equal(stats.total.dropBadTag, 0);
    assert.equal(stats.total.dropBadKeyId, 0);
    assert.equal(stats.total.clientsConnected, 1);
  } finally {
    await stopAll(server, client);
  }
});

test('a wrong-CA cert, a revoked cert and a bad tls-crypt key are refused while a good client keeps pinging', async () => {
  const crl = lab.file('crl.pem', lab.pki.crl);
  const server = await lab.startShardvpn(serverConfig(`keepalive 10 60\ncrl-verify ${crl}\n`));
  let good: LabProcess | null = null;
  let pinger: LabProcess | null = null;
  let bad: LabProcess | null = null;
  const tlsLines = (name: string, cert: string, key: string): string =>
    `ca ${lab.pki.files.ca}\ncert ${lab.file(`${name}.crt`, cert)}\nkey ${lab.file(`${name}.key`, key)}\nremote-cert-tls server\n`;
  try {
    good = await lab.startOpenvpnClient(0, clientConfig());
    pinger = lab.spawn(lab.clients[0]!, 'ping', ['-i', '0.2', '-W', '1', SERVER_TUNNEL], 'background ping');
    await pinger.waitFor(/icmp_seq=\d+ /, 3000);

    // A certificate of another CA.
    let base = server.log().length;
    bad = await lab.startOpenvpnClient(
      1,
      clientConfig({ tls: tlsLines('intruder', lab.pki.otherClientCert, lab.pki.otherClientKey) }),
      null,
    );
    await waitInLog(server, base, /cert-rejected/, 8000);
    await sleep(300);
    const intruderLog = server.log().slice(base);
    await bad.stop();
    let stats = await serverStatistics(server);
    assert.ok(stats.total.handshakeFailCert! >= 1, `wrong CA: ${JSON.stringify(stats.total)}\n${intruderLog}`);
    assert.match(intruderLog, /10\.150\.0\.11:\d+ cert-rejected: VERIFY ERROR/);

    // A revoked certificate of our CA.
    base = server.log().length;
    const failedBefore = stats.total.handshakeFailCert!;
    bad = await lab.startOpenvpnClient(
      1,
      clientConfig({ tls: tlsLines('revoked', lab.pki.revokedClientCert, lab.pki.revokedClientKey) }),
      null,
    );
    const revokedLine = await waitInLog(server, base, /10\.150\.0\.11:\d+ cert-rejected: VERIFY ERROR: certificate revoked/, 8000);
    await bad.stop();
    stats = await serverStatistics(server);
    assert.ok(stats.total.handshakeFailCert! > failedBefore, `revoked: ${JSON.stringify(stats.total)}\n${revokedLine}`);

    // A tls-crypt key the server does not have: dropped before any state is kept.
    const otherKey = path.join(lab.dir, 'other-tc.key');
    execFileSync('openvpn', ['--genkey', 'tls-crypt', otherKey], { stdio: 'ignore' });
    base = server.log().length;
    const badHmacBefore = stats.total.dropControlBadHmac!;
    const repliesBefore = stats.total.statelessReplies;
    bad = await lab.startOpenvpnClient(1, clientConfig({ tlsCrypt: otherKey }), null);
    await bad.waitFor(/UDPv4 link remote/, 5000);
    await sleep(2500);
    await bad.stop();
    stats = await serverStatistics(server);
    assert.ok(stats.total.dropControlBadHmac! > badHmacBefore, `bad tls-crypt: ${JSON.stringify(stats.total)}`);
    assert.equal(stats.total.statelessReplies, repliesBefore, 'no reply to a reset with the wrong key');
    assert.equal(stats.total.handshakesCompleted, 1);
    assert.equal(stats.total.clientsConnected, 1);
    const badKeyLog = server.log().slice(base);
    assert.match(
      badKeyLog,
      /TLS Error: control packet from 10\.150\.0\.11:\d+ dropped: .*(tls-crypt|auth|hmac)/i,
      `bad tls-crypt not logged:\n${badKeyLog}`,
    );

    await pinger.stop('SIGINT');
    const summary = /(\d+) packets transmitted, (\d+) received/.exec(pinger.log());
    assert.ok(summary !== null, pinger.log());
    const sent = Number(summary[1]);
    const received = Number(summary[2]);
    assert.ok(sent >= 10, `only ${sent} pings sent`);
    assert.ok(sent - received <= 1, `good client lost ${sent - received} of ${sent} pings`);
  } finally {
    await stopAll(server, pinger, bad, good);
  }
});

async function waitInLog(proc: LabProcess, from: number, pattern: RegExp, timeoutMs: number): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(proc.log().slice(from));
    if (match !== null) return match[0];
    if (Date.now() > until) throw new Error(`${proc.name}: no ${pattern} within ${timeoutMs} ms:\n${proc.log().slice(from).slice(-3000)}`);
    await sleep(50);
  }
}

test('explicit-exit-notify frees a client at once; a silent client is dropped by ping-restart', async () => {
  const server = await lab.startShardvpn(serverConfig('keepalive 1 2\n'));
  let leaving: LabProcess | null = null;
  let silent: LabProcess | null = null;
  try {
    leaving = await lab.startOpenvpnClient(0, clientConfig({ extra: 'explicit-exit-notify 1\n' }));
    assert.equal(lab.ping(lab.clients[0]!, SERVER_TUNNEL, 2), 2);
    let base = server.log().length;
    // openvpn sends the exit notification at once but exits only about 1 s later: time the
    // server's disconnect, not the client's exit.
    const stopped = Date.now();
    const stopping = leaving.stop('SIGTERM');
    await waitInLog(server, base, /disconnected: client exit notification/, 2500);
    const freedAfter = Date.now() - stopped;
    assert.ok(freedAfter < 2500, `freed after ${freedAfter} ms (the inactivity drop would take 3 s or more)`);
    await stopping;
    let stats = await serverStatistics(server);
    assert.equal(stats.total.clientsConnected, 0, JSON.stringify(stats.total));
    assert.equal(stats.clients.length, 0);

    silent = await lab.startOpenvpnClient(1, clientConfig());
    assert.equal(lab.ping(lab.clients[1]!, SERVER_TUNNEL, 2), 2);
    base = server.log().length;
    const frozen = Date.now();
    signal(silent, 'SIGSTOP');
    await waitInLog(server, base, /inactivity timeout/, 8000);
    const waited = Date.now() - frozen;
    // keepalive 1 2: the server's ping-restart is twice the pushed one, 4 s; openvpn's timers are
    // whole seconds, so allow some early slack.
    assert.ok(waited >= 2500 && waited <= 6500, `dropped after ${waited} ms (ping-restart 4)`);
    stats = await serverStatistics(server);
    assert.equal(stats.total.clientsConnected, 0, JSON.stringify(stats.total));
    assert.equal(stats.clients.length, 0);
  } finally {
    if (silent !== null && !silent.exited() && silent.child.pid !== undefined) process.kill(silent.child.pid, 'SIGCONT');
    await stopAll(server, leaving, silent);
  }
});

test('reload-mode restart: SIGHUP restarts as OpenVPN does; the client reconnects and gets the new pushed route', async () => {
  const config = serverConfig('keepalive 1 4\nexplicit-exit-notify 1\nreload-mode restart\n');
  const server = await lab.startShardvpn(config, 'hup.conf');
  let client: LabProcess | null = null;
  try {
    client = await lab.startOpenvpnClient(0, clientConfig());
    assert.doesNotMatch(client.log(), /10\.199\.0\.0/);
    lab.file('hup.conf', `${config}push "route 10.199.0.0 255.255.0.0"\n`);
    const started = Date.now();
    signal(server, 'SIGHUP');
    await server.waitFor(/SIGHUP[^\n]*restarting[^]*Initialization Sequence Completed/, 10_000);
    await client.waitFor(/PUSH_REPLY,[^\n]*route 10\.199\.0\.0 255\.255\.0\.0/, 15_000);
    await client.waitFor(/Initialization Sequence Completed[^]*Initialization Sequence Completed/, 10_000);
    assert.ok(Date.now() - started < 10_000, `reconnected after ${Date.now() - started} ms`);
    assert.match(lab.clients[0]!.ip(['route', 'show']), /10\.199\.0\.0\/16/);
    assert.equal(lab.ping(lab.clients[0]!, SERVER_TUNNEL), 3, 'after the reconnect');
  } finally {
    await stopAll(server, client);
  }
});

test('`npm start` on an empty data folder serves a stock client using the written client.ovpn', async () => {
  const data = path.join(lab.dir, 'data');
  const server = lab.spawn(
    lab.server,
    'env',
    [`SHARDVPN_DATA=${data}`, `SHARDVPN_REMOTE=${SERVER_UNDERLAY}`, process.execPath, BIN],
    'shardvpn (npm start)',
  );
  let client: LabProcess | null = null;
  try {
    await server.waitFor(/Initialization Sequence Completed/, 30_000);
    assert.match(server.log(), /Created the built-in server's keys/);
    client = lab.spawn(lab.clients[0]!, 'openvpn', ['--config', path.join(data, 'client.ovpn')], 'openvpn client.ovpn');
    await client.waitFor(/Initialization Sequence Completed/, 20_000);
    assert.equal(lab.ping(lab.clients[0]!, '10.89.0.1'), 3);
  } finally {
    await stopAll(server, client);
  }
});

test("SIGUSR2 logs OpenVPN's status report; SIGINT stops the server like SIGTERM and is logged as itself", async () => {
  const server = await lab.startShardvpn(serverConfig('').replace('port 1194', 'port 1197'), 'sigint.conf');
  process.kill(server.child.pid!, 'SIGUSR2');
  await server.waitFor(/OpenVPN CLIENT LIST\n.*Updated,[\s\S]*ROUTING TABLE\n[\s\S]*GLOBAL STATS\n[\s\S]*\bEND\n/, 5000);
  const code = await server.stop('SIGINT', 8000);
  assert.equal(code, 0, server.log().slice(-2000));
  assert.match(server.log(), /SIGINT\[hard,\] received, process exiting/);
});
