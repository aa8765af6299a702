// A shard client's auth-gen-token session (src/workers/shard/client-auth-token.ts): what a login
// says as a token, the session kept across an expired token's HMAC, renewals on the renewal
// period, the end of the lifetime, and settings read anew after a reload.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { authTokenSessionId, checkAuthToken, generateAuthToken } from '../src/shared/protocol/auth-token';
import type { ShardConfig } from '../src/shared/shard-protocol';
import { ClientAuthToken } from '../src/workers/shard/client-auth-token';

const KEY = Buffer.alloc(32, 3);
type Setting = ShardConfig['authGenToken'];
const setting = (lifetimeS: number, renewalS: number): Setting => ({ key: KEY, lifetimeS, renewalS, externalAuth: false });
const nowS = (): number => Math.floor(Date.now() / 1000);

test('a password is Initial and gets a new session; a good token is Authenticated and keeps its session', () => {
  const fresh = new ClientAuthToken(() => setting(0, 60));
  const login = fresh.presented('alice', 'secret');
  assert.equal(login.state, 'Initial');
  assert.equal(login.problem, null);
  const pushed = fresh.issue(1000);
  assert.ok(pushed !== null);
  assert.equal(authTokenSessionId(pushed), login.sessionId);
  assert.equal(fresh.current, pushed);

  const again = new ClientAuthToken(() => setting(0, 60));
  const back = again.presented('alice', pushed);
  assert.deepEqual(back, { username: 'alice', state: 'Authenticated', sessionId: login.sessionId, problem: null });
  assert.equal(authTokenSessionId(again.issue(2000)!), login.sessionId);
});

test('an expired token whose HMAC holds keeps its session (external-auth may admit it); a forged one starts a new one', () => {
  const old = generateAuthToken(KEY, 'alice', nowS() - 1000, null);
  const client = new ClientAuthToken(() => setting(0, 60));
  const login = client.presented('alice', old);
  assert.equal(login.state, 'Expired');
  assert.equal(login.sessionId, authTokenSessionId(old));
  const forged = generateAuthToken(Buffer.alloc(32, 9), 'alice', nowS(), null);
  const other = new ClientAuthToken(() => setting(0, 60));
  const refused = other.presented('alice', forged);
  assert.equal(refused.state, 'Invalid');
  assert.notEqual(refused.sessionId, authTokenSessionId(forged));
  // A token that held only for the empty username leaves the username empty from then on.
  const empty = new ClientAuthToken(() => setting(0, 60));
  const blank = empty.presented('mallory', generateAuthToken(KEY, '', nowS(), null));
  assert.equal(blank.state, 'AuthenticatedEmptyUser');
  assert.equal(blank.username, '');
  assert.equal(checkAuthToken(KEY, '', empty.issue(0)!, nowS(), { lifetimeS: 0, renewalS: 60 }).state, 'Authenticated');
});

test('renewals fall due each renewal period and keep the session; past the lifetime the session ends instead', () => {
  const client = new ClientAuthToken(() => setting(0, 10));
  client.presented('alice', 'secret');
  const first = client.issue(5000)!;
  assert.equal(client.nextRenewal, 15_000);
  assert.equal(client.due(14_999), null);
  const due = client.due(15_000);
  assert.equal(due?.kind, 'renewed');
  assert.equal(authTokenSessionId(due.kind === 'renewed' ? due.token : ''), authTokenSessionId(first));
  assert.equal(client.nextRenewal, 25_000);

  const old = generateAuthToken(KEY, 'alice', nowS() - 100, null);
  const aging = new ClientAuthToken(() => setting(50, 10));
  aging.presented('alice', old);
  aging.issue(0);
  assert.deepEqual(aging.due(10_000), { kind: 'expired' });
  assert.equal(aging.nextRenewal, Infinity, 'nothing more after the end');
});

test('a reload that removes auth-gen-token stops the renewals; one that changes the period applies at the next', () => {
  let current: Setting = setting(0, 10);
  const client = new ClientAuthToken(() => current);
  client.presented('alice', 'secret');
  client.issue(0);
  current = setting(0, 30);
  assert.equal(client.due(10_000)?.kind, 'renewed');
  assert.equal(client.nextRenewal, 40_000);
  current = null;
  assert.equal(client.due(40_000), null);
  assert.equal(client.nextRenewal, Infinity);
});
