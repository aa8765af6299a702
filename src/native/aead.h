// Data-channel AEAD (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305) through the OpenSSL that Node
// ships, one persistent cipher context per direction, sealing and opening batches of packets in
// place. The caller gives the layout (where AAD, nonce field, tag and payload sit in a packet);
// no protocol knowledge lives here.
#pragma once
#include <napi.h>
#include <openssl/evp.h>

#include <array>

#include "chacha-poly.h"

namespace shardvpn {

class AeadKey : public Napi::ObjectWrap<AeadKey> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AeadKey(const Napi::CallbackInfo& info);
  ~AeadKey() override;

 private:
  struct Direction {
    EVP_CIPHER_CTX* ctx = nullptr;
    std::array<uint8_t, 12> implicitIv{};
    size_t implicitIvLength = 0;
    // ChaCha20-Poly1305 through OpenSSL's cores instead of EVP (chacha-poly.h), where available.
    ChaChaPolyKey cores;
    bool useCores = false;
  };
  struct Layout {
    size_t aadOffset, aadLength, nonceOffset, nonceLength, tagOffset, payloadOffset;
  };

  Napi::Value Seal(const Napi::CallbackInfo& info);
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  Napi::Value Cipher(const Napi::CallbackInfo& info);
  Napi::Value Implementation(const Napi::CallbackInfo& info);
  void InitDirection(Napi::Env env, Direction* direction, const Napi::Value& key, const Napi::Value& iv, bool encrypt);
  Layout ParseLayout(const Napi::CallbackInfo& info, size_t index, const char* call) const;
  static bool FitsLayout(size_t length, const Layout& layout);
  void BuildNonce(const Direction& direction, const uint8_t* packet, const Layout& layout, uint8_t* nonce) const;
  bool SealWithEvp(uint8_t* packet, const Layout& layout, const uint8_t* nonce, uint8_t* payload, int payloadLength);
  bool OpenWithEvp(const uint8_t* packet, const Layout& layout, const uint8_t* nonce, uint8_t* payload,
                   int payloadLength);
  void Wipe();

  const EVP_CIPHER* cipher_ = nullptr;
  std::string cipherName_;
  size_t keyLength_ = 0;
  bool preferEvp_ = false;
  Direction seal_;
  Direction open_;
};

}  // namespace shardvpn
