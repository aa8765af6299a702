// Property-based robustness (fast-check, fixed seeds): arbitrary bytes, and valid packets from
// our own builders with bit flips, truncations and extensions, go into every parser of the
// protocol core and into an established session pair. Parsers must return typed rejections
// (the key file parsers may throw, but only a plain Error naming the source); sessions and
// data-channel keys must not throw, must finish quickly, and must keep working afterwards.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';

import { PacketBatch } from '../src/shared/native';
import {
  buildControlPacket,
  buildEarlyNegFlags,
  classifyPacket,
  parseControlBody,
  parseControlHeader,
  parseControlPacket,
  parseDataHeader,
  parseEarlyNegotiation,
  PARSE_REJECTS,
  splitWrappedClientKey,
} from '../src/shared/protocol/packet';
import type { ControlPacket, ParseReject } from '../src/shared/protocol/packet';
import { CONTROL_OPCODES, P_ACK_V1, P_CONTROL_HARD_RESET_CLIENT_V3 } from '../src/shared/protocol/opcodes';
import { tlsAuthKeys, tlsAuthUnwrap, tlsAuthWrap } from '../src/shared/protocol/tls-auth';
import {
  tlsCryptKeys,
  tlsCryptUnwrap,
  tlsCryptV2ExtractClientKey,
  tlsCryptV2StripWkc,
  tlsCryptV2UnwrapClientKey,
  tlsCryptWrap,
  generateTlsCryptV2ClientKey,
} from '../src/shared/protocol/tls-crypt';
import {
  formatStaticKey,
  formatTlsCryptV2ClientKey,
  formatTlsCryptV2ServerKey,
  generateStaticKey,
  generateTlsCryptV2ServerKey,
  parseStaticKey,
  parseTlsCryptV2ClientKey,
  parseTlsCryptV2ServerKey,
} from '../src/shared/protocol/static-key';
import { decodeKeyMethod2, encodeKeyMethod2, parsePeerInfo, peerInfoFields } from '../src/shared/protocol/key-method2';
import { ControlMessageReader, parseControlMessage } from '../src/shared/protocol/control-message';
import { PushReplyCollector, parsePushReply } from '../src/shared/protocol/push-options';
import { buildOccMessage, parseOccMessage, payloadKind } from '../src/shared/protocol/occ';
import { selectServerCipher } from '../src/shared/protocol/ncp';
import { PacketIdSend } from '../src/shared/protocol/packet-id';
import { DATA_DROP_REASONS, DATA_V2_HEADROOM, DecryptResults } from '../src/shared/protocol/data-channel';
import type { DataChannelKey } from '../src/shared/protocol/data-channel';
import { tokenizeLine } from '../src/shared/config/lexer';
import { makeTestPki } from '../lab/test-pki';
import { SessionPair, mulberry32 } from './helpers/session-pair';

const pki = makeTestPki();
after(() => pki.cleanup());

const RUNS = 500;
const SEED = 0x5eed;
const opts = (numRuns = RUNS): fc.Parameters<unknown> => ({ numRuns, seed: SEED });

// ---------------------------------------------------------------------------------------------
// Arbitraries

const bytes = (maxLength = 1600): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));

interface Mutation {
  flips: [number, number][];
  cut: number | null;
  extend: Uint8Array;
}

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { maxLength: 6 }),
  cut: fc.option(fc.nat(), { nil: null }),
  extend: fc.uint8Array({ maxLength: 40 }),
});

function mutate(b: Buffer, m: Mutation): Buffer {
  let out = Buffer.from(b);
  for (const [pos, bit] of m.flips) if (out.length > 0) out[pos % out.length]! ^= 1 << bit;
  if (m.cut !== null) out = out.subarray(0, m.cut % (out.length + 1));
  return Buffer.concat([out, m.extend]);
}

/** A mutation that always changes the bytes: at least one flip, a strict cut or an extension. */
const changingMutationArb: fc.Arbitrary<Mutation> = mutationArb.filter((m) => m.flips.length > 0 || m.cut !== null || m.extend.length > 0);

