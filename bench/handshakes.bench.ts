// Handshakes: `shardvpn load` starts N simulated clients from a client namespace against
// shardvpn (workers 1 and 2) and a stock openvpn 2.6 server, all in the same run, and compares
// connects/s, time until all connected, handshake latency, failures and server RSS per client.
// The load generator shares the 2 cores with the server, so read the ratios, not the rates.
// BENCH_SERVERS="w1,w2,openvpn" (default; a subset runs only those), BENCH_BEFORE_BIN (another
// checkout's bin/shardvpn.js, run too), BENCH_KEYS="ecdsa,rsa" (default ecdsa), BENCH_SERVER_NODE_ARGS
// (profiling; see load-lab.ts), BENCH_CLIENTS="100,1000,5000" (default), BENCH_RATE (connections started per second, default
// 0: all at once), BENCH_THREADS (load generator threads, default 2), BENCH_CAP_S (longest
// connect phase of one run, default 90), BENCH_WRAP ("tls-crypt", the default, "tls-auth" or "none"),
// BENCH_WARMUP (clients connected to each fresh server first and left connected, so that the
// run measured sees a server whose JIT has compiled the handshake path: V8's compiling is a
// fixed cost per process, about 0.5 ms per handshake when spread over the first 1,000; default 0).
// The figures go to bench/results/handshakes.json.
import os from 'node:os';

import { VpnLab } from '../lab/vpn-lab';
import { formatRate, printTable } from './lib';
import { point, SeriesSet, writeRecord } from './record';
import {
  canRunLab,
  envWrap,
  envCounts,
  envNumber,
  kibPerClient,
  loadAgainst,
  ms,
  ratio,
  envKeyTypes,
  serverLabel,
  startServer,
  withBefore,
  writeProfile,
  type LoadOutcome,
  type ServerKind,
} from './load-lab';

const ALL_SERVERS: ServerKind[] = [{ kind: 'shardvpn', workers: 1 }, { kind: 'shardvpn', workers: 2 }, { kind: 'openvpn' }];

const shortLabel = (s: ServerKind): string =>
  s.kind === 'shardvpn' ? `shardvpn${s.bin !== undefined ? ' before' : ''} w${s.workers}` : 'openvpn 2.6';
const shortName = (s: ServerKind): string => (s.kind === 'shardvpn' ? `w${s.workers}` : 'openvpn');

/** BENCH_SERVERS="w1,openvpn" runs only those (openvpn last, the ratios' base, when present). */
function chosenServers(): ServerKind[] {
  const text = process.env.BENCH_SERVERS;
  if (text === undefined || text.trim() === '') return ALL_SERVERS;
  const names = text.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !ALL_SERVERS.some((s) => shortName(s) === n));
  if (unknown.length > 0) throw new Error(`BENCH_SERVERS: unknown ${unknown.join(', ')} (give w1, w2, openvpn)`);
  return ALL_SERVERS.filter((s) => names.includes(shortName(s)));
}

function failures(o: LoadOutcome): string {
  const r = o.report;
  const parts = Object.entries(r.failures).map(([k, v]) => `${k} ${v}`);
  if (r.unfinished > 0) parts.push(`unfinished ${r.unfinished}`);
  return parts.length === 0 ? '0' : parts.join(', ');
}

/** Shard counts the scaling model projects to. */
const MODEL_SHARDS = [1, 2, 4, 8, 16];

/**
 * How the handshake rate would scale with cores, from this run's CPU split: a handshake costs
 * the main thread `main` ms (admission, pool, routes: serial) and the other threads `off` ms
 * (the shard's TLS and session work, spread over the shards). With N shards on N + 1 free cores
 * (the load generator elsewhere) the rate is min(N x 1000 / off, 1000 / main); openvpn runs every
 * handshake on its one thread, so its ceiling is 1000 / its ms whatever the cores. A projection
 * from a 2-core machine, to be checked where more cores are available.
 */
function printScalingModel(clients: number, servers: readonly ServerKind[], results: readonly LoadOutcome[]): void {
  const perConn = (o: LoadOutcome, cpuS: number): number => (o.report.connected > 0 ? (cpuS * 1000) / o.report.connected : NaN);
  const openvpn = results.find((_, i) => servers[i]!.kind === 'openvpn');
  const ovpnCeiling = openvpn === undefined ? NaN : 1000 / perConn(openvpn, openvpn.connectCpuS);
  const rows: string[][] = [];
  for (const [i, o] of results.entries()) {
    if (servers[i]!.kind !== 'shardvpn') continue;
    const main = perConn(o, o.connectMainCpuS);
    const off = perConn(o, o.connectCpuS - o.connectMainCpuS);
    for (const shards of MODEL_SHARDS) {
      const rate = Math.min((shards * 1000) / off, 1000 / main);
      rows.push([
        shortLabel(servers[i]!),
        main.toFixed(2),
        off.toFixed(2),
        String(shards),
        Number.isFinite(rate) ? rate.toFixed(0) : '-',
        (shards * 1000) / off < 1000 / main ? 'shards' : 'main thread',
        Number.isFinite(ovpnCeiling) ? ovpnCeiling.toFixed(0) : '-',
        ratio(rate, ovpnCeiling),
      ]);
    }
  }
  if (rows.length === 0) return;
  printTable(
    `Scaling model from this run (${clients} clients): handshakes/s with N shards on N + 1 free cores`,
    ['server', 'main ms/conn', 'other threads ms/conn', 'shards', 'projected conn/s', 'bound by', 'openvpn ceiling conn/s', 'vs openvpn'],
    rows,
  );
}

