// Data-channel CBC + HMAC (OpenVPN's non-AEAD data channel: AES-128/192/256-CBC, BF-CBC where
// OpenSSL's legacy provider is loaded) through the OpenSSL that Node ships: one cipher context
// and one HMAC context per direction, sealing and opening batches of packets in place. The
// caller writes the header and the packet-id; this file only knows where the HMAC, the IV and
// the ciphertext sit after the header, and it never leaves unauthenticated plaintext behind.
#pragma once
#include <napi.h>
#include <openssl/evp.h>

#include <string>

namespace shardvpn {

class CbcHmacKey : public Napi::ObjectWrap<CbcHmacKey> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit CbcHmacKey(const Napi::CallbackInfo& info);
  ~CbcHmacKey() override;

 private:
  struct Direction {
    EVP_CIPHER_CTX* cipher = nullptr;
    EVP_MAC_CTX* mac = nullptr;
  };

  Napi::Value Seal(const Napi::CallbackInfo& info);
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  Napi::Value Sizes(const Napi::CallbackInfo& info);
  void InitDirection(Napi::Env env, Direction* direction, const Napi::Value& key, const Napi::Value& hmacKey, bool encrypt);
  bool Mac(Direction* direction, const uint8_t* data, size_t length, uint8_t* out);
  void Wipe();

  EVP_CIPHER* cipher_ = nullptr;
  EVP_MAC* hmac_ = nullptr;
  std::string cipherName_;
  std::string digestName_;
  size_t keyLength_ = 0;
  size_t ivLength_ = 0;
  size_t blockSize_ = 0;
  size_t macLength_ = 0;
  Direction seal_;
  Direction open_;
};

}  // namespace shardvpn
