// --auth-gen-token session tokens as OpenVPN 2.6 makes and checks them (auth_token.c): after a
// client's username and password are accepted, the server pushes `auth-token SESS_ID_AT_...`, and
// the client sends that token instead of its password when it reconnects (an OTP or an SSO login
// cannot be replayed). A token is "SESS_ID_AT_" followed by the base64 of
//   session id (12 random bytes) | initial timestamp | timestamp | HMAC-SHA256
// (timestamps in seconds, 64-bit big-endian), the HMAC keyed with the auth-token secret over
// username | session id | initial timestamp | timestamp. Renewed tokens keep the session id and
// the initial timestamp; a token is good while `now` lies in [timestamp, timestamp + 2 x renewal)
// and, with a lifetime, before initial timestamp + lifetime. The same format means a token made
// by an openvpn server sharing the secret checks out here, and the other way round.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import { formatPem, parsePem } from './static-key';

export const AUTH_TOKEN_PEM_NAME = 'OpenVPN auth-token server key';
export const AUTH_TOKEN_PREFIX = 'SESS_ID_AT_';

const SESSION_ID_BYTES = 12;
const HMAC_BYTES = 32;
const DATA_BYTES = SESSION_ID_BYTES + 8 + 8 + HMAC_BYTES;
/** The secret file holds one `struct key` (128 bytes); the HMAC key is its hmac half's first 32 bytes. */
const SECRET_FILE_BYTES = 128;
const HMAC_KEY_OFFSET = 64;
/** The session id's base64 (16 characters) right after the prefix: OpenVPN's `session_id` variable. */
const SESSION_ID_CHARS = (SESSION_ID_BYTES * 8) / 6;
const TOKEN_LENGTH = AUTH_TOKEN_PREFIX.length + (DATA_BYTES / 3) * 4;

export interface AuthTokenPolicy {
  /** Seconds from the first token of a session after which none of its tokens is good; 0: no limit. */
  lifetimeS: number;
  /** Seconds between renewals; a token is good for twice that from its own timestamp. */
  renewalS: number;
}

/** What a token presented as a password says (OpenVPN's session_state variable). */
export type AuthTokenState = 'Initial' | 'Authenticated' | 'AuthenticatedEmptyUser' | 'Expired' | 'ExpiredEmptyUser' | 'Invalid';

export interface AuthTokenCheck {
  state: Exclude<AuthTokenState, 'Initial'>;
  /** Expired or not, the HMAC held (for the username, or for the empty username). */
  hmacOk: boolean;
  expired: boolean;
  /** The HMAC held only for the empty username: the username the client sent is not to be trusted. */
  emptyUser: boolean;
  /** Why it failed, for the log; null when it is good. */
  problem: string | null;
}

/** The HMAC key from an auth-gen-token-secret file (`shardvpn --genkey auth-token`, `openvpn --genkey auth-token`). */
export function parseAuthTokenSecret(text: string, source: string): Buffer {
  const data = parsePem(text, AUTH_TOKEN_PEM_NAME, source);
  if (data.length < SECRET_FILE_BYTES) {
    data.fill(0);
    throw new Error(`${source}: expected ${SECRET_FILE_BYTES} key bytes, found ${data.length}`);
  }
  const key = Buffer.from(data.subarray(HMAC_KEY_OFFSET, HMAC_KEY_OFFSET + HMAC_BYTES));
  data.fill(0);
  return key;
}

/** A new secret file's text. */
export function generateAuthTokenSecretText(): string {
  const data = randomBytes(SECRET_FILE_BYTES);
  const text = formatPem(AUTH_TOKEN_PEM_NAME, data);
  data.fill(0);
  return text;
}

/** An HMAC key for a server without auth-gen-token-secret: its tokens die with the process. */
export function ephemeralAuthTokenKey(): Buffer {
  return randomBytes(HMAC_BYTES);
}

/** Whether a password is a token (OpenVPN's is_auth_token: the prefix and the exact length). */
export function isAuthToken(password: string): boolean {
  return password.length === TOKEN_LENGTH && password.startsWith(AUTH_TOKEN_PREFIX);
}

/** Plain base64 of DATA_BYTES, no padding: openvpn_base64_decode takes nothing else (Node's decoder skips junk and takes '-', '_'). */
const TOKEN_BASE64 = /^[A-Za-z0-9+/]+$/;

