// The TLS material a config names, checked at start: extra-certs travel after our certificate,
// tls-groups / ecdh-curve reach OpenSSL, and material that cannot load is a start-up error that
// names the directive instead of a failure at the first handshake.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { makeTestPki } from '../lab/test-pki';
import { ConfigError, buildOptions, parseConfigText } from '../src/shared/config';
import { loadTlsMaterial } from '../src/shared/config/tls-material';
import { TlsChannel, createControlSecureContext } from '../src/shared/session/tls-channel';
import type { TlsMaterial } from '../src/shared/session/types';

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
  loadTlsMaterial(
    buildOptions(
      parseConfigText(`mode server\ntls-server\nca ca.crt\ncert server.crt\nkey ${key}\n${extra}`, join(dir, 'server.conf'), {
        expandIncludes: false,
      }),
      { cwd: dir },
    ).options,
  );

test('extra-certs follow the certificate in the chain we send', () => {
  const material = load('extra-certs intermediate.crt\n');
  const certs = (material.cert ?? '').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  assert.equal(certs.length, 2);
  assert.equal(new X509Certificate(certs[0]!).subject, new X509Certificate(pki.serverCert).subject);
  assert.equal(new X509Certificate(certs[1]!).subject, new X509Certificate(pki.otherCaCert).subject);
});

const loadClient = (lines: string): ReturnType<typeof loadTlsMaterial> =>
  loadTlsMaterial(
    buildOptions(parseConfigText(`client\ndev tun\nremote 192.0.2.1\n${lines}`, join(dir, 'client.ovpn'), { expandIncludes: false }), {
      cwd: dir,
    }).options,
  );

test('a client may log in with auth-user-pass alone, without cert and key, as VPN providers set it up', () => {
  writeFileSync(join(dir, 'login.txt'), 'alice\nsecret\n');
  const material = loadClient('ca ca.crt\nauth-user-pass login.txt\n');
  assert.equal(material.cert, undefined);
  assert.equal(material.key, undefined);
  assert.match(material.ca, /BEGIN CERTIFICATE/);
  // Neither a certificate nor a login: OpenVPN's "no client-side authentication method".
  assert.throws(
    () => loadClient('ca ca.crt\n'),
    (e: unknown) => e instanceof ConfigError && /no client-side authentication method/.test(e.message),
  );
  // Half a certificate is still an error that names what is missing, with a login or without.
  assert.throws(
    () => loadClient('ca ca.crt\ncert server.crt\nauth-user-pass login.txt\n'),
    (e: unknown) => e instanceof ConfigError && /'key' is required/.test(e.message),
  );
});

test('tls-groups wins over ecdh-curve and reaches the TLS context', () => {
  assert.equal(load('ecdh-curve prime256v1\n').groups, 'prime256v1');
  assert.equal(load('ecdh-curve prime256v1\ntls-groups X25519:secp384r1\n').groups, 'X25519:secp384r1');
});

test("a key that is not the certificate's, or an unknown group, is refused at start naming the directive", () => {
  assert.throws(
    () => load('', 'other.key'),
    (e: unknown) => e instanceof ConfigError && /server\.conf:5: key: ca, cert and key do not load together/.test(e.message),
  );
  assert.throws(
    () => load('tls-groups no-such-group\n'),
    (e: unknown) => e instanceof ConfigError && /tls-groups: not accepted by OpenSSL/.test(e.message),
  );
});

test("tls-cipher takes OpenVPN's IANA names and OpenSSL's, tls-ciphersuites the dashed spelling", () => {
  assert.equal(load('tls-cipher TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256\n').ciphers, 'ECDHE-ECDSA-AES128-GCM-SHA256');
  assert.equal(
    load('tls-cipher TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:TLS-ECDHE-RSA-WITH-AES-128-CBC-SHA256:HIGH\n')
      .ciphers,
    'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-SHA256:HIGH',
  );
  assert.equal(
    load('tls-ciphersuites TLS-AES-256-GCM-SHA384:TLS_CHACHA20_POLY1305_SHA256\n').ciphersuites,
    'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256',
  );
});

test('a TLS setting OpenSSL refuses is reported at its own file:line', () => {
  const refused = (extra: string, at: RegExp): void => {
    assert.throws(
      () => load(extra),
      (e: unknown) => e instanceof ConfigError && at.test(e.message),
      extra,
    );
  };
  refused('ecdh-curve prime256v1\ntls-cipher TLS-NO-SUCH-SUITE\n', /server\.conf:7: tls-cipher: not accepted by OpenSSL/);
  refused('tls-groups X25519\n\n\ntls-groups nope\n', /server\.conf:9: tls-groups: not accepted by OpenSSL/);
});

/** The TLS version and cipher two contexts negotiate in memory, or the error that ends the handshake. */
function negotiate(server: TlsMaterial, client: TlsMaterial): Promise<string> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (outcome: string): void => {
      if (done) return;
      done = true;
      s.destroy();
      c.destroy();
      resolve(outcome);
    };
    const s: TlsChannel = new TlsChannel('server', createControlSecureContext(server), {
      onCiphertext: (d) => setImmediate(() => c.feed(d)),
      onSecure: () => undefined,
      onPlaintext: () => undefined,
      onError: (e) => finish(`error: ${e.message}`),
    });
    const c: TlsChannel = new TlsChannel('client', createControlSecureContext(client), {
      onCiphertext: (d) => setImmediate(() => s.feed(d)),
      onSecure: (socket) => finish(`${socket.getProtocol() ?? '?'} ${socket.getCipher().name}`),
      onPlaintext: () => undefined,
      onError: (e) => finish(`error: ${e.message}`),
    });
  });
}

