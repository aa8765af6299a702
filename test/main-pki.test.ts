import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { createCertificateAuthority } from '../src/main/pki';

test('generated CA and leaf certificates verify with openssl, with the EKU remote-cert-tls needs', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'svpn-pki-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await createCertificateAuthority('test CA');
  const server = await ca.sign('server', 'server');
  const client = await ca.sign('client-1', 'client');
  writeFileSync(path.join(dir, 'ca.crt'), ca.cert);
  writeFileSync(path.join(dir, 'server.crt'), server.cert);
  writeFileSync(path.join(dir, 'client.crt'), client.cert);
  const verify = (file: string, purpose: string): string =>
    execFileSync('openssl', ['verify', '-CAfile', path.join(dir, 'ca.crt'), '-purpose', purpose, path.join(dir, file)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  assert.match(verify('server.crt', 'sslserver'), /OK/);
  assert.match(verify('client.crt', 'sslclient'), /OK/);
  // The client certificate is not good as a server one (remote-cert-tls server refuses it).
  assert.throws(() => verify('client.crt', 'sslserver'));
  const leaf = new X509Certificate(server.cert);
  assert.equal(leaf.subject, 'CN=server');
  assert.ok(leaf.checkIssued(new X509Certificate(ca.cert)));
  assert.ok(leaf.checkPrivateKey(createPrivateKey(server.key)));
  await assert.rejects(() => ca.sign('bad/name', 'client'), /common name 'bad\/name'/);
});
