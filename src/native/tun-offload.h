// TUN offloads (IFF_VNET_HDR with TUNSETOFFLOAD): every packet on the device carries a
// virtio_net_hdr, and the kernel may hand us one TCP (TSO) or UDP (USO) superpacket of up to
// 64 KiB instead of a packet per segment, with checksums left for us to complete; we may hand it
// one coalesced TCP superpacket in a single write. One system call per 64 KiB instead of ~45.
//
// This file holds the two packet transformations, free of any descriptor:
//  - splitting a superpacket read from the kernel into MTU-sized packets (TCP sequence numbers,
//    IPv4 ids and every checksum recomputed), and completing a partial checksum;
//  - choosing a run of TCP segments of one flow that can leave as one superpacket, and building
//    its header, as the kernel's own receive coalescing (GRO) would merge them.
// The device code (tun.cc) does the I/O.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace shardvpn {

// struct virtio_net_hdr (linux/virtio_net.h; that header does not compile as C++), in the
// machine's byte order as a TUN device without TUNSETVNETBE uses it.
struct VnetHeader {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
constexpr uint8_t kVnetNeedsChecksum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr uint8_t kGsoNone = 0;            // VIRTIO_NET_HDR_GSO_NONE
constexpr uint8_t kGsoTcpV4 = 1;           // VIRTIO_NET_HDR_GSO_TCPV4
constexpr uint8_t kGsoTcpV6 = 4;           // VIRTIO_NET_HDR_GSO_TCPV6
constexpr uint8_t kGsoUdpL4 = 5;           // VIRTIO_NET_HDR_GSO_UDP_L4 (USO)
constexpr uint8_t kGsoEcn = 0x80;          // VIRTIO_NET_HDR_GSO_ECN
// TUNSETOFFLOAD bits for UDP segmentation (linux/if_tun.h since 6.2; older headers lack them).
constexpr unsigned int kTunUso4 = 0x20;
constexpr unsigned int kTunUso6 = 0x40;

// The header in front of every packet: sizeof(virtio_net_hdr), the device's default.
constexpr size_t kVnetHeaderSize = sizeof(VnetHeader);
static_assert(kVnetHeaderSize == 10, "virtio_net_hdr is 10 bytes");
// Most segments one coalesced write carries (the kernel's own GRO stops at 64 as well).
constexpr size_t kMaxCoalesced = 64;
// The largest IP packet (IPv4 total length, IPv6 payload length + 40 are both 16-bit bound).
constexpr size_t kMaxSuperpacket = 65535;

enum class SplitResult {
  kOk,        // segments produced (or one packet, its checksum completed)
  kMalformed  // header and packet disagree: drop and count
};

// A superpacket read from the device (header + packet) being handed out segment by segment.
class Superpacket {
 public:
  // Takes `packet` (length bytes, preceded by its header `vnet`), checks it. Returns kMalformed
  // when it cannot be split. `capacity` is the caller's slot size: a segment larger is malformed.
  SplitResult Start(const VnetHeader& vnet, uint8_t* packet, size_t length, size_t capacity);
  // Whether segments remain.
  bool pending() const { return next_ < count_; }
  // Writes the next segment into `out` (capacity bytes), returns its length.
  size_t Next(uint8_t* out);
  // How many segments the current superpacket holds (1 for a plain packet).
  size_t count() const { return count_; }
  bool segmented() const { return segmentSize_ > 0; }
  // The largest segment still to come: a caller whose slots are smaller must Drop() instead.
  size_t largest() const { return segmentSize_ > 0 ? headerLength_ + segmentSize_ : length_; }
  // Forgets the segments not handed out yet.
  void Drop() { next_ = count_; }

 private:
  uint8_t* packet_ = nullptr;
  size_t length_ = 0;
  bool v6_ = false;
  bool tcp_ = false;
  size_t l4_ = 0;           // transport header offset
  size_t headerLength_ = 0;  // IP + transport headers
  size_t segmentSize_ = 0;   // payload bytes per segment; 0: a plain packet
  size_t count_ = 0;
  size_t next_ = 0;
};

// A run of TCP segments written as one superpacket: the header (vnet + the merged IP/TCP header)
// to send first, then each segment's payload.
struct CoalescedRun {
  VnetHeader vnet;
  uint8_t header[60 + 60];  // IP (IPv4 without options, or IPv6) + TCP header with options
  size_t headerLength = 0;
  size_t count = 0;                      // segments taken from the batch (>= 1)
  size_t payloadOffset[kMaxCoalesced];   // per segment: where its payload starts in the packet
};

// Looks at packets[first ..] (pointers and lengths) and fills `run` with how many of them, from
// `first` on, can leave as one write. A run of 1 means "write this packet alone" (run.header is
// then unused and run.vnet is all zeros). Packets are never changed.
void PlanCoalescedRun(const uint8_t* const* packets, const uint32_t* lengths, size_t first, size_t count,
                      CoalescedRun* run);

}  // namespace shardvpn
