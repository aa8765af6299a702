// The addon's batched AEAD (src/native/aead.cc) against published vectors and node:crypto: known
// answers with three nonce splits, every payload length, OpenVPN's P_DATA layouts, tampering,
// short packets, shared memory, and every caller error as a clear exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import type { CipherChaCha20Poly1305, CipherGCM, DecipherChaCha20Poly1305, DecipherGCM } from 'node:crypto';

import { AeadKey, PacketBatch, aeadLayout } from '../src/shared/native';
import type { AeadCipherName, AeadLayout } from '../src/shared/native';

const TAG = 16;

interface CipherCase {
  name: AeadCipherName;
  node: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';
  keyLength: number;
  /** ChaCha20-Poly1305 on EVP although OpenSSL's cores are available (the default takes the cores). */
  evp?: true;
}

const CIPHERS: readonly CipherCase[] = [
  { name: 'AES-128-GCM', node: 'aes-128-gcm', keyLength: 16 },
  { name: 'AES-256-GCM', node: 'aes-256-gcm', keyLength: 32 },
  { name: 'CHACHA20-POLY1305', node: 'chacha20-poly1305', keyLength: 32 },
  { name: 'CHACHA20-POLY1305', node: 'chacha20-poly1305', keyLength: 32, evp: true },
];

const label = (cipher: CipherCase): string => (cipher.evp === true ? `${cipher.name} (EVP)` : cipher.name);
const options = (cipher: CipherCase): { preferEvp: boolean } => ({ preferEvp: cipher.evp === true });

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** Reproducible "random" bytes: an AES-256-CTR keystream keyed by the seed's SHA-256. */
function byteSource(seed: string): (length: number) => Buffer {
  const stream = createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16));
  return (length) => stream.update(Buffer.alloc(length));
}

// Narrowing per family picks node's typed AEAD overloads (a union argument would not).
function nodeCipher(cipher: CipherCase, key: Uint8Array, nonce: Uint8Array): CipherGCM | CipherChaCha20Poly1305 {
  const name = cipher.node;
  return name === 'chacha20-poly1305'
    ? createCipheriv(name, key, nonce, { authTagLength: TAG })
    : createCipheriv(name, key, nonce, { authTagLength: TAG });
}

function nodeDecipher(cipher: CipherCase, key: Uint8Array, nonce: Uint8Array): DecipherGCM | DecipherChaCha20Poly1305 {
  const name = cipher.node;
  return name === 'chacha20-poly1305'
    ? createDecipheriv(name, key, nonce, { authTagLength: TAG })
    : createDecipheriv(name, key, nonce, { authTagLength: TAG });
}

function nodeSeal(
  cipher: CipherCase,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
): { ciphertext: Buffer; tag: Buffer } {
  const c = nodeCipher(cipher, key, nonce);
  c.setAAD(aad, { plaintextLength: plaintext.length });
  const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
  return { ciphertext, tag: c.getAuthTag() };
}

function nodeOpen(
  cipher: CipherCase,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
): Buffer {
  const d = nodeDecipher(cipher, key, nonce);
  d.setAAD(aad, { plaintextLength: ciphertext.length });
  d.setAuthTag(tag);
  return Buffer.concat([d.update(ciphertext), d.final()]);
}

const cipherCase = (name: AeadCipherName): CipherCase => {
  const found = CIPHERS.find((c) => c.name === name);
  if (found === undefined) throw new Error(`no cipher case ${name}`);
  return found;
};

/** A seal-only key for the sender and an open-only key for the receiver, as on the wire. */
function keyPair(
  cipher: AeadCipherName,
  key: Uint8Array,
  implicitIv: Uint8Array,
  preferEvp = false,
): { sender: AeadKey; receiver: AeadKey } {
  return {
    sender: new AeadKey(cipher, { key, implicitIv }, null, { preferEvp }),
    receiver: new AeadKey(cipher, null, { key, implicitIv }, { preferEvp }),
  };
}

// --- Known answers -----------------------------------------------------------------------------

interface Vector {
  source: string;
  cipher: AeadCipherName;
  key: string;
  nonce: string;
  aad: string;
  plaintext: string;
  ciphertext: string;
  tag: string;
}

// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test cases with 96-bit IVs.
const GCM_K = 'feffe9928665731c6d6a8f9467308308';
const GCM_IV = 'cafebabefacedbaddecaf888';
const GCM_P64 =
  'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72' + '1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255';
