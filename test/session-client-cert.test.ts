// verify-client-cert on the server side of a session (OpenVPN's ssl_verify.c with
// SSLF_CLIENT_CERT_NOT_REQUIRED / _OPTIONAL): `none` asks for no certificate, `optional` verifies
// one that is shown and lets a client without one in, `require` (the default) refuses it. A
// client without a certificate is named UNDEF until auth-user-pass-verify and
// username-as-common-name name it after its login.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { makeTestPki } from '../lab/test-pki';
import type { SessionEvent } from '../src/shared/session/types';
import { SessionPair, mulberry32 } from './helpers/session-pair';

const pki = makeTestPki();
after(() => pki.cleanup());

const verified = (events: readonly SessionEvent[]): Extract<SessionEvent, { type: 'tls-verified' }> | undefined =>
  events.find((e): e is Extract<SessionEvent, { type: 'tls-verified' }> => e.type === 'tls-verified');

function handshake(
  clientCert: false | { cert: string; key: string } | undefined,
  verifyClientCert: 'none' | 'optional' | 'require',
): SessionPair {
  return new SessionPair({
    pki,
    random: mulberry32(5),
    clientCiphers: ['AES-256-GCM'],
    serverCiphers: ['AES-256-GCM'],
    ...(clientCert !== undefined ? { clientCert } : {}),
    verifyClientCert,
  });
}

for (const [clientCert, mode] of [
  [false, 'none'],
  [false, 'optional'],
] as const) {
  test(`verify-client-cert ${mode}: a client without a certificate is let in as UNDEF, its login reaches the server`, async () => {
    const pair = handshake(clientCert, mode);
    try {
      await pair.establish();
      const event = verified(pair.serverEvents);
      assert.equal(event?.commonName, 'UNDEF');
      assert.equal(event?.serialNumber, '');
      const km2 = pair.serverEvents.find((e) => e.type === 'key-method-2');
      assert.equal(km2?.type === 'key-method-2' ? km2.username : null, 'alice');
    } finally {
      pair.close();
    }
  });
}

test('verify-client-cert optional: a certificate that is shown is verified and names the client', async () => {
  const pair = handshake(undefined, 'optional');
  try {
    await pair.establish();
    const event = verified(pair.serverEvents);
    assert.equal(event?.commonName, 'client');
    assert.notEqual(event?.serialNumber, '');
  } finally {
    pair.close();
  }
});

/** Runs until the server fails the handshake; its error as "reason: detail". */
async function serverError(pair: SessionPair): Promise<string> {
  pair.client.start();
  await pair.runUntil(() => pair.serverEvents.some((e) => e.type === 'error'), 30_000);
  const error = pair.serverEvents.find((e) => e.type === 'error');
  return error?.type === 'error' ? `${error.reason}: ${error.detail}` : '';
}

test('verify-client-cert require: a client without a certificate is refused', async () => {
  const pair = handshake(false, 'require');
  try {
    assert.match(await serverError(pair), /^cert-rejected: /);
    assert.equal(verified(pair.serverEvents), undefined, 'never verified');
  } finally {
    pair.close();
  }
});

test('verify-client-cert optional: a certificate from another CA is refused, not taken for none', async () => {
  const pair = handshake({ cert: pki.otherClientCert, key: pki.otherClientKey }, 'optional');
  try {
    assert.match(await serverError(pair), /^cert-rejected: /);
    assert.equal(verified(pair.serverEvents), undefined, 'never verified');
  } finally {
    pair.close();
  }
});

test('verify-client-cert none: a client that has a certificate is not asked for it, and is UNDEF', async () => {
  const pair = handshake(undefined, 'none');
  try {
    await pair.establish();
    assert.equal(verified(pair.serverEvents)?.commonName, 'UNDEF');
  } finally {
    pair.close();
  }
});
