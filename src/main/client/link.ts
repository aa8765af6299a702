// The client's packet path (forward.c process_incoming_link / process_incoming_tun in client
// mode): one UDP socket to the server and the TUN device, polled in this thread's loop, with
// batches decrypted and sealed in place. Control packets go up to the run that owns the
// session; pings and OCC messages are consumed here.
import { performance } from 'node:perf_hooks';

import type { LinkIO, TunIO } from '../../shared/io';
import {
  ADDRESS_SIZE,
  PacketBatch,
  PeerAddresses,
  POLL_READABLE,
  TunDevice,
  UdpSocket,
  type PeerAddress,
  type TunOffloadState,
  type UdpOffloadState,
} from '../../shared/native';
import { CompressFramer, FRAMING_HEADROOM, FRAMING_TAILROOM } from '../../shared/protocol/compress-framing';
import { MAX_DATA_HEADROOM, MAX_DATA_TAILROOM, type DataChannelKey } from '../../shared/protocol/data-channel';
import { DataRuns } from '../../shared/protocol/data-run';
import { icmp6NoRoute, isIpv6Packet, type BlockIpv6Answer } from '../../shared/protocol/block-ipv6';
import { clampMss } from '../../shared/protocol/mss';
import { parseOccMessage, payloadKind } from '../../shared/protocol/occ';
import { P_DATA_V1, P_DATA_V2, P_KEY_ID_MASK, P_OPCODE_SHIFT } from '../../shared/protocol/opcodes';

const BATCH = 64;
/** Batches per readiness callback, so one busy side cannot starve the other. */
const ROUNDS = 8;

export interface LinkHost {
  /** A control-channel datagram from the server (a copy the session may keep). */
  onControlPacket(wire: Buffer): void;
  /** Authentic data arrived (ping-restart timer). */
  onDataReceived(now: number): void;
  /** Something was sent to the server (ping timer). */
  onSent(now: number): void;
  /** The server sent OCC_EXIT on the data channel. */
  onOccExit(): void;
}

/** OpenVPN's SIGUSR2 counters. */
export interface LinkStatistics {
  tunReadBytes: number;
  tunWriteBytes: number;
  linkReadBytes: number;
  linkWriteBytes: number;
  linkReadBytesAuth: number;
  /** Datagrams from other addresses than the server's (dropped: no --float). */
  foreignDrops: number;
  /** Payloads the server compressed (no decompressor here) or framed wrongly, dropped. */
  compressedDrops: number;
}

/** Statistics of a link that has moved nothing yet. */
export function emptyLinkStatistics(): LinkStatistics {
  return {
    tunReadBytes: 0,
    tunWriteBytes: 0,
    linkReadBytes: 0,
    linkWriteBytes: 0,
    linkReadBytesAuth: 0,
    foreignDrops: 0,
    compressedDrops: 0,
  };
}

export class ClientLink {
  readonly stats: LinkStatistics = emptyLinkStatistics();
  /** Data keys by key_id; the newest one sends. */
  private readonly keys: (DataChannelKey | null)[] = new Array<DataChannelKey | null>(8).fill(null);
  private sendKey: DataChannelKey | null = null;
  /** mssfix: the MSS limit for TCP SYNs both ways (0: off), set with the data keys. */
  maxMss = 0;
  /** comp-lzo / compress framing of data payloads: from the config, or as the server pushes it. */
  readonly framer = new CompressFramer('none');
  private tun: TunIO | null = null;
  /** block-ipv6: the answer's source and size; null sends IPv6 as any packet. */
  private blockIpv6: BlockIpv6Answer | null = null;
  private closed = false;
  // Receive side: decrypt in place, write the plaintext to TUN from there.
  private readonly recv: PacketBatch;
  private readonly from = new PeerAddresses(BATCH);
  private readonly runs: DataRuns<ClientLink>;
  private readonly toTun: PacketBatch;
  private tunCount = 0;
  // Send side: TUN reads land MAX_DATA_HEADROOM into each slot (room for any cipher's header),
  // sealing starts key.headroom before; MAX_DATA_TAILROOM stays free for CBC padding.
  private readonly tunRead: PacketBatch;
  private readonly seal: PacketBatch;
  private readonly sendTo = new PeerAddresses(BATCH);
  private readonly one: PacketBatch;
  private readonly oneTo = new PeerAddresses(1);

  /** The UDP socket's GSO/GRO state and counts; null over TCP (or a test's fake link). */
  get offload(): UdpOffloadState | null {
    return this.udp instanceof UdpSocket ? this.udp.offload : null;
  }

