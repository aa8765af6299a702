// The OpenVPN 2.6 data channel for one key_state (crypto.c openvpn_encrypt / openvpn_decrypt,
// ssl.c tls_prepend_opcode_v1/v2, handle_data_channel_packet; wire doc 6): AEAD ciphers, and
// CBC + HMAC for older peers. The packet layouts are in data-format.ts.
//
// Batches are sealed and opened in place by the native addon; this file only writes headers
// and packet-ids and keeps the packet-id state and counters. Nothing here allocates per packet.

import type { AeadCipherName, PacketBatch } from '../native';
import {
  dataFormat,
  dataKeyLength,
  digestLength,
  isCbcCipher,
  type DataCipherName,
  type DataFormat,
  type DataKeySlices,
} from './data-format';
import { checkKeyBlock, sliceAeadKeys, sliceCbcKeys } from './key-derivation';
import { P_DATA_V1, P_DATA_V2, P_KEY_ID_MASK, P_OPCODE_SHIFT, MAX_PEER_ID } from './opcodes';
import { DEFAULT_SEQ_BACKTRACK, DEFAULT_TIME_BACKTRACK_S, PacketIdRec, PacketIdSend } from './packet-id';

export {
  AEAD_TAG_LENGTH,
  DATA_V1_HEADROOM,
  DATA_V2_HEADROOM,
  MAX_DATA_HEADROOM,
  MAX_DATA_TAILROOM,
  type DataCipherName,
} from './data-format';

/** Why a received data packet was dropped. Status code in DecryptResults = index + 1. */
export const DATA_DROP_REASONS = ['short', 'not-data', 'bad-key-id', 'bad-tag', 'replay'] as const;
export type DataDropReason = (typeof DATA_DROP_REASONS)[number];
export const DATA_OK = 0;
const ST_SHORT = 1;
const ST_NOT_DATA = 2;
const ST_BAD_KEY_ID = 3;
const ST_BAD_TAG = 4;
const ST_REPLAY = 5;

/** Drops by reason; one object may be shared by all keys of a session or a shard. */
export interface DataChannelCounters {
  drops: Record<DataDropReason, number>;
  /** Outgoing packets not sent because the packet-id ran out (renegotiation came too late). */
  packetIdExhausted: number;
}

export function newDataChannelCounters(): DataChannelCounters {
  return { drops: { short: 0, 'not-data': 0, 'bad-key-id': 0, 'bad-tag': 0, replay: 0 }, packetIdExhausted: 0 };
}

/**
 * Per-packet outcome of DataChannelKey.decrypt, in preallocated arrays. For status[i] ===
 * DATA_OK the plaintext is memory[payloadOffsets[i] .. + payloadLengths[i]) of the batch.
 */
export class DecryptResults {
  readonly status: Uint8Array;
  readonly payloadOffsets: Uint32Array;
  readonly payloadLengths: Uint32Array;

  constructor(readonly capacity: number) {
    this.status = new Uint8Array(capacity);
    this.payloadOffsets = new Uint32Array(capacity);
    this.payloadLengths = new Uint32Array(capacity);
  }

  ok(i: number): boolean {
    return this.status[i] === DATA_OK;
  }

  /** The drop reason of packet i, or null when it was accepted. */
  reason(i: number): DataDropReason | null {
    const s = this.status[i]!;
    return s === DATA_OK ? null : DATA_DROP_REASONS[s - 1]!;
  }
}

/** Traffic on one key (ks->n_bytes / n_packets feed reneg-bytes / reneg-pkts). */
export interface DataChannelTraffic {
  sentPackets: number;
  /** Wire bytes of sent data packets, headers included. */
  sentBytes: number;
  /** Authenticated received packets only, so forged traffic cannot force a renegotiation. */
  receivedPackets: number;
  receivedBytes: number;
}

export interface DataChannelKeyOptions {
  cipher: DataCipherName;
  /** `auth` digest of a CBC cipher (default SHA1, OpenVPN's; null: `auth none`); AEAD ignores it. */
  auth?: string | null;
  /** key_id 0..7 of the key_state these keys belong to. */
  keyId: number;
  /** Our encrypt/decrypt keys (key-derivation.ts sliceAeadKeys or sliceCbcKeys). */
  slices: DataKeySlices;
  /** Peer-id to send in P_DATA_V2; null sends P_DATA_V1 (no peer-id negotiated). */
  peerId?: number | null;
  /** --replay-window n t (default 64 15). */
  replayWindow?: number;
  replayWindowTimeS?: number;
  counters?: DataChannelCounters;
  /** Send packet-id to start after (tests of the wrap trigger); default 0, so the first is 1. */
  initialSendPacketId?: number;
}

