// Link to TUN (OpenVPN's process_incoming_link in server mode): datagrams off the shard's socket
// in batches, data packets checked (peer-id or address, key_id) and opened run by run, the
// plaintext checked (ping, OCC, source address) and handed on; control packets to ControlIn.
// Decrypted packets go to the TUN device straight from the receive memory when the shard writes
// TUN itself (no client-to-client), else onto the to-tun ring for the main thread.
import { CompressFramer } from '../../shared/protocol/compress-framing';
import { COUNTER } from '../../shared/counters';
import type { LinkIO, TunIO } from '../../shared/io';
import { ADDRESS_SIZE, PacketBatch, PeerAddresses, POLL_READABLE } from '../../shared/native';
import type { DataChannelKey } from '../../shared/protocol/data-channel';
import { DataRuns, type DataRunHandler } from '../../shared/protocol/data-run';
import { isIpv6Packet } from '../../shared/protocol/block-ipv6';
import { clampMss } from '../../shared/protocol/mss';
import { parseOccMessage, payloadKind } from '../../shared/protocol/occ';
import { P_DATA_V1, P_DATA_V2, P_KEY_ID_MASK, P_OPCODE_SHIFT } from '../../shared/protocol/opcodes';
import type { PacketRing } from '../../shared/ring';
import type { ShardClient, ShardClientHost } from './client';
import { addressKey, type ClientTable } from './clients';
import type { ControlIn } from './control';
import { BATCH, SLOT } from './sizes';

/**
 * Receive batches per readable event. The poll is level-triggered, so a socket that still holds
 * datagrams fires again at once; in between, the event loop runs the from-tun ring and timers.
 * Without the cap, a socket that never drains (a flood faster than the shard) would hold the
 * replies to every client of this shard back for as long as the flood lasts.
 */
const BATCHES_PER_TURN = 8;

export class LinkIn implements DataRunHandler<ShardClient> {
  private readonly recv = PacketBatch.allocate(BATCH, SLOT);
  private readonly from = new PeerAddresses(BATCH);
  private readonly runs: DataRuns<ShardClient>;
  /** Plaintext packets for TUN, in the receive memory (written before the next receive). */
  private readonly tunOut = new PacketBatch(this.recv.memory, new Uint32Array(BATCH), SLOT);
  private tunOutCount = 0;
  private readonly counters: Float64Array;
  /**
   * Runs after each receive batch's packets went to TUN (tun-queues shard: read our own queue).
   * The kernel answers what it can at once (an ICMP echo, a TCP ACK) into the queue during the
   * write; reading it before the next batch keeps a turn of up to 8 batches from overflowing the
   * queue (500 packets) and sends the answers without waiting for the turn to end.
   */
  onTunWritten: (() => void) | null = null;
  /**
   * block-ipv6 on the server: answers an IPv6 packet from `client` (the ICMPv6 answer built
   * from memory[start, start + length) goes back to it sealed); the packet itself goes nowhere.
   */
  onBlockedIpv6: ((client: ShardClient, memory: Uint8Array, start: number, length: number) => void) | null = null;

  constructor(
    private readonly host: ShardClientHost,
    private readonly link: LinkIO,
    /** The TUN device when the shard writes it itself; null: the to-tun ring. */
    private readonly tun: TunIO | null,
    private readonly toTun: PacketRing,
    private readonly clients: ClientTable,
    private readonly control: ControlIn,
    private readonly framer: CompressFramer,
    /** false over TCP: a connection is its client, which never moves to another (multi_tcp). */
    private readonly floats: boolean,
  ) {
    this.counters = host.counters;
    this.runs = new DataRuns(this.recv.memory, BATCH, this);
  }

  start(): void {
    this.link.poll(POLL_READABLE, () => this.onReadable());
  }

  stop(): void {
    this.link.stopPoll();
  }

  private onReadable(): void {
    let datagrams = 0;
    let drained = false;
    for (let batches = 0; batches < BATCHES_PER_TURN && !drained; batches++) {
      const n = this.link.recv(this.recv, this.from);
      datagrams += n;
      drained = n < BATCH;
      if (n === 0) break;
      this.receive(n, this.host.now());
      // Before the next receive reuses the memory the packets still sit in.
      this.flushTun();
      this.control.flushReplies();
    }
    this.control.turnEnded(drained, datagrams);
    this.toTun.publish();
  }

  private receive(n: number, now: number): void {
    const memory = this.recv.memory;
    const offsets = this.recv.offsets;
    const lengths = this.recv.lengths;
    const counters = this.counters;
    for (let i = 0; i < n; i++) {
      const at = offsets[i];
      const length = lengths[i];
      counters[COUNTER.linkPacketsIn]++;
      counters[COUNTER.linkBytesIn] += length;
      if (length === 0) {
        counters[COUNTER.dropShort]++;
        continue;
      }
      const op = memory[at] >> P_OPCODE_SHIFT;
      if (op !== P_DATA_V2 && op !== P_DATA_V1) {
        // The data before it first: this packet may retire a key or close its client.
        this.runs.flush(now);
        this.control.receive(memory, at, length, op, this.from, i);
        continue;
      }
      const client =
        op === P_DATA_V2 && length >= 4
          ? this.clients.byPeerId((memory[at + 1] << 16) | (memory[at + 2] << 8) | memory[at + 3])
          : this.clients.atAddress(addressKey(this.from.bytes, i));
      if (client === undefined) {
        counters[COUNTER.dropUnknownPeer]++;
        continue;
      }
      if (!client.connected) {
        counters[COUNTER.dropNotConnected]++;
        continue;
      }
      const key = client.keys.byId[memory[at] & P_KEY_ID_MASK];
      if (key === null) {
        counters[COUNTER.dropBadKeyId]++;
        continue;
      }
      this.runs.add(client, key, i, at, length, now);
    }
    this.runs.flush(now);
  }

