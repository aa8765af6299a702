import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as op from '../src/shared/protocol/opcodes';
import {
  RELIABLE_ACK_SIZE,
  ackSize,
  appendWrappedClientKey,
  buildControlBody,
  buildControlPacket,
  buildEarlyNegFlags,
  classifyPacket,
  controlPacketLength,
  EARLY_NEG_FLAG_RESEND_WKC,
  isSessionIdDefined,
  parseControlBody,
  parseControlHeader,
  parseControlPacket,
  parseDataHeader,
  parseEarlyNegotiation,
  splitWrappedClientKey,
  writeControlHeader,
  writeDataV1Header,
  PARSE_REJECTS,
  type ControlPacket,
  type ParseReject,
} from '../src/shared/protocol/packet';
import { mulberry32 as prng } from './helpers/prng';

const SID_A = Buffer.from('0102030405060708', 'hex');
const SID_B = Buffer.from('a1a2a3a4a5a6a7a8', 'hex');
const RELIABLE_OPS: op.ReliableOpcode[] = [
  op.P_CONTROL_SOFT_RESET_V1,
  op.P_CONTROL_V1,
  op.P_CONTROL_HARD_RESET_CLIENT_V2,
  op.P_CONTROL_HARD_RESET_SERVER_V2,
  op.P_CONTROL_HARD_RESET_CLIENT_V3,
  op.P_CONTROL_WKC_V1,
];
const REASONS: ReadonlySet<ParseReject> = new Set<ParseReject>(PARSE_REJECTS);

test('first byte: opcode and key_id round trip for every value', () => {
  for (let b = 0; b < 256; b++) {
    assert.equal(op.firstByte(op.opcodeOf(b), op.keyIdOf(b)), b);
  }
  assert.equal(op.firstByte(op.P_CONTROL_HARD_RESET_CLIENT_V2, 0), 0x38);
  assert.equal(op.firstByte(op.P_DATA_V2, 3), 0x4b);
  assert.equal(op.opcodeOf(0x58), op.P_CONTROL_WKC_V1);
  assert.equal(op.opcodeName(op.P_ACK_V1), 'P_ACK_V1');
  assert.equal(op.opcodeName(0), 'P_???');
  assert.equal(op.opcodeName(31), 'P_???');
});

test('classifyPacket tells control from data and rejects what 2.6 rejects', () => {
  for (let b = 0; b < 256; b++) {
    const r = classifyPacket(Buffer.of(b));
    const o = op.opcodeOf(b);
    if (o === op.P_DATA_V1) assert.deepEqual(r, { ok: true, value: { kind: 'data-v1', keyId: b & 7 } });
    else if (o === op.P_DATA_V2) assert.deepEqual(r, { ok: true, value: { kind: 'data-v2', keyId: b & 7 } });
    else if (o >= 3 && o <= 11) assert.deepEqual(r, { ok: true, value: { kind: 'control', opcode: o, keyId: b & 7 } });
    else if (o === 1 || o === 2) assert.deepEqual(r, { ok: false, reason: 'key-method-1' });
    else assert.deepEqual(r, { ok: false, reason: 'bad-opcode' });
  }
  assert.deepEqual(classifyPacket(Buffer.alloc(0)), { ok: false, reason: 'truncated' });
});

test('client hard reset: exact bytes (wire doc appendix B, 14 bytes)', () => {
  const p: ControlPacket = {
    kind: 'message',
    opcode: op.P_CONTROL_HARD_RESET_CLIENT_V2,
    keyId: 0,
    sessionId: SID_A,
    acks: [],
    remoteSessionId: null,
    messageId: 0,
    payload: Buffer.alloc(0),
  };
  const wire = buildControlPacket(p);
  assert.equal(wire.toString('hex'), '38' + '0102030405060708' + '00' + '00000000');
  const back = parseControlPacket(wire);
  assert.ok(back.ok);
  assert.deepEqual(back.value, p);
});

