// Data-channel AEAD on one core, 1400-byte payloads in OpenVPN's P_DATA_V2 layout: the addon's
// batch path (32 packets per call, persistent OpenSSL context) against one node:crypto cipher
// object per packet and against sodium-native. Seal-only and seal+open, contenders interleaved
// within every run, medians over BENCH_RUNS runs. ChaCha20-Poly1305 also runs the addon on
// OpenSSL's EVP interface beside its default (OpenSSL's ChaCha20 and Poly1305 cores, where the
// running Node exports them). Run: node dist/bench/aead.bench.js
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { CipherChaCha20Poly1305, CipherGCM, DecipherChaCha20Poly1305, DecipherGCM } from 'node:crypto';

import { AeadKey, PacketBatch, aeadLayout } from '../src/shared/native';
import type { AeadCipherName } from '../src/shared/native';
import { benchRuns, formatRate, median, printTable, sealRates, SEAL_MODES, type SealContender, type SealMode } from './lib';

const PAYLOAD = 1400;
const HEADER = 8; // opcode|key_id, peer-id, packet-id: the AAD
const TAG = 16;
const WIRE = HEADER + TAG + PAYLOAD;
const BATCH = 32;
const MEASURE_MS = Number(process.env.BENCH_MS ?? '500');
const V2_LAYOUT = aeadLayout({ aadOffset: 0, aadLength: 8, nonceOffset: 4, nonceLength: 4, tagOffset: 8, payloadOffset: 24 });

type NodeAeadName = 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';

interface CipherCase {
  name: AeadCipherName;
  node: NodeAeadName;
  keyLength: number;
}

const CIPHERS: readonly CipherCase[] = [
  { name: 'AES-256-GCM', node: 'aes-256-gcm', keyLength: 32 },
  { name: 'AES-128-GCM', node: 'aes-128-gcm', keyLength: 16 },
  { name: 'CHACHA20-POLY1305', node: 'chacha20-poly1305', keyLength: 32 },
];

/** The slice of sodium-native used here (it ships no type declarations). */
interface SodiumAead {
  crypto_aead_chacha20poly1305_ietf_encrypt(
    c: Uint8Array,
    m: Uint8Array,
    ad: Uint8Array | null,
    nsec: null,
    npub: Uint8Array,
    k: Uint8Array,
  ): number;
  crypto_aead_chacha20poly1305_ietf_decrypt(
    m: Uint8Array,
    nsec: null,
    c: Uint8Array,
    ad: Uint8Array | null,
    npub: Uint8Array,
    k: Uint8Array,
  ): number;
  crypto_aead_aes256gcm_is_available?: () => boolean;
  crypto_aead_aes256gcm_encrypt?: SodiumAead['crypto_aead_chacha20poly1305_ietf_encrypt'];
  crypto_aead_aes256gcm_decrypt?: SodiumAead['crypto_aead_chacha20poly1305_ietf_decrypt'];
}

// eslint-disable-next-line @typescript-eslint/no-require-imports -- a native module (no ES import)
const sodium = require('sodium-native') as SodiumAead;

/** One contender: each call handles BATCH packets; sample() seals one packet for a cross-check. */
interface Contender extends SealContender {
  /** tag || ciphertext of the fixed plaintext sealed under `packetId`. */
  sample(packetId: number): string;
}

interface Material {
  key: Buffer;
  implicitIv: Buffer;
  plaintext: Buffer;
}

function header(packetId: number): Buffer {
  const bytes = Buffer.from([(9 << 3) | 0, 0x00, 0x00, 0x01, 0, 0, 0, 0]); // P_DATA_V2 key_id 0 peer-id 1
  bytes.writeUInt32BE(packetId, 4);
  return bytes;
}

class AddonContender implements Contender {
  private readonly key: AeadKey;
  private readonly batch = PacketBatch.allocate(BATCH, WIRE);
  private readonly view: DataView;
  private readonly results = new Uint8Array(BATCH);
  private packetId = 0;

  constructor(
    cipher: CipherCase,
    private readonly material: Material,
    preferEvp = false,
  ) {
    const direction = { key: material.key, implicitIv: material.implicitIv };
    this.key = new AeadKey(cipher.name, direction, direction, { preferEvp });
    for (let i = 0; i < BATCH; i++) this.batch.set(i, Buffer.concat([header(0), Buffer.alloc(TAG), material.plaintext]));
    this.view = new DataView(this.batch.memory.buffer, this.batch.memory.byteOffset, this.batch.memory.byteLength);
  }

  seal(): void {
    const offsets = this.batch.offsets;
    for (let i = 0; i < BATCH; i++) this.view.setUint32(offsets[i] + 4, ++this.packetId);
    this.key.seal(this.batch, BATCH, V2_LAYOUT);
  }

  roundTrip(): void {
    this.seal();
    if (this.key.open(this.batch, BATCH, V2_LAYOUT, this.results) !== 0) throw new Error('addon: open failed');
  }

  get implementation(): string {
    return this.key.implementation;
  }

