// Idle capacity: how many clients shardvpn (workers = cores) and a stock openvpn 2.6 server hold
// connected with keepalive 10 60 on this machine, in the same run. `shardvpn load` connects
// them from a client namespace (within a time cap), then, while they idle, the server's CPU is
// read from /proc/PID/stat over 10 s and its RSS from /proc/PID/status. The load generator runs
// on the same cores and keeps its clients' timers going, so its own CPU is shown too.
// BENCH_IDLE_CLIENTS (default 10000), BENCH_IDLE_RATE (connections started per second, default
// 150: about what both servers complete per second here while sharing the cores with the load
// generator; much faster and openvpn's queue passes the clients' 60 s hand-window, so the count
// measures the offered rate, not what the server can hold), BENCH_THREADS (load generator threads, default 2), BENCH_IDLE_CAP_S (longest connect
// phase, default 120), BENCH_REST_S (CPU window, default 10), BENCH_SETTLE_S (wait between the
// connect phase and the CPU window, default 5: a longer one leaves the connect phase's garbage
// collection out of the idle figure), BENCH_BEFORE_BIN (another checkout's
// bin/shardvpn.js, run too; see load-lab.ts), BENCH_IDLE_KEEPALIVE (default '10 60'),
// BENCH_IDLE_SERVERS (default shardvpn,openvpn). Past 20,000 clients the generator sends from one
// more source address per 20,000 (`shardvpn load --source`); past 65,534 the pool is a /14 and
// openvpn is left out: OpenVPN 2.6 refuses a pool of more than 65,536 addresses (IFCONFIG_POOL_MAX),
// so one openvpn server cannot hold that many clients. The figures go to bench/results/capacity.json.
import os from 'node:os';

import { VpnLab } from '../lab/vpn-lab';
import { printTable } from './lib';
import { point, SeriesSet, writeRecord } from './record';
import {
  canRunLab,
  cpuSeconds,
  envNumber,
  kibPerClient,
  loadAgainst,
  mib,
  ratio,
  rssKiB,
  serverLabel,
  sleep,
  startServer,
  withBefore,
  writeProfile,
  type LoadOutcome,
} from './load-lab';

interface Rest {
  serverCpuPercent: number;
  loadCpuPercent: number;
  rssKiB: number;
}

/** The most clients one `server` pool of OpenVPN 2.6 holds (a /16 less network and broadcast). */
const OPENVPN_MAX_POOL = 65_534;
/** Clients per source address of the generator: below the 28,232 ephemeral ports one address has. */
const SOURCE_PORTS = 20_000;

