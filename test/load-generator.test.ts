// `shardvpn load` end to end: simulated clients run from a client namespace against our server
// and against a stock openvpn 2.6 server in the server namespace; the JSON report and the
// servers' own view of their clients must agree. Plus the command's usage errors.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { progressLine, type LoadReport } from '../src/main/load/report';
import { LatencyHistogram } from '../src/shared/load/histogram';
import { ipv4ToNumber, readEchoReply, writeEchoRequest } from '../src/shared/load/icmp-echo';
import { serverStatistics } from './helpers/server-stats';
import { makeTestPki } from '../lab/test-pki';
import { SERVER_UNDERLAY, VpnLab, type LabProcess } from '../lab/vpn-lab';

const RUN_LOAD = path.join(__dirname, 'fixtures', 'run-load.js');
const canLab = process.getuid?.() === 0 && existsSync('/dev/net/tun') && spawnSync('openvpn', ['--version']).status !== null;

let lab: VpnLab;
before(() => {
  if (canLab) lab = VpnLab.create(1);
});
after(async () => {
  if (canLab) await lab.cleanup();
});

function profile(name: string, port: number, extra = ''): string {
  return lab.file(
    name,
    `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} ${port}\nnobind\n${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\n${extra}verb 3\n`,
  );
}

/** Runs the load generator in the client namespace; resolves with its exit code and the JSON report. */
async function runLoad(args: string[], timeoutMs: number): Promise<{ code: number | null; report: LoadReport; proc: LabProcess }> {
  const json = path.join(lab.dir, `report-${Date.now()}.json`);
  const proc = lab.spawn(lab.clients[0]!, process.execPath, [RUN_LOAD, ...args, '--json', json, '--quiet'], 'shardvpn load');
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`load generator still running after ${timeoutMs} ms:\n${proc.log().slice(-3000)}`)),
      timeoutMs,
    );
    proc.child.once('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  assert.ok(existsSync(json), `no JSON report (exit ${code}):\n${proc.log().slice(-3000)}`);
  return { code, report: JSON.parse(readFileSync(json, 'utf8')) as LoadReport, proc };
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test(
  '50 simulated clients at once over 2 threads all connect to shardvpn and ping through it; the server lists 50, then none after explicit-exit-notify',
  { skip: !canLab, timeout: 60_000 },
  async () => {
    const server = await lab.startShardvpn(
      `port 1194\ndev tun\nkeepalive 10 60\ntls-crypt ${lab.keys.tlsCrypt}\n${lab.serverTlsLines()}topology subnet\nserver 10.160.0.0 255.255.255.0\nworkers 2\nduplicate-cn\nverb 3\n`,
      'load-server.conf',
    );
    try {
      const file = profile('load-shardvpn.ovpn', 1194, 'explicit-exit-notify 1\n');
      const running = runLoad(
        ['--profile', file, '--clients', '50', '--rate', '0', '--threads', '2', '--duration', '8', '--pps', '5'],
        40_000,
      );
      let listed = 0;
      await until(
        'the server to list 50 clients',
        async () => {
          listed = (await serverStatistics(server)).clients.length;
          return listed === 50;
        },
        20_000,
      );
      const { code, report, proc } = await running;
      assert.equal(code, 0, proc.log().slice(-3000));
      assert.equal(report.requested, 50);
      assert.equal(report.connected, 50, JSON.stringify(report.failureDetails));
      assert.equal(report.failed, 0);
      assert.deepEqual(report.failures, {});
      assert.equal(report.threads, 2);
      assert.ok(report.handshakeMs.p50 !== null && report.handshakeMs.max !== null && report.handshakeMs.p50 <= report.handshakeMs.max);
      assert.ok(report.allConnectedS !== null && report.connectsPerSecond !== null && report.connectsPerSecond > 0);
      // In-tunnel ICMP echo to the server's own tunnel address, answered by its kernel via TUN.
      const t = report.traffic;
      assert.ok(t !== null);
      assert.ok(t.echoSent >= 50 * 5 * 4, `echo requests sent: ${t.echoSent}`);
      assert.ok(t.loss !== null && t.loss < 0.05, `loss ${t.loss} (${t.echoReceived}/${t.echoSent})`);
      assert.equal(t.decryptErrors, 0);
      assert.match(proc.log(), /connected\s+50\n/);
      // Every client said goodbye (OCC_EXIT): the server forgets them without waiting for ping-restart.
      await until('the server to drop the exited clients', async () => (await serverStatistics(server)).clients.length === 0, 10_000);
    } finally {
      assert.equal(await server.stop(), 0, server.log().slice(-2000));
    }
  },
);

test(
  '20 simulated clients connect to a stock openvpn 2.6 server; ICMP echo at 10/s through each tunnel comes back',
  { skip: !canLab, timeout: 60_000 },
  async () => {
    const status = path.join(lab.dir, 'openvpn-status.txt');
    const ovpn = lab.spawn(
      lab.server,
      'openvpn',
      lab.stockServerArgs('10.161.0.0 255.255.255.0', 1195, ['--status', status, '1', '--status-version', '2', '--verb', '3']),
      'openvpn server',
    );
    try {
      await ovpn.waitFor(/Initialization Sequence Completed/);
      const file = profile('load-openvpn.ovpn', 1195);
      const running = runLoad(
        ['--profile', file, '--clients', '20', '--rate', '0', '--threads', '2', '--duration', '5', '--pps', '10', '--size', '100'],
        40_000,
      );
      await until(
        'the openvpn status file to list 20 clients',
        () =>
          existsSync(status) &&
          readFileSync(status, 'utf8')
            .split('\n')
            .filter((l) => l.startsWith('CLIENT_LIST,')).length === 20,
        20_000,
      );
      const { code, report, proc } = await running;
      assert.equal(code, 0, proc.log().slice(-3000));
      assert.equal(report.connected, 20, JSON.stringify(report.failureDetails));
      assert.equal(report.failed, 0);
      const t = report.traffic;
      assert.ok(t !== null);
      // About 20 clients x 10/s x ~4.5 s of connected time.
      assert.ok(t.echoSent >= 20 * 10 * 3, `echo requests sent: ${t.echoSent}`);
      assert.ok(t.loss !== null && t.loss < 0.05, `loss ${t.loss} (${t.echoReceived}/${t.echoSent})`);
      assert.ok(t.rttMs.p50 !== null && t.rttMs.p50 > 0 && t.rttMs.p50 < 1000);
      assert.equal(t.decryptErrors, 0);
      assert.doesNotMatch(ovpn.log(), /AEAD Decrypt error|Authenticate\/Decrypt packet error|bad source address/);

      // A profile whose verify-x509-name the server certificate does not match: counted by reason.
      const wrong = profile('load-wrong-name.ovpn', 1195, 'verify-x509-name no-such-server name\n');
      const refused = await runLoad(['--profile', wrong, '--clients', '4', '--threads', '1', '--duration', '2'], 20_000);
      assert.equal(refused.code, 3, refused.proc.log().slice(-2000));
      assert.equal(refused.report.connected, 0);
      assert.deepEqual(refused.report.failures, { 'cert-rejected': 4 });
      assert.match(refused.proc.log(), /failed: cert-rejected\s+4/);
    } finally {
      await ovpn.stop();
    }
  },
);

function runPlain(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [RUN_LOAD, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test(
  'with no server answering, every client fails with timeout at --handshake-timeout and the run still ends on time',
  { timeout: 20_000 },
  async () => {
    const pki = makeTestPki();
    try {
      // A bound UDP socket that never answers: the hard resets go nowhere.
      const sink = dgram.createSocket('udp4');
      await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
      const port = sink.address().port;
      let received = 0;
      sink.on('message', () => received++);
      const file = path.join(pki.dir, 'silent.ovpn');
      writeFileSync(
        file,
        `client\nremote 127.0.0.1 ${port}\nproto udp\nca ${pki.files.ca}\ncert ${pki.files.clientCert}\nkey ${pki.files.clientKey}\n`,
      );
      const json = path.join(pki.dir, 'silent.json');
      const started = Date.now();
      const child = spawn(process.execPath, [
        RUN_LOAD,
        '--profile',
        file,
        '--clients',
        '6',
        '--threads',
        '2',
        '--duration',
        '2',
        '--handshake-timeout',
        '1',
        '--json',
        json,
        '--quiet',
      ]);
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      sink.close();
      assert.equal(code, 3, out);
      assert.ok(Date.now() - started < 8000, `took ${Date.now() - started} ms`);
      const report = JSON.parse(readFileSync(json, 'utf8')) as LoadReport;
      assert.equal(report.connected, 0);
      assert.deepEqual(report.failures, { timeout: 6 });
      assert.equal(report.allConnectedS, null);
      assert.ok(received >= 6, `hard resets seen: ${received}`);
    } finally {
      pki.cleanup();
    }
  },
);

test(
  'over TCP: 30 simulated clients (proto tcp-client) connect to a shardvpn TCP server over 2 shards and to a stock openvpn TCP server; echo through each',
  { skip: !canLab, timeout: 90_000 },
  async () => {
    const serverConf = (port: number, net: string): string =>
      `proto tcp-server\nport ${port}\ndev tun\nkeepalive 10 60\ntls-crypt ${lab.keys.tlsCrypt}\n${lab.serverTlsLines()}dh none\ntopology subnet\nserver ${net} 255.255.255.0\nduplicate-cn\nverb 3\n`;
    for (const ours of [true, false]) {
      const port = ours ? 1453 : 1454;
      const conf = serverConf(port, ours ? '10.161.0.0' : '10.162.0.0');
      const server = ours
        ? await lab.startShardvpn(`${conf}workers 2\n`, 'load-tcp-server.conf')
        : lab.spawn(lab.server, 'openvpn', ['--config', lab.file('load-tcp-stock.conf', conf)], 'openvpn tcp server');
      try {
        if (!ours) await server.waitFor(/Initialization Sequence Completed/, 15_000);
        const file = profile(`load-tcp-${port}.ovpn`, port);
        writeFileSync(file, readFileSync(file, 'utf8').replace('proto udp\n', 'proto tcp-client\n'));
        const { code, report, proc } = await runLoad(
          ['--profile', file, '--clients', '30', '--rate', '0', '--threads', '2', '--duration', '6', '--pps', '5'],
          60_000,
        );
        assert.equal(code, 0, proc.log().slice(-3000));
        assert.equal(report.connected, 30, `${ours ? 'shardvpn' : 'openvpn'}: ${JSON.stringify(report.failureDetails)}`);
        assert.equal(report.failed, 0);
        const t = report.traffic;
        assert.ok(t !== null && t.echoSent >= 30 * 5 * 3, `echo requests sent: ${t?.echoSent}`);
        assert.ok(t.loss !== null && t.loss < 0.05, `loss ${t.loss} (${t.echoReceived}/${t.echoSent})`);
        assert.equal(t.decryptErrors, 0);
      } finally {
        await server.stop('SIGTERM', 5000);
      }
    }
  },
);

test(
  'sessions the server drops in silence (one certificate, no duplicate-cn) are reported as disconnected by ping-restart',
  { skip: !canLab, timeout: 60_000 },
  async () => {
    const server = await lab.startShardvpn(
      `port 1195\ndev tun\nkeepalive 1 4\ntls-crypt ${lab.keys.tlsCrypt}\n${lab.serverTlsLines()}topology subnet\nserver 10.164.0.0 255.255.255.0\nworkers 2\nverb 3\n`,
      'load-no-dup.conf',
    );
    try {
      const file = profile('load-no-dup.ovpn', 1195);
      // One client a second: each connects fully before the next one takes its certificate over.
      const { code, report } = await runLoad(
        ['--profile', file, '--clients', '6', '--rate', '1', '--threads', '1', '--duration', '14'],
        40_000,
      );
      assert.equal(code, 0, JSON.stringify(report.failureDetails));
      assert.equal(report.connected, 6);
      assert.equal(report.disconnected, 5, JSON.stringify(report.failureDetails));
      assert.ok('disconnected:ping-restart' in report.failureDetails, JSON.stringify(report.failureDetails));
      assert.match(server.log(), /previous active sessions by this client to be dropped/);
    } finally {
      await server.stop('SIGTERM', 5000);
    }
  },
);

test(
  'idle simulated clients ping on their own schedule: pushed ping 1, a server that pings every 5 s and drops after 3 s of silence holds all 12 for 9 s',
  { skip: !canLab, timeout: 60_000 },
  async () => {
    // No traffic: each client is polled only when its keepalive ping falls due (the slice's tick
    // wheel) or a packet arrives. The server's own pings come only every 5 s, and it drops a
    // client silent for 3 s: a client that pinged only when woken by the server's would be lost.
    const server = await lab.startShardvpn(
      `port 1196\ndev tun\nping 5\nping-restart 3\npush "ping 1"\npush "ping-restart 12"\ntls-crypt ${lab.keys.tlsCrypt}\n${lab.serverTlsLines()}topology subnet\nserver 10.165.0.0 255.255.255.0\nworkers 2\nduplicate-cn\nverb 3\n`,
      'load-idle.conf',
    );
    try {
      const file = profile('load-idle.ovpn', 1196);
      const { code, report } = await runLoad(['--profile', file, '--clients', '12', '--threads', '2', '--duration', '9'], 40_000);
      assert.equal(code, 0, JSON.stringify(report.failureDetails));
      assert.equal(report.connected, 12);
      assert.equal(report.disconnected, 0, JSON.stringify(report.failureDetails));
      assert.equal(report.connectedAtEnd, 12);
      assert.doesNotMatch(server.log(), /inactivity timeout/);
    } finally {
      await server.stop('SIGTERM', 5000);
    }
  },
);

test(
  'with --reconnect, a first handshake that fails is a failure, not tried again: only a lost session is',
  { timeout: 20_000 },
  async () => {
    const pki = makeTestPki();
    const sink = dgram.createSocket('udp4');
    try {
      await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
      let received = 0;
      sink.on('message', () => received++);
      const file = path.join(pki.dir, 'silent-reconnect.ovpn');
      writeFileSync(
        file,
        `client\nremote 127.0.0.1 ${sink.address().port}\nproto udp\nca ${pki.files.ca}\ncert ${pki.files.clientCert}\nkey ${pki.files.clientKey}\n`,
      );
      const json = path.join(pki.dir, 'silent-reconnect.json');
      const args = ['--profile', file, '--clients', '3', '--threads', '1', '--duration', '3', '--handshake-timeout', '1'];
      // Not spawnSync: the sink counts the hard resets on this event loop while the run goes on.
      const child = spawn(process.execPath, [RUN_LOAD, ...args, '--reconnect', '--json', json, '--quiet']);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const status = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      const r = { status, stdout, stderr };
      assert.equal(r.status, 3, r.stderr);
      const report = JSON.parse(readFileSync(json, 'utf8')) as LoadReport;
      assert.deepEqual(report.failures, { timeout: 3 });
      assert.equal(report.reconnects, 0);
      assert.equal(report.reconnectFailures, 0);
      assert.equal(report.connectedAtEnd, 0);
      assert.ok(received >= 3, `hard resets seen: ${received}`);
      assert.match(r.stdout, /reconnected\s+0\n/);
    } finally {
      sink.close();
      pki.cleanup();
    }
  },
);

test(
  '--source spreads the clients over the given local addresses, in turn; the server sees them come from those addresses',
  { skip: !canLab, timeout: 60_000 },
  async () => {
    const sources = lab.addClientAddresses(0, 2);
    const server = await lab.startShardvpn(
      `port 1196\ndev tun\nkeepalive 10 60\ntls-crypt ${lab.keys.tlsCrypt}\n${lab.serverTlsLines()}topology subnet\nserver 10.165.0.0 255.255.255.0\nworkers 2\nduplicate-cn\nverb 3\n`,
      'load-source-server.conf',
    );
    try {
      const file = profile('load-source.ovpn', 1196);
      const running = runLoad(
        ['--profile', file, '--clients', '20', '--threads', '2', '--duration', '6', '--source', sources.join(',')],
        40_000,
      );
      let lines: string[] = [];
      await until(
        'the server to list 20 clients',
        async () => {
          lines = (await serverStatistics(server)).clients;
          return lines.length === 20;
        },
        20_000,
      );
      const from = new Map<string, number>();
      for (const line of lines) {
        const real = line.split(',')[1]!;
        const address = real.slice(0, real.lastIndexOf(':'));
        from.set(address, (from.get(address) ?? 0) + 1);
      }
      assert.deepEqual(Object.fromEntries(from), { [sources[0]!]: 10, [sources[1]!]: 10 });
      const { code, report, proc } = await running;
      assert.equal(code, 0, proc.log().slice(-3000));
      assert.equal(report.connected, 20, JSON.stringify(report.failureDetails));
    } finally {
      assert.equal(await server.stop(), 0, server.log().slice(-2000));
    }
  },
);

test('--source takes IP addresses only', () => {
  const bad = runPlain(['--profile', '/nonexistent/client.ovpn', '--source', '10.150.0.200,not-an-address']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--source: 'not-an-address' is not an IPv4 or IPv6 address/);
});

test('a missing profile is a clear error with exit status 1', () => {
  const r = runPlain(['--profile', '/nonexistent/client.ovpn', '--clients', '5']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--profile \/nonexistent\/client\.ovpn: no such file/);
});

test('--clients 0, negative or not a number is refused with exit status 1', () => {
  for (const value of ['0', '-3', 'many', '2.5']) {
    const r = runPlain(['--profile', '/nonexistent/client.ovpn', `--clients=${value}`]);
    assert.equal(r.status, 1, value);
    assert.match(r.stderr, /--clients: .*(out of range|not a number|whole number).*at least 1/, value);
  }
  const spaced = runPlain(['--profile', '/nonexistent/client.ovpn', '--clients', '-3']);
  assert.equal(spaced.status, 1);
  assert.match(spaced.stderr, /--clients: -3 is out of range/);
  const missing = runPlain(['--clients', '3']);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /--profile FILE is required/);
  const unknown = runPlain(['--profile', 'x', '--bogus']);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /bogus/);
});

test('the latency histogram gives percentiles within its 2% bucket width and merges slices', () => {
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  for (let i = 1; i <= 1000; i++) (i % 2 === 0 ? a : b).record(i);
  a.merge(b.toJSON());
  assert.equal(a.count, 1000);
  assert.equal(a.maximum, 1000);
  for (const [q, exact] of [
    [0.5, 500],
    [0.95, 950],
    [0.99, 990],
  ] as const) {
    const v = a.percentile(q)!;
    assert.ok(Math.abs(v - exact) / exact <= 0.02, `p${q * 100}: ${v} vs ${exact}`);
  }
  assert.equal(new LatencyHistogram().percentile(0.5), null);
});

test('ICMP echo requests carry valid checksums; the reply the kernel would make reads back its send time', () => {
  const m = new Uint8Array(200);
  const src = ipv4ToNumber('10.160.0.2')!;
  const dst = ipv4ToNumber('10.160.0.1')!;
  const n = writeEchoRequest(m, 10, 100, src, dst, 0x1234, 7, 12345.5);
  assert.equal(n, 100);
  const ones = (from: number, to: number): number => {
    let sum = 0;
    for (let i = from; i < to; i += 2) sum += (m[i]! << 8) | m[i + 1]!;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    return sum;
  };
  assert.equal(ones(10, 30), 0xffff, 'IPv4 header checksum');
  assert.equal(ones(30, 110), 0xffff, 'ICMP checksum');
  assert.equal(readEchoReply(m, 10, n, src, 0x1234), -1, 'a request is not a reply');
  // The reply: addresses swapped, type 0 (checksums are not checked by the reader).
  m.copyWithin(200 - 8, 22, 30);
  m.set(m.subarray(200 - 4, 200), 22);
  m.set(m.subarray(200 - 8, 200 - 4), 26);
  m[30] = 0;
  assert.equal(readEchoReply(m, 10, n, src, 0x1234), 12345.5);
  assert.equal(readEchoReply(m, 10, n, src, 0x1235), -1, 'another client id');
  assert.equal(readEchoReply(m, 10, n, dst, 0x1234), -1, 'addressed to someone else');
  assert.equal(readEchoReply(m, 10, 20, src, 0x1234), -1, 'truncated');
});

test('the live line shows the connect phase rate, which does not fall once everyone is in', () => {
  assert.equal(progressLine(2000, 200, 200, 100, 0), '[2.0s] connected 100/200  failed 0  in progress 100  50.0 conn/s');
  assert.equal(progressLine(10_000, 200, 200, 198, 2, 4000), '[10.0s] connected 198/200  failed 2  in progress 0  49.5 conn/s');
});
