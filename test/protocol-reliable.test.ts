import { test } from 'node:test';
import assert from 'node:assert/strict';
import { P_ACK_V1, P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_V1 } from '../src/shared/protocol/opcodes';
import { CONTROL_SEND_ACK_MAX, RELIABLE_ACK_SIZE, buildControlPacket, parseControlPacket } from '../src/shared/protocol/packet';
import {
  DEFAULT_TLS_TIMEOUT_MS,
  ReliableRecv,
  ReliableSend,
  TLS_RELIABLE_N_REC_BUFFERS,
  TLS_RELIABLE_N_SEND_BUFFERS,
} from '../src/shared/protocol/reliable';
import { TlsStreamSplitter, controlFrameOverhead, maxControlPayload, splitTlsStream } from '../src/shared/protocol/fragment-tls';
import { mulberry32 as prng } from './helpers/prng';

const msg = (s: string): Buffer => Buffer.from(s);

test('constants match OpenVPN 2.6', () => {
  assert.equal(TLS_RELIABLE_N_SEND_BUFFERS, 6);
  assert.equal(TLS_RELIABLE_N_REC_BUFFERS, 12);
  assert.equal(RELIABLE_ACK_SIZE, 8);
  assert.equal(CONTROL_SEND_ACK_MAX, 4);
  assert.equal(DEFAULT_TLS_TIMEOUT_MS, 2000);
});

test('send: ids start at 0, window of 6 refuses the 7th, opens from the lowest unacked', () => {
  const s = new ReliableSend();
  assert.equal(s.available(), 6);
  for (let i = 0; i < 6; i++) assert.equal(s.enqueue(P_CONTROL_V1, msg(`m${i}`)), i);
  assert.equal(s.available(), 0);
  assert.equal(s.enqueue(P_CONTROL_V1, msg('m6')), null);
  // An ACK for a later id frees nothing: the window is counted from the lowest unacked id.
  s.onAcks([3, 5]);
  assert.equal(s.unacked, 4);
  assert.equal(s.available(), 0);
  assert.equal(s.enqueue(P_CONTROL_V1, msg('m6')), null);
  s.onAcks([0]);
  assert.equal(s.available(), 1);
  assert.equal(s.enqueue(P_CONTROL_V1, msg('m6')), 6);
  s.onAcks([1, 2]);
  assert.equal(s.available(), 3); // lowest unacked is now 4, next id 7: 6 − (7 − 4)
  s.onAcks([4, 6, 99]);
  assert.ok(s.isEmpty());
  assert.equal(s.available(), 6);
  assert.equal(s.nextPacketId, 7);
});

test('send: retransmission backs off 2, 4, 8, 16 s and stops once acked', () => {
  const s = new ReliableSend();
  s.enqueue(P_CONTROL_HARD_RESET_CLIENT_V2, Buffer.alloc(0));
  assert.equal(s.timeUntilDue(0), 0);
  const sentAt: number[] = [];
  for (let now = 0; now <= 40000; now += 100) {
    for (const m of s.due(now)) {
      assert.equal(m.packetId, 0);
      sentAt.push(now);
    }
  }
  assert.deepEqual(sentAt, [0, 2000, 6000, 14000, 30000]);
  assert.equal(s.timeUntilDue(30000), 32000);
  assert.equal(s.timeUntilDue(40000), 22000);
  s.onAcks([0]);
  assert.equal(s.timeUntilDue(40000), null);
  assert.deepEqual(s.due(100000), []);
});

test('send: each message has its own timer; oldest first when several are due', () => {
  const s = new ReliableSend({ initialTimeoutMs: 1000 });
  s.enqueue(P_CONTROL_V1, msg('a'));
  assert.deepEqual(
    s.due(0).map((m) => m.packetId),
    [0],
  );
  s.enqueue(P_CONTROL_V1, msg('b'));
  assert.deepEqual(
    s.due(500).map((m) => m.packetId),
    [1],
  );
  assert.equal(s.timeUntilDue(500), 500);
  assert.deepEqual(
    s.due(1000).map((m) => m.packetId),
    [0],
  ); // 0 due at 1000, 1 at 1500
  assert.deepEqual(
    s.due(3000).map((m) => m.packetId),
    [0, 1],
  ); // 0 due at 3000, 1 at 1500
  const [first] = s.due(100000);
  assert.equal(first?.payload.toString(), 'a');
});