/** Key length of each AEAD data cipher. */
export function aeadKeyLength(cipher: AeadCipherName): number {
  return dataKeyLength(cipher);
}

/** OpenVPN's default `auth`, used by CBC ciphers. */
export const DEFAULT_AUTH = 'SHA1';

// Scratch shared by all keys: decrypt is synchronous and a worker runs one loop.
let savedLengths = new Uint32Array(0);
/** Lengths after opening (CBC strips its padding). */
let openedLengths = new Uint32Array(0);
let kinds = new Uint8Array(0);
let opened = new Uint8Array(0);

function ensureScratch(n: number): void {
  if (savedLengths.length >= n) return;
  const size = Math.max(n, 2 * savedLengths.length, 64);
  savedLengths = new Uint32Array(size);
  openedLengths = new Uint32Array(size);
  kinds = new Uint8Array(size);
  opened = new Uint8Array(size);
}

const KIND_NONE = 0;
const KIND_V1 = 1;
const KIND_V2 = 2;

/**
 * The data-channel state of one key_state: the cipher contexts (both directions), the send
 * packet-id and the receive replay window. The native context copies the key bytes, so the
 * caller may wipe the key block after construction.
 */
export class DataChannelKey {
  readonly cipher: DataCipherName;
  readonly keyId: number;
  readonly counters: DataChannelCounters;
  readonly traffic: DataChannelTraffic = { sentPackets: 0, sentBytes: 0, receivedPackets: 0, receivedBytes: 0 };
  private readonly format: DataFormat;
  private readonly sendId: PacketIdSend;
  private readonly replay: PacketIdRec;
  private peerIdValue: number | null;

  constructor(options: DataChannelKeyOptions) {
    const { cipher, keyId, slices } = options;
    if (!Number.isInteger(keyId) || keyId < 0 || keyId > P_KEY_ID_MASK) throw new RangeError(`key_id ${keyId} is not 0..7`);
    const keyLen = dataKeyLength(cipher);
    if (slices.encryptKey.length !== keyLen || slices.decryptKey.length !== keyLen) {
      throw new RangeError(`${cipher} needs ${keyLen}-byte keys`);
    }
    this.cipher = cipher;
    this.keyId = keyId;
    this.counters = options.counters ?? newDataChannelCounters();
    this.peerIdValue = null;
    this.sendId = new PacketIdSend(false, options.initialSendPacketId ?? 0);
    this.setPeerId(options.peerId ?? null);
    this.replay = new PacketIdRec(options.replayWindow ?? DEFAULT_SEQ_BACKTRACK, options.replayWindowTimeS ?? DEFAULT_TIME_BACKTRACK_S);
    this.format = dataFormat(cipher, options.auth === undefined ? DEFAULT_AUTH : options.auth, slices);
  }

  /**
   * From a 256-byte key block (TLS-EKM or PRF) and our role; refuses an all-zero cipher key
   * like crypto.c check_key.
   */
  static fromKeyBlock(
    block: Buffer,
    role: 'client' | 'server',
    cipher: DataCipherName,
    keyId: number,
    options: Omit<DataChannelKeyOptions, 'cipher' | 'keyId' | 'slices'> = {},
  ): DataChannelKey {
    const keyLen = dataKeyLength(cipher);
    if (!checkKeyBlock(block, keyLen)) throw new Error('data channel key block has an all-zero cipher key; renegotiate');
    const slices = isCbcCipher(cipher)
      ? sliceCbcKeys(block, role, keyLen, digestLength(options.auth === undefined ? DEFAULT_AUTH : options.auth))
      : sliceAeadKeys(block, role, keyLen);
    return new DataChannelKey({ ...options, cipher, keyId, slices });
  }

  /** Peer-id sent in P_DATA_V2, or null while sending P_DATA_V1. */
  get peerId(): number | null {
    return this.peerIdValue;
  }

