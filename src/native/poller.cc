#include "poller.h"

#include <time.h>

#include "errors.h"

namespace shardvpn {

namespace {
void FreeHandle(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }
}  // namespace

Poller::~Poller() { Stop(); }

void Poller::Start(Napi::Env env, int fd, int events, Napi::Function callback, Napi::Object owner) {
  int uvEvents = ((events & kReadable) ? UV_READABLE : 0) | ((events & kWritable) ? UV_WRITABLE : 0);
  if (uvEvents == 0) ThrowRange(env, "poll: events must include READABLE (1) and/or WRITABLE (2)");
  if (handle_ == nullptr) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      throw Napi::Error::New(env, "poll: no event loop for this thread");
    }
    auto* handle = new uv_poll_t();
    int rc = uv_poll_init(loop, handle, fd);
    if (rc != 0) {
      delete handle;
      ThrowErrno(env, "uv_poll_init", -rc);
    }
    handle->data = this;
    handle_ = handle;
    if (!ref_) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
  }
  env_ = env;
  callback_ = Napi::Persistent(callback);
  // Keep the JavaScript object alive while it is polled, so its finalizer cannot run under us.
  owner_ = Napi::Persistent(owner);
  int rc = uv_poll_start(handle_, uvEvents, OnPoll);
  if (rc != 0) {
    Stop();
    ThrowErrno(env, "uv_poll_start", -rc);
  }
}

void Poller::Stop() {
  if (handle_ == nullptr) return;
  uv_poll_stop(handle_);
  handle_->data = nullptr;
  // uv_close is asynchronous: the handle memory is freed in its close callback.
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), FreeHandle);
  handle_ = nullptr;
  Release();
}

void Poller::Release() {
  if (!callback_.IsEmpty()) callback_.Reset();
  if (!owner_.IsEmpty()) owner_.Reset();
}

void Poller::SetRef(bool ref) {
  ref_ = ref;
  if (handle_ == nullptr) return;
  if (ref) {
    uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
  } else {
    uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
  }
}

void Poller::Coalesce() {
  if (coalesceNs_ == 0 || lastEnd_ == 0 || lastTurnAtOnce_) return;
  if (uv_hrtime() - lastEnd_ >= coalesceNs_) return;
  // Datagrams are arriving faster than one per wait: waiting that long costs each of them at most
  // the wait and saves a wake-up, a receive call and a trip into JavaScript for most of them (a
  // stock client sends one datagram per system call, so they come a few at a time otherwise).
  // Idle traffic (a ping), a busy socket (a turn that filled a batch) and datagrams
  // the kernel coalesced (a sender using GSO, as shardvpn does) are read at once. The whole
  // thread waits: its TUN queue and timers too, for at most this long.
  struct timespec wait = {static_cast<time_t>(coalesceNs_ / 1000000000), static_cast<long>(coalesceNs_ % 1000000000)};
  nanosleep(&wait, nullptr);
  coalesceWaits_++;
}

void Poller::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<Poller*>(handle->data);
  if (self == nullptr || self->callback_.IsEmpty()) return;
  Napi::Env env(self->env_);
  if (events & UV_READABLE) self->Coalesce();
  self->turnAtOnce_ = false;
  int ready = 0;
  if (status < 0) {
    // An error on the descriptor: report it as readable so the reader sees the errno on read.
    ready = kReadable;
  } else {
    if (events & UV_READABLE) ready |= kReadable;
    if (events & UV_WRITABLE) ready |= kWritable;
  }
  // This runs from libuv, with no JavaScript caller: no C++ exception may leave it (it would end
  // the process). A worker being terminated (a shard restarted while it starts) can still see
  // its poll fire, and then even opening a handle scope or reading a reference fails: there is
  // nobody left to tell.
  try {
    Napi::HandleScope scope(env);
    Napi::Object owner = self->owner_.Value();
    Napi::Function callback = self->callback_.Value();
    try {
      callback.MakeCallback(owner, {Napi::Number::New(env, ready)});
    } catch (const Napi::Error& error) {
      // A throwing JavaScript callback has no caller to catch it: surface it as uncaught.
      napi_fatal_exception(env, error.Value());
      return;
    }
    ReportPendingException(env);
  } catch (const Napi::Error&) {
    // The environment is going away.
  }
  // The callback may have stopped this poll (closing the socket) and its owner may be gone: the
  // handle itself lives until its close callback, and says so.
  auto* still = static_cast<Poller*>(handle->data);
  if (still != nullptr) {
    still->lastEnd_ = uv_hrtime();
    still->lastTurnAtOnce_ = still->turnAtOnce_;
  }
}

}  // namespace shardvpn
