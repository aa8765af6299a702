// A throw-away PKI for session tests: ECDSA prime256v1 CA, server cert (serverAuth), client
// cert (clientAuth), and a second CA with its own client cert (must be refused). The benchmarks
// can ask for RSA-2048 keys instead, to compare handshake costs by key type.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  readonly dir: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly otherCaCert: string;
  readonly otherClientCert: string;
  readonly otherClientKey: string;
  /** Client cert of the main CA, revoked in `crl`. */
  readonly revokedClientCert: string;
  readonly revokedClientKey: string;
  readonly crl: string;
  /** A CRL of the main CA from before `revoked` was revoked (no entries). */
  readonly emptyCrl: string;
  /** Paths of the same files, for the openvpn binary. */
  readonly files: Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string>;
  cleanup(): void;
}

function ossl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

export type PkiKeyType = 'ecdsa' | 'rsa';

function genKey(dir: string, name: string, keyType: PkiKeyType): void {
  if (keyType === 'rsa') ossl(dir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', `${name}.key`]);
  else ossl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
}

function makeCa(dir: string, name: string, keyType: PkiKeyType): void {
  genKey(dir, name, keyType);
  ossl(dir, [
    'req',
    '-x509',
    '-new',
    '-key',
    `${name}.key`,
    '-sha256',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-out',
    `${name}.crt`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

/** A leaf's own subject (default `/CN=name`) and extension lines added to the usual ones. */
export interface LeafExtras {
  subject?: string;
  extensions?: string[];
}

function makeLeaf(dir: string, ca: string, name: string, eku: string, keyType: PkiKeyType = 'ecdsa', extras: LeafExtras = {}): void {
  genKey(dir, name, keyType);
  ossl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', extras.subject ?? `/CN=${name}`, '-out', `${name}.csr`]);
  writeFileSync(
    join(dir, `${name}.ext`),
    // RSA keys sign (and, for TLS 1.2 RSA key exchange, encipher); EC keys sign and agree.
    `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,${keyType === 'rsa' ? 'keyEncipherment' : 'keyAgreement'}\nextendedKeyUsage=${eku}\n` +
      (extras.extensions ?? []).map((line) => `${line}\n`).join(''),
  );
  ossl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-days',
    '2',
    '-sha256',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  ]);
}

export function makeTestPki(keyType: PkiKeyType = 'ecdsa'): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'shardvpn-pki-'));
  try {
    makeCa(dir, 'ca', keyType);
    makeLeaf(dir, 'ca', 'server', 'serverAuth', keyType);
    makeLeaf(dir, 'ca', 'client', 'clientAuth', keyType);
    makeCa(dir, 'otherca', keyType);
    makeLeaf(dir, 'otherca', 'intruder', 'clientAuth', keyType);
    makeLeaf(dir, 'ca', 'revoked', 'clientAuth', keyType);
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'crlnumber'), '01\n');
    writeFileSync(
      join(dir, 'ca.cnf'),
      '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\n',
    );
    ossl(dir, ['ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.crt', '-gencrl', '-out', 'crl-empty.pem']);
    ossl(dir, ['ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.crt', '-revoke', 'revoked.crt']);
    ossl(dir, ['ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.crt', '-gencrl', '-out', 'crl.pem']);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const r = (f: string): string => readFileSync(join(dir, f), 'utf8');
  return {
    dir,
    caCert: r('ca.crt'),
    serverCert: r('server.crt'),
    serverKey: r('server.key'),
    clientCert: r('client.crt'),
    clientKey: r('client.key'),
    otherCaCert: r('otherca.crt'),
    otherClientCert: r('intruder.crt'),
    otherClientKey: r('intruder.key'),
    revokedClientCert: r('revoked.crt'),
    revokedClientKey: r('revoked.key'),
    crl: r('crl.pem'),
    emptyCrl: r('crl-empty.pem'),
    files: {
      ca: join(dir, 'ca.crt'),
      serverCert: join(dir, 'server.crt'),
      serverKey: join(dir, 'server.key'),
      clientCert: join(dir, 'client.crt'),
      clientKey: join(dir, 'client.key'),
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * One more client certificate (clientAuth) of the PKI's CA, named `name` (its files'), with
 * `extras`' subject and extensions when given; returns the files' paths.
 */
export function issueClientCert(pki: TestPki, name: string, extras: LeafExtras = {}): { cert: string; key: string } {
  makeLeaf(pki.dir, 'ca', name, 'clientAuth', 'ecdsa', extras);
  return { cert: join(pki.dir, `${name}.crt`), key: join(pki.dir, `${name}.key`) };
}

/** A self-signed ECDSA P-256 certificate and key (PEM) written into `dir`, for plain TLS tests. */
export function selfSignedCert(dir: string): { cert: string; key: string; certFile: string; keyFile: string } {
  const keyFile = join(dir, 'self-signed.key');
  const certFile = join(dir, 'self-signed.crt');
  ossl(dir, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    '/CN=t',
    '-days',
    '2',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
}
