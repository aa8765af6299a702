// The process's C heap (src/native/heap.cc).
import { addon } from './addon';

/**
 * Hands the free pages of every glibc malloc arena back to the kernel (malloc_trim(0)); false
 * where nothing was released or the C library has no such call.
 */
export function trimHeap(): boolean {
  return addon.trimHeap();
}
