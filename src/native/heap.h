// The C heap of the process (glibc malloc): give freed memory back to the kernel.
#pragma once
#include <napi.h>

namespace shardvpn {

// trimHeap(): malloc_trim(0) where the C library has it. Returns whether memory was released.
Napi::Value TrimHeap(const Napi::CallbackInfo& info);

}  // namespace shardvpn