/** When the session a token belongs to began (wall-clock seconds): a lifetime counts from here. */
export function authTokenInitialSeconds(token: string): number {
  return Number(Buffer.from(token.slice(AUTH_TOKEN_PREFIX.length), 'base64').readBigUInt64BE(SESSION_ID_BYTES));
}

/** OpenVPN's `session_id` variable: the session id's base64 inside the token. */
export function authTokenSessionId(token: string): string {
  return token.slice(AUTH_TOKEN_PREFIX.length, AUTH_TOKEN_PREFIX.length + SESSION_ID_CHARS);
}

function tokenHmac(key: Uint8Array, username: string, unsigned: Uint8Array): Buffer {
  return createHmac('sha256', key).update(username, 'utf8').update(unsigned).digest();
}

/**
 * A token for `username` at `nowS`: a new session, or, given the session's first token, a renewal
 * keeping its session id and initial timestamp.
 */
export function generateAuthToken(key: Uint8Array, username: string, nowS: number, initial: string | null): string {
  const data = Buffer.alloc(DATA_BYTES);
  if (initial !== null) {
    const before = Buffer.from(initial.slice(AUTH_TOKEN_PREFIX.length), 'base64');
    before.copy(data, 0, 0, SESSION_ID_BYTES + 8);
  } else {
    randomBytes(SESSION_ID_BYTES).copy(data, 0);
    data.writeBigUInt64BE(BigInt(nowS), SESSION_ID_BYTES);
  }
  data.writeBigUInt64BE(BigInt(nowS), SESSION_ID_BYTES + 8);
  tokenHmac(key, username, data.subarray(0, DATA_BYTES - HMAC_BYTES)).copy(data, DATA_BYTES - HMAC_BYTES);
  return AUTH_TOKEN_PREFIX + data.toString('base64');
}

/**
 * Checks a token a client sent as its password (verify_auth_token). OpenVPN also refuses a token
 * of another session at a renegotiation; shardvpn checks logins at a client's first key exchange
 * only, where the instance has no session yet.
 */
export function checkAuthToken(key: Uint8Array, username: string, token: string, nowS: number, policy: AuthTokenPolicy): AuthTokenCheck {
  const invalid = (problem: string): AuthTokenCheck => ({ state: 'Invalid', hmacOk: false, expired: false, emptyUser: false, problem });
  if (!isAuthToken(token)) return invalid('not an auth-token');
  const encoded = token.slice(AUTH_TOKEN_PREFIX.length);
  if (!TOKEN_BASE64.test(encoded)) return invalid('auth-token is not base64');
  const data = Buffer.from(encoded, 'base64');
  if (data.length !== DATA_BYTES) return invalid(`--auth-token wrong size (${data.length}!=${DATA_BYTES})`);
  const unsigned = data.subarray(0, DATA_BYTES - HMAC_BYTES);
  const mac = data.subarray(DATA_BYTES - HMAC_BYTES);
  let emptyUser = false;
  if (!timingSafeEqual(tokenHmac(key, username, unsigned), mac)) {
    if (!timingSafeEqual(tokenHmac(key, '', unsigned), mac)) return invalid(`HMAC on token from client failed (${username})`);
    emptyUser = true;
  }
  const initialS = Number(data.readBigUInt64BE(SESSION_ID_BYTES));
  const stampS = Number(data.readBigUInt64BE(SESSION_ID_BYTES + 8));
  let problem: string | null = null;
  if (!(nowS >= stampS && nowS < stampS + 2 * policy.renewalS))
    problem = `Timestamp (${stampS}) of auth-token is out of the renewal window`;
  else if (stampS < initialS) problem = `Initial timestamp (${initialS}) in token from client earlier than current timestamp ${stampS}`;
  else if (policy.lifetimeS > 0 && nowS > initialS + policy.lifetimeS) problem = 'auth-token from client expired';
  const expired = problem !== null;
  const state: AuthTokenCheck['state'] = expired
    ? emptyUser
      ? 'ExpiredEmptyUser'
      : 'Expired'
    : emptyUser
      ? 'AuthenticatedEmptyUser'
      : 'Authenticated';
  return { state, hmacOk: true, expired, emptyUser, problem };
}
