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
/** The server pool: a /16, so 10,000 and more clients fit. */
const POOL = '10.160.0.0 255.255.0.0';
const MAX_CLIENTS = 20000;
const CLOCK_TICKS = 100;

/** `bin`: another checkout's bin/shardvpn.js, shown as `before` (BENCH_BEFORE_BIN). */
export type ServerKind = { kind: 'shardvpn'; workers: number; bin?: string } | { kind: 'openvpn' };

export function serverLabel(s: ServerKind): string {
  return s.kind === 'shardvpn' ? `shardvpn${s.bin !== undefined ? ' before' : ''} workers ${s.workers}` : 'openvpn 2.6';
}

/**
 * BENCH_BEFORE_BIN=/path/to/other/checkout/bin/shardvpn.js: each shardvpn row is run with that
 * build as well (labelled `before`), so a change is measured against the code it replaces in the
 * same run, next to openvpn.
 */
export function withBefore(servers: ServerKind[]): ServerKind[] {
  const bin = process.env.BENCH_BEFORE_BIN;
  if (bin === undefined || bin === '') return servers;
  if (!existsSync(bin)) throw new Error(`BENCH_BEFORE_BIN=${bin}: no such file`);
  return servers.flatMap((s): ServerKind[] => (s.kind === 'shardvpn' ? [{ ...s, bin }, s] : [s]));
}

/** BENCH_KEYS="ecdsa,rsa": the test PKI's key types to run (default ecdsa: P-256; rsa: RSA-2048). */
export function envKeyTypes(): PkiKeyType[] {
  const text = process.env.BENCH_KEYS;
  if (text === undefined || text.trim() === '') return ['ecdsa'];
  const types = text.split(',').map((t) => t.trim());
  for (const t of types) if (t !== 'ecdsa' && t !== 'rsa') throw new Error(`BENCH_KEYS=${text}: give ecdsa, rsa or both`);
  return types as PkiKeyType[];
}

/** BENCH_WRAP="tls-crypt" (default) or "none": the control channel's wrap on every server and client. */
export function envWrap(): 'tls-crypt' | 'none' {
  const text = (process.env.BENCH_WRAP ?? '').trim();
  if (text === '' || text === 'tls-crypt') return 'tls-crypt';
  if (text === 'none') return 'none';
  throw new Error(`BENCH_WRAP=${text}: give tls-crypt or none`);
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

/** utime + stime of a process (all its threads) in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
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

export async function startServer(lab: VpnLab, server: ServerKind, port: number): Promise<RunningServer> {
  const wrap = envWrap() === 'tls-crypt' ? `tls-crypt ${lab.keys.tlsCrypt}\n` : '';
  if (server.kind === 'shardvpn') {
    const proc = await lab.startShardvpn(
      `port ${port}\nproto udp4\ndev tun\nkeepalive 10 60\n${wrap}${lab.serverTlsLines()}topology subnet\nserver ${POOL}\n` +
        `workers ${server.workers}\nduplicate-cn\nmax-clients ${MAX_CLIENTS}\nverb 3\n`,
      `bench-server-${port}.conf`,
      [],
      {},
      serverNodeArgs(),
      server.bin,
    );
    return { proc, pid: checkPid(proc, 'node'), label: serverLabel(server) };
  }
  // 2.6 answers at most 100 initial resets per 10 s by default: lift that, and max-clients (1024).
  const args = lab.stockServerArgs(POOL, port, [
    '--max-clients',
    String(MAX_CLIENTS),
    '--connect-freq-initial',
    '100000',
    '10',
    '--verb',
    '3',
  ]);
  if (wrap === '') args.splice(args.indexOf('--tls-crypt'), 2);
  const proc = lab.spawn(lab.server, 'openvpn', args, 'openvpn server');
  await proc.waitFor(/Initialization Sequence Completed/);
  return { proc, pid: checkPid(proc, 'openvpn'), label: serverLabel(server) };
}

export function writeProfile(lab: VpnLab, port: number): string {
  return lab.file(
    `bench-client-${port}.ovpn`,
    `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} ${port}\nnobind\n${lab.clientTlsLines()}` +
      `${envWrap() === 'tls-crypt' ? `tls-crypt ${lab.keys.tlsCrypt}\n` : ''}verb 3\n`,
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
}

export interface LoadOutcome {
  report: LoadReport;
  idleRssKiB: number;
  /** Server RSS and connected count read together, after the connect phase and settle. */
  peakRssKiB: number;
  connectedAtPeak: number;
  /** Server CPU seconds from the load start to the end of the connect phase. */
  connectCpuS: number;
  /** Load generator CPU seconds for the whole connect phase. */
  loadCpuS: number;
  /** Seconds from spawning the load generator to the end of the connect phase. */
  connectPhaseS: number;
  capped: boolean;
}

