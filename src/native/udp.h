// A UDP socket (IPv4, IPv6 or dual-stack) with SO_REUSEPORT, batched receive (recvmmsg, with
// each datagram's source) and batched send (sendmmsg) straight from and into caller memory,
// with UDP segmentation offload (GSO, UDP_SEGMENT) on send and receive coalescing (GRO,
// UDP_GRO) where the kernel has them. The caller always sees plain datagrams.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>

#include "batch.h"
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
  Napi::Value SetOffload(const Napi::CallbackInfo& info);
  Napi::Value Offload(const Napi::CallbackInfo& info);
  Napi::Value SetCoalesce(const Napi::CallbackInfo& info);
  void Reserve(size_t count);
  // Lays datagrams from..count of a send batch out as messages from messages_[0], runs to one
  // peer of one size as one UDP_SEGMENT message when `segment`; returns how many messages.
  size_t BuildSendMessages(Napi::Env env, const Batch& batch, const uint8_t* addrs, size_t from, bool segment);
  // Hands datagrams of the coalesced receive area to caller slots from `delivered` on.
  size_t DrainGro(const Batch& batch, uint8_t* addrs, size_t delivered, size_t capacity);
  size_t RecvGro(Napi::Env env, int fd, const Batch& batch, uint8_t* addrs, size_t capacity);

  int family_ = AF_INET;
  std::vector<struct mmsghdr> messages_;
  std::vector<struct iovec> iovecs_;
  std::vector<struct sockaddr_storage> names_;
  // Send: the first datagram and the datagram count of each message; one UDP_SEGMENT cmsg each.
  std::vector<size_t> messageFirst_;
  std::vector<size_t> messageCount_;
  std::vector<uint64_t> controls_;
  bool gso_ = false;
  // Runs of datagrams this size or larger go unsegmented: the route refused such a segment.
  size_t gsoSegmentLimit_ = SIZE_MAX;
  bool gro_ = false;
  // GRO receive area (see RecvGro): kGroMessages buffers of kGroBuffer bytes, and what is left
  // of the last recvmmsg: messages groNext_..groGot_, the first of them from groOffset_ on.
  std::unique_ptr<uint8_t[]> groArea_;
  std::vector<uint64_t> groControls_;
  std::vector<uint32_t> groLengths_;
  std::vector<uint32_t> groSegments_;
  std::vector<struct sockaddr_storage> groNames_;
  size_t groGot_ = 0;
  size_t groNext_ = 0;
  size_t groOffset_ = 0;
  uint64_t truncatedDrops_ = 0;
  uint64_t sendDrops_ = 0;
  uint64_t gsoDatagrams_ = 0;
  uint64_t gsoMessages_ = 0;
  uint64_t gsoFallbacks_ = 0;
  uint64_t groMessages_ = 0;
  uint64_t groDatagrams_ = 0;
  // Messages taken by the GRO receive's recvmmsg calls; whether the last of those calls that took
  // any found some coalesced (senders using GSO): receive coalescing then reads at once.
  uint64_t groReceived_ = 0;
  bool sendersCoalesce_ = false;
};

}  // namespace shardvpn
