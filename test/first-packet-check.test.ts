// FirstPacketCheck: the byte-only checks on a datagram from an unknown address. It must pass
// every first packet a real client sends (resets and cookie echoes, in each wrap), and whatever
// it refuses the StatelessResponder would have refused as malformed too: the shortcut changes
// only the cost of a drop, never the verdict.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import {
  P_ACK_V1,
  P_CONTROL_HARD_RESET_CLIENT_V2,
  P_CONTROL_HARD_RESET_CLIENT_V3,
  P_CONTROL_V1,
  P_DATA_V2,
} from '../src/shared/protocol/opcodes';
import { buildControlPacket } from '../src/shared/protocol/packet';
import { generateStaticKey, generateTlsCryptV2ServerKey } from '../src/shared/protocol/static-key';
import { tlsAuthKeys, tlsAuthUnwrap } from '../src/shared/protocol/tls-auth';
import { generateTlsCryptV2ClientKey, tlsCryptKeys, tlsCryptUnwrap } from '../src/shared/protocol/tls-crypt';
import { ControlWrap, type WrapConfig } from '../src/shared/session/control-wrap';
import { FirstPacketCheck } from '../src/shared/session/first-packet-check';
import { StatelessResponder } from '../src/shared/session/stateless-responder';

const SID = Buffer.from('0102030405060708', 'hex');
const NOW = 5_000_000;
const WRAPS: readonly WrapConfig[] = [
  { mode: 'none' },
  { mode: 'tls-auth', key: generateStaticKey(), direction: 'bidirectional' },
  { mode: 'tls-auth', key: generateStaticKey(), direction: 'bidirectional', digest: 'SHA512' },
  { mode: 'tls-crypt', key: generateStaticKey() },
];

function clientWrap(wrap: WrapConfig): ControlWrap {
  return new ControlWrap(wrap.mode === 'tls-auth' ? { ...wrap } : wrap, 'client');
}

function reset(
  opcode: typeof P_CONTROL_HARD_RESET_CLIENT_V2 | typeof P_CONTROL_HARD_RESET_CLIENT_V3 = P_CONTROL_HARD_RESET_CLIENT_V2,
): Buffer {
  return buildControlPacket({
    kind: 'message',
    opcode,
    keyId: 0,
    sessionId: SID,
    acks: [],
    remoteSessionId: null,
    messageId: 0,
    payload: Buffer.alloc(0),
  });
}

test('a real reset and cookie echo pass in every wrap; each shorter cut of the reset is refused', () => {
  for (const wrap of WRAPS) {
    const check = new FirstPacketCheck(wrap);
    const responder = new StatelessResponder({ wrap });
    const wire = clientWrap(wrap).wrap(reset(), NOW)!;
    assert.equal(check.check(wire, 0, wire.length), null, wrap.mode);
    const answer = responder.handle(wire, '10.0.0.2', 4000, NOW);
    assert.equal(answer.action, 'reply', `${wrap.mode}: the responder answers what the check let through`);
    const ack = buildControlPacket({ kind: 'ack', opcode: P_ACK_V1, keyId: 0, sessionId: SID, acks: [0], remoteSessionId: SID });
    const ackWire = clientWrap(wrap).wrap(ack, NOW)!;
    assert.equal(check.check(ackWire, 0, ackWire.length), null, `${wrap.mode} ack`);
    for (let n = 0; n < wire.length; n++) {
      if (check.check(wire, 0, n) === null) {
        // Only a cut that leaves a longer-than-minimal body may pass; the responder refuses it.
        const cut = responder.handle(wire.subarray(0, n), '10.0.0.2', 4000, NOW);
        assert.equal(cut.action, 'drop', `${wrap.mode}: ${n} bytes`);
      }
    }
    assert.equal(check.check(wire, 0, 8), 'short');
  }
});

test('refused by opcode, key_id and session id on the receive memory, at any offset', () => {
  const check = new FirstPacketCheck({ mode: 'none' });
  const memory = new Uint8Array(64);
  const at = 10;
  memory.set(reset(), at);
  assert.equal(check.check(memory, at, 14), null);
  memory[at] = (P_DATA_V2 << 3) | 0;
  assert.equal(check.check(memory, at, 14), 'opcode');
  memory[at] = (P_CONTROL_V1 << 3) | 1;
  assert.equal(check.check(memory, at, 14), 'key_id');
  memory[at] = P_CONTROL_HARD_RESET_CLIENT_V2 << 3;
  memory.fill(0, at + 1, at + 9);
  assert.equal(check.check(memory, at, 14), 'session_id');
});

