// Where the crypto fields of a data packet sit, for each data-channel cipher family, and the
// native context that seals and opens them (wire doc 6; crypto.c openvpn_encrypt_aead /
// openvpn_encrypt_v1 and their decrypt twins). DataChannelKey writes the opcode, peer-id and
// packet-id and keeps the replay state; a DataFormat only knows the layout after the opcode.
//
//   AEAD  P_DATA_V2: [op|key_id][peer-id 3][packet-id 4][tag 16][ciphertext]       AAD = bytes 0..8
//         P_DATA_V1: [op|key_id][packet-id 4][tag 16][ciphertext]                  AAD = packet-id
//   CBC   P_DATA_V2: [op|key_id][peer-id 3][HMAC][IV][ E(packet-id 4, payload, PKCS#7 pad) ]
//         P_DATA_V1: [op|key_id][HMAC][IV][ E(packet-id 4, payload, pad) ]   HMAC over IV+ciphertext
import { createHash } from 'node:crypto';

import { AeadKey, CbcHmacKey, aeadLayout, type AeadCipherName, type CbcCipherName, type PacketBatch } from '../native';
import type { AeadKeySlices, CbcKeySlices } from './key-derivation';

export const AEAD_TAG_LENGTH = 16;
export const PACKET_ID_LENGTH = 4;
const V2_HEADER = 4;
const V1_HEADER = 1;
/** Bytes in front of the plaintext of an AEAD P_DATA_V2 packet: op/peer-id 4 + packet-id 4 + tag 16. */
export const DATA_V2_HEADROOM = V2_HEADER + PACKET_ID_LENGTH + AEAD_TAG_LENGTH;
/** Bytes in front of the plaintext of an AEAD P_DATA_V1 packet: op 1 + packet-id 4 + tag 16. */
export const DATA_V1_HEADROOM = V1_HEADER + PACKET_ID_LENGTH + AEAD_TAG_LENGTH;
/** The largest CBC block (and IV): AES. */
const MAX_BLOCK = 16;
/** The largest HMAC OpenVPN offers (SHA512). */
const MAX_MAC = 64;
/** Headroom that fits every cipher and format (ring and batch slots reserve this much). */
export const MAX_DATA_HEADROOM = V2_HEADER + MAX_MAC + MAX_BLOCK + PACKET_ID_LENGTH;
/** Bytes a sealed packet may grow past its plaintext's end (CBC padding). */
export const MAX_DATA_TAILROOM = MAX_BLOCK;

export type CbcCipher = CbcCipherName;
export type DataCipherName = AeadCipherName | CbcCipherName;

const CBC_KEY_LENGTHS: Readonly<Record<CbcCipherName, number>> = { 'AES-128-CBC': 16, 'AES-192-CBC': 24, 'AES-256-CBC': 32, 'BF-CBC': 16 };

export function isCbcCipher(cipher: DataCipherName): cipher is CbcCipherName {
  return cipher.endsWith('-CBC');
}

/** Key length of each data cipher (BF-CBC: OpenVPN's 128-bit default). */
export function dataKeyLength(cipher: DataCipherName): number {
  if (isCbcCipher(cipher)) return CBC_KEY_LENGTHS[cipher];
  return cipher === 'AES-128-GCM' ? 16 : 32;
}

/** HMAC length of an `auth` digest (null: `auth none`); throws on a digest OpenSSL lacks. */
export function digestLength(digest: string | null): number {
  if (digest === null) return 0;
  try {
    return createHash(digest).digest().length;
  } catch {
    throw new RangeError(`OpenSSL has no digest '${digest}' for auth`);
  }
}

/** The cipher, auth and keysize fields of the OCC options string for a data cipher (options.c options_string). */
export function occCipherFields(cipher: DataCipherName, auth: string | null): { cipher: string; auth: string | null; keysize: number } {
  return { cipher, auth: isCbcCipher(cipher) ? auth : null, keysize: dataKeyLength(cipher) * 8 };
}

/** The layout and native context of one key's packets. */
export interface DataFormat {
  /** Bytes in front of the plaintext payload: header, crypto fields and packet-id. */
  headroom(v2: boolean): number;
  /** Where the 4-byte packet-id sits (in clear for AEAD, inside the ciphertext for CBC). */
  packetIdOffset(v2: boolean): number;
  /** Bytes a sealed packet may grow past its plaintext's end (CBC padding; 0 for AEAD). */
  readonly tailroom: number;
  /** The shortest packet that can hold at least one byte (AEAD) or one block (CBC). */
  minLength(v2: boolean): number;
  seal(batch: PacketBatch, count: number, v2: boolean): void;
  /** opened[i] = 1 when packet i is authentic; CBC also shrinks lengths[i] by the padding. */
  open(batch: PacketBatch, count: number, v2: boolean, opened: Uint8Array): void;
  destroy(): void;
}

