// A UDP server under a spoofed flood: stock openvpn 2.6 and shardvpn (workers 2), same config,
// one after the other in the same run. A real stock client pings through the tunnel every 20 ms
// while a flooder namespace sends FLOOD_RESETS (default 1,000,000) HARD_RESET_CLIENT_V2 packets
// and FLOOD_GARBAGE (default 1,000,000) malformed datagrams as fast as one thread can
// (bench/flooder.c: raw socket, sendmmsg, random source addresses in 10.152.0.0/16 routed back to
// the flooder, random source ports and session ids); one second in, a second stock client
// connects. Wraps: tls-crypt, tls-auth and tls-crypt-v2 (the server's HMAC or WKc check refuses
// every reset; FLOOD_WRAPS=tls-crypt-v2 to run it) and none (the
// server must answer each reset: shardvpn with a stateless cookie, openvpn 2.6 too, at most
// connect-freq-initial's 100 answers per 10 s). Reports the real client's ping loss and RTT, the
// new client's connect time, server RSS and CPU, the rate the flooder reached, what the server
// namespace's kernel took in, and (shardvpn) every drop by reason from /metrics. FLOOD_RUNS runs
// (default 1) of each case give medians; FLOOD_WRAPS picks the wraps (default tls-crypt,tls-auth,none).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { clientUnderlay, SERVER_UNDERLAY, VpnLab, type LabProcess } from '../lab/vpn-lab';
import { beforeBin, envNumber, serverNames, sleep } from './load-lab';
import { median, printTable } from './lib';
import { deltas, parsePing, percentile, scrapeMetrics, sumBy, total, udpCounters, type MetricSamples } from './server-probes';
import { cpuSeconds, rssBytes, SERVER_TUNNEL } from './tunnels';

const RESETS = envNumber('FLOOD_RESETS', 1_000_000);
const GARBAGE = envNumber('FLOOD_GARBAGE', 1_000_000);
const RUNS = Math.max(1, Math.round(envNumber('FLOOD_RUNS', 1)));
const WRAPS = (process.env.FLOOD_WRAPS ?? 'tls-crypt,tls-auth,none').split(',').map((w) => w.trim()) as Wrap[];
/** BENCH_BEFORE_BIN: another checkout's bin/shardvpn.js, flooded too as `shardvpn before` (same run, same order rules). */
const BEFORE_BIN = beforeBin();
/** FLOOD_SERVERS picks the servers (default openvpn,shardvpn). */
const SERVERS = serverNames<ServerName>(process.env.FLOOD_SERVERS ?? 'openvpn,shardvpn');
/** FLOOD_SHARDVPN_LINES: extra config lines for the shardvpn server, separated by ';' (e.g. udp-coalesce-usecs 0). */
const SHARDVPN_LINES = (process.env.FLOOD_SHARDVPN_LINES ?? '')
  .split(';')
  .map((l) => l.trim())
  .filter((l) => l !== '');
