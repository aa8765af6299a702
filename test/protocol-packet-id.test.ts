import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EARLY_NEG_MASK,
  EARLY_NEG_START,
  PACKET_ID_MAX,
  PACKET_ID_WRAP_TRIGGER,
  PacketIdRec,
  PacketIdSend,
} from '../src/shared/protocol/packet-id';
import { mulberry32 as prng } from './helpers/prng';

test('replay window: accepts new ids, rejects replays and id 0', () => {
  const r = new PacketIdRec();
  assert.equal(r.check(0, 0, 0), false);
  assert.equal(r.check(1, 0, 0), true);
  assert.equal(r.check(1, 0, 0), false);
  assert.equal(r.check(2, 0, 0), true);
  assert.equal(r.check(3, 0, 0), true);
  assert.equal(r.check(2, 0, 0), false);
  assert.equal(r.highest, 3);
  // test() alone records nothing.
  assert.equal(r.test(4), true);
  assert.equal(r.test(4), true);
  assert.equal(r.check(4, 0, 0), true);
  assert.equal(r.test(4), false);
});

test('replay window: out of order within 64 accepted once, 64 behind or more rejected', () => {
  const r = new PacketIdRec();
  assert.equal(r.check(100, 0, 0), true);
  assert.equal(r.check(37, 0, 0), true); // 63 behind
  assert.equal(r.check(37, 0, 0), false);
  assert.equal(r.check(36, 0, 0), false); // 64 behind
  assert.equal(r.check(1, 0, 0), false);
  assert.equal(r.check(99, 0, 0), true);
  assert.equal(r.check(99, 0, 0), false);
  // A jump far ahead restarts the window just below the new id.
  assert.equal(r.check(10_000, 0, 0), true);
  assert.equal(r.check(100, 0, 0), false);
  assert.equal(r.check(9_937, 0, 0), true);
  assert.equal(r.check(9_936, 0, 0), false);
  // Early ids while the window is not yet full.
  const s = new PacketIdRec();
  assert.equal(s.check(5, 0, 0), true);
  assert.equal(s.check(3, 0, 0), true);
  assert.equal(s.check(1, 0, 0), true);
  assert.equal(s.check(3, 0, 0), false);
});

test('replay window: matches a simple model on 20,000 random ids (no time expiry)', () => {
  const rnd = prng(7);
  const r = new PacketIdRec(64, 15);
  const seen = new Set<number>();
  let highest = 0;
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    // Mostly near the front, sometimes behind it, sometimes far ahead.
    const roll = rnd();
    const id =
      roll < 0.6
        ? highest + 1 + Math.floor(rnd() * 4)
        : roll < 0.97
          ? Math.max(0, highest - Math.floor(rnd() * 80))
          : highest + Math.floor(rnd() * 500);
    const expect = id > 0 && !seen.has(id) && (id > highest || highest - id < 64);
    assert.equal(r.check(id, 0, 1000), expect, `step ${i} id ${id} highest ${highest}`);
    if (expect) {
      seen.add(id);
      highest = Math.max(highest, id);
      accepted++;
    }
  }
  assert.ok(accepted > 5000 && accepted < 19_000, `accepted ${accepted}`);
});

