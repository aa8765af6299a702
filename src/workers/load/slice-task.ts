// The load generator's piscina task: one slice of simulated clients for the whole run, driven
// by this worker's single event loop. Clients start at their offsets, a 20 ms poll runs the
// timers and traffic of the clients that have work (a tick wheel files an idle connected client
// under its next keepalive, so 20,000 held clients cost a few polls a round, not 20,000),
// progress goes to the main thread about four times a second, and at the end every client
// closes (explicit-exit-notify where configured) and its socket with it.
import { reviveWrap } from '../../shared/config/wrap';
import { LatencyHistogram } from '../../shared/load/histogram';
import { TickWheel } from '../../shared/tick-wheel';
import type { ProgressMessage, SliceResult, SliceTask, StopMessage } from '../../shared/load/task';
import { BulkBuffers } from './bulk-link';
import { SimulatedClient, SliceBuffers, type SliceStats } from './simulated-client';

const POLL_MS = 20;
const PROGRESS_MS = 250;
/** After traffic stops, how long outstanding echo replies may still arrive. */
const ECHO_GRACE_MS = 1000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function runSlice(task: SliceTask): Promise<SliceResult> {
  const profile = { ...task.profile, wrap: reviveWrap(task.profile.wrap) };
  const bulk = task.traffic.window > 0 && profile.transport === 'udp';
  const buffers = new SliceBuffers(bulk ? new BulkBuffers(profile) : null);
  const handshake = new LatencyHistogram();
  const rtt = new LatencyHistogram();
  const reconnect = new LatencyHistogram();
  const failures: Record<string, number> = {};
  const failureDetails: Record<string, string> = {};
  const totals = {
    connected: 0,
    failed: 0,
    disconnected: 0,
    reconnects: 0,
    reconnectFailures: 0,
    echoSent: 0,
    echoReceived: 0,
    echoExpired: 0,
    bytesSent: 0,
    bytesReceived: 0,
    decryptErrors: 0,
  };
  let lastConnectedAt: number | null = null;
  let firstEchoAt = 0;
  let lastEchoAt = 0;
  const stats: SliceStats = {
    onConnected(_index, ms) {
      totals.connected++;
      handshake.record(ms);
      lastConnectedAt = Date.now();
    },
    onFailed(_index, reason, detail) {
      totals.failed++;
      failures[reason] = (failures[reason] ?? 0) + 1;
      failureDetails[reason] ??= detail;
    },
    onDisconnected(_index, reason) {
      totals.disconnected++;
      const key = `disconnected:${reason}`;
      failureDetails[key] ??= reason;
    },
    onReconnected(_index, ms) {
      totals.reconnects++;
      reconnect.record(ms);
    },
    onReconnectFailed(_index, reason, detail) {
      totals.reconnectFailures++;
      failureDetails[`reconnect:${reason}`] ??= detail;
    },
    onEchoSent(bytes) {
      totals.echoSent++;
      totals.bytesSent += bytes;
      const now = performance.now();
      if (firstEchoAt === 0) firstEchoAt = now;
      lastEchoAt = now;
    },
    onEchoReply(bytes, ms) {
      totals.echoReceived++;
      totals.bytesReceived += bytes;
      rtt.record(ms);
    },
    onEchoExpired(count) {
      totals.echoExpired += count;
    },
    onDecryptError() {
      totals.decryptErrors++;
    },
  };

  const wheel = new TickWheel<SimulatedClient>(POLL_MS);
  const clients = task.clientIndexes.map(
    (index) =>
      new SimulatedClient(
        index,
        profile,
        task.traffic,
        task.handshakeTimeoutMs,
        task.reconnectDelayMs,
        buffers,
        stats,
        wheel,
        task.sources.length > 0 ? task.sources[index % task.sources.length] : undefined,
      ),
  );
  // Date.now() is the clock all workers share; performance.now() is per thread but monotonic.
  const perfOf = (epochMs: number): number => performance.now() + (epochMs - Date.now());
  const startAt = perfOf(task.startAt);
  let endAt = perfOf(task.endAt);
  let started = 0;
  let firstStartAt: number | null = null;

  const port = task.port;
  port.on('message', (m: StopMessage) => {
    if (m.type === 'stop') endAt = Math.min(endAt, performance.now());
  });
  const progress = (): void => {
    const msg: ProgressMessage = {
      type: 'progress',
      slice: task.slice,
      started,
      connected: totals.connected,
      failed: totals.failed,
      bytesSent: totals.bytesSent,
      bytesReceived: totals.bytesReceived,
    };
    port.postMessage(msg);
  };

  let lastProgress = 0;
  for (;;) {
    const now = performance.now();
    if (now >= endAt) break;
    while (started < clients.length && startAt + task.startOffsetsMs[started]! <= now) {
      firstStartAt ??= Date.now();
      const client = clients[started++]!;
      client.start(now);
      wheel.wake(client);
    }
    wheel.tick(now, (client) => client.poll(now, true));
    if (now - lastProgress >= PROGRESS_MS) {
      lastProgress = now;
      progress();
    }
    await sleep(POLL_MS);
  }

  // Traffic stops; replies in flight still count for a moment, then everyone closes.
  if ((task.traffic.pps > 0 || task.traffic.window > 0) && totals.echoSent > 0) {
    const graceEnd = performance.now() + ECHO_GRACE_MS;
    while (performance.now() < graceEnd && totals.echoReceived < totals.echoSent) {
      const now = performance.now();
      wheel.tick(now, (client) => client.poll(now, false));
      await sleep(POLL_MS);
    }
  }
  const unfinishedStages: Record<string, number> = {};
  let unfinished = 0;
  for (const c of clients) {
    if (!c.isHandshaking) continue;
    unfinished++;
    unfinishedStages[c.stage] = (unfinishedStages[c.stage] ?? 0) + 1;
    failureDetails[`unfinished:${c.stage}`] ??= c.describeStuck(performance.now());
  }
  const connectedAtEnd = clients.filter((c) => c.isConnected).length;
  await Promise.all(clients.map((c) => c.close()));
  progress();
  port.close();
  return {
    requested: clients.length,
    started,
    connected: totals.connected,
    unfinished,
    unfinishedStages,
    disconnected: totals.disconnected,
    reconnects: totals.reconnects,
    reconnectFailures: totals.reconnectFailures,
    reconnect: reconnect.toJSON(),
    connectedAtEnd,
    failures,
    failureDetails,
    firstStartAt,
    lastConnectedAt,
    handshake: handshake.toJSON(),
    rtt: rtt.toJSON(),
    echoSent: totals.echoSent,
    echoReceived: totals.echoReceived,
    echoExpired: totals.echoExpired,
    bytesSent: totals.bytesSent,
    bytesReceived: totals.bytesReceived,
    trafficMs: lastEchoAt - firstEchoAt,
    decryptErrors: totals.decryptErrors,
  };
}
