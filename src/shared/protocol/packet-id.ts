// Packet-ids against replay (OpenVPN packet_id.c), for data packets (short form: id only) and
// for tls-auth / tls-crypt replay ids (long form: id + timestamp). Pure: `now` is in ms.
//
// Receive rule (--replay-window N T, default 64 15): id 0 is never valid; within one timestamp
// an id above the highest is accepted, an id up to N−1 below it is accepted once, anything
// older is rejected; a newer timestamp starts a new sequence, an older one is rejected. Every
// SEQ_REAP_INTERVAL the window is aged: walking from newest to oldest, the first id seen more
// than T ago and everything older become unacceptable, so a late packet gets in only within T
// of a newer one. With N = 0 (no backtrack) ids must follow each other exactly.

export const DEFAULT_SEQ_BACKTRACK = 64;
export const DEFAULT_TIME_BACKTRACK_S = 15;
export const MAX_SEQ_BACKTRACK = 65536;
export const MAX_TIME_BACKTRACK_S = 600;
export const SEQ_REAP_INTERVAL_MS = 5000;
export const PACKET_ID_MAX = 0xffffffff;
/** Renegotiate before the data packet-id runs out (ssl.c packet_id_close_to_wrapping). */
export const PACKET_ID_WRAP_TRIGGER = 0xff000000;
/** tls-crypt-v2 clients start their replay counter here to announce early negotiation. */
export const EARLY_NEG_START = 0x0f000000;
export const EARLY_NEG_MASK = 0xff000000;

const SEQ_UNSEEN = -1;
const SEQ_EXPIRED = -2;

/** Receive-side replay window for one key and direction (struct packet_id_rec). */
export class PacketIdRec {
  private readonly seqBacktrack: number;
  private readonly timeBacktrackMs: number;
  /** Ring of "when seen" per id, newest (== this.id) at `head`; UNSEEN / EXPIRED otherwise. */
  private readonly seen: Float64Array;
  private head = 0;
  private size = 0;
  private id = 0;
  private time = 0;
  private lastReap = -Infinity;

  constructor(seqBacktrack: number = DEFAULT_SEQ_BACKTRACK, timeBacktrackS: number = DEFAULT_TIME_BACKTRACK_S) {
    if (!Number.isInteger(seqBacktrack) || seqBacktrack < 0 || seqBacktrack > MAX_SEQ_BACKTRACK) {
      throw new RangeError(`replay-window size must be 0..${MAX_SEQ_BACKTRACK}, got ${seqBacktrack}`);
    }
    if (!(timeBacktrackS >= 0 && timeBacktrackS <= MAX_TIME_BACKTRACK_S)) {
      throw new RangeError(`replay-window time must be 0..${MAX_TIME_BACKTRACK_S} s, got ${timeBacktrackS}`);
    }
    this.seqBacktrack = seqBacktrack;
    this.timeBacktrackMs = timeBacktrackS * 1000;
    this.seen = new Float64Array(seqBacktrack);
  }

  /**
   * The whole check for a packet that already passed authentication (crypto_check_replay):
   * age the window if due, test, and record on success. Returns false for a replay.
   */
  check(id: number, time: number, now: number): boolean {
    this.reapIfDue(now);
    if (!this.test(id, time)) return false;
    this.add(id, time, now);
    return true;
  }

  /** Would this id be accepted? Changes nothing (packet_id_test). */
  test(id: number, time: number = 0): boolean {
    if (id === 0) return false;
    if (time < this.time) return false;
    if (this.seqBacktrack === 0) {
      if (time > this.time) return id === 1;
      return this.id === 0 || id === this.id + 1;
    }
    if (time > this.time) return true;
    if (id > this.id) return true;
    const diff = this.id - id;
    if (diff >= this.size) return false;
    return this.item(diff) === SEQ_UNSEEN;
  }

  /** Records an accepted id (packet_id_add). */
  add(id: number, time: number, now: number): void {
    const bt = this.seqBacktrack;
    if (bt === 0) {
      this.time = time;
      this.id = id;
      return;
    }
    if (this.size === 0 || time > this.time || (id >= bt && id - bt > this.id)) {
      // New sequence, or a jump beyond the window: start over just below this id.
      this.time = time;
      this.id = id > bt ? id - bt : 0;
      this.size = 0;
      this.head = 0;
    }
    while (this.id < id) {
      this.push(SEQ_UNSEEN);
      this.id++;
    }
    const diff = this.id - id;
    if (diff < this.size) this.setItem(diff, now);
  }

  /** Ages the window at most every SEQ_REAP_INTERVAL (packet_id_reap_test). */
  reapIfDue(now: number): void {
    if (this.lastReap + SEQ_REAP_INTERVAL_MS <= now) this.reap(now);
  }

  /** Makes ids seen longer than the time backtrack ago, and all older ones, unacceptable. */
  reap(now: number): void {
    if (this.timeBacktrackMs > 0) {
      let expire = false;
      for (let i = 0; i < this.size; i++) {
        const t = this.item(i);
        if (t === SEQ_EXPIRED) break;
        if (!expire && t >= 0 && t + this.timeBacktrackMs < now) expire = true;
        if (expire) this.setItem(i, SEQ_EXPIRED);
      }
    }
    this.lastReap = now;
  }

  /** Highest id recorded so far (0 before the first). */
  get highest(): number {
    return this.id;
  }

  private push(v: number): void {
    const cap = this.seen.length;
    this.head = (this.head + 1) % cap;
    this.seen[this.head] = v;
    if (this.size < cap) this.size++;
  }

  private index(diff: number): number {
    const cap = this.seen.length;
    return (this.head - diff + cap) % cap;
  }

  private item(diff: number): number {
    return this.seen[this.index(diff)]!;
  }

  private setItem(diff: number, v: number): void {
    this.seen[this.index(diff)] = v;
  }
}

/**
 * Send-side counter (struct packet_id_send): pre-incremented, so the first id is start + 1.
 * Long form (tls-auth/tls-crypt) also carries a timestamp fixed at the first packet, which
 * moves only when the counter wraps.
 */
export class PacketIdSend {
  private id: number;
  private timeS = 0;

  constructor(
    private readonly longForm: boolean,
    start: number = 0,
  ) {
    this.id = start >>> 0;
  }

  /** Next id, or null when the counter is exhausted (short form: renegotiate long before). */
  next(now: number): { id: number; time: number } | null {
    const nowS = Math.floor(now / 1000);
    if (this.timeS === 0) this.timeS = nowS;
    if (this.id === PACKET_ID_MAX) {
      if (!this.longForm || nowS <= this.timeS) return null;
      this.timeS = nowS;
      this.id = 0;
    }
    this.id++;
    return { id: this.id, time: this.longForm ? this.timeS : 0 };
  }

  /** The last id handed out. */
  get current(): number {
    return this.id;
  }

  closeToWrapping(): boolean {
    return this.id >= PACKET_ID_WRAP_TRIGGER;
  }
}