test('send: three ACKs for later ids trigger an early retransmission', () => {
  const s = new ReliableSend();
  for (let i = 0; i < 5; i++) s.enqueue(P_CONTROL_V1, msg(`m${i}`));
  assert.equal(s.due(0).length, 5);
  assert.equal(s.timeUntilDue(10), 1990);
  s.onAcks([1]);
  s.onAcks([2]);
  assert.deepEqual(s.due(10), []);
  s.onAcks([3]);
  assert.equal(s.timeUntilDue(10), 0);
  assert.deepEqual(
    s.due(10).map((m) => m.packetId),
    [0],
  );
  // That counted as a transmission: next try after the doubled timeout.
  assert.equal(s.timeUntilDue(10), 1990); // message 4 is due at 2000
  s.onAcks([4]);
  assert.equal(s.timeUntilDue(10), 4000);
});

test('send: hold and scheduleNow (burst)', () => {
  const s = new ReliableSend({ hold: true });
  s.enqueue(P_CONTROL_V1, msg('x'));
  assert.deepEqual(s.due(0), []);
  assert.equal(s.timeUntilDue(0), null);
  s.scheduleNow(50);
  assert.equal(s.due(50).length, 1);
  s.due(2050);
  s.due(6050); // timeout now 8 s
  s.scheduleNow(7000);
  assert.equal(s.due(7000).length, 1);
  assert.equal(s.timeUntilDue(7000), 2000);
});

test('send: firstPacketId continues after a stateless reset', () => {
  const s = new ReliableSend({ firstPacketId: 1 });
  assert.equal(s.enqueue(P_CONTROL_V1, msg('hello')), 1);
  const r = new ReliableRecv({ firstPacketId: 1 });
  assert.equal(r.receive(0, P_CONTROL_V1, msg('old')), 'duplicate');
  assert.equal(r.receive(1, P_CONTROL_V1, msg('new')), 'accepted');
  assert.deepEqual(
    r.drain().map((m) => m.payload.toString()),
    ['new'],
  );
});

test('receive: in order, out of order, duplicates and the window edge', () => {
  const r = new ReliableRecv();
  assert.equal(r.receive(1, P_CONTROL_V1, msg('1')), 'accepted');
  assert.deepEqual(r.drain(), []);
  assert.equal(r.receive(1, P_CONTROL_V1, msg('1')), 'duplicate');
  assert.equal(r.receive(11, P_CONTROL_V1, msg('11')), 'accepted'); // last id inside [0, 12)
  assert.equal(r.receive(12, P_CONTROL_V1, msg('12')), 'out-of-window');
  assert.equal(r.receive(0xfffffff0, P_CONTROL_V1, msg('?')), 'duplicate'); // "before" 0 modulo 2^32
  assert.equal(r.receive(0, P_CONTROL_HARD_RESET_CLIENT_V2, msg('0')), 'accepted');
  const out = r.drain();
  assert.deepEqual(
    out.map((m) => [m.packetId, m.opcode, m.payload.toString()]),
    [
      [0, P_CONTROL_HARD_RESET_CLIENT_V2, '0'],
      [1, P_CONTROL_V1, '1'],
    ],
  );
  assert.equal(r.expectedPacketId, 2);
  assert.equal(r.receive(0, P_CONTROL_V1, msg('0')), 'duplicate');
  assert.equal(r.receive(13, P_CONTROL_V1, msg('13')), 'accepted'); // window moved to [2, 14)
  assert.equal(r.receive(14, P_CONTROL_V1, msg('14')), 'out-of-window');
  // ACKs: accepted and duplicate ids, each once, in arrival order; out-of-window ids never.
  assert.deepEqual(r.takeAcks(RELIABLE_ACK_SIZE), [1, 11, 0xfffffff0, 0, 13]);
  assert.equal(r.hasPendingAcks(), false);
});

