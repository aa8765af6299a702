// ChaCha20-Poly1305 (RFC 8439, section 2.8) composed from OpenSSL's own ChaCha20 and Poly1305
// cores, for the data channel's per-packet seal and open. The EVP interface pays, per packet, for
// its provider dispatch and a separate one-block ChaCha20 call for the Poly1305 key: about a third
// of a 1400-byte packet's cost here. These cores are the same assembly EVP runs, but they are not
// OpenSSL's public API: they are looked up by name in the running Node binary at load time, checked
// against RFC 8439's test vector and EVP's output, and where any of that fails AeadKey stays on EVP.
#pragma once
#include <cstddef>
#include <cstdint>

namespace shardvpn {

class ChaChaPolyKey {
 public:
  /** True when the running Node exports OpenSSL's cores and they passed the self-test. */
  static bool Available();

  void SetKey(const uint8_t key[32]);
  void Wipe();
  /** Encrypts payload[0, length) in place and writes the 16-byte tag. */
  void Seal(uint8_t* payload, size_t length, const uint8_t* aad, size_t aadLength, const uint8_t nonce[12],
            uint8_t tag[16]) const;
  /**
   * Checks the tag over aad and the ciphertext first and decrypts in place only when it is
   * authentic; returns false (payload untouched) when not.
   */
  bool Open(uint8_t* payload, size_t length, const uint8_t* aad, size_t aadLength, const uint8_t nonce[12],
            const uint8_t tag[16]) const;

 private:
  uint32_t key_[8] = {};
};

}  // namespace shardvpn
