// The authenticity check of a tls-auth control packet from an address with no session
// (ssl_pkt.c tls_pre_decrypt_lite's HMAC test): one HMAC context of the `--auth` digest, keyed
// once, so refusing a forged packet costs no allocation and no key schedule. A packet that
// passes is unwrapped again by the TypeScript code, which keeps it.
#pragma once
#include <napi.h>
#include <openssl/evp.h>

namespace shardvpn {

class TlsAuthCheck : public Napi::ObjectWrap<TlsAuthCheck> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit TlsAuthCheck(const Napi::CallbackInfo& info);
  ~TlsAuthCheck() override;

 private:
  Napi::Value Verify(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  void Wipe();

  EVP_MAC_CTX* mac_ = nullptr;
  size_t size_ = 0;
};

}  // namespace shardvpn