test('receive: payload is copied, so the datagram buffer can be reused', () => {
  const r = new ReliableRecv();
  const dgram = Buffer.from('abc');
  r.receive(0, P_CONTROL_V1, dgram);
  dgram.fill(0);
  assert.equal(r.drain()[0]?.payload.toString(), 'abc');
});

test('receive: full when every slot holds an undrained message; nothing acked then', () => {
  const r = new ReliableRecv();
  for (let i = 0; i < 12; i++) assert.equal(r.receive(i, P_CONTROL_V1, msg(`${i}`)), 'accepted');
  r.takeAcks(8);
  r.takeAcks(8);
  assert.equal(r.receive(3, P_CONTROL_V1, msg('3')), 'full');
  assert.equal(r.hasPendingAcks(), false);
  assert.equal(r.drain().length, 12);
  assert.equal(r.receive(12, P_CONTROL_V1, msg('12')), 'accepted');
});

test('acks: at most 8 pending; new ones first, then recently sent ones again (ACK of ACKs)', () => {
  const r = new ReliableRecv();
  for (let i = 0; i < 10; i++) r.receive(i, P_CONTROL_V1, msg(`${i}`));
  // Only 8 are remembered; 8 and 9 will be acked when the peer resends them.
  assert.deepEqual(r.takeAcks(CONTROL_SEND_ACK_MAX), [0, 1, 2, 3]);
  assert.deepEqual(r.takeAcks(CONTROL_SEND_ACK_MAX), [4, 5, 6, 7]);
  assert.equal(r.hasPendingAcks(), false);
  // Nothing new: the most recently sent ACKs again, newest batch first.
  assert.deepEqual(r.takeAcks(CONTROL_SEND_ACK_MAX), [4, 5, 6, 7]);
  assert.deepEqual(r.takeAcks(RELIABLE_ACK_SIZE), [4, 5, 6, 7, 0, 1, 2, 3]);
  r.receive(8, P_CONTROL_V1, msg('8'));
  assert.deepEqual(r.takeAcks(3), [8, 4, 5]);
  r.receive(5, P_CONTROL_V1, msg('5')); // duplicate, acked again and moved to the front
  assert.deepEqual(r.takeAcks(RELIABLE_ACK_SIZE), [5, 8, 4, 6, 7, 0, 1, 2]);

  const plain = new ReliableRecv({ resendRecentAcks: false });
  plain.receive(0, P_CONTROL_V1, msg('0'));
  assert.deepEqual(plain.takeAcks(4), [0]);
  assert.deepEqual(plain.takeAcks(4), []);
});

test('control frame size: OpenVPN 2.6 overhead and max payload', () => {
  // 1 + 8 + ACK_SIZE(4)=25 + 4 + 28 (IPv4/UDP)
  assert.equal(controlFrameOverhead({ wrap: { mode: 'none' } }), 66);
  assert.equal(maxControlPayload({ wrap: { mode: 'none' } }), 1184);
  assert.equal(maxControlPayload({ wrap: { mode: 'tls-crypt' } }), 1128);
  assert.equal(maxControlPayload({ wrap: { mode: 'tls-auth', hmacSize: 20 } }), 1156);
  assert.equal(maxControlPayload({ wrap: { mode: 'tls-crypt' }, ipv6: true, acks: 0 }), 1250 - (1 + 8 + 1 + 4 + 56 + 48));
  assert.equal(maxControlPayload({ wrap: { mode: 'none' }, tlsMtu: 9000 }), 2048 - 66);
  assert.equal(maxControlPayload({ wrap: { mode: 'none' }, tlsMtu: 10 }), 154 - 66);
  assert.equal(maxControlPayload({ wrap: { mode: 'tls-auth', hmacSize: 64 }, tlsMtu: 154, ipv6: true }), 16);
});

