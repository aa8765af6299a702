// tls-crypt and tls-crypt-v2 wrapping of control packets (tls_crypt.c, tls_crypt.h,
// doc/tls-crypt-v2.txt; wire doc 1.4.3, 2.3, 2.4). Wire layout:
//
//   off 0   opcode|key_id (1)          \
//   off 1   own session id (8)          | header: authenticated, clear
//   off 9   replay packet-id (4)        |
//   off 13  timestamp (4)              /
//   off 17  tag = HMAC-SHA256(Ka, header || plaintext) (32)
//   off 49  AES-256-CTR(Ke, IV = tag[0..16), plaintext)
//   [WKc]   tls-crypt-v2 only, on P_CONTROL_HARD_RESET_CLIENT_V3 and P_CONTROL_WKC_V1
//
// Input and output of wrap/unwrap is the unwrapped layout: opcode || sid || plaintext.

import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { constantTimeEqual, secureAlloc, secureCopy, secureRandom, wipe } from './key-memory';
import { KEY2_SIZE, KEY_SIZE, TLS_CRYPT_V2_MAX_WKC_LEN, type TlsCryptV2ClientKey, selectKeys } from './static-key';
import { carriesWrappedClientKey, opcodeOf } from './opcodes';
import type { ReplayCheck, ReplayIdSource, TlsUnwrapResult } from './tls-auth';
import type { KeyingMaterialExporter } from './key-derivation';
import { TlsCryptCheck, TlsCryptDirection } from '../native/crypto';
import { cachedFor } from '../weak-cache';

export const TLS_CRYPT_TAG_SIZE = 32;
export const TLS_CRYPT_PID_SIZE = 8;
export const TLS_CRYPT_OFF_PID = 9;
export const TLS_CRYPT_OFF_TAG = 17;
export const TLS_CRYPT_OFF_CT = 49;
/** Bytes tls-crypt adds to an unwrapped packet (pid + tag; CTR adds no padding). */
export const TLS_CRYPT_OVERHEAD = TLS_CRYPT_PID_SIZE + TLS_CRYPT_TAG_SIZE;
/** OpenVPN's sizing constant (tls_crypt_buf_overhead: one spare cipher block included). */
export const TLS_CRYPT_BUF_OVERHEAD = TLS_CRYPT_OVERHEAD + 16;

const CIPHER = 'aes-256-ctr';
const CIPHER_KEY_LEN = 32;
const HMAC_KEY_LEN = 32;

export interface TlsCryptKeys {
  readonly encryptCipher: Buffer;
  readonly encryptHmac: Buffer;
  readonly decryptCipher: Buffer;
  readonly decryptHmac: Buffer;
}

/**
 * tls-crypt ignores key-direction: the server uses NORMAL (sends with keys[0]), the client
 * INVERSE. Same for a tls-crypt-v2 Kc. Returns views into `key2`; the same object for the same
 * `key2` and role, so every session of a server's one tls-crypt key shares its keyed contexts.
 */
export function tlsCryptKeys(key2: Buffer, role: 'server' | 'client'): TlsCryptKeys {
  const byRole = cachedFor(keysByKey2, key2, (): { server?: TlsCryptKeys; client?: TlsCryptKeys } => ({}));
  return (byRole[role] ??= selectKeys(key2, role === 'server' ? 'normal' : 'inverse', CIPHER_KEY_LEN, HMAC_KEY_LEN));
}

const keysByKey2 = new WeakMap<Buffer, { server?: TlsCryptKeys; client?: TlsCryptKeys }>();

/** The keyed OpenSSL contexts of both directions, made on a key's first packet. */
interface TlsCryptContexts {
  readonly seal: TlsCryptDirection;
  readonly open: TlsCryptDirection;
}
const contextsByKeys = new WeakMap<TlsCryptKeys, TlsCryptContexts>();

function contextsOf(keys: TlsCryptKeys): TlsCryptContexts {
  return cachedFor(contextsByKeys, keys, () => ({
    seal: new TlsCryptDirection(keys.encryptCipher, keys.encryptHmac),
    open: new TlsCryptDirection(keys.decryptCipher, keys.decryptHmac),
  }));
}

/**
 * Wraps an unwrapped control packet (opcode || sid || plaintext) with the next replay id from
 * `send` (`now` is passed to it; a tls-crypt-v2 client starts its counter at EARLY_NEG_START);
 * `wkc` (tls-crypt-v2 client) is appended for HARD_RESET_CLIENT_V3 and CONTROL_WKC_V1 only.
 * Returns null only when the replay counter is exhausted.
 */