  /** The TUN device's offload state and counts (tun-offload); null without a device (or a test's fake). */
  get tunOffload(): TunOffloadState | null {
    return this.tun instanceof TunDevice ? this.tun.offload : null;
  }

  constructor(
    private readonly udp: LinkIO,
    remote: PeerAddress,
    slot: number,
    private readonly host: LinkHost,
  ) {
    this.recv = PacketBatch.allocate(BATCH, slot);
    // Created once: the closures see the link, no packet allocates.
    this.runs = new DataRuns<ClientLink>(this.recv.memory, BATCH, {
      holds: (link, key) => !link.closed && link.keys[key.keyId] === key,
      opened: (link, _key, count, accepted, now) => link.onRunOpened(count, accepted, now),
      stale: () => undefined,
    });
    this.toTun = new PacketBatch(this.recv.memory, new Uint32Array(BATCH), slot);
    const send = PacketBatch.allocate(BATCH, slot);
    const readOffsets = new Uint32Array(BATCH);
    for (let i = 0; i < BATCH; i++) readOffsets[i] = send.offsets[i]! + MAX_DATA_HEADROOM + FRAMING_HEADROOM;
    this.tunRead = new PacketBatch(
      send.memory,
      readOffsets,
      slot - MAX_DATA_HEADROOM - FRAMING_HEADROOM - FRAMING_TAILROOM - MAX_DATA_TAILROOM,
    );
    this.seal = new PacketBatch(send.memory, new Uint32Array(BATCH), slot);
    this.one = PacketBatch.allocate(1, slot);
    for (let i = 0; i < BATCH; i++) this.sendTo.set(i, remote);
    this.oneTo.set(0, remote);
    udp.poll(POLL_READABLE, () => this.onUdpReadable());
  }

  /** Starts moving packets between the TUN device and the server; `blockIpv6`: answer IPv6 from TUN instead of sending it. */
  attachTun(tun: TunIO, blockIpv6: BlockIpv6Answer | null = null): void {
    this.tun = tun;
    this.blockIpv6 = blockIpv6;
    tun.poll(POLL_READABLE, () => this.onTunReadable());
  }

  /** A new data key; the client sends on the newest key at once (the server keeps the old one until then). */
  installKey(key: DataChannelKey): void {
    const previous = this.keys[key.keyId];
    if (previous !== null && previous !== undefined && previous !== key) previous.destroy();
    this.keys[key.keyId] = key;
    this.sendKey = key;
  }

  retireKey(keyId: number): void {
    const key = this.keys[keyId];
    if (key === null || key === undefined || key === this.sendKey) return;
    key.destroy();
    this.keys[keyId] = null;
  }

  get currentKey(): DataChannelKey | null {
    return this.sendKey;
  }

  sendControl(wire: Buffer): boolean {
    if (this.closed) return false;
    this.one.offsets[0] = 0;
    this.one.set(0, wire);
    const sent = this.udp.send(this.one, this.oneTo, 1) === 1;
    if (sent) this.stats.linkWriteBytes += wire.length;
    this.host.onSent(performance.now());
    return sent;
  }

  /** A keepalive ping or an OCC message, written by `write` at the offset it is given. */
  sendDataMessage(write: (memory: Uint8Array, offset: number) => number): void {
    const key = this.sendKey;
    if (key === null || this.closed) return;
    const batch = this.one;
    const at = key.headroom + FRAMING_HEADROOM;
    this.framer.frame(batch.memory, at, write(batch.memory, at));
    batch.offsets[0] = this.framer.start - key.headroom;
    batch.lengths[0] = this.framer.length;
    if (key.encrypt(batch, 1) !== 1) return;
    if (this.udp.send(batch, this.oneTo, 1) === 1) this.stats.linkWriteBytes += batch.lengths[0]!;
    this.host.onSent(performance.now());
  }

  /** Stops polling, wipes the keys and closes the socket; the TUN device is the caller's. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.tun?.stopPoll();
    this.tun = null;
    this.udp.stopPoll();
    this.udp.close();
    for (let i = 0; i < this.keys.length; i++) {
      this.keys[i]?.destroy();
      this.keys[i] = null;
    }
    this.sendKey = null;
  }

  // ------------------------------------------------------------------------------------------

  private onUdpReadable(): void {
    for (let round = 0; round < ROUNDS && !this.closed; round++) {
      const n = this.udp.recv(this.recv, this.from);
      if (n === 0) return;
      this.receiveBatch(n);
      if (n < BATCH) return;
    }
  }

  /** Compares the sender's family, port and address bytes with the server's (no allocation). */
  private fromServer(i: number): boolean {
    const a = this.from.bytes;
    const b = this.oneTo.bytes;
    const at = i * ADDRESS_SIZE;
    if (a[at] !== b[0] || a[at + 2] !== b[2] || a[at + 3] !== b[3]) return false;
    const end = b[0] === 6 ? 20 : 8;
    for (let k = 4; k < end; k++) if (a[at + k] !== b[k]) return false;
    return true;
  }

