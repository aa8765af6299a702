import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SessionIdHmac, checkCookieEcho } from '../src/shared/protocol/session-cookie';

const T0 = 1_700_000_020_000; // ms; with 30-second slots, 10 s into slot 56666667 (which starts at 1_700_000_010 s)
const S = 1000;

test('cookie is stable within a slot and accepted for the current and two previous slots', () => {
  const h = new SessionIdHmac(randomBytes(32)); // hand-window 60 -> 30 s slots
  const sid = randomBytes(8);
  const c = h.calculate('192.0.2.7', 40000, sid, T0);
  assert.equal(c.length, 8);
  assert.deepEqual(h.calculate('192.0.2.7', 40000, sid, T0 + 19 * S), c); // same slot
  assert.notDeepEqual(h.calculate('192.0.2.7', 40000, sid, T0 + 20 * S), c); // next slot
  for (const dt of [0, 19, 20, 49, 50, 79]) assert.equal(h.verify(c, '192.0.2.7', 40000, sid, T0 + dt * S), true, `+${dt}s`);
  assert.equal(h.verify(c, '192.0.2.7', 40000, sid, T0 + 80 * S), false); // three slots later
  assert.equal(h.verify(c, '192.0.2.7', 40000, sid, T0 - 11 * S), false); // a cookie from the future
});

test('cookie binds address, port, client session id and key', () => {
  const key = randomBytes(32);
  const h = new SessionIdHmac(key);
  const sid = randomBytes(8);
  const c = h.calculate('2001:db8::1', 1194, sid, T0);
  assert.equal(h.verify(c, '2001:db8::1', 1194, sid, T0), true);
  assert.equal(h.verify(c, '2001:db8::2', 1194, sid, T0), false);
  assert.equal(h.verify(c, '2001:db8::1', 1195, sid, T0), false);
  const other = Buffer.from(sid);
  other[7]! ^= 1;
  assert.equal(h.verify(c, '2001:db8::1', 1194, other, T0), false);
  assert.equal(new SessionIdHmac(randomBytes(32)).verify(c, '2001:db8::1', 1194, sid, T0), false);
  // Shards sharing the key agree.
  assert.equal(new SessionIdHmac(key).verify(c, '2001:db8::1', 1194, sid, T0), true);
  assert.equal(h.verify(c.subarray(0, 7), '2001:db8::1', 1194, sid, T0), false);
  // Slot length follows --hand-window.
  const short = new SessionIdHmac(key, 10); // 5 s slots
  const cs = short.calculate('10.0.0.1', 5, sid, T0);
  assert.equal(short.verify(cs, '10.0.0.1', 5, sid, T0 + 14 * S), true);
  assert.equal(short.verify(cs, '10.0.0.1', 5, sid, T0 + 15 * S), false);
});

// The client's third packet, unwrapped: opcode|kid, client sid, acks, server sid, [msg id].
function echo(op: number, clientSid: Buffer, acks: number[], serverSid: Buffer, msgId: number | null): Buffer {
  const parts = [Buffer.from([op << 3]), clientSid, Buffer.from([acks.length])];
  for (const a of acks) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(a);
    parts.push(b);
  }
  if (acks.length > 0) parts.push(serverSid);
  if (msgId !== null) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(msgId);
    parts.push(b, Buffer.from('client hello'));
  }
  return Buffer.concat(parts);
}

test('checkCookieEcho accepts the 2.6 three-way handshake and refuses everything else', () => {
  const h = new SessionIdHmac();
  const csid = randomBytes(8);
  const cookie = h.calculate('127.0.0.1', 5000, csid, T0);
  const ok = checkCookieEcho(h, echo(4, csid, [0], cookie, 1), false, '127.0.0.1', 5000, T0 + 3 * S);
  assert.ok(ok.ok);
  assert.deepEqual(ok.serverSid, cookie);
  assert.deepEqual(ok.clientSid, csid);
  assert.ok(checkCookieEcho(h, echo(5, csid, [0], cookie, null), true, '127.0.0.1', 5000, T0).ok); // P_ACK_V1
  assert.ok(checkCookieEcho(h, echo(4, csid, [1, 0], cookie, 1), false, '127.0.0.1', 5000, T0).ok);

  const reject = (p: Buffer, isAck: boolean, reason: string, port = 5000): void => {
    assert.deepEqual(checkCookieEcho(h, p, isAck, '127.0.0.1', port, T0), { ok: false, reason });
  };
  reject(echo(4, csid, [], cookie, 1), false, 'no-ack');
  reject(echo(4, csid, [2], cookie, 1), false, 'bad-ack');
  reject(echo(4, csid, [0], cookie, 2), false, 'bad-message-id');
  reject(echo(4, csid, [0], randomBytes(8), 1), false, 'bad-cookie');
  reject(echo(4, csid, [0], cookie, 1), false, 'bad-cookie', 5001);
  reject(echo(4, csid, [0, 0, 0, 0, 0, 0, 0, 0, 0], cookie, 1), false, 'bad-ack');
  const full = echo(4, csid, [0], cookie, 1);
  for (let n = 0; n < 1 + 8 + 1 + 4 + 8 + 4; n++) {
    const r = checkCookieEcho(h, full.subarray(0, n), false, '127.0.0.1', 5000, T0);
    assert.equal(r.ok, false, `length ${n}`);
  }
});
