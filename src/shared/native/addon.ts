// Loading shardvpn's native addon (src/native, built by node-gyp) and the shapes of what it
// exports; the typed wrappers beside this file are what the rest of the code uses.
import path from 'node:path';

export interface NativeDescriptor {
  readonly fd: number;
  readonly closed: boolean;
  poll(events: number, callback: (events: number) => void): void;
  stopPoll(): void;
  ref(): void;
  unref(): void;
  close(): void;
}

/** TUN offloads (tun-offload): what the kernel granted, and their counts. */
export interface TunOffloadState {
  /** The descriptor carries virtio_net_hdr headers (IFF_VNET_HDR). */
  vnetHeader: boolean;
  /** The kernel may hand us TCP (TSO) and UDP (USO) superpackets. */
  tso: boolean;
  uso: boolean;
  /** Superpackets read and the packets split out of them. */
  superpackets: number;
  segments: number;
  /** Plain packets read whose transport checksum we completed. */
  checksums: number;
  /** Superpackets read that could not be split (dropped). */
  readDrops: number;
  /** Coalesced TCP superpackets written and the packets merged into them. */
  coalescedWrites: number;
  coalescedPackets: number;
  /** Superpackets the kernel refused; their packets were written one by one. */
  coalesceRefusals: number;
}

export interface NativeTunDevice extends NativeDescriptor {
  readonly name: string;
  readonly writeDrops: number;
  readonly offload: TunOffloadState;
  /** Segments of a superpacket still to hand out: read again, the descriptor may not poll. */
  readonly pending: boolean;
  setMtu(mtu: number): void;
  setUp(up: boolean): void;
  read(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, capacity: number): number;
  write(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number;
}

/** UDP segmentation offload (send) and receive coalescing: whether each is on, and their counts. */
export interface UdpOffloadState {
  gso: boolean;
  gro: boolean;
  /** Datagrams sent inside segmented (UDP_SEGMENT) messages, and those messages. */
  gsoDatagrams: number;
  gsoMessages: number;
  /** Segmented sends the kernel refused, sent again one datagram per message (and refused probes). */
  gsoFallbacks: number;
  /** Coalesced (UDP_GRO) messages received, and the datagrams split out of them. */
  groMessages: number;
  groDatagrams: number;
  /** Receive turns held back to coalesce (udp-coalesce-usecs). */
  coalesceWaits: number;
}

export interface NativeUdpSocket extends NativeDescriptor {
  readonly drops: { truncated: number; send: number };
  readonly offload: UdpOffloadState;
  setOffload(gso: boolean, gro: boolean): { gso: boolean; gro: boolean };
  setCoalesce(usecs: number): void;
  bind(address: string, port: number): void;
  localAddress(): { family: 4 | 6; address: string; port: number };
  setBufferSizes(rcvbuf: number, sndbuf: number): { rcvbuf: number; sndbuf: number };
  attachReusePortCbpf(program: Uint32Array): void;
  recv(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, capacity: number, addresses: Uint8Array): number;
  send(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, addresses: Uint8Array): number;
}

export interface NativeAeadKey {
  readonly cipher: string;
  readonly implementation: 'evp' | 'openssl-cores';
  seal(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, layout: Uint32Array): void;
  open(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, layout: Uint32Array, results: Uint8Array): number;
  destroy(): void;
}

export interface NativeCbcHmacKey {
  seal(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, headerLength: number, capacity: number): void;
  open(memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, headerLength: number, results: Uint8Array): number;
  sizes(): [number, number, number];
  destroy(): void;
}

export interface NativeTlsAuthHmac {
  verify(memory: Uint8Array, at: number, length: number): boolean;
  sign(packet: Uint8Array): void;
  destroy(): void;
}

export interface NativeTlsCryptCheck {
  verify(memory: Uint8Array, at: number, length: number): boolean;
  verifyWkc(memory: Uint8Array, at: number, length: number): boolean;
  destroy(): void;
}

export interface NativeTlsCryptDirection {
  seal(packet: Uint8Array): void;
  open(wire: Uint8Array, out: Uint8Array): boolean;
  destroy(): void;
}

export interface NativeAddon {
  TunDevice: new (name: string, multiQueue: boolean, fd?: number, offload?: number) => NativeTunDevice;
  UdpSocket: new (family: 4 | 6, flags: number, fd: number) => NativeUdpSocket;
  AeadKey: new (
    cipher: string,
    sealKey: Uint8Array,
    sealIv: Uint8Array,
    openKey: Uint8Array,
    openIv: Uint8Array,
    preferEvp: boolean,
  ) => NativeAeadKey;
  CbcHmacKey: new (
    cipher: string,
    digest: string,
    sealKey: Uint8Array,
    sealHmacKey: Uint8Array,
    openKey: Uint8Array,
    openHmacKey: Uint8Array,
  ) => NativeCbcHmacKey;
  TlsAuthHmac: new (digest: string, hmacKey: Uint8Array) => NativeTlsAuthHmac;
  TlsCryptCheck: new (cipherKey: Uint8Array, hmacKey: Uint8Array) => NativeTlsCryptCheck;
  TlsCryptDirection: new (cipherKey: Uint8Array, hmacKey: Uint8Array) => NativeTlsCryptDirection;
  ADDRESS_SIZE: number;
  openTcpListener(
    family: 4 | 6,
    reusePort: boolean,
    dualStack: boolean,
    address: string,
    port: number,
    backlog: number,
    mark: number,
    device: string,
  ): { fd: number; routingProblem: string };
  closeDescriptor(fd: number): void;
  dupDescriptor(fd: number): number;
  claimDescriptor(fd: number): void;
  socketPort(fd: number): number;
  trimHeap(): boolean;
  shrinkJsHeap(): boolean;
  disableTlsResumption(sslContext: unknown): boolean;
  dhParameterBits(pem: string): number;
  certPurposeMatches(der: Buffer, role: 'server' | 'client'): boolean;
  setSocketRouting(fd: number, mark: number, device: string): string;
}

function loadAddon(): NativeAddon {
  // dist/src/shared/native/addon.js -> build/Release/shardvpn.node at the package root.
  const file = path.join(__dirname, '..', '..', '..', '..', 'build', 'Release', 'shardvpn.node');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a native module (no ES import)
    return require(file) as NativeAddon;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`shardvpn native addon not loadable (${file}): ${reason}. Run 'npm install' to build it.`, { cause: error });
  }
}

export const addon = loadAddon();

/** Bytes per peer address entry: [family 4|6, 0, port hi, port lo, 16 address bytes]. */
export const ADDRESS_SIZE: number = addon.ADDRESS_SIZE;
export const POLL_READABLE = 1;
export const POLL_WRITABLE = 2;
