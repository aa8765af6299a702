// Shared by the handshake and capacity benchmarks: a VPN server (shardvpn or stock openvpn 2.6)
// in the lab's server namespace, `shardvpn load` in a client namespace against it, and the
// server's memory and CPU read from /proc. `ip netns exec` execs the server, so the spawned
// child's pid is the server process itself (checked through /proc/PID/comm).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import type { LoadReport } from '../src/main/load/report';
import type { PkiKeyType } from '../lab/test-pki';
import { SERVER_UNDERLAY, VpnLab, type LabProcess } from '../lab/vpn-lab';

const BIN = path.join(__dirname, '..', '..', 'bin', 'shardvpn.js');
/** The server pool: a /16, so 10,000 and more clients fit (up to OpenVPN's cap of 65,536). */
const POOL = '10.160.0.0 255.255.0.0';
const MAX_CLIENTS = 20000;

/** What a bench may change in startServer's config; the defaults suit up to 20,000 clients. */
export interface ServerSettings {
  /** `server` network and netmask (OpenVPN takes at most a /16). */
  pool?: string;
  maxClients?: number;
  /** `keepalive` arguments, e.g. '10 60'. */
  keepalive?: string;
}
const CLOCK_TICKS = 100;

/**
 * `bin`: another checkout's bin/shardvpn.js, shown as `before` (BENCH_BEFORE_BIN); `tunQueues`:
 * the `tun-queues` line (absent: the default).
 */
export type ServerKind = { kind: 'shardvpn'; workers: number; bin?: string; tunQueues?: 'single' | 'shard' } | { kind: 'openvpn' };

export function serverLabel(s: ServerKind): string {
  if (s.kind === 'openvpn') return 'openvpn 2.6';
  return `shardvpn${s.bin !== undefined ? ' before' : ''} workers ${s.workers}${s.tunQueues !== undefined ? ` tun-queues ${s.tunQueues}` : ''}`;
}

/** Packets read from the TUN queues (the main thread's and the shards' own) and the shards' crossings, so far. */
export interface TunQueueStats {
  mainReads: number;
  shardReads: number;
  crossings: number;
  /** The shards' non-zero drop counters, summed over shards, and the main thread's ring-full drops. */
  drops: Record<string, number>;
}

/** SIGUSR2 to a shardvpn server; the TUN queue counters from the statistics it logs. */
export async function tunQueueStats(proc: LabProcess, pid: number): Promise<TunQueueStats> {
  const from = proc.log().length;
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 5000;
  while (!/tun: read \d+/.test(proc.log().slice(from))) {
    if (Date.now() > deadline) throw new Error(`no statistics after SIGUSR2:\n${proc.log().slice(-2000)}`);
    await sleep(20);
  }
  const block = proc.log().slice(from);
  const total = (name: string): number => [...block.matchAll(new RegExp(`${name}=(\\d+)`, 'g'))].reduce((sum, m) => sum + Number(m[1]), 0);
  const drops: Record<string, number> = {};
  for (const m of block.matchAll(/\b(drop\w+)=(\d+)/g)) if (Number(m[2]) > 0) drops[m[1]!] = (drops[m[1]!] ?? 0) + Number(m[2]);
  const mainRingFull = Number(/ring-full (\d+)/.exec(block)?.[1] ?? 0);
  if (mainRingFull > 0) drops.mainRingFull = mainRingFull;
  return {
    mainReads: Number(/tun: read (\d+)/.exec(block)![1]),
    shardReads: total('tunQueueReads'),
    crossings: total('tunQueueCrossings'),
    drops,
  };
}

/**
 * BENCH_BEFORE_BIN=/path/to/other/checkout/bin/shardvpn.js: each shardvpn row is run with that
 * build as well (labelled `before`), so a change is measured against the code it replaces in the
 * same run, next to openvpn.
 */
export function withBefore(servers: ServerKind[]): ServerKind[] {
  const bin = beforeBin();
  if (bin === '') return servers;
  return servers.flatMap((s): ServerKind[] => (s.kind === 'shardvpn' ? [{ ...s, bin }, s] : [s]));
}

/** BENCH_BEFORE_BIN, checked to exist; '' when unset. */
export function beforeBin(): string {
  const bin = process.env.BENCH_BEFORE_BIN ?? '';
  if (bin !== '' && !existsSync(bin)) throw new Error(`BENCH_BEFORE_BIN=${bin}: no such file`);
  return bin;
}

/**
 * A comma-separated list of server names (a bench's FOO_SERVERS) with `shardvpn-before` put in
 * front of `shardvpn` when BENCH_BEFORE_BIN is set (see withBefore).
 */
