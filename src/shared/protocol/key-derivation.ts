// Data-channel key block (struct key2, 256 bytes) and its per-role slices (ssl.c
// generate_key_expansion_tls_export, generate_key_expansion_openvpn_prf, openvpn_PRF,
// init_key_contexts, key_ctx_update_implicit_iv; crypto.c check_key; wire doc 5).
//
//   block 0..63    TLS client -> server cipher key     64..127  client -> server hmac / implicit IV
//   block 128..191 TLS server -> client cipher key     192..255 server -> client hmac / implicit IV

import { createHmac } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { secureAlloc, wipe } from './key-memory';
import type { KeySource } from './key-method2';

export const KEY_BLOCK_SIZE = 256;
export const EXPORT_KEY_DATA_LABEL = 'EXPORTER-OpenVPN-datakeys';
export const EXPORT_P2P_PEERID_LABEL = 'EXPORTER-OpenVPN-p2p-peerid';
export const EXPORT_DYNAMIC_TLS_CRYPT_LABEL = 'EXPORTER-OpenVPN-dynamic-tls-crypt';
const MASTER_SECRET_LABEL = 'OpenVPN master secret';
const KEY_EXPANSION_LABEL = 'OpenVPN key expansion';
const MASTER_SIZE = 48;
const SID_SIZE = 8;
/** AEAD nonce = packet-id (4) || implicit IV; implicit IV = 12 - 4 bytes. */
export const IMPLICIT_IV_LEN = 8;

/**
 * RFC 5705 exporter of the key_state's TLS session, without a context. With a Node TLSSocket:
 * `(len, label) => socket.exportKeyingMaterial(len, label)` (no third argument: an empty
 * context is a different value under TLS 1.2).
 */
export type KeyingMaterialExporter = (length: number, label: string) => Buffer;

// @types/node declares the context argument as required; at run time it is optional and
// leaving it out is what OpenVPN does (SSL_export_keying_material with use_context = 0).
interface NoContextExporter {
  exportKeyingMaterial(length: number, label: string): Buffer;
}

/** The exporter of a Node TLS socket, called without a context. */
export function tlsSocketExporter(socket: TLSSocket): KeyingMaterialExporter {
  const s = socket as unknown as NoContextExporter;
  return (length, label) => s.exportKeyingMaterial(length, label);
}

/** TLS-EKM method (2.6 peers): the block is exported with label EXPORTER-OpenVPN-datakeys. */
export function deriveKeyBlockEkm(exporter: KeyingMaterialExporter): Buffer {
  const exported = exporter(KEY_BLOCK_SIZE, EXPORT_KEY_DATA_LABEL);
  if (exported.length !== KEY_BLOCK_SIZE) throw new Error(`keying material exporter returned ${exported.length} bytes`);
  const block = secureAlloc(KEY_BLOCK_SIZE);
  exported.copy(block);
  exported.fill(0);
  return block;
}

// P_hash(secret, seed) = HMAC(secret, A1 || seed) || HMAC(secret, A2 || seed) || ...
function pHash(digest: string, secret: Buffer, seed: Buffer, out: Buffer): void {
  let a = createHmac(digest, secret).update(seed).digest();
  for (let off = 0; off < out.length;) {
    const chunk = createHmac(digest, secret).update(a).update(seed).digest();
    for (let i = 0; i < chunk.length && off < out.length; i++) out[off++] ^= chunk[i]!;
    a = createHmac(digest, secret).update(a).digest();
  }
}

/**
 * TLS 1.0 PRF (RFC 2246 5): P_MD5(S1, seed) XOR P_SHA1(S2, seed), S1/S2 the two halves of the
 * secret, overlapping by one byte when its length is odd. The label is part of `seed`.
 */
export function tls1Prf(secret: Buffer, seed: Buffer, length: number): Buffer {
  const half = Math.ceil(secret.length / 2);
  const out = secureAlloc(length);
  pHash('md5', secret.subarray(0, half), seed, out);
  pHash('sha1', secret.subarray(secret.length - half), seed, out);
  return out;
}

export interface PrfKeyMaterial {
  /** Key source of the TLS client (with preMaster) and of the TLS server. */
  readonly client: KeySource;
  readonly server: KeySource;
  /** Control-channel session ids of the TLS client and TLS server (a 2.6 server's cookie). */
  readonly clientSid: Buffer;
  readonly serverSid: Buffer;
}

