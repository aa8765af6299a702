// TUN to link (OpenVPN's process_incoming_tun in server mode): packets the main thread read from
// TUN and routed to our clients arrive on the from-tun ring, tagged with the peer-id (or
// broadcast); with tun-queues shard, the shard's own TUN queue hands in the packets it read for
// our clients (tun-queue-in.ts). Each is copied once into send memory behind room for the
// data-channel header, sealed in place in runs of one key, and the batch goes out in one sendmmsg.
import { COUNTER } from '../../shared/counters';
import { ADDRESS_SIZE, PacketBatch, PeerAddresses } from '../../shared/native';
import { FRAMING_HEADROOM, FRAMING_TAILROOM, type CompressFramer } from '../../shared/protocol/compress-framing';
import { MAX_DATA_HEADROOM, MAX_DATA_TAILROOM, type DataChannelKey } from '../../shared/protocol/data-channel';
import { clampMss } from '../../shared/protocol/mss';
import { BROADCAST_PEER_ID } from '../../shared/peer-id';
import type { PacketRing, RingVisitor } from '../../shared/ring';
import type { ShardClient } from './client';
import type { ClientTable } from './clients';
import type { LinkOut } from './link-out';
import { BATCH, SLOT } from './sizes';

/** Where plaintext lands in a send slot: room for any data-channel header and compression framing. */
const PAYLOAD_AT = MAX_DATA_HEADROOM + FRAMING_HEADROOM;
/** The largest plaintext a send slot takes, with the framing and CBC padding after it. */
const MAX_PAYLOAD = SLOT - PAYLOAD_AT - FRAMING_TAILROOM - MAX_DATA_TAILROOM;

export class TunIn {
  // Plaintext is placed PAYLOAD_AT into each slot, framed, then sealed in place.
  private readonly out = PacketBatch.allocate(BATCH, SLOT);
  private readonly outTo = new PeerAddresses(BATCH);
  private readonly outKey: (DataChannelKey | null)[] = new Array<DataChannelKey | null>(BATCH).fill(null);
  private readonly slotBase: Uint32Array;
  /** Where packet j's framed plaintext starts (its header goes in front). */
  private readonly payloadStart = new Uint32Array(BATCH);
  /** One run of one key's packets, sealed by one encrypt call. */
  private readonly sealRun = new PacketBatch(this.out.memory, new Uint32Array(BATCH), SLOT);
  private outCount = 0;
  private running = true;
  private readonly visit: RingVisitor = (slot, length, peerId) => this.queue(slot, 0, length, peerId);

  constructor(
    private readonly fromTun: PacketRing,
    private readonly clients: ClientTable,
    private readonly link: LinkOut,
    private readonly counters: Float64Array,
    private readonly framer: CompressFramer,
  ) {
    this.slotBase = new Uint32Array(this.out.offsets);
  }

  /** Drains the from-tun ring until stop(). */
  async run(): Promise<void> {
    while (this.running) {
      await this.fromTun.waitForData();
      if (!this.running) break;
      while (this.fromTun.popBatch(BATCH, this.visit) > 0) this.flush();
    }
  }

  stop(): void {
    this.running = false;
    this.fromTun.wake();
  }

  /**
   * Queues the packet at memory[offset, offset + length) for client `peerId` (every client for
   * BROADCAST_PEER_ID); flush() sends. The memory may be reused once this returns.
   */
  queue(memory: Uint8Array, offset: number, length: number, peerId: number): void {
    if (peerId === BROADCAST_PEER_ID) {
      for (const client of this.clients.values()) this.queueFromTun(client, memory, offset, length);
      return;
    }
    const client = this.clients.byPeerId(peerId);
    if (client === undefined) {
      this.counters[COUNTER.dropUnknownPeer]++;
      return;
    }
    this.queueFromTun(client, memory, offset, length);
  }

  private queueFromTun(client: ShardClient, memory: Uint8Array, offset: number, length: number): void {
    if (!this.queueFor(client, memory, offset, length)) return;
    client.tunnelActivity(length);
    this.counters[COUNTER.tunPacketsIn]++;
    this.counters[COUNTER.tunBytesIn] += length;
  }

  /**
   * Queues a packet the shard made itself for `client` (block-ipv6's answer): sent like one from
   * TUN, but neither counted as read from TUN nor as the client's tunnel activity (--inactive).
   */
  queueAnswer(client: ShardClient, packet: Uint8Array): void {
    this.queueFor(client, packet, 0, packet.length);
  }

  /** Frames the packet into the next slot for `client`; false (counted) when it cannot go. */
  private queueFor(client: ShardClient, memory: Uint8Array, offset: number, length: number): boolean {
    const key = client.keys.send;
    if (!client.connected || key === null) {
      this.counters[COUNTER.dropNotConnected]++;
      return false;
    }
    if (length > MAX_PAYLOAD) {
      this.counters[COUNTER.dropShort]++;
      return false;
    }
    if (this.outCount === BATCH) this.flush();
    const j = this.outCount++;
    const at = this.slotBase[j] + PAYLOAD_AT;
    // Buffer's copy takes offsets, so no view is made per packet.
    Buffer.prototype.copy.call(memory, this.out.memory, at, offset, offset + length);
    clampMss(this.out.memory, at, length, client.maxMss);
    this.framer.frame(this.out.memory, at, length);
    this.payloadStart[j] = this.framer.start;
    this.out.lengths[j] = this.framer.length;
    this.outKey[j] = key;
    this.outTo.bytes.set(client.addressBytes, j * ADDRESS_SIZE);
    return true;
  }

  /**
   * Seals the queued packets (one encrypt call per run of one key) and sends them in one
   * sendmmsg. A packet its key could not seal (packet-id exhausted) is left out of the batch,
   * which is compacted so that only sealed packets go out.
   */
  flush(): void {
    const count = this.outCount;
    if (count === 0) return;
    this.outCount = 0;
    const out = this.out;
    const to = this.outTo.bytes;
    const run = this.sealRun;
    let kept = 0;
    let start = 0;
    while (start < count) {
      const key = this.outKey[start]!;
      let end = start;
      while (end < count && this.outKey[end] === key) end++;
      for (let j = start; j < end; j++) {
        run.offsets[j - start] = this.payloadStart[j] - key.headroom;
        run.lengths[j - start] = out.lengths[j];
      }
      const sealed = key.encrypt(run, end - start);
      // kept <= start + k, so a move never overwrites a packet still to be read.
      for (let k = 0; k < sealed; k++, kept++) {
        out.offsets[kept] = run.offsets[k];
        out.lengths[kept] = run.lengths[k];
        const from = start + k;
        if (from !== kept) to.copyWithin(kept * ADDRESS_SIZE, from * ADDRESS_SIZE, (from + 1) * ADDRESS_SIZE);
      }
      if (sealed < end - start) this.counters[COUNTER.dropPacketIdExhausted] += end - start - sealed;
      start = end;
    }
    this.outKey.fill(null, 0, count);
    this.link.send(out, this.outTo, kept);
    out.offsets.set(this.slotBase);
  }
}
