// A TCP connection as a LinkIO (io.ts): OpenVPN's packets over a stream (2-byte length
// framing, stream-framing.ts) look to the packet loops like datagrams from one peer, so the
// shard and the client run TCP through the same code as UDP. Readiness is level-triggered
// like a socket's: the poll callback runs while received packets wait, and recv() drains them.
import type { Socket } from 'node:net';

import type { LinkIO } from './io';
import { POLL_READABLE, type PacketBatch, type PeerAddress, type PeerAddresses } from './native';
import { STREAM_LENGTH_SIZE, StreamDeframer, writeStreamLength, type StreamError } from './protocol/stream-framing';

/** Bytes queued in the kernel and Node for one connection before further packets are dropped. */
const DEFAULT_MAX_QUEUED = 1 << 20;

export interface StreamLinkEvents {
  /** A bad length word: the connection is closed (OpenVPN: "Bad encapsulated packet length"). */
  onFramingError?(error: StreamError): void;
  /** The connection is gone (peer closed, reset, or close()). */
  onClose?(): void;
}

export class StreamLink implements LinkIO {
  private readonly deframer: StreamDeframer;
  private readonly queue: Buffer[] = [];
  private readable: ((events: number) => void) | null = null;
  private closed = false;
  /** Packets refused because the peer does not read fast enough. */
  sendDrops = 0;

  constructor(
    private readonly socket: Socket,
    /** The peer, reported as the sender of every packet. */
    readonly peer: PeerAddress,
    maxPacket: number,
    private readonly events: StreamLinkEvents = {},
    private readonly maxQueued = DEFAULT_MAX_QUEUED,
  ) {
    this.deframer = new StreamDeframer(maxPacket);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.onClosed());
    // Errors end in 'close'; without a listener an ECONNRESET would throw.
    socket.on('error', () => {});
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    const ok = this.deframer.push(chunk, (packet) => this.queue.push(Buffer.from(packet)));
    if (!ok) {
      this.events.onFramingError?.(this.deframer.error!);
      this.close();
      return;
    }
    if (this.queue.length > 0 && this.readable !== null) this.readable(POLL_READABLE);
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.events.onClose?.();
  }

  poll(events: number, callback: (events: number) => void): void {
    this.readable = events & POLL_READABLE ? callback : null;
    if (this.readable !== null && this.queue.length > 0) setImmediate(() => this.queue.length > 0 && this.readable?.(POLL_READABLE));
  }

  stopPoll(): void {
    this.readable = null;
  }

  recv(batch: PacketBatch, from: PeerAddresses): number {
    let n = 0;
    while (n < batch.size && this.queue.length > 0) {
      const packet = this.queue.shift()!;
      if (packet.length > batch.capacity) continue;
      batch.set(n, packet);
      from.set(n, this.peer);
      n++;
    }
    return n;
  }

  /** Frames packets 0..count into one write; all are taken, or none when the peer is too slow. */
  send(batch: PacketBatch, _to: PeerAddresses, count: number): number {
    if (this.closed || count === 0) return 0;
    if (this.socket.writableLength > this.maxQueued) {
      this.sendDrops += count;
      return 0;
    }
    let total = 0;
    for (let i = 0; i < count; i++) total += STREAM_LENGTH_SIZE + batch.lengths[i]!;
    const out = Buffer.allocUnsafe(total);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const length = batch.lengths[i]!;
      writeStreamLength(out, at, length);
      out.set(batch.memory.subarray(batch.offsets[i]!, batch.offsets[i]! + length), at + STREAM_LENGTH_SIZE);
      at += STREAM_LENGTH_SIZE + length;
    }
    this.socket.write(out);
    return count;
  }

  /** Bytes of a packet still waiting for the rest of its frame. */
  get partialBytes(): number {
    return this.deframer.buffered;
  }

  close(): void {
    if (!this.closed) this.socket.destroy();
    this.onClosed();
  }
}
