// Why: a server's threads each allocate from their own glibc arena (TLS sessions, packet
// buffers, OpenSSL objects), and a chunk freed in the middle of an arena stays in the process's
// RSS until something asks glibc to hand the free pages back. malloc_trim(0) walks every arena
// and releases (MADV_DONTNEED) each whole free page, not only the top of the main heap.
#include "heap.h"

#include <v8.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace shardvpn {

Napi::Value TrimHeap(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Value ShrinkJsHeap(const Napi::CallbackInfo& info) {
  // Why: V8 sizes each isolate's old generation by the garbage it has seen, and a shard that
  // keeps renegotiating never goes idle long enough for V8's own memory reducer to run, so the
  // committed heap only grows. A moderate memory-pressure notification starts incremental marking
  // for a memory-reducing collection (compaction, empty pages released, the next allocation limit
  // set tight) without the pause of a full collection; the level goes back to none at once so
  // that later collections follow the usual throughput heuristics.
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate == nullptr) return Napi::Boolean::New(info.Env(), false);
  isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kModerate);
  isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kNone);
  return Napi::Boolean::New(info.Env(), true);
}

}  // namespace shardvpn
