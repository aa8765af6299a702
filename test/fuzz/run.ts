// `npm run fuzz [target...]`: each fuzz target (all by default) for FUZZ_RUNS inputs (default
// 100000; FUZZ_MAX_SECONDS caps each target's time), one after the other, then the inputs run,
// time and peak memory per target.
// Exits non-zero when a target has a finding; the input is in fuzz-findings/.

import { runTarget, targetNames } from './jazzer-run';
import type { FuzzRunResult } from './jazzer-run';

async function main(): Promise<number> {
  const runs = Number(process.env.FUZZ_RUNS ?? 100_000);
  if (!Number.isInteger(runs) || runs <= 0) throw new Error(`FUZZ_RUNS must be a positive integer, not ${process.env.FUZZ_RUNS}`);
  const all = targetNames();
  const asked = process.argv.slice(2);
  const unknown = asked.filter((t) => !all.includes(t));
  if (unknown.length > 0) throw new Error(`unknown fuzz target(s) ${unknown.join(', ')}; targets: ${all.join(', ')}`);
  const verbose = process.env.FUZZ_VERBOSE === '1';
  const maxSeconds = process.env.FUZZ_MAX_SECONDS === undefined ? undefined : Number(process.env.FUZZ_MAX_SECONDS);
  const results: FuzzRunResult[] = [];
  for (const target of asked.length > 0 ? asked : all) {
    process.stdout.write(`fuzz ${target}: ${runs} inputs ... `);
    const r = await runTarget(target, {
      runs,
      ...(maxSeconds !== undefined ? { maxSeconds } : {}),
      ...(verbose ? { onOutput: (t) => process.stderr.write(t) } : {}),
    });
    results.push(r);
    process.stdout.write(`${r.status === 0 ? 'ok' : 'FINDING'} (${r.runs} runs, ${r.seconds.toFixed(1)} s, peak rss ${r.rssMb} MB)\n`);
    if (r.status !== 0) process.stdout.write(`${r.tail}\n${r.artifacts.map((a) => `  input: ${a}`).join('\n')}\n`);
  }
  const total = results.reduce((n, r) => n + r.runs, 0);
  const bad = results.filter((r) => r.status !== 0);
  process.stdout.write(
    `${results.length} targets, ${total} inputs, ${bad.length} with findings${bad.length ? `: ${bad.map((r) => r.target).join(', ')}` : ''}\n`,
  );
  return bad.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  },
);