export function serverNames<K extends string>(list: string): (K | 'shardvpn-before')[] {
  const before = beforeBin() !== '';
  return list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      if (s === 'shardvpn-before' && !before) throw new Error(`${list}: shardvpn-before needs BENCH_BEFORE_BIN`);
      return s;
    })
    .flatMap((s): (K | 'shardvpn-before')[] => (s === 'shardvpn' && before ? ['shardvpn-before', s as K] : [s as K]));
}

/** BENCH_KEYS="ecdsa,rsa": the test PKI's key types to run (default ecdsa: P-256; rsa: RSA-2048). */
export function envKeyTypes(): PkiKeyType[] {
  const text = process.env.BENCH_KEYS;
  if (text === undefined || text.trim() === '') return ['ecdsa'];
  const types = text.split(',').map((t) => t.trim());
  for (const t of types) if (t !== 'ecdsa' && t !== 'rsa') throw new Error(`BENCH_KEYS=${text}: give ecdsa, rsa or both`);
  return types as PkiKeyType[];
}

/** BENCH_WRAP="tls-crypt" (default), "tls-auth" or "none": the control channel's wrap on every server and client. */
export function envWrap(): 'tls-crypt' | 'tls-auth' | 'none' {
  const text = (process.env.BENCH_WRAP ?? '').trim();
  if (text === '' || text === 'tls-crypt') return 'tls-crypt';
  if (text === 'tls-auth' || text === 'none') return text;
  throw new Error(`BENCH_WRAP=${text}: give tls-crypt, tls-auth or none`);
}

/** The config line of BENCH_WRAP for one end (tls-auth: key-direction 0 at the server, 1 at the client), with its newline. */
function wrapLine(lab: VpnLab, role: 'server' | 'client'): string {
  const wrap = envWrap();
  if (wrap === 'tls-crypt') return `tls-crypt ${lab.keys.tlsCrypt}\n`;
  if (wrap === 'tls-auth') return `tls-auth ${lab.keys.tlsAuth} ${role === 'server' ? 0 : 1}\n`;
  return '';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** VmRSS of a process in KiB. */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`/proc/${pid}/status has no VmRSS`);
  return Number(m[1]);
}