  sample(packetId: number): string {
    const batch = PacketBatch.allocate(1, WIRE);
    batch.set(0, Buffer.concat([header(packetId), Buffer.alloc(TAG), this.material.plaintext]));
    this.key.seal(batch, 1, V2_LAYOUT);
    return Buffer.from(batch.packet(0)).subarray(HEADER).toString('hex');
  }
}

function nodeCipher(name: NodeAeadName, key: Buffer, nonce: Buffer): CipherGCM | CipherChaCha20Poly1305 {
  return name === 'chacha20-poly1305'
    ? createCipheriv(name, key, nonce, { authTagLength: TAG })
    : createCipheriv(name, key, nonce, { authTagLength: TAG });
}

function nodeDecipher(name: NodeAeadName, key: Buffer, nonce: Buffer): DecipherGCM | DecipherChaCha20Poly1305 {
  return name === 'chacha20-poly1305'
    ? createDecipheriv(name, key, nonce, { authTagLength: TAG })
    : createDecipheriv(name, key, nonce, { authTagLength: TAG });
}

/** What a pure node:crypto data channel does: a cipher object per packet, output copied into the wire packet. */
class NodeCryptoContender implements Contender {
  private readonly wire = Array.from({ length: BATCH }, () => Buffer.alloc(WIRE));
  private readonly aad = this.wire.map((w) => w.subarray(0, HEADER));
  private readonly tag = this.wire.map((w) => w.subarray(HEADER, HEADER + TAG));
  private readonly ciphertext = this.wire.map((w) => w.subarray(HEADER + TAG));
  private readonly nonce = Buffer.alloc(12);
  private readonly opened = Buffer.alloc(PAYLOAD);
  private packetId = 0;

  constructor(
    private readonly cipher: CipherCase,
    private readonly material: Material,
  ) {
    for (const w of this.wire) header(0).copy(w);
    material.implicitIv.copy(this.nonce, 4);
  }

  private sealOne(i: number, packetId: number): void {
    const wire = this.wire[i];
    wire.writeUInt32BE(packetId, 4);
    this.nonce.writeUInt32BE(packetId, 0);
    const c = nodeCipher(this.cipher.node, this.material.key, this.nonce);
    c.setAAD(this.aad[i], { plaintextLength: PAYLOAD });
    c.update(this.material.plaintext).copy(wire, HEADER + TAG);
    c.final();
    c.getAuthTag().copy(wire, HEADER);
  }

  private openOne(i: number): void {
    this.wire[i].copy(this.nonce, 0, 4, 8);
    const d = nodeDecipher(this.cipher.node, this.material.key, this.nonce);
    d.setAAD(this.aad[i], { plaintextLength: PAYLOAD });
    d.setAuthTag(this.tag[i]);
    d.update(this.ciphertext[i]).copy(this.opened);
    d.final(); // throws when not authentic
  }

  seal(): void {
    for (let i = 0; i < BATCH; i++) this.sealOne(i, ++this.packetId);
  }

  roundTrip(): void {
    for (let i = 0; i < BATCH; i++) {
      this.sealOne(i, ++this.packetId);
      this.openOne(i);
    }
  }

  sample(packetId: number): string {
    this.sealOne(0, packetId);
    return this.wire[0].subarray(HEADER).toString('hex');
  }
}

/** sodium-native's combined mode: ciphertext || tag into a preallocated buffer per packet. */
class SodiumContender implements Contender {
  private readonly aad = Array.from({ length: BATCH }, () => header(0));
  private readonly sealed = Array.from({ length: BATCH }, () => Buffer.alloc(PAYLOAD + TAG));
  private readonly nonce = Buffer.alloc(12);
  private readonly opened = Buffer.alloc(PAYLOAD);
  private packetId = 0;

  constructor(
    private readonly encrypt: SodiumAead['crypto_aead_chacha20poly1305_ietf_encrypt'],
    private readonly decrypt: SodiumAead['crypto_aead_chacha20poly1305_ietf_decrypt'],
    private readonly material: Material,
  ) {
    material.implicitIv.copy(this.nonce, 4);
  }

  private sealOne(i: number, packetId: number): void {
    this.aad[i].writeUInt32BE(packetId, 4);
    this.nonce.writeUInt32BE(packetId, 0);
    this.encrypt(this.sealed[i], this.material.plaintext, this.aad[i], null, this.nonce, this.material.key);
  }

  seal(): void {
    for (let i = 0; i < BATCH; i++) this.sealOne(i, ++this.packetId);
  }

  roundTrip(): void {
    for (let i = 0; i < BATCH; i++) {
      this.sealOne(i, ++this.packetId);
      this.decrypt(this.opened, null, this.sealed[i], this.aad[i], this.nonce, this.material.key); // throws when not authentic
    }
  }

  sample(packetId: number): string {
    this.sealOne(0, packetId);
    const out = this.sealed[0];
    return Buffer.concat([out.subarray(PAYLOAD), out.subarray(0, PAYLOAD)]).toString('hex');
  }
}

