// A short pass of every coverage-guided fuzz target (test/fuzz/targets/, Jazzer.js), seeded from
// test/fuzz/corpus/: each must run its inputs with no finding (an exception other than the
// parser's documented refusal, a hang, or memory past the limit). `npm run fuzz` runs the long
// pass; see README's Development section.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runTarget, targetNames } from './fuzz/jazzer-run';

const RUNS = Number(process.env.FUZZ_SHORT_RUNS ?? 1000);
/** The crl target builds two TLS contexts per input; fewer of its inputs fit the time. */
const FEWER: Readonly<Record<string, number>> = { crl: 0.1 };

const targets = targetNames();

test('every fuzz target has seeds', () => {
  assert.ok(targets.length >= 19, `only ${targets.length} targets: ${targets.join(', ')}`);
});

// Two children at a time: each spends most of its first second loading and instrumenting.
const queue = [...targets];
const results = new Map<string, ReturnType<typeof runTarget>>();
function start(): void {
  const target = queue.shift();
  if (target === undefined) return;
  const p = runTarget(target, { runs: Math.max(50, Math.round(RUNS * (FEWER[target] ?? 1))), timeoutS: 10, rssLimitMb: 1024 });
  results.set(target, p);
  void p.finally(start);
}
start();
start();

for (const target of targets) {
  test(`fuzz ${target}: no finding`, async () => {
    while (!results.has(target)) await new Promise((resolve) => setTimeout(resolve, 20));
    const r = await results.get(target)!;
    assert.equal(r.status, 0, `${target}: finding (input saved as ${r.artifacts.join(', ') || 'nothing'}):\n${r.tail}`);
    assert.deepEqual(r.artifacts, []);
    assert.equal(r.runs, Math.max(50, Math.round(RUNS * (FEWER[target] ?? 1))), `${target}: ran ${r.runs} inputs`);
  });
}
