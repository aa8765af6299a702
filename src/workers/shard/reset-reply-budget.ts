// How many first resets a shard answers while it falls behind its socket. Without tls-auth or
// tls-crypt a spoofed reset cannot be told from a real one, and each stateless reply costs a
// cookie and a datagram sent, several times what reading and dropping costs. A shard that answers
// every reset of a flood faster than itself lets its socket queue fill, and the kernel then drops
// the data packets of its connected clients with the rest. So the shard answers every reset while
// it keeps up, and only a share of them while it does not: the share halves each time a readable
// turn ends with the socket still full and first resets were a quarter or more of what it read,
// and grows back by an eighth after any other turn (additive increase, multiplicative decrease),
// and to all at once when no turn has been behind for a second (a shard whose flood ended may see
// no datagram until the next client's reset). A shard behind on data alone (bulk traffic) thus
// answers every reset. Connected clients keep their tunnels; new clients
// still get in, at the rate the shard has left. (OpenVPN answers at most connect-freq-initial
// resets per window, 100 per 10 s by default, flood or not.)

/** The smallest share of resets answered: a real client's retries still get through. */
export const MIN_SHARE = 1 / 64;
const SHARE_STEP_UP = 1 / 8;
/** Resets must be at least this share of a turn's datagrams for the turn to cut the share. */
const RESET_SHARE_OF_TURN = 1 / 4;
/** After this long without a turn behind, every reset is answered again. */
const RECOVER_MS = 1000;

export class ResetReplyBudget {
  /** The share of resets answered now, MIN_SHARE..1. */
  private share = 1;
  /** Answers owed: each reset adds the share, each answer takes one (spreads answers evenly). */
  private credit = 0;
  /** When a turn last cut the share (ms). */
  private behindAt = -Infinity;

  /** Whether to answer the next reset (at `now`, ms); false: drop it (counted by the caller). */
  take(now: number): boolean {
    if (this.share < 1 && now - this.behindAt >= RECOVER_MS) this.share = 1;
    if (this.share >= 1) return true;
    this.credit += this.share;
    if (this.credit < 1) return false;
    this.credit -= 1;
    return true;
  }

  /**
   * A readable turn of `datagrams`, `resets` of them first resets, ended: `drained` false when
   * the socket still held datagrams (the shard is behind).
   */
  turnEnded(drained: boolean, datagrams: number, resets: number, now: number): void {
    if (!drained && resets >= datagrams * RESET_SHARE_OF_TURN) {
      this.share = Math.max(MIN_SHARE, this.share / 2);
      this.behindAt = now;
    } else this.share = Math.min(1, this.share + SHARE_STEP_UP);
  }

  /** The share answered at `now` (for tests and the log). */
  answering(now: number): number {
    return now - this.behindAt >= RECOVER_MS ? 1 : this.share;
  }
}
