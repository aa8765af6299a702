// OpenVPN key files: "Static key V1" (tls-auth, tls-crypt, secret) and the tls-crypt-v2
// PEM keys, plus key-direction handling (crypto.c read_key_file/write_key_file,
// key_direction_state_init; tls_crypt.c for the v2 PEM names).
// Parsing happens at configuration time, so it throws an Error that names the file and line.

import { secureAlloc, secureCopy, secureRandom, wipe } from './key-memory';

/** One `struct key` is cipher[64] || hmac[64]; a key2 holds two of them. */
export const MAX_CIPHER_KEY_LENGTH = 64;
export const MAX_HMAC_KEY_LENGTH = 64;
export const KEY_SIZE = MAX_CIPHER_KEY_LENGTH + MAX_HMAC_KEY_LENGTH; // 128
export const KEY2_SIZE = 2 * KEY_SIZE; // 256

export const STATIC_KEY_HEAD = '-----BEGIN OpenVPN Static key V1-----';
export const STATIC_KEY_FOOT = '-----END OpenVPN Static key V1-----';

export const TLS_CRYPT_V2_SERVER_PEM_NAME = 'OpenVPN tls-crypt-v2 server key';
export const TLS_CRYPT_V2_CLIENT_PEM_NAME = 'OpenVPN tls-crypt-v2 client key';
/** tls_crypt.h: TLS_CRYPT_V2_MAX_WKC_LEN, TLS_CRYPT_V2_CLIENT_KEY_LEN, tag size. */
export const TLS_CRYPT_V2_MAX_WKC_LEN = 1024;
export const TLS_CRYPT_V2_CLIENT_KEY_LEN = KEY2_SIZE;
const TLS_CRYPT_V2_MIN_WKC_LEN = 32 + KEY2_SIZE + 2; // tag || Kc || len, no metadata

/**
 * key-direction: NORMAL (`0`) sends with keys[0] and receives with keys[1]; INVERSE (`1`)
 * the reverse; BIDIRECTIONAL (omitted) uses keys[0] both ways.
 */
export type KeyDirection = 'normal' | 'inverse' | 'bidirectional';

/** Parses the `key-direction` argument (or the 2nd argument of `tls-auth`/`secret`). */
export function parseKeyDirection(arg: string | undefined): KeyDirection {
  if (arg === undefined) return 'bidirectional';
  if (arg === '0') return 'normal';
  if (arg === '1') return 'inverse';
  throw new Error(`key-direction '${arg}': must be 0 or 1 (or omitted for bidirectional)`);
}

/** Byte slices of a key2 used for one direction pair. Views into the key2 buffer, not copies. */
export interface DirectionalKeys {
  readonly encryptCipher: Buffer;
  readonly encryptHmac: Buffer;
  readonly decryptCipher: Buffer;
  readonly decryptHmac: Buffer;
}

/**
 * Selects the cipher/hmac key slices as OpenVPN does: only the first `cipherKeyLen` bytes of
 * a 64-byte cipher half and the first `hmacKeyLen` (the digest size) of an hmac half are used.
 */
