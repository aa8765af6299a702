// The whole data channel on one core, 1400-byte payloads in batches of 32: DataChannelKey
// encrypt (packet-id, P_DATA_V2 header, AEAD seal) and decrypt (header checks, AEAD open,
// replay window) against the bare addon AEAD (AeadKey.seal/open on the same layout, only the
// packet-id written per packet). Contenders interleaved within every run, medians over
// BENCH_RUNS runs. Target: the protocol layer costs at most 1.5x the bare AEAD.
// Run: node dist/bench/datachannel.bench.js
import { randomBytes } from 'node:crypto';

import { AeadKey, PacketBatch, aeadLayout } from '../src/shared/native';
import type { AeadCipherName } from '../src/shared/native';
import { DATA_V2_HEADROOM, DataChannelKey, DecryptResults } from '../src/shared/protocol/data-channel';
import { KEY_BLOCK_SIZE, sliceAeadKeys } from '../src/shared/protocol/key-derivation';
import { benchRuns, formatRate, median, printTable, sealRates, SEAL_MODES, type SealContender, type SealMode } from './lib';

const PAYLOAD = 1400;
const WIRE = PAYLOAD + DATA_V2_HEADROOM;
const BATCH = 32;
const PEER_ID = 1;
const MEASURE_MS = Number(process.env.BENCH_MS ?? '500');
const TARGET = 1.5;
const V2_LAYOUT = aeadLayout({ aadOffset: 0, aadLength: 8, nonceOffset: 4, nonceLength: 4, tagOffset: 8, payloadOffset: DATA_V2_HEADROOM });

const CIPHERS: readonly { name: AeadCipherName; keyLength: number }[] = [
  { name: 'AES-256-GCM', keyLength: 32 },
  { name: 'AES-128-GCM', keyLength: 16 },
  { name: 'CHACHA20-POLY1305', keyLength: 32 },
];

/** Client key seals, server key opens: what two peers do, on one core. */
class ProtocolContender implements SealContender {
  private readonly batch = PacketBatch.allocate(BATCH, WIRE);
  private readonly results = new DecryptResults(BATCH);
  private readonly sender: DataChannelKey;
  private readonly receiver: DataChannelKey;

  constructor(cipher: AeadCipherName, block: Buffer, plaintext: Buffer) {
    this.sender = DataChannelKey.fromKeyBlock(block, 'client', cipher, 0, { peerId: PEER_ID });
    this.receiver = DataChannelKey.fromKeyBlock(block, 'server', cipher, 0, { peerId: PEER_ID });
    for (let i = 0; i < BATCH; i++) this.batch.memory.set(plaintext, this.batch.offsets[i]! + DATA_V2_HEADROOM);
  }

  seal(): void {
    // The caller hands over plaintext lengths; encrypt grows them by the headroom.
    this.batch.lengths.fill(PAYLOAD);
    if (this.sender.encrypt(this.batch, BATCH) !== BATCH) throw new Error('protocol: encrypt refused');
  }

  roundTrip(): void {
    this.seal();
    if (this.receiver.decrypt(this.batch, BATCH, Date.now(), this.results) !== BATCH)
      throw new Error(`protocol: decrypt refused (${this.results.reason(0)})`);
  }

  /** One packet sealed with packet-id 1 by a fresh key (for the cross-check). */
  static sample(cipher: AeadCipherName, block: Buffer, plaintext: Buffer): string {
    const key = DataChannelKey.fromKeyBlock(block, 'client', cipher, 0, { peerId: PEER_ID });
    const b = PacketBatch.allocate(1, WIRE);
    b.memory.set(plaintext, DATA_V2_HEADROOM);
    b.lengths[0] = PAYLOAD;
    key.encrypt(b, 1);
    key.destroy();
    return Buffer.from(b.packet(0)).toString('hex');
  }
}

/** The addon alone: headers written once, only the packet-id per packet; one key both ways. */
class BareContender implements SealContender {
  private readonly batch = PacketBatch.allocate(BATCH, WIRE);
  private readonly opened = new Uint8Array(BATCH);
  private readonly view: DataView;
  private readonly key: AeadKey;
  private packetId = 0;

  constructor(cipher: AeadCipherName, block: Buffer, plaintext: Buffer, keyLength: number) {
    const s = sliceAeadKeys(block, 'client', keyLength);
    const direction = { key: s.encryptKey, implicitIv: s.encryptImplicitIv };
    this.key = new AeadKey(cipher, direction, direction);
    for (let i = 0; i < BATCH; i++) this.batch.set(i, Buffer.concat([header(0), Buffer.alloc(16), plaintext]));
    this.view = new DataView(this.batch.memory.buffer, this.batch.memory.byteOffset, this.batch.memory.byteLength);
  }

