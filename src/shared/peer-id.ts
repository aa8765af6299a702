// Peer-ids: 24-bit client numbers in P_DATA_V2 headers. shardvpn makes each one name its shard
// (peer-id mod shard count), so a data packet that reaches the wrong shard, or the main thread's
// route table, finds the owner without a lookup table.
export const MAX_PEER_ID = 0xfffffe;
/** 0xFFFFFF means "no peer-id" on the wire; we also use it for broadcast on the rings. */
export const BROADCAST_PEER_ID = 0xffffff;
/**
 * A tag on a shard's to-tun ring, above any peer-id: the packet was read from the shard's own TUN
 * queue (tun-queues shard) and belongs to another shard's client (or is multicast for them all,
 * with BROADCAST_PEER_ID); the main thread routes it and never writes it back to TUN.
 */
export const TUN_QUEUE_CROSSING = 0x1000000;

export function shardOfPeerId(peerId: number, shardCount: number): number {
  return peerId % shardCount;
}

/** Hands out the lowest free peer-ids of one shard (those congruent to it mod the shard count). */
export class PeerIdAllocator {
  private readonly free: number[] = [];
  private next: number;

  constructor(
    private readonly shard: number,
    private readonly shardCount: number,
  ) {
    if (!Number.isInteger(shardCount) || shardCount < 1 || shard < 0 || shard >= shardCount)
      throw new RangeError(`shard ${shard} of ${shardCount}`);
    this.next = shard;
  }

  /** A peer-id, or -1 when the shard has none left. */
  acquire(): number {
    if (this.free.length > 0) {
      // Lowest first, as OpenVPN reuses the lowest free slot.
      let best = 0;
      for (let i = 1; i < this.free.length; i++) if (this.free[i] < this.free[best]) best = i;
      const [id] = this.free.splice(best, 1);
      return id;
    }
    if (this.next > MAX_PEER_ID) return -1;
    const id = this.next;
    this.next += this.shardCount;
    return id;
  }

  release(peerId: number): void {
    if (shardOfPeerId(peerId, this.shardCount) !== this.shard || peerId >= this.next || this.free.includes(peerId)) return;
    this.free.push(peerId);
  }
}
