// Guarded memory, constant-time helpers and a short keyed MAC for the control channel
// (sodium-native).

import { randomFillSync } from 'node:crypto';

interface SodiumKeyApi {
  sodium_malloc(size: number): Buffer;
  sodium_memzero(buf: Buffer): void;
  sodium_memcmp(a: Buffer, b: Buffer): boolean;
  crypto_shorthash(out: Uint8Array, input: Uint8Array, key: Uint8Array): void;
  crypto_shorthash_BYTES: number;
  crypto_shorthash_KEYBYTES: number;
}

// sodium-native ships no type declarations; this is the slice we use.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a native module (no ES import)
const sodium = require('sodium-native') as SodiumKeyApi;

/**
 * Guarded buffers this thread may hold at once. Each sodium_malloc block costs the process four
 * memory mappings (the block, its guard pages, its canary page), and the mappings are given back
 * only when the Buffer is garbage collected, which can lag far behind a burst of allocations (a
 * batch of tls-crypt-v2 client resets, many handshakes' key blocks, with no turn of the event
 * loop in between). At vm.max_map_count (65530 by default) sodium_malloc returns NULL and
 * sodium-native aborts the whole process. Past this budget a key gets ordinary zeroed memory
 * instead (still wiped by its owner); a thread's budget comes back as its buffers are collected.
 */
export const GUARDED_BUDGET = 2048;

let guardedLive = 0;
const guardedFreed = new FinalizationRegistry<void>(() => {
  guardedLive--;
});

/** Guarded memory while the budget lasts, else an ordinary buffer; contents unspecified. */
function keyBuffer(size: number): Buffer {
  if (guardedLive >= GUARDED_BUDGET) return Buffer.alloc(size);
  const buf = sodium.sodium_malloc(size);
  guardedLive++;
  guardedFreed.register(buf, undefined);
  return buf;
}

/** Guarded buffers of this thread not yet collected. */
export function guardedBuffersLive(): number {
  return guardedLive;
}

/** A zeroed buffer in sodium's guarded heap (guard pages, mlock'd, no core dumps). */
export function secureAlloc(size: number): Buffer {
  const buf = keyBuffer(size);
  sodium.sodium_memzero(buf);
  return buf;
}

/** Copies key bytes into guarded memory. */
export function secureCopy(src: Uint8Array): Buffer {
  const buf = keyBuffer(src.length);
  buf.set(src);
  return buf;
}

/** Fresh random key material in guarded memory. */
export function secureRandom(size: number): Buffer {
  const buf = keyBuffer(size);
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

/** Bytes of shortMac's output (8) and key (16). */
export const SHORT_MAC_BYTES: number = sodium.crypto_shorthash_BYTES;
export const SHORT_MAC_KEY_BYTES: number = sodium.crypto_shorthash_KEYBYTES;

/**
 * SipHash-2-4 of `input` under a SHORT_MAC_KEY_BYTES key into `out` (SHORT_MAC_BYTES), with no
 * allocation (libsodium's crypto_shorthash): a keyed PRF made for short inputs, for 64-bit MACs
 * only this process checks (the handshake cookie). About 0.13 us a call here, against 1.1 us for
 * HMAC-SHA-512-256 (crypto_auth) and 1.9 us for a node:crypto Hmac object, which matters when a
 * server without tls-auth must answer every spoofed reset of a flood.
 */
export function shortMac(out: Uint8Array, input: Uint8Array, key: Uint8Array): void {
  sodium.crypto_shorthash(out, input, key);
}
