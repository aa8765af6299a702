// `shardvpn load --bandwidth`: bulk echo traffic, batched through the addon, from a client
// namespace against our server and against a stock openvpn 2.6 server; the JSON report's
// figures must hold together. Plus the new flags' parsing and the refusal of TCP profiles.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { BANDWIDTH_SIZE, DEFAULT_WINDOW, MAX_WINDOW, parseLoadArgs, type LoadOptions } from '../src/main/load/options';
import { progressLine, type LoadReport } from '../src/main/load/report';
import { ANSWER_IN_FLIGHT, ANSWER_LATE, ANSWER_NONE, EchoWindow } from '../src/workers/load/echo-window';
import { SERVER_UNDERLAY, VpnLab, type LabProcess } from '../lab/vpn-lab';

const RUN_LOAD = path.join(__dirname, 'fixtures', 'run-load.js');
const canLab = process.getuid?.() === 0 && existsSync('/dev/net/tun') && spawnSync('openvpn', ['--version']).status !== null;

let lab: VpnLab;
before(() => {
  if (canLab) lab = VpnLab.create(1, 'bw');
});
after(async () => {
  if (canLab) await lab.cleanup();
});

function profile(name: string, port: number, proto = 'udp'): string {
  return lab.file(
    name,
    `client\ndev tun\nproto ${proto}\nremote ${SERVER_UNDERLAY} ${port}\nnobind\n${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`,
  );
}

async function runLoad(args: string[], timeoutMs: number): Promise<{ code: number | null; report: LoadReport | null; proc: LabProcess }> {
  const json = path.join(lab.dir, `bw-report-${Date.now()}.json`);
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
  return { code, report: existsSync(json) ? (JSON.parse(readFileSync(json, 'utf8')) as LoadReport) : null, proc };
}

/** What every bulk run must show: traffic both ways for every client, and figures that add up. */
function checkBandwidthReport(who: string, report: LoadReport, clients: number, log: string): void {
  assert.equal(report.connected, clients, `${who}: ${JSON.stringify(report.failureDetails)}`);
  assert.equal(report.failed, 0);
  const t = report.traffic;
  assert.ok(t !== null, `${who}: no traffic section`);
  const b = t.bandwidth;
  assert.ok(b !== null, `${who}: no bandwidth section`);
  assert.equal(t.size, BANDWIDTH_SIZE);
  assert.equal(b.window, 16);
  assert.ok(t.echoSent > 0 && t.echoReceived > 0, `${who}: sent ${t.echoSent}, received ${t.echoReceived}`);
  assert.ok(t.echoReceived <= t.echoSent, `${who}: received ${t.echoReceived} > sent ${t.echoSent}`);
  assert.equal(t.decryptErrors, 0);
  assert.equal(b.bytesSent, t.echoSent * BANDWIDTH_SIZE);
  assert.equal(b.bytesReceived, t.echoReceived * BANDWIDTH_SIZE);
  assert.ok(b.bytesSent > 0 && b.bytesReceived > 0);
  // Gbit/s and packets/s are bytes and packets over the same traffic time.
  const near = (a: number, e: number, what: string): void =>
    assert.ok(Math.abs(a - e) <= Math.max(1e-4, e * 0.01), `${who}: ${what} ${a} vs ${e}`);
  assert.ok(b.seconds > 0.5, `${who}: traffic lasted ${b.seconds} s`);
  near(b.sentGbps, (b.bytesSent * 8) / b.seconds / 1e9, 'sent Gbit/s');
  near(b.receivedGbps, (b.bytesReceived * 8) / b.seconds / 1e9, 'received Gbit/s');
  near(b.totalGbps, ((b.bytesSent + b.bytesReceived) * 8) / b.seconds / 1e9, 'total Gbit/s');
  near(b.sentPps, t.echoSent / b.seconds, 'sent pps');
  near(b.receivedPps, t.echoReceived / b.seconds, 'received pps');
  assert.ok(t.loss !== null && Math.abs(t.loss - (1 - t.echoReceived / t.echoSent)) < 1e-3, `${who}: loss ${t.loss}`);
  assert.ok(t.rttMs.p50 !== null && t.rttMs.p99 !== null && t.rttMs.p50 > 0 && t.rttMs.p50 <= t.rttMs.p99);
  assert.match(log, /bandwidth out \/ in\s+[\d.]+ \/ [\d.]+ Gbit\/s/);
  assert.match(log, /packets\/s out \/ in\s+\d+ \/ \d+/);
}