/**
 * Runs `shardvpn load` in client namespace 0 against `server`: waits until every client
 * connected or failed (or `capS`), settles, reads RSS (and runs `atPeak` while the clients are
 * still held), then stops the generator with SIGTERM and returns its JSON report.
 */
export async function loadAgainst(
  lab: VpnLab,
  server: RunningServer,
  profile: string,
  plan: LoadPlan,
  atPeak?: (loadPid: number) => Promise<void>,
): Promise<LoadOutcome> {
  await sleep(1000);
  const idleRssKiB = rssKiB(server.pid);
  const cpuBefore = cpuSeconds(server.pid);
  const json = path.join(lab.dir, `bench-report-${server.pid}-${plan.clients}.json`);
  // The run ends when we say so (SIGTERM); --duration is only a safety net.
  const duration = Math.ceil(plan.capS + plan.settleS + (plan.holdS ?? 0) + 60);
  const cmd = [
    process.execPath,
    BIN,
    'load',
    '--profile',
    profile,
    '--clients',
    String(plan.clients),
    '--rate',
    String(plan.rate),
    '--threads',
    String(plan.threads),
    '--duration',
    String(duration),
    '--handshake-timeout',
    String(Math.ceil(plan.capS)),
    '--json',
    json,
    ...(plan.extraArgs ?? []),
  ]
    .map(quote)
    .join(' ');
  const started = Date.now();
  const load = lab.spawn(
    lab.clients[0]!,
    'bash',
    ['-c', `{ ulimit -n 65536 || ulimit -n "$(ulimit -Hn)"; } 2>/dev/null; exec ${cmd}`],
    'shardvpn load',
  );
  const loadPid = load.child.pid;
  if (loadPid === undefined) throw new Error('load generator: no pid');
  const progress = (): { connected: number; failed: number } => {
    const lines = [...load.log().matchAll(/connected (\d+)\/\d+\s+failed (\d+)/g)];
    const last = lines.at(-1);
    return last === undefined ? { connected: 0, failed: 0 } : { connected: Number(last[1]), failed: Number(last[2]) };
  };
  let capped = false;
  let loadCpuS;
  try {
    for (;;) {
      if (load.exited()) throw new Error(`load generator exited early:\n${load.log().slice(-3000)}`);
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
    loadCpuS = cpuSeconds(loadPid);
    await sleep(plan.settleS * 1000);
    const peakRssKiB = rssKiB(server.pid);
    const connectedAtPeak = progress().connected;
    if (atPeak !== undefined) await atPeak(loadPid);
    const code = await load.stop('SIGTERM', 60_000);
    if (!existsSync(json)) throw new Error(`load generator wrote no report (exit ${code}):\n${load.log().slice(-3000)}`);
    const report = JSON.parse(readFileSync(json, 'utf8')) as LoadReport;
    return { report, idleRssKiB, peakRssKiB, connectedAtPeak, connectCpuS, loadCpuS, connectPhaseS, capped };
  } finally {
    if (!load.exited()) await load.stop('SIGKILL', 5000);
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