const GCM_P60 = GCM_P64.slice(0, 120);
const GCM_A = 'feedfacedeadbeeffeedfacedeadbeefabaddad2';

const VECTORS: readonly Vector[] = [
  {
    source: 'GCM test case 1',
    cipher: 'AES-128-GCM',
    key: '00'.repeat(16),
    nonce: '00'.repeat(12),
    aad: '',
    plaintext: '',
    ciphertext: '',
    tag: '58e2fccefa7e3061367f1d57a4e7455a',
  },
  {
    source: 'GCM test case 2',
    cipher: 'AES-128-GCM',
    key: '00'.repeat(16),
    nonce: '00'.repeat(12),
    aad: '',
    plaintext: '00'.repeat(16),
    ciphertext: '0388dace60b6a392f328c2b971b2fe78',
    tag: 'ab6e47d42cec13bdf53a67b21257bddf',
  },
  {
    source: 'GCM test case 3',
    cipher: 'AES-128-GCM',
    key: GCM_K,
    nonce: GCM_IV,
    aad: '',
    plaintext: GCM_P64,
    ciphertext:
      '42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e' +
      '21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985',
    tag: '4d5c2af327cd64a62cf35abd2ba6fab4',
  },
  {
    source: 'GCM test case 4',
    cipher: 'AES-128-GCM',
    key: GCM_K,
    nonce: GCM_IV,
    aad: GCM_A,
    plaintext: GCM_P60,
    ciphertext:
      '42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e' + '21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091',
    tag: '5bc94fbc3221a5db94fae95ae7121a47',
  },
  {
    source: 'GCM test case 13',
    cipher: 'AES-256-GCM',
    key: '00'.repeat(32),
    nonce: '00'.repeat(12),
    aad: '',
    plaintext: '',
    ciphertext: '',
    tag: '530f8afbc74536b9a963b4f1c4cb738b',
  },
  {
    source: 'GCM test case 14',
    cipher: 'AES-256-GCM',
    key: '00'.repeat(32),
    nonce: '00'.repeat(12),
    aad: '',
    plaintext: '00'.repeat(16),
    ciphertext: 'cea7403d4d606b6e074ec5d3baf39d18',
    tag: 'd0d1c8a799996bf0265b98b5d48ab919',
  },
  {
    source: 'GCM test case 15',
    cipher: 'AES-256-GCM',
    key: GCM_K + GCM_K,
    nonce: GCM_IV,
    aad: '',
    plaintext: GCM_P64,
    ciphertext:
      '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa' +
      '8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad',
    tag: 'b094dac5d93471bdec1a502270e3cc6c',
  },
  {
    source: 'GCM test case 16',
    cipher: 'AES-256-GCM',
    key: GCM_K + GCM_K,
    nonce: GCM_IV,
    aad: GCM_A,
    plaintext: GCM_P60,
    ciphertext:
      '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa' + '8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662',
    tag: '76fc6ece0f4e1768cddf8853bb2d551b',
  },
  {
    source: 'RFC 8439 section 2.8.2',
    cipher: 'CHACHA20-POLY1305',
    key: '808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f',
    nonce: '07000000' + '4041424344454647',
    aad: '50515253c0c1c2c3c4c5c6c7',
    plaintext: Buffer.from(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
      'latin1',
    ).toString('hex'),
    ciphertext:
      'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6' +
      '3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36' +
      '92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc' +
      '3ff4def08e4b7a9de576d26586cec64b6116',
    tag: '1ae10b594f09e26a7e902ecbd0600691',
  },
];

test('the vectors themselves agree with node:crypto (guards against mistyped hex)', () => {
  for (const v of VECTORS) {
    const sealed = nodeSeal(cipherCase(v.cipher), hex(v.key), hex(v.nonce), hex(v.aad), hex(v.plaintext));
    assert.equal(sealed.ciphertext.toString('hex'), v.ciphertext, v.source);
    assert.equal(sealed.tag.toString('hex'), v.tag, v.source);
  }
});

