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
  // Why: V8's memory reducer (the collection that compacts and sets the next allocation limit
  // tight) runs only when an isolate's allocation rate drops, and a shard that renegotiates all
  // the time never gets there, so its committed heap stays near its high-water mark. On the
  // isolate's own thread a moderate memory-pressure notification starts incremental marking
  // for a memory-reducing collection at once (and puts the level back to none itself); the
  // marking is finished by tasks on this thread's event loop, without the pause of a full
  // collection. Where marking is already under way the request is a no-op. It also cancels the
  // isolate's optimising compiles in flight, which V8 redoes when the code is hot again.
  // This is V8's C++ API, not Node-API: the addon is built on install for the Node.js running it.
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate == nullptr) return Napi::Boolean::New(info.Env(), false);
  isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kModerate);
  return Napi::Boolean::New(info.Env(), true);
}

}  // namespace shardvpn