export function selectKeys(key2: Buffer, direction: KeyDirection, cipherKeyLen: number, hmacKeyLen: number): DirectionalKeys {
  if (key2.length !== KEY2_SIZE) throw new Error(`key2 must be ${KEY2_SIZE} bytes, got ${key2.length}`);
  if (cipherKeyLen < 0 || cipherKeyLen > MAX_CIPHER_KEY_LENGTH) throw new Error(`cipher key length ${cipherKeyLen} out of range`);
  if (hmacKeyLen < 0 || hmacKeyLen > MAX_HMAC_KEY_LENGTH) throw new Error(`hmac key length ${hmacKeyLen} out of range`);
  const out = direction === 'inverse' ? 1 : 0;
  const inn = direction === 'normal' ? 1 : 0;
  const slice = (k: number, off: number, len: number): Buffer => key2.subarray(k * KEY_SIZE + off, k * KEY_SIZE + off + len);
  return {
    encryptCipher: slice(out, 0, cipherKeyLen),
    encryptHmac: slice(out, MAX_CIPHER_KEY_LENGTH, hmacKeyLen),
    decryptCipher: slice(inn, 0, cipherKeyLen),
    decryptHmac: slice(inn, MAX_CIPHER_KEY_LENGTH, hmacKeyLen),
  };
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function hexValue(c: number): number {
  if (c <= 0x39) return c - 0x30;
  if (c <= 0x46) return c - 0x41 + 10;
  return c - 0x61 + 10;
}

function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/**
 * Parses an "OpenVPN Static key V1" file. Like OpenVPN: text before the header line is
 * ignored, hex digits may be split by any whitespace, and hex after the 256th byte is ignored.
 * Unlike OpenVPN a single-key (128-byte) file is refused: tls-auth and tls-crypt need two.
 * Returns the 256 key bytes in guarded memory.
 */
export function parseStaticKey(text: string, source = 'static key'): Buffer {
  const lines = text.split('\n');
  let i = 0;
  while (i < lines.length && !lines[i]!.startsWith(STATIC_KEY_HEAD)) i++;
  if (i === lines.length) {
    throw new Error(`${source}: header '${STATIC_KEY_HEAD}' not found (is this an OpenVPN static key file?)`);
  }
  const key = secureAlloc(KEY2_SIZE);
  let count = 0;
  let high = -1;
  let footer = false;
  try {
    for (i = i + 1; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.startsWith('-')) {
        if (!line.startsWith(STATIC_KEY_FOOT)) {
          throw new Error(`${source}: line ${i + 1}: expected '${STATIC_KEY_FOOT}'`);
        }
        footer = true;
        break;
      }
      for (let j = 0; j < line.length; j++) {
        const c = line.charCodeAt(j);
        // Like OpenVPN, whatever follows the 256th byte up to the footer is not looked at.
        if (isSpace(c) || count === KEY2_SIZE) continue;
        if (!isHex(c)) {
          throw new Error(
            `${source}: line ${i + 1}, column ${j + 1}: unexpected character ${JSON.stringify(line[j])} ` +
              '(only hex digits and whitespace are allowed between header and footer)',
          );
        }
        if (high < 0) {
          high = hexValue(c);
        } else {
          key[count++] = (high << 4) | hexValue(c);
          high = -1;
        }
      }
    }
    if (count < KEY2_SIZE) {
      throw new Error(
        `${source}: only ${count} of ${KEY2_SIZE} key bytes found (expected 512 hex digits, ` +
          `${KEY2_SIZE / 16} lines of 32); generate a new one with 'openvpn --genkey secret'`,
      );
    }
    if (!footer) throw new Error(`${source}: footer '${STATIC_KEY_FOOT}' not found`);
  } catch (err) {
    wipe(key);
    throw err;
  }
  return key;
}

/** Formats 256 key bytes the way `openvpn --genkey secret` writes them (16 bytes a line). */
export function formatStaticKey(key2: Buffer): string {
  if (key2.length !== KEY2_SIZE) throw new Error(`static key must be ${KEY2_SIZE} bytes, got ${key2.length}`);
  const parts: string[] = ['#', `# ${KEY2_SIZE * 8} bit OpenVPN static key`, '#', STATIC_KEY_HEAD];
  for (let off = 0; off < KEY2_SIZE; off += 16) parts.push(key2.toString('hex', off, off + 16));
  parts.push(STATIC_KEY_FOOT, '');
  return parts.join('\n');
}

/** Fresh random static key (tls-auth, tls-crypt, secret) in guarded memory. */
export function generateStaticKey(): Buffer {
  return secureRandom(KEY2_SIZE);
}

// ---- PEM (tls-crypt-v2) ------------------------------------------------------------------

const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes the body of the PEM block called `name`; throws with the file and line. */
export function parsePem(text: string, name: string, source: string): Buffer {
  const begin = `-----BEGIN ${name}-----`;
  const end = `-----END ${name}-----`;
  const lines = text.split('\n');
  let i = 0;
  while (i < lines.length && lines[i]!.trim() !== begin) i++;
  if (i === lines.length) throw new Error(`${source}: '${begin}' not found`);
  const body: string[] = [];
  for (i = i + 1; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === end) {
      const b64 = body.join('');
      if (b64.length % 4 !== 0) throw new Error(`${source}: base64 body length is not a multiple of 4 (truncated?)`);
      const raw = Buffer.from(b64, 'base64');
      const out = secureCopy(raw);
      raw.fill(0);
      return out;
    }
    if (line.startsWith('-----')) throw new Error(`${source}: line ${i + 1}: expected '${end}'`);
    if (!BASE64_LINE.test(line)) throw new Error(`${source}: line ${i + 1}: not base64`);
    body.push(line);
  }
  throw new Error(`${source}: '${end}' not found`);
}