// Packet = [nonce field][AAD][tag][payload]; nonceLength bytes of the nonce travel in the packet,
// the rest is the key's implicit IV. 12/0 (all explicit), 4/8 (OpenVPN's split), 0/12 (all implicit).
for (const v of VECTORS) {
  for (const nonceLength of [12, 4, 0]) {
    test(`known answer: ${v.source} (${v.cipher}), nonce field ${nonceLength} + implicit IV ${12 - nonceLength}`, () => {
      const nonce = hex(v.nonce);
      const aad = hex(v.aad);
      const plaintext = hex(v.plaintext);
      const layout: AeadLayout = {
        nonceOffset: 0,
        nonceLength,
        aadOffset: nonceLength,
        aadLength: aad.length,
        tagOffset: nonceLength + aad.length,
        payloadOffset: nonceLength + aad.length + TAG,
      };
      const packet = Buffer.concat([nonce.subarray(0, nonceLength), aad, Buffer.alloc(TAG), plaintext]);
      // Two copies behind 5 bytes of headroom each: every slot's offset must be honoured.
      const batch = PacketBatch.allocate(2, packet.length + 8, 5);
      batch.set(0, packet);
      batch.set(1, packet);
      const { sender, receiver } = keyPair(v.cipher, hex(v.key), nonce.subarray(nonceLength));
      const words = aeadLayout(layout);

      sender.seal(batch, 2, words);
      for (let i = 0; i < 2; i++) {
        const sealed = Buffer.from(batch.packet(i));
        assert.equal(sealed.subarray(layout.tagOffset, layout.payloadOffset).toString('hex'), v.tag);
        assert.equal(sealed.subarray(layout.payloadOffset).toString('hex'), v.ciphertext);
        assert.deepEqual(sealed.subarray(0, layout.tagOffset), packet.subarray(0, layout.tagOffset), 'nonce field and AAD untouched');
      }
      assert.deepEqual(batch.memory.subarray(0, 5), new Uint8Array(5), 'headroom untouched');

      const results = new Uint8Array(2).fill(7);
      assert.equal(receiver.open(batch, 2, words, results), 0);
      assert.deepEqual([...results], [1, 1]);
      for (let i = 0; i < 2; i++) assert.equal(Buffer.from(batch.packet(i)).subarray(layout.payloadOffset).toString('hex'), v.plaintext);
    });
  }
}

// --- Equality with node:crypto -----------------------------------------------------------------

// Per cipher a different AAD length (0 skips the AAD update) and nonce split.
const SHAPES: Record<AeadCipherName, { aadLength: number; nonceLength: number }> = {
  'AES-128-GCM': { aadLength: 0, nonceLength: 12 },
  'AES-256-GCM': { aadLength: 13, nonceLength: 4 },
  'CHACHA20-POLY1305': { aadLength: 37, nonceLength: 8 },
};

const MAX_PAYLOAD = 2048;

for (const cipher of CIPHERS) {
  test(`${label(cipher)}: every payload length 0..${MAX_PAYLOAD} in one batch equals node:crypto, and opens back`, () => {
    const random = byteSource(`equality ${cipher.name}`);
    const { aadLength, nonceLength } = SHAPES[cipher.name];
    const layout: AeadLayout = {
      aadOffset: 0,
      aadLength,
      nonceOffset: aadLength,
      nonceLength,
      tagOffset: aadLength + nonceLength,
      payloadOffset: aadLength + nonceLength + TAG,
    };
    const words = aeadLayout(layout);
    const key = random(cipher.keyLength);
    const implicitIv = random(12 - nonceLength);
    const { sender, receiver } = keyPair(cipher.name, key, implicitIv, cipher.evp === true);
    assert.equal(sender.implementation, receiver.implementation);
    const count = MAX_PAYLOAD + 1;
    const batch = PacketBatch.allocate(count, layout.payloadOffset + MAX_PAYLOAD, 3);
    const plaintexts: Buffer[] = [];
    const expected: Buffer[] = [];
    for (let length = 0; length < count; length++) {
      const aad = random(aadLength);
      const nonceField = random(nonceLength);
      const plaintext = random(length);
      plaintexts.push(plaintext);
      const sealed = nodeSeal(cipher, key, Buffer.concat([nonceField, implicitIv]), aad, plaintext);
      expected.push(Buffer.concat([aad, nonceField, sealed.tag, sealed.ciphertext]));
      batch.set(length, Buffer.concat([aad, nonceField, Buffer.alloc(TAG), plaintext]));
    }

    sender.seal(batch, count, words);
    for (let i = 0; i < count; i++) {
      if (!Buffer.from(batch.packet(i)).equals(expected[i]))
        assert.fail(`${cipher.name}: packet with ${i}-byte payload differs from node:crypto`);
    }

    const results = new Uint8Array(count).fill(9);
    assert.equal(receiver.open(batch, count, words, results), 0);
    assert.ok(
      results.every((r) => r === 1),
      'every packet authentic',
    );
    for (let i = 0; i < count; i++) {
      if (!Buffer.from(batch.packet(i)).subarray(layout.payloadOffset).equals(plaintexts[i]))
        assert.fail(`${cipher.name}: payload ${i} not recovered`);
    }
  });
}

