// The CBC + HMAC data channel (data-format.ts, native cbc.cc): client and server keys from one
// key block talking both ways in P_DATA_V1 and V2 for each CBC cipher and `auth` digest, packets
// checked against an independent build with node:crypto (HMAC over IV and ciphertext, packet-id
// inside the ciphertext, PKCS#7 padding), and every hostile packet refused and counted.
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';

import { PacketBatch, type CbcCipherName } from '../src/shared/native';
import { DataChannelKey, DecryptResults, MAX_DATA_HEADROOM, MAX_DATA_TAILROOM } from '../src/shared/protocol/data-channel';
import { digestLength } from '../src/shared/protocol/data-format';
import { sliceCbcKeys } from '../src/shared/protocol/key-derivation';

const CIPHERS: readonly { name: CbcCipherName; node: string; keyLen: number }[] = [
  { name: 'AES-128-CBC', node: 'aes-128-cbc', keyLen: 16 },
  { name: 'AES-192-CBC', node: 'aes-192-cbc', keyLen: 24 },
  { name: 'AES-256-CBC', node: 'aes-256-cbc', keyLen: 32 },
];
const DIGESTS: readonly (string | null)[] = ['SHA1', 'SHA256', 'SHA512', null];

const BLOCK = createHash('sha512').update('cbc block').digest();
const KEY_BLOCK = Buffer.concat([
  BLOCK,
  BLOCK.reverse(),
  createHash('sha512').update('2').digest(),
  createHash('sha512').update('3').digest(),
]);

function key(role: 'client' | 'server', cipher: CbcCipherName, auth: string | null, peerId: number | null = 5): DataChannelKey {
  return DataChannelKey.fromKeyBlock(Buffer.from(KEY_BLOCK), role, cipher, 1, { auth, peerId });
}

function send(k: DataChannelKey, payloads: readonly Buffer[]): Buffer[] {
  const batch = PacketBatch.allocate(payloads.length, 2048);
  payloads.forEach((p, i) => {
    batch.memory.set(p, batch.offsets[i]! + k.headroom);
    batch.lengths[i] = p.length;
  });
  assert.equal(k.encrypt(batch, payloads.length), payloads.length);
  return payloads.map((_, i) => Buffer.from(batch.packet(i)));
}

function receive(k: DataChannelKey, packets: readonly Buffer[]): (Buffer | string)[] {
  const batch = PacketBatch.allocate(packets.length, 2048);
  packets.forEach((p, i) => batch.set(i, p));
  const results = new DecryptResults(packets.length);
  k.decrypt(batch, packets.length, 0, results);
  return packets.map((_, i) => {
    const reason = results.reason(i);
    if (reason !== null) return reason;
    const at = results.payloadOffsets[i]!;
    return Buffer.from(batch.memory.subarray(at, at + results.payloadLengths[i]!));
  });
}

/** node:crypto's reading of a packet the server sent: HMAC, then decrypt, then packet-id. */
function openWithNode(
  wire: Buffer,
  cipher: (typeof CIPHERS)[number],
  auth: string | null,
  v2: boolean,
): { packetId: number; payload: Buffer } {
  const slices = sliceCbcKeys(Buffer.from(KEY_BLOCK), 'client', cipher.keyLen, digestLength(auth));
  const header = v2 ? 4 : 1;
  const macLen = digestLength(auth);
  const mac = wire.subarray(header, header + macLen);
  const rest = wire.subarray(header + macLen);
  if (auth !== null) assert.deepEqual(createHmac(auth, slices.decryptHmacKey).update(rest).digest(), mac, 'HMAC over IV and ciphertext');
  const decipher = createDecipheriv(cipher.node, slices.decryptKey, rest.subarray(0, 16));
  const plain = Buffer.concat([decipher.update(rest.subarray(16)), decipher.final()]);
  return { packetId: plain.readUInt32BE(0), payload: plain.subarray(4) };
}

/** A packet built by node:crypto as the client would send it. */
function sealWithNode(payload: Buffer, packetId: number, cipher: (typeof CIPHERS)[number], auth: string | null): Buffer {
  const slices = sliceCbcKeys(Buffer.from(KEY_BLOCK), 'client', cipher.keyLen, digestLength(auth));
  const iv = randomBytes(16);
  const pid = Buffer.alloc(4);
  pid.writeUInt32BE(packetId);
  const c = createCipheriv(cipher.node, slices.encryptKey, iv);
  const body = Buffer.concat([iv, c.update(Buffer.concat([pid, payload])), c.final()]);
  const mac = auth === null ? Buffer.alloc(0) : createHmac(auth, slices.encryptHmacKey).update(body).digest();
  return Buffer.concat([Buffer.from([(9 << 3) | 1, 0, 0, 5]), mac, body]);
}

