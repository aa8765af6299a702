// PacketRing throughput: 1400-byte packets from a producer thread to a consumer thread through one
// SharedArrayBuffer ring, one packet per publish/release against batches of 32 (then the same
// with 64-byte packets). Each run sends 2M packets or stops after 1 s; the consumer's rate
// (packets / its elapsed time) is reported.
import path from 'node:path';
import { Worker } from 'node:worker_threads';

import { PacketRing } from '../src/shared/ring';
import { benchRuns, formatRate, median, printTable } from './lib';
import type { ConsumerResult, ProducerResult, RingBenchMode, RingBenchRun, RingBenchSetup } from './ring-worker';

const SIZE = 1400;
const SMALL_SIZE = 64;
const SLOTS = 1024;
const SLOT_SIZE = 2048;
const PACKETS = 2_000_000;
const MAX_MS = 1000;

function startWorker(setup: RingBenchSetup): Worker {
  return new Worker(path.join(__dirname, 'ring-worker.js'), { workerData: setup });
}

function reply<T>(worker: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (value: T): void => {
      worker.off('error', onError);
      resolve(value);
    };
    const onError = (err: Error): void => {
      worker.off('message', onMessage);
      reject(err);
    };
    worker.once('message', onMessage);
    worker.once('error', onError);
  });
}

interface Measured {
  rate: number;
  received: number;
}

async function measure(producer: Worker, consumer: Worker, ring: PacketRing, run: RingBenchRun): Promise<Measured> {
  const consumed = reply<ConsumerResult>(consumer);
  const produced = reply<ProducerResult>(producer);
  consumer.postMessage(run);
  producer.postMessage(run);
  const [p, c] = await Promise.all([produced, consumed]);
  if (c.received !== p.sent || c.bytes !== p.sent * run.size) {
    throw new Error(`ring bench: sent ${p.sent}, received ${c.received} (${c.bytes} bytes)`);
  }
  if (ring.drops !== 0 || ring.oversizeDrops !== 0) throw new Error(`ring bench: ${ring.drops} drops`);
  return { rate: c.received / (c.ms / 1000), received: c.received };
}

const CASES: ReadonlyArray<{ label: string; mode: RingBenchMode; batch: number }> = [
  { label: 'push + popBatch(1)', mode: 'push', batch: 1 },
  { label: 'pushBatch + popBatch(32)', mode: 'pushBatch', batch: 32 },
  { label: 'reserve/commit/publish + popBatch(32)', mode: 'commit', batch: 32 },
];

/** Medians per case, in CASES order. */
async function measureSize(producer: Worker, consumer: Worker, ring: PacketRing, size: number, runs: number): Promise<number[][]> {
  const rates = CASES.map(() => [] as number[]);
  // Warm up every path once, then interleave the cases run by run so drift hits them alike.
  for (const c of CASES) await measure(producer, consumer, ring, { mode: c.mode, batch: c.batch, packets: 200_000, maxMs: MAX_MS, size });
  for (let r = 0; r < runs; r++) {
    for (let i = 0; i < CASES.length; i++) {
      const c = CASES[i];
      const m = await measure(producer, consumer, ring, { mode: c.mode, batch: c.batch, packets: PACKETS, maxMs: MAX_MS, size });
      rates[i].push(m.rate);
    }
  }
  return rates;
}

function report(size: number, runs: number, rates: number[][]): number {
  const base = median(rates[0]);
  const rows = CASES.map((c, i) => {
    const med = median(rates[i]);
    return [
      c.label,
      String(c.batch),
      `${formatRate(med)}/s`,
      `${formatRate(Math.min(...rates[i]))}..${formatRate(Math.max(...rates[i]))}`,
      ((med * size * 8) / 1e9).toFixed(1),
      `${(med / base).toFixed(2)}x`,
    ];
  });
  printTable(
    `PacketRing, ${size}-byte packets, producer thread -> consumer thread (${SLOTS} slots, median of ${runs} runs)`,
    ['path', 'batch', 'packets', 'range', 'Gbit/s', 'batch/batch1'],
    rows,
  );
  return median(rates[1]) / base;
}

async function main(): Promise<void> {
  const ring = PacketRing.create(SLOTS, SLOT_SIZE);
  const producer = startWorker({ role: 'producer', sab: ring.buffer });
  const consumer = startWorker({ role: 'consumer', sab: ring.buffer });
  const runs = benchRuns();
  const rates = await measureSize(producer, consumer, ring, SIZE, runs);
  const ratio = report(SIZE, runs, rates);
  const batched = median(rates[1]);
  console.log(
    `batch32/batch1 ratio (${SIZE} bytes): ${ratio.toFixed(2)}; target >= 2.00M packets/s with batching: ${batched >= 2e6 ? 'met' : 'NOT met'}`,
  );
  // Small packets show the per-packet cost of publishing and releasing, which batching removes.
  const small = await measureSize(producer, consumer, ring, SMALL_SIZE, runs);
  console.log(`batch32/batch1 ratio (${SMALL_SIZE} bytes): ${report(SMALL_SIZE, runs, small).toFixed(2)}`);
  producer.postMessage('exit');
  consumer.postMessage('exit');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