/** Random datagrams (a random first byte, up to `maxLength` bytes): whatever the check refuses, the responder drops for the same reason. */
function assertAgreesWithResponder(wrap: WrapConfig, maxLength: number): void {
  const check = new FirstPacketCheck(wrap);
  const responder = new StatelessResponder({ wrap });
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength }), fc.integer({ min: 0, max: 255 }), (bytes, first) => {
      const wire = Buffer.from(bytes);
      if (wire.length > 0) wire[0] = first;
      const reject = check.check(wire, 0, wire.length);
      if (reject === null) return;
      const r = responder.handle(wire, '10.0.0.2', 4000, NOW);
      assert.equal(r.action, 'drop');
      assert.equal(r.action === 'drop' && r.kind, reject === 'bad_hmac' ? 'bad_hmac' : 'malformed');
    }),
    { numRuns: 2000 },
  );
}

test('whatever the check refuses, the responder drops for the same reason (random datagrams, every wrap)', () => {
  for (const wrap of WRAPS) assertAgreesWithResponder(wrap, 120);
});

test('a reset wrapped with another tls-crypt key is dropped as bad_hmac, a bad cookie echo as cookie', () => {
  const wrap: WrapConfig = { mode: 'tls-crypt', key: generateStaticKey() };
  const responder = new StatelessResponder({ wrap });
  const forged = clientWrap({ mode: 'tls-crypt', key: generateStaticKey() }).wrap(reset(), NOW)!;
  const r = responder.handle(forged, '10.0.0.2', 4000, NOW);
  assert.equal(r.action === 'drop' && r.kind, 'bad_hmac');
  const echo = buildControlPacket({ kind: 'ack', opcode: P_ACK_V1, keyId: 0, sessionId: SID, acks: [0], remoteSessionId: SID });
  const e = responder.handle(clientWrap(wrap).wrap(echo, NOW)!, '10.0.0.2', 4000, NOW);
  assert.equal(e.action === 'drop' && e.kind, 'cookie');
});

test('tls-crypt: the in-place tag check agrees with the unwrap on a real packet and on every one-bit change of it', () => {
  const key = generateStaticKey();
  const wrap: WrapConfig = { mode: 'tls-crypt', key };
  const check = new FirstPacketCheck(wrap);
  const server = tlsCryptKeys(key, 'server');
  const wire = clientWrap(wrap).wrap(reset(), NOW)!;
  // Inside larger memory, at an offset, as in the shard's receive batch.
  const memory = new Uint8Array(wire.length + 40);
  memory.set(wire, 20);
  assert.equal(check.check(memory, 20, wire.length), null);
  assert.equal(tlsCryptUnwrap(server, null, wire).ok, true);
  for (let byte = 0; byte < wire.length; byte++) {
    for (const bit of [0x01, 0x80]) {
      const bad = Buffer.from(wire);
      bad[byte]! ^= bit;
      memory.set(bad, 20);
      const verdict = check.check(memory, 20, bad.length);
      if (verdict === null) assert.fail(`byte ${byte} bit ${bit}: a changed packet passed`);
      if (verdict === 'bad_hmac') assert.equal(tlsCryptUnwrap(server, null, bad).ok, false);
    }
  }
});

