// `shardvpn --show-ciphers`: the data-channel ciphers, listed the way openvpn --show-ciphers does.
import { AEAD_CIPHERS } from '../../shared/protocol/ncp';

const DESCRIPTION: Readonly<Record<string, string>> = {
  'AES-128-GCM': '(128 bit key, 128 bit block, TLS client/server mode only)',
  'AES-256-GCM': '(256 bit key, 128 bit block, TLS client/server mode only)',
  'CHACHA20-POLY1305': '(256 bit key, stream cipher, TLS client/server mode only)',
};

export function showCiphers(): string {
  const lines = [
    'The following ciphers and cipher modes are available for use',
    'with shardvpn (all of them AEAD ciphers for the data channel; use them',
    'with --data-ciphers, e.g. data-ciphers AES-256-GCM:CHACHA20-POLY1305):',
    '',
    ...[...AEAD_CIPHERS].sort().map((name) => `${name}  ${DESCRIPTION[name] ?? ''}`),
    '',
  ];
  return lines.join('\n');
}
