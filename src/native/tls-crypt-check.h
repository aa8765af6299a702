// The authenticity check of a tls-crypt control packet from an address with no session
// (tls_crypt_unwrap's HMAC test, without keeping the plaintext): one AES-256-CTR context and one
// HMAC-SHA256 context made once, so refusing a forged packet costs no allocation and no key
// schedule. A packet that passes is unwrapped again by the TypeScript code, which keeps it.
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
  Napi::Value Destroy(const Napi::CallbackInfo& info);

  TlsCryptKeys keys_;
};

}  // namespace shardvpn
