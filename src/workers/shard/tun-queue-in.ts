// The shard's own queue of a multi-queue TUN device (tun-queues shard): OpenVPN's read of the TUN
// device, done by the shard instead of the main thread. The kernel's flow steering (tun.c,
// tun_automq_select_queue) gives a flow's packets to the queue that last wrote that flow, and a
// shard writes its own clients' packets to its queue, so replies to them mostly land here. A
// packet is looked up among this shard's clients (their virtual addresses and iroutes) and queued
// for the link at once. Anything else (another shard's client, an iroute or address this shard
// does not know, multicast for the other shards' clients, no route at all) crosses to the main
// thread on the to-tun ring, tagged TUN_QUEUE_CROSSING, and the main thread's route table
// decides, as it does for its own queue. Crossings are counted (tunQueueCrossings).
import { COUNTER } from '../../shared/counters';
import type { TunIO } from '../../shared/io';
import { PacketBatch, POLL_READABLE } from '../../shared/native';
import { BROADCAST_PEER_ID, TUN_QUEUE_CROSSING } from '../../shared/peer-id';
import type { PacketRing } from '../../shared/ring';
import { isMulticast, NO_ROUTE, type RouteTable } from '../../shared/route-table';
import { BATCH, SLOT } from './sizes';
import type { TunIn } from './tun-in';

/**
 * Read batches per readable event: the poll is level-triggered, so a queue that still holds
 * packets fires again at once, and the socket, the rings and the timers get their turn between.
 */
const BATCHES_PER_TURN = 8;

export class TunQueueIn {
  private readonly batch = PacketBatch.allocate(BATCH, SLOT);

  constructor(
    private readonly queue: TunIO,
    /** This shard's clients' addresses and iroutes, by peer-id. */
    private readonly routes: RouteTable,
    private readonly tunIn: TunIn,
    private readonly toMain: PacketRing,
    private readonly counters: Float64Array,
  ) {}

  start(): void {
    this.queue.poll(POLL_READABLE, () => this.onReadable());
  }

  stop(): void {
    this.queue.stopPoll();
  }

  /** Reads what waits in the queue now (also between receive batches: LinkIn.onTunWritten). */
  drain(): void {
    this.onReadable();
  }

  private onReadable(): void {
    const batch = this.batch;
    const counters = this.counters;
    for (let turn = 0; turn < BATCHES_PER_TURN; turn++) {
      const n = this.queue.read(batch);
      if (n === 0) break;
      counters[COUNTER.tunQueueReads] += n;
      for (let i = 0; i < n; i++) {
        const offset = batch.offsets[i];
        const length = batch.lengths[i];
        if (isMulticast(batch.memory, offset, length)) {
          this.tunIn.queue(batch.memory, offset, length, BROADCAST_PEER_ID);
          this.cross(batch.memory, offset, length, BROADCAST_PEER_ID);
          continue;
        }
        const peerId = this.routes.lookupDestination(batch.memory, offset, length);
        if (peerId === NO_ROUTE) this.cross(batch.memory, offset, length, 0);
        else this.tunIn.queue(batch.memory, offset, length, peerId);
      }
      // Before the next read reuses the memory.
      this.tunIn.flush();
      this.toMain.publish();
      if (n < BATCH) break;
    }
  }

  private cross(memory: Uint8Array, offset: number, length: number, peerId: number): void {
    this.counters[COUNTER.tunQueueCrossings]++;
    const ring = this.toMain;
    const slot = ring.reserve();
    if (slot < 0) {
      ring.countDrops(1);
      this.counters[COUNTER.dropRingFull]++;
      return;
    }
    Buffer.prototype.copy.call(memory, ring.slotPayload(slot), 0, offset, offset + length);
    ring.commit(length, TUN_QUEUE_CROSSING | peerId);
  }
}
