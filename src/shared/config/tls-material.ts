// The TLS material and settings a config names (ca, cert, key, dh, crl-verify, tls-version-min
// and -max, tls-cipher, tls-ciphersuites), loaded for the control session.
import { statSync } from 'node:fs';

import { dhParameterBits } from '../native/tls-context';
import { createControlSecureContext } from '../session/tls-channel';
import type { TlsMaterial } from '../session/types';
import { ConfigError, optionError } from './errors';
import { readMaterial } from './material';
import type { FileRef, Options } from './options-types';
import { opensslCipherList, opensslCiphersuites } from './tls-cipher-names';

/**
 * `keep`: the ca, cert, key and dh already loaded, used instead of reading the files again (a
 * hitless reload whose certificate and dh lines did not change, after the process dropped root).
 */
export function loadTlsMaterial(options: Options, keep?: Pick<TlsMaterial, 'ca' | 'cert' | 'key' | 'dh'>): TlsMaterial {
  const role = options.tlsServer ? 'server' : 'client';
  const fingerprints = options.peerFingerprints ?? [];
  if (options.ca === undefined && fingerprints.length === 0) {
    throw optionError(
      options,
      options.peerFingerprints !== undefined ? 'peer-fingerprint' : 'ca',
      `a TLS ${role} needs 'ca' or at least one 'peer-fingerprint' to check its peer (shardvpn has no static-key mode)`,
    );
  }
  // A client may log in with auth-user-pass alone (VPN providers' profiles), as in OpenVPN;
  // a server always shows its certificate.
  const certless = !options.tlsServer && options.cert === undefined && options.key === undefined;
  if (certless && options.authUserPass === undefined) {
    throw optionError(
      options,
      'cert',
      "no client-side authentication method: give 'cert' and 'key', or 'auth-user-pass' (shardvpn has no static-key mode)",
    );
  }
  if (!certless) {
    const missing = (['cert', 'key'] as const).find((name) => options[name] === undefined);
    if (missing !== undefined) throw optionError(options, missing, `'${missing}' is required for a TLS ${role} with a certificate`);
  }
  const material: TlsMaterial = {
    // Without a CA, peer-fingerprint alone says whom to trust (OpenVPN's verify_hash_no_ca).
    ca:
      keep?.ca ??
      (options.ca === undefined
        ? ''
        : materialHolding(options.ca, 'ca', 'PEM certificate', (pem) => pem.includes('-----BEGIN CERTIFICATE-----'))),
    ...(fingerprints.length > 0 ? { peerFingerprints: fingerprints } : {}),
    ...(certless ? {} : { cert: keep?.cert ?? certificateChain(options), key: keep?.key ?? readMaterial(options.key!, 'key') }),
    ...crlMaterial(options),
    // A client has no use for DH parameters (OpenVPN ignores them there too).
    ...(options.tlsServer && options.dh !== undefined && options.dh !== 'none'
      ? {
          dh:
            keep?.dh ??
            materialHolding(options.dh, 'dh', "PEM DH parameters (use 'dh none' for ECDHE only)", (pem) => dhParameterBits(pem) > 0),
        }
      : {}),
    minVersion: options.tlsVersionMin === '1.3' ? 'TLSv1.3' : 'TLSv1.2',
    // Below 1.2 was raised to 1.2 when the config was read (post-checks: settleTlsVersion).
    ...(options.tlsVersionMax !== undefined ? { maxVersion: options.tlsVersionMax === '1.3' ? 'TLSv1.3' : 'TLSv1.2' } : {}),
    ...(options.tlsCipher !== undefined ? { ciphers: opensslCipherList(options.tlsCipher) } : {}),
    ...(options.tlsCiphersuites !== undefined ? { ciphersuites: opensslCiphersuites(options.tlsCiphersuites) } : {}),
    // tls-groups (a colon list) wins over the older single ecdh-curve, as in OpenVPN.
    ...((options.tlsGroups ?? options.ecdhCurve) !== undefined ? { groups: (options.tlsGroups ?? options.ecdhCurve)! } : {}),
  };
  checkLoads(material, options);
  return material;
}

/**
 * `directive`'s file or block, refused at its line when `holds` finds no `what` in it: a `ca`
 * without a certificate would mean "no CA" to the TLS layer, and node:tls drops unreadable DH
 * parameters without a word.
 */
