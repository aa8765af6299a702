// Packet memory as the addon reads and writes it: a PacketBatch is one block of memory with a
// start offset and a length per packet, so the kernel and OpenSSL work in the caller's memory
// (ring slots included) without copies; PeerAddresses is the matching array of peer addresses.
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../ip-address';
import { ADDRESS_SIZE } from './addon';

/** One block of packet memory: packet i lives at memory[offsets[i] .. offsets[i] + lengths[i]). */
export class PacketBatch {
  readonly lengths: Uint32Array;

  constructor(
    readonly memory: Uint8Array,
    readonly offsets: Uint32Array,
    /** Bytes of room per packet from its offset (what a read may fill). */
    readonly capacity: number,
  ) {
    this.lengths = new Uint32Array(offsets.length);
  }

  /** `size` packets of `capacity` bytes each, each starting `headroom` bytes into its slot. */
  static allocate(size: number, capacity: number, headroom = 0, shared = false): PacketBatch {
    const stride = capacity + headroom;
    const memory = new Uint8Array(shared ? new SharedArrayBuffer(stride * size) : new ArrayBuffer(stride * size));
    const offsets = new Uint32Array(size);
    for (let i = 0; i < size; i++) offsets[i] = i * stride + headroom;
    return new PacketBatch(memory, offsets, capacity);
  }

  get size(): number {
    return this.offsets.length;
  }

  /** A view of packet i (allocates: for tests and cold paths). */
  packet(i: number): Uint8Array {
    return this.memory.subarray(this.offsets[i], this.offsets[i] + this.lengths[i]);
  }

  /** Copies `bytes` into slot i and sets its length. */
  set(i: number, bytes: Uint8Array): void {
    if (bytes.length > this.capacity) throw new RangeError(`packet of ${bytes.length} bytes exceeds the slot capacity ${this.capacity}`);
    this.memory.set(bytes, this.offsets[i]);
    this.lengths[i] = bytes.length;
  }
}

export interface PeerAddress {
  family: 4 | 6;
  address: string;
  port: number;
}

/** Per-packet peer addresses for UDP batches, ADDRESS_SIZE bytes each. */
export class PeerAddresses {
  readonly bytes: Uint8Array;

  constructor(readonly size: number) {
    this.bytes = new Uint8Array(size * ADDRESS_SIZE);
  }

  get(i: number): PeerAddress {
    const at = i * ADDRESS_SIZE;
    const family = this.bytes[at] === 6 ? 6 : 4;
    const port = (this.bytes[at + 2] << 8) | this.bytes[at + 3];
    const address = family === 4 ? formatIPv4(this.bytes, at + 4) : formatIPv6(this.bytes, at + 4);
    return { family, address, port };
  }

  set(i: number, peer: PeerAddress): void {
    const at = i * ADDRESS_SIZE;
    this.bytes.fill(0, at, at + ADDRESS_SIZE);
    const ok = peer.family === 4 ? parseIPv4(peer.address, this.bytes, at + 4) : parseIPv6(peer.address, this.bytes, at + 4);
    if (!ok || !Number.isInteger(peer.port) || peer.port < 0 || peer.port > 65535) {
      throw new TypeError(`not an IPv${peer.family} address and port: ${peer.address} ${peer.port}`);
    }
    this.bytes[at] = peer.family;
    this.bytes[at + 2] = peer.port >> 8;
    this.bytes[at + 3] = peer.port & 0xff;
  }

  /** Copies entry `from` of `source` to entry `to` here (answering a datagram's sender). */
  copyFrom(source: PeerAddresses, from: number, to: number): void {
    this.bytes.set(source.bytes.subarray(from * ADDRESS_SIZE, (from + 1) * ADDRESS_SIZE), to * ADDRESS_SIZE);
  }
}
