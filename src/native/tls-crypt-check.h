// The authenticity check of a tls-crypt control packet from an address with no session
// (tls_crypt_unwrap's HMAC test, without keeping the plaintext): one AES-256-CTR context and one
// HMAC-SHA256 context made once, so refusing a forged packet costs no allocation and no key
// schedule. A packet that passes is unwrapped again by the TypeScript code, which keeps it.
// Keyed with a tls-crypt-v2 server key's Ke and Ka, it checks the WKc a client's first packet
// carries (verifyWkc) the same way.
#pragma once
#include <napi.h>
#include <openssl/evp.h>

#include "tls-crypt-keys.h"

namespace shardvpn {

class TlsCryptCheck : public Napi::ObjectWrap<TlsCryptCheck> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit TlsCryptCheck(const Napi::CallbackInfo& info);
  ~TlsCryptCheck() override;

 private:
  Napi::Value Verify(const Napi::CallbackInfo& info);
  Napi::Value VerifyWkc(const Napi::CallbackInfo& info);
  bool CheckTag(const uint8_t* prefix, size_t prefixLength, const uint8_t* tag, const uint8_t* body, size_t bodyLength);
  Napi::Value Destroy(const Napi::CallbackInfo& info);

  TlsCryptKeys keys_;
};

}  // namespace shardvpn
