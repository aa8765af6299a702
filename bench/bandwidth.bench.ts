// Bandwidth: `shardvpn load --bandwidth` runs N simulated clients from a client namespace, each
// keeping a window of 1400-byte ICMP echo requests in flight through the tunnel (the server's
// kernel answers them, so the server forwards both ways), against shardvpn (workers 2) and a
// stock openvpn 2.6 server, alternating, in the same run. Reported: Gbit/s and packets/s
// forwarded (inner IP; a reply received counts twice, request in and reply out, a dropped request
// not at all), loss, RTT and the server's CPU seconds per GB forwarded, from
// /proc/PID/stat (all threads) between two progress lines of the load generator once every client
// is connected, so the handshakes are left out. The load generator shares the machine's cores
// with the server: read the ratios, not the rates.
// BENCH_BW_CLIENTS (default 200), BENCH_BW_SECONDS (traffic seconds per run, default 10),
// BENCH_BW_RUNS (default 3, medians), BENCH_BW_WINDOW (requests in flight per client, default 64),
// BENCH_THREADS (load generator threads, default 2), BENCH_CAP_S (longest connect phase, default
// 60). Figures go to bench/results/bandwidth.json.
// BENCH_TUN_QUEUES=compare runs shardvpn twice, `tun-queues single` (the main thread reads the one
// TUN queue) and `tun-queues shard` (a queue per shard), next to openvpn, and reports for each
// shardvpn run the packets read per TUN queue and the shards' crossings to the main thread.
// BENCH_BW_SYSCALLS=1 counts the server's system calls (perf stat, all threads) over the measured
// interval, per GB forwarded.
import os from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import type { LoadReport } from '../src/main/load/report';
import { VpnLab } from '../lab/vpn-lab';
import { median, printTable } from './lib';
import { countSyscalls } from './perf-syscalls';
import {
  canRunLab,
  cpuSeconds,
  tunQueueStats,
  type TunQueueStats,
  envNumber,
  ratio,
  serverLabel,
  sleep,
  startServer,
  writeProfile,
  type RunningServer,
  type ServerKind,
} from './load-lab';
import { point, SeriesSet, writeRecord } from './record';

const BIN = path.join(__dirname, '..', '..', 'bin', 'shardvpn.js');
const SERVERS: ServerKind[] =
  process.env.BENCH_TUN_QUEUES === 'compare'
    ? [{ kind: 'shardvpn', workers: 2, tunQueues: 'single' }, { kind: 'shardvpn', workers: 2, tunQueues: 'shard' }, { kind: 'openvpn' }]
    : [{ kind: 'shardvpn', workers: 2 }, { kind: 'openvpn' }];
const SYSCALLS = process.env.BENCH_BW_SYSCALLS === '1';

interface BandwidthRun {
  report: LoadReport;
  loss: number;
  rttP50: number;
  rttP99: number;
  /** Inner IP traffic forwarded both ways (2 x the replies received) and its packets per second, between the two snapshots. */
  totalGbps: number;
  pps: number;
  /** Server CPU seconds per GB of inner traffic (both ways), all clients connected. */
  cpuPerGB: number;
  /** Server CPU share over the measured interval (1 = one core busy). */
  cores: number;
  /** Server system calls per GB forwarded (BENCH_BW_SYSCALLS=1), NaN otherwise. */
  syscallsPerGB: number;
  /** shardvpn: packets read from the main thread's queue and the shards' own, and the shards' crossings, over the whole run. */
  queues: TunQueueStats | null;
  /** Packets the kernel dropped on their way out of the server's TUN device (its queues full), over the whole run. */
  tunTxDropped: number;
}

/** tx_dropped of the server's TUN device (the lab's server namespace has one, tun0), NaN if unreadable. */
function tunDrops(lab: VpnLab): number {
  try {
    return Number(lab.server.exec('cat', ['/sys/class/net/tun0/statistics/tx_dropped']).trim());
  } catch {
    return NaN;
  }
}

