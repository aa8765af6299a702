// A crl-verify file as the server reads it again before each TLS negotiation (prepared-tls.ts
// preparedTls -> reloadCrl): whatever the file holds, the result is a TLS context, with
// crlUnavailable set when the file does not parse (every peer refused, as OpenVPN's "CRL not
// loaded"); nothing is thrown. As on a server, one TLS material lives for the whole run and the
// file changes under it: the input is written to the file, with a new mtime, each time.
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { preparedTls } from '../../../src/shared/session/prepared-tls';
import type { TlsMaterial } from '../../../src/shared/session/types';
import { makeTestPki } from '../../../lab/test-pki';
import { Finding } from '../finding';

const pki = makeTestPki();
process.on('exit', () => pki.cleanup());
const file = join(pki.dir, 'fuzz-crl.pem');
writeFileSync(file, pki.crl);
const material: TlsMaterial = {
  ca: pki.caCert,
  cert: pki.serverCert,
  key: pki.serverKey,
  crl: pki.crl,
  crlFile: { path: file, mtimeMs: 0, size: 0 },
};
let mtime = 1_000_000_000;

export function fuzz(data: Buffer): void {
  writeFileSync(file, data);
  // A new mtime every time (seconds apart), so preparedTls sees a changed file and reads it now.
  mtime += 1;
  utimesSync(file, mtime, mtime);
  const prepared = preparedTls(material);
  if (prepared.context === undefined || prepared.caCerts.length === 0) throw new Finding('preparedTls: no context or no CA');
  if (prepared.crlUnavailable !== undefined && !prepared.crlUnavailable.startsWith(`cannot load crl-verify file ${file}: `)) {
    throw new Finding(`preparedTls: ${prepared.crlUnavailable}`);
  }
}
