// The TLS material and settings a config names (ca, cert, key, crl-verify, tls-version-min,
// tls-cipher, tls-ciphersuites), loaded for the control session.
import type { TlsMaterial } from '../session/types';
import { ConfigError } from './errors';
import { readMaterial } from './material';
import type { Options } from './options-types';

/** OpenVPN's IANA-style tls-cipher names (TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256) to OpenSSL's. */
export function opensslCipherList(list: string): string {
  return list
    .split(':')
    .map((name) => {
      if (!name.startsWith('TLS-')) return name;
      const iana = name.slice(4).replace(/-WITH-/, '-');
      return iana.replace(/^ECDHE-ECDSA-/, 'ECDHE-ECDSA-').replace(/^ECDHE-RSA-/, 'ECDHE-RSA-').replace(/^DHE-RSA-/, 'DHE-RSA-');
    })
    .join(':');
}

export function loadTlsMaterial(options: Options): TlsMaterial {
  const missing = (['ca', 'cert', 'key'] as const).find((name) => options[name] === undefined);
  if (missing !== undefined) {
    throw new ConfigError({ file: '(config)', line: 0 }, missing, `'${missing}' is required for a TLS ${options.tlsServer ? 'server' : 'client'} (shardvpn has no static-key mode)`);
  }
  const material: TlsMaterial = {
    ca: readMaterial(options.ca!, 'ca'),
    cert: readMaterial(options.cert!, 'cert'),
    key: readMaterial(options.key!, 'key'),
    ...(options.crlVerify !== undefined ? { crl: readMaterial(options.crlVerify.ref, 'crl-verify') } : {}),
    minVersion: options.tlsVersionMin === '1.3' ? 'TLSv1.3' : 'TLSv1.2',
    ...(options.tlsCipher !== undefined ? { ciphers: opensslCipherList(options.tlsCipher) } : {}),
    ...(options.tlsCiphersuites !== undefined ? { ciphersuites: options.tlsCiphersuites } : {}),
  };
  return material;
}
