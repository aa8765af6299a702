// One direction of a tls-auth key (ssl_pkt.c tls_wrap_control / swap_hmac, and
// tls_pre_decrypt_lite's test of a first packet): one HMAC context of the `--auth` digest, keyed
// once, as OpenVPN's key_ctx. It signs the control packets a session sends and verifies those it
// receives (and the first packets of addresses with no session, in the receive memory), so no
// control packet costs an allocation or a key schedule.
#pragma once
#include <napi.h>
#include <openssl/evp.h>

namespace shardvpn {

class TlsAuthHmac : public Napi::ObjectWrap<TlsAuthHmac> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit TlsAuthHmac(const Napi::CallbackInfo& info);
  ~TlsAuthHmac() override;

 private:
  Napi::Value Verify(const Napi::CallbackInfo& info);
  Napi::Value Sign(const Napi::CallbackInfo& info);
  // The HMAC of the swapped layout of packet[0, length) (length >= kOpcodeSid + size_ + 8) into out.
  bool Compute(const uint8_t* packet, size_t length, uint8_t* out);
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  void Wipe();

  EVP_MAC_CTX* mac_ = nullptr;
  size_t size_ = 0;
};

}  // namespace shardvpn
