// The main thread's packet work: TUN -> the owning shard's from-tun ring (by the route table),
// and every shard's to-tun ring -> TUN, in batches. The shards fill their to-tun rings only with
// client-to-client (without it they write TUN themselves); then a packet from one client to
// another goes straight onto the other client's shard ring, never through TUN.
// With tun-queues shard, `tun` is the main thread's own queue of the multi-queue device (the
// kernel steers some flows to it), each shard reads its own queue, and a packet a shard read but
// does not own comes here on its to-tun ring tagged TUN_QUEUE_CROSSING: it is routed to its
// owner's from-tun ring and never written back to TUN. A client-to-client packet for no client is
// written to the queue of the shard it came from, so the kernel steers the replies to that shard.
import type { TunIO } from '../../shared/io';
import { PacketBatch, POLL_READABLE } from '../../shared/native';
import { BROADCAST_PEER_ID, shardOfPeerId, TUN_QUEUE_CROSSING } from '../../shared/peer-id';
import type { PacketRing } from '../../shared/ring';
import { isMulticast, NO_ROUTE, type RouteTable } from '../../shared/route-table';

const BATCH = 64;
const CAPACITY = 2048;

export interface PumpCounters {
  tunRead: number;
  tunWritten: number;
  noRoute: number;
  tunWriteDrops: number;
  clientToClient: number;
  ringFull: number;
  /** tun-queues shard: packets a shard read from its queue and handed here, routed to their owner. */
  queueCrossings: number;
}

export interface PumpShard {
  readonly toTun: PacketRing;
  readonly fromTun: PacketRing;
}

export class TunPump {
  readonly counters: PumpCounters = {
    tunRead: 0,
    tunWritten: 0,
    noRoute: 0,
    tunWriteDrops: 0,
    clientToClient: 0,
    ringFull: 0,
    queueCrossings: 0,
  };
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
    /** tun-queues shard: each shard's queue, by index; empty on the single-queue path. */
    private readonly queues: readonly TunIO[] = [],
  ) {}

  /** Where packets from shard `index`'s to-tun ring are written: its own queue, or the one device. */
  private writeTarget: TunIO | null = null;

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
    const visit = (slot: Uint8Array, length: number, meta: number): void =>
      (meta & TUN_QUEUE_CROSSING) !== 0
        ? this.crossing(index, slot, length, meta & ~TUN_QUEUE_CROSSING)
        : this.fromShard(slot, length, meta);
    const target = this.queues[index] ?? this.tun;
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
        // The drain is synchronous: no other loop writes the batch until it is flushed.
        this.writeTarget = target;
        while (ring.popBatch(BATCH, visit) > 0) {
          this.flushTun();
          // Crossings are pushed unpublished: one publish per ring per batch.
          for (const shard of this.shards()) shard.fromTun.publish();
        }
        this.flushTun();
      }
      this.draining.delete(index);
      this.waitingOn.delete(index);
    };
    void loop();
  }

  /** A packet shard `source` read from its TUN queue but does not own: to its owner (multicast: to the others). */
  private crossing(source: number, slot: Uint8Array, length: number, peerId: number): void {
    this.counters.queueCrossings++;
    const shards = this.shards();
    if (peerId === BROADCAST_PEER_ID) {
      shards.forEach((shard, index) => {
        if (index !== source) this.pushTo(shard.fromTun, slot, 0, length, BROADCAST_PEER_ID);
      });
      return;
    }
    const owner = this.routes.lookupDestination(slot, 0, length);
    if (owner === NO_ROUTE) {
      this.counters.noRoute++;
      return;
    }
    const shard = shards[shardOfPeerId(owner, shards.length)];
    if (shard !== undefined) this.pushTo(shard.fromTun, slot, 0, length, owner);
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
    const written = (this.writeTarget ?? this.tun).write(this.writeBatch, count);
    this.counters.tunWritten += written;
    // A full TUN queue: drop the rest, as OpenVPN drops when tun is not writable.
    if (written < count) this.counters.tunWriteDrops += count - written;
  }
}
