// OpenVPN's packet framing over TCP (socket.c stream_buf_*, wire doc 2): each packet is
// preceded by its length as a 16-bit big-endian word. A length of 0 or above the receiver's
// buffer is fatal for the connection in OpenVPN ("Bad encapsulated packet length from peer"),
// and the same here: the caller closes the connection and counts it.

/** Bytes of the length prefix. */
export const STREAM_LENGTH_SIZE = 2;

export type StreamError = 'zero-length' | 'too-long';

/**
 * Splits a TCP byte stream into packets. Chunks may cut a packet (or its length word)
 * anywhere; a partial packet waits in one buffer of `maxPacket` bytes, so a peer that sends
 * half a frame and stalls holds at most that much.
 */
export class StreamDeframer {
  /** Made on the first packet cut between chunks: idle connections hold no buffer. */
  private pending: Uint8Array | null = null;
  /** Bytes of the current packet held in `pending` (after its length word). */
  private held = 0;
  /** Length of the current packet; -1 while its length word is incomplete. */
  private want = -1;
  /** The first byte of a length word cut between chunks; -1 when none. */
  private highByte = -1;
  error: StreamError | null = null;

  constructor(readonly maxPacket: number) {}

  /** Bytes of an unfinished packet waiting for the rest. */
  get buffered(): number {
    return this.held + (this.highByte >= 0 ? 1 : 0) + (this.want >= 0 ? STREAM_LENGTH_SIZE : 0);
  }

  /**
   * Feeds one chunk; calls `packet` for each whole packet. A packet with `reused` true is a view
   * of the deframer's own buffer, valid only during the call; otherwise it is a view of `chunk`.
   * Returns false (and sets `error`) on a bad length; the stream is then unusable.
   */
  push(chunk: Uint8Array, packet: (bytes: Uint8Array, reused: boolean) => void): boolean {
    if (this.error !== null) return false;
    let at = 0;
    const end = chunk.length;
    while (at < end) {
      if (this.want < 0) {
        let length: number;
        if (this.highByte >= 0) {
          length = (this.highByte << 8) | chunk[at]!;
          this.highByte = -1;
          at += 1;
        } else if (end - at >= STREAM_LENGTH_SIZE) {
          length = (chunk[at]! << 8) | chunk[at + 1]!;
          at += STREAM_LENGTH_SIZE;
        } else {
          this.highByte = chunk[at]!;
          return true;
        }
        if (length === 0 || length > this.maxPacket) {
          this.error = length === 0 ? 'zero-length' : 'too-long';
          return false;
        }
        // A whole packet inside this chunk goes out without a copy.
        if (end - at >= length) {
          packet(chunk.subarray(at, at + length), false);
          at += length;
          continue;
        }
        this.want = length;
        this.held = 0;
      }
      const take = Math.min(this.want - this.held, end - at);
      this.pending ??= new Uint8Array(this.maxPacket);
      this.pending.set(chunk.subarray(at, at + take), this.held);
      this.held += take;
      at += take;
      if (this.held === this.want) {
        const length = this.want;
        this.want = -1;
        this.held = 0;
        packet(this.pending.subarray(0, length), true);
      }
    }
    return true;
  }
}

/** Writes `length` as the 2-byte prefix at `out[at]`; the packet must follow it. */
export function writeStreamLength(out: Uint8Array, at: number, length: number): void {
  if (length <= 0 || length > 0xffff) throw new RangeError(`packet length ${length} does not fit a TCP frame`);
  out[at] = length >>> 8;
  out[at + 1] = length & 0xff;
}

/** One packet framed for TCP: its length word and its bytes in one new buffer. */
export function frameForStream(packet: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(STREAM_LENGTH_SIZE + packet.length);
  writeStreamLength(out, 0, packet.length);
  out.set(packet, STREAM_LENGTH_SIZE);
  return out;
}
