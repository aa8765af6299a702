// The shared-memory layout of a PacketRing (ring.ts): the header words each side owns, on their
// own cache lines so producer and consumer do not contend, and the slot geometry. Readers of a
// ring's raw SharedArrayBuffer (metrics, tests) use these without the ring class.

/** Word indexes of the header (Int32), for readers of the raw SharedArrayBuffer, e.g. metrics. */
export const RING_WORD = {
  magic: 0,
  version: 1,
  capacity: 2,
  slotSize: 3,
  stride: 4,
  // Producer-written line (64 bytes from byte 64).
  tail: 16,
  drops: 17,
  oversizeDrops: 18,
  notifies: 19,
  // Consumer-written line.
  head: 32,
  // Written by the consumer, taken down by the producer; rarely changes, so it has its own line.
  sleeping: 48,
  sleeps: 49,
  missedWakes: 50,
  wakes: 51,
} as const;

export const RING_HEADER_BYTES = 256;
export const SLOT_HEADER_BYTES = 8;
export const MAGIC = 0x474e4952; // "RING" little-endian
export const VERSION = 1;
export const MAX_CAPACITY = 1 << 24;
export const MAX_SLOT_SIZE = 1 << 20;

/** Bytes per slot: its header and payload, padded to a 64-byte cache line. */
export function strideFor(slotSize: number): number {
  return (SLOT_HEADER_BYTES + slotSize + 63) & ~63;
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}
