// Data channel cipher negotiation (ssl_ncp.c mutate_ncp_cipher_list, tls_peer_ncp_list,
// ncp_get_best_cipher, check_pull_client_ncp; multi.c multi_client_set_protocol_options;
// wire doc 8.1). Pure string logic: the session feeds it the peer-info and OCC cipher.

import type { AeadCipherName, CbcCipherName } from '../native';

export const AEAD_CIPHERS: readonly AeadCipherName[] = ['AES-256-GCM', 'AES-128-GCM', 'CHACHA20-POLY1305'];
/** The CBC + HMAC ciphers of the data channel (BF-CBC only where OpenSSL's legacy provider is loaded). */
export const CBC_CIPHERS: readonly CbcCipherName[] = ['AES-256-CBC', 'AES-192-CBC', 'AES-128-CBC', 'BF-CBC'];
/** Every data cipher shardvpn implements. */
export const DATA_CIPHERS: readonly (AeadCipherName | CbcCipherName)[] = [...AEAD_CIPHERS, ...CBC_CIPHERS];
/** 2.6 default --data-ciphers (with a ChaCha20-Poly1305 capable library). */
export const DEFAULT_DATA_CIPHERS: readonly string[] = ['AES-256-GCM', 'AES-128-GCM', 'CHACHA20-POLY1305'];
/** What IV_NCP=2 without IV_CIPHERS promises. */
export const IV_NCP_2_CIPHERS: readonly string[] = ['AES-256-GCM', 'AES-128-GCM'];
/** MAX_NCP_CIPHERS_LENGTH - 1: the normalised --data-ciphers list must stay under 128 chars. */
export const MAX_DATA_CIPHERS_LENGTH = 127;
export const NCP_FAILED_CLIENT_REASON = 'Data channel cipher negotiation failed (no shared cipher)';

// OpenSSL spellings OpenVPN translates to its own names (cipher_kt_name and the
// translation table), compared case-insensitively.
const ALIASES: ReadonlyMap<string, string> = new Map([
  ['ID-AES128-GCM', 'AES-128-GCM'],
  ['ID-AES192-GCM', 'AES-192-GCM'],
  ['ID-AES256-GCM', 'AES-256-GCM'],
  ['CHACHA20POLY1305', 'CHACHA20-POLY1305'],
  ['BF', 'BF-CBC'],
  ['DES', 'DES-CBC'],
  ['DES3', 'DES-EDE3-CBC'],
]);

const KNOWN_CIPHERS: ReadonlySet<string> = new Set([
  'AES-128-GCM',
  'AES-192-GCM',
  'AES-256-GCM',
  'CHACHA20-POLY1305',
  'AES-128-CBC',
  'AES-192-CBC',
  'AES-256-CBC',
  'AES-128-CFB',
  'AES-192-CFB',
  'AES-256-CFB',
  'AES-128-OFB',
  'AES-192-OFB',
  'AES-256-OFB',
  'BF-CBC',
  'CAST5-CBC',
  'DES-CBC',
  'DES-EDE3-CBC',
  'CAMELLIA-128-CBC',
  'CAMELLIA-192-CBC',
  'CAMELLIA-256-CBC',
  'SEED-CBC',
]);

/**
 * OpenVPN's canonical spelling of a data cipher name ('aes-256-gcm' -> 'AES-256-GCM'), 'none'
 * for none, or null for a name we do not know.
 */
export function normalizeCipherName(name: string): string | null {
  const trimmed = name.trim();
  if (trimmed === 'none') return 'none';
  const upper = trimmed.toUpperCase();
  const canonical = ALIASES.get(upper) ?? upper;
  return KNOWN_CIPHERS.has(canonical) ? canonical : null;
}

/** The name as one of the AEAD ciphers this data channel implements, or null. */
export function aeadCipherName(name: string): AeadCipherName | null {
  const n = normalizeCipherName(name);
  return n !== null && (AEAD_CIPHERS as readonly string[]).includes(n) ? (n as AeadCipherName) : null;
}

/** The name as one of the data ciphers this data channel implements (AEAD or CBC), or null. */
export function dataCipherName(name: string): AeadCipherName | CbcCipherName | null {
  const n = normalizeCipherName(name);
  return n !== null && (DATA_CIPHERS as readonly string[]).includes(n) ? (n as AeadCipherName | CbcCipherName) : null;
}

