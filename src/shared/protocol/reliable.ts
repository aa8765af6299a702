// The control channel's reliability layer (OpenVPN reliable.c), one send side and one receive
// side per key_state. Pure: time comes in as `now` (ms), nothing here sends or sets timers.
//
// Send: each new message takes the next message packet-id (from 0); at most 6 may be unacked,
// and a new id is refused while `next − lowest unacked ≥ 6`. A message is due at once, then
// again after 2, 4, 8 ... s (tls-timeout doubling per transmission), or early once 3 ACKs for
// higher ids have arrived (fast retransmit).
// Receive: ids in [expected, expected + 12) are kept and handed out in order; an id already
// seen is acked again but not handed out; an id beyond the window is dropped without an ACK.
// ACKs: every accepted or duplicate id is queued (at most 8 pending); takeAcks() returns the new
// ones first, then refills from the recently sent ones (2.6 "ACK of ACKs", ks->lru_acks).

import type { ReliableOpcode } from './opcodes';
import { RELIABLE_ACK_SIZE } from './packet';

export const TLS_RELIABLE_N_SEND_BUFFERS = 6;
export const TLS_RELIABLE_N_REC_BUFFERS = 12;
export const N_ACK_RETRANSMIT = 3;
/** --tls-timeout default, the first retransmission interval. */
export const DEFAULT_TLS_TIMEOUT_MS = 2000;

/** Distance from b forward to a in the 32-bit message id space. */
function idDiff(a: number, b: number): number {
  return (a - b) >>> 0;
}

/** a comes before b (modulo 2^32). */
function idBefore(a: number, b: number): boolean {
  return idDiff(a, b) >= 0x80000000;
}

// ---------------------------------------------------------------------------------------------

export interface ReliableOutgoing {
  readonly packetId: number;
  readonly opcode: ReliableOpcode;
  /** The TLS bytes (or reset payload) that follow the message packet-id on the wire. */
  readonly payload: Buffer;
}

interface SendEntry extends ReliableOutgoing {
  nextTry: number;
  timeout: number;
  nAcks: number;
}

export interface ReliableSendOptions {
  /** Send window, TLS_RELIABLE_N_SEND_BUFFERS by default. */
  windowSize?: number;
  /** First retransmission interval (--tls-timeout), doubled on each transmission. */
  initialTimeoutMs?: number;
  /** First message packet-id; 1 after a stateless server reset answered id 0 for us. */
  firstPacketId?: number;
  /** Send nothing until scheduleNow() (a TCP server waits for the client to speak). */
  hold?: boolean;
  /**
   * false over TCP: each message is sent once, since the stream delivers it or the connection
   * dies (a retransmission would only be a duplicate for the peer to drop).
   */
  retransmit?: boolean;
}

export class ReliableSend {
  private readonly windowSize: number;
  private readonly initialTimeout: number;
  private readonly entries: SendEntry[] = []; // kept in packet-id order
  private nextId: number;
  private hold: boolean;
  private readonly retransmit: boolean;

  constructor(opts: ReliableSendOptions = {}) {
    this.retransmit = opts.retransmit ?? true;
    this.windowSize = opts.windowSize ?? TLS_RELIABLE_N_SEND_BUFFERS;
    this.initialTimeout = opts.initialTimeoutMs ?? DEFAULT_TLS_TIMEOUT_MS;
    this.nextId = (opts.firstPacketId ?? 0) >>> 0;
    this.hold = opts.hold ?? false;
  }

  /** The id the next enqueued message will get. */
  get nextPacketId(): number {
    return this.nextId;
  }

  /** How many more messages enqueue() accepts now (reliable_get_num_output_sequenced_available). */
  available(): number {
    if (this.entries.length === 0) return this.windowSize;
    return Math.max(0, this.windowSize - idDiff(this.nextId, this.entries[0]!.packetId));
  }

  /** Nothing left unacknowledged. */
  isEmpty(): boolean {
    return this.entries.length === 0;
  }

  /** Every message with a packet-id before `id` has been acknowledged. */
  ackedBefore(id: number): boolean {
    return this.entries.length === 0 || !idBefore(this.entries[0]!.packetId, id);
  }

  get unacked(): number {
    return this.entries.length;
  }

  /**
   * Queues a message; it is due at once. Returns its message packet-id, or null when the send
   * window is full (keep the bytes and retry after ACKs arrive).
   */
  enqueue(opcode: ReliableOpcode, payload: Buffer): number | null {
    if (this.available() === 0) return null;
    const packetId = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0;
    this.entries.push({ packetId, opcode, payload, nextTry: -Infinity, timeout: this.initialTimeout, nAcks: 0 });
    return packetId;
  }

  /** Peer acknowledged these ids (reliable_send_purge). Unknown ids are fine. */
  onAcks(ids: readonly number[]): void {
    for (const id of ids) {
      for (let i = 0; i < this.entries.length;) {
        const e = this.entries[i]!;
        if (e.packetId === id) {
          this.entries.splice(i, 1);
          continue;
        }
        // An ACK for a later message hints that this one was lost.
        if (idBefore(e.packetId, id)) e.nAcks++;
        i++;
      }
    }
  }

  /**
   * Messages to (re)transmit now, oldest first; each one's next try is pushed back by its
   * timeout, which then doubles. The caller wraps each with the pending ACKs and sends it.
   */
  due(now: number): ReliableOutgoing[] {
    const out: ReliableOutgoing[] = [];
    if (this.hold) return out;
    for (const e of this.entries) {
      if (now >= e.nextTry || (e.nAcks >= N_ACK_RETRANSMIT && this.retransmit)) {
        e.nextTry = this.retransmit ? now + e.timeout : Infinity;
        e.timeout *= 2;
        e.nAcks = 0;
        out.push(e);
      }
    }
    return out;
  }

