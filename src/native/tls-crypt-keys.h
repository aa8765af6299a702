// The keyed OpenSSL contexts of one tls-crypt direction (tls_crypt.c's key_ctx): AES-256-CTR and
// HMAC-SHA256, fetched and keyed once. TlsCryptCheck (first packets, checked in place) and
// TlsCryptDirection (a session's control packets) both hold one.
#pragma once
#include <openssl/evp.h>

#include "hmac-context.h"

#include <cstddef>
#include <cstdint>

namespace shardvpn {

struct TlsCryptKeys {
  EVP_CIPHER* cipher = nullptr;
  EVP_CIPHER_CTX* ctr = nullptr;
  EVP_MAC_CTX* mac = nullptr;

  // Fetches and keys both contexts (`encrypt`: the CTR context's direction, as OpenSSL checks it);
  // false, with nothing held, when OpenSSL lacks an algorithm or refuses a key.
  bool Init(const uint8_t* cipherKey, const uint8_t* macKey, size_t macKeyLength, bool encrypt) {
    cipher = EVP_CIPHER_fetch(nullptr, "AES-256-CTR", nullptr);
    ctr = EVP_CIPHER_CTX_new();
    mac = NewHmacContext("SHA256", macKey, macKeyLength);
    if (cipher == nullptr || ctr == nullptr || mac == nullptr ||
        EVP_CipherInit_ex2(ctr, cipher, cipherKey, nullptr, encrypt ? 1 : 0, nullptr) != 1) {
      Wipe();
      return false;
    }
    return true;
  }

  // The _free calls cleanse the key schedule and the HMAC pads.
  void Wipe() {
    if (ctr != nullptr) EVP_CIPHER_CTX_free(ctr);
    if (mac != nullptr) EVP_MAC_CTX_free(mac);
    if (cipher != nullptr) EVP_CIPHER_free(cipher);
    ctr = nullptr;
    mac = nullptr;
    cipher = nullptr;
  }
};

}  // namespace shardvpn