export function tlsCryptWrap(keys: TlsCryptKeys, send: ReplayIdSource, plain: Buffer, now: number, wkc?: Buffer): Buffer | null {
  if (plain.length < TLS_CRYPT_OFF_PID) throw new RangeError('tls-crypt wrap: packet shorter than opcode + session id');
  const pid = send.next(now);
  if (pid === null) return null;
  const appendWkc = wkc !== undefined && carriesWrappedClientKey(opcodeOf(plain[0]!));
  const bodyLength = plain.length - TLS_CRYPT_OFF_PID;
  const out = Buffer.allocUnsafe(TLS_CRYPT_OFF_CT + bodyLength + (appendWkc ? wkc.length : 0));
  plain.copy(out, 0, 0, TLS_CRYPT_OFF_PID);
  out.writeUInt32BE(pid.id >>> 0, TLS_CRYPT_OFF_PID);
  out.writeUInt32BE(pid.time >>> 0, TLS_CRYPT_OFF_PID + 4);
  plain.copy(out, TLS_CRYPT_OFF_CT, TLS_CRYPT_OFF_PID);
  // Tag over header and plaintext, then AES-256-CTR in place with the tag as IV.
  contextsOf(keys).seal.seal(appendWkc ? out.subarray(0, TLS_CRYPT_OFF_CT + bodyLength) : out);
  if (appendWkc) wkc.copy(out, TLS_CRYPT_OFF_CT + bodyLength);
  return out;
}

/**
 * Decrypts, verifies the tag (constant time) and, unless `replay` is null, replay-checks
 * the packet (`now` is passed to it), in OpenVPN's order. A WKc must already have been
 * removed (tlsCryptV2ExtractClientKey / tlsCryptV2StripWkc). Never throws on packet contents.
 */
export function tlsCryptUnwrap(keys: TlsCryptKeys, replay: ReplayCheck | null, wire: Buffer, now = 0): TlsUnwrapResult {
  if (wire.length < TLS_CRYPT_OFF_CT) return { ok: false, reason: 'truncated' };
  const packet = Buffer.allocUnsafe(wire.length - TLS_CRYPT_OVERHEAD);
  // Decrypt with the tag as IV, then HMAC over header and plaintext, compared in constant time.
  if (!contextsOf(keys).open.open(wire, packet)) return { ok: false, reason: 'bad-hmac' };
  const packetId = wire.readUInt32BE(TLS_CRYPT_OFF_PID);
  const time = wire.readUInt32BE(TLS_CRYPT_OFF_PID + 4);
  if (replay !== null && !replay.check(packetId, time, now)) return { ok: false, reason: 'replay' };
  return { ok: true, packet, packetId, time };
}

/**
 * Dynamic tls-crypt (2.6, IV_PROTO_DYN_TLS_CRYPT / pushed `dyn-tls-crypt`): the tls-crypt key2
 * for control packets with key_id > 0 is 256 exported bytes (label
 * EXPORTER-OpenVPN-dynamic-tls-crypt, from the first TLS session) XOR the original tls-auth /
 * tls-crypt key file bytes or tls-crypt-v2 Kc, if one is configured
 * (tls_session_generate_dynamic_tls_crypt_key). Use with tlsCryptKeys and a fresh counter.
 */
export function dynamicTlsCryptKey(exporter: KeyingMaterialExporter, originalKey2: Buffer | null): Buffer {
  const exported = exporter(KEY2_SIZE, 'EXPORTER-OpenVPN-dynamic-tls-crypt');
  if (exported.length !== KEY2_SIZE) throw new Error(`keying material exporter returned ${exported.length} bytes`);
  const key2 = secureCopy(exported);
  exported.fill(0);
  if (originalKey2 !== null) {
    if (originalKey2.length !== KEY2_SIZE) throw new Error(`original wrap key must be ${KEY2_SIZE} bytes`);
    for (let i = 0; i < KEY2_SIZE; i++) key2[i]! ^= originalKey2[i]!;
  }
  return key2;
}

// ---- tls-crypt-v2 -------------------------------------------------------------------------

/** Metadata type bytes (tls_crypt.c). */
export const TLS_CRYPT_METADATA_TYPE_USER = 0x00;
export const TLS_CRYPT_METADATA_TYPE_TIMESTAMP = 0x01;
/** TLS_CRYPT_V2_MAX_METADATA_LEN = 1024 - (256 + 32 + 2) = 734, type byte included. */
export const TLS_CRYPT_V2_MAX_METADATA_LEN = TLS_CRYPT_V2_MAX_WKC_LEN - (KEY2_SIZE + TLS_CRYPT_TAG_SIZE + 2);

export type TlsCryptV2Metadata =
  | { readonly type: 'user'; readonly data: Buffer }
  | { readonly type: 'timestamp'; readonly unixTime: bigint }
  | { readonly type: 'unknown'; readonly typeByte: number; readonly data: Buffer };

