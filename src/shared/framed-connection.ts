// One TCP connection carrying OpenVPN's framed packets (stream-framing.ts), the part the
// client's StreamLink and the server shard's TcpLinks share: received packets queue up whole,
// and the packets of one send go out framed in one write, or are dropped and counted when the
// peer does not read (as a full UDP socket buffer drops a datagram).
import type { Socket } from 'node:net';

import { STREAM_LENGTH_SIZE, StreamDeframer, writeStreamLength, type StreamError } from './protocol/stream-framing';

/** Bytes queued in the kernel and Node for one connection before further packets are dropped. */
const MAX_QUEUED = 1 << 20;

export interface FramedConnectionEvents {
  /** Packets were queued. */
  packets(): void;
  /** A bad length word; the connection is being closed (OpenVPN: "Bad encapsulated packet length"). */
  framingError(error: StreamError): void;
  /** The connection is gone (peer closed, reset, or close()). */
  closed(): void;
}

export class FramedConnection {
  private readonly deframer: StreamDeframer;
  /** Received packets, oldest first. */
  readonly queue: Uint8Array[] = [];
  closed = false;
  /** The packets of the send being built: one batch memory, their offsets and lengths. */
  private outMemory: Uint8Array | null = null;
  private readonly outOffsets: number[] = [];
  private readonly outLengths: number[] = [];
  private outBytes = 0;

  constructor(
    readonly socket: Socket,
    maxPacket: number,
    private readonly events: FramedConnectionEvents,
  ) {
    this.deframer = new StreamDeframer(maxPacket);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.onClosed());
    // Errors end in 'close'; without a listener an ECONNRESET would throw.
    socket.on('error', () => {});
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    // Each read is a fresh buffer: only packets pieced together in the deframer are copied.
    const ok = this.deframer.push(chunk, (packet, reused) => this.queue.push(reused ? Uint8Array.prototype.slice.call(packet) : packet));
    if (!ok) {
      this.events.framingError(this.deframer.error!);
      this.close();
      return;
    }
    if (this.queue.length > 0) this.events.packets();
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.events.closed();
  }

  /** Adds packet memory[offset, offset + length) to the send being built (all from one memory). */
  add(memory: Uint8Array, offset: number, length: number): void {
    this.outMemory = memory;
    this.outOffsets.push(offset);
    this.outLengths.push(length);
    this.outBytes += STREAM_LENGTH_SIZE + length;
  }

  /** Writes the packets added since the last flush as one framed write; returns how many were dropped. */
  flush(): number {
    const count = this.outOffsets.length;
    if (count === 0) return 0;
    let dropped = 0;
    if (this.closed || this.socket.writableLength > MAX_QUEUED) {
      dropped = count;
    } else {
      const out = Buffer.allocUnsafe(this.outBytes);
      const memory = this.outMemory!;
      let at = 0;
      for (let i = 0; i < count; i++) {
        const offset = this.outOffsets[i]!;
        const length = this.outLengths[i]!;
        writeStreamLength(out, at, length);
        out.set(memory.subarray(offset, offset + length), at + STREAM_LENGTH_SIZE);
        at += STREAM_LENGTH_SIZE + length;
      }
      this.socket.write(out);
    }
    this.outOffsets.length = 0;
    this.outLengths.length = 0;
    this.outBytes = 0;
    this.outMemory = null;
    return dropped;
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
