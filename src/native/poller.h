// Readiness polling of one descriptor in the calling thread's own libuv loop, so that a TUN
// device or UDP socket opened inside a worker thread is serviced by that worker's loop.
#pragma once
#include <napi.h>
#include <uv.h>

namespace shardvpn {

class Poller {
 public:
  enum Events { kReadable = 1, kWritable = 2 };

  Poller() = default;
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Starts (or changes) polling of `fd` for `events`; `callback(events)` runs in `env`'s loop
  // while the descriptor is ready (level-triggered: drain it or it fires again).
  void Start(Napi::Env env, int fd, int events, Napi::Function callback, Napi::Object owner);
  // Stops polling; the callback is released. Safe to call repeatedly.
  void Stop();
  // Whether an active poll keeps the event loop alive.
  void SetRef(bool ref);
  // Receive coalescing: when the descriptor turns ready again within `ns` of the end of the last
  // callback and that callback left nothing waiting, the thread sleeps `ns` before the next one,
  // so that one turn takes what arrives meanwhile. 0 turns it off.
  void SetCoalesce(uint64_t ns) { coalesceNs_ = ns; }
  // Said by the reader after each read: whether the next turn must start at once without waiting
  // to coalesce (the read filled its batch, so more may be waiting; or the kernel had coalesced
  // what it read already, so the senders send in runs). Any such read in a turn counts.
  void NoteRead(bool atOnce) { turnAtOnce_ = turnAtOnce_ || atOnce; }
  // How many times a callback was held back to coalesce.
  uint64_t coalesceWaits() const { return coalesceWaits_; }
  bool active() const { return handle_ != nullptr; }

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events);
  void Coalesce();
  void Release();

  uv_poll_t* handle_ = nullptr;
  napi_env env_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::ObjectReference owner_;
  bool ref_ = true;
  uint64_t coalesceNs_ = 0;
  uint64_t lastEnd_ = 0;
  // Whether a read of the turn under way, and of the last turn that ended, said to start at once.
  bool turnAtOnce_ = false;
  bool lastTurnAtOnce_ = false;
  uint64_t coalesceWaits_ = 0;
};

}  // namespace shardvpn
