// The process's heaps (src/native/heap.cc).
import { addon } from './addon';

/**
 * Hands the free pages of every glibc malloc arena back to the kernel (malloc_trim(0)); false
 * where nothing was released or the C library has no such call.
 */
export function trimHeap(): boolean {
  return addon.trimHeap();
}

/**
 * Asks the calling thread's V8 isolate for a memory-reducing collection (a moderate memory-pressure
 * notification: incremental marking, then compaction and empty pages released; a no-op while
 * marking is already under way). V8's own memory reducer waits for the allocation rate to fall,
 * which a busy shard never lets happen; see heap.cc. True when the thread has an isolate.
 */
export function shrinkJsHeap(): boolean {
  return addon.shrinkJsHeap();
}