/** utime + stime of a process (all its threads) in seconds; of one thread with `tid`. */
export function cpuSeconds(pid: number, tid?: number): number {
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  // Fields after the command name, which sits in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

export function canRunLab(): boolean {
  return process.getuid?.() === 0 && existsSync('/dev/net/tun');
}

export interface RunningServer {
  readonly proc: LabProcess;
  readonly pid: number;
  readonly label: string;
}

function checkPid(proc: LabProcess, expected: string): number {
  const pid = proc.child.pid;
  if (pid === undefined) throw new Error(`${proc.name}: no pid`);
  const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  if (comm !== expected) throw new Error(`${proc.name}: pid ${pid} is '${comm}', not ${expected}: the RSS would be of the wrong process`);
  return pid;
}

/**
 * BENCH_SERVER_NODE_ARGS: node flags for the shardvpn servers, split at spaces, for profiling:
 * "--cpu-prof --cpu-prof-dir=DIR" writes one .cpuprofile per thread (main and each shard) when
 * the server exits; "--perf-basic-prof" names JIT frames for `perf record`.
 */
function serverNodeArgs(): string[] {
  return (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
}

export async function startServer(lab: VpnLab, server: ServerKind, port: number, settings: ServerSettings = {}): Promise<RunningServer> {
  const pool = settings.pool ?? POOL;
  const maxClients = settings.maxClients ?? MAX_CLIENTS;
  const keepalive = settings.keepalive ?? '10 60';
  const wrap = wrapLine(lab, 'server');
  if (server.kind === 'shardvpn') {
    const proc = await lab.startShardvpn(
      `port ${port}\nproto udp4\ndev tun\nkeepalive ${keepalive}\n${wrap}${lab.serverTlsLines()}topology subnet\nserver ${pool}\n` +
        `workers ${server.workers}\nduplicate-cn\nmax-clients ${maxClients}\nverb 3\n` +
        (server.tunQueues !== undefined ? `tun-queues ${server.tunQueues}\n` : ''),
      `bench-server-${port}.conf`,
      [],
      {},
      serverNodeArgs(),
      server.bin,
    );
    return { proc, pid: checkPid(proc, 'node'), label: serverLabel(server) };
  }
  // 2.6 answers at most 100 initial resets per 10 s by default: lift that, and max-clients (1024).
  const args = lab.stockServerArgs(pool, port, [
    '--max-clients',
    String(maxClients),
    '--connect-freq-initial',
    '100000',
    '10',
    // stockServerArgs says keepalive 10 60; a later one replaces it.
    ...(settings.keepalive !== undefined ? ['--keepalive', ...keepalive.split(' ')] : []),
    '--verb',
    '3',
  ]);
  // stockServerArgs says --tls-crypt: none drops it, tls-auth replaces it.
  const at = args.indexOf('--tls-crypt');
  if (envWrap() === 'none') args.splice(at, 2);
  if (envWrap() === 'tls-auth') args.splice(at, 2, '--tls-auth', lab.keys.tlsAuth, '0');
  const proc = lab.spawn(lab.server, 'openvpn', args, 'openvpn server');
  await proc.waitFor(/Initialization Sequence Completed/);
  return { proc, pid: checkPid(proc, 'openvpn'), label: serverLabel(server) };
}

export function writeProfile(lab: VpnLab, port: number): string {
  return lab.file(
    `bench-client-${port}.ovpn`,
    `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} ${port}\nnobind\n${lab.clientTlsLines()}` + `${wrapLine(lab, 'client')}verb 3\n`,
  );
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export interface LoadPlan {
  clients: number;
  /** Connections started per second; 0: all at once. */
  rate: number;
  threads: number;
  /** Longest the connect phase may last; the figures are taken then even if not all connected. */
  capS: number;
  /** Seconds to wait after the connect phase before `atPeak` (lets the server settle). */
  settleS: number;
  /** Seconds `atPeak` may hold the clients (the generator's --duration is that much longer). */
  holdS?: number;
  /** More `shardvpn load` flags, e.g. ['--pps', '1']. */
  extraArgs?: readonly string[];
  /** Source addresses for the generator (`--source`), added to the client namespace: one has about 28,000 ports. */
  sources?: number;
}

export interface LoadOutcome {
  report: LoadReport;
  idleRssKiB: number;
  /** Server RSS and connected count read together, after the connect phase and settle. */
  peakRssKiB: number;
  connectedAtPeak: number;
  /** Server CPU seconds from the load start to the end of the connect phase. */
  connectCpuS: number;
  /** The part of connectCpuS its main thread spent (the thread whose id is the process id). */
  connectMainCpuS: number;
  /** Load generator CPU seconds for the whole connect phase. */
  loadCpuS: number;
  /** Seconds from spawning the load generator to the end of the connect phase. */
  connectPhaseS: number;
  capped: boolean;
}

/**
 * Clients one generator process takes: each has its own socket, and a process here may not open
 * more than 20,000 files (RLIMIT_NOFILE's hard limit; raising it needs CAP_SYS_RESOURCE).
 */
const CLIENTS_PER_PROCESS = 19_000;

/** One report for several generators' runs: counts summed, latency summaries their maximum. */
function mergeReports(reports: readonly LoadReport[]): LoadReport {
  if (reports.length === 1) return reports[0]!;
  const sum = (f: (r: LoadReport) => number): number => reports.reduce((n, r) => n + f(r), 0);
  const sumMaps = (f: (r: LoadReport) => Record<string, number>): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const r of reports) for (const [k, v] of Object.entries(f(r))) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  const maxOf = (values: (number | null)[]): number | null => {
    const known = values.filter((v): v is number => v !== null);
    return known.length === 0 ? null : Math.max(...known);
  };
  const first = reports[0]!;
  return {
    ...first,
    requested: sum((r) => r.requested),
    started: sum((r) => r.started),
    connected: sum((r) => r.connected),
    failed: sum((r) => r.failed),
    unfinished: sum((r) => r.unfinished),
    unfinishedStages: sumMaps((r) => r.unfinishedStages),
    disconnected: sum((r) => r.disconnected),
    connectedAtEnd: sum((r) => r.connectedAtEnd),
    failures: sumMaps((r) => r.failures),
    failureDetails: Object.assign({}, ...reports.map((r) => r.failureDetails)) as Record<string, string>,
    handshakeMs: {
      p50: maxOf(reports.map((r) => r.handshakeMs.p50)),
      p95: maxOf(reports.map((r) => r.handshakeMs.p95)),
      p99: maxOf(reports.map((r) => r.handshakeMs.p99)),
      max: maxOf(reports.map((r) => r.handshakeMs.max)),
      mean: maxOf(reports.map((r) => r.handshakeMs.mean)),
    },
  };
}

/**
 * Runs `shardvpn load` in client namespace 0 against `server` (more than 19,000 clients: as many
 * processes as needed, each with its share of the clients and the rate): waits until every
 * client connected or failed (or `capS`), settles, reads RSS (and runs `atPeak` while the
 * clients are still held), then stops the generators with SIGTERM and returns their JSON
 * report (merged: counts summed, latency percentiles the largest of the generators').
 */
export async function loadAgainst(
  lab: VpnLab,
  server: RunningServer,
  profile: string,
  plan: LoadPlan,
  atPeak?: (loadPids: number[]) => Promise<void>,
): Promise<LoadOutcome> {
  await sleep(1000);
  const idleRssKiB = rssKiB(server.pid);
  const cpuBefore = cpuSeconds(server.pid);
  const mainCpuBefore = cpuSeconds(server.pid, server.pid);
  // The run ends when we say so (SIGTERM); --duration is only a safety net.
  const duration = Math.ceil(plan.capS + plan.settleS + (plan.holdS ?? 0) + 60);
  const sources = (plan.sources ?? 0) > 0 ? lab.addClientAddresses(0, plan.sources!) : [];
  const processes = Math.ceil(plan.clients / CLIENTS_PER_PROCESS);
  const generators = Array.from({ length: processes }, (_, i) => {
    const clients = Math.floor(plan.clients / processes) + (i < plan.clients % processes ? 1 : 0);
    const json = path.join(lab.dir, `bench-report-${server.pid}-${plan.clients}-${i}.json`);
    const cmd = [
      process.execPath,
      BIN,
      'load',
      '--profile',
      profile,
      '--clients',
      String(clients),
      '--rate',
      String(plan.rate / processes),
      '--threads',
      String(plan.threads),
      '--duration',
      String(duration),
      '--handshake-timeout',
      String(Math.ceil(plan.capS)),
      '--json',
      json,
      ...(plan.extraArgs ?? []),
      ...(sources.length > 0 ? ['--source', sources.join(',')] : []),
    ]
      .map(quote)
      .join(' ');
    const proc = lab.spawn(
      lab.clients[0]!,
      'bash',
      // One socket per client: as many files as this process may open.
      ['-c', `{ ulimit -n ${Math.max(65536, clients + 4096)} || ulimit -n "$(ulimit -Hn)"; } 2>/dev/null; exec ${cmd}`],
      `shardvpn load ${i}`,
    );
    const pid = proc.child.pid;
    if (pid === undefined) throw new Error('load generator: no pid');
    return { proc, pid, json };
  });
  const started = Date.now();
  const progress = (): { connected: number; failed: number } => {
    let connected = 0;
    let failed = 0;
    for (const g of generators) {
      const last = [...g.proc.log().matchAll(/connected (\d+)\/\d+\s+failed (\d+)/g)].at(-1);
      if (last !== undefined) {
        connected += Number(last[1]);
        failed += Number(last[2]);
      }
    }
    return { connected, failed };
  };
  const loadCpu = (): number => generators.reduce((n, g) => n + cpuSeconds(g.pid), 0);
  let capped = false;
  let loadCpuS;
  try {
    for (;;) {
      const gone = generators.find((g) => g.proc.exited());
      if (gone !== undefined) throw new Error(`load generator exited early:\n${gone.proc.log().slice(-3000)}`);
      const p = progress();
      if (p.connected + p.failed >= plan.clients) break;
      if (Date.now() - started > plan.capS * 1000) {
        capped = true;
        break;
      }
      await sleep(250);
    }
    const connectPhaseS = (Date.now() - started) / 1000;
    const connectCpuS = cpuSeconds(server.pid) - cpuBefore;
    const connectMainCpuS = cpuSeconds(server.pid, server.pid) - mainCpuBefore;
    loadCpuS = loadCpu();
    await sleep(plan.settleS * 1000);
    const peakRssKiB = rssKiB(server.pid);
    const connectedAtPeak = progress().connected;
    if (atPeak !== undefined) await atPeak(generators.map((g) => g.pid));
    const reports: LoadReport[] = [];
    for (const g of generators) {
      const code = await g.proc.stop('SIGTERM', 60_000);
      if (!existsSync(g.json)) throw new Error(`load generator wrote no report (exit ${code}):\n${g.proc.log().slice(-3000)}`);
      reports.push(JSON.parse(readFileSync(g.json, 'utf8')) as LoadReport);
    }
    return {
      report: mergeReports(reports),
      idleRssKiB,
      peakRssKiB,
      connectedAtPeak,
      connectCpuS,
      connectMainCpuS,
      loadCpuS,
      connectPhaseS,
      capped,
    };
  } finally {
    for (const g of generators) if (!g.proc.exited()) await g.proc.stop('SIGKILL', 5000);
  }
}

export const mib = (kib: number): string => `${(kib / 1024).toFixed(1)} MiB`;
export const kibPerClient = (o: LoadOutcome): number => (o.connectedAtPeak > 0 ? (o.peakRssKiB - o.idleRssKiB) / o.connectedAtPeak : NaN);
export const ratio = (a: number, b: number): string =>
  Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}x` : '-';
export const ms = (v: number | null): string => (v === null ? '-' : v.toFixed(0));

/** A comma-separated list of positive whole numbers from the environment. */
export function envCounts(name: string, fallback: number[]): number[] {
  const text = process.env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const values = text.split(',').map((s) => Number(s.trim()));
  if (values.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`${name}=${text}: give whole numbers separated by commas`);
  return values;
}

export function envNumber(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const v = Number(text);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name}=${text}: give a number`);
  return v;
}
