#include "tun-offload.h"

#include <netinet/in.h>
#include <string.h>

#include <algorithm>

#include "checksum.h"

namespace shardvpn {

namespace {

constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpPsh = 0x08;
constexpr uint8_t kTcpAck = 0x10;
constexpr uint8_t kTcpCwr = 0x80;

uint16_t Read16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Read32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 | p[3];
}
void Write16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Write32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

void StoreIpv4HeaderChecksum(uint8_t* ip, size_t headerLength) {
  ip[10] = ip[11] = 0;
  ChecksumStore(ip + 10, ChecksumAdd(ip, headerLength, 0));
}

// A TCP segment's headers, as PlanCoalescedRun needs them.
struct TcpSegment {
  bool v6 = false;
  size_t l4 = 0;            // TCP header offset (= IP header length)
  size_t headerLength = 0;  // IP + TCP
  size_t payload = 0;
  uint32_t seq = 0;
  uint8_t flags = 0;
};

// Parses `p` as an IPv4 (no options, not fragmented) or IPv6 (no extension header) TCP segment
// carrying data with only ACK (and PSH) set, whose IP and TCP checksums are right: the segments
// the kernel's GRO would merge. Anything else is written alone, as it came.
bool ParseCoalescible(const uint8_t* p, size_t length, TcpSegment* out) {
  if (length < 20) return false;
  uint8_t version = p[0] >> 4;
  size_t l4;
  if (version == 4) {
    if ((p[0] & 0x0f) != 5 || p[9] != IPPROTO_TCP) return false;
    if (Read16(p + 2) != length) return false;
    if ((Read16(p + 6) & 0xbfff) != 0) return false;  // a fragment (MF or an offset) or the reserved bit
    if (!ChecksumValid(ChecksumAdd(p, 20, 0))) return false;
    l4 = 20;
  } else if (version == 6) {
    if (length < 40 || p[6] != IPPROTO_TCP) return false;
    if (static_cast<size_t>(Read16(p + 4)) + 40 != length) return false;
    l4 = 40;
  } else {
    return false;
  }
  if (length < l4 + 20) return false;
  size_t tcpHeader = static_cast<size_t>(p[l4 + 12] >> 4) * 4;
  if (tcpHeader < 20 || length <= l4 + tcpHeader) return false;  // no payload: an ACK, left alone
  uint8_t flags = p[l4 + 13];
  if ((flags & ~(kTcpAck | kTcpPsh)) != 0 || (flags & kTcpAck) == 0) return false;
  uint64_t sum = PseudoHeaderSum(p, version == 6, IPPROTO_TCP, static_cast<uint32_t>(length - l4));
  if (!ChecksumValid(ChecksumAdd(p + l4, length - l4, sum))) return false;
  out->v6 = version == 6;
  out->l4 = l4;
  out->headerLength = l4 + tcpHeader;
  out->payload = length - out->headerLength;
  out->seq = Read32(p + l4 + 4);
  out->flags = flags;
  return true;
}

// Whether `next`, the `index`th segment of the run, continues `first`'s flow right after
// `previous`, with headers GRO would accept as the same: addresses, ports, IP fields,
// acknowledgement, window, options; only PSH may differ. Without DF the IPv4 ids must count up
// by one, as the kernel will number them again when it segments the superpacket.
bool ContinuesFlow(const uint8_t* first, const TcpSegment& f, const TcpSegment& previous, const uint8_t* next,
                   const TcpSegment& n, size_t index) {
  if (n.v6 != f.v6 || n.headerLength != f.headerLength) return false;
  if (n.seq != previous.seq + static_cast<uint32_t>(previous.payload)) return false;
  if (f.v6) {
    if (memcmp(first, next, 4) != 0) return false;            // version, traffic class, flow label
    if (first[7] != next[7]) return false;                    // hop limit
    if (memcmp(first + 8, next + 8, 32) != 0) return false;  // addresses
  } else {
    if (first[1] != next[1] || first[8] != next[8]) return false;  // TOS (ECN included), TTL
    if ((first[6] & 0x40) != (next[6] & 0x40)) return false;      // DF
    if (memcmp(first + 12, next + 12, 8) != 0) return false;
    if ((first[6] & 0x40) == 0 && Read16(next + 4) != ((Read16(first + 4) + index) & 0xffff)) return false;
  }
  const uint8_t* ft = first + f.l4;
  const uint8_t* nt = next + n.l4;
  if (memcmp(ft, nt, 4) != 0) return false;       // ports
  if (memcmp(ft + 8, nt + 8, 5) != 0) return false;  // acknowledgement, data offset
  if ((ft[13] & ~kTcpPsh) != (nt[13] & ~kTcpPsh)) return false;
  if (memcmp(ft + 14, nt + 14, 2) != 0) return false;  // window
  return memcmp(ft + 20, nt + 20, f.headerLength - f.l4 - 20) == 0;  // options
}

}  // namespace

