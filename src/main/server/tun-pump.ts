// The main thread's packet work: TUN -> the owning shard's from-tun ring (by the route table),
// and every shard's to-tun ring -> TUN, in batches. The shards fill their to-tun rings only with
// client-to-client (without it they write TUN themselves); then a packet from one client to
// another goes straight onto the other client's shard ring, never through TUN.
import type { TunIO } from '../../shared/io';
import { PacketBatch, POLL_READABLE } from '../../shared/native';
import { BROADCAST_PEER_ID, shardOfPeerId } from '../../shared/peer-id';
import type { PacketRing } from '../../shared/ring';
import { NO_ROUTE, type RouteTable } from './routes';

const BATCH = 64;
const CAPACITY = 2048;

export interface PumpCounters {
  tunRead: number;
  tunWritten: number;
  noRoute: number;
  tunWriteDrops: number;
  clientToClient: number;
  ringFull: number;
}

export interface PumpShard {
  readonly toTun: PacketRing;
  readonly fromTun: PacketRing;
}

function isMulticast(packet: Uint8Array, offset: number, length: number): boolean {
  const version = packet[offset] >> 4;
  if (version === 4 && length >= 20) return (packet[offset + 16] & 0xf0) === 0xe0;
  if (version === 6 && length >= 40) return packet[offset + 24] === 0xff;
  return false;
}

export class TunPump {
  readonly counters: PumpCounters = { tunRead: 0, tunWritten: 0, noRoute: 0, tunWriteDrops: 0, clientToClient: 0, ringFull: 0 };
  private readonly readBatch = PacketBatch.allocate(BATCH, CAPACITY);
  private readonly writeBatch = PacketBatch.allocate(BATCH, CAPACITY);
  private writeCount = 0;
  private running = false;
  private readonly draining = new Set<number>();
  /** The ring each drain loop is waiting on (a dead shard's ring never gets data again). */
  private readonly waitingOn = new Map<number, PacketRing>();

  constructor(
    private readonly tun: TunIO,
    private readonly routes: RouteTable,
    /** Read at each use: a restarted shard brings new rings. */
    private readonly shards: () => readonly PumpShard[],
    private readonly clientToClient: boolean,
  ) {}

  start(): void {
    this.running = true;
    this.tun.poll(POLL_READABLE, () => this.onTunReadable());
    this.shards().forEach((_, index) => this.drainLoop(index));
  }

  /** A replaced shard: wake the wait on its old to-tun ring so the loop moves to the new one. */
  restartShard(index: number): void {
    this.waitingOn.get(index)?.wake();
    this.drainLoop(index);
  }

  stop(): void {
    this.running = false;
    this.tun.stopPoll();
    for (const shard of this.shards()) shard.toTun.wake();
  }

  private onTunReadable(): void {
    const batch = this.readBatch;
    const shards = this.shards();
    for (;;) {
      const n = this.tun.read(batch);
      if (n === 0) break;
      this.counters.tunRead += n;
      for (let i = 0; i < n; i++) {
        const offset = batch.offsets[i];
        const length = batch.lengths[i];
        if (isMulticast(batch.memory, offset, length)) {
          for (const shard of shards) this.pushTo(shard.fromTun, batch.memory, offset, length, BROADCAST_PEER_ID);
          continue;
        }
        const peerId = this.routes.lookupDestination(batch.memory, offset, length);
        if (peerId === NO_ROUTE) {
          this.counters.noRoute++;
          continue;
        }
        const shard = shards[shardOfPeerId(peerId, shards.length)];
        if (shard !== undefined) this.pushTo(shard.fromTun, batch.memory, offset, length, peerId);
      }
      for (const shard of shards) shard.fromTun.publish();
      if (n < BATCH) break;
    }
  }

  private pushTo(ring: PacketRing, memory: Uint8Array, offset: number, length: number, meta: number): void {
    const slot = ring.reserve();
    if (slot < 0) {
      ring.countDrops(1);
      this.counters.ringFull++;
      return;
    }
    Buffer.prototype.copy.call(memory, ring.slotPayload(slot), 0, offset, offset + length);
    ring.commit(length, meta);
  }

  private drainLoop(index: number): void {
    if (this.draining.has(index)) return;
    this.draining.add(index);
    const visit = (slot: Uint8Array, length: number, source: number): void => this.fromShard(slot, length, source);
    const loop = async (): Promise<void> => {
      let ring = this.shards()[index]?.toTun;
      while (this.running && ring !== undefined) {
        this.waitingOn.set(index, ring);
        await ring.waitForData();
        const current = this.shards()[index]?.toTun;
        if (current !== ring) {
          ring = current;
          continue;
        }
        while (ring.popBatch(BATCH, visit) > 0) this.flushTun();
        this.flushTun();
      }
      this.draining.delete(index);
      this.waitingOn.delete(index);
    };
    void loop();
  }

  private fromShard(slot: Uint8Array, length: number, source: number): void {
    if (this.clientToClient) {
      const peerId = this.routes.lookupDestination(slot, 0, length);
      if (peerId !== NO_ROUTE && peerId !== source) {
        const shards = this.shards();
        const shard = shards[shardOfPeerId(peerId, shards.length)];
        if (shard !== undefined) {
          this.pushTo(shard.fromTun, slot, 0, length, peerId);
          shard.fromTun.publish();
          this.counters.clientToClient++;
          return;
        }
      }
    }
    if (this.writeCount === BATCH) this.flushTun();
    const j = this.writeCount++;
    Buffer.prototype.copy.call(slot, this.writeBatch.memory, this.writeBatch.offsets[j], 0, length);
    this.writeBatch.lengths[j] = length;
  }

  private flushTun(): void {
    const count = this.writeCount;
    if (count === 0) return;
    this.writeCount = 0;
    const written = this.tun.write(this.writeBatch, count);
    this.counters.tunWritten += written;
    // A full TUN queue: drop the rest, as OpenVPN drops when tun is not writable.
    if (written < count) this.counters.tunWriteDrops += count - written;
  }
}