/** Server key halves: Ke = bytes 0..31 (cipher), Ka = bytes 64..95 (hmac). */
function serverKeyParts(serverKey: Buffer): { ke: Buffer; ka: Buffer } {
  if (serverKey.length !== KEY_SIZE) throw new Error(`tls-crypt-v2 server key must be ${KEY_SIZE} bytes`);
  return { ke: serverKey.subarray(0, CIPHER_KEY_LEN), ka: serverKey.subarray(64, 64 + HMAC_KEY_LEN) };
}

/**
 * The in-place check of the WKc at the end of a client's first packet (TlsCryptCheck.verifyWkc),
 * keyed once with the server key's Ke and Ka: a forged WKc costs one HMAC and no allocation.
 * The same object for the same server key.
 */
export function tlsCryptV2WkcCheck(serverKey: Buffer): TlsCryptCheck {
  return cachedFor(wkcChecks, serverKey, () => {
    const { ke, ka } = serverKeyParts(serverKey);
    return new TlsCryptCheck(ke, ka);
  });
}
const wkcChecks = new WeakMap<Buffer, TlsCryptCheck>();

/**
 * WKc = T || AES-256-CTR(Ke, T[0..16), Kc || metadata) || len, with
 * T = HMAC-SHA256(Ka, len || Kc || metadata) and len = total WKc length (u16 BE).
 * `metadata` includes its type byte.
 */
export function tlsCryptV2WrapClientKey(serverKey: Buffer, clientKey2: Buffer, metadata: Buffer): Buffer {
  if (clientKey2.length !== KEY2_SIZE) throw new Error(`tls-crypt-v2 client key must be ${KEY2_SIZE} bytes`);
  if (metadata.length > TLS_CRYPT_V2_MAX_METADATA_LEN) {
    throw new Error(`tls-crypt-v2 metadata too long (${metadata.length} bytes, max ${TLS_CRYPT_V2_MAX_METADATA_LEN})`);
  }
  const { ke, ka } = serverKeyParts(serverKey);
  const total = TLS_CRYPT_TAG_SIZE + KEY2_SIZE + metadata.length + 2;
  const len = Buffer.allocUnsafe(2);
  len.writeUInt16BE(total, 0);
  const tag = createHmac('sha256', ka).update(len).update(clientKey2).update(metadata).digest();
  const wkc = Buffer.allocUnsafe(total);
  tag.copy(wkc, 0);
  const c = createCipheriv(CIPHER, ke, tag.subarray(0, 16));
  let off = TLS_CRYPT_TAG_SIZE;
  off += c.update(clientKey2).copy(wkc, off);
  off += c.update(metadata).copy(wkc, off);
  c.final().copy(wkc, off);
  len.copy(wkc, total - 2);
  return wkc;
}

export type TlsCryptV2UnwrapResult =
  | { readonly ok: true; /** Kc, guarded memory */ readonly key2: Buffer; readonly metadata: Buffer }
  | { readonly ok: false; readonly reason: 'bad-length' | 'too-big' | 'bad-tag' | 'too-short' };

/** Verifies and decrypts a WKc with the server key. Never throws on WKc contents. */
export function tlsCryptV2UnwrapClientKey(serverKey: Buffer, wkc: Buffer): TlsCryptV2UnwrapResult {
  if (wkc.length > TLS_CRYPT_V2_MAX_WKC_LEN) return { ok: false, reason: 'too-big' };
  if (wkc.length < TLS_CRYPT_TAG_SIZE + 2 || wkc.readUInt16BE(wkc.length - 2) !== wkc.length) {
    return { ok: false, reason: 'bad-length' };
  }
  const { ke, ka } = serverKeyParts(serverKey);
  const tag = wkc.subarray(0, TLS_CRYPT_TAG_SIZE);
  const ct = wkc.subarray(TLS_CRYPT_TAG_SIZE, wkc.length - 2);
  // Decrypt into one guarded scratch buffer: no guarded allocation per (possibly forged) WKc.
  const plain = unwrapScratch().subarray(0, ct.length);
  const d = createDecipheriv(CIPHER, ke, tag.subarray(0, 16));
  const part = d.update(ct);
  part.copy(plain, 0);
  part.fill(0);
  try {
    const check = createHmac('sha256', ka)
      .update(wkc.subarray(wkc.length - 2))
      .update(plain)
      .digest();
    if (!constantTimeEqual(check, tag)) return { ok: false, reason: 'bad-tag' };
    if (plain.length < KEY2_SIZE) return { ok: false, reason: 'too-short' };
    return { ok: true, key2: secureCopy(plain.subarray(0, KEY2_SIZE)), metadata: Buffer.from(plain.subarray(KEY2_SIZE)) };
  } finally {
    wipe(plain);
  }
}

