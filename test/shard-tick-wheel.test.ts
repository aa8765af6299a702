// The shard's tick wheel: hot clients every tick, quiet ones only when their time comes, woken
// ones at once and never twice, closed ones dropped, late ticks catching up.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { TickWheel, type Tickable } from '../src/shared/tick-wheel';

const TICK = 200;

class Client implements Tickable {
  quietUntil = 0;
  closed = false;
  wheelSlot = -1;
  visits: number[] = [];
  constructor(readonly name: string) {}
}

/** Ticks at `now`; each visited client records the time and, like ShardClient.tick, sets its next quiet time. */
function tick(wheel: TickWheel<Client>, now: number, next: (c: Client) => number = () => 0): string[] {
  const seen: string[] = [];
  wheel.tick(now, (c) => {
    if (now < c.quietUntil) return; // not due yet: as ShardClient.tick, nothing changes
    seen.push(c.name);
    c.visits.push(now);
    c.quietUntil = next(c);
  });
  return seen.sort();
}

test('tick wheel: hot clients every tick; a quiet client only once its time comes', () => {
  const wheel = new TickWheel<Client>(TICK);
  const hot = new Client('hot');
  const quiet = new Client('quiet');
  wheel.wake(hot);
  wheel.wake(quiet);
  // First tick: both hot; the quiet one then has nothing to do before t=1000.
  assert.deepEqual(
    tick(wheel, 0, (c) => (c === quiet ? 1000 : 0)),
    ['hot', 'quiet'],
  );
  for (const now of [200, 400, 600, 800]) assert.deepEqual(tick(wheel, now), ['hot'], `t=${now}`);
  assert.deepEqual(
    tick(wheel, 1000, (c) => (c === quiet ? 1700 : 0)),
    ['hot', 'quiet'],
  );
  // 1700 is not a tick time: it is looked at on the first tick at or after it (1800), not before.
  assert.deepEqual(tick(wheel, 1600), ['hot']);
  assert.deepEqual(tick(wheel, 1800), ['hot', 'quiet']);
});

test('tick wheel: a woken client is looked at on the next tick, once, though still filed ahead', () => {
  const wheel = new TickWheel<Client>(TICK);
  const c = new Client('c');
  wheel.wake(c);
  tick(wheel, 0, () => 4000);
  assert.deepEqual(tick(wheel, 200), []);
  // A control packet: its timers may have come earlier.
  c.quietUntil = 0;
  wheel.wake(c);
  assert.deepEqual(
    tick(wheel, 400, () => 4400),
    ['c'],
  );
  assert.deepEqual(tick(wheel, 600), []);
  // The stale entry at 4000 and the new one at 4400 (filed at 400): visited once at 4400, not at 4000.
  assert.deepEqual(tick(wheel, 4000), []);
  assert.deepEqual(tick(wheel, 4400), ['c']);
  assert.equal(c.visits.length, 3);
});

test('tick wheel: a closed client is dropped; a late tick catches up every slot it missed', () => {
  const wheel = new TickWheel<Client>(TICK);
  const a = new Client('a');
  const b = new Client('b');
  const gone = new Client('gone');
  for (const c of [a, b, gone]) wheel.wake(c);
  tick(wheel, 0, (c) => (c === a ? 600 : c === b ? 2000 : 0));
  gone.closed = true;
  wheel.remove(gone);
  // The loop was blocked: the next tick comes at 3000, past both a's and b's times.
  assert.deepEqual(
    tick(wheel, 3000, () => 10_000),
    ['a', 'b'],
  );
  assert.deepEqual(wheel.sizes, { hot: 0, filed: 2 });
});

test('tick wheel: with 10,000 quiet clients a tick visits only the ones due', () => {
  const wheel = new TickWheel<Client>(TICK);
  const clients = Array.from({ length: 10_000 }, (_, i) => new Client(String(i)));
  for (const c of clients) wheel.wake(c);
  // Spread over the next 4 s, as keepalive deadlines are.
  tick(wheel, 0, (c) => 200 + (Number(c.name) % 20) * 200);
  let visits = 0;
  for (let now = 200; now <= 4000; now += TICK) visits += tick(wheel, now, () => now + 4000).length;
  assert.equal(visits, 10_000, 'each client once in 4 s, not 20 times');
});

test('tick wheel: woken and filed again into the slot it already had an entry in: looked at once', () => {
  const wheel = new TickWheel<Client>(TICK);
  const c = new Client('c');
  wheel.wake(c);
  tick(wheel, 0, () => 2000);
  c.quietUntil = 0;
  wheel.wake(c);
  tick(wheel, 200, () => 2000);
  assert.deepEqual(wheel.sizes, { hot: 0, filed: 2 }, 'the stale entry and the new one');
  assert.deepEqual(
    tick(wheel, 2000, () => 6000),
    ['c'],
  );
  assert.equal(c.visits.length, 3);
});
