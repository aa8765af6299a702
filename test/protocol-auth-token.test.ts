// auth-gen-token session tokens (src/shared/protocol/auth-token.ts): the layout OpenVPN 2.6's
// auth_token.c uses, renewal keeping the session, the renewal window and the lifetime, the
// empty-username fallback, tampering, another key, and the secret file's format.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';

import {
  AUTH_TOKEN_PREFIX,
  authTokenInitialSeconds,
  authTokenSessionId,
  checkAuthToken,
  generateAuthToken,
  generateAuthTokenSecretText,
  isAuthToken,
  parseAuthTokenSecret,
} from '../src/shared/protocol/auth-token';

const KEY = Buffer.alloc(32, 7);
const POLICY = { lifetimeS: 0, renewalS: 60 };
const T0 = 1_800_000_000;

test('a token is SESS_ID_AT_ + base64(session id | initial | timestamp | HMAC-SHA256 over username and those)', () => {
  const token = generateAuthToken(KEY, 'alice', T0, null);
  assert.ok(isAuthToken(token));
  assert.equal(token.length, AUTH_TOKEN_PREFIX.length + 80);
  const data = Buffer.from(token.slice(AUTH_TOKEN_PREFIX.length), 'base64');
  assert.equal(data.length, 60);
  assert.equal(data.readBigUInt64BE(12), BigInt(T0), 'initial timestamp, big-endian');
  assert.equal(data.readBigUInt64BE(20), BigInt(T0), 'timestamp');
  const mac = createHmac('sha256', KEY).update('alice').update(data.subarray(0, 28)).digest();
  assert.deepEqual(data.subarray(28), mac);
  assert.equal(authTokenSessionId(token), data.subarray(0, 12).toString('base64'));
  assert.equal(isAuthToken('secret'), false);
  assert.equal(isAuthToken(token.slice(0, -1)), false);
});

test('a renewal keeps the session id and the initial timestamp; both tokens check out for their user', () => {
  const first = generateAuthToken(KEY, 'alice', T0, null);
  const renewed = generateAuthToken(KEY, 'alice', T0 + 50, first);
  assert.equal(authTokenSessionId(renewed), authTokenSessionId(first));
  const data = Buffer.from(renewed.slice(AUTH_TOKEN_PREFIX.length), 'base64');
  assert.equal(data.readBigUInt64BE(12), BigInt(T0));
  assert.equal(data.readBigUInt64BE(20), BigInt(T0 + 50));
  const check = checkAuthToken(KEY, 'alice', renewed, T0 + 60, POLICY);
  assert.deepEqual(check, { state: 'Authenticated', hmacOk: true, expired: false, emptyUser: false, problem: null });
  assert.equal(authTokenInitialSeconds(renewed), T0);
});

test('only plain base64 is a token: a URL-safe rewrite of a good token is refused, as openvpn_base64_decode refuses it', () => {
  let token = generateAuthToken(KEY, 'alice', T0, null);
  while (!/[+/]/.test(token.slice(AUTH_TOKEN_PREFIX.length))) token = generateAuthToken(KEY, 'alice', T0, null);
  const urlSafe = token.replace(/\+/g, '-').replace(/\//g, '_');
  assert.ok(isAuthToken(urlSafe), 'same prefix and length');
  const check = checkAuthToken(KEY, 'alice', urlSafe, T0 + 1, POLICY);
  assert.equal(check.state, 'Invalid');
  assert.match(check.problem ?? '', /not base64/);
  assert.equal(checkAuthToken(KEY, 'alice', token, T0 + 1, POLICY).state, 'Authenticated');
});

test('good from its timestamp for twice the renewal period; a lifetime counts from the first token', () => {
  const token = generateAuthToken(KEY, 'alice', T0, null);
  assert.equal(checkAuthToken(KEY, 'alice', token, T0, POLICY).state, 'Authenticated');
  assert.equal(checkAuthToken(KEY, 'alice', token, T0 + 119, POLICY).state, 'Authenticated');
  assert.equal(checkAuthToken(KEY, 'alice', token, T0 + 120, POLICY).state, 'Expired');
  assert.equal(checkAuthToken(KEY, 'alice', token, T0 - 1, POLICY).state, 'Expired', 'a token from the future');
  const renewed = generateAuthToken(KEY, 'alice', T0 + 100, token);
  const lifetime = { lifetimeS: 150, renewalS: 60 };
  assert.equal(checkAuthToken(KEY, 'alice', renewed, T0 + 150, lifetime).state, 'Authenticated');
  const late = checkAuthToken(KEY, 'alice', renewed, T0 + 151, lifetime);
  assert.equal(late.state, 'Expired');
  assert.equal(late.hmacOk, true);
  assert.match(late.problem ?? '', /expired/);
});

test('a token made for the empty username checks out as such for any username; another user, key or bit does not', () => {
  const empty = generateAuthToken(KEY, '', T0, null);
  assert.equal(checkAuthToken(KEY, 'mallory', empty, T0 + 1, POLICY).state, 'AuthenticatedEmptyUser');
  assert.equal(checkAuthToken(KEY, 'mallory', empty, T0 + 500, POLICY).state, 'ExpiredEmptyUser');
  const token = generateAuthToken(KEY, 'alice', T0, null);
  assert.equal(checkAuthToken(KEY, 'bob', token, T0 + 1, POLICY).state, 'Invalid');
  assert.equal(checkAuthToken(Buffer.alloc(32, 8), 'alice', token, T0 + 1, POLICY).state, 'Invalid');
  const bytes = Buffer.from(token.slice(AUTH_TOKEN_PREFIX.length), 'base64');
  bytes[25] ^= 1; // the timestamp: a client moving its token's time on
  const tampered = AUTH_TOKEN_PREFIX + bytes.toString('base64');
  const check = checkAuthToken(KEY, 'alice', tampered, T0 + 1, POLICY);
  assert.equal(check.state, 'Invalid');
  assert.match(check.problem ?? '', /HMAC on token from client failed \(alice\)/);
});

test('the secret file is one 128-byte key in an "OpenVPN auth-token server key" PEM block; its HMAC key is bytes 64..96', () => {
  const text = generateAuthTokenSecretText();
  assert.match(text, /^-----BEGIN OpenVPN auth-token server key-----\n/);
  const body = Buffer.from(text.split('\n').slice(1, -2).join(''), 'base64');
  assert.equal(body.length, 128);
  assert.deepEqual(parseAuthTokenSecret(text, 'key.pem'), body.subarray(64, 96));
  assert.throws(
    () => parseAuthTokenSecret(text.replace(/auth-token server key/g, 'tls-crypt-v2 server key'), 'x.pem'),
    /x\.pem: '-----BEGIN OpenVPN auth-token server key-----' not found/,
  );
  const short = `-----BEGIN OpenVPN auth-token server key-----\n${Buffer.alloc(48).toString('base64')}\n-----END OpenVPN auth-token server key-----\n`;
  assert.throws(() => parseAuthTokenSecret(short, 'short.pem'), /short\.pem: expected 128 key bytes, found 48/);
});
