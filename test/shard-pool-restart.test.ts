// A shard worker that dies is replaced; one that keeps dying soon after its start is replaced
// after a growing delay instead of in a loop that takes the whole CPU and floods the log.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { RESTART_DELAY_FIRST_MS, RESTART_DELAY_MAX_MS, RestartBackoff, STABLE_MS } from '../src/main/server/restart-backoff';
import { ShardPool, type ShardTemplate } from '../src/main/server/shard-pool';

test('restart back-off: at once after a worker that served, doubling for quick deaths in a row, capped', () => {
  const backoff = new RestartBackoff();
  assert.equal(backoff.exited(STABLE_MS * 6), 0, 'a worker that served long is replaced at once');
  const delays = [backoff.exited(20), backoff.exited(null), backoff.exited(null), backoff.exited(5)];
  assert.deepEqual(delays, [RESTART_DELAY_FIRST_MS, RESTART_DELAY_FIRST_MS * 2, RESTART_DELAY_FIRST_MS * 4, RESTART_DELAY_FIRST_MS * 8]);
  for (let i = 0; i < 20; i++) backoff.exited(null);
  assert.equal(backoff.exited(null), RESTART_DELAY_MAX_MS);
  assert.equal(backoff.exited(STABLE_MS), 0, 'a replacement that served long enough starts the back-off over');
  assert.equal(backoff.quickFailures, 1);
  assert.equal(backoff.exited(100), RESTART_DELAY_FIRST_MS);
});

test('a shard worker that cannot start is restarted with back-off, and the pool still stops at once', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'shardvpn-pool-'));
  const script = path.join(dir, 'failing-shard.js');
  // What a worker whose code cannot load (or that dies at once) does: exit before it is ready.
  writeFileSync(script, 'process.exit(7);\n');
  const died: { reason: string; delay: number; at: number }[] = [];
  const started = performance.now();
  const pool = ShardPool.open(
    1,
    { family: 4, dualStack: false, address: '127.0.0.1', port: 0, offload: false },
    // The failing script never reads its settings.
    { transport: 'udp' } as ShardTemplate,
    {
      message: () => undefined,
      died: (_shard, reason, delay) => died.push({ reason, delay, at: performance.now() - started }),
    },
    () => -1,
    script,
  );
  try {
    await new Promise((resolve) => setTimeout(resolve, 1600));
    // In a loop without back-off this is hundreds; with it: at once, +250 ms, +500 ms, +1 s, ...
    assert.ok(died.length >= 3, `the worker was replaced after it died (${died.length} deaths)`);
    assert.ok(died.length <= 6, `restarts back off (${died.length} deaths in 1.6 s: ${JSON.stringify(died)})`);
    assert.ok(died.every((d) => d.reason === 'exit code 7'));
    assert.deepEqual(
      died.map((d) => d.delay),
      [0, 250, 500, 1000, 2000, 4000].slice(0, died.length),
    );
    assert.equal(pool.shards[0]!.restarts, died.length);
    assert.equal(pool.shards[0]!.readyAt, null);
  } finally {
    const stopAt = performance.now();
    await pool.stop(false);
    // A worker waiting for its replacement is not waited for (stop's own timeout is 4 s).
    assert.ok(performance.now() - stopAt < 3000, 'stop does not wait for a worker that has exited');
    rmSync(dir, { recursive: true, force: true });
  }
  const deaths = died.length;
  await new Promise((resolve) => setTimeout(resolve, 1200));
  assert.equal(died.length, deaths, 'no replacement starts after the pool stopped');
});

test('a restart the operator asks for is no death in a row: each is replaced at once', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'shardvpn-pool-'));
  const script = path.join(dir, 'serving-shard.js');
  writeFileSync(script, "require('node:worker_threads').parentPort.postMessage({ type: 'ready' });\nsetInterval(() => {}, 1000);\n");
  const delays: number[] = [];
  const pool = ShardPool.open(
    1,
    { family: 4, dualStack: false, address: '127.0.0.1', port: 0, offload: false },
    { transport: 'udp' } as ShardTemplate,
    { message: () => undefined, died: (_shard, _reason, delay) => delays.push(delay) },
    () => -1,
    script,
  );
  try {
    await pool.ready();
    for (let i = 1; i <= 3; i++) {
      await pool.kill(0);
      await pool.ready();
      assert.equal(delays.length, i);
    }
    assert.deepEqual(delays, [0, 0, 0]);
    assert.equal(pool.shards[0]!.restarts, 3);
    assert.equal(pool.shards[0]!.backoff.quickFailures, 0);
  } finally {
    await pool.stop(false);
    rmSync(dir, { recursive: true, force: true });
  }
});
