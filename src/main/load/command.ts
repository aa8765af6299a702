// `shardvpn load`: N simulated clients against an OpenVPN-protocol server (UDP or TCP), spread over
// piscina worker threads (one task per thread = one slice of clients for the whole run). The
// main thread reads the profile, hands out slices, prints progress and the final report.
import { writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';

import { ipv4ToNumber } from '../../shared/load/icmp-echo';
import type { ProgressMessage, SliceResult, SliceTask, StopMessage } from '../../shared/load/task';
import { LOAD_USAGE, RECONNECT_DELAY_S, parseLoadArgs, type LoadOptions } from './options';
import { loadProfile } from './profile';
import { createProgressView } from './progress';
import { buildReport, formatReport } from './report';

/** Time the worker threads get to load before the first client is due. */
const WARMUP_MS = 300;
const WORKER_FILE = path.join(__dirname, '..', '..', 'workers', 'load', 'slice-task.js');

/** Clients dealt round-robin, so every slice's start times spread over the whole ramp. */
function slices(opts: LoadOptions): Array<{ indexes: number[]; offsets: number[] }> {
  const out = Array.from({ length: opts.threads }, () => ({ indexes: [] as number[], offsets: [] as number[] }));
  for (let i = 0; i < opts.clients; i++) {
    const s = out[i % opts.threads]!;
    s.indexes.push(i);
    s.offsets.push(opts.rate > 0 ? (i * 1000) / opts.rate : 0);
  }
  return out;
}

/**
 * Runs `shardvpn load ARGS`. Exit status: 0 when every client connected, 3 when some failed or
 * never finished their handshake, 1 for a usage or profile mistake.
 */
export async function runLoadCommand(argv: readonly string[]): Promise<number> {
  const parsed = parseLoadArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`shardvpn load: ${parsed.error}\n`);
    return 1;
  }
  if ('help' in parsed) {
    process.stdout.write(LOAD_USAGE);
    return 0;
  }
  const opts = parsed.options;
  if (opts.target !== null && ipv4ToNumber(opts.target) === null) {
    process.stderr.write(`shardvpn load: --target ${opts.target}: give an IPv4 address inside the tunnel\n`);
    return 1;
  }
  const loaded = await loadProfile(opts);
  if (!loaded.ok) {
    process.stderr.write(`shardvpn load: ${loaded.error}\n`);
    return 1;
  }
  for (const w of loaded.warnings) process.stderr.write(`shardvpn load: warning: ${w}\n`);
  const profile = loaded.profile;
  if (opts.bandwidth && profile.transport !== 'udp') {
    process.stderr.write(
      `shardvpn load: --bandwidth needs a UDP profile (it sends batches with sendmmsg); ${opts.profile} says proto tcp: use a proto udp profile or --pps\n`,
    );
    return 1;
  }
  const wrongFamily = opts.sources.find((a) => isIP(a) !== profile.family);
  if (wrongFamily !== undefined) {
    process.stderr.write(
      `shardvpn load: --source ${wrongFamily} is not an IPv${profile.family} address, as the server ${profile.address} is\n`,
    );
    return 1;
  }
  const server = `${profile.family === 6 ? `[${profile.address}]` : profile.address}:${profile.port}`;
  const lastOffsetMs = opts.rate > 0 ? ((opts.clients - 1) * 1000) / opts.rate : 0;
  if (lastOffsetMs >= opts.durationS * 1000) {
    process.stderr.write(
      `shardvpn load: warning: starting ${opts.clients} clients at ${opts.rate}/s takes ${(lastOffsetMs / 1000).toFixed(1)} s, longer than --duration ${opts.durationS}; the run ends at the last start, so the last clients have no time to connect\n`,
    );
  }

  const pool = new Piscina({
    filename: WORKER_FILE,
    minThreads: opts.threads,
    maxThreads: opts.threads,
    concurrentTasksPerWorker: 1,
    idleTimeout: 1000,
  });
  const startAt = Date.now() + WARMUP_MS;
  const endAt = startAt + Math.max(opts.durationS * 1000, lastOffsetMs);
  const progress = new Map<number, ProgressMessage>();
  const ports: MessagePort[] = [];
  const runs: Promise<SliceResult>[] = [];
  for (const [slice, s] of slices(opts).entries()) {
    if (s.indexes.length === 0) continue;
    const channel = new MessageChannel();
    ports.push(channel.port1);
    channel.port1.on('message', (m: ProgressMessage) => progress.set(m.slice, m));
    const task: SliceTask = {
      profile,
      slice,
      clientIndexes: s.indexes,
      startOffsetsMs: s.offsets,
      startAt,
      endAt,
      handshakeTimeoutMs: opts.handshakeTimeoutS * 1000,
      reconnectDelayMs: opts.reconnect ? RECONNECT_DELAY_S * 1000 : null,
      sources: opts.sources,
      traffic: { pps: opts.pps, size: opts.size, target: opts.target, window: opts.bandwidth ? opts.window : 0 },
      port: channel.port2,
    };
    runs.push(pool.run(task, { name: 'runSlice', transferList: [channel.port2] }) as Promise<SliceResult>);
  }

  const stop = (): void => {
    process.stderr.write('\nshardvpn load: stopping (clients close now)\n');
    for (const p of ports) p.postMessage({ type: 'stop' } satisfies StopMessage);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // A bar on a terminal, a plain line a second otherwise.
  const view = opts.quiet ? null : createProgressView(process.stderr, opts.clients, endAt - startAt);
  /** When every client had connected or failed (the end of the connect phase). */
  let settledMs: number | null = null;
  const live =
    view === null
      ? null
      : setInterval(() => {
          let started = 0,
            connected = 0,
            failed = 0,
            sent = 0,
            received = 0;
          for (const m of progress.values()) {
            started += m.started;
            connected += m.connected;
            failed += m.failed;
            sent += m.bytesSent;
            received += m.bytesReceived;
          }
          const elapsed = Date.now() - startAt;
          if (settledMs === null && connected + failed >= opts.clients) settledMs = elapsed;
          view.update(elapsed, { started, connected, failed, traffic: opts.bandwidth ? { sent, received } : null }, settledMs);
        }, 1000);

  let results: SliceResult[];
  try {
    results = await Promise.all(runs);
  } catch (error) {
    process.stderr.write(`\nshardvpn load: a worker failed: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  } finally {
    if (live !== null) clearInterval(live);
    view?.stop();
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    for (const p of ports) p.close();
    await pool.destroy();
  }

  const firstStart = results.reduce<number | null>(
    (a, r) => (r.firstStartAt !== null && (a === null || r.firstStartAt < a) ? r.firstStartAt : a),
    null,
  );
  const report = buildReport(results, {
    server,
    threads: opts.threads,
    rate: opts.rate,
    durationS: opts.durationS,
    pps: opts.pps,
    window: opts.bandwidth ? opts.window : 0,
    size: opts.size,
    startAt: firstStart ?? startAt,
  });
  process.stdout.write(formatReport(report));
  if (opts.json !== null) {
    try {
      writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
    } catch (error) {
      process.stderr.write(`shardvpn load: --json ${opts.json}: ${(error as Error).message}\n`);
      return 1;
    }
  }
  return report.connected === report.requested && report.failed === 0 ? 0 : 3;
}