async function main(): Promise<void> {
  if (!canRunLab()) {
    console.log('capacity: skipped (needs root and /dev/net/tun for the network namespaces)');
    return;
  }
  const cores = os.availableParallelism();
  const clients = envNumber('BENCH_IDLE_CLIENTS', 10000);
  const rate = envNumber('BENCH_IDLE_RATE', 150);
  const threads = envNumber('BENCH_THREADS', 2);
  const capS = envNumber('BENCH_IDLE_CAP_S', 120);
  const restS = envNumber('BENCH_REST_S', 10);
  const settleS = envNumber('BENCH_SETTLE_S', 5);
  const keepalive = process.env.BENCH_IDLE_KEEPALIVE ?? '10 60';
  if (!/^\d+ \d+$/.test(keepalive)) throw new Error(`BENCH_IDLE_KEEPALIVE=${keepalive}: give two numbers, e.g. '60 300'`);
  const beyondOpenvpn = clients > OPENVPN_MAX_POOL;
  const wanted = (process.env.BENCH_IDLE_SERVERS ?? 'shardvpn,openvpn').split(',').map((s) => s.trim());
  if (beyondOpenvpn && wanted.includes('openvpn'))
    console.log(
      `capacity: openvpn left out: ${clients} clients need a pool larger than OpenVPN 2.6 accepts (${OPENVPN_MAX_POOL + 2} addresses)`,
    );
  const servers = withBefore(
    [{ kind: 'shardvpn', workers: cores } as const, { kind: 'openvpn' } as const].filter(
      (s) => wanted.includes(s.kind) && !(beyondOpenvpn && s.kind === 'openvpn'),
    ),
  );
  const settings = {
    keepalive,
    maxClients: Math.max(20000, clients),
    ...(beyondOpenvpn ? { pool: '10.160.0.0 255.252.0.0' } : {}),
  };
  const sources = clients > SOURCE_PORTS ? Math.ceil(clients / SOURCE_PORTS) : 0;
  const began = Date.now();
  const lab = VpnLab.create(1);
  const results: Array<{ outcome: LoadOutcome; rest: Rest }> = [];
  let port = 1400;
  try {
    for (const server of servers) {
      const running = await startServer(lab, server, ++port, settings);
      try {
        const held: { rest?: Rest } = {};
        const outcome = await loadAgainst(
          lab,
          running,
          writeProfile(lab, port),
          { clients, rate, threads, capS, settleS, sources },
          async (loadPids) => {
            // Every client pings every keepalive period and so does the server (10 s by default).
            const loadCpu = (): number => loadPids.reduce((n, pid) => n + cpuSeconds(pid), 0);
            const s0 = cpuSeconds(running.pid);
            const l0 = loadCpu();
            const t0 = performance.now();
            await sleep(restS * 1000);
            const seconds = (performance.now() - t0) / 1000;
            held.rest = {
              serverCpuPercent: ((cpuSeconds(running.pid) - s0) / seconds) * 100,
              loadCpuPercent: ((loadCpu() - l0) / seconds) * 100,
              rssKiB: rssKiB(running.pid),
            };
          },
        );
        if (held.rest === undefined) throw new Error('no measurement at rest');
        results.push({ outcome, rest: held.rest });
      } finally {
        await running.proc.stop('SIGTERM', 10_000);
      }
    }
    // The ratios are against openvpn, the last row; without it they are left blank.
    const base = servers.at(-1)?.kind === 'openvpn' ? results[results.length - 1]! : null;
    const perClient = (r: { outcome: LoadOutcome; rest: Rest }): number =>
      (r.rest.rssKiB - r.outcome.idleRssKiB) / Math.max(1, r.outcome.connectedAtPeak);
    printTable(
      `Idle capacity: ${clients} clients asked for, started at ${rate === 0 ? 'once' : `${rate}/s`}, connect phase capped at ${capS} s, keepalive ${keepalive}, CPU over ${restS} s at rest (${cores} cores shared with the load generator, ${threads} threads)`,
      [
        'server',
        'connected',
        'connect phase',
        'failed',
        'RSS idle',
        'RSS held',
        'RSS/client',
        'srv CPU at rest',
        'loadgen CPU',
        'connected vs ovpn',
        'RSS/client vs ovpn',
        'CPU vs ovpn',
      ],
      results.map((r, i) => {
        const o = r.outcome;
        const rep = o.report;
        return [
          serverLabel(servers[i]!),
          `${o.connectedAtPeak}/${clients}${o.capped ? ' (cap)' : ''}`,
          `${o.connectPhaseS.toFixed(1)} s`,
          String(rep.failed + rep.unfinished + rep.disconnected),
          mib(o.idleRssKiB),
          mib(r.rest.rssKiB),
          `${perClient(r).toFixed(1)} KiB`,
          `${r.rest.serverCpuPercent.toFixed(1)} %`,
          `${r.rest.loadCpuPercent.toFixed(1)} %`,
          base === null ? '-' : ratio(o.connectedAtPeak, base.outcome.connectedAtPeak),
          base === null ? '-' : ratio(perClient(r), perClient(base)),
          base === null ? '-' : ratio(r.rest.serverCpuPercent, base.rest.serverCpuPercent),
        ];
      }),
    );
    for (const [i, r] of results.entries()) {
      const rep = r.outcome.report;
      const why = [
        ...Object.entries(rep.failures),
        ...Object.entries(rep.unfinishedStages).map(([k, v]) => [`unfinished ${k}`, v] as const),
      ];
      for (const [reason, detail] of Object.entries(rep.failureDetails)) console.log(`${serverLabel(servers[i]!)}: ${reason}: ${detail}`);
      if (why.length > 0 || rep.disconnected > 0)
        console.log(
          `${serverLabel(servers[i]!)}: ${why.map(([k, v]) => `${k} ${v}`).join(', ')}${rep.disconnected > 0 ? ` disconnected ${rep.disconnected}` : ''}`,
        );
      console.log(
        `${serverLabel(servers[i]!)}: RSS/client at the end of the connect phase ${kibPerClient(r.outcome).toFixed(1)} KiB, handshake p50/p99 ${rep.handshakeMs.p50 ?? '-'}/${rep.handshakeMs.p99 ?? '-'} ms`,
      );
    }
    const memory = new SeriesSet();
    const cpu = new SeriesSet();
    const held = new SeriesSet();
    const x = `${clients} clients`;
    for (const [i, r] of results.entries()) {
      const name = serverLabel(servers[i]!);
      memory.add(name, point(x, [perClient(r)]));
      cpu.add(name, point(x, [r.rest.serverCpuPercent]));
      held.add(name, point(x, [r.outcome.connectedAtPeak]));
    }
    const xTitle = `clients asked for, started at ${rate === 0 ? 'once' : `${rate}/s`}, keepalive ${keepalive}`;
    writeRecord({
      bench: 'capacity',
      sizes: {
        BENCH_IDLE_CLIENTS: clients,
        BENCH_IDLE_RATE: rate,
        BENCH_THREADS: threads,
        BENCH_IDLE_CAP_S: capS,
        BENCH_REST_S: restS,
        BENCH_SETTLE_S: settleS,
      },
      metrics: [
        { id: 'rss_per_client_kib', title: 'Server memory per idle client', unit: 'KiB', xTitle, series: memory.toArray() },
        { id: 'server_cpu_percent', title: 'Server CPU with the clients idle', unit: '% of a core', xTitle, series: cpu.toArray() },
        { id: 'connected', title: 'Clients held', unit: 'clients', xTitle, series: held.toArray() },
      ],
    });
  } finally {
    await lab.cleanup();
  }
  console.log(`\ncapacity bench took ${((Date.now() - began) / 1000).toFixed(0)} s`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