/** A progress line: elapsed seconds, connected, failed and inner MB out and in so far. */
const LINE = /\[(\d+\.\d+)s\] connected (\d+)\/\d+\s+failed (\d+).*traffic out ([\d.]+) \/ in ([\d.]+) MB/g;

interface Snapshot {
  /** Inner MB of echo replies received so far. */
  mb: number;
  cpuS: number;
  at: number;
}

async function bandwidthAgainst(
  lab: VpnLab,
  server: RunningServer,
  profile: string,
  plan: { clients: number; seconds: number; window: number; threads: number; connectCapS: number },
): Promise<BandwidthRun> {
  await sleep(500);
  const json = path.join(lab.dir, `bw-report-${server.pid}.json`);
  // The run ends when we say so (SIGTERM, once `seconds` were measured); --duration is a safety net.
  const duration = plan.connectCapS + plan.seconds + 30;
  const args = ['load', '--profile', profile, '--clients', String(plan.clients), '--threads', String(plan.threads)];
  args.push(
    '--duration',
    String(duration),
    '--handshake-timeout',
    String(plan.connectCapS),
    '--bandwidth',
    '--window',
    String(plan.window),
  );
  const load = lab.spawn(lab.clients[0]!, process.execPath, [BIN, ...args, '--json', json], 'shardvpn load');
  // CPU read as each new progress line appears (they come once a second): the first snapshot once
  // every client connected or failed, the last one `seconds` later; bytes from the same two lines.
  let seen = 0;
  let first: Snapshot | null = null;
  let last: Snapshot | null = null;
  let perf: ReturnType<typeof countSyscalls> | null = null;
  let syscalls = NaN;
  const deadline = Date.now() + (plan.connectCapS + plan.seconds + 10) * 1000;
  try {
    while (last === null) {
      if (load.exited()) throw new Error(`load generator exited early:\n${load.log().slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`clients not all connected in ${plan.connectCapS} s:\n${load.log().slice(-3000)}`);
      const lines = [...load.log().matchAll(LINE)];
      if (lines.length > seen) {
        seen = lines.length;
        const m = lines.at(-1)!;
        if (Number(m[2]) + Number(m[3]) >= plan.clients) {
          const s = { mb: Number(m[5]), cpuS: cpuSeconds(server.pid), at: Date.now() };
          if (first === null) {
            first = s;
            if (SYSCALLS) perf = countSyscalls(server.pid);
          } else if (s.at - first.at >= plan.seconds * 1000 - 500) {
            last = s;
            if (perf !== null) syscalls = (await perf.stop())[0]!;
          }
        }
      }
      await sleep(20);
    }
    const queues = server.label.startsWith('shardvpn') ? await tunQueueStats(server.proc, server.pid) : null;
    const tunTxDropped = tunDrops(lab);
    const code = await load.stop('SIGTERM', 60_000);
    if (!existsSync(json)) throw new Error(`load generator wrote no report (exit ${code}):\n${load.log().slice(-3000)}`);
    const report = JSON.parse(readFileSync(json, 'utf8')) as LoadReport;
    const t = report.traffic;
    if (t === null || t.bandwidth === null) throw new Error('no bandwidth figures in the report');
    // Narrowed through a cast: the loop's assignments are invisible to the checker here.
    const a = first as Snapshot;
    // Forwarded: each reply that came back crossed the server twice (request in, reply out);
    // requests the server dropped are not counted, so an overloaded server gains nothing by them.
    const gb = (2 * (last.mb - a.mb)) / 1000;
    const s = (last.at - a.at) / 1000;
    const cpuS = last.cpuS - a.cpuS;
    return {
      report,
      totalGbps: (gb * 8) / s,
      pps: (gb * 1e9) / t.size / s,
      loss: t.loss ?? NaN,
      rttP50: t.rttMs.p50 ?? NaN,
      rttP99: t.rttMs.p99 ?? NaN,
      cpuPerGB: gb > 0 ? cpuS / gb : NaN,
      cores: cpuS / s,
      syscallsPerGB: gb > 0 ? syscalls / gb : NaN,
      queues,
      tunTxDropped,
    };
  } finally {
    if (!load.exited()) await load.stop('SIGKILL', 5000);
  }
}

const fixed = (v: number, digits: number): string => (Number.isFinite(v) ? v.toFixed(digits) : '-');
const verdict = (met: boolean): string => (met ? 'met' : 'missed');

async function main(): Promise<void> {
  if (!canRunLab()) {
    console.log('bandwidth: skipped (needs root and /dev/net/tun for the network namespaces)');
    return;
  }
  const clients = envNumber('BENCH_BW_CLIENTS', 200);
  const seconds = envNumber('BENCH_BW_SECONDS', 10);
  const runs = envNumber('BENCH_BW_RUNS', 3);
  const window = envNumber('BENCH_BW_WINDOW', 64);
  const threads = envNumber('BENCH_THREADS', 2);
  const connectCapS = envNumber('BENCH_CAP_S', 60);
  const began = Date.now();
  const lab = VpnLab.create(1, 'bwb');
  let port = 1600;
  const byServer: BandwidthRun[][] = SERVERS.map(() => []);
  try {
    for (let r = 0; r < runs; r++) {
      // Alternating, a fresh server each time: both see the same noise from the shared machine.
      for (const [i, server] of SERVERS.entries()) {
        const running = await startServer(lab, server, ++port);
        try {
          const run = await bandwidthAgainst(lab, running, writeProfile(lab, port), { clients, seconds, window, threads, connectCapS });
          byServer[i]!.push(run);
          const rep = run.report;
          console.log(
            `run ${r + 1} ${serverLabel(server)}: ${rep.connected}/${rep.requested} connected, ${fixed(run.totalGbps, 3)} Gbit/s, ${Math.round(run.pps)} pps, loss ${fixed(run.loss * 100, 2)} %, CPU ${fixed(run.cpuPerGB, 2)} s/GB (${fixed(run.cores, 2)} cores)` +
              (SYSCALLS ? `, ${fixed(run.syscallsPerGB, 0)} syscalls/GB` : '') +
              `, TUN tx drops ${run.tunTxDropped}` +
              (run.queues !== null
                ? `, TUN reads main ${run.queues.mainReads} shards ${run.queues.shardReads}, crossings ${run.queues.crossings}, drops ${JSON.stringify(run.queues.drops)}`
                : ''),
          );
        } finally {
          await running.proc.stop('SIGTERM', 10_000);
        }
      }
    }
  } finally {
    await lab.cleanup();
  }
  const med = (i: number, f: (r: BandwidthRun) => number): number => median(byServer[i]!.map(f).filter((v) => Number.isFinite(v)));
  const ours = 0;
  const base = SERVERS.length - 1;
  const fwd = med(ours, (r) => r.totalGbps) / med(base, (r) => r.totalGbps);
  const cpu = med(ours, (r) => r.cpuPerGB) / med(base, (r) => r.cpuPerGB);
  printTable(
    `Bandwidth: ${clients} clients, ${window} echo requests of 1400 bytes in flight each, ${seconds} s, medians of ${runs} runs, load generator ${threads} threads in a client namespace (${os.availableParallelism()} cores shared)`,
    [
      'server',
      'Gbit/s forwarded',
      'packets/s',
      'loss',
      'rtt p50/p99 ms',
      'server CPU s/GB',
      'server cores busy',
      'Gbit/s vs ovpn',
      'CPU/GB vs ovpn',
    ],
    SERVERS.map((s, i) => [
      serverLabel(s),
      fixed(
        med(i, (r) => r.totalGbps),
        3,
      ),
      fixed(
        med(i, (r) => r.pps),
        0,
      ),
      `${fixed(med(i, (r) => r.loss) * 100, 2)} %`,
      `${fixed(
        med(i, (r) => r.rttP50),
        1,
      )}/${fixed(
        med(i, (r) => r.rttP99),
        1,
      )}`,
      fixed(
        med(i, (r) => r.cpuPerGB),
        2,
      ),
      fixed(
        med(i, (r) => r.cores),
        2,
      ),
      ratio(
        med(i, (r) => r.totalGbps),
        med(base, (r) => r.totalGbps),
      ),
      ratio(
        med(i, (r) => r.cpuPerGB),
        med(base, (r) => r.cpuPerGB),
      ),
    ]),
  );
  if (SYSCALLS)
    for (const [i, s] of SERVERS.entries())
      console.log(
        `${serverLabel(s)}: server system calls per GB forwarded ${fixed(
          med(i, (r) => r.syscallsPerGB),
          0,
        )}`,
      );
  for (const [i, s] of SERVERS.entries()) {
    if (s.kind !== 'shardvpn') continue;
    const share = (r: BandwidthRun): number =>
      r.queues === null ? NaN : r.queues.crossings / Math.max(1, r.queues.mainReads + r.queues.shardReads);
    const mainShare = (r: BandwidthRun): number =>
      r.queues === null ? NaN : r.queues.mainReads / Math.max(1, r.queues.mainReads + r.queues.shardReads);
    console.log(
      `${serverLabel(s)}: TUN packets read by the main thread ${fixed(med(i, mainShare) * 100, 1)} %, crossings ${fixed(med(i, share) * 100, 2)} % of TUN packets read (medians)`,
    );
  }
  if (process.env.BENCH_TUN_QUEUES === 'compare')
    console.log(
      `tun-queues shard vs single: forwarding ${ratio(
        med(1, (r) => r.totalGbps),
        med(0, (r) => r.totalGbps),
      )}, CPU per GB ${ratio(
        med(1, (r) => r.cpuPerGB),
        med(0, (r) => r.cpuPerGB),
      )}`,
    );
  console.log(`\ntarget forwarding >= 2x openvpn: ${fixed(fwd, 2)}x, ${verdict(fwd >= 2)}`);
  console.log(`target CPU per GB <= 0.5x openvpn: ${fixed(cpu, 2)}x, ${verdict(cpu <= 0.5)}`);
  for (const [i, s] of SERVERS.entries())
    for (const run of byServer[i]!)
      for (const [reason, detail] of Object.entries(run.report.failureDetails)) console.log(`${serverLabel(s)}: ${reason}: ${detail}`);
  console.log(`\nbandwidth bench took ${((Date.now() - began) / 1000).toFixed(0)} s`);
  const gbps = new SeriesSet();
  const cpuSet = new SeriesSet();
  const x = `${clients} clients`;
  for (const [i, s] of SERVERS.entries()) {
    gbps.add(
      serverLabel(s),
      point(
        x,
        byServer[i]!.map((r) => r.totalGbps),
      ),
    );
    cpuSet.add(
      serverLabel(s),
      point(
        x,
        byServer[i]!.map((r) => r.cpuPerGB),
      ),
    );
  }
  writeRecord({
    bench: 'bandwidth',
    sizes: { BENCH_BW_CLIENTS: clients, BENCH_BW_SECONDS: seconds, BENCH_BW_RUNS: runs, BENCH_BW_WINDOW: window, BENCH_THREADS: threads },
    metrics: [
      {
        id: 'total_gbps',
        title: 'Bulk echo traffic forwarded, both ways',
        unit: 'Gbit/s',
        xTitle: 'simulated clients',
        series: gbps.toArray(),
      },
      {
        id: 'server_cpu_s_per_gb',
        title: 'Server CPU per GB forwarded',
        unit: 'CPU s/GB',
        xTitle: 'simulated clients',
        series: cpuSet.toArray(),
      },
    ],
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