let scratch: Buffer | undefined;
function unwrapScratch(): Buffer {
  scratch ??= secureAlloc(TLS_CRYPT_V2_MAX_WKC_LEN);
  return scratch;
}

/** Interprets metadata: first byte is the type (user data or a 64-bit BE unix timestamp). */
export function parseTlsCryptV2Metadata(metadata: Buffer): TlsCryptV2Metadata | null {
  if (metadata.length < 1) return null;
  const t = metadata[0]!;
  if (t === TLS_CRYPT_METADATA_TYPE_TIMESTAMP && metadata.length === 9) {
    return { type: 'timestamp', unixTime: metadata.readBigUInt64BE(1) };
  }
  if (t === TLS_CRYPT_METADATA_TYPE_USER) return { type: 'user', data: metadata.subarray(1) };
  return { type: 'unknown', typeByte: t, data: metadata.subarray(1) };
}

/** Length of the WKc appended to a wire packet, from its trailing u16; null if impossible. */
function appendedWkcLength(wire: Buffer): number | null {
  // OpenVPN skips the opcode byte, then needs at least 1 + 2 more bytes.
  if (wire.length < 1 + 1 + 2) return null;
  const len = wire.readUInt16BE(wire.length - 2);
  if (len > wire.length - 1) return null;
  return len;
}

export type TlsCryptV2ExtractResult =
  | {
      readonly ok: true;
      /** Kc (guarded memory); use with tlsCryptKeys(key2, 'server'). */
      readonly key2: Buffer;
      readonly metadata: Buffer;
      /** The tls-crypt wrapped packet without the WKc, ready for tlsCryptUnwrap. */
      readonly wrapped: Buffer;
    }
  | { readonly ok: false; readonly reason: 'no-wkc' | 'bad-length' | 'too-big' | 'bad-tag' | 'too-short' };

/**
 * Server side for P_CONTROL_HARD_RESET_CLIENT_V3 / P_CONTROL_WKC_V1 from a client with no key
 * yet: cut the WKc off the end (its length is the packet's last two bytes), unwrap it with
 * the server key. Any failure means: drop silently.
 */
export function tlsCryptV2ExtractClientKey(serverKey: Buffer, wire: Buffer): TlsCryptV2ExtractResult {
  const len = appendedWkcLength(wire);
  if (len === null) return { ok: false, reason: 'no-wkc' };
  const r = tlsCryptV2UnwrapClientKey(serverKey, wire.subarray(wire.length - len));
  if (!r.ok) return r;
  return { ok: true, key2: r.key2, metadata: r.metadata, wrapped: wire.subarray(0, wire.length - len) };
}

/**
 * For a session that already has its Kc: OpenVPN ignores a (resent) WKc and just strips it.
 * Returns the packet without the WKc, or null if the length field cannot be right.
 */
export function tlsCryptV2StripWkc(wire: Buffer): Buffer | null {
  const len = appendedWkcLength(wire);
  return len === null ? null : wire.subarray(0, wire.length - len);
}

export interface GenerateClientKeyOptions {
  /** User metadata (without the type byte), as `--genkey tls-crypt-v2-client FILE B64METADATA`. */
  readonly userMetadata?: Buffer;
  /** Unix seconds for the default timestamp metadata. */
  readonly nowSec?: number;
}

/**
 * Like `openvpn --genkey tls-crypt-v2-client --tls-crypt-v2 SERVERKEY`: a random Kc wrapped
 * with the server key; metadata is the user data given, else the creation timestamp.
 * Format with formatTlsCryptV2ClientKey.
 */
export function generateTlsCryptV2ClientKey(serverKey: Buffer, opts: GenerateClientKeyOptions = {}): TlsCryptV2ClientKey {
  let metadata: Buffer;
  if (opts.userMetadata !== undefined) {
    if (opts.userMetadata.length > TLS_CRYPT_V2_MAX_METADATA_LEN - 1) {
      throw new Error(`tls-crypt-v2 metadata too long (${opts.userMetadata.length} bytes, max ${TLS_CRYPT_V2_MAX_METADATA_LEN - 1})`);
    }
    metadata = Buffer.concat([Buffer.from([TLS_CRYPT_METADATA_TYPE_USER]), opts.userMetadata]);
  } else {
    metadata = Buffer.alloc(9);
    metadata[0] = TLS_CRYPT_METADATA_TYPE_TIMESTAMP;
    metadata.writeBigUInt64BE(BigInt(Math.floor(opts.nowSec ?? Date.now() / 1000)), 1);
  }
  const key2 = secureRandom(KEY2_SIZE);
  return { key2, wkc: tlsCryptV2WrapClientKey(serverKey, key2, metadata) };
}
