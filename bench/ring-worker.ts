// Worker side of bench/ring.bench.ts: one producer or one consumer thread of a PacketRing,
// running one measured stream per 'run' message and answering with its counts.

import { parentPort, workerData } from 'node:worker_threads';
import { PacketRing } from '../src/shared/ring';

export type RingBenchMode = 'push' | 'pushBatch' | 'commit';
export interface RingBenchRun {
  mode: RingBenchMode;
  batch: number;
  packets: number;
  maxMs: number;
  size: number;
}
export interface RingBenchSetup {
  role: 'producer' | 'consumer';
  sab: SharedArrayBuffer;
}
export interface ProducerResult {
  sent: number;
  backoffs: number;
}
export interface ConsumerResult {
  received: number;
  bytes: number;
  ms: number;
  checksum: number;
}

/** Meta of the packet that ends a run. */
export const END_OF_RUN = 0xffffffff;

const nap = new Int32Array(new SharedArrayBuffer(4));

function produce(ring: PacketRing, run: RingBenchRun): ProducerResult {
  const payload = new Uint8Array(run.size);
  for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
  const payloads = new Array<Uint8Array>(run.batch).fill(payload);
  const metas = new Uint32Array(run.batch);
  const deadline = performance.now() + run.maxMs;
  let sent = 0;
  let backoffs = 0;
  let spins = 0;
  while (sent < run.packets) {
    if ((sent & 1023) === 0 && performance.now() > deadline) break;
    let n = 0;
    if (run.mode === 'push') {
      if (ring.reserve() >= 0 && ring.push(payload, sent)) n = 1;
    } else {
      const free = ring.free;
      n = Math.min(free, run.batch, run.packets - sent);
      if (n > 0 && run.mode === 'pushBatch') {
        for (let k = 0; k < n; k++) metas[k] = sent + k;
        ring.pushBatch(payloads, metas, n);
      } else if (n > 0) {
        for (let k = 0; k < n; k++) {
          ring.slotPayload(ring.reserve()).set(payload);
          ring.commit(payload.length, sent + k);
        }
        ring.publish();
      }
    }
    if (n === 0) {
      // Full: spin briefly, then nap, so a slow consumer is not starved of its core.
      backoffs++;
      if (++spins > 64) Atomics.wait(nap, 0, 0, 0.02);
      continue;
    }
    spins = 0;
    sent += n;
  }
  const end = new Uint8Array(0);
  while (!(ring.reserve() >= 0 && ring.push(end, END_OF_RUN))) Atomics.wait(nap, 0, 0, 0.02);
  return { sent, backoffs };
}

async function consume(ring: PacketRing, run: RingBenchRun): Promise<ConsumerResult> {
  let received = 0;
  let bytes = 0;
  let checksum = 0;
  let done = false;
  // Reads the first and last byte so the payload is touched, as a real consumer would.
  const visit = (slot: Uint8Array, length: number, meta: number): void => {
    if (meta === END_OF_RUN) {
      done = true;
      return;
    }
    received++;
    bytes += length;
    if (length > 0) checksum = (checksum + slot[0] + slot[length - 1]) | 0;
  };
  const started = performance.now();
  while (!done) {
    if (ring.popBatch(run.batch, visit) === 0) await ring.waitForData();
  }
  return { received, bytes, ms: performance.now() - started, checksum };
}

if (parentPort !== null && workerData !== null && typeof workerData === 'object') {
  const port = parentPort;
  const setup = workerData as RingBenchSetup;
  const ring = PacketRing.attach(setup.sab);
  port.on('message', (message: RingBenchRun | 'exit') => {
    if (message === 'exit') {
      port.close();
      return;
    }
    if (setup.role === 'producer') port.postMessage(produce(ring, message));
    else void consume(ring, message).then((result) => port.postMessage(result));
  });
}
