// What server and client mode both refuse before a run starts, with the line of the config
// that asked for it.
import { ConfigError, failOption as fail, type Options } from '../shared/config';
import type { AeadCipherName } from '../shared/native';
import { aeadCipherName } from '../shared/protocol/ncp';

/** An OpenVPN option the config parser accepted but shardvpn does not run: the first one fails the start. */
export function refuseUnsupported(options: Options): void {
  const unsupported = options.unsupported[0];
  if (unsupported !== undefined) throw new ConfigError(unsupported, unsupported.directive, unsupported.message);
}

/** --data-ciphers as the AEAD ciphers the data channel runs; any other name fails the start. */
export function aeadDataCiphers(options: Options): AeadCipherName[] {
  return options.dataCiphers.map((name) => aeadCipherName(name) ?? fail(options, 'data-ciphers', `cipher '${name}' is not supported (AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305)`));
}