test('TLS stream splitter: pieces are full, joined across writes, and keep order', () => {
  const sp = new TlsStreamSplitter();
  assert.equal(sp.take(10), null);
  sp.push(msg('abc'));
  sp.push(msg('defgh'));
  sp.push(msg('ijklmnopqrstu'));
  assert.equal(sp.pending, 21);
  assert.equal(sp.take(4)?.toString(), 'abcd');
  assert.equal(sp.take(10)?.toString(), 'efghijklmn');
  assert.equal(sp.take(100)?.toString(), 'opqrstu');
  assert.equal(sp.take(100), null);
  const src = Buffer.from('x'.repeat(10));
  sp.push(src);
  src.fill(0x79);
  assert.equal(sp.take(100)?.toString(), 'x'.repeat(10));
  assert.deepEqual(splitTlsStream(msg('abcdefghij'), 4, 1).map(String), ['a', 'bcde', 'fghi', 'j']);
  assert.deepEqual(splitTlsStream(Buffer.alloc(0), 4), []);
});

// A lossy, reordering, duplicating network between two endpoints, each with a send and a
// receive side, driven by an injected clock. Packets really go through the codec.
interface Endpoint {
  sid: Buffer;
  peerSid: Buffer;
  send: ReliableSend;
  recv: ReliableRecv;
  out: TlsStreamSplitter;
  got: Buffer[];
  deliveredIds: number[];
}

function endpoint(sid: number, peer: number): Endpoint {
  return {
    sid: Buffer.alloc(8, sid),
    peerSid: Buffer.alloc(8, peer),
    send: new ReliableSend(),
    recv: new ReliableRecv(),
    out: new TlsStreamSplitter(),
    got: [],
    deliveredIds: [],
  };
}

function simulate(
  seed: number,
  loss: number,
  dup: number,
  bytes: number,
): { a: Endpoint; b: Endpoint; stream: Buffer[]; end: number; sent: number } {
  const rnd = prng(seed);
  const a = endpoint(1, 2);
  const b = endpoint(2, 1);
  const stream: Buffer[] = [Buffer.alloc(bytes), Buffer.alloc(bytes)];
  stream.forEach((s) => s.forEach((_, i) => (s[i] = Math.floor(rnd() * 256))));
  // The application writes its stream in random-sized chunks over time.
  const written = [0, 0];
  let inFlight: { at: number; to: Endpoint; wire: Buffer }[] = [];
  let sent = 0;
  const transmit = (to: Endpoint, wire: Buffer, now: number): void => {
    sent++;
    if (rnd() < loss) return;
    const copies = rnd() < dup ? 2 : 1;
    for (let c = 0; c < copies; c++) inFlight.push({ at: now + 1 + Math.floor(rnd() * 400), to, wire });
  };
  const deliver = (to: Endpoint, wire: Buffer): void => {
    const p = parseControlPacket(wire);
    assert.ok(p.ok);
    const pkt = p.value;
    if (pkt.acks.length > 0) {
      assert.deepEqual(pkt.remoteSessionId, to.sid);
      to.send.onAcks(pkt.acks);
    }
    if (pkt.kind === 'message') {
      to.recv.receive(pkt.messageId, pkt.opcode, pkt.payload);
      for (const m of to.recv.drain()) {
        to.got.push(m.payload);
        to.deliveredIds.push(m.packetId);
      }
    }
  };
  const step = (e: Endpoint, peer: Endpoint, idx: number, now: number): void => {
    if (written[idx]! < bytes && rnd() < 0.3) {
      const n = Math.min(bytes - written[idx]!, 1 + Math.floor(rnd() * 3000));
      e.out.push(stream[idx]!.subarray(written[idx], written[idx]! + n));
      written[idx]! += n;
    }
    while (e.send.available() > 0 && e.out.pending > 0) {
      const piece = e.out.take(maxControlPayload({ wrap: { mode: 'none' } }));
      if (piece === null) break;
      assert.notEqual(e.send.enqueue(P_CONTROL_V1, piece), null);
    }
    let sentMessage = false;
    for (const m of e.send.due(now)) {
      const acks = e.recv.takeAcks(CONTROL_SEND_ACK_MAX);
      const wire = buildControlPacket({
        kind: 'message',
        opcode: m.opcode,
        keyId: 0,
        sessionId: e.sid,
        acks,
        remoteSessionId: acks.length > 0 ? e.peerSid : null,
        messageId: m.packetId,
        payload: m.payload,
      });
      assert.ok(wire.length <= 1250 - 28);
      transmit(peer, wire, now);
      sentMessage = true;
    }
    if (!sentMessage && e.recv.hasPendingAcks()) {
      const acks = e.recv.takeAcks(RELIABLE_ACK_SIZE);
      transmit(
        peer,
        buildControlPacket({ kind: 'ack', opcode: P_ACK_V1, keyId: 0, sessionId: e.sid, acks, remoteSessionId: e.peerSid }),
        now,
      );
    }
  };
  let now = 0;
  const done = (): boolean =>
    written[0] === bytes && written[1] === bytes && a.out.pending === 0 && b.out.pending === 0 && a.send.isEmpty() && b.send.isEmpty();
  while (!done()) {
    assert.ok(now < 3_600_000, `seed ${seed}: no progress after an hour of simulated time`);
    now += 50;
    const arriving = inFlight.filter((p) => p.at <= now);
    inFlight = inFlight.filter((p) => p.at > now);
    // Arrival order within a tick is shuffled too.
    arriving.sort(() => rnd() - 0.5).forEach((p) => deliver(p.to, p.wire));
    step(a, b, 0, now);
    step(b, a, 1, now);
  }
  return { a, b, stream, end: now, sent };
}

