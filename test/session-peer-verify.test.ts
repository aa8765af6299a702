// The peer certificate checks read the certificate OpenSSL already holds (node's plain
// peer-certificate object) instead of an X509Certificate copy, and must come to the same
// answers: the same subject lines, CN and serial, the same EKU and verify-x509-name verdicts;
// names X509Certificate would print escaped are left to X509Certificate.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';

import { issueClientCert, makeTestPki, selfSignedCert, type TestPki } from '../lab/test-pki';
import { keyUsageOf } from '../src/shared/session/cert-key-usage';
import { certPurposeMatches } from '../src/shared/native/tls-context';
import { plainFields, verifyPeer } from '../src/shared/session/peer-verify';
import { TlsChannel, createControlSecureContext } from '../src/shared/session/tls-channel';

let pki: TestPki;
before(() => {
  pki = makeTestPki('ecdsa');
});
after(() => pki.cleanup());

/** An in-memory TLS handshake; resolves with the server's socket once it is secure. */
function handshake(clientCert: string, clientKey: string): Promise<{ socket: TLSSocket; close: () => void }> {
  const server = createControlSecureContext({ ca: pki.caCert, cert: pki.serverCert, key: pki.serverKey });
  const client = createControlSecureContext({ ca: pki.caCert, cert: clientCert, key: clientKey });
  return new Promise((resolve, reject) => {
    const s: TlsChannel = new TlsChannel('server', server, {
      onCiphertext: (d) => setImmediate(() => c.feed(d)),
      onSecure: (socket) => resolve({ socket, close: () => (s.destroy(), c.destroy()) }),
      onPlaintext: () => undefined,
      onError: reject,
    });
    const c: TlsChannel = new TlsChannel('client', client, {
      onCiphertext: (d) => setImmediate(() => s.feed(d)),
      onSecure: () => undefined,
      onPlaintext: () => undefined,
      onError: reject,
    });
  });
}

test('plain fields equal X509Certificate: subject lines, serial, EKU; the verdicts agree', async () => {
  const { socket, close } = await handshake(pki.clientCert, pki.clientKey);
  try {
    const x509 = socket.getPeerX509Certificate()!;
    const fields = plainFields(socket);
    assert.ok(fields !== null);
    assert.equal(fields.subject, x509.subject);
    assert.equal(fields.serialNumber, x509.serialNumber);
    assert.deepEqual(fields.keyUsage, x509.keyUsage);
    const ok = verifyPeer(socket, [], { remoteCertTls: 'client', verifyX509Name: { name: 'client', type: 'name' } });
    assert.deepEqual(ok, { ok: true, commonName: 'client', subject: x509.subject, serialNumber: x509.serialNumber });
    const prefix = verifyPeer(socket, [], { verifyX509Name: { name: 'cli', type: 'name-prefix' } });
    assert.equal(prefix.ok, true);
    const subject = verifyPeer(socket, [], { verifyX509Name: { name: x509.subject.split('\n').join(', '), type: 'subject' } });
    assert.equal(subject.ok, true);
    const wrongEku = verifyPeer(socket, [], { remoteCertTls: 'server' });
    assert.deepEqual(wrongEku, {
      ok: false,
      reason: 'certificate has no EKU TLS Web Server Authentication (remote-cert-tls server)',
    });
    const eku = verifyPeer(socket, [], { remoteCertEku: 'TLS Web Client Authentication' });
    assert.equal(eku.ok, true);
    const wrongName = verifyPeer(socket, [], { verifyX509Name: { name: 'server', type: 'name' } });
    assert.deepEqual(wrongName, { ok: false, reason: "verify-x509-name name 'server' does not match subject CN 'client'" });
  } finally {
    close();
  }
});

test('a CN with characters X509Certificate escapes: the subject through X509Certificate, the common name as written (as OpenVPN reads it)', async () => {
  const odd = issueClientCert(pki, 'odd,name;x');
  const { socket, close } = await handshake(readFileSync(odd.cert, 'utf8'), readFileSync(odd.key, 'utf8'));
  try {
    assert.equal(plainFields(socket), null);
    const x509 = socket.getPeerX509Certificate()!;
    const r = verifyPeer(socket, [], {});
    assert.ok(r.ok);
    assert.equal(r.subject, x509.subject);
    assert.equal(r.commonName, 'odd,name;x');
    assert.equal(r.serialNumber, x509.serialNumber);
  } finally {
    close();
  }
});