export type DataCiphersResult =
  { ok: true; ciphers: string[] } | { ok: false; reason: 'unsupported-cipher' | 'too-long' | 'empty'; detail: string };

/**
 * --data-ciphers A:B:C as mutate_ncp_cipher_list: names normalised, `?name` optional (dropped
 * with no error when unsupported). `supported` is what our data channel can run (default the
 * three AEAD ciphers).
 */
export function parseDataCiphers(list: string, supported: readonly string[] = AEAD_CIPHERS): DataCiphersResult {
  const ciphers: string[] = [];
  for (const raw of list.split(':')) {
    if (raw === '') continue;
    const optional = raw.startsWith('?');
    const name = optional ? raw.slice(1) : raw;
    const n = normalizeCipherName(name);
    if (n === null || !supported.includes(n)) {
      if (optional) continue;
      return { ok: false, reason: 'unsupported-cipher', detail: `unsupported cipher in --data-ciphers: ${name}` };
    }
    if (!ciphers.includes(n)) ciphers.push(n);
  }
  if (ciphers.length === 0) return { ok: false, reason: 'empty', detail: '--data-ciphers names no usable cipher' };
  if (ciphers.join(':').length > MAX_DATA_CIPHERS_LENGTH) {
    return { ok: false, reason: 'too-long', detail: `--data-ciphers is over the limit of ${MAX_DATA_CIPHERS_LENGTH} characters` };
  }
  return { ok: true, ciphers };
}

/** The value of NAME= in a peer-info string ("NAME=value\n" lines), or null. */
function peerInfoVar(peerInfo: string, name: string): string | null {
  const key = `${name}=`;
  let at = peerInfo.startsWith(key) ? 0 : peerInfo.indexOf(`\n${key}`);
  if (at < 0) return null;
  if (at > 0 || peerInfo[0] === '\n') at += 1;
  const start = at + key.length;
  const end = peerInfo.indexOf('\n', start);
  return peerInfo.slice(start, end < 0 ? peerInfo.length : end);
}

/** IV_NCP=n of the peer (tls_peer_info_ncp_ver), 0 when absent or not a number. */
export function peerNcpVersion(peerInfo: string | null): number {
  const v = peerInfo === null ? null : peerInfoVar(peerInfo, 'IV_NCP');
  return v !== null && /^\d{1,9}$/.test(v) ? Number(v) : 0;
}

/** tls_peer_supports_ncp: IV_NCP >= 2 or IV_CIPHERS present (then `cipher X` is pushed). */
export function peerSupportsNcp(peerInfo: string | null): boolean {
  return peerInfo !== null && (peerNcpVersion(peerInfo) >= 2 || peerInfoVar(peerInfo, 'IV_CIPHERS') !== null);
}

/** tls_peer_ncp_list: IV_CIPHERS, else IV_NCP >= 2 implies AES-256-GCM:AES-128-GCM, else none. */
export function peerNcpList(peerInfo: string | null): string[] {
  if (peerInfo === null) return [];
  const ivCiphers = peerInfoVar(peerInfo, 'IV_CIPHERS');
  if (ivCiphers !== null) {
    // OpenVPN compares the client's tokens verbatim; 2.6 clients send them normalised, so
    // normalising here only forgives odd spellings.
    return ivCiphers
      .split(':')
      .filter((t) => t !== '')
      .map((t) => normalizeCipherName(t) ?? t);
  }
  return peerNcpVersion(peerInfo) >= 2 ? [...IV_NCP_2_CIPHERS] : [];
}

export interface NcpServerInput {
  /** Our normalised --data-ciphers, in preference order (parseDataCiphers). */
  dataCiphers: readonly string[];
  /** The client's peer-info string (key method 2), null if it sent none. */
  peerInfo: string | null;
  /** `cipher` from the client's OCC options string, if any. */
  occCipher?: string | null;
  /** --data-ciphers-fallback, if set. */
  fallback?: string | null;
}

export type NcpServerResult =
  | {
      ok: true;
      cipher: string;
      /** Whether `cipher X` goes into PUSH_REPLY (only to NCP-capable clients). */
      push: boolean;
      via: 'ncp' | 'occ' | 'fallback';
    }
  | {
      ok: false;
      reason: 'no-shared-cipher' | 'no-cipher-info';
      /** auth_set_client_reason text, for AUTH_FAILED. */
      clientReason: string;
      detail: string;
    };