test('tls-version-max reaches the TLS context: the server negotiates no higher, a 1.3-only peer is refused', async () => {
  const capped = load('tls-version-max 1.2\n');
  assert.equal(capped.maxVersion, 'TLSv1.2');
  assert.equal(load('').maxVersion, undefined);
  const peer: TlsMaterial = { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey };
  assert.match(await negotiate(load(''), peer), /^TLSv1\.3 /);
  assert.match(await negotiate(capped, peer), /^TLSv1\.2 /);
  assert.match(await negotiate(load('tls-version-max 1.3\n'), peer), /^TLSv1\.3 /);
  assert.match(await negotiate(capped, { ...peer, minVersion: 'TLSv1.3' }), /^error: .*(version|protocol)/i);
});

test("dh FILE gives a server TLS 1.2's DHE suites (a Mullvad profile's tls-cipher); dh none, a client's dh and a bad file", async () => {
  const rsa = makeTestPki('rsa');
  const rsaDir = mkdtempSync(join(tmpdir(), 'shardvpn-tls-dh-'));
  try {
    writeFileSync(join(rsaDir, 'ca.crt'), rsa.caCert);
    writeFileSync(join(rsaDir, 'server.crt'), rsa.serverCert);
    writeFileSync(join(rsaDir, 'server.key'), rsa.serverKey);
    writeFileSync(join(rsaDir, 'not-dh.pem'), '-----BEGIN DH PARAMETERS-----\nbm90IERIIHBhcmFtZXRlcnM=\n-----END DH PARAMETERS-----\n');
    // RFC 7919 ffdhe2048, as installer scripts write dh.pem.
    writeFileSync(
      join(rsaDir, 'dh.pem'),
      execFileSync('openssl', ['genpkey', '-genparam', '-algorithm', 'DH', '-pkeyopt', 'group:ffdhe2048'], { encoding: 'utf8' }),
    );
    const server = (lines: string): TlsMaterial =>
      loadTlsMaterial(
        buildOptions(
          parseConfigText(
            `mode server\ntls-server\nca ca.crt\ncert server.crt\nkey server.key\ntls-version-max 1.2\n${lines}`,
            join(rsaDir, 'server.conf'),
            {
              expandIncludes: false,
            },
          ),
          { cwd: rsaDir },
        ).options,
      );
    const dheOnly: TlsMaterial = { ca: rsa.caCert, cert: rsa.clientCert, key: rsa.clientKey, ciphers: 'DHE-RSA-AES256-GCM-SHA384' };
    assert.equal(await negotiate(server('dh dh.pem\n'), dheOnly), 'TLSv1.2 DHE-RSA-AES256-GCM-SHA384');
    assert.match(await negotiate(server('dh none\n'), dheOnly), /^error: .*(no shared cipher|handshake failure)/i);
    // A client reads no dh (OpenVPN ignores it there).
    const client = buildOptions(
      parseConfigText('client\nremote 192.0.2.1\nca ca.crt\ncert server.crt\nkey server.key\ndh dh.pem\n', join(rsaDir, 'c.ovpn'), {
        expandIncludes: false,
      }),
      {
        cwd: rsaDir,
      },
    ).options;
    assert.equal(loadTlsMaterial(client).dh, undefined);
    assert.throws(
      () => server('dh not-dh.pem\n'),
      (e: unknown) =>
        e instanceof ConfigError &&
        /server\.conf:7: dh: not-dh\.pem holds no PEM DH parameters \(use 'dh none' for ECDHE only\)$/.test(e.message),
    );
  } finally {
    rsa.cleanup();
    rmSync(rsaDir, { recursive: true, force: true });
  }
});

test('peer-fingerprint without ca: no CA in the context, the fingerprints in the material; neither is an error', () => {
  const fp = Array.from({ length: 32 }, () => '5a').join(':');
  const material = loadTlsMaterial(
    buildOptions(
      parseConfigText(`mode server\ntls-server\ncert server.crt\nkey server.key\npeer-fingerprint ${fp}\n`, join(dir, 'server.conf'), {
        expandIncludes: false,
      }),
      {
        cwd: dir,
      },
    ).options,
  );
  assert.equal(material.ca, '');
  assert.deepEqual(material.peerFingerprints, [fp.toUpperCase()]);
  const noTrust =
    (extra: string): (() => unknown) =>
    () =>
      loadTlsMaterial(
        buildOptions(
          parseConfigText(`mode server\ntls-server\ncert server.crt\nkey server.key\n${extra}`, join(dir, 'server.conf'), {
            expandIncludes: false,
          }),
          { cwd: dir },
        ).options,
      );
  assert.throws(noTrust(''), (e: unknown) => e instanceof ConfigError && /needs 'ca' or at least one 'peer-fingerprint'/.test(e.message));
  // An empty block (the manual's server.conf before its first client is added) trusts nobody.
  assert.throws(
    noTrust('<peer-fingerprint>\n</peer-fingerprint>\n'),
    (e: unknown) => e instanceof ConfigError && /server\.conf:5: peer-fingerprint: a TLS server needs/.test(e.message),
  );
});

test('a ca with no certificate in it is an error naming the line, not "no CA" (even with peer-fingerprint)', () => {
  writeFileSync(join(dir, 'empty-ca.crt'), '\n');
  const fp = Array.from({ length: 32 }, () => '5a').join(':');
  assert.throws(
    () => load(`ca empty-ca.crt\npeer-fingerprint ${fp}\n`),
    (e: unknown) => e instanceof ConfigError && /server\.conf:6: ca: \S*empty-ca\.crt holds no PEM certificate/.test(e.message),
  );
});
