// Single-producer single-consumer packet ring in a SharedArrayBuffer, for moving packets
// between the main thread (TUN side) and shard workers without messages or copies of objects.
//
// Layout: a 256-byte header of Int32 words, then `capacity` slots of `stride` bytes each:
//   slot = [length u32][meta u32][payload, up to slotSize bytes][pad to 64 bytes]
// head and tail are free-running 32-bit counters (wrapping); slot index = counter & (capacity - 1),
// so capacity is a power of two and all of it is usable.
//
// Producer: fill slots (push/pushBatch copy; reserve/slotPayload/commit write in place), then one
// Atomics.store of the tail publishes them. push and pushBatch publish before they return;
// commit does not, so a batch written in place becomes visible with one publish().
// Consumer: popBatch/peek read slots, then one Atomics.store of the head releases them.
// Sleeping: the consumer raises the "sleeping" flag, re-reads the tail, then waits on the tail
// word with Atomics.waitAsync; publish() notifies only if it can take the flag down (1 -> 0), so
// there is at most one notify per raised flag and none while the consumer is busy.
// A full ring or an oversized payload is a drop, counted in the header (readable from any thread).

import {
  MAGIC,
  MAX_CAPACITY,
  MAX_SLOT_SIZE,
  RING_HEADER_BYTES,
  RING_WORD,
  SLOT_HEADER_BYTES,
  VERSION,
  isPowerOfTwo,
  strideFor,
} from './ring-layout';

export { RING_HEADER_BYTES, RING_WORD } from './ring-layout';
import { sleepUntilPublished } from './ring-sleep';

const RESOLVED: Promise<void> = Promise.resolve();
const KEEP_ALIVE_MS = 1 << 30;
function noop(): void {}

/** Visitor for popBatch: `slot` is the whole slot payload view (slotSize bytes), valid only during the call; the packet is slot[0, length). */
export type RingVisitor = (slot: Uint8Array, length: number, meta: number) => void;

export class PacketRing {
  /** The shared memory; post it to another thread and call PacketRing.attach there. */
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  /** Largest payload a slot holds, in bytes. */
  readonly slotSize: number;

  private readonly header: Int32Array;
  private readonly words: Uint32Array;
  private readonly mask: number;
  private readonly strideWords: number;
  /** One preallocated full-slot view per slot, so no packet allocates a view. */
  private readonly payloads: Uint8Array[];
  // Producer-local state.
  private pendingTail: number;
  private publishedTail: number;
  private cachedHead: number;
  // Consumer-local state.
  private head: number;
  private cachedTail: number;
  /** Created on the first sleep and ref'd only while asleep: a pending waitAsync alone does not keep Node running. */
  private keepAlive: ReturnType<typeof setInterval> | null = null;

  /** Makes a fresh ring. `slots` must be a power of two; `slotSize` is the payload limit (MTU plus headroom). */
  static create(slots: number, slotSize: number): PacketRing {
    if (!isPowerOfTwo(slots) || slots > MAX_CAPACITY) {
      throw new RangeError(`ring slots must be a power of two from 1 to ${MAX_CAPACITY}, got ${slots}`);
    }
    if (!Number.isInteger(slotSize) || slotSize < 1 || slotSize > MAX_SLOT_SIZE) {
      throw new RangeError(`ring slotSize must be an integer from 1 to ${MAX_SLOT_SIZE}, got ${slotSize}`);
    }
    const stride = strideFor(slotSize);
    const sab = new SharedArrayBuffer(RING_HEADER_BYTES + slots * stride);
    const header = new Int32Array(sab, 0, RING_HEADER_BYTES >> 2);
    header[RING_WORD.capacity] = slots;
    header[RING_WORD.slotSize] = slotSize;
    header[RING_WORD.stride] = stride;
    header[RING_WORD.version] = VERSION;
    Atomics.store(header, RING_WORD.magic, MAGIC);
    return new PacketRing(sab);
  }

