// The data channel's open path with CBC ciphers and an HMAC, and with `auth none`, where padding
// removal sees attacker bytes directly (see ../data-channel-open.ts).
import { openBatch } from '../data-channel-open';
import type { Suite } from '../data-channel-open';

const SUITES: readonly Suite[] = [
  { cipher: 'AES-256-CBC', auth: 'SHA1' },
  { cipher: 'AES-128-CBC', auth: 'SHA256' },
  { cipher: 'AES-192-CBC', auth: 'SHA512' },
  { cipher: 'AES-256-CBC', auth: null },
];

export function fuzz(data: Buffer): void {
  openBatch(SUITES[(data[0] ?? 0) % SUITES.length]!, data);
}
