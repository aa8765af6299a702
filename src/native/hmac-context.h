// A keyed HMAC context of one digest (OpenSSL 3 EVP_MAC), made once and re-initialised for each
// packet with EVP_MAC_init(ctx, nullptr, 0, nullptr), which keeps the key: no algorithm fetch,
// key schedule or allocation per packet. Used by the tls-auth and tls-crypt checks and codecs.
#pragma once
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace shardvpn {

// A new context of HMAC-`digest` ("SHA1", "SHA256", ... as OpenSSL names them) keyed with
// key[0, keyLength); nullptr when OpenSSL lacks the algorithm or refuses the key. Free it with
// EVP_MAC_CTX_free, which cleanses the HMAC pads.
inline EVP_MAC_CTX* NewHmacContext(const std::string& digest, const uint8_t* key, size_t keyLength) {
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (hmac == nullptr) return nullptr;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(hmac);  // holds its own reference to the algorithm
  EVP_MAC_free(hmac);
  std::string name = digest;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, name.data(), 0), OSSL_PARAM_construct_end()};
  if (ctx != nullptr && EVP_MAC_init(ctx, key, keyLength, params) != 1) {
    EVP_MAC_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

}  // namespace shardvpn