test('replay window: a late packet is accepted only within 15 s of a newer one', () => {
  const r = new PacketIdRec(64, 15);
  assert.equal(r.check(10, 0, 0), true);
  // 9 is unseen; 10 s later it is still acceptable.
  assert.equal(r.check(9, 0, 10_000), true);
  // 8 arrives 20 s after 10 and 9 were seen: both are older than 15 s, so the reap expires
  // them and everything below.
  assert.equal(r.check(8, 0, 20_000), false);
  // Newer ids still go through, and the window keeps working for ids seen recently.
  assert.equal(r.check(12, 0, 20_000), true);
  assert.equal(r.check(11, 0, 20_500), true);
  assert.equal(r.check(7, 0, 21_000), false);

  // The reap runs at most every 5 s: a check 4 s after the last reap does not expire anything.
  const q = new PacketIdRec(64, 15);
  assert.equal(q.check(2, 0, 0), true); // reap at 0
  assert.equal(q.check(5, 0, 14_000), true); // reap at 14 s: 2 was seen 14 s ago, fine
  assert.equal(q.check(4, 0, 18_000), true); // no reap (18 < 14 + 5); 4 unseen
  // Reap at 19.5 s: 2 was seen 19.5 s ago, so 2 and everything below expire; 3 is newer than
  // the stale entry and stays acceptable.
  assert.equal(q.check(1, 0, 19_500), false);
  assert.equal(q.check(3, 0, 19_500), true);
  assert.equal(q.check(6, 0, 19_500), true);

  // Time backtrack 0 disables the ageing.
  const z = new PacketIdRec(64, 0);
  z.check(10, 0, 0);
  assert.equal(z.check(9, 0, 600_000), true);
});

test('replay window long form: newer timestamp restarts, older is rejected', () => {
  const r = new PacketIdRec();
  assert.equal(r.check(1, 1000, 0), true);
  assert.equal(r.check(2, 1000, 0), true);
  assert.equal(r.check(500, 999, 0), false); // older time even with a bigger id
  assert.equal(r.check(1, 1001, 0), true); // new time, sequence starts over
  assert.equal(r.check(2, 1000, 0), false);
  assert.equal(r.check(1, 1001, 0), false);
  assert.equal(r.check(3, 1001, 0), true);
  assert.equal(r.check(2, 1001, 0), true);
});

test('replay window 0 (no backtrack): ids must follow each other', () => {
  const r = new PacketIdRec(0, 0);
  assert.equal(r.check(5, 0, 0), true); // first id may be anything but 0
  assert.equal(r.check(7, 0, 0), false);
  assert.equal(r.check(6, 0, 0), true);
  assert.equal(r.check(6, 0, 0), false);
  assert.equal(r.check(9, 10, 0), false); // new time must start at 1
  assert.equal(r.check(1, 10, 0), true);
  assert.equal(r.check(2, 10, 0), true);
});

test('replay window: bad settings are refused', () => {
  assert.throws(() => new PacketIdRec(-1, 15), RangeError);
  assert.throws(() => new PacketIdRec(65537, 15), RangeError);
  assert.throws(() => new PacketIdRec(64, 601), RangeError);
});

test('send counter: short form starts at 1 and stops at 2^32 − 1', () => {
  const s = new PacketIdSend(false);
  assert.deepEqual(s.next(5000), { id: 1, time: 0 });
  assert.deepEqual(s.next(5000), { id: 2, time: 0 });
  const end = new PacketIdSend(false, PACKET_ID_MAX - 1);
  assert.deepEqual(end.next(0), { id: PACKET_ID_MAX, time: 0 });
  assert.equal(end.next(10_000_000), null);
  assert.equal(end.closeToWrapping(), true);
  assert.equal(new PacketIdSend(false, PACKET_ID_WRAP_TRIGGER - 2).closeToWrapping(), false);
});

test('send counter: long form keeps the first timestamp and wraps only when time moved', () => {
  const s = new PacketIdSend(true);
  assert.deepEqual(s.next(1_700_000_000_500), { id: 1, time: 1_700_000_000 });
  assert.deepEqual(s.next(1_700_000_090_000), { id: 2, time: 1_700_000_000 });
  const w = new PacketIdSend(true, PACKET_ID_MAX - 1);
  assert.deepEqual(w.next(2_000_000), { id: PACKET_ID_MAX, time: 2000 });
  assert.equal(w.next(2_000_900), null); // same second
  assert.deepEqual(w.next(2_001_000), { id: 1, time: 2001 });
  // tls-crypt-v2 early-negotiation start: the first replay id announces it.
  const v2 = new PacketIdSend(true, EARLY_NEG_START);
  const first = v2.next(0);
  assert.equal(first?.id, 0x0f000001);
  assert.equal(((first?.id ?? 0) & EARLY_NEG_MASK) >>> 0, EARLY_NEG_START);
});
