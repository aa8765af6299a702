import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  IV_PROTO_AUTH_FAIL_TEMP,
  IV_PROTO_AUTH_PENDING_KW,
  IV_PROTO_CC_EXIT_NOTIFY,
  IV_PROTO_DATA_V2,
  IV_PROTO_DNS_OPTION,
  IV_PROTO_DYN_TLS_CRYPT,
  IV_PROTO_REQUEST_PUSH,
  IV_PROTO_TLS_KEY_EXPORT,
  buildPeerInfo,
  decodeKeyMethod2,
  encodeKeyMethod2,
  parsePeerInfo,
  peerInfoFields,
  peerInfoProto,
} from '../src/shared/protocol/key-method2';

const OPTIONS =
  'V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,cipher AES-256-GCM,auth [null-digest],keysize 256,key-method 2,tls-client';
const PEER_INFO =
  'IV_VER=2.6.14\nIV_PLAT=linux\nIV_TCPNL=1\nIV_MTU=1600\nIV_NCP=2\nIV_CIPHERS=AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305\nIV_PROTO=990\nIV_LZO_STUB=1\nIV_COMP_STUB=1\nIV_COMP_STUBv2=1\n';

function clientMessage() {
  return {
    keySource: { preMaster: randomBytes(48), random1: randomBytes(32), random2: randomBytes(32) },
    options: OPTIONS,
    username: 'alice',
    password: 's3cret',
    peerInfo: PEER_INFO,
  };
}

test('client blob layout matches wire doc 4.1 byte for byte', () => {
  const m = clientMessage();
  const b = encodeKeyMethod2(m, true);
  assert.deepEqual(b.subarray(0, 5), Buffer.from([0, 0, 0, 0, 2]));
  assert.deepEqual(b.subarray(5, 53), m.keySource.preMaster);
  assert.deepEqual(b.subarray(53, 85), m.keySource.random1);
  assert.deepEqual(b.subarray(85, 117), m.keySource.random2);
  assert.equal(b.readUInt16BE(117), OPTIONS.length + 1);
  assert.equal(b.toString('latin1', 119, 119 + OPTIONS.length), OPTIONS);
  let off = 119 + OPTIONS.length;
  assert.equal(b[off++], 0);
  assert.equal(b.readUInt16BE(off), 6);
  assert.equal(b.toString('latin1', off + 2, off + 8), 'alice\0');
  off += 8;
  assert.equal(b.readUInt16BE(off), 7);
  assert.equal(b.toString('latin1', off + 2, off + 9), 's3cret\0');
  off += 9;
  assert.equal(b.readUInt16BE(off), PEER_INFO.length + 1);
  assert.equal(b.length, off + 2 + PEER_INFO.length + 1);
  assert.equal(b[b.length - 1], 0);

  const d = decodeKeyMethod2(b, true);
  assert.ok(d.ok);
  assert.equal(d.consumed, b.length);
  assert.equal(d.userPassTooLong, false);
  assert.deepEqual(d.message, m);
});

test('server blob has no pre_master and three empty strings', () => {
  const m = {
    keySource: { random1: randomBytes(32), random2: randomBytes(32) },
    options: OPTIONS.replace('tls-client', 'tls-server'),
    username: null,
    password: null,
    peerInfo: null,
  };
  const b = encodeKeyMethod2(m, false);
  assert.deepEqual(b.subarray(5, 37), m.keySource.random1);
  assert.deepEqual(b.subarray(37, 69), m.keySource.random2);
  assert.equal(b.readUInt16BE(69), m.options.length + 1);
  assert.deepEqual(b.subarray(b.length - 6), Buffer.alloc(6));
  assert.equal(b.length, 69 + 2 + m.options.length + 1 + 6);
  const d = decodeKeyMethod2(b, false);
  assert.ok(d.ok);
  assert.deepEqual(d.message, m);
  // Read as if from a client, the randoms would be taken as pre_master: wrong but still typed.
  assert.equal(typeof decodeKeyMethod2(b, true).ok, 'boolean');
  assert.throws(() => encodeKeyMethod2(m, true), /pre_master/);
});

test('hostile blobs give typed rejections, never exceptions', () => {
  const b = encodeKeyMethod2(clientMessage(), true);
  for (let n = 0; n < b.length; n++) {
    const r = decodeKeyMethod2(b.subarray(0, n), true, { peerInfoOptional: false });
    assert.equal(r.ok, false, `length ${n}`);
    if (!r.ok) assert.equal(r.reason, 'truncated', `length ${n}`);
  }
  const badMethod = Buffer.from(b);
  badMethod[4] = 1;
  assert.deepEqual(decodeKeyMethod2(badMethod, true), { ok: false, reason: 'bad-key-method' });
  badMethod[4] = 0x12; // upper bits are flags: still method 2
  assert.equal(decodeKeyMethod2(badMethod, true).ok, true);

  // Options string length over 512 or zero.
  const long = encodeKeyMethod2({ ...clientMessage(), options: 'V4' }, true);
  long.writeUInt16BE(600, 117);
  assert.deepEqual(decodeKeyMethod2(Buffer.concat([long, Buffer.alloc(700)]), true), { ok: false, reason: 'bad-options' });
  long.writeUInt16BE(0, 117);
  assert.deepEqual(decodeKeyMethod2(long, true), { ok: false, reason: 'bad-options' });

  for (let i = 0; i < 2000; i++) {
    const junk = randomBytes(Math.floor(Math.random() * 400));
    if (junk.length > 4 && i % 2 === 0) junk[4] = 2;
    const r = decodeKeyMethod2(junk, i % 3 === 0);
    assert.equal(typeof r.ok, 'boolean');
  }
});

