// Everything the shard sends on its UDP socket, counted in one place: batches of sealed data
// packets, single control datagrams, keepalive pings, and the stateless handshake replies of
// one receive batch, sent together (a spoofed-reset flood would otherwise cost a system call
// per reply). A datagram the socket does not take
// (sendmmsg stops at a full socket buffer) is dropped and counted, as OpenVPN drops a packet
// when the link is not writable.
import { COUNTER } from '../../shared/counters';
import type { LinkIO } from '../../shared/io';
import { ADDRESS_SIZE, PacketBatch, PeerAddresses } from '../../shared/native';
import { FRAMING_HEADROOM, type CompressFramer } from '../../shared/protocol/compress-framing';
import { MAX_DATA_HEADROOM } from '../../shared/protocol/data-channel';
import { writePingMessage } from '../../shared/protocol/ping';
import type { ShardClient } from './client';
import { BATCH, SLOT } from './sizes';

/** Room for one stateless reply: a hard reset with its wrap and early-negotiation TLV. */
const REPLY_SLOT = 256;

export class LinkOut {
  // Single datagrams: control packets, stateless replies, pings.
  private readonly one = PacketBatch.allocate(1, SLOT);
  private readonly oneTo = new PeerAddresses(1);
  /** A keepalive ping, sealed in the single-datagram memory. */
  private readonly ping = new PacketBatch(this.one.memory, new Uint32Array(1), SLOT);

  private readonly replies = PacketBatch.allocate(BATCH, REPLY_SLOT);
  private readonly repliesTo = new PeerAddresses(BATCH);
  private replyCount = 0;

  constructor(
    private readonly link: LinkIO,
    private readonly counters: Float64Array,
    private readonly framer: CompressFramer,
  ) {}

  /** Sends datagrams 0..count of `batch` to their entries of `to`; returns how many went out. */
  send(batch: PacketBatch, to: PeerAddresses, count: number): number {
    if (count === 0) return 0;
    const sent = this.link.send(batch, to, count);
    const counters = this.counters;
    counters[COUNTER.linkPacketsOut] += sent;
    for (let i = 0; i < sent; i++) counters[COUNTER.linkBytesOut] += batch.lengths[i];
    if (sent < count) counters[COUNTER.dropLinkSend] += count - sent;
    return sent;
  }

  /** One datagram to the address entry `address` (ADDRESS_SIZE bytes). */
  sendTo(address: Uint8Array, wire: Uint8Array): void {
    if (wire.length > SLOT) return;
    this.one.set(0, wire);
    this.oneTo.bytes.set(address);
    this.send(this.one, this.oneTo, 1);
  }

  /**
   * Queues a stateless reply to the address entry `address`; flushReplies() sends the queue
   * (the receive loop calls it after each batch), as does a full queue.
   */
  queueReply(address: Uint8Array, wire: Uint8Array): void {
    if (wire.length > REPLY_SLOT) {
      this.counters[COUNTER.dropLinkSend]++;
      return;
    }
    if (this.replyCount === BATCH) this.flushReplies();
    const k = this.replyCount++;
    this.replies.set(k, wire);
    this.repliesTo.bytes.set(address, k * ADDRESS_SIZE);
  }

  flushReplies(): void {
    const count = this.replyCount;
    if (count === 0) return;
    this.replyCount = 0;
    this.send(this.replies, this.repliesTo, count);
  }

  /** A keepalive ping to the client on its send key (OpenVPN's ping is a data packet). */
  sendPing(client: ShardClient): void {
    const key = client.keys.send;
    if (key === null) return;
    const ping = this.ping;
    const base = this.one.offsets[0] + MAX_DATA_HEADROOM + FRAMING_HEADROOM;
    // Pings carry the compression framing too: the peer unframes before it looks for the magic.
    this.framer.frame(ping.memory, base, writePingMessage(ping.memory, base));
    ping.offsets[0] = this.framer.start - key.headroom;
    ping.lengths[0] = this.framer.length;
    if (key.encrypt(ping, 1) !== 1) {
      this.counters[COUNTER.dropPacketIdExhausted]++;
      return;
    }
    this.oneTo.bytes.set(client.addressBytes);
    this.send(ping, this.oneTo, 1);
  }
}
