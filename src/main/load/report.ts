// The load generator's output: the live progress line (stderr, at most once a second), the
// final table, and the same figures as JSON. Figures come from the workers' SliceResults.
import { LatencyHistogram } from '../../shared/load/histogram';
import type { SliceResult } from '../../shared/load/task';

export interface LatencySummary {
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

export interface LoadReport {
  server: string;
  requested: number;
  started: number;
  connected: number;
  failed: number;
  /** Started, still handshaking when the run ended. */
  unfinished: number;
  /** Unfinished clients by the last handshake step they reached (reset-sent, tls-verified, push-requested, push-applied). */
  unfinishedStages: Record<string, number>;
  /** Connected, then lost the session before the end. */
  disconnected: number;
  /** With --reconnect: lost sessions replaced by new ones, new attempts that failed, and the time from a loss to its new session. */
  reconnects: number;
  reconnectFailures: number;
  reconnectMs: LatencySummary;
  /** Clients with a session when the run ended. */
  connectedAtEnd: number;
  threads: number;
  rate: number;
  durationS: number;
  /** Connections per second from the first start to the last connection. */
  connectsPerSecond: number | null;
  /** Seconds from the first start until every requested client was connected; null if some never were. */
  allConnectedS: number | null;
  handshakeMs: LatencySummary;
  failures: Record<string, number>;
  failureDetails: Record<string, string>;
  traffic: {
    pps: number;
    size: number;
    echoSent: number;
    echoReceived: number;
    loss: number | null;
    rttMs: LatencySummary;
    sentMbps: number | null;
    receivedMbps: number | null;
    decryptErrors: number;
    /** Bulk mode (--bandwidth) only, else null. */
    bandwidth: BandwidthSummary | null;
  } | null;
}

/** Bulk traffic over the traffic time: inner IP bytes (requests out, replies in) and packets. */
export interface BandwidthSummary {
  window: number;
  /** Seconds from the first request sent to the last (the longest slice). */
  seconds: number;
  bytesSent: number;
  bytesReceived: number;
  /** Requests given up unanswered (after about 4 RTTs, at most 1 s) while traffic ran, freeing their place; a late reply still counts as received. */
  expired: number;
  sentGbps: number;
  receivedGbps: number;
  totalGbps: number;
  sentPps: number;
  receivedPps: number;
}

export interface RunInfo {
  server: string;
  threads: number;
  rate: number;
  durationS: number;
  pps: number;
  /** Echo requests in flight per client with --bandwidth; 0: paced by pps. */
  window: number;
  size: number;
  /** Date.now() of the first client start. */
  startAt: number;
}

function summary(h: LatencyHistogram): LatencySummary {
  const r = (v: number | null): number | null => (v === null ? null : Math.round(v * 100) / 100);
  return { p50: r(h.percentile(0.5)), p95: r(h.percentile(0.95)), p99: r(h.percentile(0.99)), max: r(h.maximum), mean: r(h.mean) };
}

export function buildReport(results: readonly SliceResult[], run: RunInfo): LoadReport {
  const handshake = new LatencyHistogram();
  const rtt = new LatencyHistogram();
  const reconnect = new LatencyHistogram();
  const failures: Record<string, number> = {};
  const failureDetails: Record<string, string> = {};
  const unfinishedStages: Record<string, number> = {};
  let requested = 0,
    started = 0,
    connected = 0,
    unfinished = 0,
    disconnected = 0,
    reconnects = 0,
    reconnectFailures = 0,
    connectedAtEnd = 0;
  let echoSent = 0,
    echoReceived = 0,
    echoExpired = 0,
    bytesSent = 0,
    bytesReceived = 0,
    trafficMs = 0,
    decryptErrors = 0;
  let lastConnectedAt: number | null = null;
  for (const r of results) {
    requested += r.requested;
    started += r.started;
    connected += r.connected;
    unfinished += r.unfinished;
    for (const [k, v] of Object.entries(r.unfinishedStages)) unfinishedStages[k] = (unfinishedStages[k] ?? 0) + v;
    disconnected += r.disconnected;
    reconnects += r.reconnects;
    reconnectFailures += r.reconnectFailures;
    connectedAtEnd += r.connectedAtEnd;
    reconnect.merge(r.reconnect);
    for (const [k, v] of Object.entries(r.failures)) failures[k] = (failures[k] ?? 0) + v;
    for (const [k, v] of Object.entries(r.failureDetails)) failureDetails[k] ??= v;
    handshake.merge(r.handshake);
    rtt.merge(r.rtt);
    echoSent += r.echoSent;
    echoReceived += r.echoReceived;
    echoExpired += r.echoExpired;
    bytesSent += r.bytesSent;
    bytesReceived += r.bytesReceived;
    trafficMs = Math.max(trafficMs, r.trafficMs);
    decryptErrors += r.decryptErrors;
    if (r.lastConnectedAt !== null && (lastConnectedAt === null || r.lastConnectedAt > lastConnectedAt))
      lastConnectedAt = r.lastConnectedAt;
  }
  const failed = Object.values(failures).reduce((a, b) => a + b, 0);
  const span = lastConnectedAt === null ? null : Math.max(1, lastConnectedAt - run.startAt) / 1000;
  const mbps = (bytes: number): number | null => (trafficMs > 0 ? Math.round((bytes * 8) / (trafficMs / 1000) / 1e4) / 100 : null);
  return {
    server: run.server,
    requested,
    started,
    connected,
    failed,
    unfinished,
    unfinishedStages,
    disconnected,
    reconnects,
    reconnectFailures,
    reconnectMs: summary(reconnect),
    connectedAtEnd,
    threads: run.threads,
    rate: run.rate,
    durationS: run.durationS,
    connectsPerSecond: span === null ? null : Math.round((connected / span) * 10) / 10,
    allConnectedS: connected === requested && span !== null ? Math.round(span * 1000) / 1000 : null,
    handshakeMs: summary(handshake),
    failures,
    failureDetails,
    traffic:
      run.pps > 0 || run.window > 0
        ? {
            pps: run.pps,
            size: run.size,
            echoSent,
            echoReceived,
            loss: echoSent > 0 ? Math.round((1 - echoReceived / echoSent) * 10000) / 10000 : null,
            rttMs: summary(rtt),
            sentMbps: mbps(bytesSent),
            receivedMbps: mbps(bytesReceived),
            decryptErrors,
            bandwidth:
              run.window > 0 ? bandwidth(run.window, trafficMs, bytesSent, bytesReceived, echoSent, echoReceived, echoExpired) : null,
          }
        : null,
  };
}

function bandwidth(
  window: number,
  trafficMs: number,
  bytesSent: number,
  bytesReceived: number,
  sent: number,
  received: number,
  expired: number,
): BandwidthSummary {
  const seconds = trafficMs / 1000;
  const gbps = (bytes: number): number => (seconds > 0 ? Math.round(((bytes * 8) / seconds / 1e9) * 10000) / 10000 : 0);
  const pps = (n: number): number => (seconds > 0 ? Math.round(n / seconds) : 0);
  return {
    window,
    seconds: Math.round(seconds * 1000) / 1000,
    bytesSent,
    bytesReceived,
    expired,
    sentGbps: gbps(bytesSent),
    receivedGbps: gbps(bytesReceived),
    totalGbps: gbps(bytesSent + bytesReceived),
    sentPps: pps(sent),
    receivedPps: pps(received),
  };
}

/**
 * Connections per second of the connect phase, as the live line shows it: once every client has
 * connected or failed (at `settledMs`), it stays at what that phase achieved instead of falling
 * as the run goes on.
 */
export function connectRate(connected: number, elapsedMs: number, settledMs: number | null = null): string {
  const phaseMs = settledMs ?? elapsedMs;
  return phaseMs > 0 ? (connected / (phaseMs / 1000)).toFixed(1) : '0.0';
}

/**
 * The live line: `[12.0s] connected 180/200  failed 2  in progress 18  183.4 conn/s`, with
 * --bandwidth followed by the inner bytes so far, `  traffic out 1234.5 / in 1230.0 MB`.
 */
export function progressLine(
  elapsedMs: number,
  requested: number,
  started: number,
  connected: number,
  failed: number,
  settledMs: number | null = null,
  traffic: { readonly sent: number; readonly received: number } | null = null,
): string {
  const rate = connectRate(connected, elapsedMs, settledMs);
  const inProgress = Math.max(0, started - connected - failed);
  const line = `[${(elapsedMs / 1000).toFixed(1)}s] connected ${connected}/${requested}  failed ${failed}  in progress ${inProgress}  ${rate} conn/s`;
  return traffic === null ? line : `${line}  traffic out ${(traffic.sent / 1e6).toFixed(1)} / in ${(traffic.received / 1e6).toFixed(1)} MB`;
}

const ms = (v: number | null): string => (v === null ? '-' : `${v.toFixed(1)} ms`);

/** The final table, one `name  value` row per line. */
export function formatReport(r: LoadReport): string {
  const rows: Array<[string, string]> = [
    ['server', r.server],
    ['clients requested', String(r.requested)],
    ['clients started', String(r.started)],
    ['connected', String(r.connected)],
    ['failed', String(r.failed)],
    [
      'unfinished at end',
      r.unfinished === 0
        ? '0'
        : `${r.unfinished}  (${Object.entries(r.unfinishedStages)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')})`,
    ],
    ['disconnected early', String(r.disconnected)],
    ['reconnected', r.reconnects === 0 && r.reconnectFailures === 0 ? '0' : `${r.reconnects}  (${r.reconnectFailures} attempts failed)`],
    ['reconnect p50 / max', `${ms(r.reconnectMs.p50)} / ${ms(r.reconnectMs.max)}`],
    ['connected at end', String(r.connectedAtEnd)],
    ['threads', String(r.threads)],
    ['connects/s', r.connectsPerSecond === null ? '-' : r.connectsPerSecond.toFixed(1)],
    ['all connected after', r.allConnectedS === null ? '- (not all connected)' : `${r.allConnectedS.toFixed(3)} s`],
    ['handshake p50 / p95', `${ms(r.handshakeMs.p50)} / ${ms(r.handshakeMs.p95)}`],
    ['handshake p99 / max', `${ms(r.handshakeMs.p99)} / ${ms(r.handshakeMs.max)}`],
  ];
  for (const [reason, n] of Object.entries(r.failures).sort((a, b) => b[1] - a[1])) {
    rows.push([`failed: ${reason}`, `${n}  (${r.failureDetails[reason] ?? ''})`]);
  }
  const t = r.traffic;
  if (t !== null) {
    const b = t.bandwidth;
    rows.push(
      [
        'echo requests sent',
        b === null
          ? `${t.echoSent} (${t.pps}/s per client, ${t.size} bytes)`
          : `${t.echoSent} (${b.window} in flight per client, ${t.size} bytes)`,
      ],
      ['echo replies', String(t.echoReceived)],
      ['loss', t.loss === null ? '-' : `${(t.loss * 100).toFixed(2)} %`],
      ['rtt p50 / p95', `${ms(t.rttMs.p50)} / ${ms(t.rttMs.p95)}`],
      ['rtt p99 / max', `${ms(t.rttMs.p99)} / ${ms(t.rttMs.max)}`],
      ['throughput out / in', `${t.sentMbps ?? '-'} / ${t.receivedMbps ?? '-'} Mbit/s (inner IP)`],
      ['data decrypt errors', String(t.decryptErrors)],
    );
    if (b !== null) {
      rows.push(
        ['bandwidth out / in', `${b.sentGbps.toFixed(3)} / ${b.receivedGbps.toFixed(3)} Gbit/s (inner IP, over ${b.seconds.toFixed(1)} s)`],
        ['bandwidth total', `${b.totalGbps.toFixed(3)} Gbit/s`],
        ['packets/s out / in', `${b.sentPps} / ${b.receivedPps}`],
        ['given up (timeout)', String(b.expired)],
      );
    }
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n';
}