test('peer-info may be missing at the end, as OpenVPN tolerates', () => {
  const m = { ...clientMessage(), peerInfo: null };
  const full = encodeKeyMethod2(m, true);
  const withoutField = full.subarray(0, full.length - 2);
  const r = decodeKeyMethod2(withoutField, true);
  assert.ok(r.ok);
  assert.equal(r.message.peerInfo, null);
  assert.equal(decodeKeyMethod2(withoutField, true, { peerInfoOptional: false }).ok, false);
});

test('over-long username/password is flagged (AUTH_FAILED in OpenVPN), not a parse error', () => {
  const m = { ...clientMessage(), username: 'u'.repeat(200) };
  const r = decodeKeyMethod2(encodeKeyMethod2(m, true), true);
  assert.ok(r.ok);
  assert.equal(r.userPassTooLong, true);
  assert.equal(r.message.username, null);
  assert.equal(r.message.peerInfo, PEER_INFO); // still reached
  const big = decodeKeyMethod2(encodeKeyMethod2(m, true), true, { userPassLen: 4096 });
  assert.ok(big.ok);
  assert.equal(big.message.username, 'u'.repeat(200));
  // 127 characters + NUL is the portable maximum.
  const edge = decodeKeyMethod2(encodeKeyMethod2({ ...clientMessage(), password: 'p'.repeat(127) }, true), true);
  assert.ok(edge.ok);
  assert.equal(edge.userPassTooLong, false);
});

test('a string stops at an embedded NUL; the last byte counts as NUL', () => {
  const m = clientMessage();
  const b = encodeKeyMethod2(m, true);
  const userOff = 119 + OPTIONS.length + 1 + 2;
  b[userOff + 2] = 0; // "al\0ce"
  const r = decodeKeyMethod2(b, true);
  assert.ok(r.ok);
  assert.equal(r.message.username, 'al');
  assert.throws(() => encodeKeyMethod2({ ...m, username: 'a\0b' }, true), /NUL/);
  assert.throws(() => encodeKeyMethod2({ ...m, options: 'x'.repeat(512) }, true), /options too long/);
});

test('peer-info: build in OpenVPN order and parse back', () => {
  const proto =
    IV_PROTO_DATA_V2 |
    IV_PROTO_REQUEST_PUSH |
    IV_PROTO_TLS_KEY_EXPORT |
    IV_PROTO_AUTH_PENDING_KW |
    IV_PROTO_DNS_OPTION |
    IV_PROTO_CC_EXIT_NOTIFY |
    IV_PROTO_AUTH_FAIL_TEMP |
    IV_PROTO_DYN_TLS_CRYPT;
  assert.equal(proto, 990); // what a 2.6 client sends
  const s = buildPeerInfo({
    version: '2.6.14',
    platform: 'linux',
    tcpNonLinear: true,
    mtu: 1600,
    ncp: 2,
    ciphers: ['AES-256-GCM', 'AES-128-GCM', 'CHACHA20-POLY1305'],
    proto,
    extra: [
      ['IV_LZO_STUB', '1'],
      ['IV_COMP_STUB', '1'],
      ['IV_COMP_STUBv2', '1'],
    ],
  });
  assert.equal(s, PEER_INFO);
  const f = peerInfoFields(s);
  assert.equal(f.version, '2.6.14');
  assert.equal(f.platform, 'linux');
  assert.equal(f.tcpNonLinear, true);
  assert.equal(f.mtu, 1600);
  assert.equal(f.ncp, 2);
  assert.deepEqual(f.ciphers, ['AES-256-GCM', 'AES-128-GCM', 'CHACHA20-POLY1305']);
  assert.equal(f.proto, 990);
  assert.deepEqual(f.extra, [
    ['IV_LZO_STUB', '1'],
    ['IV_COMP_STUB', '1'],
    ['IV_COMP_STUBv2', '1'],
  ]);
  assert.equal(peerInfoProto(s), 990);
  assert.equal(peerInfoProto(null), 0);
  assert.equal(peerInfoProto('IV_PROTO=abc\n'), 0);
  assert.equal(parsePeerInfo('garbage\nIV_GUI_VER=x=y\r\n').get('IV_GUI_VER'), 'x=y');
  assert.throws(() => buildPeerInfo({ version: 'a\nIV_PROTO=2047' }), /invalid characters/);
});
