// The TLS material a config names, checked at start: extra-certs travel after our certificate,
// tls-groups / ecdh-curve reach OpenSSL, and material that cannot load is a start-up error that
// names the directive instead of a failure at the first handshake.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { makeTestPki } from '../lab/test-pki';
import { ConfigError, buildOptions, parseConfigText } from '../src/shared/config';
import { loadTlsMaterial } from '../src/shared/config/tls-material';

const pki = makeTestPki();
const dir = mkdtempSync(join(tmpdir(), 'shardvpn-tls-material-'));
after(() => {
  pki.cleanup();
  rmSync(dir, { recursive: true, force: true });
});
writeFileSync(join(dir, 'ca.crt'), pki.caCert);
writeFileSync(join(dir, 'server.crt'), pki.serverCert);
writeFileSync(join(dir, 'server.key'), pki.serverKey);
writeFileSync(join(dir, 'other.key'), pki.clientKey);
writeFileSync(join(dir, 'intermediate.crt'), pki.otherCaCert);

const load = (extra: string, key = 'server.key'): ReturnType<typeof loadTlsMaterial> =>
  loadTlsMaterial(buildOptions(parseConfigText(`mode server\ntls-server\nca ca.crt\ncert server.crt\nkey ${key}\n${extra}`, join(dir, 'server.conf'), { expandIncludes: false }), { cwd: dir }).options);

test('extra-certs follow the certificate in the chain we send', () => {
  const material = load('extra-certs intermediate.crt\n');
  const certs = material.cert.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  assert.equal(certs.length, 2);
  assert.equal(new X509Certificate(certs[0]!).subject, new X509Certificate(pki.serverCert).subject);
  assert.equal(new X509Certificate(certs[1]!).subject, new X509Certificate(pki.otherCaCert).subject);
});

test('tls-groups wins over ecdh-curve and reaches the TLS context', () => {
  assert.equal(load('ecdh-curve prime256v1\n').groups, 'prime256v1');
  assert.equal(load('ecdh-curve prime256v1\ntls-groups X25519:secp384r1\n').groups, 'X25519:secp384r1');
});

test('a key that is not the certificate\'s, or an unknown group, is refused at start naming the directive', () => {
  assert.throws(() => load('', 'other.key'), (e: unknown) => e instanceof ConfigError && /server\.conf:5: key: ca, cert and key do not load together/.test(e.message));
  assert.throws(() => load('tls-groups no-such-group\n'), (e: unknown) => e instanceof ConfigError && /tls-groups: not accepted by OpenSSL/.test(e.message));
});
