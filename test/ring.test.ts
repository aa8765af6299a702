import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { PacketRing, RING_HEADER_BYTES, RING_WORD } from '../src/shared/ring';
import { checkPayload, fillPayload, type WorkerJob } from './ring-worker';

type WorkerReply = { ok: true; result: unknown } | { ok: false; error: string };

function startWorker(job: WorkerJob, timeoutMs = 20000): Promise<unknown> {
  const worker = new Worker(path.join(__dirname, 'ring-worker.js'), { workerData: job });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new Error(`ring worker '${job.mode}' timed out`));
    }, timeoutMs);
    worker.once('message', (reply: WorkerReply) => {
      clearTimeout(timer);
      if (reply.ok) resolve(reply.result);
      else reject(new Error(`ring worker '${job.mode}': ${reply.error}`));
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Pops everything readable and returns [meta, bytes] pairs (copies). */
function drain(ring: PacketRing): Array<[number, number[]]> {
  const out: Array<[number, number[]]> = [];
  ring.popBatch(ring.capacity, (slot, length, meta) => {
    out.push([meta, Array.from(slot.subarray(0, length))]);
  });
  return out;
}

function packet(i: number, length: number): Uint8Array {
  const p = new Uint8Array(length);
  for (let k = 0; k < length; k++) p[k] = (i * 31 + k * 7) & 0xff;
  return p;
}

test('create validates its arguments and attach rejects foreign buffers', () => {
  assert.throws(() => PacketRing.create(3, 2048), RangeError);
  assert.throws(() => PacketRing.create(0, 2048), RangeError);
  assert.throws(() => PacketRing.create(8, 0), RangeError);
  assert.throws(() => PacketRing.attach(new SharedArrayBuffer(16)), TypeError);
  assert.throws(() => PacketRing.attach(new SharedArrayBuffer(4096)), TypeError);
  const ring = PacketRing.create(8, 100);
  assert.equal(ring.capacity, 8);
  assert.equal(ring.slotSize, 100);
  assert.equal(ring.size, 0);
  assert.equal(ring.free, 8);
  assert.equal(ring.buffer.byteLength, RING_HEADER_BYTES + 8 * 128); // 8 + 100 rounded up to 64
});

test('a full ring drops and counts exactly, keeping what it accepted', () => {
  const ring = PacketRing.create(64, 256);
  let accepted = 0;
  for (let i = 0; i < 100; i++) if (ring.push(packet(i, i + 1), 1000 + i)) accepted++;
  assert.equal(accepted, 64);
  assert.equal(ring.drops, 36);
  assert.equal(ring.oversizeDrops, 0);
  assert.equal(ring.size, 64);
  assert.equal(ring.free, 0);
  assert.equal(ring.reserve(), -1);
  const got = drain(ring);
  assert.equal(got.length, 64);
  for (let i = 0; i < 64; i++) {
    assert.equal(got[i][0], 1000 + i);
    assert.deepEqual(got[i][1], Array.from(packet(i, i + 1)));
  }
  assert.equal(ring.size, 0);
  assert.equal(ring.push(packet(7, 3), 7), true);
  assert.equal(ring.drops, 36);

  // pushBatch accepts what fits and counts the rest.
  const batch = Array.from({ length: 70 }, (_, i) => packet(i, 10));
  const metas = Uint32Array.from({ length: 70 }, (_, i) => i);
  assert.equal(ring.pushBatch(batch, metas, 70), 63);
  assert.equal(ring.drops, 36 + 7);
  assert.equal(ring.size, 64);
});

test('a consumer stalled in another thread: every way of pushing fails at once and counts, nothing waits for room', async () => {
  const ring = PacketRing.create(16, 256);
  const gate = new SharedArrayBuffer(8);
  const result = startWorker({ mode: 'stalled-consumer', sab: ring.buffer, gate });
  // Wait (here, not in the producer) until the consumer has attached and is blocked.
  const flag = new Int32Array(gate);
  for (let waited = 0; Atomics.load(flag, 0) === 0; waited++) {
    assert.ok(waited < 5000, 'the consumer never attached');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  let accepted = 0;
  for (let i = 0; i < 40; i++) if (ring.push(packet(i, 32), i)) accepted++;
  assert.equal(accepted, 16);
  assert.equal(ring.drops, 24);
  const batch = Array.from({ length: 10 }, (_, i) => packet(100 + i, 32));
  assert.equal(
    ring.pushBatch(
      batch,
      Uint32Array.from(batch, (_, i) => 100 + i),
      10,
    ),
    0,
  );
  assert.equal(ring.drops, 34);
  // In-place writers find no slot; a producer that then gives up on its packet counts it.
  assert.equal(ring.reserve(), -1);
  ring.countDrops(1);
  assert.equal(ring.commit(32, 200), false);
  assert.equal(ring.drops, 36);
  assert.equal(ring.size, 16);
  assert.equal(ring.free, 0);
  // Released, the consumer finds exactly the first 16, in order; the producer has room again.
  Atomics.store(flag, 1, 1);
  Atomics.notify(flag, 1);
  assert.deepEqual(await result, { metas: Array.from({ length: 16 }, (_, i) => i) });
  assert.equal(ring.size, 0);
  assert.equal(ring.push(packet(300, 32), 300), true);
  assert.equal(ring.drops, 36);
});

test('oversized payloads are dropped into their own counter', () => {
  const ring = PacketRing.create(8, 100);
  assert.equal(ring.push(new Uint8Array(101), 1), false);
  assert.equal(ring.oversizeDrops, 1);
  assert.equal(ring.drops, 0);
  assert.equal(ring.size, 0);
  assert.equal(ring.push(new Uint8Array(100).fill(9), 2), true);
  const accepted = ring.pushBatch([new Uint8Array(5), new Uint8Array(500), new Uint8Array(0)], [3, 4, 5], 3);
  assert.equal(accepted, 2);
  assert.equal(ring.oversizeDrops, 2);
  assert.equal(ring.reserve() >= 0, true);
  assert.equal(ring.commit(101, 6), false);
  assert.equal(ring.oversizeDrops, 3);
  const got = drain(ring);
  assert.deepEqual(
    got.map(([meta, bytes]) => [meta, bytes.length]),
    [
      [2, 100],
      [3, 5],
      [5, 0],
    ],
  );
  assert.ok(got[0][1].every((b) => b === 9));
});

test('metadata keeps all 32 bits', () => {
  const ring = PacketRing.create(4, 16);
  ring.push(new Uint8Array(1), 0xffffffff);
  ring.push(new Uint8Array(1), 0x80000001);
  assert.deepEqual(
    drain(ring).map(([meta]) => meta),
    [0xffffffff, 0x80000001],
  );
});

test('wraparound over many laps keeps order and contents, across every API', () => {
  const slotSize = 64;
  const ring = PacketRing.create(8, slotSize);
  const scratch = Array.from({ length: 8 }, () => new Uint8Array(slotSize));
  const metas = new Uint32Array(8);
  let sent = 0;
  let received = 0;
  let error: string | null = null;
  const visit = (slot: Uint8Array, length: number, meta: number): void => {
    error ??= checkPayload(slot, length, meta, received, slotSize);
    received++;
  };
  for (let round = 0; round < 20000; round++) {
    const n = 1 + (round % 8);
    const count = Math.min(n, ring.free);
    if (round % 3 === 0) {
      const views = scratch.map((s, k) => s.subarray(0, fillPayload(s, sent + k, slotSize)));
      for (let k = 0; k < count; k++) metas[k] = sent + k;
      assert.equal(ring.pushBatch(views, metas, count), count);
    } else if (round % 3 === 1) {
      const before = ring.size;
      for (let k = 0; k < count; k++) {
        const slot = ring.reserve();
        assert.ok(slot >= 0);
        if (k + 1 < count) assert.equal(ring.reserve(1), (slot + 1) & 7);
        assert.ok(ring.commit(fillPayload(ring.slotPayload(slot), sent + k, slotSize), sent + k));
      }
      assert.equal(ring.size, before); // committed slots stay invisible until publish
      ring.publish();
      assert.equal(ring.size, before + count);
    } else {
      for (let k = 0; k < count; k++) {
        const length = fillPayload(scratch[0], sent + k, slotSize);
        assert.ok(ring.push(scratch[0].subarray(0, length), sent + k));
      }
    }
    sent += count;
    ring.popBatch(1 + ((round * 5) % 8), visit);
  }
  while (ring.popBatch(8, visit) > 0);
  assert.equal(error, null);
  assert.equal(received, sent);
  assert.ok(sent > 8 * 5000, `only ${sent} packets`);
  assert.equal(ring.drops, 0);
});

test('head and tail wrap past 2^31 and 2^32', () => {
  for (const start of [0x7ffffff0, -10]) {
    const made = PacketRing.create(16, 32);
    const header = new Int32Array(made.buffer, 0, RING_HEADER_BYTES >> 2);
    header[RING_WORD.head] = start;
    header[RING_WORD.tail] = start;
    const ring = PacketRing.attach(made.buffer);
    let next = 0;
    for (let i = 0; i < 100; i++) {
      for (let k = 0; k < 5; k++) assert.ok(ring.push(packet(i * 5 + k, 20), i * 5 + k));
      assert.equal(ring.size, 5);
      for (const [meta, bytes] of drain(ring)) {
        assert.equal(meta, next);
        assert.deepEqual(bytes, Array.from(packet(next, 20)));
        next++;
      }
    }
    assert.equal(next, 500);
    assert.equal(ring.drops, 0);
    // Fill exactly to capacity across the boundary.
    for (let k = 0; k < 20; k++) ring.push(packet(k, 1), k);
    assert.equal(ring.size, 16);
    assert.equal(ring.drops, 4);
  }
});

test('peek and release expose a batch of slot views', () => {
  const ring = PacketRing.create(8, 32);
  for (let i = 0; i < 5; i++) ring.push(packet(i, i + 2), i);
  const n = ring.peek(3);
  assert.equal(n, 3);
  for (let k = 0; k < n; k++) {
    assert.equal(ring.peekMeta(k), k);
    assert.equal(ring.peekLength(k), k + 2);
    assert.deepEqual(Array.from(ring.peekPayload(k).subarray(0, k + 2)), Array.from(packet(k, k + 2)));
  }
  assert.throws(() => ring.release(6), RangeError);
  ring.release(n);
  assert.equal(ring.size, 2);
  assert.equal(ring.peek(10), 2);
  assert.equal(ring.peekMeta(0), 3);
});

test('a visitor that throws still consumes its packet', () => {
  const ring = PacketRing.create(8, 32);
  for (let i = 0; i < 4; i++) ring.push(packet(i, 4), i);
  assert.throws(() =>
    ring.popBatch(8, (_slot, _length, meta) => {
      if (meta === 1) throw new Error('bad packet');
    }),
  );
  assert.deepEqual(
    drain(ring).map(([meta]) => meta),
    [2, 3],
  );
});

test('the producer notifies only a sleeping consumer, once per sleep', async () => {
  const ring = PacketRing.create(16, 64);
  for (let i = 0; i < 10; i++) ring.push(packet(i, 8), i);
  assert.equal(ring.notifies, 0);
  await ring.waitForData(); // data present: no sleep
  assert.equal(ring.sleeps, 0);
  drain(ring);

  const waiting = ring.waitForData();
  assert.equal(ring.sleeps, 1);
  assert.equal(Atomics.load(new Int32Array(ring.buffer, 0, 64), RING_WORD.sleeping), 1);
  ring.push(packet(1, 8), 1);
  ring.push(packet(2, 8), 2);
  assert.equal(ring.notifies, 1);
  await waiting;
  assert.equal(Atomics.load(new Int32Array(ring.buffer, 0, 64), RING_WORD.sleeping), 0);
  for (let i = 0; i < 5; i++) ring.push(packet(i, 8), i);
  assert.equal(ring.notifies, 1);
  assert.equal(drain(ring).length, 7);
});

test('waitForData times out on an idle ring and lowers its flag', async () => {
  const ring = PacketRing.create(4, 16);
  const started = Date.now();
  await ring.waitForData(20);
  assert.ok(Date.now() - started >= 15);
  assert.equal(Atomics.load(new Int32Array(ring.buffer, 0, 64), RING_WORD.sleeping), 0);
  ring.push(packet(0, 1), 0);
  assert.equal(ring.notifies, 0);
});

test('wake() ends a wait that has no data', async () => {
  const ring = PacketRing.create(4, 16);
  const waiting = ring.waitForData();
  setTimeout(() => ring.wake(), 5);
  await waiting;
  // A wake whose notify finds no waiter (it came between two naps) still ends the wait at the
  // next nap: simulate it by bumping the wake counter without a notify.
  const second = ring.waitForData();
  Atomics.add(new Int32Array(ring.buffer, 0, 64), RING_WORD.wakes, 1);
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    second.then(() => 'woke'),
    new Promise((resolve) => {
      timer = setTimeout(resolve, 2000, 'stuck');
    }),
  ]);
  clearTimeout(timer);
  assert.equal(outcome, 'woke');
  assert.equal(ring.size, 0);
  assert.equal(Atomics.load(new Int32Array(ring.buffer, 0, 64), RING_WORD.sleeping), 0);
});

test('attach in a worker sees the state of a posted buffer, and its pushes come back', async () => {
  const ring = PacketRing.create(4, 512);
  ring.push(Uint8Array.of(10, 20, 30), 77);
  ring.push(Uint8Array.of(1), 78);
  ring.push(Uint8Array.of(2), 79);
  ring.push(Uint8Array.of(3), 80);
  ring.push(Uint8Array.of(4), 81); // dropped
  ring.push(new Uint8Array(513), 82); // oversize
  const seen = (await startWorker({ mode: 'inspect', sab: ring.buffer, pushMetas: [] })) as Record<string, unknown>;
  assert.deepEqual(seen, { capacity: 4, slotSize: 512, size: 4, drops: 1, oversizeDrops: 1, firstMeta: 77, firstBytes: [10, 20, 30] });
  drain(ring);
  const again = (await startWorker({ mode: 'inspect', sab: ring.buffer, pushMetas: [5, 6, 7, 8, 9] })) as Record<string, unknown>;
  assert.equal(again.size, 0);
  assert.equal(ring.size, 4);
  assert.equal(ring.drops, 2);
  assert.deepEqual(drain(ring), [
    [5, [5, 0xee]],
    [6, [6, 0xee]],
    [7, [7, 0xee]],
    [8, [8, 0xee]],
  ]);
});

test('a consumer asleep in waitForData wakes when another thread pushes', async () => {
  const ring = PacketRing.create(8, 64);
  // Sleep only once the worker is up and watching the flag, so its push lands in the first nap.
  const worker = new Worker(path.join(__dirname, 'ring-worker.js'), {
    workerData: { mode: 'push-when-sleeping', sab: ring.buffer, meta: 4242 } satisfies WorkerJob,
  });
  const next = (): Promise<WorkerReply> =>
    new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  assert.deepEqual(await next(), { ready: true });
  const pushed = next().then((reply) => (reply.ok ? reply.result : reply.error));
  await ring.waitForData();
  assert.deepEqual(drain(ring), [[4242, [1, 2, 3]]]);
  assert.deepEqual(await pushed, { pushed: true, notifies: 1 });
  assert.ok(ring.sleeps >= 1);
  assert.equal(ring.missedWakes, 0); // the notify woke it, not a nap's timeout
});

test('ping-pong through two rings: every round trip sleeps and wakes both sides', { timeout: 30000 }, async () => {
  const rounds = 3000;
  const toWorker = PacketRing.create(8, 64);
  const fromWorker = PacketRing.create(8, 64);
  const echoed = startWorker({ mode: 'echo', input: toWorker.buffer, output: fromWorker.buffer, rounds }, 25000);
  let got = -1;
  const visit = (_slot: Uint8Array, _length: number, meta: number): void => {
    got = meta;
  };
  for (let i = 0; i < rounds; i++) {
    assert.ok(toWorker.push(Uint8Array.of(i & 0xff), i));
    while (fromWorker.popBatch(8, visit) === 0) await fromWorker.waitForData();
    assert.equal(got, i);
  }
  assert.deepEqual(await echoed, { echoed: rounds });
  // Both consumers slept; no wake was lost (or the loop above would hang) and none was spare.
  assert.ok(fromWorker.sleeps > rounds / 2, `main slept ${fromWorker.sleeps} times`);
  assert.ok(toWorker.notifies <= toWorker.sleeps);
  assert.ok(fromWorker.notifies <= fromWorker.sleeps);
  assert.ok(fromWorker.notifies > 0 && toWorker.notifies > 0);
  // Naps rescue a notify the runtime lost; they must stay rare or the notify path is broken.
  assert.ok(fromWorker.missedWakes + toWorker.missedWakes <= rounds / 50);
  console.log(
    `ping-pong: sleeps ${fromWorker.sleeps}/${toWorker.sleeps}, notifies ${fromWorker.notifies}/${toWorker.notifies}, missed ${fromWorker.missedWakes}/${toWorker.missedWakes}`,
  );
});

test('1,000,000 packets of 0..slotSize bytes between two workers arrive once, in order, byte-exact', { timeout: 60000 }, async () => {
  const total = 1_000_000;
  const ring = PacketRing.create(256, 2048);
  const started = Date.now();
  const [produced, consumed] = await Promise.all([
    startWorker({ mode: 'produce', sab: ring.buffer, total, batch: 32, pauseEvery: 20000 }, 50000),
    startWorker({ mode: 'consume', sab: ring.buffer, total, batch: 32 }, 50000),
  ]);
  const elapsed = Date.now() - started;
  assert.equal((produced as { sent: number }).sent, total);
  assert.deepEqual(consumed, { received: total, error: null });
  assert.equal(ring.size, 0);
  assert.equal(ring.drops, 0);
  assert.equal(ring.oversizeDrops, 0);
  // The pauses made the consumer sleep; wakes came at most once per sleep, never per packet.
  assert.ok(ring.sleeps >= 10, `consumer slept ${ring.sleeps} times`);
  assert.ok(ring.notifies >= 1 && ring.notifies <= ring.sleeps, `notifies ${ring.notifies}, sleeps ${ring.sleeps}`);
  // A nap that times out just as a publish lands counts too (more often on a loaded machine).
  assert.ok(ring.missedWakes <= ring.notifies / 10 + 5, `missed ${ring.missedWakes} wakes`);
  assert.ok(elapsed < 30000, `took ${elapsed} ms`);
  console.log(`1M: ${elapsed} ms, sleeps ${ring.sleeps}, notifies ${ring.notifies}, missed ${ring.missedWakes}`);
});
