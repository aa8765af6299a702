// The TUN device and the batched UDP socket, polled in the calling thread's own event loop.
import { setSocketRouting, type SocketRouting } from './socket-routing';
import {
  addon,
  POLL_READABLE,
  type NativeDescriptor,
  type NativeTunDevice,
  type NativeUdpSocket,
  type TunOffloadState,
  type UdpOffloadState,
} from './addon';
import type { PacketBatch, PeerAddress, PeerAddresses } from './batch';

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
  /**
   * Offloads (default true; `tun-offload no`): TCP superpackets from the kernel split here and
   * runs of TCP segments written as one; `uso` (default true) asks for UDP superpackets too.
   */
  offload?: boolean;
  uso?: boolean;
}

const TUN_OFFLOAD_TCP = 1;
const TUN_OFFLOAD_UDP = 2;

export class TunDevice extends Polled<NativeTunDevice> {
  static open(options: TunOptions = {}): TunDevice {
    const offload = (options.offload ?? true) ? TUN_OFFLOAD_TCP | ((options.uso ?? true) ? TUN_OFFLOAD_UDP : 0) : 0;
    const device = new TunDevice(new addon.TunDevice(options.name ?? '', options.multiQueue ?? false, -1, offload));
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

  private callback: ((events: number) => void) | null = null;
  private pendingTurn: NodeJS.Immediate | null = null;

  /**
   * Level-triggered readiness, plus one more turn while segments of a superpacket wait in the
   * addon: those are no longer in the kernel's queue, so the descriptor would not poll for them.
   */
  override poll(events: number, callback: (events: number) => void): void {
    this.callback = callback;
    this.handle.poll(events, (ready) => this.turn(ready));
    this.schedulePending();
  }
  private turn(ready: number): void {
    this.callback?.(ready);
    this.schedulePending();
  }
  private schedulePending(): void {
    if (this.callback === null || this.pendingTurn !== null || !this.handle.pending) return;
    this.pendingTurn = setImmediate(() => {
      this.pendingTurn = null;
      if (!this.handle.closed) this.turn(POLL_READABLE);
    });
  }
  override stopPoll(): void {
    this.callback = null;
    if (this.pendingTurn !== null) clearImmediate(this.pendingTurn);
    this.pendingTurn = null;
    super.stopPoll();
  }
  override close(): void {
    this.stopPoll();
    super.close();
  }

  get name(): string {
    return this.handle.name;
  }
  /** Offloads granted and their counts (all zero without `tun-offload`). */
  get offload(): TunOffloadState {
    return this.handle.offload;
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
  /** UDP GSO on send and GRO on receive where the kernel has them (default true; `udp-offload no`). */
  offload?: boolean;
  /** Receive coalescing in microseconds (udp-coalesce-usecs; default 0: off). */
  coalesceUsecs?: number;
  /** --mark / --bind-dev, set before the bind. */
  routing?: SocketRouting;
}

const UDP_REUSEPORT = 1;
const UDP_DUALSTACK = 2;

export class UdpSocket extends Polled<NativeUdpSocket> {
  /** Opens and binds a socket. */
  static open(options: UdpOptions): UdpSocket {
    const flags = (options.reusePort ? UDP_REUSEPORT : 0) | (options.dualStack ? UDP_DUALSTACK : 0);
    const socket = new UdpSocket(new addon.UdpSocket(options.family, flags, -1));
    try {
      setSocketRouting(socket.fd, options.routing);
      if (options.rcvbuf !== undefined || options.sndbuf !== undefined) {
        socket.handle.setBufferSizes(options.rcvbuf ?? 0, options.sndbuf ?? 0);
      }
      socket.handle.bind(options.address ?? (options.family === 4 ? '0.0.0.0' : '::'), options.port ?? 0);
      socket.setOffload(options.offload ?? true);
      socket.setCoalesce(options.coalesceUsecs ?? 0);
    } catch (error) {
      socket.close();
      throw error;
    }
    return socket;
  }

  /** Wraps a descriptor another thread of this process opened; closing leaves it open. */
  static adopt(fd: number, family: 4 | 6, offload = true, coalesceUsecs = 0): UdpSocket {
    const socket = new UdpSocket(new addon.UdpSocket(family, 0, fd));
    socket.setOffload(offload);
    socket.setCoalesce(coalesceUsecs);
    return socket;
  }

  /**
   * Sends runs of equal datagrams to one peer as one segmented message (GSO) and takes coalesced
   * receives (GRO), where the kernel has them; the caller sees plain datagrams either way.
   */
  setOffload(on: boolean): { gso: boolean; gro: boolean } {
    return this.handle.setOffload(on, on);
  }

  /**
   * Receive coalescing: when datagrams keep arriving less than `usecs` apart and the last read
   * left none waiting, the thread waits `usecs` before the next read, so that one wake-up takes
   * several. Idle traffic and a backlog are read at once. 0 turns it off.
   */
  setCoalesce(usecs: number): void {
    this.handle.setCoalesce(usecs);
  }

  get offload(): UdpOffloadState {
    return this.handle.offload;
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