test('tls-auth: the in-place HMAC check passes what the unwrap takes and refuses forged HMACs, another key, the wrong direction, each digest', () => {
  for (const digest of ['MD5', 'SHA1', 'SHA256', 'SHA512']) {
    const key = generateStaticKey();
    // key-direction 0 at the server, 1 at the client (the usual `tls-auth ta.key 0` / `1`).
    const server: WrapConfig = { mode: 'tls-auth', key, direction: 'normal', digest };
    const check = new FirstPacketCheck(server);
    const responder = new StatelessResponder({ wrap: server });
    const unwrapKeys = tlsAuthKeys(key, 'normal', digest);
    const wire = new ControlWrap({ mode: 'tls-auth', key, direction: 'inverse', digest }, 'client').wrap(reset(), NOW)!;
    const memory = new Uint8Array(wire.length + 40);
    memory.set(wire, 20);
    assert.equal(check.check(memory, 20, wire.length), null, digest);
    assert.equal(tlsAuthUnwrap(unwrapKeys, null, wire).ok, true, digest);
    // Every one-bit change: refused, and where as bad_hmac, the unwrap refuses it too.
    for (let byte = 0; byte < wire.length; byte++) {
      const bad = Buffer.from(wire);
      bad[byte]! ^= 0x01;
      const verdict = check.check(bad, 0, bad.length);
      if (verdict === null) assert.fail(`${digest}: byte ${byte} changed and the packet passed`);
      if (verdict === 'bad_hmac') assert.equal(tlsAuthUnwrap(unwrapKeys, null, bad).ok, false);
    }
    // The one keyed context serves every packet: the real one still passes after all the refusals.
    assert.equal(check.check(memory, 20, wire.length), null, `${digest}: after the refusals`);
    const others: [string, WrapConfig][] = [
      ['another key', { mode: 'tls-auth', key: generateStaticKey(), direction: 'inverse', digest }],
      ['the server direction', { mode: 'tls-auth', key, direction: 'normal', digest }],
    ];
    for (const [what, config] of others) {
      const forged = new ControlWrap(config, 'client').wrap(reset(), NOW)!;
      assert.equal(check.check(forged, 0, forged.length), 'bad_hmac', `${digest}: ${what}`);
      const r = responder.handle(forged, '10.0.0.2', 4000, NOW);
      assert.equal(r.action === 'drop' && r.kind, 'bad_hmac', `${digest}: ${what}, the responder agrees`);
      assert.equal(check.check(wire, 0, wire.length), null, `${digest}: the real packet after ${what}`);
    }
  }
});

test('tls-crypt-v2: the WKc is checked in place with the server key; forged or foreign WKcs and resets without one are refused as the responder refuses them', () => {
  const serverKey = generateTlsCryptV2ServerKey();
  const server: WrapConfig = { mode: 'tls-crypt-v2-server', serverKey };
  const check = new FirstPacketCheck(server);
  const responder = new StatelessResponder({ wrap: server });
  const client = generateTlsCryptV2ClientKey(serverKey);
  const wire = new ControlWrap({ mode: 'tls-crypt-v2-client', key: client.key2, wkc: client.wkc }, 'client').wrap(
    reset(P_CONTROL_HARD_RESET_CLIENT_V3),
    NOW,
  )!;
  const memory = new Uint8Array(wire.length + 40);
  memory.set(wire, 20);
  assert.equal(check.check(memory, 20, wire.length), null);
  assert.equal(responder.handle(wire, '10.0.0.2', 4000, NOW).action, 'reply');
  // Every one-bit change inside the WKc (tag, encrypted key and metadata, length): refused.
  for (let byte = wire.length - client.wkc.length; byte < wire.length; byte++) {
    const bad = Buffer.from(wire);
    bad[byte]! ^= 0x01;
    const verdict = check.check(bad, 0, bad.length);
    if (verdict === null) assert.fail(`WKc byte ${byte - (wire.length - client.wkc.length)} changed and the packet passed`);
    const r = responder.handle(bad, '10.0.0.2', 4000, NOW);
    assert.equal(r.action === 'drop' && r.kind, verdict === 'bad_hmac' ? 'bad_hmac' : 'malformed', `byte ${byte}`);
  }
  assert.equal(check.check(memory, 20, wire.length), null, 'the real packet after the refusals');
  // A WKc made with another server key, and a V2 reset (no WKc) at a tls-crypt-v2 server.
  const foreign = generateTlsCryptV2ClientKey(generateTlsCryptV2ServerKey());
  const forged = new ControlWrap({ mode: 'tls-crypt-v2-client', key: foreign.key2, wkc: foreign.wkc }, 'client').wrap(
    reset(P_CONTROL_HARD_RESET_CLIENT_V3),
    NOW,
  )!;
  assert.equal(check.check(forged, 0, forged.length), 'bad_hmac');
  const f = responder.handle(forged, '10.0.0.2', 4000, NOW);
  assert.equal(f.action === 'drop' && f.kind, 'bad_hmac');
  const v2 = clientWrap({ mode: 'tls-crypt', key: client.key2 }).wrap(reset(), NOW)!;
  assert.equal(check.check(v2, 0, v2.length), 'opcode');
  const n = responder.handle(v2, '10.0.0.2', 4000, NOW);
  assert.equal(n.action === 'drop' && n.kind, 'malformed');
  // And a V3 reset at a server without tls-crypt-v2.
  const plainCheck = new FirstPacketCheck({ mode: 'tls-crypt', key: client.key2 });
  assert.equal(plainCheck.check(wire, 0, wire.length), 'opcode');
  assertAgreesWithResponder(server, 400);
});
