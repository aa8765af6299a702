// The share of first resets a shard answers while it falls behind its socket
// (src/workers/shard/reset-reply-budget.ts): all while it keeps up or is behind on data alone,
// halving per turn behind a flood of resets down to a floor, answers spread evenly, and back to
// all as turns drain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MIN_SHARE, ResetReplyBudget } from '../src/workers/shard/reset-reply-budget';

const T0 = 1_000_000;

/** How many of `n` resets the budget answers, and the longest run of unanswered ones. */
function offer(budget: ResetReplyBudget, n: number, now = T0): { answered: number; longestGap: number } {
  let answered = 0;
  let gap = 0;
  let longestGap = 0;
  for (let i = 0; i < n; i++) {
    if (budget.take(now)) {
      answered++;
      gap = 0;
    } else longestGap = Math.max(longestGap, ++gap);
  }
  return { answered, longestGap };
}

test('a shard that keeps up, or is behind on data alone, answers every reset', () => {
  const budget = new ResetReplyBudget();
  for (let turn = 0; turn < 50; turn++) budget.turnEnded(true, 512, 512, T0);
  assert.equal(offer(budget, 1000).answered, 1000);
  // Behind, but resets are a tenth of what the turn read: bulk traffic, not a flood.
  for (let turn = 0; turn < 50; turn++) budget.turnEnded(false, 512, 51, T0);
  assert.equal(budget.answering(T0), 1);
  assert.equal(offer(budget, 1000).answered, 1000);
});

test('each turn behind a flood of resets halves the share, down to the floor, answers spread evenly', () => {
  const budget = new ResetReplyBudget();
  budget.turnEnded(false, 512, 256, T0);
  assert.equal(budget.answering(T0), 1 / 2);
  let r = offer(budget, 1000);
  assert.equal(r.answered, 500);
  assert.equal(r.longestGap, 1);
  budget.turnEnded(false, 512, 128, T0); // exactly a quarter still counts
  assert.equal(budget.answering(T0), 1 / 4);
  r = offer(budget, 1000);
  assert.equal(r.answered, 250);
  assert.equal(r.longestGap, 3);
  for (let turn = 0; turn < 20; turn++) budget.turnEnded(false, 512, 400, T0);
  assert.equal(budget.answering(T0), MIN_SHARE);
  r = offer(budget, 6400);
  assert.equal(r.answered, 100);
  assert.ok(r.longestGap <= 1 / MIN_SHARE, `gap ${r.longestGap}`);
});

test('turns that drain give the share back by an eighth each', () => {
  const budget = new ResetReplyBudget();
  for (let turn = 0; turn < 20; turn++) budget.turnEnded(false, 512, 512, T0);
  assert.equal(budget.answering(T0), MIN_SHARE);
  budget.turnEnded(true, 3, 3, T0);
  assert.equal(budget.answering(T0), MIN_SHARE + 1 / 8);
  for (let turn = 0; turn < 7; turn++) budget.turnEnded(true, 3, 3, T0);
  assert.equal(budget.answering(T0), 1);
  assert.equal(offer(budget, 100).answered, 100);
});

test('a second without a turn behind gives every reset its answer again', () => {
  const budget = new ResetReplyBudget();
  for (let turn = 0; turn < 20; turn++) budget.turnEnded(false, 512, 512, T0);
  assert.equal(offer(budget, 64, T0 + 999).answered, 1);
  // The flood ended and this shard read nothing since: the next reset is answered.
  assert.equal(budget.answering(T0 + 1000), 1);
  assert.equal(offer(budget, 10, T0 + 1000).answered, 10);
});