// --- OpenVPN's data-channel layouts (openvpn-wire.md section 6.2) -------------------------------

const P_DATA_V2 = 9;
const P_DATA_V1 = 6;
const V2_LAYOUT = aeadLayout({ aadOffset: 0, aadLength: 8, nonceOffset: 4, nonceLength: 4, tagOffset: 8, payloadOffset: 24 });
const V1_LAYOUT = aeadLayout({ aadOffset: 1, aadLength: 4, nonceOffset: 1, nonceLength: 4, tagOffset: 5, payloadOffset: 21 });

function dataV2Header(keyId: number, peerId: number, packetId: number): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(((((P_DATA_V2 << 3) | keyId) << 24) | peerId) >>> 0, 0);
  header.writeUInt32BE(packetId, 4);
  return header;
}

for (const cipher of CIPHERS) {
  test(`${label(cipher)}: P_DATA_V2 both ways between client and server keys, as node:crypto computes it`, () => {
    const random = byteSource(`openvpn ${cipher.name}`);
    // Key slicing as in init_key_contexts: the client seals with c2s, the server with s2c.
    const c2s = { key: random(cipher.keyLength), implicitIv: random(8) };
    const s2c = { key: random(cipher.keyLength), implicitIv: random(8) };
    const client = new AeadKey(cipher.name, c2s, s2c, options(cipher));
    const server = new AeadKey(cipher.name, s2c, c2s, options(cipher));
    assert.equal(client.cipher, cipher.name);

    for (const [from, to, material] of [
      [client, server, c2s],
      [server, client, s2c],
    ] as const) {
      const count = 32;
      const batch = PacketBatch.allocate(count, 24 + 1500);
      const plaintexts: Buffer[] = [];
      const expected: Buffer[] = [];
      for (let i = 0; i < count; i++) {
        const packetId = i === 0 ? 0xffffffff : 1 + i * 977;
        const header = dataV2Header(2, 0xabcdef, packetId);
        const plaintext = random(20 + i * 46);
        plaintexts.push(plaintext);
        const nonce = Buffer.concat([header.subarray(4, 8), material.implicitIv]);
        const sealed = nodeSeal(cipher, material.key, nonce, header, plaintext);
        expected.push(Buffer.concat([header, sealed.tag, sealed.ciphertext]));
        batch.set(i, Buffer.concat([header, Buffer.alloc(TAG), plaintext]));
      }
      from.seal(batch, count, V2_LAYOUT);
      for (let i = 0; i < count; i++) assert.deepEqual(Buffer.from(batch.packet(i)), expected[i], `packet ${i}`);
      // node:crypto opens what the addon sealed, field by field from the wire layout.
      const wire = Buffer.from(batch.packet(5));
      const opened = nodeOpen(
        cipher,
        material.key,
        Buffer.concat([wire.subarray(4, 8), material.implicitIv]),
        wire.subarray(0, 8),
        wire.subarray(24),
        wire.subarray(8, 24),
      );
      assert.deepEqual(opened, plaintexts[5]);

      const results = new Uint8Array(count);
      assert.equal(to.open(batch, count, V2_LAYOUT, results), 0);
      for (let i = 0; i < count; i++) assert.deepEqual(Buffer.from(batch.packet(i)).subarray(24), plaintexts[i]);
    }
    // A packet sealed for the server does not open under the client's open key (the other direction).
    const batch = PacketBatch.allocate(1, 100);
    batch.set(0, Buffer.concat([dataV2Header(0, 1, 1), Buffer.alloc(TAG), random(60)]));
    client.seal(batch, 1, V2_LAYOUT);
    const results = new Uint8Array(1);
    assert.equal(client.open(batch, 1, V2_LAYOUT, results), 1);
    assert.equal(results[0], 0);
  });
}