  /** Rebuilds a ring from a buffer made by create (e.g. received via postMessage); same state, layout read from the header. */
  static attach(sab: SharedArrayBuffer): PacketRing {
    return new PacketRing(sab);
  }

  private constructor(sab: SharedArrayBuffer) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < RING_HEADER_BYTES) {
      throw new TypeError('PacketRing.attach: expected the SharedArrayBuffer of a ring made by PacketRing.create');
    }
    const header = new Int32Array(sab, 0, RING_HEADER_BYTES >> 2);
    if (Atomics.load(header, RING_WORD.magic) !== MAGIC || header[RING_WORD.version] !== VERSION) {
      throw new TypeError('PacketRing.attach: buffer has no ring header (wrong magic or version); pass ring.buffer from PacketRing.create');
    }
    const capacity = header[RING_WORD.capacity];
    const slotSize = header[RING_WORD.slotSize];
    const stride = header[RING_WORD.stride];
    if (!isPowerOfTwo(capacity) || stride !== strideFor(slotSize) || sab.byteLength !== RING_HEADER_BYTES + capacity * stride) {
      throw new TypeError('PacketRing.attach: ring header does not match the buffer size; the buffer is damaged');
    }
    this.buffer = sab;
    this.capacity = capacity;
    this.slotSize = slotSize;
    this.header = header;
    this.words = new Uint32Array(sab);
    this.mask = capacity - 1;
    this.strideWords = stride >> 2;
    this.payloads = new Array<Uint8Array>(capacity);
    for (let i = 0; i < capacity; i++) {
      this.payloads[i] = new Uint8Array(sab, RING_HEADER_BYTES + i * stride + SLOT_HEADER_BYTES, slotSize);
    }
    const tail = Atomics.load(header, RING_WORD.tail);
    const head = Atomics.load(header, RING_WORD.head);
    this.pendingTail = tail;
    this.publishedTail = tail;
    this.cachedHead = head;
    this.head = head;
    this.cachedTail = tail;
  }

  // ---- counters, readable from any thread ----

  /** Published packets not yet released by the consumer (a snapshot when read from a third thread). */
  get size(): number {
    // Head first: the tail read after it can only be later, so the difference is never negative.
    const head = Atomics.load(this.header, RING_WORD.head);
    const size = (Atomics.load(this.header, RING_WORD.tail) - head) | 0;
    return size < this.capacity ? size : this.capacity;
  }

  /** Packets dropped because the ring was full. */
  get drops(): number {
    return Atomics.load(this.header, RING_WORD.drops) >>> 0;
  }

  /** Packets dropped because they were longer than slotSize (counted apart from drops). */
  get oversizeDrops(): number {
    return Atomics.load(this.header, RING_WORD.oversizeDrops) >>> 0;
  }

  /** Atomics.notify calls made by the producer (at most one per raised sleeping flag). */
  get notifies(): number {
    return Atomics.load(this.header, RING_WORD.notifies) >>> 0;
  }

  /** Times the consumer raised its sleeping flag (once per nap of waitForData). */
  get sleeps(): number {
    return Atomics.load(this.header, RING_WORD.sleeps) >>> 0;
  }

  /** Naps that timed out yet found data: a notify lost by the runtime, or a publish racing the timeout. */
  get missedWakes(): number {
    return Atomics.load(this.header, RING_WORD.missedWakes) >>> 0;
  }

  // ---- producer ----

  /** Slots the producer may still fill (committed-but-unpublished slots count as used). */
  get free(): number {
    this.cachedHead = Atomics.load(this.header, RING_WORD.head);
    return this.capacity - ((this.pendingTail - this.cachedHead) | 0);
  }

  /** Whether the slot at counter `pos` is free; reloads the consumer's head only when it looks full. */
  private hasRoom(pos: number): boolean {
    if (((pos - this.cachedHead) | 0) < this.capacity) return true;
    this.cachedHead = Atomics.load(this.header, RING_WORD.head);
    return ((pos - this.cachedHead) | 0) < this.capacity;
  }

  /**
   * The slot index for the next packet, of `length` bytes, or -1 (counted: in oversizeDrops when
   * length is outside 0..slotSize, else in drops when the ring is full). The index, not the
   * counter: the counter wraps through every int32, -1 included.
   */
  private claim(length: number): number {
    if (length > this.slotSize || length < 0) {
      Atomics.add(this.header, RING_WORD.oversizeDrops, 1);
      return -1;
    }
    const pos = this.pendingTail;
    if (!this.hasRoom(pos)) {
      Atomics.add(this.header, RING_WORD.drops, 1);
      return -1;
    }
    return pos & this.mask;
  }

  /** Copies one packet in and publishes it. False when dropped (ring full or payload over slotSize; both counted). */
  push(payload: Uint8Array, meta: number): boolean {
    const length = payload.length;
    const slot = this.claim(length);
    if (slot === -1) return false;
    this.payloads[slot].set(payload);
    const word = (RING_HEADER_BYTES >> 2) + slot * this.strideWords;
    this.words[word] = length;
    this.words[word + 1] = meta;
    this.pendingTail = (this.pendingTail + 1) | 0;
    this.publish();
    return true;
  }

  /**
   * Copies payloads[0..count) in, metas[k] tagging payloads[k], and publishes once. Returns how
   * many were accepted; the others are counted as drops (oversize ones as oversizeDrops).
   */
  pushBatch(payloads: readonly Uint8Array[], metas: ArrayLike<number>, count: number): number {
    if (count > payloads.length) count = payloads.length;
    const capacity = this.capacity;
    const slotSize = this.slotSize;
    let pos = this.pendingTail;
    let room = capacity - ((pos - this.cachedHead) | 0);
    if (room < count) {
      this.cachedHead = Atomics.load(this.header, RING_WORD.head);
      room = capacity - ((pos - this.cachedHead) | 0);
    }
    let accepted = 0;
    let full = 0;
    let oversize = 0;
    for (let k = 0; k < count; k++) {
      const payload = payloads[k];
      const length = payload.length;
      if (length > slotSize) {
        oversize++;
        continue;
      }
      if (room === 0) {
        full++;
        continue;
      }
      const slot = pos & this.mask;
      this.payloads[slot].set(payload);
      const word = (RING_HEADER_BYTES >> 2) + slot * this.strideWords;
      this.words[word] = length;
      this.words[word + 1] = metas[k];
      pos = (pos + 1) | 0;
      room--;
      accepted++;
    }
    if (full !== 0) Atomics.add(this.header, RING_WORD.drops, full);
    if (oversize !== 0) Atomics.add(this.header, RING_WORD.oversizeDrops, oversize);
    this.pendingTail = pos;
    this.publish();
    return accepted;
  }

  /**
   * Zero-copy write: the slot index `ahead` places past the next free slot (0 = the one the next
   * commit fills), or -1 if the ring has no such free slot. Counts nothing; a producer that then
   * discards a packet calls countDrops.
   */
  reserve(ahead = 0): number {
    const pos = (this.pendingTail + ahead) | 0;
    return this.hasRoom(pos) ? pos & this.mask : -1;
  }

  /** The whole payload area (slotSize bytes) of slot `index`, a view into the shared memory. */
  slotPayload(index: number): Uint8Array {
    return this.payloads[index];
  }

  /**
   * Commits the slot reserve() returned (its first `length` payload bytes, tagged `meta`). Not
   * visible to the consumer until publish(). False (and counted) if the ring is full or
   * length > slotSize.
   */
  commit(length: number, meta: number): boolean {
    const slot = this.claim(length);
    if (slot === -1) return false;
    const word = (RING_HEADER_BYTES >> 2) + slot * this.strideWords;
    this.words[word] = length;
    this.words[word + 1] = meta;
    this.pendingTail = (this.pendingTail + 1) | 0;
    return true;
  }

  /** Makes every committed slot visible with one Atomics.store; wakes the consumer only if it sleeps. */
  publish(): void {
    const tail = this.pendingTail;
    if (tail === this.publishedTail) return;
    this.publishedTail = tail;
    Atomics.store(this.header, RING_WORD.tail, tail);
    // Sequentially consistent store-then-load pairs with the consumer's flag-then-recheck, so
    // either it sees this tail or this sees its flag.
    if (Atomics.load(this.header, RING_WORD.sleeping) === 1 && Atomics.compareExchange(this.header, RING_WORD.sleeping, 1, 0) === 1) {
      Atomics.notify(this.header, RING_WORD.tail, 1);
      Atomics.add(this.header, RING_WORD.notifies, 1);
    }
  }

  /** Counts packets the producer discarded itself (e.g. reserve() gave -1 and it read into scratch memory). */
  countDrops(count: number): void {
    Atomics.add(this.header, RING_WORD.drops, count);
  }

  // ---- consumer ----

  /**
   * Hands up to `max` packets to `visit` in order, then releases them with one Atomics.store.
   * Returns how many. The slot view is reused: copy what must outlive the call. A packet whose
   * visitor throws is still consumed, so one bad packet cannot wedge the ring.
   */
  popBatch(max: number, visit: RingVisitor): number {
    const n = this.peek(max);
    if (n === 0) return 0;
    const head = this.head;
    let done = 0;
    try {
      while (done < n) {
        const slot = (head + done) & this.mask;
        const word = (RING_HEADER_BYTES >> 2) + slot * this.strideWords;
        done++;
        visit(this.payloads[slot], this.words[word], this.words[word + 1]);
      }
    } finally {
      this.release(done);
    }
    return n;
  }

  /** Number of packets (at most `max`) readable now from the head; read them with peekPayload/peekLength/peekMeta, then release. */
  peek(max: number): number {
    let available = (this.cachedTail - this.head) | 0;
    if (available < max) {
      this.cachedTail = Atomics.load(this.header, RING_WORD.tail);
      available = (this.cachedTail - this.head) | 0;
    }
    return available < max ? available : max;
  }

  /** Whole slot payload view of the k-th unreleased packet (k < peek()). */
  peekPayload(k: number): Uint8Array {
    return this.payloads[(this.head + k) & this.mask];
  }

  peekLength(k: number): number {
    return this.words[(RING_HEADER_BYTES >> 2) + ((this.head + k) & this.mask) * this.strideWords];
  }

  peekMeta(k: number): number {
    return this.words[(RING_HEADER_BYTES >> 2) + ((this.head + k) & this.mask) * this.strideWords + 1];
  }

  /** Gives the first `count` peeked slots back to the producer (one Atomics.store). */
  release(count: number): void {
    if (count <= 0) return;
    const available = (this.cachedTail - this.head) | 0;
    if (count > available) {
      throw new RangeError(`PacketRing.release(${count}): only ${available} packets were peeked`);
    }
    this.head = (this.head + count) | 0;
    Atomics.store(this.header, RING_WORD.head, this.head);
  }

  /**
   * Resolves when packets are readable: at once if some are, else after the producer's next
   * publish, a wake(), or `timeoutMs`. Call from the one consumer only, one wait at a time, and
   * re-check with popBatch: a wake may find nothing. Keeps the thread's event loop alive while
   * pending (a bare Atomics.waitAsync would let Node exit).
   */
  waitForData(timeoutMs?: number): Promise<void> {
    if (Atomics.load(this.header, RING_WORD.tail) !== this.head) return RESOLVED;
    return this.sleep(timeoutMs === undefined ? Infinity : timeoutMs);
  }

  private sleep(timeoutMs: number): Promise<void> {
    this.keepAlive ??= setInterval(noop, KEEP_ALIVE_MS);
    return sleepUntilPublished(this.header, this.head, timeoutMs, this.keepAlive);
  }

  /** Ends the consumer's current waitForData from any thread (e.g. for shutdown), even with no data. */
  wake(): void {
    // The counter catches a wait that is between two naps when the notify comes.
    Atomics.add(this.header, RING_WORD.wakes, 1);
    Atomics.notify(this.header, RING_WORD.tail);
  }
}
