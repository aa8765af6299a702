// Everything the shard sends on its UDP socket, counted in one place: batches of sealed data
// packets, single control datagrams, and two kinds of datagram queued and sent together: the
// keepalive pings of one timer tick (an idle concentrator's main traffic: 10,000 clients with
// keepalive 10 60 make 1,000 a second) and the stateless handshake replies of one receive batch
// (a spoofed-reset flood would otherwise cost a system call per reply). A datagram the socket does not take
// (sendmmsg stops at a full socket buffer) is dropped and counted, as OpenVPN drops a packet
// when the link is not writable.
import { COUNTER } from '../../shared/counters';
import type { LinkIO } from '../../shared/io';
import { ADDRESS_SIZE, PacketBatch, PeerAddresses } from '../../shared/native';
import { FRAMING_HEADROOM, FRAMING_TAILROOM, type CompressFramer } from '../../shared/protocol/compress-framing';
import { MAX_DATA_HEADROOM, MAX_DATA_TAILROOM } from '../../shared/protocol/data-channel';
import { PING_STRING_SIZE, writePingMessage } from '../../shared/protocol/ping';
import type { ShardClient } from './client';
import { BATCH, SLOT } from './sizes';

/** Room for one stateless reply: a hard reset with its wrap and early-negotiation TLV. */
const REPLY_SLOT = 256;
/** Room for one sealed keepalive ping: the 16-byte magic, framing and the largest data-channel overhead. */
const PING_SLOT = MAX_DATA_HEADROOM + FRAMING_HEADROOM + PING_STRING_SIZE + FRAMING_TAILROOM + MAX_DATA_TAILROOM;

export class LinkOut {
  // Single datagrams: control packets.
  private readonly one = PacketBatch.allocate(1, SLOT);
  private readonly oneTo = new PeerAddresses(1);
  /** Keepalive pings of this tick, each sealed in its own slot; `ping` is the view one is sealed through. */
  private readonly pings = PacketBatch.allocate(BATCH, PING_SLOT);
  private readonly pingsTo = new PeerAddresses(BATCH);
  private readonly ping = new PacketBatch(this.pings.memory, new Uint32Array(1), PING_SLOT);
  /** Where each queued ping lies after sealing (offset and length differ from the slot's). */
  private readonly pingSend = new PacketBatch(this.pings.memory, new Uint32Array(BATCH), PING_SLOT);
  private pingCount = 0;

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

  /**
   * Seals a keepalive ping to the client on its send key (OpenVPN's ping is a data packet) and
   * queues it; flushPings() sends the tick's pings with one sendmmsg, as does a full queue.
   */
  sendPing(client: ShardClient): void {
    const key = client.keys.send;
    if (key === null) return;
    if (this.pingCount === BATCH) this.flushPings();
    const k = this.pingCount;
    const ping = this.ping;
    const base = this.pings.offsets[k] + MAX_DATA_HEADROOM + FRAMING_HEADROOM;
    // Pings carry the compression framing too: the peer unframes before it looks for the magic.
    this.framer.frame(ping.memory, base, writePingMessage(ping.memory, base));
    ping.offsets[0] = this.framer.start - key.headroom;
    ping.lengths[0] = this.framer.length;
    if (key.encrypt(ping, 1) !== 1) {
      this.counters[COUNTER.dropPacketIdExhausted]++;
      return;
    }
    this.pingsQueued(k, ping.offsets[0], ping.lengths[0], client.addressBytes);
  }

  private pingsQueued(k: number, offset: number, length: number, address: Uint8Array): void {
    // The sealed ping starts where encrypt left it, inside slot k.
    this.pingSend.offsets[k] = offset;
    this.pingSend.lengths[k] = length;
    this.pingsTo.bytes.set(address, k * ADDRESS_SIZE);
    this.pingCount = k + 1;
  }

  flushPings(): void {
    const count = this.pingCount;
    if (count === 0) return;
    this.pingCount = 0;
    this.send(this.pingSend, this.pingsTo, count);
  }
}