function materialHolding(ref: FileRef, directive: string, what: string, holds: (pem: string) => boolean): string {
  const pem = readMaterial(ref, directive);
  if (!holds(pem)) {
    const where = ref.kind === 'file' ? ref.path : `the <${directive}> block`;
    throw new ConfigError({ file: ref.file, line: ref.line }, directive, `${where} holds no ${what}`);
  }
  return pem;
}

/** cert, and after it extra-certs: intermediate certificates sent after ours, so the peer can build the chain. */
function certificateChain(options: Options): string {
  const cert = readMaterial(options.cert!, 'cert');
  return options.extraCerts === undefined ? cert : `${cert.trimEnd()}\n${readMaterial(options.extraCerts, 'extra-certs')}`;
}

/**
 * Builds the TLS context once now, so a key that does not match its certificate, a broken PEM
 * or an unknown group is a start-up error naming the directive, not a failure at the first
 * client's handshake.
 */
function checkLoads(material: TlsMaterial, options: Options): void {
  const failure = (m: TlsMaterial): string | null => {
    try {
      createControlSecureContext(m);
      return null;
    } catch (error) {
      return (error as Error).message;
    }
  };
  const { groups, ciphers, ciphersuites, dh, ...core } = material;
  const coreFailure = failure(core);
  if (coreFailure !== null) {
    const [blamed, what] =
      options.key !== undefined
        ? (['key', 'ca, cert and key do not load together'] as const)
        : options.ca !== undefined
          ? (['ca', 'ca does not load'] as const)
          : (['peer-fingerprint', 'the TLS context does not load'] as const);
    throw optionError(options, blamed, `${what}: ${coreFailure}`);
  }
  const settingsFailure = failure(material);
  if (settingsFailure !== null) {
    // Try each setting alone, so the error names the line that OpenSSL refuses.
    const settings: Array<[string, Partial<TlsMaterial>]> = [
      ['dh', dh !== undefined ? { dh } : {}],
      [options.tlsGroups !== undefined ? 'tls-groups' : 'ecdh-curve', groups !== undefined ? { groups } : {}],
      ['tls-cipher', ciphers !== undefined ? { ciphers } : {}],
      ['tls-ciphersuites', ciphersuites !== undefined ? { ciphersuites } : {}],
    ];
    for (const [directive, setting] of settings) {
      if (Object.keys(setting).length === 0) continue;
      const alone = failure({ ...core, ...setting });
      if (alone !== null) throw optionError(options, directive, `not accepted by OpenSSL: ${alone}`);
    }
    const given = settings.filter(([, s]) => Object.keys(s).length > 0).map(([d]) => d);
    throw optionError(
      options,
      given[given.length - 1] ?? 'tls-cipher',
      `not accepted by OpenSSL together with ${given.slice(0, -1).join(', ')}: ${settingsFailure}`,
    );
  }
}

/**
 * crl-verify: an inline block or a file (read now; its stat lets sessions notice a change and
 * re-read it), or with `dir` a directory of revoked serial numbers checked at each handshake.
 */
function crlMaterial(options: Options): Pick<TlsMaterial, 'crl' | 'crlFile' | 'crlDir'> {
  const verify = options.crlVerify;
  if (verify === undefined) return {};
  const ref = verify.ref;
  if (ref.kind === 'inline') {
    if (verify.dir) throw new ConfigError({ file: ref.file, line: ref.line }, 'crl-verify', "'dir' needs a directory, not an inline block");
    return { crl: ref.text };
  }
  let stat: { mtimeMs: number; size: number; isDirectory(): boolean };
  try {
    stat = statSync(ref.resolved);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError({ file: ref.file, line: ref.line }, 'crl-verify', `cannot read '${ref.path}' (${ref.resolved}): ${reason}`);
  }
  if (verify.dir) {
    if (!stat.isDirectory())
      throw new ConfigError({ file: ref.file, line: ref.line }, 'crl-verify', `'${ref.path}' is not a directory (crl-verify DIR dir)`);
    return { crlDir: ref.resolved };
  }
  return { crl: readMaterial(ref, 'crl-verify'), crlFile: { path: ref.resolved, mtimeMs: stat.mtimeMs, size: stat.size } };
}
