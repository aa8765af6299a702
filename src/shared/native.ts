// Typed loader for shardvpn's native addon (src/native): TUN devices, batched UDP and the
// data-channel AEAD. Everything is batch-shaped: a PacketBatch is one block of memory with a
// start offset and a length per packet, so the kernel and OpenSSL work in the caller's memory
// (ring slots included) without copies. The offsets leave headroom for headers in front.
import path from 'node:path';

import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './ip-address';

interface NativeDescriptor {
  readonly fd: number;
  readonly closed: boolean;
  poll(events: number, callback: (events: number) => void): void;
  stopPoll(): void;
  ref(): void;
  unref(): void;
  close(): void;
}

interface NativeTunDevice extends NativeDescriptor {
  readonly name: string;
  readonly writeDrops: number;
  setMtu(mtu: number): void;
  setUp(up: boolean): void;
  read(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, capacity: number): number;
  write(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number;
}

interface NativeUdpSocket extends NativeDescriptor {
  readonly drops: { truncated: number; send: number };
  bind(address: string, port: number): void;
  localAddress(): { family: 4 | 6; address: string; port: number };
  setBufferSizes(rcvbuf: number, sndbuf: number): { rcvbuf: number; sndbuf: number };
  attachReusePortCbpf(program: Uint32Array): void;
  recv(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, capacity: number, addresses: Uint8Array): number;
  send(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, addresses: Uint8Array): number;
}

interface NativeAeadKey {
  readonly cipher: string;
  seal(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, layout: Uint32Array): void;
  open(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, layout: Uint32Array, results: Uint8Array): number;
  destroy(): void;
}

interface NativeCbcHmacKey {
  seal(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, headerLength: number, capacity: number): void;
  open(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, headerLength: number, results: Uint8Array): number;
  sizes(): [number, number, number];
  destroy(): void;
}

interface NativeAddon {
  TunDevice: new (name: string, multiQueue: boolean, fd?: number) => NativeTunDevice;
  UdpSocket: new (family: 4 | 6, flags: number, fd: number) => NativeUdpSocket;
  AeadKey: new (cipher: string, sealKey: Uint8Array, sealIv: Uint8Array, openKey: Uint8Array, openIv: Uint8Array) => NativeAeadKey;
  CbcHmacKey: new (
    cipher: string,
    digest: string,
    sealKey: Uint8Array,
    sealHmacKey: Uint8Array,
    openKey: Uint8Array,
    openHmacKey: Uint8Array,
  ) => NativeCbcHmacKey;
  ADDRESS_SIZE: number;
  openTcpListener(family: 4 | 6, reusePort: boolean, dualStack: boolean, address: string, port: number, backlog: number): number;
  closeDescriptor(fd: number): void;
  dupDescriptor(fd: number): number;
  socketPort(fd: number): number;
}

function loadAddon(): NativeAddon {
  // dist/src/shared/native.js -> build/Release/shardvpn.node at the package root.
  const file = path.join(__dirname, '..', '..', '..', 'build', 'Release', 'shardvpn.node');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a native module (no ES import)
    return require(file) as NativeAddon;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`shardvpn native addon not loadable (${file}): ${reason}. Run 'npm install' to build it.`, { cause: error });
  }
}

const addon = loadAddon();

/** Bytes per peer address entry: [family 4|6, 0, port hi, port lo, 16 address bytes]. */
export const ADDRESS_SIZE: number = addon.ADDRESS_SIZE;
export const POLL_READABLE = 1;
export const POLL_WRITABLE = 2;

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

/** Readiness polling in the calling thread's own event loop. */
abstract class Polled<T extends NativeDescriptor> {
  protected constructor(protected readonly handle: T) {}

  get fd(): number {
    return this.handle.fd;
  }
  get closed(): boolean {
    return this.handle.closed;
  }
  /** Calls `callback(events)` while the descriptor is ready (level-triggered: drain it). */
  poll(events: number, callback: (events: number) => void): void {
    this.handle.poll(events, callback);
  }
  stopPoll(): void {
    this.handle.stopPoll();
  }
  /** Whether polling keeps the event loop (and so the thread) alive. */
  ref(): void {
    this.handle.ref();
  }
  unref(): void {
    this.handle.unref();
  }
  close(): void {
    this.handle.close();
  }
}

export interface TunOptions {
  /** Interface name; empty or absent lets the kernel choose (tun0, tun1, ...). */
  name?: string;
  multiQueue?: boolean;
  mtu?: number;
  /** Bring the interface up (default true). */
  up?: boolean;
}