/** FLOOD_NODE_ARGS: extra node flags for the shardvpn server (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof). */
const NODE_ARGS = (process.env.FLOOD_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
/** The flooder stops after this many seconds even if it has not sent everything. */
const FLOOD_MAX_S = 120;
const NEW_CLIENT_AFTER_MS = 1000;
const PING_INTERVAL_S = 0.02;
const SPOOFED = '10.152.0.0';
const SPOOFED_BITS = 16;
const METRICS_PORT = 9191;
const METRICS_URL = `http://127.0.0.1:${METRICS_PORT}/metrics`;
const BIN = path.join(__dirname, '..', '..', 'bin', 'shardvpn.js');
const FLOODER_SOURCE = path.join(__dirname, '..', '..', 'bench', 'flooder.c');
const MIB = 2 ** 20;

type Wrap = 'tls-crypt' | 'tls-crypt-v2' | 'tls-auth' | 'none';

/** The wrap's config line: tls-auth with key-direction 0 at the server and 1 at the client. */
function wrapLines(lab: VpnLab, wrap: Wrap, role: 'server' | 'client'): string[] {
  if (wrap === 'tls-crypt') return [`tls-crypt ${lab.keys.tlsCrypt}`];
  if (wrap === 'tls-crypt-v2') return [`tls-crypt-v2 ${role === 'server' ? lab.keys.tlsCryptV2Server : lab.keys.tlsCryptV2Client}`];
  if (wrap === 'tls-auth') return [`tls-auth ${lab.keys.tlsAuth} ${role === 'server' ? 0 : 1}`];
  return [];
}
type ServerName = 'openvpn' | 'shardvpn' | 'shardvpn-before';

const LABELS: Readonly<Record<ServerName, string>> = {
  openvpn: 'openvpn 2.6',
  shardvpn: 'shardvpn workers 2',
  'shardvpn-before': 'shardvpn before workers 2',
};

interface FloodResult {
  pingSent: number;
  pingLost: number;
  rttP50: number;
  rttP99: number;
  connectS: number;
  connectedDuringFlood: boolean;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  cpuS: number;
  floodPps: number;
  floodSeconds: number;
  floodRefused: number;
  kernelIn: number;
  kernelRcvbufErrors: number;
  /** shardvpn only: deltas by reason. */
  drops: Map<string, number>;
  other: Map<string, number>;
}

function serverConfig(lab: VpnLab, server: ServerName, wrap: Wrap): string {
  return [
    'port 1194',
    'proto udp4',
    'dev tun',
    'topology subnet',
    'server 10.161.0.0 255.255.255.0',
    'keepalive 10 60',
    'dh none',
    'duplicate-cn',
    ...wrapLines(lab, wrap, 'server'),
    lab.serverTlsLines().trim(),
    ...(server !== 'openvpn' ? ['workers 2', `metrics-listen 127.0.0.1 ${METRICS_PORT}`, ...SHARDVPN_LINES] : []),
    'verb 3',
  ].join('\n');
}

function clientConfig(lab: VpnLab, wrap: Wrap): string {
  return [
    'client',
    'dev tun',
    'proto udp4',
    `remote ${SERVER_UNDERLAY} 1194`,
    'nobind',
    lab.clientTlsLines().trim(),
    ...wrapLines(lab, wrap, 'client'),
    'verb 3',
  ].join('\n');
}

function processPid(proc: LabProcess, comm: string): number {
  const pid = proc.child.pid;
  if (pid === undefined) throw new Error(`${proc.name}: no pid`);
  // `ip netns exec` execs the program, so the child is the server itself.
  const actual = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  if (actual !== comm) throw new Error(`${proc.name}: pid ${pid} is '${actual}', not ${comm}`);
  return pid;
}

function exitedPromise(proc: LabProcess): Promise<void> {
  return new Promise((resolve) => (proc.exited() ? resolve() : proc.child.once('exit', () => resolve())));
}

async function floodOnce(lab: VpnLab, flooder: string, server: ServerName, wrap: Wrap, run: number): Promise<FloodResult> {
  const config = lab.file(`flood-${server}-${wrap}-${run}.conf`, serverConfig(lab, server, wrap));
  const proc =
    server === 'openvpn'
      ? lab.spawn(lab.server, 'openvpn', ['--config', config], 'openvpn server')
      : lab.spawn(
          lab.server,
          process.execPath,
          [...NODE_ARGS, server === 'shardvpn' ? BIN : BEFORE_BIN, '--config', config],
          LABELS[server],
        );
  const clients: LabProcess[] = [];
  try {
    await proc.waitFor(/Initialization Sequence Completed/, 20_000);
    const pid = processPid(proc, server === 'openvpn' ? 'openvpn' : 'node');
    const profile = lab.file(`flood-client-${wrap}.ovpn`, clientConfig(lab, wrap));
    const real = lab.spawn(lab.clients[0]!, 'openvpn', ['--config', profile], 'real client');
    clients.push(real);
    await real.waitFor(/Initialization Sequence Completed/, 20_000);
    await sleep(1000);

    const rssBefore = rssBytes(pid);
    const cpuBefore = cpuSeconds(pid);
    const metricsBefore: MetricSamples | null = server !== 'openvpn' ? scrapeMetrics(lab.server, METRICS_URL) : null;
    const udpBefore = udpCounters(lab.server);

    const ping = lab.spawn(lab.clients[0]!, 'ping', ['-i', String(PING_INTERVAL_S), '-W', '2', SERVER_TUNNEL], 'ping');
    const flood = lab.spawn(
      lab.clients[2]!,
      flooder,
      [SERVER_UNDERLAY, '1194', SPOOFED, String(SPOOFED_BITS), String(RESETS), String(GARBAGE), String(FLOOD_MAX_S), wrap],
      'flooder',
    );
    const floodStart = Date.now();
    const floodDone = exitedPromise(flood);
    let floodEnd = 0;
    void floodDone.then(() => (floodEnd = Date.now()));

    await Promise.race([sleep(NEW_CLIENT_AFTER_MS), floodDone]);
    const connectStart = Date.now();
    const newcomer = lab.spawn(lab.clients[1]!, 'openvpn', ['--config', profile], 'new client');
    clients.push(newcomer);
    const connected = newcomer.waitFor(/Initialization Sequence Completed/, 60_000).then(() => Date.now());

    await floodDone;
    const floodOut = /\{.*\}/.exec(flood.log());
    if (floodOut === null) throw new Error(`flooder printed no result:\n${flood.log()}`);
    const sent = JSON.parse(floodOut[0]) as { resets: number; garbage: number; refused: number; seconds: number };
    await ping.stop('SIGINT', 5000);
    // Two intervals' worth of echoes may still have been in flight when ping stopped.
    const pings = parsePing(ping.log(), 2);
    const connectedAt = await connected.catch(() => NaN);
    await sleep(1000);
    const rssAfter = rssBytes(pid);
    const cpu = cpuSeconds(pid) - cpuBefore;
    const udpAfter = udpCounters(lab.server);
    let drops = new Map<string, number>();
    const other = new Map<string, number>();
    if (metricsBefore !== null) {
      const after = scrapeMetrics(lab.server, METRICS_URL);
      const delta = (name: string, label: string): Map<string, number> =>
        deltas(sumBy(metricsBefore, name, label), sumBy(after, name, label));
      const counter = (name: string): number => total(after, name) - total(metricsBefore, name);
      drops = delta('shardvpn_dropped_packets_total', 'reason');
      other.set('link packets in', delta('shardvpn_link_packets_total', 'direction').get('in') ?? NaN);
      other.set('stateless replies', counter('shardvpn_stateless_replies_total'));
      other.set('handshakes started', counter('shardvpn_handshakes_started_total'));
      for (const [reason, n] of delta('shardvpn_handshakes_failed_total', 'reason')) other.set(`handshakes_failed ${reason}`, n);
    }
    const floodSeconds = ((floodEnd || Date.now()) - floodStart) / 1000;
    return {
      pingSent: pings.sent,
      pingLost: pings.lost,
      rttP50: percentile(pings.rtts, 50),
      rttP99: percentile(pings.rtts, 99),
      connectS: (connectedAt - connectStart) / 1000,
      connectedDuringFlood: Number.isFinite(connectedAt) && connectedAt <= (floodEnd || Infinity),
      rssBeforeMiB: rssBefore / MIB,
      rssAfterMiB: rssAfter / MIB,
      cpuS: cpu,
      floodPps: (sent.resets + sent.garbage - sent.refused) / sent.seconds,
      floodSeconds,
      floodRefused: sent.refused,
      kernelIn: (udpAfter.InDatagrams ?? NaN) - (udpBefore.InDatagrams ?? NaN),
      kernelRcvbufErrors: (udpAfter.RcvbufErrors ?? NaN) - (udpBefore.RcvbufErrors ?? NaN),
      drops,
      other,
    };
  } finally {
    for (const c of clients) await c.stop('SIGTERM', 5000);
    await proc.stop('SIGTERM', 8000);
  }
}

const mark = (met: boolean): string => (met ? 'met' : 'MISSED');

async function main(): Promise<void> {
  const lab = VpnLab.create(3);
  try {
    const flooder = path.join(lab.dir, 'flooder');
    execFileSync('cc', ['-O2', '-o', flooder, FLOODER_SOURCE]);
    // Replies to the spoofed sources go back to the flooder's namespace, which drops them at a
    // blackhole route: without one it would try to forward each reply (forwarding is off, so a
    // failed route lookup and an ICMP error), work that veth runs on the sending CPU and so
    // charges to the server's send calls, where on a real link the reply leaves by the NIC.
    lab.server.ip(['route', 'add', `${SPOOFED}/${SPOOFED_BITS}`, 'via', clientUnderlay(2)]);
    lab.clients[2]!.ip(['route', 'add', 'blackhole', `${SPOOFED}/${SPOOFED_BITS}`]);
    const rows: string[][] = [];
    const dropRows: string[][] = [];
    for (const wrap of WRAPS) {
      const results: Record<ServerName, FloodResult[]> = { openvpn: [], shardvpn: [], 'shardvpn-before': [] };
      for (let run = 0; run < RUNS; run++) {
        // Alternate the order, so that neither server always runs first on a shared machine.
        const order = run % 2 === 0 ? SERVERS : [...SERVERS].reverse();
        for (const server of order) {
          const r = await floodOnce(lab, flooder, server, wrap, run);
          results[server].push(r);
          process.stderr.write(
            `${wrap} ${server} run ${run + 1}: ping lost ${r.pingLost}/${r.pingSent}, connect ${r.connectS.toFixed(2)} s, ` +
              `RSS ${r.rssBeforeMiB.toFixed(1)} -> ${r.rssAfterMiB.toFixed(1)} MiB, CPU ${r.cpuS.toFixed(1)} s, ` +
              `flood ${(r.floodPps / 1000).toFixed(0)}k pps for ${r.floodSeconds.toFixed(1)} s, kernel in ${r.kernelIn} rcvbuf errors ${r.kernelRcvbufErrors}\n`,
          );
        }
      }
      for (const server of SERVERS) {
        const rs = results[server];
        const m = (f: (r: FloodResult) => number): number => median(rs.map(f));
        const lossPct = m((r) => (100 * r.pingLost) / Math.max(1, r.pingSent));
        const connectS = m((r) => r.connectS);
        const growth = m((r) => r.rssAfterMiB - r.rssBeforeMiB);
        rows.push([
          wrap,
          LABELS[server],
          `${lossPct.toFixed(2)} (${mark(lossPct < 1)})`,
          m((r) => r.rttP50).toFixed(2),
          m((r) => r.rttP99).toFixed(2),
          `${Number.isFinite(connectS) ? connectS.toFixed(2) : 'never'} (${mark(connectS < 2)})${rs.every((r) => r.connectedDuringFlood) ? '' : '*'}`,
          `${m((r) => r.rssBeforeMiB).toFixed(1)} -> ${m((r) => r.rssAfterMiB).toFixed(1)} (${mark(growth < 10)})`,
          m((r) => r.cpuS).toFixed(1),
          `${(m((r) => r.floodPps) / 1000).toFixed(0)}k`,
          `${(m((r) => r.kernelIn) / 1000).toFixed(0)}k / ${(m((r) => r.kernelRcvbufErrors) / 1000).toFixed(0)}k`,
        ]);
        if (server !== 'openvpn') {
          const keys = new Set(rs.flatMap((r) => [...r.other.keys(), ...[...r.drops.keys()].map((k) => `dropped ${k}`)]));
          for (const key of keys) {
            const value = m((r) => (key.startsWith('dropped ') ? r.drops.get(key.slice(8)) : r.other.get(key)) ?? 0);
            if (value !== 0) dropRows.push([wrap, LABELS[server], key, value.toFixed(0)]);
          }
        }
      }
    }
    printTable(
      `Spoofed flood: ${RESETS} resets + ${GARBAGE} garbage datagrams from one namespace, a real client pinging every ${PING_INTERVAL_S * 1000} ms, a new client 1 s in (median of ${RUNS}; targets: loss < 1%, connect < 2 s, RSS growth < 10 MiB; * connected after the flood ended)`,
      [
        'wrap',
        'server',
        'ping loss %',
        'RTT p50 ms',
        'RTT p99 ms',
        'new client s',
        'RSS MiB',
        'CPU-s',
        'flood pps',
        'kernel in / rcvbuf drops',
      ],
      rows,
    );
    printTable(
      'shardvpn /metrics deltas over the flood (summed over shards; median of runs)',
      ['wrap', 'server', 'counter', 'delta'],
      dropRows,
    );
  } finally {
    await lab.cleanup();
  }
}

void main();
