// Worker side of test/ring.test.ts: producers, consumers and probes that run in another thread.
// Also exports the deterministic packet contents both sides agree on. Does nothing when run
// outside a worker (node --test may load every file under dist/test).

import { parentPort, workerData } from 'node:worker_threads';
import { PacketRing, RING_WORD } from '../src/shared/ring';

const PATTERN_SPAN = 1024;
const patterns = new Map<number, Uint8Array>();

function patternFor(slotSize: number): Uint8Array {
  let pattern = patterns.get(slotSize);
  if (pattern === undefined) {
    pattern = new Uint8Array(slotSize + PATTERN_SPAN);
    let x = 0x2545f491;
    for (let i = 0; i < pattern.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      pattern[i] = x & 0xff;
    }
    patterns.set(slotSize, pattern);
  }
  return pattern;
}

function mix(seq: number): number {
  let h = Math.imul(seq ^ 0x5bd1e995, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

/** Payload length of packet `seq`: 0..slotSize, with both ends hit regularly. */
export function lengthFor(seq: number, slotSize: number): number {
  const r = seq % 1000;
  if (r === 0) return 0;
  if (r === 1) return slotSize;
  return mix(seq) % (slotSize + 1);
}

/** Writes packet `seq` into dst (slotSize bytes or more) and returns its length. */
export function fillPayload(dst: Uint8Array, seq: number, slotSize: number): number {
  const length = lengthFor(seq, slotSize);
  const offset = mix(seq ^ 0x7f4a7c15) % PATTERN_SPAN;
  dst.set(patternFor(slotSize).subarray(offset, offset + length));
  // The sequence number in the first bytes makes a stale slot from an earlier lap visible.
  for (let i = 0; i < 4 && i < length; i++) dst[i] = (seq >>> (8 * i)) & 0xff;
  return length;
}

const checkScratch = new Map<number, Uint8Array>();

/** Null if (slot, length, meta) is exactly packet `seq`, else what differs. */
export function checkPayload(slot: Uint8Array, length: number, meta: number, seq: number, slotSize: number): string | null {
  if (meta !== seq >>> 0) return `expected packet ${seq}, got meta ${meta}`;
  let expected = checkScratch.get(slotSize);
  if (expected === undefined) {
    expected = new Uint8Array(slotSize);
    checkScratch.set(slotSize, expected);
  }
  const want = fillPayload(expected, seq, slotSize);
  if (length !== want) return `packet ${seq}: length ${length}, expected ${want}`;
  if (Buffer.compare(slot.subarray(0, length), expected.subarray(0, length)) !== 0) {
    return `packet ${seq}: payload bytes differ`;
  }
  return null;
}

export type WorkerJob =
  | { mode: 'produce'; sab: SharedArrayBuffer; total: number; batch: number; pauseEvery: number }
  | { mode: 'consume'; sab: SharedArrayBuffer; total: number; batch: number }
  | { mode: 'echo'; input: SharedArrayBuffer; output: SharedArrayBuffer; rounds: number }
  | { mode: 'inspect'; sab: SharedArrayBuffer; pushMetas: number[] }
  | { mode: 'push-when-sleeping'; sab: SharedArrayBuffer; meta: number }
  /** Attaches, sets gate[0], blocks its thread until gate[1] is set (10 s at most), then drains the ring. */
  | { mode: 'stalled-consumer'; sab: SharedArrayBuffer; gate: SharedArrayBuffer };

const nap = new Int32Array(new SharedArrayBuffer(4));

function sleepMs(ms: number): void {
  Atomics.wait(nap, 0, 0, ms);
}

/** Sends packets 0..total-1, retrying on a full ring; cycles through pushBatch, reserve/commit and push. */
function produce(job: Extract<WorkerJob, { mode: 'produce' }>): { sent: number; backoffs: number } {
  const ring = PacketRing.attach(job.sab);
  const slotSize = ring.slotSize;
  const scratch: Uint8Array[] = [];
  for (let k = 0; k < job.batch; k++) scratch.push(new Uint8Array(slotSize));
  const views: Uint8Array[] = new Array<Uint8Array>(job.batch);
  const metas = new Uint32Array(job.batch);
  let seq = 0;
  let backoffs = 0;
  let spins = 0;
  let nextPause = job.pauseEvery;
  while (seq < job.total) {
    if (seq >= nextPause) {
      // Let the consumer run dry and sleep, to exercise the notify path.
      sleepMs(1);
      nextPause += job.pauseEvery;
    }
    const free = ring.free;
    if (free === 0) {
      backoffs++;
      if (++spins > 32) sleepMs(0.05);
      continue;
    }
    spins = 0;
    let n = Math.min(free, job.batch, job.total - seq, nextPause - seq);
    switch ((seq >>> 10) % 3) {
      case 0: {
        for (let k = 0; k < n; k++) {
          const length = fillPayload(scratch[k], seq + k, slotSize);
          views[k] = scratch[k].subarray(0, length);
          metas[k] = seq + k;
        }
        const accepted = ring.pushBatch(views, metas, n);
        if (accepted !== n) throw new Error(`pushBatch accepted ${accepted} of ${n} with ${free} free`);
        break;
      }
      case 1: {
        for (let k = 0; k < n; k++) {
          const slot = ring.reserve();
          if (slot < 0) throw new Error('reserve failed with free slots');
          const length = fillPayload(ring.slotPayload(slot), seq + k, slotSize);
          if (!ring.commit(length, seq + k)) throw new Error('commit failed');
        }
        ring.publish();
        break;
      }
      default: {
        n = 1;
        const length = fillPayload(scratch[0], seq, slotSize);
        if (!ring.push(scratch[0].subarray(0, length), seq)) throw new Error('push failed with free slots');
      }
    }
    seq += n;
  }
  return { sent: seq, backoffs };
}

/** Receives `total` packets and checks each is the next one, byte for byte. */
async function consume(job: Extract<WorkerJob, { mode: 'consume' }>): Promise<{ received: number; error: string | null }> {
  const ring = PacketRing.attach(job.sab);
  const slotSize = ring.slotSize;
  let expected = 0;
  let error: string | null = null;
  const visit = (slot: Uint8Array, length: number, meta: number): void => {
    if (error === null) error = checkPayload(slot, length, meta, expected, slotSize);
    expected++;
  };
  while (expected < job.total && error === null) {
    if (ring.popBatch(job.batch, visit) === 0) await ring.waitForData();
  }
  return { received: expected, error };
}

/** Returns every packet of `input` on `output`, sleeping whenever `input` is empty. */
async function echo(job: Extract<WorkerJob, { mode: 'echo' }>): Promise<{ echoed: number }> {
  const input = PacketRing.attach(job.input);
  const output = PacketRing.attach(job.output);
  let echoed = 0;
  const visit = (slot: Uint8Array, length: number, meta: number): void => {
    if (!output.push(slot.subarray(0, length), meta)) throw new Error('echo output full');
    echoed++;
  };
  while (echoed < job.rounds) {
    if (input.popBatch(16, visit) === 0) await input.waitForData();
  }
  return { echoed };
}

async function run(job: WorkerJob): Promise<unknown> {
  switch (job.mode) {
    case 'produce':
      return produce(job);
    case 'consume':
      return consume(job);
    case 'echo':
      return echo(job);
    case 'inspect': {
      const ring = PacketRing.attach(job.sab);
      const state = {
        capacity: ring.capacity,
        slotSize: ring.slotSize,
        size: ring.size,
        drops: ring.drops,
        oversizeDrops: ring.oversizeDrops,
        firstMeta: ring.size > 0 ? ring.peekMeta(0) : -1,
        firstBytes: ring.size > 0 ? Array.from(ring.peekPayload(0).subarray(0, ring.peekLength(0))) : [],
      };
      for (const meta of job.pushMetas) ring.push(Uint8Array.of(meta & 0xff, 0xee), meta);
      return state;
    }
    case 'stalled-consumer': {
      const ring = PacketRing.attach(job.sab);
      const gate = new Int32Array(job.gate);
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      if (Atomics.wait(gate, 1, 0, 10_000) === 'timed-out') throw new Error('never released');
      const metas: number[] = [];
      ring.popBatch(ring.capacity, (_slot, _length, meta) => metas.push(meta));
      return { metas };
    }
    case 'push-when-sleeping': {
      const ring = PacketRing.attach(job.sab);
      const header = new Int32Array(job.sab, 0, 64);
      parentPort?.postMessage({ ready: true });
      const deadline = Date.now() + 5000;
      while (Atomics.load(header, RING_WORD.sleeping) !== 1) {
        if (Date.now() > deadline) throw new Error('consumer never slept');
      }
      return { pushed: ring.push(Uint8Array.of(1, 2, 3), job.meta), notifies: ring.notifies };
    }
  }
}

if (parentPort !== null && workerData !== null && typeof workerData === 'object') {
  const port = parentPort;
  // A pending Atomics.waitAsync does not keep a thread alive; this listener does.
  port.on('message', () => undefined);
  run(workerData as WorkerJob).then(
    (result) => {
      port.postMessage({ ok: true, result });
      port.close();
    },
    (err: unknown) => {
      port.postMessage({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      port.close();
    },
  );
}