  holds(client: ShardClient, key: DataChannelKey): boolean {
    return client.keys.holds(key);
  }

  stale(_client: ShardClient, count: number): void {
    this.counters[COUNTER.dropBadKeyId] += count;
  }

  opened(client: ShardClient, key: DataChannelKey, count: number, accepted: number, now: number): void {
    const counters = this.counters;
    const results = this.runs.results;
    const memory = this.recv.memory;
    if (accepted > 0) client.keys.confirm(key);
    for (let j = 0; j < count; j++) {
      if (!results.ok(j)) {
        const reason = results.reason(j);
        if (reason === 'replay') counters[COUNTER.dropReplay]++;
        else if (reason === 'bad-tag') counters[COUNTER.dropBadTag]++;
        continue;
      }
      if (client.state === 'closed') {
        // An OCC exit earlier in this run closed it.
        counters[COUNTER.dropNotConnected]++;
        continue;
      }
      const index = this.runs.index[j];
      if (!this.sameAddress(client, index)) {
        if (!this.floats) {
          counters[COUNTER.dropSourceAddress]++;
          continue;
        }
        this.float(client, index);
      }
      client.received(now);
      let start = results.payloadOffsets[j];
      let length = results.payloadLengths[j];
      if (this.framer.kind !== 'none') {
        const unframed = this.framer.unframe(memory, start, length);
        if (unframed !== 'ok') {
          counters[unframed === 'compressed' ? COUNTER.dropCompressed : COUNTER.dropBadFraming]++;
          continue;
        }
        start = this.framer.start;
        length = this.framer.length;
      }
      const kind = payloadKind(memory, start, length);
      if (kind === 'ping') continue;
      if (kind === 'occ') {
        const occ = parseOccMessage(memory, start, length);
        if (occ.ok && occ.message.op === 'exit') client.close('client exit notification');
        continue;
      }
      // Before the source check: with block-ipv6 the server pushes every client the same
      // placeholder IPv6 address (the manual's set-up), which no client owns here.
      if (this.onBlockedIpv6 !== null && isIpv6Packet(memory, start, length)) {
        counters[COUNTER.dropBlockedIpv6]++;
        this.onBlockedIpv6(client, memory, start, length);
        continue;
      }
      if (!client.sources.owns(memory, start, length)) {
        counters[COUNTER.dropSourceAddress]++;
        continue;
      }
      client.tunnelActivity(length);
      clampMss(memory, start, length, client.maxMss);
      if (this.tun !== null) {
        const k = this.tunOutCount++;
        this.tunOut.offsets[k] = start;
        this.tunOut.lengths[k] = length;
      } else {
        const slot = this.toTun.reserve();
        if (slot < 0) {
          this.toTun.countDrops(1);
          counters[COUNTER.dropRingFull]++;
          continue;
        }
        Buffer.prototype.copy.call(memory, this.toTun.slotPayload(slot), 0, start, start + length);
        this.toTun.commit(length, client.peerId);
      }
      counters[COUNTER.tunPacketsOut]++;
      counters[COUNTER.tunBytesOut] += length;
    }
  }

  private flushTun(): void {
    const count = this.tunOutCount;
    if (count === 0 || this.tun === null) return;
    this.tunOutCount = 0;
    const written = this.tun.write(this.tunOut, count);
    // A full TUN queue: drop the rest, as OpenVPN drops when the device is not writable.
    if (written < count) this.counters[COUNTER.dropTunWrite] += count - written;
    this.onTunWritten?.();
  }

  private sameAddress(client: ShardClient, index: number): boolean {
    const bytes = this.from.bytes;
    const at = index * ADDRESS_SIZE;
    const own = client.addressBytes;
    for (let k = 0; k < ADDRESS_SIZE; k++) if (bytes[at + k] !== own[k]) return false;
    return true;
  }

  /** An authenticated data packet from a new address: the client moved (OpenVPN's float). */
  private float(client: ShardClient, index: number): void {
    const key = addressKey(this.from.bytes, index);
    const other = this.clients.atAddress(key);
    if (other !== undefined && other !== client) other.close('another client floated to its address');
    this.clients.move(client, key, this.from.bytes.slice(index * ADDRESS_SIZE, (index + 1) * ADDRESS_SIZE));
    const peer = this.from.get(index);
    client.realAddress.family = peer.family;
    client.realAddress.address = peer.address;
    client.realAddress.port = peer.port;
    client.floated = true;
    this.host.log(3, `${client.describe()} floated`);
  }
}
