// What a benchmark measured, as JSON beside RESULTS.md (bench/results/<bench>.json), so the
// charts (bench/charts/) are drawn from the figures of a real run and not copied by hand: the
// run's date, the machine, the sizes it ran at, and for each metric one series per contender with
// every individual run and their median.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { median } from './lib';

/** Where the benchmarks write their records: bench/results in the checkout (from dist/bench). */
export const RESULTS_DIR = path.join(__dirname, '..', '..', 'bench', 'results');

export interface Machine {
  nproc: number;
  kernel: string;
  cpu: string;
  node: string;
}

/** One measured point of a series: the individual runs and their median. */
export interface Point {
  /** A category ("AES-256-GCM UDP, 1 stream", "idle") or a size (a client count). */
  x: string | number;
  median: number;
  runs: number[];
  /** The 99th percentile of the runs, where the spread is the point (ping RTTs). */
  p99?: number;
}

export interface Series {
  /** Who was measured, as the legend names it: it says shardvpn or openvpn. */
  name: string;
  points: Point[];
}

export interface Metric {
  id: string;
  title: string;
  unit: string;
  /** What the points' x values are. */
  xTitle: string;
  /** What a point's runs are, plural ("pings" where each is one ping's RTT); "runs" if absent. */
  samples?: string;
  series: Series[];
}

export interface BenchRecord {
  bench: string;
  /** ISO 8601, when the run ended. */
  date: string;
  machine: Machine;
  /** The sizes the run used (runs, seconds, client counts, ...), as the bench's knobs name them. */
  sizes: Record<string, string | number>;
  metrics: Metric[];
}

export function machine(): Machine {
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return {
    nproc: os.availableParallelism(),
    kernel: `${os.type()} ${os.release()}`,
    cpu: model?.[1]?.trim() ?? os.arch(),
    node: process.version,
  };
}

/** A point from its individual runs; NaN runs (nothing measured) are left out. */
export function point(x: string | number, runs: readonly number[], extra: { p99?: number } = {}): Point {
  const measured = runs.filter((v) => Number.isFinite(v));
  return { x, median: median(measured), runs: measured, ...extra };
}

/** Collects series point by point, in the order they are first named. */
export class SeriesSet {
  private readonly byName = new Map<string, Point[]>();

  add(name: string, p: Point): void {
    const list = this.byName.get(name) ?? [];
    list.push(p);
    this.byName.set(name, list);
  }

  toArray(): Series[] {
    return [...this.byName].map(([name, points]) => ({ name, points }));
  }
}

/** Writes bench/results/<bench>.json (or into `dir`) and returns its path. */
export function writeRecord(record: Omit<BenchRecord, 'date' | 'machine'>, dir: string = RESULTS_DIR): string {
  const full: BenchRecord = {
    bench: record.bench,
    date: new Date().toISOString(),
    machine: machine(),
    sizes: record.sizes,
    metrics: record.metrics,
  };
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${record.bench}.json`);
  // NaN (a contender that measured nothing) is not JSON: write null; the chart reader leaves such points out.
  writeFileSync(
    file,
    JSON.stringify(full, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2) + '\n',
  );
  console.log(`figures written to ${path.relative(process.cwd(), file) || file}`);
  return file;
}
