// The Internet checksum (RFC 1071) for the TUN offloads: IPv4 header, TCP and UDP checksums of
// segments split from a kernel superpacket, and the pseudo-header sum of a coalesced one.
//
// Sums run over memory words in the machine's own byte order: a one's-complement sum is the same
// bytes whichever order the words are read in (RFC 1071 2(B)), so a result stored back with
// memcpy is already in network order. Only the pseudo-header's numbers (protocol, length) are
// converted first. Every summed region must start at an even offset of the checksummed data.
#pragma once
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace shardvpn {

// Adds `length` bytes at `data` to `sum` (unfolded; callers fold once at the end).
inline uint64_t ChecksumAdd(const uint8_t* data, size_t length, uint64_t sum) {
  while (length >= 8) {
    uint64_t word;
    memcpy(&word, data, 8);
    sum += (word & 0xffffffffu) + (word >> 32);
    data += 8;
    length -= 8;
  }
  if (length >= 4) {
    uint32_t word;
    memcpy(&word, data, 4);
    sum += word;
    data += 4;
    length -= 4;
  }
  if (length >= 2) {
    uint16_t word;
    memcpy(&word, data, 2);
    sum += word;
    data += 2;
    length -= 2;
  }
  if (length == 1) {
    uint16_t word = 0;  // an odd last byte is padded with a zero byte after it
    memcpy(&word, data, 1);
    sum += word;
  }
  return sum;
}

// Folds a running sum to 16 bits (not inverted).
inline uint16_t ChecksumFold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The TCP/UDP pseudo-header (RFC 793, RFC 8200 8.1) of an IPv4 or IPv6 packet at `ip`:
// addresses, protocol and the transport length.
inline uint64_t PseudoHeaderSum(const uint8_t* ip, bool v6, uint8_t protocol, uint32_t transportLength) {
  uint64_t sum = v6 ? ChecksumAdd(ip + 8, 32, 0) : ChecksumAdd(ip + 12, 8, 0);
  sum += htons(protocol);
  sum += htons(static_cast<uint16_t>(transportLength >> 16));
  sum += htons(static_cast<uint16_t>(transportLength & 0xffff));
  return sum;
}

// Stores the final (inverted) checksum of `sum` at `field`.
inline void ChecksumStore(uint8_t* field, uint64_t sum) {
  uint16_t value = static_cast<uint16_t>(~ChecksumFold(sum));
  memcpy(field, &value, 2);
}

// Whether data holding its own checksum sums to all ones (the receiver's check).
inline bool ChecksumValid(uint64_t sum) { return ChecksumFold(sum) == 0xffff; }

}  // namespace shardvpn
