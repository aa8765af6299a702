// A TUN device (IFF_TUN | IFF_NO_PI, optionally IFF_MULTI_QUEUE) with non-blocking batched
// packet reads and writes into caller memory.
#pragma once
#include "descriptor.h"

namespace shardvpn {

class TunDevice : public DescriptorWrap<TunDevice> {
 public:
  static constexpr const char* kClassName = "TunDevice";
  static Napi::Function Define(Napi::Env env);
  explicit TunDevice(const Napi::CallbackInfo& info);

 private:
  Napi::Value Name(const Napi::CallbackInfo& info);
  Napi::Value SetMtu(const Napi::CallbackInfo& info);
  Napi::Value SetUp(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value WriteDrops(const Napi::CallbackInfo& info);

  std::string name_;
  uint64_t writeDrops_ = 0;
};

}  // namespace shardvpn