test("CHACHA20-POLY1305 on OpenSSL's cores: chosen where Node exports them; equal to EVP both ways at sizes past its first keystream chunk", () => {
  const random = byteSource('cores against evp');
  const material = { key: random(32), implicitIv: random(8) };
  const cores = new AeadKey('CHACHA20-POLY1305', material, material);
  const evp = new AeadKey('CHACHA20-POLY1305', material, material, { preferEvp: true });
  // This Node (the official build) exports the cores; a build that does not stays on EVP.
  assert.equal(cores.implementation, 'openssl-cores');
  assert.equal(evp.implementation, 'evp');
  assert.equal(new AeadKey('AES-256-GCM', { key: random(32), implicitIv: random(8) }, null).implementation, 'evp');
  // 1983-1985 and 2047-2049 straddle the keystream made ahead (64-byte block 0 plus 1984 bytes);
  // the larger ones run the in-place tail; 65,000 is a TUN superpacket's size.
  const lengths = [0, 1, 15, 16, 17, 63, 64, 65, 1400, 1983, 1984, 1985, 2047, 2048, 2049, 4096, 9001, 65000];
  for (const [sealer, opener, name] of [
    [cores, evp, 'cores seal, EVP opens'],
    [evp, cores, 'EVP seals, cores open'],
  ] as const) {
    const batch = PacketBatch.allocate(lengths.length, 24 + 65000);
    const plaintexts = lengths.map((length) => random(length));
    lengths.forEach((_, i) => batch.set(i, Buffer.concat([dataV2Header(1, 7, 100 + i), Buffer.alloc(TAG), plaintexts[i]])));
    sealer.seal(batch, lengths.length, V2_LAYOUT);
    const check = PacketBatch.allocate(lengths.length, 24 + 65000);
    lengths.forEach((_, i) => check.set(i, Buffer.concat([dataV2Header(1, 7, 100 + i), Buffer.alloc(TAG), plaintexts[i]])));
    opener.seal(check, lengths.length, V2_LAYOUT);
    for (let i = 0; i < lengths.length; i++) {
      assert.ok(Buffer.from(batch.packet(i)).equals(Buffer.from(check.packet(i))), `${name}: ${lengths[i]} bytes sealed alike`);
    }
    const results = new Uint8Array(lengths.length);
    assert.equal(opener.open(batch, lengths.length, V2_LAYOUT, results), 0, name);
    for (let i = 0; i < lengths.length; i++) {
      assert.ok(Buffer.from(batch.packet(i)).subarray(24).equals(plaintexts[i]), `${name}: ${lengths[i]} bytes recovered`);
    }
  }
  // A flipped bit in a long packet's in-place tail fails it, and its payload is zeroed.
  const batch = PacketBatch.allocate(1, 24 + 9001);
  const plaintext = random(9001);
  batch.set(0, Buffer.concat([dataV2Header(1, 7, 5), Buffer.alloc(TAG), plaintext]));
  cores.seal(batch, 1, V2_LAYOUT);
  batch.memory[batch.offsets[0] + 24 + 8000] ^= 0x20;
  const results = new Uint8Array(1).fill(9);
  assert.equal(cores.open(batch, 1, V2_LAYOUT, results), 1);
  assert.equal(results[0], 0);
  assert.ok(
    Buffer.from(batch.packet(0))
      .subarray(24)
      .every((b) => b === 0),
  );
});

test('P_DATA_V1: AAD is the packet-id only; the opcode byte is not authenticated', () => {
  const cipher = cipherCase('AES-256-GCM');
  const random = byteSource('openvpn v1');
  const material = { key: random(32), implicitIv: random(8) };
  const { sender, receiver } = keyPair(cipher.name, material.key, material.implicitIv);
  const header = Buffer.from([(P_DATA_V1 << 3) | 1, 0, 0, 0, 42]);
  const plaintext = random(333);
  const batch = PacketBatch.allocate(2, 21 + 333);
  batch.set(0, Buffer.concat([header, Buffer.alloc(TAG), plaintext]));
  batch.set(1, Buffer.concat([header, Buffer.alloc(TAG), plaintext]));
  sender.seal(batch, 2, V1_LAYOUT);
  const sealed = nodeSeal(
    cipher,
    material.key,
    Buffer.concat([header.subarray(1, 5), material.implicitIv]),
    header.subarray(1, 5),
    plaintext,
  );
  assert.deepEqual(Buffer.from(batch.packet(0)), Buffer.concat([header, sealed.tag, sealed.ciphertext]));

  batch.memory[batch.offsets[0]] ^= 0x07; // another key_id: outside the AAD, still authentic
  batch.memory[batch.offsets[1] + 4] ^= 0x01; // the packet-id: inside the AAD and the nonce
  const results = new Uint8Array(2);
  assert.equal(receiver.open(batch, 2, V1_LAYOUT, results), 1);
  assert.deepEqual([...results], [1, 0]);
  assert.deepEqual(Buffer.from(batch.packet(0)).subarray(21), plaintext);
});

