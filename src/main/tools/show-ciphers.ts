// `shardvpn --show-ciphers`: the data-channel ciphers, listed the way openvpn --show-ciphers does.
import { cipherUnavailable } from '../../shared/protocol/data-format';
import { DATA_CIPHERS } from '../../shared/protocol/ncp';

const DESCRIPTION: Readonly<Record<string, string>> = {
  'AES-128-GCM': '(128 bit key, 128 bit block, TLS client/server mode only)',
  'AES-256-GCM': '(256 bit key, 128 bit block, TLS client/server mode only)',
  'CHACHA20-POLY1305': '(256 bit key, stream cipher, TLS client/server mode only)',
  'AES-128-CBC': '(128 bit key, 128 bit block)',
  'AES-192-CBC': '(192 bit key, 128 bit block)',
  'AES-256-CBC': '(256 bit key, 128 bit block)',
  'BF-CBC': '(128 bit key by default, 64 bit block)',
};

export function showCiphers(): string {
  const lines = [
    'The following ciphers and cipher modes are available for use',
    'with shardvpn for the data channel (the CBC ones with an --auth HMAC; use',
    'them with --data-ciphers, e.g. data-ciphers AES-256-GCM:CHACHA20-POLY1305):',
    '',
    ...DATA_CIPHERS.filter((name) => cipherUnavailable(name) === null)
      .sort()
      .map((name) => `${name}  ${DESCRIPTION[name] ?? ''}`),
    '',
  ];
  return lines.join('\n');
}
