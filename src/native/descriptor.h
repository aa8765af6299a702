// The part every addon object that owns a file descriptor shares: closing (explicitly, at
// garbage collection, or when the thread's environment shuts down), readiness polling in the
// owning thread's loop, and the JavaScript methods for both.
#pragma once
#include <errno.h>
#include <napi.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "errors.h"
#include "poller.h"

namespace shardvpn {

template <class T>
class DescriptorWrap : public Napi::ObjectWrap<T> {
 public:
  explicit DescriptorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<T>(info), env_(info.Env()) {
    // A worker thread that exits without closing must not leak the descriptor.
    napi_add_env_cleanup_hook(env_, CleanupHook, this);
  }

  ~DescriptorWrap() override {
    CloseDescriptor();
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
  }

  // The JavaScript methods shared by all descriptor objects.
  static std::vector<typename Napi::ObjectWrap<T>::PropertyDescriptor> DescriptorMethods() {
    using W = Napi::ObjectWrap<T>;
    return {
        W::InstanceMethod("poll", &DescriptorWrap::Poll),
        W::InstanceMethod("stopPoll", &DescriptorWrap::StopPoll),
        W::InstanceMethod("ref", &DescriptorWrap::Ref),
        W::InstanceMethod("unref", &DescriptorWrap::Unref),
        W::InstanceMethod("close", &DescriptorWrap::Close),
        W::InstanceAccessor("fd", &DescriptorWrap::Fd, nullptr),
        W::InstanceAccessor("closed", &DescriptorWrap::Closed, nullptr),
    };
  }

 protected:
  // Takes ownership of `fd` (closes it on close) unless `owned` is false.
  void Adopt(int fd, bool owned) {
    fd_ = fd;
    owned_ = owned;
  }

  // The open descriptor, or a thrown EBADF naming `call` when it was closed.
  int RequireOpen(Napi::Env env, const char* call) const {
    if (fd_ < 0) ThrowErrno(env, std::string(T::kClassName) + "." + call, EBADF);
    return fd_;
  }

  int fd_ = -1;

  Poller& poller() { return poller_; }

 private:
  void CloseDescriptor() {
    poller_.Stop();
    if (fd_ >= 0 && owned_) ::close(fd_);
    fd_ = -1;
  }

  static void CleanupHook(void* arg) { static_cast<DescriptorWrap*>(arg)->CloseDescriptor(); }

  Napi::Value Poll(const Napi::CallbackInfo& info) {
    int fd = RequireOpen(info.Env(), "poll");
    if (!info[0].IsNumber() || !info[1].IsFunction()) {
      ThrowType(info.Env(), std::string(T::kClassName) + ".poll(events, callback): bad arguments");
    }
    poller_.Start(info.Env(), fd, info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Function>(),
                  this->Value());
    return info.Env().Undefined();
  }

  Napi::Value StopPoll(const Napi::CallbackInfo& info) {
    poller_.Stop();
    return info.Env().Undefined();
  }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    poller_.SetRef(true);
    return info.Env().Undefined();
  }

  Napi::Value Unref(const Napi::CallbackInfo& info) {
    poller_.SetRef(false);
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseDescriptor();
    return info.Env().Undefined();
  }

  Napi::Value Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }
  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), fd_ < 0); }

  napi_env env_;
  bool owned_ = true;
  Poller poller_;
};

}  // namespace shardvpn