  private receiveBatch(n: number): void {
    const memory = this.recv.memory;
    const now = performance.now();
    this.tunCount = 0;
    for (let i = 0; i < n && !this.closed; i++) {
      const length = this.recv.lengths[i]!;
      const at = this.recv.offsets[i]!;
      if (length === 0) continue;
      // Without --float a client takes packets from its server's address only.
      if (!this.fromServer(i)) {
        this.stats.foreignDrops++;
        continue;
      }
      this.stats.linkReadBytes += length;
      const byte0 = memory[at]!;
      const op = byte0 >>> P_OPCODE_SHIFT;
      if (op === P_DATA_V1 || op === P_DATA_V2) {
        const key = this.keys[byte0 & P_KEY_ID_MASK] ?? null;
        if (key !== null) this.runs.add(this, key, i, at, length, now);
        continue;
      }
      // Data before control: the control packet may retire a key or end the link.
      this.runs.flush(now);
      this.host.onControlPacket(Buffer.from(memory.subarray(at, at + length)));
    }
    this.runs.flush(now);
    const tun = this.tun;
    if (tun !== null && this.tunCount > 0) tun.write(this.toTun, this.tunCount);
  }

  /** A run was decrypted: its tunnel packets are queued for TUN. */
  private onRunOpened(count: number, accepted: number, now: number): void {
    if (accepted === 0) return;
    this.host.onDataReceived(now);
    const memory = this.recv.memory;
    const results = this.runs.results;
    for (let j = 0; j < count; j++) {
      if (!results.ok(j)) continue;
      let start = results.payloadOffsets[j]!;
      let length = results.payloadLengths[j]!;
      this.stats.linkReadBytesAuth += length;
      if (this.framer.kind !== 'none') {
        if (this.framer.unframe(memory, start, length) !== 'ok') {
          this.stats.compressedDrops++;
          continue;
        }
        start = this.framer.start;
        length = this.framer.length;
      }
      const kind = payloadKind(memory, start, length);
      if (kind === 'packet') {
        clampMss(memory, start, length, this.maxMss);
        this.toTun.offsets[this.tunCount] = start;
        this.toTun.lengths[this.tunCount] = length;
        this.stats.tunWriteBytes += length;
        this.tunCount++;
      } else if (kind === 'occ') {
        const occ = parseOccMessage(memory, start, length);
        if (occ.ok && occ.message.op === 'exit') this.host.onOccExit();
      }
    }
  }

  private onTunReadable(): void {
    const tun = this.tun;
    if (tun === null) return;
    for (let round = 0; round < ROUNDS && !this.closed; round++) {
      const n = tun.read(this.tunRead);
      if (n === 0) return;
      const key = this.sendKey;
      if (key !== null) {
        const headroom = key.headroom;
        const block = this.blockIpv6;
        let count = 0;
        for (let i = 0; i < n; i++) {
          const at = this.tunRead.offsets[i]!;
          const length = this.tunRead.lengths[i]!;
          this.stats.tunReadBytes += length;
          if (block !== null && isIpv6Packet(this.tunRead.memory, at, length)) {
            this.answerBlocked(tun, at, length, block);
            continue;
          }
          clampMss(this.tunRead.memory, at, length, this.maxMss);
          this.framer.frame(this.tunRead.memory, at, length);
          this.seal.offsets[count] = this.framer.start - headroom;
          this.seal.lengths[count] = this.framer.length;
          count++;
        }
        const sealed = count > 0 ? key.encrypt(this.seal, count) : 0;
        const sent = this.udp.send(this.seal, this.sendTo, sealed);
        for (let i = 0; i < sent; i++) this.stats.linkWriteBytes += this.seal.lengths[i]!;
        if (sent > 0) this.host.onSent(performance.now());
      }
      if (n < BATCH) return;
    }
  }

  /** block-ipv6: the ICMPv6 no-route answer goes back into TUN; the packet goes nowhere. */
  private answerBlocked(tun: TunIO, at: number, length: number, block: BlockIpv6Answer): void {
    const answer = icmp6NoRoute(this.tunRead.memory, at, length, block.source, block.tunMtu);
    const one = new PacketBatch(answer, new Uint32Array(1), answer.length);
    one.lengths[0] = answer.length;
    if (tun.write(one, 1) === 1) this.stats.tunWriteBytes += answer.length;
  }
}