for (const cipher of CIPHERS) {
  for (const auth of DIGESTS) {
    test(`${cipher.name} with auth ${auth ?? 'none'}: both ways, V1 and V2, read and written like node:crypto`, () => {
      const payloads = [0, 1, 11, 12, 15, 16, 17, 1400].map((n) => randomBytes(n));
      for (const peerId of [5, null]) {
        const server = key('server', cipher.name, auth, peerId);
        const client = key('client', cipher.name, auth, peerId);
        const wires = send(server, payloads);
        assert.equal(server.headroom, (peerId === null ? 1 : 4) + digestLength(auth) + 16 + 4);
        wires.forEach((wire, i) => {
          const opened = openWithNode(wire, cipher, auth, peerId !== null);
          assert.equal(opened.packetId, i + 1);
          assert.deepEqual(opened.payload, payloads[i]);
        });
        // Payloads of 0 bytes are ping-sized keepalives in OpenVPN too: they carry a packet-id.
        assert.deepEqual(receive(client, wires), payloads);
        assert.deepEqual(
          receive(client, wires),
          payloads.map(() => 'replay'),
        );
        assert.deepEqual(receive(server, send(client, payloads)), payloads);
      }
      const server = key('server', cipher.name, auth);
      const fromNode = [1, 2, 3].map((id) => sealWithNode(Buffer.from(`packet ${id}`), id, cipher, auth));
      assert.deepEqual(receive(server, fromNode).map(String), ['packet 1', 'packet 2', 'packet 3']);
    });
  }
}

test('CBC: tampering, truncation, bad padding and wrong keys are refused and counted; the key keeps working', () => {
  const cipher = CIPHERS[2]!;
  const server = key('server', cipher.name, 'SHA256');
  const good = sealWithNode(Buffer.from('hello'), 1, cipher, 'SHA256');
  const flip = (at: number): Buffer => {
    const b = Buffer.from(good);
    b[at]! ^= 1;
    return b;
  };
  const hostile = [
    flip(10), // HMAC
    flip(4 + 32 + 3), // IV
    flip(good.length - 1), // ciphertext
    good.subarray(0, good.length - 1), // not whole blocks
    good.subarray(0, 4 + 32 + 16), // no ciphertext block
    Buffer.from(good.subarray(0, 5)),
    sealWithNode(Buffer.from('x'.repeat(20)), 2, cipher, 'SHA1'), // other digest: HMAC and blocks misplaced
  ];
  const before = { ...server.counters.drops };
  assert.deepEqual(receive(server, hostile), ['bad-tag', 'bad-tag', 'bad-tag', 'short', 'short', 'short', 'bad-tag']);
  assert.equal(server.counters.drops['bad-tag'] + server.counters.drops.short - before['bad-tag'] - before.short, hostile.length);
  // Authentic but badly padded (auth none lets us forge one): refused, never accepted short.
  const none = key('server', cipher.name, null);
  const slices = sliceCbcKeys(Buffer.from(KEY_BLOCK), 'client', 32, 0);
  const iv = randomBytes(16);
  const c = createCipheriv('aes-256-cbc', slices.encryptKey, iv).setAutoPadding(false);
  const badPad = Buffer.concat([Buffer.from([(9 << 3) | 1, 0, 0, 5]), iv, c.update(Buffer.alloc(16, 0x11)), c.final()]);
  assert.deepEqual(receive(none, [badPad]), ['bad-tag']);
  assert.deepEqual(receive(server, [good]).map(String), ['hello']);
});

test('CBC: slots keep room for the headroom and the padding of every format', () => {
  assert.ok(MAX_DATA_HEADROOM >= 4 + 64 + 16 + 4, 'SHA512 + AES IV + packet-id in P_DATA_V2');
  assert.equal(MAX_DATA_TAILROOM, 16);
  const server = key('server', 'AES-256-CBC', 'SHA512');
  const batch = PacketBatch.allocate(1, 100 + server.headroom);
  batch.lengths[0] = 100;
  assert.throws(() => server.encrypt(batch, 1), /exceed the slot capacity/);
});

test('BF-CBC is refused by name where OpenSSL has no legacy provider, and an unknown digest too', () => {
  let bf: unknown = null;
  try {
    key('server', 'BF-CBC', 'SHA1');
  } catch (error) {
    bf = error;
  }
  // Node's OpenSSL may or may not load the legacy provider; where it does not, the error says so.
  if (bf !== null) assert.match((bf as Error).message, /BF-CBC needs OpenSSL's legacy provider/);
  assert.throws(() => key('server', 'AES-128-CBC', 'NOSUCHDIGEST'), /OpenSSL has no digest 'NOSUCHDIGEST' for auth/);
});