/** PEM as OpenSSL's PEM_write_bio writes it: 64 base64 characters a line. */
export function formatPem(name: string, data: Buffer): string {
  const b64 = data.toString('base64');
  const parts: string[] = [`-----BEGIN ${name}-----`];
  for (let off = 0; off < b64.length; off += 64) parts.push(b64.slice(off, off + 64));
  parts.push(`-----END ${name}-----`, '');
  return parts.join('\n');
}

/**
 * tls-crypt-v2 server key: one `struct key` (128 bytes); Ke = bytes 0..31, Ka = 64..95.
 * Returned in guarded memory.
 */
export function parseTlsCryptV2ServerKey(text: string, source = 'tls-crypt-v2 server key'): Buffer {
  const key = parsePem(text, TLS_CRYPT_V2_SERVER_PEM_NAME, source);
  if (key.length !== KEY_SIZE) {
    wipe(key);
    throw new Error(`${source}: expected ${KEY_SIZE} key bytes, found ${key.length} (is this a client key?)`);
  }
  return key;
}

export function formatTlsCryptV2ServerKey(serverKey: Buffer): string {
  if (serverKey.length !== KEY_SIZE) throw new Error(`tls-crypt-v2 server key must be ${KEY_SIZE} bytes`);
  return formatPem(TLS_CRYPT_V2_SERVER_PEM_NAME, serverKey);
}

/** Like `openvpn --genkey tls-crypt-v2-server`. */
export function generateTlsCryptV2ServerKey(): Buffer {
  return secureRandom(KEY_SIZE);
}

/** tls-crypt-v2 client key: Kc (a normal 256-byte tls-crypt key2) and WKc (opaque to the client). */
export interface TlsCryptV2ClientKey {
  /** Kc, guarded memory. */
  readonly key2: Buffer;
  /** Wrapped client key, appended verbatim to HARD_RESET_CLIENT_V3 and CONTROL_WKC_V1. */
  readonly wkc: Buffer;
}

export function parseTlsCryptV2ClientKey(text: string, source = 'tls-crypt-v2 client key'): TlsCryptV2ClientKey {
  const raw = parsePem(text, TLS_CRYPT_V2_CLIENT_PEM_NAME, source);
  try {
    if (raw.length < TLS_CRYPT_V2_CLIENT_KEY_LEN + TLS_CRYPT_V2_MIN_WKC_LEN) {
      throw new Error(`${source}: only ${raw.length} bytes, too short for Kc and a wrapped key (is this a server key?)`);
    }
    const wkcLen = raw.length - TLS_CRYPT_V2_CLIENT_KEY_LEN;
    if (wkcLen > TLS_CRYPT_V2_MAX_WKC_LEN) {
      throw new Error(`${source}: wrapped key is ${wkcLen} bytes, more than ${TLS_CRYPT_V2_MAX_WKC_LEN}`);
    }
    if (raw.readUInt16BE(raw.length - 2) !== wkcLen) {
      throw new Error(`${source}: wrapped key length field does not match its size (corrupt key file)`);
    }
    return {
      key2: secureCopy(raw.subarray(0, TLS_CRYPT_V2_CLIENT_KEY_LEN)),
      wkc: Buffer.from(raw.subarray(TLS_CRYPT_V2_CLIENT_KEY_LEN)),
    };
  } finally {
    wipe(raw);
  }
}

export function formatTlsCryptV2ClientKey(key: TlsCryptV2ClientKey): string {
  if (key.key2.length !== TLS_CRYPT_V2_CLIENT_KEY_LEN) throw new Error('tls-crypt-v2 client key: Kc must be 256 bytes');
  const raw = Buffer.concat([key.key2, key.wkc]);
  try {
    return formatPem(TLS_CRYPT_V2_CLIENT_PEM_NAME, raw);
  } finally {
    raw.fill(0);
  }
}
