// A crl-verify file as the server reads it again before each TLS negotiation (prepared-tls.ts
// preparedTls -> reloadCrl): whatever the file holds, the result is a TLS context, with
// crlUnavailable set when the file does not parse (every peer refused, as OpenVPN's "CRL not
// loaded"); nothing is thrown. The input is written to the file each time.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { preparedTls } from '../../../src/shared/session/prepared-tls';
import type { TlsMaterial } from '../../../src/shared/session/types';
import { makeTestPki } from '../../../lab/test-pki';
import { Finding } from '../finding';

const pki = makeTestPki();
process.on('exit', () => pki.cleanup());
const file = join(pki.dir, 'fuzz-crl.pem');

export function fuzz(data: Buffer): void {
  writeFileSync(file, data);
  // A fresh material each time, with a stat that never matches: the file is read again now.
  const material: TlsMaterial = {
    ca: pki.caCert,
    cert: pki.serverCert,
    key: pki.serverKey,
    crl: pki.crl,
    crlFile: { path: file, mtimeMs: -1, size: -1 },
  };
  const prepared = preparedTls(material);
  if (prepared.context === undefined || prepared.caCerts.length === 0) throw new Finding('preparedTls: no context or no CA');
  if (prepared.crlUnavailable !== undefined && !prepared.crlUnavailable.startsWith(`cannot load crl-verify file ${file}: `)) {
    throw new Finding(`preparedTls: ${prepared.crlUnavailable}`);
  }
}