async function main(): Promise<void> {
  if (!canRunLab()) {
    console.log('handshakes: skipped (needs root and /dev/net/tun for the network namespaces)');
    return;
  }
  const counts = envCounts('BENCH_CLIENTS', [100, 1000, 5000]);
  const rate = envNumber('BENCH_RATE', 0);
  const threads = envNumber('BENCH_THREADS', 2);
  const capS = envNumber('BENCH_CAP_S', 90);
  const warmup = envNumber('BENCH_WARMUP', 0);
  const wrap = envWrap();
  const SERVERS = withBefore(chosenServers());
  const began = Date.now();
  const keyTypes = envKeyTypes();
  const rates = new SeriesSet();
  const rss = new SeriesSet();
  const p50 = new SeriesSet();
  const cpu = new SeriesSet();
  for (const keyType of keyTypes) {
    const lab = VpnLab.create(1, '', keyType);
    let port = 1300;
    try {
      for (const clients of counts) {
        const results: LoadOutcome[] = [];
        for (const server of SERVERS) {
          // A fresh server per run: its idle RSS is the baseline and no earlier client lingers.
          const running = await startServer(lab, server, ++port);
          try {
            if (warmup > 0) await loadAgainst(lab, running, writeProfile(lab, port), { clients: warmup, rate, threads, capS, settleS: 0 });
            results.push(await loadAgainst(lab, running, writeProfile(lab, port), { clients, rate, threads, capS, settleS: 2 }));
          } finally {
            await running.proc.stop('SIGTERM', 10_000);
          }
        }
        for (const [i, o] of results.entries()) {
          const name = `${serverLabel(SERVERS[i]!)}${keyTypes.length > 1 ? `, ${keyType}` : ''}`;
          const r = o.report;
          // One run per count: a server that connected nobody has no rate (null in the record).
          rates.add(name, point(clients, [r.connectsPerSecond ?? NaN]));
          rss.add(name, point(clients, [kibPerClient(o)]));
          p50.add(name, point(clients, [r.handshakeMs.p50 ?? NaN]));
          cpu.add(name, point(clients, [r.connected > 0 ? (o.connectCpuS * 1000) / r.connected : NaN]));
        }
        const base = results[results.length - 1]!;
        printTable(
          `Handshakes: ${clients} clients, ${keyType === 'rsa' ? 'RSA-2048' : 'ECDSA P-256'} certificates, ${wrap === 'none' ? 'no tls-crypt' : wrap}${warmup > 0 ? `, after ${warmup} warm-up clients` : ''}, ${rate === 0 ? 'all started at once' : `started at ${rate}/s`}, load generator ${threads} threads in a client namespace (${os.availableParallelism()} cores shared)`,
          [
            'server',
            'connected',
            'conn/s',
            'all conn. after',
            'hs p50/p95/p99/max ms',
            'failed',
            'srv CPU ms/conn',
            'loadgen CPU s',
            'RSS idle',
            'RSS/client',
            'conn/s vs ovpn',
            'RSS/client vs ovpn',
          ],
          results.map((o, i) => {
            const r = o.report;
            return [
              shortLabel(SERVERS[i]!),
              `${r.connected}/${r.requested}${o.capped ? ' (cap)' : ''}`,
              r.connectsPerSecond === null ? '-' : formatRate(r.connectsPerSecond),
              r.allConnectedS === null ? '-' : `${r.allConnectedS.toFixed(2)} s`,
              `${ms(r.handshakeMs.p50)}/${ms(r.handshakeMs.p95)}/${ms(r.handshakeMs.p99)}/${ms(r.handshakeMs.max)}`,
              failures(o),
              r.connected > 0 ? ((o.connectCpuS * 1000) / r.connected).toFixed(2) : '-',
              o.loadCpuS.toFixed(1),
              `${(o.idleRssKiB / 1024).toFixed(1)} MiB`,
              `${kibPerClient(o).toFixed(1)} KiB`,
              ratio(r.connectsPerSecond ?? NaN, base.report.connectsPerSecond ?? NaN),
              ratio(kibPerClient(o), kibPerClient(base)),
            ];
          }),
        );
        printScalingModel(clients, SERVERS, results);
        for (const [i, o] of results.entries()) {
          for (const [reason, detail] of Object.entries(o.report.failureDetails))
            console.log(`${shortLabel(SERVERS[i]!)}: ${reason}: ${detail}`);
          if (o.capped) console.log(`${shortLabel(SERVERS[i]!)}: connect phase cut at ${capS} s`);
        }
      }
    } finally {
      await lab.cleanup();
    }
  }
  console.log(`\nhandshakes bench took ${((Date.now() - began) / 1000).toFixed(0)} s`);
  const xTitle = `clients started ${rate === 0 ? 'at once' : `at ${rate}/s`}`;
  writeRecord({
    bench: 'handshakes',
    sizes: {
      BENCH_CLIENTS: counts.join(','),
      BENCH_RATE: rate,
      BENCH_THREADS: threads,
      BENCH_CAP_S: capS,
      BENCH_KEYS: keyTypes.join(','),
      BENCH_WRAP: wrap,
      BENCH_WARMUP: warmup,
    },
    metrics: [
      { id: 'connects_per_s', title: 'Handshakes completed per second', unit: 'connections/s', xTitle, series: rates.toArray() },
      { id: 'rss_per_client_kib', title: 'Server memory per connected client', unit: 'KiB', xTitle, series: rss.toArray() },
      { id: 'handshake_p50_ms', title: 'Handshake time, median', unit: 'ms', xTitle, series: p50.toArray() },
      { id: 'server_cpu_ms_per_conn', title: 'Server CPU per handshake', unit: 'ms', xTitle, series: cpu.toArray() },
    ],
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
