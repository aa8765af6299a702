// The requests one bulk-mode simulated client has in flight (--bandwidth): at most `window`
// unanswered echo requests, so the client sends only as fast as the server forwards and answers
// (a closed loop) instead of flooding buffers. Requests are numbered in send order; a ring of
// their send times finds a reply's request by its 16-bit ICMP sequence number, and a request
// unanswered after `timeoutMs` is given up, so lost packets do not shrink the window for good.

/** How long a request may stay unanswered before it counts as lost and frees its place. */
export const ECHO_TIMEOUT_MS = 1000;

export class EchoWindow {
  /** Ring of send times by sequence number; a power of two that divides 65536. */
  private readonly sentAt: Float64Array;
  private readonly pending: Uint8Array;
  private readonly mask: number;
  /** Next sequence number to send (not wrapped). */
  private next = 0;
  /** Oldest sequence number that may still be pending. */
  private oldest = 0;
  private inFlightCount = 0;
  /** Requests given up by expire(). */
  expired = 0;

  constructor(
    readonly window: number,
    private readonly timeoutMs = ECHO_TIMEOUT_MS,
  ) {
    let size = 256;
    while (size < window * 4) size *= 2;
    this.sentAt = new Float64Array(size);
    this.pending = new Uint8Array(size);
    this.mask = size - 1;
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  /** How many requests may go out now: the window's free places, within the ring. */
  room(): number {
    return Math.max(0, Math.min(this.window - this.inFlightCount, this.mask + 1 - (this.next - this.oldest)));
  }

  /** Takes the next place; returns the 16-bit ICMP sequence number to send. */
  take(now: number): number {
    const i = this.next & this.mask;
    this.sentAt[i] = now;
    this.pending[i] = 1;
    this.inFlightCount++;
    return this.next++ & 0xffff;
  }

  /** Gives back the last `count` places taken (they never left: the socket buffer was full). */
  untake(count: number): void {
    for (let k = 0; k < count && this.next > this.oldest; k++) {
      this.next--;
      this.pending[this.next & this.mask] = 0;
      this.inFlightCount--;
    }
  }

  /**
   * A reply with sequence `seq` carrying send time `sentAt`: true when it answers a pending
   * request (a duplicate or a reply to a request already given up answers nothing).
   */
  answer(seq: number, sentAt: number): boolean {
    const i = seq & this.mask;
    if (this.pending[i] !== 1 || this.sentAt[i] !== sentAt) return false;
    this.pending[i] = 0;
    this.inFlightCount--;
    return true;
  }

  /** Gives up requests older than the timeout; returns how many. */
  expire(now: number): number {
    let n = 0;
    while (this.oldest < this.next) {
      const i = this.oldest & this.mask;
      if (this.pending[i] === 1) {
        if (now - this.sentAt[i]! < this.timeoutMs) break;
        this.pending[i] = 0;
        this.inFlightCount--;
        n++;
      }
      this.oldest++;
    }
    this.expired += n;
    return n;
  }
}
