import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { selfSignedCert } from '../lab/test-pki';
import type { AddressInfo } from 'node:net';
import {
  EXPORT_KEY_DATA_LABEL,
  KEY_BLOCK_SIZE,
  checkKeyBlock,
  deriveKeyBlockEkm,
  deriveKeyBlockPrf,
  sliceAeadKeys,
  tls1Prf,
  tlsSocketExporter,
} from '../src/shared/protocol/key-derivation';

const dir = mkdtempSync(join(tmpdir(), 'shardvpn-kdf-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// OpenSSL's own TLS1-PRF with MD5-SHA1: the exact primitive OpenVPN calls (crypto_openssl.c
// ssl_tls1_PRF -> EVP_PKEY_TLS1_PRF, EVP_md5_sha1()).
function opensslPrf(secret: Buffer, seed: Buffer, len: number): Buffer {
  const r = spawnSync(
    'openssl',
    [
      'kdf',
      '-keylen',
      String(len),
      '-kdfopt',
      'digest:MD5-SHA1',
      '-kdfopt',
      `hexsecret:${secret.toString('hex')}`,
      '-kdfopt',
      `hexseed:${seed.toString('hex')}`,
      'TLS1-PRF',
    ],
    { encoding: 'utf8', timeout: 10_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  return Buffer.from(r.stdout.trim().replace(/:/g, ''), 'hex');
}

test('TLS 1.0 PRF: fixed vector from OpenSSL TLS1-PRF (MD5-SHA1)', () => {
  // openssl kdf -keylen 48 -kdfopt digest:MD5-SHA1 -kdfopt hexsecret:0102030405 -kdfopt hexseed:0a0b0c TLS1-PRF
  const expected = Buffer.from('4bc3eb5e56127ef7bba1fd522b87e3732cbf290498a045b069a17f93e9c7281df0f6ab4cac4539601e38d7e68b89906e', 'hex');
  assert.deepEqual(Buffer.from(tls1Prf(Buffer.from('0102030405', 'hex'), Buffer.from('0a0b0c', 'hex'), 48)), expected);
});

test('TLS 1.0 PRF matches OpenSSL for odd and even secrets and long outputs', () => {
  for (const [slen, olen] of [
    [48, 48],
    [48, 256],
    [47, 100],
    [1, 17],
    [64, 256],
  ] as const) {
    const secret = randomBytes(slen);
    const seed = randomBytes(77);
    assert.deepEqual(Buffer.from(tls1Prf(secret, seed, olen)), opensslPrf(secret, seed, olen), `secret ${slen} out ${olen}`);
  }
});

test('PRF key block: master secret then key expansion with both session ids (wire doc 5.1)', () => {
  const client = { preMaster: randomBytes(48), random1: randomBytes(32), random2: randomBytes(32) };
  const server = { random1: randomBytes(32), random2: randomBytes(32) };
  const clientSid = randomBytes(8);
  const serverSid = randomBytes(8);
  const block = deriveKeyBlockPrf({ client, server, clientSid, serverSid });
  assert.equal(block.length, KEY_BLOCK_SIZE);
  const master = opensslPrf(client.preMaster, Buffer.concat([Buffer.from('OpenVPN master secret'), client.random1, server.random1]), 48);
  const expected = opensslPrf(
    master,
    Buffer.concat([Buffer.from('OpenVPN key expansion'), client.random2, server.random2, clientSid, serverSid]),
    256,
  );
  assert.deepEqual(Buffer.from(block), expected);
  // Swapping the session ids changes everything: the order is client, then server.
  const swapped = deriveKeyBlockPrf({ client, server, clientSid: serverSid, serverSid: clientSid });
  assert.notDeepEqual(Buffer.from(swapped), expected);
  assert.throws(() => deriveKeyBlockPrf({ client: server, server, clientSid, serverSid }), /pre_master/);
});

test('EKM: exporter is asked for 256 bytes with the OpenVPN label and no context', () => {
  const calls: unknown[][] = [];
  const block = deriveKeyBlockEkm((...args: unknown[]) => {
    calls.push(args);
    return Buffer.alloc(256, 7);
  });
  assert.deepEqual(calls, [[256, 'EXPORTER-OpenVPN-datakeys']]);
  assert.equal(EXPORT_KEY_DATA_LABEL, 'EXPORTER-OpenVPN-datakeys');
  assert.deepEqual(Buffer.from(block), Buffer.alloc(256, 7));
  assert.throws(() => deriveKeyBlockEkm(() => Buffer.alloc(10)), /returned 10 bytes/);
});

test('AEAD slicing per role (wire doc 5.3)', () => {
  const block = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) block[i] = i;
  const c = sliceAeadKeys(block, 'client', 32);
  assert.deepEqual([c.encryptKey[0], c.encryptKey.length, c.encryptImplicitIv[0], c.encryptImplicitIv.length], [0, 32, 64, 8]);
  assert.deepEqual([c.decryptKey[0], c.decryptKey.length, c.decryptImplicitIv[0], c.decryptImplicitIv.length], [128, 32, 192, 8]);
  const s = sliceAeadKeys(block, 'server', 16);
  assert.deepEqual([s.encryptKey[0], s.encryptKey.length, s.encryptImplicitIv[0]], [128, 16, 192]);
  assert.deepEqual([s.decryptKey[0], s.decryptKey.length, s.decryptImplicitIv[0]], [0, 16, 64]);
  assert.equal(checkKeyBlock(block, 32), true);
  const weak = Buffer.from(block);
  weak.fill(0, 128, 128 + 16);
  assert.equal(checkKeyBlock(weak, 16), false);
  assert.equal(checkKeyBlock(weak, 32), true); // bytes 144.. are not zero
});

test('EKM over a real TLS session: client and server slices pair up and an AES-GCM packet crosses', async () => {
  const { key, cert } = selfSignedCert(dir);
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    let serverSide: TLSSocket | undefined;
    const server = createServer({ key, cert, minVersion: version, maxVersion: version }, (s) => {
      serverSide = s;
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const port = (server.address() as AddressInfo).port;
    const client = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: version, maxVersion: version });
    await new Promise<void>((res) => client.once('secureConnect', () => res()));
    // The server socket's handshake finishes before or with the client's.
    for (let i = 0; i < 100 && serverSide === undefined; i++) await new Promise((res) => setTimeout(res, 5));
    assert.ok(serverSide);
    const srvSock = serverSide;
    const cb = deriveKeyBlockEkm(tlsSocketExporter(client));
    const sb = deriveKeyBlockEkm(tlsSocketExporter(srvSock));
    assert.deepEqual(Buffer.from(cb), Buffer.from(sb), version);
    // Not the same as exporting with an empty context (differs under TLS 1.2 at least).
    if (version === 'TLSv1.2') {
      assert.notDeepEqual(Buffer.from(cb), client.exportKeyingMaterial(256, EXPORT_KEY_DATA_LABEL, Buffer.alloc(0)));
    }
    const ck = sliceAeadKeys(cb, 'client', 32);
    const sk = sliceAeadKeys(sb, 'server', 32);
    assert.deepEqual(Buffer.from(ck.encryptKey), Buffer.from(sk.decryptKey));
    assert.deepEqual(Buffer.from(ck.encryptImplicitIv), Buffer.from(sk.decryptImplicitIv));
    assert.deepEqual(Buffer.from(sk.encryptKey), Buffer.from(ck.decryptKey));
    assert.notDeepEqual(Buffer.from(ck.encryptKey), Buffer.from(ck.decryptKey));
    // Nonce = packet id (4) || implicit IV (8), as the data channel builds it.
    const pid = Buffer.from([0, 0, 0, 1]);
    const nonce = Buffer.concat([pid, ck.encryptImplicitIv]);
    const enc = createCipheriv('aes-256-gcm', ck.encryptKey, nonce);
    const ct = Buffer.concat([enc.update('ping'), enc.final()]);
    const dec = createDecipheriv('aes-256-gcm', sk.decryptKey, Buffer.concat([pid, sk.decryptImplicitIv]));
    dec.setAuthTag(enc.getAuthTag());
    assert.equal(Buffer.concat([dec.update(ct), dec.final()]).toString(), 'ping');
    client.destroy();
    srvSock.destroy();
    await new Promise<void>((res) => server.close(() => res()));
  }
});