  seal(): void {
    const offsets = this.batch.offsets;
    for (let i = 0; i < BATCH; i++) this.view.setUint32(offsets[i]! + 4, ++this.packetId);
    this.key.seal(this.batch, BATCH, V2_LAYOUT);
  }

  roundTrip(): void {
    this.seal();
    if (this.key.open(this.batch, BATCH, V2_LAYOUT, this.opened) !== 0) throw new Error('bare: open failed');
  }

  static sample(cipher: AeadCipherName, block: Buffer, plaintext: Buffer, keyLength: number): string {
    const s = sliceAeadKeys(block, 'client', keyLength);
    const key = new AeadKey(cipher, { key: s.encryptKey, implicitIv: s.encryptImplicitIv }, null);
    const b = PacketBatch.allocate(1, WIRE);
    b.set(0, Buffer.concat([header(1), Buffer.alloc(16), plaintext]));
    key.seal(b, 1, V2_LAYOUT);
    key.destroy();
    return Buffer.from(b.packet(0)).toString('hex');
  }
}

function header(packetId: number): Buffer {
  const bytes = Buffer.from([(9 << 3) | 0, 0x00, 0x00, PEER_ID, 0, 0, 0, 0]); // P_DATA_V2 key_id 0
  bytes.writeUInt32BE(packetId, 4);
  return bytes;
}

interface Row {
  cipher: AeadCipherName;
  mode: SealMode;
  protocol: number;
  bare: number;
  /** Median over runs of bare/protocol: the protocol layer's cost factor. */
  cost: number;
}

function benchCipher(cipher: (typeof CIPHERS)[number], runs: number): Row[] {
  const block = randomBytes(KEY_BLOCK_SIZE);
  const plaintext = randomBytes(PAYLOAD);
  // Same bytes from both, or the comparison means nothing.
  if (ProtocolContender.sample(cipher.name, block, plaintext) !== BareContender.sample(cipher.name, block, plaintext, cipher.keyLength)) {
    throw new Error(`${cipher.name}: DataChannelKey and the bare addon disagree`);
  }
  const contenders: (readonly [string, SealContender])[] = [
    ['protocol', new ProtocolContender(cipher.name, block, plaintext)],
    ['bare', new BareContender(cipher.name, block, plaintext, cipher.keyLength)],
  ];
  const series = sealRates(contenders, runs, BATCH, MEASURE_MS, true);
  return SEAL_MODES.map((mode) => {
    const p = series('protocol', mode);
    return {
      cipher: cipher.name,
      mode,
      protocol: median(p),
      bare: median(series('bare', mode)),
      cost: median(series('bare', mode).map((b, run) => b / p[run]!)),
    };
  });
}

export function runDataChannelBench(): boolean {
  const runs = benchRuns();
  console.log(
    `Data channel, ${PAYLOAD}-byte payloads (${WIRE}-byte P_DATA_V2 packets), batches of ${BATCH}, one core, median of ${runs} runs of ~${MEASURE_MS} ms each`,
  );
  const rows: Row[] = [];
  for (const cipher of CIPHERS) rows.push(...benchCipher(cipher, runs));
  const micros = (rate: number): string => (1e6 / rate).toFixed(2);
  printTable(
    'packets/s, median (us per packet); cost: median of per-run bare/protocol',
    ['cipher', 'mode', 'DataChannelKey', 'bare AeadKey', 'protocol overhead us/pkt', 'cost (bare/protocol)', `<= ${TARGET}x`],
    rows.map((r) => [
      r.cipher,
      r.mode,
      `${formatRate(r.protocol)} (${micros(r.protocol)})`,
      `${formatRate(r.bare)} (${micros(r.bare)})`,
      (1e6 / r.protocol - 1e6 / r.bare).toFixed(3),
      `${r.cost.toFixed(2)}x`,
      r.cost <= TARGET ? 'met' : 'NOT met',
    ]),
  );
  const met = rows.every((r) => r.cost <= TARGET);
  console.log(`\ntarget: DataChannelKey packets/s >= bare AEAD / ${TARGET} for every cipher and mode: ${met ? 'met' : 'NOT met'}`);
  return met;
}

if (require.main === module) runDataChannelBench();