export class TunDevice extends Polled<NativeTunDevice> {
  static open(options: TunOptions = {}): TunDevice {
    const device = new TunDevice(new addon.TunDevice(options.name ?? '', options.multiQueue ?? false));
    try {
      if (options.mtu !== undefined) device.handle.setMtu(options.mtu);
      if (options.up ?? true) device.handle.setUp(true);
    } catch (error) {
      device.close();
      throw error;
    }
    return device;
  }

  /** Wraps a device another thread of this process opened; closing leaves it open. */
  static adopt(fd: number, name: string): TunDevice {
    return new TunDevice(new addon.TunDevice(name, false, fd));
  }

  get name(): string {
    return this.handle.name;
  }
  /** Packets the kernel refused as malformed on write. */
  get writeDrops(): number {
    return this.handle.writeDrops;
  }
  setMtu(mtu: number): void {
    this.handle.setMtu(mtu);
  }
  setUp(up: boolean): void {
    this.handle.setUp(up);
  }
  /** Reads up to `count` packets into the batch; returns how many (0: none waiting). */
  read(batch: PacketBatch, count = batch.size): number {
    return this.handle.read(batch.memory, batch.offsets, batch.lengths, count, batch.capacity);
  }
  /** Writes `count` packets; returns how many were consumed (fewer: the queue is full). */
  write(batch: PacketBatch, count: number): number {
    return this.handle.write(batch.memory, batch.offsets, batch.lengths, count);
  }
}

export interface UdpOptions {
  family: 4 | 6;
  /** IPv6 socket that also takes IPv4 peers (reported as family 4). */
  dualStack?: boolean;
  reusePort?: boolean;
  address?: string;
  port?: number;
  rcvbuf?: number;
  sndbuf?: number;
}

const UDP_REUSEPORT = 1;
const UDP_DUALSTACK = 2;

export class UdpSocket extends Polled<NativeUdpSocket> {
  /** Opens and binds a socket. */
  static open(options: UdpOptions): UdpSocket {
    const flags = (options.reusePort ? UDP_REUSEPORT : 0) | (options.dualStack ? UDP_DUALSTACK : 0);
    const socket = new UdpSocket(new addon.UdpSocket(options.family, flags, -1));
    try {
      if (options.rcvbuf !== undefined || options.sndbuf !== undefined) {
        socket.handle.setBufferSizes(options.rcvbuf ?? 0, options.sndbuf ?? 0);
      }
      socket.handle.bind(options.address ?? (options.family === 4 ? '0.0.0.0' : '::'), options.port ?? 0);
    } catch (error) {
      socket.close();
      throw error;
    }
    return socket;
  }

  /** Wraps a descriptor another thread of this process opened; closing leaves it open. */
  static adopt(fd: number, family: 4 | 6): UdpSocket {
    return new UdpSocket(new addon.UdpSocket(family, 0, fd));
  }

  get drops(): { truncated: number; send: number } {
    return this.handle.drops;
  }
  localAddress(): PeerAddress {
    return this.handle.localAddress();
  }
  setBufferSizes(rcvbuf: number, sndbuf: number): { rcvbuf: number; sndbuf: number } {
    return this.handle.setBufferSizes(rcvbuf, sndbuf);
  }
  /** Classic BPF program choosing the SO_REUSEPORT group member: [code, jt, jf, k] per instruction. */
  attachReusePortCbpf(program: Uint32Array): void {
    this.handle.attachReusePortCbpf(program);
  }
  /** Receives up to `count` datagrams with their sources; returns how many (0: none waiting). */
  recv(batch: PacketBatch, from: PeerAddresses, count = batch.size): number {
    return this.handle.recv(batch.memory, batch.offsets, batch.lengths, count, batch.capacity, from.bytes);
  }
  /** Sends `count` datagrams to their addresses; returns how many were consumed (fewer: buffer full). */
  send(batch: PacketBatch, to: PeerAddresses, count: number): number {
    return this.handle.send(batch.memory, batch.offsets, batch.lengths, count, to.bytes);
  }
}

export type AeadCipherName = 'AES-128-GCM' | 'AES-256-GCM' | 'CHACHA20-POLY1305';

/** Where the parts of an AEAD packet sit, relative to each packet's start. */
export interface AeadLayout {
  aadOffset: number;
  aadLength: number;
  /** The per-packet nonce field; the rest of the 12-byte nonce is the implicit IV. */
  nonceOffset: number;
  nonceLength: number;
  tagOffset: number;
  /** The payload runs from here to the end of the packet. */
  payloadOffset: number;
}