const RELIABLE_OPCODES = CONTROL_OPCODES.filter((o) => o !== P_ACK_V1);

const sid = fc.uint8Array({ minLength: 8, maxLength: 8 }).map((a) => Buffer.from(a));
const controlPacketArb: fc.Arbitrary<ControlPacket> = fc
  .record({
    ack: fc.boolean(),
    opcode: fc.constantFrom(...RELIABLE_OPCODES),
    keyId: fc.integer({ min: 0, max: 7 }),
    sessionId: sid,
    acks: fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 4 }),
    remote: sid,
    messageId: fc.nat({ max: 0xffffffff }),
    payload: bytes(300),
  })
  .map((r): ControlPacket => {
    const ackFields = { acks: r.acks, remoteSessionId: r.acks.length > 0 ? r.remote : null };
    if (r.ack) return { kind: 'ack', opcode: P_ACK_V1, keyId: r.keyId, sessionId: r.sessionId, ...ackFields };
    return {
      kind: 'message',
      opcode: r.opcode,
      keyId: r.keyId,
      sessionId: r.sessionId,
      messageId: r.messageId,
      payload: r.payload,
      ...ackFields,
    };
  })
  .filter((p) => p.kind === 'message' || p.acks.length > 0);

// ---------------------------------------------------------------------------------------------
// Result checks

const PACKET_REJECTS: readonly ParseReject[] = PARSE_REJECTS;

function typed(r: { ok: boolean; reason?: unknown }, reasons: readonly string[], what: string): void {
  assert.equal(typeof r.ok, 'boolean', `${what}: result without ok`);
  if (!r.ok) assert.ok(reasons.includes(r.reason as string), `${what}: untyped rejection ${String(r.reason)}`);
}

function packetParsers(b: Buffer): void {
  typed(classifyPacket(b), PACKET_REJECTS, 'classifyPacket');
  typed(parseControlHeader(b), PACKET_REJECTS, 'parseControlHeader');
  typed(parseControlPacket(b), PACKET_REJECTS, 'parseControlPacket');
  typed(parseDataHeader(b), PACKET_REJECTS, 'parseDataHeader');
  typed(splitWrappedClientKey(b), PACKET_REJECTS, 'splitWrappedClientKey');
  typed(parseEarlyNegotiation(b), PACKET_REJECTS, 'parseEarlyNegotiation');
  for (const op of CONTROL_OPCODES) typed(parseControlBody(op, b), PACKET_REJECTS, `parseControlBody(${op})`);
}

const WRAP_REJECTS = ['truncated', 'bad-hmac', 'replay'];
const V2_REJECTS = ['no-wkc', 'bad-length', 'too-big', 'bad-tag', 'too-short'];
const KM2_REJECTS = ['truncated', 'bad-key-method', 'bad-options'];
const OCC_REJECTS = ['not-occ', 'truncated', 'unknown-opcode', 'bad-options-string'];
const PUSH_REJECTS = ['not-push-reply', 'option-too-long', 'bad-option', 'rejected-by-filter', 'too-many-options', 'bad-continuation'];

// Keys for the wrap parsers.
const taKey = generateStaticKey();
const taServer = tlsAuthKeys(taKey, 'normal', 'SHA256');
const taClient = tlsAuthKeys(taKey, 'inverse', 'SHA256');
const tcKey = generateStaticKey();
const tcServer = tlsCryptKeys(tcKey, 'server');
const tcClient = tlsCryptKeys(tcKey, 'client');
const v2ServerKey = generateTlsCryptV2ServerKey();
const v2Client = generateTlsCryptV2ClientKey(v2ServerKey);

