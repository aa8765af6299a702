// A UDP socket (IPv4, IPv6 or dual-stack) with SO_REUSEPORT, batched receive (recvmmsg, with
// each datagram's source) and batched send (sendmmsg) straight from and into caller memory.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include "descriptor.h"

namespace shardvpn {

// Per-datagram peer address in caller memory, kAddressSize bytes each:
// [0] family (4 or 6), [1] 0, [2..3] port (big-endian), [4..19] address (IPv4 in 4..7).
// IPv4 peers of a dual-stack socket are reported as family 4, not as ::ffff:a.b.c.d.
constexpr size_t kAddressSize = 20;

class UdpSocket : public DescriptorWrap<UdpSocket> {
 public:
  static constexpr const char* kClassName = "UdpSocket";
  static Napi::Function Define(Napi::Env env);
  explicit UdpSocket(const Napi::CallbackInfo& info);

 private:
  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value LocalAddress(const Napi::CallbackInfo& info);
  Napi::Value SetBufferSizes(const Napi::CallbackInfo& info);
  Napi::Value AttachReusePortCbpf(const Napi::CallbackInfo& info);
  Napi::Value Recv(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Drops(const Napi::CallbackInfo& info);
  void Reserve(size_t count);

  int family_ = AF_INET;
  std::vector<struct mmsghdr> messages_;
  std::vector<struct iovec> iovecs_;
  std::vector<struct sockaddr_storage> names_;
  uint64_t truncatedDrops_ = 0;
  uint64_t sendDrops_ = 0;
};

}  // namespace shardvpn
