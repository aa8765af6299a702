// The certificate-status half of a hitless reload: which connected clients the new crl-verify
// revokes. A handshake checks the CRL itself (OpenSSL, or the serial's file with `dir`); a
// session that is already up was checked against the old CRL, so the reload asks again by serial.
import { existsSync } from 'node:fs';
import path from 'node:path';

import { X509Crl } from '@peculiar/x509';

import type { TlsMaterial } from '../../shared/session/types';

const CRL_BLOCK = /-----BEGIN X509 CRL-----[^-]+-----END X509 CRL-----/g;

/** A serial number as one spelling: lower-case hex without leading zeros. */
function canonicalSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, '');
}

/**
 * A check that names why a certificate serial (hex) is revoked under `material`'s crl-verify,
 * or null. Throws when the CRL does not parse, so the reload is refused rather than half done.
 */
export function revocationCheck(material: TlsMaterial): (serialHex: string) => string | null {
  if (material.crlDir !== undefined) {
    const dir = material.crlDir;
    return (serialHex) => {
      const decimal = BigInt(`0x${serialHex}`).toString(10);
      return existsSync(path.join(dir, decimal)) ? `certificate serial ${decimal} is revoked (crl-verify ${dir} dir)` : null;
    };
  }
  if (material.crl === undefined) return () => null;
  const revoked = new Set<string>();
  for (const block of material.crl.match(CRL_BLOCK) ?? []) {
    for (const entry of new X509Crl(block).entries) revoked.add(canonicalSerial(entry.serialNumber));
  }
  return (serialHex) => (revoked.has(canonicalSerial(serialHex)) ? `certificate serial ${serialHex} is revoked (crl-verify)` : null);
}