  /** Switches the send format: a number sends P_DATA_V2 with it, null sends P_DATA_V1. */
  setPeerId(peerId: number | null): void {
    if (peerId !== null && (!Number.isInteger(peerId) || peerId < 0 || peerId > MAX_PEER_ID)) {
      throw new RangeError(`peer-id ${peerId} is not 24-bit`);
    }
    this.peerIdValue = peerId;
  }

  /** Bytes the sender needs in front of each plaintext (AEAD: 24 for P_DATA_V2, 21 for V1). */
  get headroom(): number {
    return this.format.headroom(this.peerIdValue !== null);
  }

  /**
   * Encrypts `count` packets in place. On entry packet i's plaintext is at
   * memory[offsets[i] + headroom ..] with length lengths[i] (headroom = this.headroom); on
   * return the whole data packet starts at offsets[i] and lengths[i] grew by headroom (and by
   * CBC padding, up to one block, which the batch capacity must leave room for).
   * Returns how many packets (a prefix) were sealed: fewer than `count` only when the
   * packet-id is exhausted, and those are counted in counters.packetIdExhausted.
   */
  encrypt(batch: PacketBatch, count: number): number {
    if (count > batch.size) throw new RangeError(`count ${count} exceeds the batch size ${batch.size}`);
    const memory = batch.memory;
    const offsets = batch.offsets;
    const lengths = batch.lengths;
    const v2 = this.peerIdValue !== null;
    const format = this.format;
    const headroom = format.headroom(v2);
    const pidAt = format.packetIdOffset(v2);
    const peerId = this.peerIdValue ?? 0;
    let sealed = 0;
    for (; sealed < count; sealed++) {
      const length = lengths[sealed]! + headroom;
      if (length + format.tailroom > batch.capacity) {
        throw new RangeError(`packet ${sealed}: ${length} bytes with headroom and padding exceed the slot capacity ${batch.capacity}`);
      }
      const next = this.sendId.next(0);
      if (next === null) break;
      const id = next.id;
      const at = offsets[sealed]!;
      if (v2) {
        memory[at] = (P_DATA_V2 << P_OPCODE_SHIFT) | this.keyId;
        memory[at + 1] = peerId >>> 16;
        memory[at + 2] = (peerId >>> 8) & 0xff;
        memory[at + 3] = peerId & 0xff;
      } else {
        memory[at] = (P_DATA_V1 << P_OPCODE_SHIFT) | this.keyId;
      }
      const p = at + pidAt;
      memory[p] = id >>> 24;
      memory[p + 1] = (id >>> 16) & 0xff;
      memory[p + 2] = (id >>> 8) & 0xff;
      memory[p + 3] = id & 0xff;
      lengths[sealed] = length;
    }
    if (sealed < count) this.counters.packetIdExhausted += count - sealed;
    if (sealed > 0) format.seal(batch, sealed, v2);
    let bytes = 0;
    // Counted after sealing: CBC padding is part of the wire bytes.
    for (let i = 0; i < sealed; i++) bytes += lengths[i]!;
    this.traffic.sentPackets += sealed;
    this.traffic.sentBytes += bytes;
    return sealed;
  }