SplitResult Superpacket::Start(const VnetHeader& vnet, uint8_t* packet, size_t length, size_t capacity) {
  packet_ = packet;
  length_ = length;
  next_ = 0;
  count_ = 0;
  segmentSize_ = 0;
  uint8_t gsoType = static_cast<uint8_t>(vnet.gso_type & ~kGsoEcn);
  bool needsChecksum = (vnet.flags & kVnetNeedsChecksum) != 0;
  if (gsoType == kGsoNone) {
    if (needsChecksum) {
      // The kernel left the transport checksum to us: the field holds the pseudo-header sum;
      // sum from csum_start to the end (the field included) and store it inverted.
      size_t start = vnet.csum_start;
      size_t field = start + vnet.csum_offset;
      if (field + 2 > length) return SplitResult::kMalformed;
      uint16_t value = static_cast<uint16_t>(~ChecksumFold(ChecksumAdd(packet + start, length - start, 0)));
      if (value == 0) value = 0xffff;  // as the kernel's own completion does (0 means "none" in UDP)
      memcpy(packet + field, &value, 2);
    }
    if (length > capacity) return SplitResult::kMalformed;
    count_ = 1;
    return SplitResult::kOk;
  }
  if (gsoType != kGsoTcpV4 && gsoType != kGsoTcpV6 &&
      gsoType != kGsoUdpL4) {
    return SplitResult::kMalformed;
  }
  if (length < 28 || vnet.gso_size == 0) return SplitResult::kMalformed;
  v6_ = (packet[0] >> 4) == 6;
  if (!v6_ && (packet[0] >> 4) != 4) return SplitResult::kMalformed;
  if (v6_ != (gsoType == kGsoTcpV6) && gsoType != kGsoUdpL4) return SplitResult::kMalformed;
  tcp_ = gsoType != kGsoUdpL4;
  uint8_t protocol = tcp_ ? IPPROTO_TCP : IPPROTO_UDP;
  size_t ipHeader = v6_ ? 40 : static_cast<size_t>(packet[0] & 0x0f) * 4;
  if (ipHeader < 20) return SplitResult::kMalformed;
  if (!v6_ && packet[9] != protocol) return SplitResult::kMalformed;
  // The transport header starts where the kernel's checksum does (past any IPv6 extension
  // header); a superpacket marked checksum-valid instead starts it right after the IP header.
  l4_ = needsChecksum ? vnet.csum_start : ipHeader;
  if (l4_ == ipHeader && v6_ && packet[6] != protocol) return SplitResult::kMalformed;
  if (l4_ < ipHeader || l4_ + (tcp_ ? 20 : 8) > length) return SplitResult::kMalformed;
  size_t transportHeader = tcp_ ? static_cast<size_t>(packet[l4_ + 12] >> 4) * 4 : 8;
  if (transportHeader < (tcp_ ? 20u : 8u)) return SplitResult::kMalformed;
  headerLength_ = l4_ + transportHeader;
  if (headerLength_ >= length) return SplitResult::kMalformed;
  segmentSize_ = vnet.gso_size;
  if (headerLength_ + segmentSize_ > capacity) return SplitResult::kMalformed;
  count_ = (length - headerLength_ + segmentSize_ - 1) / segmentSize_;
  return SplitResult::kOk;
}