  /** Milliseconds until due() has something (0: now), or null when nothing is waiting. */
  timeUntilDue(now: number): number | null {
    if (this.hold || this.entries.length === 0) return null;
    let best = Infinity;
    for (const e of this.entries) {
      if ((e.nAcks >= N_ACK_RETRANSMIT && this.retransmit) || e.nextTry <= now) return 0;
      best = Math.min(best, e.nextTry - now);
    }
    return best === Infinity ? null : best;
  }

  /** Make everything due now with the initial timeout, and lift the hold (reliable_schedule_now). */
  scheduleNow(now: number): void {
    this.hold = false;
    for (const e of this.entries) {
      e.nextTry = now;
      e.timeout = this.initialTimeout;
    }
  }
}

// ---------------------------------------------------------------------------------------------

export type ReceiveVerdict =
  /** New message kept; it is acknowledged and handed out by drain() once in order. */
  | 'accepted'
  /** Seen before (delivered or buffered); acknowledged again, not handed out again. */
  | 'duplicate'
  /** Too far ahead of the window; dropped without an ACK, the peer will resend. */
  | 'out-of-window'
  /** Every receive slot holds an undrained message; dropped without an ACK. */
  | 'full';

export interface ReliableIncoming {
  readonly packetId: number;
  readonly opcode: ReliableOpcode;
  readonly payload: Buffer;
}

export interface ReliableRecvOptions {
  /** Receive window, TLS_RELIABLE_N_REC_BUFFERS by default. */
  windowSize?: number;
  /** First expected message packet-id; 1 after a stateless server reset consumed id 0. */
  firstPacketId?: number;
  /** Re-send recently sent ACKs to fill a packet (2.6 lru_acks). On by default. */
  resendRecentAcks?: boolean;
}

export class ReliableRecv {
  private readonly windowSize: number;
  private readonly slots: (ReliableIncoming | undefined)[];
  private stored = 0;
  private head = 0; // slot of `expected`
  private expected: number;
  private readonly pendingAcks: number[] = [];
  private readonly recentAcks: number[] = [];
  private readonly resendRecent: boolean;

  constructor(opts: ReliableRecvOptions = {}) {
    this.windowSize = opts.windowSize ?? TLS_RELIABLE_N_REC_BUFFERS;
    this.slots = new Array<ReliableIncoming | undefined>(this.windowSize).fill(undefined);
    this.expected = (opts.firstPacketId ?? 0) >>> 0;
    this.resendRecent = opts.resendRecentAcks ?? true;
  }

  /** The next message packet-id drain() will hand out. */
  get expectedPacketId(): number {
    return this.expected;
  }

  /**
   * Offers a received message. The payload is copied when kept, so the datagram buffer may be
   * reused. The ACK (if any) is queued for takeAcks().
   */
  receive(packetId: number, opcode: ReliableOpcode, payload: Uint8Array): ReceiveVerdict {
    if (this.stored >= this.windowSize) return 'full';
    const id = packetId >>> 0;
    const diff = idDiff(id, this.expected);
    let verdict: ReceiveVerdict;
    if (diff < this.windowSize) {
      const slot = (this.head + diff) % this.windowSize;
      if (this.slots[slot] !== undefined) {
        verdict = 'duplicate';
      } else {
        this.slots[slot] = { packetId: id, opcode, payload: Buffer.from(payload) };
        this.stored++;
        verdict = 'accepted';
      }
    } else if (idBefore(id, this.expected)) {
      verdict = 'duplicate';
    } else {
      return 'out-of-window';
    }
    this.queueAck(id);
    return verdict;
  }

  /** Messages that are now in order, in order; each is handed out once. */
  drain(): ReliableIncoming[] {
    const out: ReliableIncoming[] = [];
    for (;;) {
      const m = this.slots[this.head];
      if (m === undefined) break;
      this.slots[this.head] = undefined;
      this.head = (this.head + 1) % this.windowSize;
      this.stored--;
      this.expected = (this.expected + 1) >>> 0;
      out.push(m);
    }
    return out;
  }

  /** True when some received message still needs an ACK (then send a P_ACK_V1 if nothing else goes out). */
  hasPendingAcks(): boolean {
    return this.pendingAcks.length > 0;
  }

  /**
   * ACKs for the next outgoing packet, at most `max` (CONTROL_SEND_ACK_MAX on a message,
   * RELIABLE_ACK_SIZE on a P_ACK_V1): the pending ones first, then recently sent ones again.
   * The returned ids leave the pending list.
   */
  takeAcks(max: number): number[] {
    const limit = Math.min(max, RELIABLE_ACK_SIZE);
    const n = Math.min(limit, this.pendingAcks.length);
    const fresh = this.pendingAcks.splice(0, n);
    if (!this.resendRecent) return fresh;
    // Move the fresh ids to the front of the recent list, keeping their order (copy_acks_to_mru).
    for (let i = fresh.length - 1; i >= 0; i--) {
      const id = fresh[i]!;
      const at = this.recentAcks.indexOf(id);
      if (at >= 0) this.recentAcks.splice(at, 1);
      this.recentAcks.unshift(id);
      if (this.recentAcks.length > RELIABLE_ACK_SIZE) this.recentAcks.pop();
    }
    return this.recentAcks.slice(0, limit);
  }

  private queueAck(id: number): void {
    // OpenVPN keeps at most 8 pending; a dropped ACK is repaired by the peer's retransmission.
    if (this.pendingAcks.length < RELIABLE_ACK_SIZE && !this.pendingAcks.includes(id)) this.pendingAcks.push(id);
  }
}