/**
 * The server's choice: the first of our data-ciphers that the client lists (IV_CIPHERS or
 * IV_NCP=2), or that equals its OCC cipher when it sent no IV_CIPHERS; failing that, the
 * fallback only when the client gave no cipher information at all.
 */
export function selectServerCipher(input: NcpServerInput): NcpServerResult {
  const peerList = peerNcpList(input.peerInfo);
  const hasIvCiphers = input.peerInfo !== null && peerInfoVar(input.peerInfo, 'IV_CIPHERS') !== null;
  const occ = input.occCipher ? (normalizeCipherName(input.occCipher) ?? input.occCipher) : null;
  const remote = hasIvCiphers ? null : occ;
  const push = peerSupportsNcp(input.peerInfo);
  for (const cipher of input.dataCiphers) {
    if (peerList.includes(cipher)) return { ok: true, cipher, push, via: 'ncp' };
    if (remote !== null && cipher === remote) return { ok: true, cipher, push, via: 'occ' };
  }
  if (peerList.length > 0) {
    return {
      ok: false,
      reason: 'no-shared-cipher',
      clientReason: NCP_FAILED_CLIENT_REASON,
      detail: `server data-ciphers '${input.dataCiphers.join(':')}', client supports '${peerList.join(':')}'`,
    };
  }
  if (occ !== null) {
    return {
      ok: false,
      reason: 'no-shared-cipher',
      clientReason: NCP_FAILED_CLIENT_REASON,
      detail: `server data-ciphers '${input.dataCiphers.join(':')}', client uses '${occ}'`,
    };
  }
  if (input.fallback) {
    const fallback = normalizeCipherName(input.fallback) ?? input.fallback;
    return { ok: true, cipher: fallback, push, via: 'fallback' };
  }
  return {
    ok: false,
    reason: 'no-cipher-info',
    clientReason: NCP_FAILED_CLIENT_REASON,
    detail: 'no NCP or OCC cipher data received from the client; set data-ciphers-fallback to allow it',
  };
}

export interface NcpClientInput {
  /** Our normalised --data-ciphers. */
  dataCiphers: readonly string[];
  /** `cipher` from PUSH_REPLY, if the server pushed one. */
  pushedCipher?: string | null;
  /** `cipher` from the server's OCC options string, if any. */
  occCipher?: string | null;
  fallback?: string | null;
}

export type NcpClientResult =
  | { ok: true; cipher: string; via: 'push' | 'occ' | 'fallback' }
  | { ok: false; reason: 'pushed-cipher-not-allowed' | 'server-cipher-not-allowed' | 'no-cipher'; detail: string };

/**
 * The client's side (check_pull_client_ncp / check_session_cipher): a pushed cipher must be
 * in our data-ciphers; without one, the server's OCC cipher if we allow it ("poor man's NCP"),
 * else our fallback if the server told us nothing.
 */
export function checkClientCipher(input: NcpClientInput): NcpClientResult {
  if (input.pushedCipher) {
    const pushed = normalizeCipherName(input.pushedCipher);
    if (pushed !== null && input.dataCiphers.includes(pushed)) return { ok: true, cipher: pushed, via: 'push' };
    return {
      ok: false,
      reason: 'pushed-cipher-not-allowed',
      detail: `server pushed cipher '${input.pushedCipher}', not in data-ciphers '${input.dataCiphers.join(':')}'`,
    };
  }
  if (input.occCipher) {
    const occ = normalizeCipherName(input.occCipher);
    if (occ !== null && input.dataCiphers.includes(occ)) return { ok: true, cipher: occ, via: 'occ' };
    return {
      ok: false,
      reason: 'server-cipher-not-allowed',
      detail: `add the server's cipher ('${input.occCipher}') to data-ciphers (currently '${input.dataCiphers.join(':')}') to connect to this server`,
    };
  }
  if (input.fallback) return { ok: true, cipher: normalizeCipherName(input.fallback) ?? input.fallback, via: 'fallback' };
  return {
    ok: false,
    reason: 'no-cipher',
    detail: 'failed to negotiate a cipher with the server; configure data-ciphers-fallback to connect to this server',
  };
}

/** The `cipher X` value of an OCC options string ('V4,dev-type tun,...,cipher AES-256-GCM,...'), or null. */
export function occStringCipher(options: string): string | null {
  for (const part of options.split(',')) {
    if (part.startsWith('cipher ')) {
      const v = part.slice(7).trim();
      return v === '' || v === '[null-cipher]' ? null : v;
    }
  }
  return null;
}
