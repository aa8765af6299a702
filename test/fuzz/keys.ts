// Fixed keys for the fuzz targets, so a finding replays with the same keys.
import { KEY2_SIZE } from '../../src/shared/protocol/static-key';

/** A 256-byte key2 (two directions of cipher and HMAC keys), different per `seed`. */
export function fixedKey2(seed: number): Buffer {
  const b = Buffer.alloc(KEY2_SIZE);
  for (let i = 0; i < b.length; i++) b[i] = (seed * 131 + i * 7 + 1) & 0xff;
  return b;
}

/** A tls-crypt-v2 server key (Ke and Ka, 64 bytes each). */
export function fixedServerKey(): Buffer {
  return fixedKey2(9).subarray(0, 128);
}
