// StatelessResponder: the 2.6 cookie handshake in front of ControlSession.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StatelessResponder } from '../src/shared/session/stateless-responder';
import { ControlWrap } from '../src/shared/session/control-wrap';
import {
  P_ACK_V1,
  P_CONTROL_HARD_RESET_CLIENT_V2,
  P_CONTROL_HARD_RESET_CLIENT_V3,
  P_CONTROL_HARD_RESET_SERVER_V2,
  P_CONTROL_V1,
} from '../src/shared/protocol/opcodes';
import { buildControlPacket, parseControlPacket, parseEarlyNegotiation, EARLY_NEG_FLAG_RESEND_WKC } from '../src/shared/protocol/packet';
import { generateStaticKey, generateTlsCryptV2ServerKey } from '../src/shared/protocol/static-key';
import { generateTlsCryptV2ClientKey } from '../src/shared/protocol/tls-crypt';

const CLIENT_SID = Buffer.from('0102030405060708', 'hex');
const NOW = 5_000_000;

function clientReset(
  op: typeof P_CONTROL_HARD_RESET_CLIENT_V2 | typeof P_CONTROL_HARD_RESET_CLIENT_V3 = P_CONTROL_HARD_RESET_CLIENT_V2,
): Buffer {
  return buildControlPacket({
    kind: 'message',
    opcode: op,
    keyId: 0,
    sessionId: CLIENT_SID,
    acks: [],
    remoteSessionId: null,
    messageId: 0,
    payload: Buffer.alloc(0),
  });
}

function echo(cookie: Buffer, opcode: typeof P_ACK_V1 | typeof P_CONTROL_V1, messageId = 1): Buffer {
  if (opcode === P_ACK_V1)
    return buildControlPacket({ kind: 'ack', opcode, keyId: 0, sessionId: CLIENT_SID, acks: [0], remoteSessionId: cookie });
  return buildControlPacket({
    kind: 'message',
    opcode,
    keyId: 0,
    sessionId: CLIENT_SID,
    acks: [0],
    remoteSessionId: cookie,
    messageId,
    payload: Buffer.from('hello'),
  });
}

test('answers a hard reset with a cookie reset and creates only on a valid echo', () => {
  const r = new StatelessResponder({ wrap: { mode: 'none' } });
  const a = r.handle(clientReset(), '127.0.0.1', 1234, NOW);
  assert.equal(a.action, 'reply');
  if (a.action !== 'reply') return;
  const p = parseControlPacket(a.wire);
  assert.ok(p.ok && p.value.kind === 'message');
  assert.equal(p.value.opcode, P_CONTROL_HARD_RESET_SERVER_V2);
  assert.equal(p.value.messageId, 0);
  assert.deepEqual(p.value.acks, [0]);
  assert.deepEqual(p.value.remoteSessionId, CLIENT_SID);
  const cookie = Buffer.from(p.value.sessionId);
  // Same client, same slot: the same cookie (nothing was stored to remember it).
  const again = r.handle(clientReset(), '127.0.0.1', 1234, NOW + 1000);
  assert.ok(again.action === 'reply' && parseControlPacket(again.wire).ok);

  for (const op of [P_ACK_V1, P_CONTROL_V1] as const) {
    const c = r.handle(echo(cookie, op), '127.0.0.1', 1234, NOW + 20_000);
    assert.equal(c.action, 'create');
    if (c.action === 'create') {
      assert.ok(c.stateless !== null);
      assert.deepEqual(c.stateless.ownSessionId, cookie);
      assert.deepEqual(c.stateless.peerSessionId, CLIENT_SID);
    }
  }
  // Wrong address or port, forged cookie, message id 2, expired cookie: dropped.
  assert.equal(r.handle(echo(cookie, P_CONTROL_V1), '127.0.0.2', 1234, NOW).action, 'drop');
  assert.equal(r.handle(echo(cookie, P_CONTROL_V1), '127.0.0.1', 1235, NOW).action, 'drop');
  const forged = Buffer.from(cookie);
  forged[0] ^= 1;
  assert.equal(r.handle(echo(forged, P_CONTROL_V1), '127.0.0.1', 1234, NOW).action, 'drop');
  assert.equal(r.handle(echo(cookie, P_CONTROL_V1, 2), '127.0.0.1', 1234, NOW).action, 'drop');
  assert.equal(r.handle(echo(cookie, P_CONTROL_V1), '127.0.0.1', 1234, NOW + 200_000).action, 'drop');
  // key_id != 0 from an unknown peer.
  const kid = clientReset();
  kid[0] |= 1;
  assert.equal(r.handle(kid, '127.0.0.1', 1234, NOW).action, 'drop');
});

test('tls-crypt: unauthenticated resets are dropped, the reply is wrapped', () => {
  const key = generateStaticKey();
  const r = new StatelessResponder({ wrap: { mode: 'tls-crypt', key } });
  assert.equal(r.handle(clientReset(), '127.0.0.1', 1234, NOW).action, 'drop');
  const client = new ControlWrap({ mode: 'tls-crypt', key }, 'client');
  const a = r.handle(client.wrap(clientReset(), NOW)!, '127.0.0.1', 1234, NOW);
  assert.equal(a.action, 'reply');
  if (a.action !== 'reply') return;
  const u = client.unwrap(a.wire, NOW);
  assert.ok(u.ok);
  assert.equal(u.replayId, 1);
  const p = parseControlPacket(u.packet);
  assert.ok(p.ok && p.value.opcode === P_CONTROL_HARD_RESET_SERVER_V2);
});

test('tls-crypt-v2: early-negotiation client gets RESEND_WKC, an old client the stateful path', () => {
  const sk = generateTlsCryptV2ServerKey();
  const ck = generateTlsCryptV2ClientKey(sk);
  const r = new StatelessResponder({ wrap: { mode: 'tls-crypt-v2-server', serverKey: sk } });
  const client = new ControlWrap({ mode: 'tls-crypt-v2-client', key: ck.key2, wkc: ck.wkc }, 'client');
  const a = r.handle(client.wrap(clientReset(P_CONTROL_HARD_RESET_CLIENT_V3), NOW)!, '127.0.0.1', 1234, NOW);
  assert.equal(a.action, 'reply');
  if (a.action !== 'reply') return;
  const u = client.unwrap(a.wire, NOW);
  assert.ok(u.ok);
  const p = parseControlPacket(u.packet);
  assert.ok(p.ok && p.value.kind === 'message');
  const tlv = parseEarlyNegotiation(p.value.payload);
  assert.ok(tlv.ok && (tlv.value.flags & EARLY_NEG_FLAG_RESEND_WKC) !== 0);

  // A pre-2.6 client (replay ids from 1) cannot echo a cookie: created at once, or refused with force-cookie.
  const oldWrap = new ControlWrap({ mode: 'tls-crypt-v2-client', key: ck.key2, wkc: ck.wkc }, 'client', { sendStart: 0 });
  const oldReset = oldWrap.wrap(clientReset(P_CONTROL_HARD_RESET_CLIENT_V3), NOW)!;
  const b = r.handle(oldReset, '127.0.0.1', 1234, NOW);
  assert.ok(b.action === 'create' && b.stateless === null);
  const forced = new StatelessResponder({ wrap: { mode: 'tls-crypt-v2-server', serverKey: sk }, forceCookie: true });
  assert.equal(forced.handle(oldReset, '127.0.0.1', 1234, NOW).action, 'drop');
});