test('stateless server reset: exact bytes (26 bytes, 1 ack with remote sid)', () => {
  const wire = buildControlPacket({
    kind: 'message',
    opcode: op.P_CONTROL_HARD_RESET_SERVER_V2,
    keyId: 0,
    sessionId: SID_B,
    acks: [0],
    remoteSessionId: SID_A,
    messageId: 0,
    payload: Buffer.alloc(0),
  });
  assert.equal(wire.length, 26);
  assert.equal(wire.toString('hex'), '40' + 'a1a2a3a4a5a6a7a8' + '01' + '00000000' + '0102030405060708' + '00000000');
});

test('P_ACK_V1: no message id, exact bytes, round trip', () => {
  const p: ControlPacket = {
    kind: 'ack',
    opcode: op.P_ACK_V1,
    keyId: 2,
    sessionId: SID_A,
    acks: [7, 0xfffffffe],
    remoteSessionId: SID_B,
  };
  const wire = buildControlPacket(p);
  assert.equal(wire.toString('hex'), '2a' + '0102030405060708' + '02' + '00000007' + 'fffffffe' + 'a1a2a3a4a5a6a7a8');
  assert.equal(wire.length, controlPacketLength(p));
  const back = parseControlPacket(wire);
  assert.ok(back.ok);
  assert.deepEqual(back.value, p);
});

test('round trip every control opcode, key_id, ack count and payload size', () => {
  const rnd = prng(1);
  for (const opcode of RELIABLE_OPS) {
    for (let keyId = 0; keyId < 8; keyId++) {
      for (let n = 0; n <= RELIABLE_ACK_SIZE; n++) {
        const acks = Array.from({ length: n }, () => Math.floor(rnd() * 2 ** 32));
        const payload = Buffer.from(Array.from({ length: Math.floor(rnd() * 1300) }, () => Math.floor(rnd() * 256)));
        const p: ControlPacket = {
          kind: 'message',
          opcode,
          keyId,
          sessionId: SID_A,
          acks,
          remoteSessionId: n > 0 ? SID_B : null,
          messageId: Math.floor(rnd() * 2 ** 32),
          payload,
        };
        const wire = buildControlPacket(p);
        assert.equal(wire.length, 1 + 8 + ackSize(n) + 4 + payload.length);
        const back = parseControlPacket(wire);
        assert.ok(back.ok, `opcode ${opcode} n ${n}`);
        assert.deepEqual(back.value, p);
      }
    }
  }
  for (let n = 0; n <= RELIABLE_ACK_SIZE; n++) {
    const p: ControlPacket = {
      kind: 'ack',
      opcode: op.P_ACK_V1,
      keyId: n % 8,
      sessionId: SID_B,
      acks: Array.from({ length: n }, (_, i) => i * 3),
      remoteSessionId: n > 0 ? SID_A : null,
    };
    const back = parseControlPacket(buildControlPacket(p));
    assert.ok(back.ok);
    assert.deepEqual(back.value, p);
  }
});

test('header and body compose: body parsed from an offset, as a wrap module does', () => {
  // Simulate tls-auth: [op|kid][sid][20-byte hmac][pid 4][time 4][BODY]
  const body = buildControlBody({ kind: 'message', acks: [1, 2], remoteSessionId: SID_B, messageId: 9, payload: Buffer.from('hello') });
  const out = Buffer.alloc(9 + 28 + body.length, 0xee);
  writeControlHeader(out, 0, op.P_CONTROL_V1, 1, SID_A);
  body.copy(out, 9 + 28);
  const h = parseControlHeader(out);
  assert.ok(h.ok);
  assert.equal(h.value.opcode, op.P_CONTROL_V1);
  assert.equal(h.value.keyId, 1);
  assert.deepEqual(h.value.sessionId, SID_A);
  const b = parseControlBody(h.value.opcode, out.subarray(9 + 28));
  assert.ok(b.ok);
  assert.equal(b.value.kind, 'message');
  if (b.value.kind !== 'message') return;
  assert.deepEqual(b.value.acks, [1, 2]);
  assert.deepEqual(b.value.remoteSessionId, SID_B);
  assert.equal(b.value.messageId, 9);
  assert.equal(b.value.payload.toString(), 'hello');
});

