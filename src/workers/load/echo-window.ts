// The requests one bulk-mode simulated client has in flight (--bandwidth): at most `window`
// unanswered echo requests, so the client sends only as fast as the server forwards and answers
// (a closed loop) instead of flooding buffers. Requests are numbered in send order; a ring of
// their send times finds a reply's request by its 16-bit ICMP sequence number. A request
// unanswered after a timeout is given up, so a lost packet frees its place: the timeout follows
// the measured RTT as TCP's retransmission timeout does (RFC 6298: srtt + 4 rttvar), so a server
// that drops packets is not left idle while lost requests wait out a fixed second. A reply that
// comes after its request was given up still counts as answered (late), but frees nothing.

/** The give-up timeout before any RTT was measured, and its ceiling. */
export const ECHO_TIMEOUT_MS = 1000;
/** Its floor: below this, scheduling delays on a busy machine would pass for losses. */
export const MIN_ECHO_TIMEOUT_MS = 50;

/** What a reply answered. */
export const ANSWER_NONE = 0;
export const ANSWER_IN_FLIGHT = 1;
/** A request already given up. */
export const ANSWER_LATE = 2;

const PENDING = 1;
const GIVEN_UP = 2;

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
  private srtt = -1;
  private rttvar = 0;

  constructor(
    readonly window: number,
    private readonly maxTimeoutMs = ECHO_TIMEOUT_MS,
    private readonly minTimeoutMs = MIN_ECHO_TIMEOUT_MS,
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

  /** How long a request may stay unanswered now. */
  get timeoutMs(): number {
    if (this.srtt < 0) return this.maxTimeoutMs;
    return Math.min(this.maxTimeoutMs, Math.max(this.minTimeoutMs, this.srtt + 4 * this.rttvar));
  }

  /** How many requests may go out now: the window's free places, within the ring. */
  room(): number {
    return Math.max(0, Math.min(this.window - this.inFlightCount, this.mask + 1 - (this.next - this.oldest)));
  }

  /** Takes the next place; returns the 16-bit ICMP sequence number to send. */
  take(now: number): number {
    const i = this.next & this.mask;
    this.sentAt[i] = now;
    this.pending[i] = PENDING;
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
   * A reply with sequence `seq` carrying send time `sentAt`, at `now`: ANSWER_IN_FLIGHT frees
   * its place and feeds the RTT estimate, ANSWER_LATE answers a request already given up, and
   * ANSWER_NONE is a duplicate or not ours.
   */
  answer(seq: number, sentAt: number, now: number): number {
    const i = seq & this.mask;
    const state = this.pending[i]!;
    if (state === 0 || this.sentAt[i] !== sentAt) return ANSWER_NONE;
    this.pending[i] = 0;
    if (state === GIVEN_UP) return ANSWER_LATE;
    this.inFlightCount--;
    const rtt = now - sentAt;
    if (this.srtt < 0) {
      this.srtt = rtt;
      this.rttvar = rtt / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rtt);
      this.srtt = 0.875 * this.srtt + 0.125 * rtt;
    }
    return ANSWER_IN_FLIGHT;
  }

  /** Gives up requests older than the timeout; returns how many. */
  expire(now: number): number {
    let n = 0;
    const timeout = this.timeoutMs;
    while (this.oldest < this.next) {
      const i = this.oldest & this.mask;
      if (this.pending[i] === PENDING) {
        if (now - this.sentAt[i]! < timeout) break;
        this.pending[i] = GIVEN_UP;
        this.inFlightCount--;
        n++;
      }
      this.oldest++;
    }
    this.expired += n;
    return n;
  }
}
