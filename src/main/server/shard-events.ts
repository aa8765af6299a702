// What the shards tell the main thread (multi.c's client-instance events, here across threads):
// a client passed TLS (admission decides), got its data channel, left; its counters once a
// second; log lines; and a shard worker that died and was replaced on its socket.
import { performance } from 'node:perf_hooks';

import type { Logger } from '../../shared/log';
import { STATS_ROW, type ShardToMain } from '../../shared/shard-protocol';
import type { ClientEvent } from '../ops/server-view';
import { clientEnvironment, type Admission } from './admission';
import type { ClientRegistry } from './clients';
import type { ShardHandle, ShardPoolEvents } from './shard-pool';
import type { TunPump } from './tun-pump';

type Message<T extends ShardToMain['type']> = Extract<ShardToMain, { type: T }>;

export class ShardEvents implements ShardPoolEvents {
  /** Set once the pump runs: a replaced shard's new rings go into it (a pump started later reads them itself). */
  private pump: TunPump | null = null;

  constructor(
    private readonly registry: ClientRegistry,
    private readonly admission: Admission,
    private readonly logger: Logger,
    private readonly emit: (event: ClientEvent) => void,
  ) {}

  attachPump(pump: TunPump): void {
    this.pump = pump;
  }

  message(shard: ShardHandle, message: ShardToMain): void {
    switch (message.type) {
      case 'client-auth':
        this.admission.authenticated(shard.index, message);
        return;
      case 'client-established':
        return this.established(message);
      case 'client-gone':
        return this.gone(message);
      case 'stats':
        return this.stats(message);
      case 'log':
        this.logger.log(message.level, message.message, message.category);
        return;
      case 'ready':
        return this.ready(shard);
      case 'stopped':
        return;
    }
  }

  /** The worker died; the pool replaces it on the same socket after `restartDelayMs`. Its clients must reconnect. */
  died(shard: ShardHandle, reason: string, restartDelayMs: number): void {
    const awaited = this.admission.shardDied(shard.index);
    const gone = this.registry.releaseShard(shard.index);
    const restart =
      restartDelayMs === 0
        ? 'restarted on the same socket'
        : `restarting on the same socket in ${(restartDelayMs / 1000).toFixed(2)} s (${shard.backoff.quickFailures} deaths in a row soon after its start)`;
    this.logger.log(1, `shard ${shard.index} died (${reason}): ${restart}; ${gone.length} of its clients must reconnect`);
    for (const entry of gone)
      if (!awaited.has(entry.peerId)) this.admission.disconnected(entry, entry.stats?.bytesReceived ?? 0, entry.stats?.bytesSent ?? 0);
    this.pump?.restartShard(shard.index);
  }

  /** A replacement worker serves: say how long its socket went unserved. */
  private ready(shard: ShardHandle): void {
    if (shard.exitedAt === null) return;
    const ms = performance.now() - shard.exitedAt;
    shard.exitedAt = null;
    this.logger.log(
      1,
      `shard ${shard.index} replaced: serving again ${ms.toFixed(1)} ms after its worker exited (restart ${shard.restarts})`,
    );
  }

  private established(message: Message<'client-established'>): void {
    const entry = this.registry.get(message.peerId);
    if (entry === undefined) return;
    entry.established = true;
    entry.cipher = message.cipher;
    entry.stats = message.stats;
    this.logger.log(
      2,
      `${entry.commonName}/${entry.realAddress.address}:${entry.realAddress.port} MULTI: primary virtual IP: ${entry.virtual4 ?? entry.virtual6 ?? 'none'} (peer-id ${entry.peerId}, shard ${entry.shard}, ${message.cipher})`,
    );
    this.emit({ type: 'established', cid: entry.cid, env: clientEnvironment(entry) });
    if (entry.virtual4 !== null) this.emit({ type: 'address', cid: entry.cid, address: entry.virtual4, primary: true });
  }

  private gone(message: Message<'client-gone'>): void {
    const announced = this.admission.gone(message.peerId);
    const entry = this.registry.release(message.peerId, message.bytesReceived, message.bytesSent);
    if (entry === undefined || !announced) return;
    this.logger.log(2, `${entry.commonName}/${entry.realAddress.address}:${entry.realAddress.port} disconnected: ${message.reason}`);
    this.admission.disconnected(entry, message.bytesReceived, message.bytesSent);
  }

  /** Rows of (peer-id, bytes received, bytes sent, last ref), and clients that floated. */
  private stats(message: Message<'stats'>): void {
    const rows = message.rows;
    for (let at = 0; at + STATS_ROW <= rows.length; at += STATS_ROW) {
      const stats = this.registry.get(rows[at]!)?.stats;
      if (stats === undefined || stats === null) continue;
      stats.bytesReceived = rows[at + 1]!;
      stats.bytesSent = rows[at + 2]!;
      stats.lastRef = rows[at + 3]!;
    }
    for (const { peerId, realAddress } of message.floated) {
      const stats = this.registry.get(peerId)?.stats;
      if (stats !== undefined && stats !== null) stats.realAddress = realAddress;
    }
  }
}