function sodiumFor(cipher: CipherCase, material: Material): Contender | null {
  if (cipher.name === 'CHACHA20-POLY1305') {
    return new SodiumContender(
      sodium.crypto_aead_chacha20poly1305_ietf_encrypt,
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt,
      material,
    );
  }
  // libsodium's AES-256-GCM needs AES-NI + PCLMUL, and sodium-native does not always export it.
  const available = sodium.crypto_aead_aes256gcm_is_available?.() ?? false;
  if (cipher.name === 'AES-256-GCM' && available && sodium.crypto_aead_aes256gcm_encrypt && sodium.crypto_aead_aes256gcm_decrypt) {
    return new SodiumContender(sodium.crypto_aead_aes256gcm_encrypt, sodium.crypto_aead_aes256gcm_decrypt, material);
  }
  return null;
}

interface Row {
  cipher: AeadCipherName;
  mode: SealMode;
  implementation: string;
  addon: number;
  /** The addon on EVP, where its default is not (ChaCha20-Poly1305 on OpenSSL's cores). */
  evp: number | null;
  node: number;
  sodium: number | null;
  addonOverEvp: number | null;
  addonOverNode: number;
  addonOverSodium: number | null;
}

function benchCipher(cipher: CipherCase, runs: number): Row[] {
  const material: Material = { key: randomBytes(cipher.keyLength), implicitIv: randomBytes(8), plaintext: randomBytes(PAYLOAD) };
  const addon = new AddonContender(cipher, material);
  const node = new NodeCryptoContender(cipher, material);
  const sodiumContender = sodiumFor(cipher, material);
  const evp = addon.implementation === 'evp' ? null : new AddonContender(cipher, material, true);
  const contenders: (readonly [string, Contender])[] = [
    ['addon', addon],
    ['node', node],
  ];
  if (evp) contenders.push(['evp', evp]);
  if (sodiumContender) contenders.push(['sodium', sodiumContender]);

  // All contenders must produce the same bytes, or the comparison means nothing.
  const reference = addon.sample(0x01020304);
  for (const [name, contender] of contenders) {
    if (contender.sample(0x01020304) !== reference) throw new Error(`${cipher.name}: ${name} disagrees with the addon`);
  }

  const series = sealRates(contenders, runs, BATCH, MEASURE_MS, false);
  // Ratios per run (neighbours in time) resist this shared machine's drift better than a ratio of medians.
  const ratioOf = (name: string, mode: SealMode): number => {
    const ours = series('addon', mode);
    return median(series(name, mode).map((theirs, run) => ours[run] / theirs));
  };
  return SEAL_MODES.map((mode) => ({
    cipher: cipher.name,
    mode,
    implementation: addon.implementation,
    addon: median(series('addon', mode)),
    evp: evp ? median(series('evp', mode)) : null,
    node: median(series('node', mode)),
    sodium: sodiumContender ? median(series('sodium', mode)) : null,
    addonOverEvp: evp ? ratioOf('evp', mode) : null,
    addonOverNode: ratioOf('node', mode),
    addonOverSodium: sodiumContender ? ratioOf('sodium', mode) : null,
  }));
}

export function runAeadBench(): void {
  const runs = benchRuns();
  console.log(
    `AEAD, ${PAYLOAD}-byte payloads (${WIRE}-byte P_DATA_V2 packets), one core, median of ${runs} runs of ~${MEASURE_MS} ms each`,
  );
  const rows: Row[] = [];
  for (const cipher of CIPHERS) rows.push(...benchCipher(cipher, runs));

  const ratio = (value: number | null): string => (value === null ? 'n/a' : `${value.toFixed(2)}x`);
  const micros = (rate: number): string => `${(1e6 / rate).toFixed(2)}`;
  printTable(
    'packets/s, median (us per packet); ratios: median of per-run ratios',
    [
      'cipher',
      'mode',
      `addon batch ${BATCH}`,
      'addon on',
      'addon EVP',
      'node:crypto per packet',
      'sodium-native',
      'addon/EVP',
      'addon/node:crypto',
      'addon/sodium',
    ],
    rows.map((r) => [
      r.cipher,
      r.mode,
      `${formatRate(r.addon)} (${micros(r.addon)})`,
      r.implementation,
      r.evp === null ? 'n/a' : `${formatRate(r.evp)} (${micros(r.evp)})`,
      `${formatRate(r.node)} (${micros(r.node)})`,
      r.sodium === null ? 'n/a' : `${formatRate(r.sodium)} (${micros(r.sodium)})`,
      ratio(r.addonOverEvp),
      ratio(r.addonOverNode),
      ratio(r.addonOverSodium),
    ]),
  );
  const target = rows.find((r) => r.cipher === 'AES-256-GCM' && r.mode === 'seal');
  if (target) {
    const factor = target.addonOverNode;
    console.log(
      `\ntarget: addon AES-256-GCM seal >= 8x node:crypto per-packet objects: ${factor.toFixed(2)}x, ${factor >= 8 ? 'met' : 'NOT met'}`,
    );
  }
}

if (require.main === module) runAeadBench();