// --- Tampering, short packets, shared memory ---------------------------------------------------

// Disjoint regions so each tamper hits exactly one role: [nonce 4][AAD 8][tag 16][payload].
const TAMPER_LAYOUT: AeadLayout = { nonceOffset: 0, nonceLength: 4, aadOffset: 4, aadLength: 8, tagOffset: 12, payloadOffset: 28 };

for (const cipher of CIPHERS) {
  test(`${label(cipher)}: tampered ciphertext, tag, AAD and nonce fail only their own packets`, () => {
    const random = byteSource(`tamper ${cipher.name}`);
    const { sender, receiver } = keyPair(cipher.name, random(cipher.keyLength), random(8), cipher.evp === true);
    const words = aeadLayout(TAMPER_LAYOUT);
    const count = 16;
    const batch = PacketBatch.allocate(count, 28 + 300, 16);
    const plaintexts: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const plaintext = random(100 + i * 7);
      plaintext[0] |= 1; // never all zero, so zeroing is visible
      plaintexts.push(plaintext);
      batch.set(i, Buffer.concat([random(4), random(8), Buffer.alloc(TAG), plaintext]));
    }
    sender.seal(batch, count, words);
    const flip = (packet: number, at: number, bit: number): void => {
      batch.memory[batch.offsets[packet] + at] ^= bit;
    };
    flip(3, TAMPER_LAYOUT.payloadOffset + 5, 0x10);
    flip(7, TAMPER_LAYOUT.tagOffset + 15, 0x80);
    flip(11, TAMPER_LAYOUT.aadOffset + 2, 0x01);
    flip(13, TAMPER_LAYOUT.nonceOffset + 3, 0x40);

    const results = new Uint8Array(count + 4).fill(0xff);
    assert.equal(receiver.open(batch, count, words, results), 4);
    const failed = [3, 7, 11, 13];
    for (let i = 0; i < count; i++) {
      const payload = Buffer.from(batch.packet(i)).subarray(TAMPER_LAYOUT.payloadOffset);
      if (failed.includes(i)) {
        assert.equal(results[i], 0, `packet ${i} rejected`);
        assert.ok(
          payload.every((b) => b === 0),
          `packet ${i}: unauthenticated payload zeroed`,
        );
      } else {
        assert.equal(results[i], 1, `packet ${i} authentic`);
        assert.deepEqual(payload, plaintexts[i], `packet ${i} decrypted`);
      }
    }
    assert.deepEqual([...results.subarray(count)], [0xff, 0xff, 0xff, 0xff], 'results beyond count untouched');
  });
}

test('a packet shorter than the layout fails only itself in open; an empty payload is fine', () => {
  const random = byteSource('short');
  const { sender, receiver } = keyPair('CHACHA20-POLY1305', random(32), random(8));
  const count = 6;
  const batch = PacketBatch.allocate(count, 24 + 200);
  const plaintexts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const plaintext = i === 4 ? Buffer.alloc(0) : random(50 + i);
    plaintexts.push(plaintext);
    batch.set(i, Buffer.concat([dataV2Header(0, 7, i + 1), Buffer.alloc(TAG), plaintext]));
  }
  sender.seal(batch, count, V2_LAYOUT);
  assert.equal(batch.lengths[4], 24);
  batch.lengths[2] = 23; // one byte short of the tag's end
  batch.lengths[3] = 0;
  const results = new Uint8Array(count);
  assert.equal(receiver.open(batch, count, V2_LAYOUT, results), 2);
  assert.deepEqual([...results], [1, 1, 0, 0, 1, 1]);
  for (const i of [0, 1, 4, 5]) assert.deepEqual(Buffer.from(batch.packet(i)).subarray(24), plaintexts[i]);
});