function wrapParsers(b: Buffer): void {
  typed(tlsAuthUnwrap(taServer, null, b, 0), WRAP_REJECTS, 'tlsAuthUnwrap');
  typed(tlsCryptUnwrap(tcServer, null, b, 0), WRAP_REJECTS, 'tlsCryptUnwrap');
  typed(tlsCryptV2ExtractClientKey(v2ServerKey, b), V2_REJECTS, 'tlsCryptV2ExtractClientKey');
  typed(tlsCryptV2UnwrapClientKey(v2ServerKey, b), V2_REJECTS, 'tlsCryptV2UnwrapClientKey');
  const s = tlsCryptV2StripWkc(b);
  // Like OpenVPN, a length field of 0 strips nothing; tls-crypt unwrap then refuses the rest.
  assert.ok(s === null || (Buffer.isBuffer(s) && s.length <= b.length));
}

function payloadParsers(b: Buffer): void {
  for (const fromClient of [true, false]) {
    for (const peerInfoOptional of [true, false])
      typed(decodeKeyMethod2(b, fromClient, { peerInfoOptional }), KM2_REJECTS, 'decodeKeyMethod2');
  }
  for (const off of [0, Math.min(3, b.length)]) {
    typed(parseOccMessage(b, off, b.length - off), OCC_REJECTS, 'parseOccMessage');
    assert.ok(['ping', 'occ', 'packet'].includes(payloadKind(b, off, b.length - off)));
  }
  const r = new ControlMessageReader();
  for (const m of [...r.push(b.subarray(0, b.length >> 1)), ...r.push(b.subarray(b.length >> 1))]) {
    assert.equal(typeof m, 'string');
    assert.equal(typeof parseControlMessage(m).kind, 'string');
  }
}

function textParsers(s: string): void {
  assert.equal(typeof parseControlMessage(s).kind, 'string');
  typed(parsePushReply(s), PUSH_REJECTS, 'parsePushReply');
  typed(parsePushReply(s.split('\n'), [{ action: 'ignore', text: 'route' }]), PUSH_REJECTS, 'parsePushReply+filter');
  const c = new PushReplyCollector();
  for (const part of s.split('\0')) typed(c.add(part), PUSH_REJECTS, 'PushReplyCollector');
  const t = tokenizeLine(s);
  assert.equal(typeof t.ok, 'boolean');
  if (t.ok) assert.ok(t.tokens.every((x) => typeof x === 'string'));
  else assert.ok(typeof t.reason === 'string' && t.reason.length > 0);
  parsePeerInfo(s);
  peerInfoFields(s);
  typed(
    selectServerCipher({ dataCiphers: ['AES-256-GCM', 'CHACHA20-POLY1305'], peerInfo: s }),
    ['no-shared-cipher', 'no-cipher-info'],
    'selectServerCipher',
  );
}