const V2_LAYOUT = aeadLayout({ aadOffset: 0, aadLength: 8, nonceOffset: 4, nonceLength: 4, tagOffset: 8, payloadOffset: DATA_V2_HEADROOM });
const V1_LAYOUT = aeadLayout({ aadOffset: 1, aadLength: 4, nonceOffset: 1, nonceLength: 4, tagOffset: 5, payloadOffset: DATA_V1_HEADROOM });

class AeadFormat implements DataFormat {
  private readonly aead: AeadKey;
  readonly tailroom = 0;

  constructor(cipher: AeadCipherName, slices: AeadKeySlices) {
    this.aead = new AeadKey(
      cipher,
      { key: slices.encryptKey, implicitIv: slices.encryptImplicitIv },
      { key: slices.decryptKey, implicitIv: slices.decryptImplicitIv },
    );
  }
  headroom(v2: boolean): number {
    return v2 ? DATA_V2_HEADROOM : DATA_V1_HEADROOM;
  }
  packetIdOffset(v2: boolean): number {
    return v2 ? V2_HEADER : V1_HEADER;
  }
  minLength(v2: boolean): number {
    // openvpn_decrypt_aead: "missing payload" below one byte of ciphertext.
    return this.headroom(v2) + 1;
  }
  seal(batch: PacketBatch, count: number, v2: boolean): void {
    this.aead.seal(batch, count, v2 ? V2_LAYOUT : V1_LAYOUT);
  }
  open(batch: PacketBatch, count: number, v2: boolean, opened: Uint8Array): void {
    this.aead.open(batch, count, v2 ? V2_LAYOUT : V1_LAYOUT, opened);
  }
  destroy(): void {
    this.aead.destroy();
  }
}

class CbcFormat implements DataFormat {
  private readonly cbc: CbcHmacKey;
  /** HMAC + IV: the crypto fields between the header and the ciphertext. */
  private readonly fields: number;
  readonly tailroom: number;

  constructor(cipher: CbcCipherName, digest: string | null, slices: CbcKeySlices) {
    this.cbc = new CbcHmacKey(
      cipher,
      digest,
      { key: slices.encryptKey, hmacKey: slices.encryptHmacKey },
      { key: slices.decryptKey, hmacKey: slices.decryptHmacKey },
    );
    this.fields = this.cbc.macLength + this.cbc.ivLength;
    this.tailroom = this.cbc.blockSize;
  }
  headroom(v2: boolean): number {
    return (v2 ? V2_HEADER : V1_HEADER) + this.fields + PACKET_ID_LENGTH;
  }
  packetIdOffset(v2: boolean): number {
    return (v2 ? V2_HEADER : V1_HEADER) + this.fields;
  }
  minLength(v2: boolean): number {
    return (v2 ? V2_HEADER : V1_HEADER) + this.fields + this.cbc.blockSize;
  }
  seal(batch: PacketBatch, count: number, v2: boolean): void {
    this.cbc.seal(batch, count, v2 ? V2_HEADER : V1_HEADER);
  }
  open(batch: PacketBatch, count: number, v2: boolean, opened: Uint8Array): void {
    this.cbc.open(batch, count, v2 ? V2_HEADER : V1_HEADER, opened);
  }
  destroy(): void {
    this.cbc.destroy();
  }
}

export type DataKeySlices = AeadKeySlices | CbcKeySlices;

/** The format of `cipher` with its keys; `digest` is the CBC `auth` (ignored by AEAD ciphers). */
export function dataFormat(cipher: DataCipherName, digest: string | null, slices: DataKeySlices): DataFormat {
  if (isCbcCipher(cipher)) {
    if (!('encryptHmacKey' in slices)) throw new TypeError(`${cipher} needs CBC key slices (cipher and HMAC keys)`);
    return new CbcFormat(cipher, digest, slices);
  }
  if (!('encryptImplicitIv' in slices)) throw new TypeError(`${cipher} needs AEAD key slices (key and implicit IV)`);
  return new AeadFormat(cipher, slices);
}

/**
 * Why this process cannot run `cipher` (BF-CBC without OpenSSL's legacy provider), or null when
 * it can: asked of OpenSSL itself, since the providers Node loads vary by build.
 */
export function cipherUnavailable(cipher: DataCipherName): string | null {
  if (!isCbcCipher(cipher)) return null;
  try {
    new CbcHmacKey(cipher, null, null, null).destroy();
    return null;
  } catch (error) {
    return (error as Error).message.replace(/^CbcHmacKey: /, '');
  }
}