test('memory over a SharedArrayBuffer and memory viewed at a byte offset both work', () => {
  const cipher = cipherCase('AES-128-GCM');
  const random = byteSource('shared');
  const material = { key: random(16), implicitIv: random(8) };
  const { sender, receiver } = keyPair(cipher.name, material.key, material.implicitIv);
  const shared = PacketBatch.allocate(8, 24 + 256, 0, true);
  assert.ok(shared.memory.buffer instanceof SharedArrayBuffer);
  const backing = new ArrayBuffer(4096);
  new Uint8Array(backing).fill(0x5a);
  const view = new Uint8Array(backing, 1000, 8 * 280);
  const offsetView = new PacketBatch(
    view,
    Uint32Array.from({ length: 8 }, (_, i) => i * 280),
    280,
  );

  for (const batch of [shared, offsetView]) {
    const plaintexts: Buffer[] = [];
    const expected: Buffer[] = [];
    for (let i = 0; i < 8; i++) {
      const header = dataV2Header(1, 3, 100 + i);
      const plaintext = random(i * 32);
      plaintexts.push(plaintext);
      const sealed = nodeSeal(cipher, material.key, Buffer.concat([header.subarray(4), material.implicitIv]), header, plaintext);
      expected.push(Buffer.concat([header, sealed.tag, sealed.ciphertext]));
      batch.set(i, Buffer.concat([header, Buffer.alloc(TAG), plaintext]));
    }
    sender.seal(batch, 8, V2_LAYOUT);
    for (let i = 0; i < 8; i++) assert.deepEqual(Buffer.from(batch.packet(i)), expected[i]);
    const results = new Uint8Array(8);
    assert.equal(receiver.open(batch, 8, V2_LAYOUT, results), 0);
    for (let i = 0; i < 8; i++) assert.deepEqual(Buffer.from(batch.packet(i)).subarray(24), plaintexts[i]);
  }
  const outside = new Uint8Array(backing);
  assert.ok(
    outside.subarray(0, 1000).every((b) => b === 0x5a),
    'bytes before the view untouched',
  );
  assert.ok(
    outside.subarray(1000 + 8 * 280).every((b) => b === 0x5a),
    'bytes after the view untouched',
  );
});

// --- Caller errors: exceptions that say what is wrong, never a crash ---------------------------

function sealedBatch(key: AeadKey): PacketBatch {
  const batch = PacketBatch.allocate(4, 24 + 64);
  for (let i = 0; i < 4; i++) batch.set(i, Buffer.concat([dataV2Header(0, 1, i + 1), Buffer.alloc(TAG + 64, i)]));
  key.seal(batch, 4, V2_LAYOUT);
  return batch;
}

test('bad keys and ciphers are refused at construction', () => {
  const iv = new Uint8Array(8);
  assert.throws(() => new AeadKey('AES-256-GCM', { key: new Uint8Array(16), implicitIv: iv }, null), {
    name: 'RangeError',
    message: /seal key for AES-256-GCM must be 32 bytes, got 16/,
  });
  assert.throws(() => new AeadKey('AES-128-GCM', null, { key: new Uint8Array(32), implicitIv: iv }), {
    name: 'RangeError',
    message: /open key for AES-128-GCM must be 16 bytes, got 32/,
  });
  assert.throws(() => new AeadKey('CHACHA20-POLY1305', { key: new Uint8Array(31), implicitIv: iv }, null), /must be 32 bytes, got 31/);
  assert.throws(() => new AeadKey('AES-256-GCM', { key: new Uint8Array(32), implicitIv: new Uint8Array(13) }, null), {
    name: 'TypeError',
    message: /implicit IV must be a Uint8Array of at most 12 bytes/,
  });
  const unknown: string = 'AES-256-CBC';
  assert.throws(() => new AeadKey(unknown as AeadCipherName, { key: new Uint8Array(32), implicitIv: iv }, null), {
    name: 'RangeError',
    message: /unsupported cipher 'AES-256-CBC'/,
  });
  const lowercase: string = 'aes-256-gcm';
  assert.throws(() => new AeadKey(lowercase as AeadCipherName, null, null), /unsupported cipher 'aes-256-gcm'/);
});

