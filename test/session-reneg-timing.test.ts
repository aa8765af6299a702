// When a key renegotiates (reneg-sec max [min]), as OpenVPN 2.6 spreads it: with a min, a random
// time in [min, max] for either role; without, a server takes up to a tenth off max and a client
// uses max exactly.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { makeTestPki, type TestPki } from '../lab/test-pki';
import { renegotiationDelay } from '../src/shared/session/key-negotiation';
import type { SessionTiming } from '../src/shared/session/types';
import { SessionPair } from './helpers/session-pair';

let pki: TestPki;
before(() => {
  pki = makeTestPki('ecdsa');
});
after(() => pki.cleanup());

test('renegotiationDelay: [min, max] with a min, [0.9, 1] x max for a server without, max for a client', () => {
  for (const role of ['client', 'server'] as const) {
    assert.equal(renegotiationDelay(role, 60_000, 30_000, 0), 60_000);
    assert.equal(renegotiationDelay(role, 60_000, 30_000, 0.5), 45_000);
    assert.ok(renegotiationDelay(role, 60_000, 30_000, 0.999_999) >= 30_000);
    // A min above max leaves max; reneg-sec 0 never renegotiates, min or not.
    assert.equal(renegotiationDelay(role, 60_000, 90_000, 0.7), 60_000);
    assert.equal(renegotiationDelay(role, 0, 30_000, 0.7), 0);
    assert.equal(renegotiationDelay(role, 0, null, 0.7), 0);
  }
  // Never 0 ("never") nor a renegotiation as soon as keys exist: at least a second.
  assert.equal(renegotiationDelay('server', 10_000, 0, 0.999_999), 1000);
  assert.equal(renegotiationDelay('server', 60_000, null, 0), 54_000);
  assert.equal(renegotiationDelay('server', 60_000, null, 0.999_999), 60_000);
  assert.equal(renegotiationDelay('client', 60_000, null, 0), 60_000);
  assert.equal(renegotiationDelay('client', 60_000, null, 0.999_999), 60_000);
});

/** Fake ms from the client's keys to its own renegotiation, with the server's timer off. */
async function clientRenegotiatesAfter(clientTiming: SessionTiming): Promise<number> {
  const pair = new SessionPair({
    pki,
    random: Math.random,
    clientCiphers: ['AES-256-GCM'],
    serverCiphers: ['AES-256-GCM'],
    clientTiming,
    serverTiming: { renegMs: 0 },
  });
  try {
    await pair.establish();
    const keysAt = pair.now;
    await pair.runUntil(() => pair.clientEvents.some((e) => e.type === 'renegotiating'), 20_000);
    const renegotiating = pair.clientEvents.find((e) => e.type === 'renegotiating');
    assert.ok(renegotiating?.type === 'renegotiating' && renegotiating.initiatedBy === 'local');
    return pair.now - keysAt;
  } finally {
    pair.close();
  }
}

test('a client with reneg-sec 10 5 renegotiates between 5 and 10 s after its keys, at varying times; without the min at 10 s', async () => {
  assert.equal(await clientRenegotiatesAfter({ renegMs: 10_000 }), 10_000);
  const spread: number[] = [];
  for (let i = 0; i < 5; i++) spread.push(await clientRenegotiatesAfter({ renegMs: 10_000, renegMinMs: 5_000 }));
  for (const ms of spread) assert.ok(ms >= 5_000 && ms <= 10_000, `${ms} ms`);
  // Five draws from [5, 10] s all within the top 0.5 s: one chance in 100,000.
  assert.ok(
    spread.some((ms) => ms < 9_500),
    spread.join(', '),
  );
});
