// The data channel's open path with the AEAD ciphers (see ../data-channel-open.ts).
import { openBatch } from '../data-channel-open';
import type { Suite } from '../data-channel-open';

const SUITES: readonly Suite[] = [{ cipher: 'AES-256-GCM' }, { cipher: 'AES-128-GCM' }, { cipher: 'CHACHA20-POLY1305' }];

export function fuzz(data: Buffer): void {
  openBatch(SUITES[(data[0] ?? 0) % SUITES.length]!, data);
}
