// Guarded memory and constant-time helpers for control-channel key material (sodium-native).

import { randomFillSync } from 'node:crypto';

interface SodiumKeyApi {
  sodium_malloc(size: number): Buffer;
  sodium_memzero(buf: Buffer): void;
  sodium_memcmp(a: Buffer, b: Buffer): boolean;
}

// sodium-native ships no type declarations; this is the slice we use.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a native module (no ES import)
const sodium = require('sodium-native') as SodiumKeyApi;

/** A zeroed buffer in sodium's guarded heap (guard pages, mlock'd, no core dumps). */
export function secureAlloc(size: number): Buffer {
  const buf = sodium.sodium_malloc(size);
  sodium.sodium_memzero(buf);
  return buf;
}

/** Copies key bytes into guarded memory. */
export function secureCopy(src: Uint8Array): Buffer {
  const buf = sodium.sodium_malloc(src.length);
  buf.set(src);
  return buf;
}

/** Fresh random key material in guarded memory. */
export function secureRandom(size: number): Buffer {
  const buf = sodium.sodium_malloc(size);
  randomFillSync(buf);
  return buf;
}

/** Overwrites secret bytes (sodium_memzero is not optimised away). */
export function wipe(buf: Buffer): void {
  sodium.sodium_memzero(buf);
}

/** Constant-time equality; false for different lengths (the length is not secret). */
export function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  return sodium.sodium_memcmp(a, b);
}