size_t Superpacket::Next(uint8_t* out) {
  size_t index = next_++;
  if (segmentSize_ == 0) {
    memcpy(out, packet_, length_);
    return length_;
  }
  size_t offset = headerLength_ + index * segmentSize_;
  size_t payload = std::min(segmentSize_, length_ - offset);
  bool last = index + 1 == count_;
  memcpy(out, packet_, headerLength_);
  memcpy(out + headerLength_, packet_ + offset, payload);
  size_t total = headerLength_ + payload;
  if (v6_) {
    Write16(out + 4, static_cast<uint32_t>(total - 40));
  } else {
    Write16(out + 2, static_cast<uint32_t>(total));
    Write16(out + 4, Read16(packet_ + 4) + static_cast<uint32_t>(index));  // a new IP id per segment
    StoreIpv4HeaderChecksum(out, static_cast<size_t>(out[0] & 0x0f) * 4);
  }
  uint8_t* transport = out + l4_;
  size_t transportLength = total - l4_;
  uint8_t protocol;
  uint8_t* field;
  if (tcp_) {
    protocol = IPPROTO_TCP;
    Write32(transport + 4, Read32(packet_ + l4_ + 4) + static_cast<uint32_t>(index * segmentSize_));
    uint8_t flags = transport[13];
    if (index > 0) flags &= ~kTcpCwr;         // congestion window reduced: said once, first
    if (!last) flags &= ~(kTcpFin | kTcpPsh);  // the end of the data: said by the last segment
    transport[13] = flags;
    field = transport + 16;
  } else {
    protocol = IPPROTO_UDP;
    Write16(transport + 4, static_cast<uint32_t>(transportLength));
    field = transport + 6;
  }
  field[0] = field[1] = 0;
  // The pseudo-header of an IPv6 packet with extension headers still names the transport.
  uint64_t sum = PseudoHeaderSum(out, v6_, protocol, static_cast<uint32_t>(transportLength));
  uint16_t value = static_cast<uint16_t>(~ChecksumFold(ChecksumAdd(transport, transportLength, sum)));
  if (value == 0 && !tcp_) value = 0xffff;
  memcpy(field, &value, 2);
  return total;
}

void PlanCoalescedRun(const uint8_t* const* packets, const uint32_t* lengths, size_t first, size_t count,
                      CoalescedRun* run) {
  memset(&run->vnet, 0, sizeof(run->vnet));
  run->count = 1;
  run->headerLength = 0;
  TcpSegment head;
  const uint8_t* firstPacket = packets[first];
  if (first + 1 >= count || !ParseCoalescible(firstPacket, lengths[first], &head)) return;
  if ((head.flags & kTcpPsh) != 0) return;  // PSH ends a run; nothing may follow it
  run->payloadOffset[0] = head.headerLength;
  size_t total = lengths[first];
  TcpSegment previous = head;
  uint8_t pushFlag = 0;
  for (size_t i = first + 1; i < count && run->count < kMaxCoalesced; i++) {
    TcpSegment next;
    if (!ParseCoalescible(packets[i], lengths[i], &next)) break;
    if (next.payload > head.payload || total + next.payload > kMaxSuperpacket) break;
    if (!ContinuesFlow(firstPacket, head, previous, packets[i], next, run->count)) break;
    run->payloadOffset[run->count++] = next.headerLength;
    total += next.payload;
    previous = next;
    // Only the last segment may be shorter or carry PSH.
    if (next.payload < head.payload || (next.flags & kTcpPsh) != 0) {
      pushFlag = next.flags & kTcpPsh;
      break;
    }
  }
  if (run->count == 1) return;
  // The merged header: the first segment's, with the whole length and the last one's PSH; the
  // TCP checksum field holds the pseudo-header sum for the kernel to complete (NEEDS_CSUM).
  uint8_t* h = run->header;
  memcpy(h, firstPacket, head.headerLength);
  run->headerLength = head.headerLength;
  if (head.v6) {
    Write16(h + 4, static_cast<uint32_t>(total - 40));
  } else {
    Write16(h + 2, static_cast<uint32_t>(total));
    StoreIpv4HeaderChecksum(h, head.l4);
  }
  h[head.l4 + 13] |= pushFlag;
  uint16_t pseudo = ChecksumFold(PseudoHeaderSum(h, head.v6, IPPROTO_TCP, static_cast<uint32_t>(total - head.l4)));
  memcpy(h + head.l4 + 16, &pseudo, 2);
  run->vnet.flags = kVnetNeedsChecksum;
  run->vnet.gso_type = head.v6 ? kGsoTcpV6 : kGsoTcpV4;
  run->vnet.hdr_len = static_cast<uint16_t>(head.headerLength);
  run->vnet.gso_size = static_cast<uint16_t>(head.payload);
  run->vnet.csum_start = static_cast<uint16_t>(head.l4);
  run->vnet.csum_offset = 16;
}

}  // namespace shardvpn
