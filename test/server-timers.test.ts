// The server's per-second timers: what they ask of the shards each second, and how often they
// ask every thread's V8 heap to shrink (heap-shrink-interval; 0: never).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PerSecondTimers } from '../src/main/server/server-timers';
import type { ShardPool } from '../src/main/server/shard-pool';
import { Logger } from '../src/shared/log';
import type { MainToShard } from '../src/shared/shard-protocol';

/** What the timers broadcast and log over their first two seconds (however late a loaded machine runs them). */
async function firstTwoSeconds(heapShrinkSeconds: number): Promise<{ messages: MainToShard['type'][]; lines: string[] }> {
  const messages: MainToShard['type'][] = [];
  const lines: string[] = [];
  const shards = { broadcast: (message: MainToShard) => messages.push(message.type) } as unknown as ShardPool;
  const timers = new PerSecondTimers(shards, null, new Logger(4, (line) => lines.push(line)), heapShrinkSeconds);
  try {
    const deadline = Date.now() + 20_000;
    while (messages.filter((m) => m === 'stats-request').length < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    timers.stop();
  }
  return { messages, lines };
}

test('heap-shrink-interval 1: every second the shards are asked for statistics and to shrink their heaps, and the main thread shrinks its own', async () => {
  const { messages, lines } = await firstTwoSeconds(1);
  assert.deepEqual(messages, ['stats-request', 'shrink-heap', 'stats-request', 'shrink-heap']);
  assert.equal(lines.filter((l) => /main thread JavaScript heap collection started in [\d.]+ ms/.test(l)).length, 2, lines.join('\n'));
});

test('heap-shrink-interval 0: statistics every second, no heap shrink', async () => {
  const { messages, lines } = await firstTwoSeconds(0);
  assert.deepEqual(messages, ['stats-request', 'stats-request']);
  assert.equal(lines.filter((l) => /heap collection/.test(l)).length, 0);
});
