// The two packet devices of a tunnel, as the packet loops see them (wireguard-go's conn.Bind and
// tun.Device): batch-first and small, so the server's shards, the main thread's TUN pump and the
// client's link run unchanged over the native UdpSocket / TunDevice (native/ satisfies both
// by their shape) or over the in-memory fakes of the tests.
import type { PacketBatch, PeerAddresses } from './native';

/** Readiness in the calling thread's event loop, level-triggered: the callback drains. */
interface Polled {
  /** Calls `callback` while the device is ready for `events` (POLL_READABLE). */
  poll(events: number, callback: (events: number) => void): void;
  stopPoll(): void;
  close(): void;
}

/** The UDP side: datagrams with their peer addresses. */
export interface LinkIO extends Polled {
  /**
   * Receives up to batch.size datagrams into the batch's slots (lengths set), each sender's
   * address into `from`; returns how many (0: none waiting).
   */
  recv(batch: PacketBatch, from: PeerAddresses): number;
  /**
   * Sends datagrams 0..count of the batch, each to its entry of `to`; returns how many were
   * taken (a prefix; fewer when the socket buffer is full: the rest are the caller's drops).
   */
  send(batch: PacketBatch, to: PeerAddresses, count: number): number;
}

/** The TUN side: whole IP packets. */
export interface TunIO extends Polled {
  /** Reads up to batch.size packets into the batch's slots; returns how many (0: none waiting). */
  read(batch: PacketBatch): number;
  /** Writes packets 0..count; returns how many were taken (a prefix; fewer: the queue is full). */
  write(batch: PacketBatch, count: number): number;
}