/** Key file parsers may refuse with an Error that names the file; nothing else may escape. */
function keyFileParsers(text: string): void {
  const calls: [string, () => unknown][] = [
    ['static', () => parseStaticKey(text, 'fuzz.key')],
    ['v2-server', () => parseTlsCryptV2ServerKey(text, 'fuzz.key')],
    ['v2-client', () => parseTlsCryptV2ClientKey(text, 'fuzz.key')],
  ];
  for (const [what, call] of calls) {
    try {
      call();
    } catch (e) {
      assert.ok(e instanceof Error, `${what}: threw a non-Error`);
      assert.ok(!(e instanceof TypeError) && !(e instanceof RangeError), `${what}: ${e.name}: ${e.message}`);
      assert.ok(e.message.startsWith('fuzz.key: '), `${what}: error does not name the file: ${e.message}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Parsers

test('packet, wrap and payload parsers: arbitrary bytes give typed results', () => {
  fc.assert(
    fc.property(bytes(), (b) => {
      packetParsers(b);
      wrapParsers(b);
      payloadParsers(b);
    }),
    opts(1000),
  );
});

test('packet parsers: mutated valid control packets give typed results; unmutated ones round-trip', () => {
  fc.assert(
    fc.property(controlPacketArb, mutationArb, (p, m) => {
      const wire = buildControlPacket(p);
      const r = parseControlPacket(wire);
      assert.ok(r.ok);
      assert.deepEqual(buildControlPacket(r.value), wire);
      const x = mutate(wire, m);
      packetParsers(x);
      wrapParsers(x);
    }),
    opts(),
  );
});

test('tls-auth / tls-crypt / tls-crypt-v2: any change to an authentic packet is rejected, typed', () => {
  const send = new PacketIdSend(true);
  fc.assert(
    fc.property(controlPacketArb, changingMutationArb, fc.boolean(), (p, m, useCrypt) => {
      const plain = buildControlPacket(p);
      const wire = useCrypt ? tlsCryptWrap(tcClient, send, plain, 1000)! : tlsAuthWrap(taClient, send, plain, 1000)!;
      const unwrap = (w: Buffer) => (useCrypt ? tlsCryptUnwrap(tcServer, null, w) : tlsAuthUnwrap(taServer, null, w));
      const good = unwrap(wire);
      assert.ok(good.ok && good.packet.equals(plain));
      const bad = mutate(wire, m);
      const r = unwrap(bad);
      typed(r, WRAP_REJECTS, 'unwrap');
      if (!bad.equals(wire)) assert.equal(r.ok, false, 'a changed packet was accepted');
      packetParsers(bad);
    }),
    opts(),
  );
  // tls-crypt-v2: a HARD_RESET_CLIENT_V3 with its WKc; mutations never yield a wrong client key.
  fc.assert(
    fc.property(changingMutationArb, fc.integer({ min: 0, max: 7 }), (m, keyId) => {
      const plain = buildControlPacket({
        kind: 'message',
        opcode: P_CONTROL_HARD_RESET_CLIENT_V3,
        keyId,
        sessionId: Buffer.alloc(8, 1),
        acks: [],
        remoteSessionId: null,
        messageId: 0,
        payload: buildEarlyNegFlags(1),
      });
      const wire = tlsCryptWrap(tlsCryptKeys(v2Client.key2, 'client'), send, plain, 1000, v2Client.wkc)!;
      const ok = tlsCryptV2ExtractClientKey(v2ServerKey, wire);
      assert.ok(ok.ok && ok.key2.equals(v2Client.key2));
      const bad = mutate(wire, m);
      const r = tlsCryptV2ExtractClientKey(v2ServerKey, bad);
      typed(r, V2_REJECTS, 'tlsCryptV2ExtractClientKey');
      // Only a change outside the WKc may still extract, and then the key is the right one.
      if (r.ok) assert.ok(r.key2.equals(v2Client.key2));
      if (r.ok && !bad.equals(wire)) typed(tlsCryptUnwrap(tlsCryptKeys(r.key2, 'server'), null, r.wrapped), WRAP_REJECTS, 'v2 unwrap');
      wrapParsers(bad);
    }),
    opts(),
  );
});

test('key method 2 and OCC: mutated valid messages give typed results', () => {
  const km2 = fc.record({
    fromClient: fc.boolean(),
    options: fc.string({ maxLength: 200 }),
    user: fc.option(fc.string({ maxLength: 140 }), { nil: null }),
    pass: fc.option(fc.string({ maxLength: 140 }), { nil: null }),
    peerInfo: fc.option(fc.string({ maxLength: 300 }), { nil: null }),
  });
  fc.assert(
    fc.property(km2, mutationArb, (k, m) => {
      const keySource = { preMaster: Buffer.alloc(48, 1), random1: Buffer.alloc(32, 2), random2: Buffer.alloc(32, 3) };
      let blob: Buffer;
      try {
        blob = encodeKeyMethod2({ keySource, options: k.options, username: k.user, password: k.pass, peerInfo: k.peerInfo }, k.fromClient);
      } catch (e) {
        // Documented: encode refuses strings over their limits.
        assert.ok(e instanceof Error);
        return;
      }
      const d = decodeKeyMethod2(blob, k.fromClient);
      typed(d, KM2_REJECTS, 'decode valid');
      if (d.ok && !k.options.includes('\0')) assert.equal(d.message.options, k.options);
      payloadParsers(mutate(blob, m));
    }),
    opts(),
  );
  const occ = fc.oneof(
    fc.constant({ op: 'request' as const }),
    fc.string({ maxLength: 200 }).map((options) => ({ op: 'reply' as const, options })),
    fc.integer({ min: 0, max: 1500 }).map((size) => ({ op: 'mtu-load-request' as const, size })),
    fc.integer({ min: 0, max: 1400 }).map((length) => ({ op: 'mtu-load' as const, length })),
    fc.constant({ op: 'mtu-request' as const }),
    fc
      .record({ maxRecv: fc.integer({ min: 0, max: 65535 }), maxSend: fc.integer({ min: 0, max: 65535 }) })
      .map((r) => ({ op: 'mtu-reply' as const, ...r })),
    fc.constant({ op: 'exit' as const }),
  );
  fc.assert(
    fc.property(occ, mutationArb, (o, m) => {
      let wire: Buffer;
      try {
        wire = buildOccMessage(o);
      } catch (e) {
        assert.ok(e instanceof Error); // options strings with NUL or over the limit
        return;
      }
      const r = parseOccMessage(wire, 0, wire.length);
      assert.ok(r.ok, JSON.stringify(o));
      payloadParsers(mutate(wire, m));
    }),
    opts(),
  );
});

test('text parsers: control messages, PUSH_REPLY, peer-info and config lines give typed results', () => {
  const pushLike = fc
    .array(
      fc.constantFrom(
        'PUSH_REPLY',
        ',',
        'route 10.0.0.0 255.0.0.0',
        'peer-id 7',
        'cipher AES-256-GCM',
        'push-continuation 2',
        'push-continuation 1',
        'ifconfig 10.8.0.2 255.255.255.0',
        '"',
        "'",
        '\\',
        ' ',
        '\t',
        'AUTH_FAILED,TEMP[backoff 5]:x',
        'RESTART',
        'INFO_PRE,',
        'IV_CIPHERS=AES-256-GCM\n',
        'IV_PROTO=990\n',
        '=',
        '\n',
        '#',
        ';',
        'x'.repeat(300),
      ),
      { maxLength: 30 },
    )
    .map((a) => a.join(''));
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 600 }), fc.string({ maxLength: 600 }), pushLike), (s) => textParsers(s)),
    opts(1000),
  );
});

test('key file parsers: mutated and arbitrary files either parse or throw an Error naming the file', () => {
  const files = [
    formatStaticKey(generateStaticKey()),
    formatTlsCryptV2ServerKey(generateTlsCryptV2ServerKey()),
    formatTlsCryptV2ClientKey(generateTlsCryptV2ClientKey(generateTlsCryptV2ServerKey())),
  ];
  const mutatedFile = fc
    .record({ f: fc.constantFrom(...files), m: mutationArb })
    .map(({ f, m }) => mutate(Buffer.from(f, 'latin1'), m).toString('latin1'));
  const cutLines = fc.record({ f: fc.constantFrom(...files), drop: fc.nat(), dup: fc.nat() }).map(({ f, drop, dup }) => {
    const lines = f.split('\n');
    lines.splice(drop % lines.length, 1);
    lines.splice(dup % lines.length, 0, lines[dup % lines.length]!);
    return lines.join('\n');
  });
  fc.assert(
    fc.property(fc.oneof(mutatedFile, cutLines, fc.string({ unit: 'binary', maxLength: 800 })), (t) => keyFileParsers(t)),
    opts(400),
  );
});

// ---------------------------------------------------------------------------------------------
// An established session pair

async function establishedPair(wrap: 'tls-crypt' | 'none', seed: number): Promise<SessionPair> {
  const pair = new SessionPair({ pki, random: mulberry32(seed), clientCiphers: ['AES-256-GCM'], serverCiphers: ['AES-256-GCM'], wrap });
  await pair.establish();
  await pair.runUntil(() => pair.toServer.length === 0 && pair.toClient.length === 0);
  return pair;
}

/** One packet each way through the current keys, byte-exact. */
function dataRoundTrip(pair: SessionPair, payload: Buffer): void {
  for (const [from, to] of [
    [pair.clientData, pair.serverData],
    [pair.serverData, pair.clientData],
  ] as const) {
    const key = from.keys.get(from.sendKeyId!)!;
    const b = PacketBatch.allocate(1, payload.length + DATA_V2_HEADROOM);
    b.memory.set(payload, b.offsets[0]! + key.headroom);
    b.lengths[0] = payload.length;
    assert.equal(key.encrypt(b, 1), 1);
    const res = new DecryptResults(1);
    assert.equal(
      to.keys.get(b.memory[b.offsets[0]!]! & 7)!.decrypt(b, 1, pair.now, res),
      1,
      `${from.role} -> ${to.role}: ${res.reason(0)}`,
    );
    assert.ok(Buffer.from(b.memory.subarray(res.payloadOffsets[0]!, res.payloadOffsets[0]! + res.payloadLengths[0]!)).equals(payload));
  }
}

/** A control message round trip: PUSH_REQUEST from the client, PUSH_REPLY from the server. */
async function controlRoundTrip(pair: SessionPair): Promise<void> {
  const before = pair.clientEvents.filter((e) => e.type === 'control-message').length;
  pair.client.sendControlMessage('PUSH_REQUEST');
  await pair.runUntil(() => pair.clientEvents.filter((e) => e.type === 'control-message').length > before, 30_000);
}

function sessionDatagrams(pair: SessionPair, dataWire: () => Buffer): fc.Arbitrary<Buffer> {
  const captured = [...pair.sentByClient, ...pair.sentByServer];
  const clientSid = pair.client.sessionId;
  return fc.oneof(
    bytes(1500),
    fc.record({ i: fc.nat(), m: mutationArb }).map(({ i, m }) => mutate(captured[i % captured.length]!, m)),
    fc.record({ i: fc.nat() }).map(({ i }) => captured[i % captured.length]!), // plain replays
    fc.record({ m: mutationArb }).map(({ m }) => mutate(dataWire(), m)),
    // Right opcode and the client's session id, then garbage: reaches unwrap / the reliable layer.
    fc
      .record({ op: fc.constantFrom(...CONTROL_OPCODES), kid: fc.integer({ min: 0, max: 7 }), rest: bytes(400) })
      .map(({ op, kid, rest }) => Buffer.concat([Buffer.from([(op << 3) | kid]), clientSid, rest])),
  );
}

function sealedData(key: DataChannelKey, size = 100): Buffer {
  const b = PacketBatch.allocate(1, size + DATA_V2_HEADROOM);
  b.lengths[0] = size;
  key.encrypt(b, 1);
  return Buffer.from(b.packet(0));
}

for (const wrap of ['tls-crypt', 'none'] as const) {
  test(`established session (${wrap}): hostile datagrams never throw, stall or change the session`, async () => {
    const pair = await establishedPair(wrap, 11);
    try {
      const clientKey = pair.clientData.keys.get(0)!;
      const keyIdBefore = [pair.client.activeKeyId, pair.server!.activeKeyId];
      const eventsBefore = [pair.clientEvents.length, pair.serverEvents.length];
      let slowest = 0;
      fc.assert(
        fc.property(
          sessionDatagrams(pair, () => sealedData(clientKey)),
          fc.boolean(),
          (d, toServer) => {
            const t0 = performance.now();
            (toServer ? pair.server! : pair.client).receivePacket(d);
            slowest = Math.max(slowest, performance.now() - t0);
          },
        ),
        opts(wrap === 'none' ? 300 : 600),
      );
      assert.ok(slowest < 1000, `a datagram took ${slowest.toFixed(1)} ms`);
      // Let anything the sessions queued (ACKs of replays) and TLS settle.
      await pair.runUntil(() => pair.toServer.length === 0 && pair.toClient.length === 0, 10_000);
      const newEvents = [...pair.clientEvents.slice(eventsBefore[0]), ...pair.serverEvents.slice(eventsBefore[1])];
      assert.deepEqual(
        newEvents.filter((e) => e.type !== 'drop'),
        [],
        'only drops',
      );
      assert.ok(newEvents.length > 0, 'hostile datagrams were counted as drops');
      assert.deepEqual([pair.client.activeKeyId, pair.server!.activeKeyId], keyIdBefore);
      dataRoundTrip(pair, Buffer.from('still established'));
      await controlRoundTrip(pair);
      assert.deepEqual([pair.client.activeKeyId, pair.server!.activeKeyId], keyIdBefore);
    } finally {
      pair.close();
    }
  });
}

test('DataChannelKey.decrypt: hostile batches never throw, are all refused and counted, and leave the key working', async () => {
  const pair = await establishedPair('tls-crypt', 12);
  try {
    const sender = pair.clientData.keys.get(0)!;
    const receiver = pair.serverData.keys.get(0)!;
    const accepted: Buffer[] = [];
    // A few authentic packets the receiver has already accepted: their replays must be refused.
    for (let i = 0; i < 8; i++) {
      const w = sealedData(sender, 20 + i);
      const b = PacketBatch.allocate(1, w.length);
      b.set(0, w);
      assert.equal(receiver.decrypt(b, 1, pair.now, new DecryptResults(1)), 1);
      accepted.push(w);
    }
    const hostile = fc.oneof(
      bytes(1500),
      fc
        .record({ size: fc.integer({ min: 0, max: 1400 }), m: changingMutationArb })
        .map(({ size, m }) => mutate(sealedData(sender, size), m)),
      fc.nat().map((i) => accepted[i % accepted.length]!),
      fc
        .record({ kid: fc.integer({ min: 0, max: 7 }), v2: fc.boolean(), rest: bytes(60) })
        .map(({ kid, v2, rest }) => Buffer.concat([Buffer.from([((v2 ? 9 : 6) << 3) | kid]), rest])),
    );
    const batch = PacketBatch.allocate(32, 1600);
    const results = new DecryptResults(32);
    const drops = receiver.counters.drops;
    const received = receiver.traffic.receivedPackets;
    let slowest = 0;
    fc.assert(
      fc.property(fc.array(hostile, { minLength: 1, maxLength: 32 }), (list) => {
        for (let i = 0; i < list.length; i++) batch.set(i, list[i]!);
        const before = DATA_DROP_REASONS.reduce((n, r) => n + drops[r], 0);
        const t0 = performance.now();
        const n = receiver.decrypt(batch, list.length, pair.now, results);
        slowest = Math.max(slowest, performance.now() - t0);
        assert.equal(n, 0, 'a hostile packet was accepted');
        for (let i = 0; i < list.length; i++)
          assert.ok(DATA_DROP_REASONS.includes(results.reason(i)!), `untyped status ${results.status[i]}`);
        assert.equal(DATA_DROP_REASONS.reduce((n2, r) => n2 + drops[r], 0) - before, list.length, 'every refusal counted');
      }),
      opts(500),
    );
    assert.ok(slowest < 1000, `a batch took ${slowest.toFixed(1)} ms`);
    assert.equal(receiver.traffic.receivedPackets, received, 'no hostile packet counted as traffic');
    assert.ok(
      drops.replay > 0 && drops['bad-tag'] > 0 && drops.short > 0 && drops['not-data'] > 0 && drops['bad-key-id'] > 0,
      JSON.stringify(drops),
    );
    // The replay window and the key are intact: fresh packets both ways still pass.
    dataRoundTrip(pair, Buffer.alloc(1400, 0xa5));
    assert.equal(pair.server!.activeKeyId, 0);
  } finally {
    pair.close();
  }
});
