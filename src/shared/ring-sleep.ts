// The consumer side of a PacketRing's sleep (ring.ts): raise the "sleeping" flag, re-check the
// tail, and wait on the tail word until the producer's publish (or a wake) notifies it.
import { RING_WORD } from './ring-layout';

type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
// lib ES2022 has no Atomics.waitAsync typing; Node 20 has the function.
const waitAsync = (
  Atomics as unknown as {
    waitAsync(array: Int32Array, index: number, value: number, timeout?: number): WaitAsyncResult;
  }
).waitAsync;

const FIRST_NAP_MS = 1;
const MAX_NAP_MS = 64;

/**
 * Waits until the tail moves past `head`, a wake() is counted, or `timeoutMs` passes. `keepAlive`
 * (an unref'd interval) is ref'd meanwhile: a pending waitAsync alone does not keep Node running.
 */
export async function sleepUntilPublished(
  header: Int32Array,
  head: number,
  timeoutMs: number,
  keepAlive: { ref(): unknown; unref(): unknown },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const wakes = Atomics.load(header, RING_WORD.wakes);
  keepAlive.ref();
  // Node 20's Atomics.waitAsync now and then never resolves a wait that notify did wake
  // (reproduced without this ring, about once per few thousand sleeps under load), so each
  // wait is a bounded nap and a timed-out nap re-checks the tail before sleeping again.
  let nap = FIRST_NAP_MS;
  try {
    for (;;) {
      Atomics.store(header, RING_WORD.sleeping, 1);
      Atomics.add(header, RING_WORD.sleeps, 1);
      // Re-check after raising the flag: a publish between the caller's check and the flag
      // would not notify, and we would sleep on a ring that has data.
      const tail = Atomics.load(header, RING_WORD.tail);
      if (tail !== head || Atomics.load(header, RING_WORD.wakes) !== wakes) return;
      const left = deadline - Date.now();
      if (left <= 0) return;
      const result = waitAsync(header, RING_WORD.tail, tail, nap < left ? nap : left);
      if (!result.async) return;
      if ((await result.value) === 'ok') return;
      if (Atomics.load(header, RING_WORD.tail) !== head) {
        Atomics.add(header, RING_WORD.missedWakes, 1);
        return;
      }
      if (nap < MAX_NAP_MS) nap *= 2;
    }
  } finally {
    Atomics.store(header, RING_WORD.sleeping, 0);
    keepAlive.unref();
  }
}