test(
  '--bandwidth: 4 clients push bulk echo traffic through shardvpn (2 shards) and through stock openvpn 2.6; replies come back to every client',
  { skip: !canLab, timeout: 60_000 },
  async () => {
    for (const ours of [true, false]) {
      const port = ours ? 1561 : 1562;
      const net = ours ? '10.171.0.0' : '10.172.0.0';
      const status = path.join(lab.dir, `bw-status-${port}.txt`);
      const server = ours
        ? await lab.startShardvpn(
            `port ${port}\ndev tun\nkeepalive 10 60\ntls-crypt ${lab.keys.tlsCrypt}\n${lab.serverTlsLines()}topology subnet\nserver ${net} 255.255.255.0\nworkers 2\nduplicate-cn\nstatus ${status} 1\nverb 3\n`,
            'bw-server.conf',
          )
        : lab.spawn(
            lab.server,
            'openvpn',
            lab.stockServerArgs(`${net} 255.255.255.0`, port, ['--status', status, '1', '--verb', '3']),
            'openvpn server',
          );
      try {
        if (!ours) await server.waitFor(/Initialization Sequence Completed/, 15_000);
        const who = ours ? 'shardvpn' : 'openvpn';
        const { code, report, proc } = await runLoad(
          [
            '--profile',
            profile(`bw-${port}.ovpn`, port),
            '--clients',
            '4',
            '--threads',
            '1',
            '--duration',
            '4',
            '--bandwidth',
            '--window',
            '16',
          ],
          40_000,
        );
        assert.equal(code, 0, proc.log().slice(-3000));
        assert.ok(report !== null, proc.log().slice(-3000));
        checkBandwidthReport(who, report, 4, proc.log());
        // Every client got replies: each one's traffic shows in the server's status file, both ways.
        const rows = readFileSync(status, 'utf8')
          .split('\n')
          .filter((l) => /^(CLIENT_LIST,)?client[^,]*,10\.150\.0\.10:\d+,/.test(l));
        assert.equal(rows.length, 4, `${who}: status rows:\n${readFileSync(status, 'utf8')}`);
        for (const row of rows) {
          const f = row.split(',');
          const off = f[0] === 'CLIENT_LIST' ? 1 : 0;
          const received = Number(f[off + 2]);
          const sent = Number(f[off + 3]);
          assert.ok(received > 100 * BANDWIDTH_SIZE && sent > 100 * BANDWIDTH_SIZE, `${who}: ${row}`);
        }
      } finally {
        await server.stop('SIGTERM', 5000);
      }
    }
  },
);

test('--bandwidth with a TCP profile is refused in one line, exit status 1', { skip: !canLab, timeout: 30_000 }, async () => {
  const { code, report, proc } = await runLoad(
    ['--profile', profile('bw-tcp.ovpn', 1563, 'tcp-client'), '--bandwidth', '--duration', '1'],
    20_000,
  );
  assert.equal(code, 1);
  assert.equal(report, null);
  assert.match(proc.log(), /--bandwidth needs a UDP profile .* proto tcp/);
});

function parsed(argv: string[]): LoadOptions {
  const r = parseLoadArgs(['--profile', 'p.ovpn', ...argv]);
  assert.ok(r.ok && 'options' in r, JSON.stringify(r));
  return r.options;
}

function refused(argv: string[]): string {
  const r = parseLoadArgs(['--profile', 'p.ovpn', ...argv]);
  assert.ok(!r.ok, `accepted: ${argv.join(' ')}`);
  return r.error;
}