test('two endpoints over a lossy, reordering, duplicating network: every message once, in order', () => {
  for (const [seed, loss, dup] of [
    [1, 0, 0],
    [2, 0.2, 0.1],
    [3, 0.3, 0.3],
    [4, 0.5, 0.2],
    [5, 0.1, 0.5],
  ] as const) {
    const { a, b, stream, sent } = simulate(seed, loss, dup, 60_000);
    // The byte streams come through whole: every message exactly once and in order.
    assert.ok(Buffer.concat(b.got).equals(stream[0]!), `seed ${seed} a->b stream`);
    assert.ok(Buffer.concat(a.got).equals(stream[1]!), `seed ${seed} b->a stream`);
    for (const e of [a, b]) {
      assert.deepEqual(
        e.deliveredIds,
        e.deliveredIds.map((_, i) => i),
      );
    }
    if (loss > 0) assert.ok(sent > a.deliveredIds.length + b.deliveredIds.length, 'losses caused retransmissions');
  }
});

test('over TCP (retransmit false) each message goes out once, and nothing waits on a timer', () => {
  const send = new ReliableSend({ initialTimeoutMs: 2000, retransmit: false });
  send.enqueue(P_CONTROL_V1, Buffer.from('a'));
  send.enqueue(P_CONTROL_V1, Buffer.from('b'));
  assert.equal(send.timeUntilDue(0), 0);
  assert.deepEqual(
    send.due(0).map((m) => String(m.payload)),
    ['a', 'b'],
  );
  assert.equal(send.timeUntilDue(0), null);
  assert.deepEqual(send.due(1_000_000), []);
  // ACKs for later ids do not trigger a fast retransmit either.
  send.onAcks([1]);
  send.onAcks([1]);
  send.onAcks([1]);
  send.enqueue(P_CONTROL_V1, Buffer.from('c'));
  assert.deepEqual(
    send.due(5).map((m) => String(m.payload)),
    ['c'],
  );
  assert.deepEqual(send.due(6), []);
  assert.equal(send.unacked, 2);
});