  /**
   * Authenticates and decrypts `count` received data packets (P_DATA_V1 or V2, whole
   * datagrams at offsets[i], lengths[i]) in place, then checks each packet-id against the
   * replay window (only after authentication, as OpenVPN does). Fills `results` and the
   * drop counters; returns how many packets were accepted. The peer-id of a V2 packet is not
   * checked here: the caller picked this key by it. `now` is in ms (replay window ageing).
   */
  decrypt(batch: PacketBatch, count: number, now: number, results: DecryptResults): number {
    if (count > batch.size) throw new RangeError(`count ${count} exceeds the batch size ${batch.size}`);
    if (count > results.capacity) throw new RangeError(`count ${count} exceeds the results capacity ${results.capacity}`);
    ensureScratch(count);
    const memory = batch.memory;
    const offsets = batch.offsets;
    const lengths = batch.lengths;
    const status = results.status;
    const drops = this.counters.drops;
    let v1 = 0;
    let v2 = 0;
    let invalid = 0;
    for (let i = 0; i < count; i++) {
      const length = lengths[i]!;
      savedLengths[i] = length;
      kinds[i] = KIND_NONE;
      if (length === 0) {
        status[i] = ST_SHORT;
        invalid++;
        continue;
      }
      const byte0 = memory[offsets[i]!]!;
      const op = byte0 >>> P_OPCODE_SHIFT;
      if (op !== P_DATA_V2 && op !== P_DATA_V1) {
        status[i] = ST_NOT_DATA;
      } else if ((byte0 & P_KEY_ID_MASK) !== this.keyId) {
        status[i] = ST_BAD_KEY_ID;
      } else if (length < this.format.minLength(op === P_DATA_V2)) {
        status[i] = ST_SHORT;
      } else {
        status[i] = DATA_OK;
        if (op === P_DATA_V2) {
          kinds[i] = KIND_V2;
          v2++;
        } else {
          kinds[i] = KIND_V1;
          v1++;
        }
        continue;
      }
      invalid++;
    }

    if (v2 > 0) this.openKind(batch, count, KIND_V2, invalid > 0 || v1 > 0, status);
    if (v1 > 0) this.openKind(batch, count, KIND_V1, invalid > 0 || v2 > 0, status);
    for (let i = 0; i < count; i++) lengths[i] = savedLengths[i]!;

    let accepted = 0;
    let bytes = 0;
    const replay = this.replay;
    for (let i = 0; i < count; i++) {
      const s = status[i]!;
      if (s !== DATA_OK) {
        drops[DATA_DROP_REASONS[s - 1]!]++;
        continue;
      }
      const start = offsets[i]!;
      const isV2 = kinds[i] === KIND_V2;
      const headroom = this.format.headroom(isV2);
      const opened = openedLengths[i]!;
      // A CBC packet whose padding leaves no room for its packet-id is broken, like a bad HMAC.
      if (opened < headroom) {
        status[i] = ST_BAD_TAG;
        drops['bad-tag']++;
        continue;
      }
      const at = start + this.format.packetIdOffset(isV2);
      const id = ((memory[at]! << 24) | (memory[at + 1]! << 16) | (memory[at + 2]! << 8) | memory[at + 3]!) >>> 0;
      if (!replay.check(id, 0, now)) {
        status[i] = ST_REPLAY;
        drops.replay++;
        continue;
      }
      results.payloadOffsets[i] = start + headroom;
      results.payloadLengths[i] = opened - headroom;
      accepted++;
      bytes += savedLengths[i]!;
    }
    this.traffic.receivedPackets += accepted;
    this.traffic.receivedBytes += bytes;
    return accepted;
  }

  /**
   * Opens the packets of one format: the native call takes one layout, and it fails
   * zero-length packets without touching them, so packets of the other format (and invalid
   * ones) are hidden by length 0.
   */
  private openKind(batch: PacketBatch, count: number, kind: number, hide: boolean, status: Uint8Array): void {
    const lengths = batch.lengths;
    for (let i = 0; i < count; i++) lengths[i] = !hide || kinds[i] === kind ? savedLengths[i]! : 0;
    this.format.open(batch, count, kind === KIND_V2, opened);
    for (let i = 0; i < count; i++) {
      if (kinds[i] !== kind) continue;
      if (opened[i] !== 1) status[i] = ST_BAD_TAG;
      else openedLengths[i] = lengths[i]!;
    }
  }

  /** Last packet-id sent (0 before the first packet). */
  get sendPacketId(): number {
    return this.sendId.current;
  }

  /** Highest packet-id accepted from the peer. */
  get receivePacketId(): number {
    return this.replay.highest;
  }

  /** The send packet-id passed 0xFF000000: renegotiate now (ssl.c packet_id_close_to_wrapping). */
  closeToWrapping(): boolean {
    return this.sendId.closeToWrapping();
  }

  /**
   * Whether this key should be renegotiated: reneg-bytes / reneg-pkts (0 = off) counted over
   * both directions like ks->n_bytes / n_packets, or the packet-id close to wrapping.
   */
  renegotiationDue(renegBytes: number, renegPackets: number): boolean {
    const t = this.traffic;
    if (renegBytes > 0 && t.sentBytes + t.receivedBytes >= renegBytes) return true;
    if (renegPackets > 0 && t.sentPackets + t.receivedPackets >= renegPackets) return true;
    return this.closeToWrapping();
  }

  /** Wipes the native key contexts now (also done at garbage collection). */
  destroy(): void {
    this.format.destroy();
  }
}
