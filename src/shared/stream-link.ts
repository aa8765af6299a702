// A TCP connection as a LinkIO (io.ts): OpenVPN's packets over a stream (framed-connection.ts)
// look to the packet loops like datagrams from one peer, so the client runs TCP through the
// same code as UDP. Readiness is level-triggered like a socket's: the poll callback runs while
// received packets wait (again on the next turn of the loop if a round left some), and recv()
// drains them.
import type { Socket } from 'node:net';

import { FramedConnection } from './framed-connection';
import type { LinkIO } from './io';
import { ADDRESS_SIZE, POLL_READABLE, PeerAddresses, type PacketBatch, type PeerAddress } from './native';
import type { StreamError } from './protocol/stream-framing';

export interface StreamLinkEvents {
  /** A bad length word: the connection is closed (OpenVPN: "Bad encapsulated packet length"). */
  onFramingError?(error: StreamError): void;
  /** The connection is gone (peer closed, reset, or close()). */
  onClose?(): void;
}

export class StreamLink implements LinkIO {
  private readonly connection: FramedConnection;
  private readable: ((events: number) => void) | null = null;
  private refire: NodeJS.Immediate | null = null;
  /** The peer's address entry, reported as the sender of every packet. */
  private readonly peerBytes: Uint8Array;
  /** Packets refused because the peer does not read fast enough. */
  sendDrops = 0;

  constructor(
    socket: Socket,
    readonly peer: PeerAddress,
    maxPacket: number,
    private readonly events: StreamLinkEvents = {},
  ) {
    const entry = new PeerAddresses(1);
    entry.set(0, peer);
    this.peerBytes = entry.bytes;
    this.connection = new FramedConnection(socket, maxPacket, {
      packets: () => this.notify(),
      framingError: (error) => this.events.onFramingError?.(error),
      closed: () => this.events.onClose?.(),
    });
  }

  /** Runs the poll callback while packets wait: once now, then once per loop turn until drained. */
  private notify(): void {
    if (this.readable === null || this.connection.queue.length === 0) return;
    this.readable(POLL_READABLE);
    if (this.connection.queue.length > 0 && this.refire === null) {
      this.refire = setImmediate(() => {
        this.refire = null;
        this.notify();
      });
    }
  }

  poll(events: number, callback: (events: number) => void): void {
    this.readable = events & POLL_READABLE ? callback : null;
    if (this.readable !== null && this.connection.queue.length > 0) setImmediate(() => this.notify());
  }

  stopPoll(): void {
    this.readable = null;
  }

  recv(batch: PacketBatch, from: PeerAddresses): number {
    const queue = this.connection.queue;
    let n = 0;
    while (n < batch.size && queue.length > 0) {
      const packet = queue.shift()!;
      if (packet.length > batch.capacity) continue;
      batch.set(n, packet);
      from.bytes.set(this.peerBytes, n * ADDRESS_SIZE);
      n++;
    }
    return n;
  }

  /** Frames packets 0..count into one write; all are taken, or none when the peer is too slow. */
  send(batch: PacketBatch, _to: PeerAddresses, count: number): number {
    for (let i = 0; i < count; i++) this.connection.add(batch.memory, batch.offsets[i]!, batch.lengths[i]!);
    const dropped = this.connection.flush();
    this.sendDrops += dropped;
    return count - dropped;
  }

  /** Bytes of a packet still waiting for the rest of its frame. */
  get partialBytes(): number {
    return this.connection.partialBytes;
  }

  close(): void {
    if (this.refire !== null) clearImmediate(this.refire);
    this.refire = null;
    this.connection.close();
  }
}