export function aeadLayout(layout: AeadLayout): Uint32Array {
  return Uint32Array.of(layout.aadOffset, layout.aadLength, layout.nonceOffset, layout.nonceLength, layout.tagOffset, layout.payloadOffset);
}

const EMPTY = new Uint8Array(0);

/** One data-channel key: a persistent OpenSSL context per direction; wiped on destroy or GC. */
export class AeadKey {
  private readonly handle: NativeAeadKey;

  constructor(
    cipher: AeadCipherName,
    seal: { key: Uint8Array; implicitIv: Uint8Array } | null,
    open: { key: Uint8Array; implicitIv: Uint8Array } | null,
  ) {
    this.handle = new addon.AeadKey(cipher, seal?.key ?? EMPTY, seal?.implicitIv ?? EMPTY, open?.key ?? EMPTY, open?.implicitIv ?? EMPTY);
  }

  get cipher(): string {
    return this.handle.cipher;
  }
  /** Encrypts `count` packets in place, writing each tag. `layout` from aeadLayout(). */
  seal(batch: PacketBatch, count: number, layout: Uint32Array): void {
    this.handle.seal(batch.memory, batch.offsets, batch.lengths, count, layout);
  }
  /** Authenticates and decrypts in place; results[i] = 1 authentic, 0 not. Returns failures. */
  open(batch: PacketBatch, count: number, layout: Uint32Array, results: Uint8Array): number {
    return this.handle.open(batch.memory, batch.offsets, batch.lengths, count, layout, results);
  }
  /** Wipes the key now rather than at garbage collection. */
  destroy(): void {
    this.handle.destroy();
  }
}

export type CbcCipherName = 'AES-128-CBC' | 'AES-192-CBC' | 'AES-256-CBC' | 'BF-CBC';

/**
 * One CBC + HMAC data-channel key (OpenVPN's non-AEAD data channel): a persistent cipher and
 * HMAC context per direction; wiped on destroy or GC. `digest` null is `auth none`.
 */
export class CbcHmacKey {
  private readonly handle: NativeCbcHmacKey;
  readonly ivLength: number;
  readonly blockSize: number;
  /** HMAC bytes in each packet (0 with `auth none`). */
  readonly macLength: number;

  constructor(
    cipher: CbcCipherName,
    digest: string | null,
    seal: { key: Uint8Array; hmacKey: Uint8Array } | null,
    open: { key: Uint8Array; hmacKey: Uint8Array } | null,
  ) {
    this.handle = new addon.CbcHmacKey(
      cipher,
      digest ?? '',
      seal?.key ?? EMPTY,
      seal?.hmacKey ?? EMPTY,
      open?.key ?? EMPTY,
      open?.hmacKey ?? EMPTY,
    );
    [this.ivLength, this.blockSize, this.macLength] = this.handle.sizes();
  }

  /**
   * Pads, encrypts and authenticates `count` packets in place. Packet i is [header][HMAC][IV]
   * [plaintext] with lengths[i] covering all of it; lengths[i] grows by the padding, which must
   * fit in batch.capacity.
   */
  seal(batch: PacketBatch, count: number, headerLength: number): void {
    this.handle.seal(batch.memory, batch.offsets, batch.lengths, count, headerLength, batch.capacity);
  }
  /** Checks each HMAC, decrypts in place and strips the padding (lengths[i] shrinks); results[i] = 1 when authentic. */
  open(batch: PacketBatch, count: number, headerLength: number, results: Uint8Array): number {
    return this.handle.open(batch.memory, batch.offsets, batch.lengths, count, headerLength, results);
  }
  destroy(): void {
    this.handle.destroy();
  }
}

export interface TcpListenerOptions {
  family: 4 | 6;
  dualStack: boolean;
  address: string;
  port: number;
  /** Several listeners on one port, the kernel spreading connections over them. */
  reusePort: boolean;
  backlog?: number;
}

/**
 * A listening TCP socket's descriptor (non-blocking, close-on-exec), for net.Server.listen({ fd })
 * in the thread that serves it. Until a server takes it over, closeDescriptor() frees it.
 */
export function openTcpListener(options: TcpListenerOptions): number {
  return addon.openTcpListener(
    options.family,
    options.reusePort,
    options.dualStack,
    options.address,
    options.port,
    options.backlog ?? 1024,
  );
}

export function closeDescriptor(fd: number): void {
  addon.closeDescriptor(fd);
}

/** A second descriptor of the same socket (close-on-exec). */
export function dupDescriptor(fd: number): number {
  return addon.dupDescriptor(fd);
}

/** The local port a socket descriptor is bound to. */
export function socketPort(fd: number): number {
  return addon.socketPort(fd);
}
