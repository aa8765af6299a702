// Why: a server's threads each allocate from their own glibc arena (TLS sessions, packet
// buffers, OpenSSL objects), and a chunk freed in the middle of an arena stays in the process's
// RSS until something asks glibc to hand the free pages back. malloc_trim(0) walks every arena
// and releases (MADV_DONTNEED) each whole free page, not only the top of the main heap.
#include "heap.h"

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

}  // namespace shardvpn
