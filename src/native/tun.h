// A TUN device (IFF_TUN | IFF_NO_PI, optionally IFF_MULTI_QUEUE) with non-blocking batched
// packet reads and writes into caller memory, optionally with offloads (IFF_VNET_HDR: TSO/USO
// superpackets split on read, TCP segments coalesced on write; tun-offload.h). The caller sees
// plain IP packets either way.
#pragma once
#include <sys/uio.h>

#include <memory>
#include <vector>

#include "descriptor.h"
#include "tun-offload.h"

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
  Napi::Value Offload(const Napi::CallbackInfo& info);
  Napi::Value Pending(const Napi::CallbackInfo& info);

  void EnableOffloads(int fd, bool uso);
  size_t ReadOffloaded(Napi::Env env, int fd, const struct Batch& batch, size_t capacity);
  size_t WriteOffloaded(Napi::Env env, int fd, const struct Batch& batch);
  // One writev; returns 1 written, 0 queue full (EAGAIN), -1 refused by the kernel (EINVAL).
  int WriteVector(Napi::Env env, int fd, const struct iovec* iov, int count, size_t index);

  std::string name_;
  uint64_t writeDrops_ = 0;
  // Offloads (IFF_VNET_HDR): whether the descriptor carries the header, and what the kernel
  // granted (TSO: TCP superpackets, USO: UDP superpackets handed to us).
  bool vnet_ = false;
  bool tso_ = false;
  bool uso_ = false;
  std::unique_ptr<uint8_t[]> readArea_;  // one superpacket and its header
  Superpacket split_;
  std::vector<const uint8_t*> writePackets_;
  CoalescedRun run_;
  uint64_t superpackets_ = 0;      // TSO/USO superpackets read
  uint64_t segments_ = 0;          // packets split from them
  uint64_t checksums_ = 0;         // plain packets whose checksum we completed
  uint64_t readDrops_ = 0;         // malformed superpackets dropped
  uint64_t coalescedWrites_ = 0;   // superpackets written
  uint64_t coalescedPackets_ = 0;  // packets merged into them
  uint64_t coalesceRefusals_ = 0;  // superpackets the kernel refused (their packets went alone)
  static constexpr int kRefusalsBeforeGivingUp = 16;
  int refusalsInARow_ = 0;
  bool coalesce_ = true;
};

}  // namespace shardvpn
