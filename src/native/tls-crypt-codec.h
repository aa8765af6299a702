// One direction of a tls-crypt key (tls_crypt.c tls_crypt_wrap / tls_crypt_unwrap): an
// AES-256-CTR context and an HMAC-SHA256 context keyed once, as OpenVPN keeps them in its
// key_ctx, so a control packet costs no algorithm fetch, key schedule or JavaScript object.
// node:crypto's createHmac/createCipheriv did all three per packet (8 % of a handshake's CPU).
#pragma once
#include <napi.h>
#include <openssl/evp.h>

#include "tls-crypt-keys.h"

namespace shardvpn {

class TlsCryptDirection : public Napi::ObjectWrap<TlsCryptDirection> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit TlsCryptDirection(const Napi::CallbackInfo& info);
  ~TlsCryptDirection() override;

 private:
  Napi::Value Seal(const Napi::CallbackInfo& info);
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);

  TlsCryptKeys keys_;
};

}  // namespace shardvpn