test('--bandwidth and --window parse: defaults, ranges, and the flags they exclude', () => {
  const plain = parsed([]);
  assert.equal(plain.bandwidth, false);
  assert.equal(plain.size, 84);
  const bulk = parsed(['--bandwidth']);
  assert.equal(bulk.bandwidth, true);
  assert.equal(bulk.window, DEFAULT_WINDOW);
  assert.equal(bulk.size, BANDWIDTH_SIZE);
  assert.equal(parsed(['--bandwidth', '--window', '8', '--size', '500']).window, 8);
  assert.equal(parsed(['--bandwidth', '--size', '500']).size, 500);
  assert.match(refused(['--bandwidth', '--window', '0']), /--window: 0 is out of range \(1\.\.512\)/);
  assert.match(refused(['--bandwidth', '--window', '-4']), /--window: -4 is out of range/);
  assert.match(refused(['--bandwidth', `--window=${MAX_WINDOW + 1}`]), /out of range/);
  assert.match(refused(['--bandwidth', '--window', 'lots']), /--window: 'lots' is not a number/);
  assert.match(refused(['--window', '8']), /--window applies only with --bandwidth/);
  assert.match(refused(['--bandwidth', '--pps', '10']), /--pps and --bandwidth exclude each other/);
});

test('the echo window: at most `window` in flight, replies free places once, lost requests expire, late replies count, unsent ones give theirs back', () => {
  const w = new EchoWindow(4, 1000, 50);
  assert.equal(w.timeoutMs, 1000, 'no RTT measured yet');
  assert.equal(w.room(), 4);
  const seqs = [w.take(0), w.take(0), w.take(10), w.take(10)];
  assert.deepEqual(seqs, [0, 1, 2, 3]);
  assert.equal(w.room(), 0);
  assert.equal(w.answer(1, 0, 20), ANSWER_IN_FLIGHT);
  assert.equal(w.answer(1, 0, 20), ANSWER_NONE, 'a duplicate reply');
  assert.equal(w.answer(2, 999, 20), ANSWER_NONE, 'a send time that is not the request');
  assert.equal(w.room(), 1);
  // One 20 ms sample: srtt 20, rttvar 10, so 20 + 4 * 10.
  assert.equal(w.timeoutMs, 60);
  assert.equal(w.expire(59), 0);
  assert.equal(w.expire(61), 1, 'seq 0 is given up; 2 and 3 are younger');
  assert.equal(w.inFlight, 2);
  assert.equal(w.answer(0, 0, 62), ANSWER_LATE, 'a reply after its request was given up');
  assert.equal(w.answer(0, 0, 63), ANSWER_NONE, 'and only once');
  assert.equal(w.inFlight, 2);
  assert.equal(w.take(65), 4);
  assert.equal(w.take(65), 5);
  w.untake(1);
  assert.equal(w.inFlight, 3);
  assert.equal(w.take(66), 5, 'the place given back is taken again');
  assert.equal(w.expire(5000), 4);
  assert.equal(w.expired, 5);
  assert.equal(w.inFlight, 0);
  // Fast replies pull the timeout down to its floor, never below.
  for (let i = 0; i < 50; i++) w.answer(w.take(6000 + i), 6000 + i, 6000.5 + i);
  assert.equal(w.timeoutMs, 50);
  // Sequence numbers wrap at 16 bits, as ICMP's do.
  const big = new EchoWindow(1);
  for (let i = 0; i < 70_000; i++) assert.equal(big.answer(big.take(i), i, i + 1), ANSWER_IN_FLIGHT);
  assert.equal(big.take(0), 70_000 & 0xffff);
});

test('the live line shows the bytes so far with --bandwidth', () => {
  assert.equal(
    progressLine(3000, 4, 4, 4, 0, 1000, { sent: 123_456_789, received: 120_000_000 }),
    '[3.0s] connected 4/4  failed 0  in progress 0  4.0 conn/s  traffic out 123.5 / in 120.0 MB',
  );
});