test('x509-username-field: a subject attribute, the serial, the last SAN email, several joined; a missing one refuses', async () => {
  const named = issueClientCert(pki, 'named', {
    subject: '/CN=alice/OU=eng/OU=ops/emailAddress=alice@example.org',
    extensions: ['subjectAltName=email:first@example.org,DNS:alice.example.org,email:last@example.org'],
  });
  const { socket, close } = await handshake(readFileSync(named.cert, 'utf8'), readFileSync(named.key, 'utf8'));
  try {
    const x509 = socket.getPeerX509Certificate()!;
    const name = (fields: string[]): string => {
      const r = verifyPeer(socket, [], { x509UsernameField: fields });
      assert.ok(r.ok, JSON.stringify(r));
      return r.commonName;
    };
    assert.equal(name(['emailAddress']), 'alice@example.org');
    // The last OU, as OpenVPN takes the last entry of an attribute; long names work too.
    assert.equal(name(['OU']), 'ops');
    assert.equal(name(['organizationalUnitName']), 'ops');
    assert.equal(name(['serialNumber']), `0x${x509.serialNumber}`);
    assert.equal(name(['ext:subjectAltName']), 'last@example.org');
    assert.equal(name(['CN', 'emailAddress']), 'alice_alice@example.org');
    // verify-x509-name name compares against the name so found, as OpenVPN's does.
    assert.equal(
      verifyPeer(socket, [], { x509UsernameField: ['emailAddress'], verifyX509Name: { name: 'alice@example.org', type: 'name' } }).ok,
      true,
    );
    assert.deepEqual(verifyPeer(socket, [], { x509UsernameField: ['L'] }), {
      ok: false,
      reason: "VERIFY ERROR: could not extract L from X509 subject string ('CN=alice, OU=eng, OU=ops, emailAddress=alice@example.org')",
    });
  } finally {
    close();
  }
  // Without a SAN email, ext:subjectAltName has nothing to give.
  const plain = await handshake(pki.clientCert, pki.clientKey);
  try {
    assert.equal(verifyPeer(plain.socket, [], { x509UsernameField: ['ext:subjectAltName'] }).ok, false);
  } finally {
    plain.close();
  }
});

test('remote-cert-ku: the keyUsage byte read from the DER; one wanted value must be all there; none, or no extension, as OpenVPN', async () => {
  // The lab's ECDSA leaves: digitalSignature and keyAgreement (0x80 | 0x08); its CA: keyCertSign and cRLSign.
  assert.equal(keyUsageOf(new X509Certificate(pki.clientCert).raw), 0x88);
  assert.equal(keyUsageOf(new X509Certificate(pki.caCert).raw), 0x06);
  const dir = mkdtempSync(join(tmpdir(), 'shardvpn-ku-'));
  try {
    const bare = selfSignedCert(dir);
    // openssl req -x509 writes no keyUsage by default.
    assert.equal(keyUsageOf(new X509Certificate(bare.cert).raw), null);
    // Cut anywhere or garbled, the walk gives up without throwing.
    const raw = new X509Certificate(pki.clientCert).raw;
    for (let n = 0; n < raw.length; n++) keyUsageOf(raw.subarray(0, n));
    assert.equal(keyUsageOf(Buffer.from('30820fff0000', 'hex')), null);

    const { socket, close } = await handshake(pki.clientCert, pki.clientKey);
    try {
      assert.equal(verifyPeer(socket, [], { remoteCertKu: [] }).ok, true);
      assert.equal(verifyPeer(socket, [], { remoteCertKu: [0x80] }).ok, true);
      assert.equal(verifyPeer(socket, [], { remoteCertKu: [0xa0, 0x88] }).ok, true);
      assert.deepEqual(verifyPeer(socket, [], { remoteCertKu: [0xa0] }), {
        ok: false,
        reason: 'certificate has key usage 0088, expected one of 00a0 (remote-cert-ku)',
      });
    } finally {
      close();
    }
    // A peer certificate without the extension fails remote-cert-ku and remote-cert-tls (its KU requirement).
    const fingerprint = new X509Certificate(bare.cert).fingerprint256;
    const selfSigned = await handshake(bare.cert, bare.key);
    try {
      const trust = { noCa: true, peerFingerprints: [fingerprint] } as const;
      assert.equal(verifyPeer(selfSigned.socket, [], trust).ok, true);
      assert.deepEqual(verifyPeer(selfSigned.socket, [], { ...trust, remoteCertKu: [] }), {
        ok: false,
        reason: 'certificate does not have key usage extension',
      });
      assert.equal(verifyPeer(selfSigned.socket, [], { ...trust, remoteCertTls: 'client' }).ok, false);
    } finally {
      selfSigned.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ns-cert-type: OpenSSL purpose check of the peer certificate, server and client, garbage refused', async () => {
  const server = new X509Certificate(pki.serverCert).raw;
  const client = new X509Certificate(pki.clientCert).raw;
  assert.equal(certPurposeMatches(server, 'server'), true);
  assert.equal(certPurposeMatches(server, 'client'), false);
  assert.equal(certPurposeMatches(client, 'client'), true);
  assert.equal(certPurposeMatches(client, 'server'), false);
  // A CA (keyCertSign, cRLSign) is neither; cut or garbled DER is refused, never thrown.
  assert.equal(certPurposeMatches(new X509Certificate(pki.caCert).raw, 'server'), false);
  for (let n = 0; n < client.length; n += 7) assert.equal(certPurposeMatches(client.subarray(0, n), 'client'), false);
  const { socket, close } = await handshake(pki.clientCert, pki.clientKey);
  try {
    assert.equal(verifyPeer(socket, [], { nsCertType: 'client' }).ok, true);
    assert.deepEqual(verifyPeer(socket, [], { nsCertType: 'server' }), {
      ok: false,
      reason: 'VERIFY nsCertType ERROR: CN=client, require nsCertType=SERVER',
    });
  } finally {
    close();
  }
});