test('typed rejections for malformed control packets', () => {
  const reset = buildControlPacket({
    kind: 'message',
    opcode: op.P_CONTROL_V1,
    keyId: 0,
    sessionId: SID_A,
    acks: [5],
    remoteSessionId: SID_B,
    messageId: 1,
    payload: Buffer.alloc(0),
  });
  // Every strict prefix is truncated: header 9, count 1, ack 4, remote sid 8, message id 4.
  for (let len = 0; len < reset.length; len++) {
    assert.deepEqual(parseControlPacket(reset.subarray(0, len)), { ok: false, reason: 'truncated' }, `len ${len}`);
  }
  const nine = Buffer.concat([Buffer.of(0x20), SID_A, Buffer.of(9), Buffer.alloc(9 * 4 + 8 + 4)]);
  assert.deepEqual(parseControlPacket(nine), { ok: false, reason: 'too-many-acks' });
  const data = Buffer.concat([Buffer.of(0x48, 0, 0, 1), Buffer.alloc(30)]);
  assert.deepEqual(parseControlPacket(data), { ok: false, reason: 'not-control' });
  assert.deepEqual(parseControlPacket(Buffer.concat([Buffer.of(0x08), SID_A, Buffer.alloc(5)])), {
    ok: false,
    reason: 'key-method-1',
  });
  assert.deepEqual(parseControlPacket(Buffer.concat([Buffer.of(0x60), SID_A, Buffer.alloc(5)])), {
    ok: false,
    reason: 'bad-opcode',
  });
  // An ACK's trailing bytes are ignored, like OpenVPN does.
  const ack = Buffer.concat([Buffer.of(0x28), SID_A, Buffer.of(0), Buffer.of(1, 2, 3)]);
  const r = parseControlPacket(ack);
  assert.ok(r.ok);
  assert.equal(r.value.kind, 'ack');
});

test('builder refuses caller bugs', () => {
  const base = { kind: 'message' as const, opcode: op.P_CONTROL_V1, keyId: 0, messageId: 0, payload: Buffer.alloc(0) };
  assert.throws(() => buildControlPacket({ ...base, sessionId: Buffer.alloc(7), acks: [], remoteSessionId: null }), RangeError);
  assert.throws(() => buildControlPacket({ ...base, sessionId: SID_A, acks: [1], remoteSessionId: null }), RangeError);
  assert.throws(
    () => buildControlPacket({ ...base, sessionId: SID_A, acks: [1, 2, 3, 4, 5, 6, 7, 8, 9], remoteSessionId: SID_B }),
    RangeError,
  );
});

test('data headers: P_DATA_V2 peer-id and P_DATA_V1', () => {
  const b = Buffer.alloc(4);
  for (const peerId of [0, 1, 0x123456, 0xfffffe, op.MAX_PEER_ID]) {
    for (let keyId = 0; keyId < 8; keyId++) {
      b[0] = op.firstByte(op.P_DATA_V2, keyId);
      b.writeUIntBE(peerId, 1, 3);
      assert.equal(b[0], 0x48 | keyId);
      assert.deepEqual(parseDataHeader(b), { ok: true, value: { kind: 'data-v2', keyId, peerId, headerLength: 4 } });
    }
  }
  assert.equal(writeDataV1Header(b, 0, 5), 1);
  assert.deepEqual(parseDataHeader(b.subarray(0, 1)), { ok: true, value: { kind: 'data-v1', keyId: 5, headerLength: 1 } });
  assert.deepEqual(parseDataHeader(Buffer.of(0x48, 1, 2)), { ok: false, reason: 'truncated' });
  assert.deepEqual(parseDataHeader(Buffer.of(0x20, 1, 2, 3)), { ok: false, reason: 'not-data' });
});