/**
 * Legacy method for peers without TLS-EKM (<= 2.5):
 *   master = PRF(client.pre_master, "OpenVPN master secret" || client.random1 || server.random1)
 *   block  = PRF(master, "OpenVPN key expansion" || client.random2 || server.random2 || client sid || server sid)
 */
export function deriveKeyBlockPrf(m: PrfKeyMaterial): Buffer {
  const pm = m.client.preMaster;
  if (pm === undefined || pm.length !== MASTER_SIZE) throw new Error('PRF key derivation needs the client pre_master (48 bytes)');
  if (m.clientSid.length !== SID_SIZE || m.serverSid.length !== SID_SIZE) throw new Error('session ids must be 8 bytes');
  const master = tls1Prf(pm, Buffer.concat([Buffer.from(MASTER_SECRET_LABEL, 'latin1'), m.client.random1, m.server.random1]), MASTER_SIZE);
  try {
    return tls1Prf(
      master,
      Buffer.concat([Buffer.from(KEY_EXPANSION_LABEL, 'latin1'), m.client.random2, m.server.random2, m.clientSid, m.serverSid]),
      KEY_BLOCK_SIZE,
    );
  } finally {
    wipe(master);
  }
}

/** AEAD keys of one side: views into the key block (keep the block alive and guarded). */
export interface AeadKeySlices {
  readonly encryptKey: Buffer;
  readonly encryptImplicitIv: Buffer;
  readonly decryptKey: Buffer;
  readonly decryptImplicitIv: Buffer;
}

/**
 * One direction's cipher key and the start of its hmac half: the TLS client encrypts with
 * keys[0] (bytes 0..127) and decrypts with keys[1] (128..255), the server the reverse (key2 of
 * crypto.c, key_direction normal for the client, inverse for the server).
 */
function keyHalves(block: Buffer, role: 'client' | 'server', keyLen: number, hmacLen: number): { enc: number; dec: number } {
  if (block.length !== KEY_BLOCK_SIZE) throw new Error(`key block must be ${KEY_BLOCK_SIZE} bytes`);
  if (keyLen <= 0 || keyLen > 64 || hmacLen < 0 || hmacLen > 64) throw new Error(`key lengths ${keyLen}/${hmacLen} out of range`);
  return role === 'client' ? { enc: 0, dec: 128 } : { enc: 128, dec: 0 };
}

/**
 * Slices the block for AEAD data channel use; the implicit IV is the first 8 bytes of the same
 * key's hmac half. `keyLen` is 32 (AES-256-GCM, CHACHA20-POLY1305) or 16 (AES-128-GCM).
 */
export function sliceAeadKeys(block: Buffer, role: 'client' | 'server', keyLen: number): AeadKeySlices {
  const { enc, dec } = keyHalves(block, role, keyLen, IMPLICIT_IV_LEN);
  return {
    encryptKey: block.subarray(enc, enc + keyLen),
    encryptImplicitIv: block.subarray(enc + 64, enc + 64 + IMPLICIT_IV_LEN),
    decryptKey: block.subarray(dec, dec + keyLen),
    decryptImplicitIv: block.subarray(dec + 64, dec + 64 + IMPLICIT_IV_LEN),
  };
}

/** CBC keys of one side: cipher key and HMAC key per direction (views into the key block). */
export interface CbcKeySlices {
  readonly encryptKey: Buffer;
  readonly encryptHmacKey: Buffer;
  readonly decryptKey: Buffer;
  readonly decryptHmacKey: Buffer;
}

/** Slices the block for the CBC + HMAC data channel: the HMAC key is the first `macLen` bytes of each hmac half. */
export function sliceCbcKeys(block: Buffer, role: 'client' | 'server', keyLen: number, macLen: number): CbcKeySlices {
  const { enc, dec } = keyHalves(block, role, keyLen, macLen);
  return {
    encryptKey: block.subarray(enc, enc + keyLen),
    encryptHmacKey: block.subarray(enc + 64, enc + 64 + macLen),
    decryptKey: block.subarray(dec, dec + keyLen),
    decryptHmacKey: block.subarray(dec + 64, dec + 64 + macLen),
  };
}

/**
 * crypto.c check_key: a block whose used cipher key is all zero in either direction is
 * refused ("Bad dynamic key generated").
 */
export function checkKeyBlock(block: Buffer, keyLen: number): boolean {
  for (const base of [0, 128]) {
    let acc = 0;
    for (let i = 0; i < keyLen; i++) acc |= block[base + i]!;
    if (acc === 0) return false;
  }
  return true;
}
