// The process's heaps: give freed memory back to the kernel (glibc malloc), and ask V8 to
// shrink the calling thread's JavaScript heap.
#pragma once
#include <napi.h>

namespace shardvpn {

// trimHeap(): malloc_trim(0) where the C library has it. Returns whether memory was released.
Napi::Value TrimHeap(const Napi::CallbackInfo& info);

// shrinkJsHeap(): asks the calling thread's V8 isolate for a memory-reducing collection
// (moderate memory pressure: incremental, no full pause; nothing new while marking is already
// under way). Returns whether the thread has an isolate, not whether a collection started.
Napi::Value ShrinkJsHeap(const Napi::CallbackInfo& info);

}  // namespace shardvpn