test('tls-crypt-v2 WKc trailer: split and append', () => {
  const wkc = Buffer.alloc(40, 0xcc);
  wkc.writeUInt16BE(40, 38);
  const wrapped = Buffer.concat([Buffer.of(0x50), SID_A, Buffer.alloc(45, 0xaa)]);
  const dgram = appendWrappedClientKey(wrapped, wkc);
  const s = splitWrappedClientKey(dgram);
  assert.ok(s.ok);
  assert.deepEqual(s.value.packet, wrapped);
  assert.deepEqual(s.value.wkc, wkc);
  assert.throws(() => appendWrappedClientKey(wrapped, Buffer.alloc(40)), RangeError);
  // Length longer than the datagram, shorter than tag + length, longer than the 1024 limit.
  const long = Buffer.from(dgram);
  long.writeUInt16BE(dgram.length, dgram.length - 2);
  assert.deepEqual(splitWrappedClientKey(long), { ok: false, reason: 'truncated' });
  const short = Buffer.from(dgram);
  short.writeUInt16BE(33, dgram.length - 2);
  assert.deepEqual(splitWrappedClientKey(short), { ok: false, reason: 'bad-wkc-length' });
  const huge = Buffer.alloc(2000);
  huge.writeUInt16BE(1025, 1998);
  assert.deepEqual(splitWrappedClientKey(huge), { ok: false, reason: 'bad-wkc-length' });
  assert.deepEqual(splitWrappedClientKey(Buffer.of(0x50, 0)), { ok: false, reason: 'truncated' });
});

test('early negotiation TLVs', () => {
  const tlv = buildEarlyNegFlags(EARLY_NEG_FLAG_RESEND_WKC);
  assert.equal(tlv.toString('hex'), '000100020001');
  assert.deepEqual(parseEarlyNegotiation(tlv), { ok: true, value: { flags: 1 } });
  // Unknown types are skipped.
  const withUnknown = Buffer.concat([Buffer.from('0007000399aabb', 'hex'), tlv]);
  assert.deepEqual(parseEarlyNegotiation(withUnknown), { ok: true, value: { flags: 1 } });
  assert.deepEqual(parseEarlyNegotiation(Buffer.alloc(0)), { ok: true, value: { flags: 0 } });
  assert.deepEqual(parseEarlyNegotiation(Buffer.from('000100030001', 'hex')), { ok: false, reason: 'bad-tlv' });
  assert.deepEqual(parseEarlyNegotiation(Buffer.from('00010001', 'hex')), { ok: false, reason: 'bad-tlv' });
  assert.deepEqual(parseEarlyNegotiation(Buffer.from('000100', 'hex')), { ok: false, reason: 'bad-tlv' });
});

test('isSessionIdDefined', () => {
  assert.equal(isSessionIdDefined(Buffer.alloc(8)), false);
  assert.equal(isSessionIdDefined(SID_A), true);
});

test('fuzz: 20,000 random buffers never throw; every accepted packet re-encodes to its own bytes', () => {
  const rnd = prng(0xc0ffee);
  let accepted = 0;
  const rejected = new Map<string, number>();
  for (let i = 0; i < 20000; i++) {
    const len = Math.floor(rnd() * 80);
    const buf = Buffer.alloc(len);
    for (let j = 0; j < len; j++) buf[j] = Math.floor(rnd() * 256);
    if (len > 0 && rnd() < 0.7) buf[0] = op.firstByte(3 + Math.floor(rnd() * 9), Math.floor(rnd() * 8));
    if (len > 9 && rnd() < 0.7) buf[9] = Math.floor(rnd() * 10); // plausible ack counts
    const r = parseControlPacket(buf);
    if (r.ok) {
      accepted++;
      const again = buildControlPacket(r.value);
      // P_ACK_V1 ignores trailing bytes; everything else must match byte for byte.
      assert.deepEqual(again, r.value.kind === 'ack' ? buf.subarray(0, again.length) : buf);
    } else {
      assert.ok(REASONS.has(r.reason), r.reason);
      rejected.set(r.reason, (rejected.get(r.reason) ?? 0) + 1);
    }
    for (const other of [
      parseControlHeader(buf),
      parseDataHeader(buf),
      classifyPacket(buf),
      splitWrappedClientKey(buf),
      parseEarlyNegotiation(buf),
      parseControlBody(op.P_CONTROL_V1, buf),
      parseControlBody(op.P_ACK_V1, buf),
    ]) {
      if (!other.ok) assert.ok(REASONS.has(other.reason), other.reason);
    }
  }
  // The generator must reach both outcomes and the main rejection kinds, or the test proves nothing.
  assert.ok(accepted > 1000, `accepted ${accepted}`);
  for (const reason of ['truncated', 'bad-opcode', 'too-many-acks', 'not-control'] as const) {
    assert.ok((rejected.get(reason) ?? 0) > 50, `${reason}: ${rejected.get(reason)}`);
  }
});
