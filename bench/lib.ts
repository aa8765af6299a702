// Shared helpers for the benchmarks: repeated measurement, medians and a plain-text table.
// Every benchmark runs our code and its peer in the same process run and prints a ratio.

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Runs `fn` `runs` times (alternating callers should interleave peers themselves) and returns each result. */
export async function repeat(runs: number, fn: () => Promise<number> | number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) out.push(await fn());
  return out;
}

export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return String(perSecond);
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)}M`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k`;
  return perSecond.toFixed(0);
}

export function printTable(title: string, header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
  console.log(`\n${title}`);
  console.log(line(header));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const r of rows) console.log(line(r));
}

/** Number of runs per measurement; BENCH_RUNS overrides (default 5). */
export function benchRuns(): number {
  const n = Number(process.env.BENCH_RUNS ?? '5');
  return Number.isInteger(n) && n > 0 ? n : 5;
}

/** Items per second of `step` (which handles `perCall` items) run for about `ms` milliseconds. */
export function batchRate(step: () => void, perCall: number, ms: number): number {
  const start = process.hrtime.bigint();
  const budget = BigInt(ms) * 1_000_000n;
  let calls = 0;
  let elapsed;
  do {
    step();
    step();
    calls += 2;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < budget);
  return (calls * perCall) / (Number(elapsed) / 1e9);
}

/** The two AEAD measurements: seal only, and seal then open. */
export type SealMode = 'seal' | 'seal+open';
export const SEAL_MODES: readonly SealMode[] = ['seal', 'seal+open'];

/** Something that seals (and opens) `perCall` packets a call. */
export interface SealContender {
  seal(): void;
  roundTrip(): void;
}

/**
 * Packets per second of each named contender in each mode, one entry per run of about `ms`
 * milliseconds, after a short warm-up of each. With `alternate`, odd runs go in reverse order so
 * that drift on a shared machine does not favour whoever goes first.
 */
export function sealRates(
  contenders: readonly (readonly [string, SealContender])[],
  runs: number,
  perCall: number,
  ms: number,
  alternate: boolean,
): (name: string, mode: SealMode) => number[] {
  const stepOf = (c: SealContender, mode: SealMode): (() => void) => (mode === 'seal' ? () => c.seal() : () => c.roundTrip());
  const rates = new Map<string, number[]>();
  for (const [name, c] of contenders) {
    for (const mode of SEAL_MODES) {
      batchRate(stepOf(c, mode), perCall, Math.min(100, ms)); // warm-up
      rates.set(`${name} ${mode}`, []);
    }
  }
  for (let run = 0; run < runs; run++) {
    for (const mode of SEAL_MODES) {
      const order = alternate && run % 2 === 1 ? [...contenders].reverse() : contenders;
      for (const [name, c] of order) rates.get(`${name} ${mode}`)!.push(batchRate(stepOf(c, mode), perCall, ms));
    }
  }
  return (name, mode) => rates.get(`${name} ${mode}`) ?? [];
}