test('bad layouts, counts and offsets are exceptions naming the problem', () => {
  const key = new AeadKey(
    'AES-256-GCM',
    { key: new Uint8Array(32).fill(1), implicitIv: new Uint8Array(8) },
    { key: new Uint8Array(32).fill(1), implicitIv: new Uint8Array(8) },
  );
  const batch = sealedBatch(key);
  const results = new Uint8Array(4);

  assert.throws(() => key.seal(batch, 4, Uint32Array.of(0, 8, 4, 4, 8)), {
    name: 'TypeError',
    message: /AeadKey\.seal: layout must be a Uint32Array of 6 words/,
  });
  assert.throws(() => key.open(batch, 4, new Uint32Array(7), results), {
    name: 'TypeError',
    message: /AeadKey\.open: layout must be a Uint32Array of 6 words/,
  });
  assert.throws(
    () => key.seal(batch, 4, aeadLayout({ aadOffset: 0, aadLength: 8, nonceOffset: 0, nonceLength: 13, tagOffset: 8, payloadOffset: 24 })),
    {
      name: 'RangeError',
      message: /nonce field longer than 12 bytes/,
    },
  );
  assert.throws(
    () => key.seal(batch, 4, aeadLayout({ aadOffset: 0, aadLength: 8, nonceOffset: 4, nonceLength: 2, tagOffset: 8, payloadOffset: 24 })),
    {
      name: 'RangeError',
      message: /nonce field plus implicit IV must make exactly 12 bytes/,
    },
  );
  assert.throws(
    () =>
      key.seal(batch, 4, aeadLayout({ aadOffset: 0, aadLength: 5000, nonceOffset: 4, nonceLength: 4, tagOffset: 8, payloadOffset: 24 })),
    {
      name: 'RangeError',
      message: /AAD longer than 4096 bytes/,
    },
  );

  assert.throws(() => key.seal(batch, 5, V2_LAYOUT), {
    name: 'RangeError',
    message: /AeadKey\.seal: count 5 exceeds the offsets\/lengths arrays/,
  });
  assert.throws(() => key.open(batch, 5, V2_LAYOUT, new Uint8Array(5)), { name: 'RangeError', message: /AeadKey\.open: count 5 exceeds/ });
  assert.throws(() => key.open(batch, -1, V2_LAYOUT, results), { name: 'RangeError', message: /count -1 exceeds/ });
  assert.throws(() => key.open(batch, 4, V2_LAYOUT, new Uint8Array(3)), { name: 'RangeError', message: /results is shorter than count/ });

  // A slot that starts, or ends, outside the memory.
  const beyond = new PacketBatch(new Uint8Array(256), Uint32Array.of(0, 300), 100);
  beyond.lengths.set([60, 60]);
  assert.throws(() => key.seal(beyond, 2, V2_LAYOUT), {
    name: 'RangeError',
    message: /AeadKey\.seal: packet 1 \(offset 300, 60 bytes\) lies outside the 256-byte memory/,
  });
  const straddling = new PacketBatch(new Uint8Array(256), Uint32Array.of(0, 200), 100);
  straddling.lengths.set([60, 60]);
  assert.throws(() => key.open(straddling, 2, V2_LAYOUT, results), {
    name: 'RangeError',
    message: /AeadKey\.open: packet 1 \(offset 200, 60 bytes\) lies outside the 256-byte memory/,
  });

  // Sealing is our own output: a packet shorter than its layout is a caller bug, not hostile input.
  const short = PacketBatch.allocate(2, 64);
  short.lengths.set([40, 10]);
  assert.throws(() => key.seal(short, 2, V2_LAYOUT), {
    name: 'RangeError',
    message: /AeadKey\.seal: packet 1 \(10 bytes\) is shorter than its layout/,
  });

  // None of that disturbed the key: the original batch still opens.
  assert.equal(key.open(batch, 4, V2_LAYOUT, results), 0);
  assert.deepEqual([...results], [1, 1, 1, 1]);
});

test('one-direction keys refuse the other direction; a destroyed key refuses both', () => {
  const material = { key: new Uint8Array(32).fill(3), implicitIv: new Uint8Array(8).fill(4) };
  const sealOnly = new AeadKey('CHACHA20-POLY1305', material, null);
  const openOnly = new AeadKey('CHACHA20-POLY1305', null, material);
  const batch = sealedBatch(sealOnly);
  const results = new Uint8Array(4);
  assert.throws(() => openOnly.seal(batch, 4, V2_LAYOUT), { message: /AeadKey\.seal: no seal key \(destroyed or open-only\)/ });
  assert.throws(() => sealOnly.open(batch, 4, V2_LAYOUT, results), { message: /AeadKey\.open: no open key \(destroyed or seal-only\)/ });
  assert.equal(openOnly.open(batch, 4, V2_LAYOUT, results), 0);

  const both = new AeadKey(
    'AES-128-GCM',
    { key: new Uint8Array(16).fill(5), implicitIv: new Uint8Array(8) },
    { key: new Uint8Array(16).fill(5), implicitIv: new Uint8Array(8) },
  );
  const mine = sealedBatch(both);
  both.destroy();
  both.destroy(); // idempotent
  assert.throws(() => both.seal(mine, 4, V2_LAYOUT), { message: /no seal key \(destroyed/ });
  assert.throws(() => both.open(mine, 4, V2_LAYOUT, results), { message: /no open key \(destroyed/ });
  assert.equal(both.cipher, 'AES-128-GCM');
});
