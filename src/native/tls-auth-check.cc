#include "tls-auth-check.h"

#include <openssl/crypto.h>

#include <string>

#include "errors.h"
#include "hmac-context.h"
#include "packet-range.h"

namespace shardvpn {

namespace {
// tls-auth layout (wire doc 1.4.2): [op|key_id 1][session id 8][HMAC H][packet id 4][time 4][rest].
// The HMAC covers packet id || time || op || session id || rest, in that order (swap_hmac).
constexpr size_t kOpcodeSid = 9;
constexpr size_t kPidSize = 8;
constexpr size_t kMaxHmac = EVP_MAX_MD_SIZE;
}  // namespace

Napi::Function TlsAuthCheck::Define(Napi::Env env) {
  return DefineClass(env, "TlsAuthCheck",
                     {
                         InstanceMethod("verify", &TlsAuthCheck::Verify),
                         InstanceMethod("destroy", &TlsAuthCheck::Destroy),
                     });
}

// new TlsAuthCheck(digest, hmacKey): the `--auth` digest as OpenSSL names it ("SHA1",
// "SHA256", ...) and the receive direction's HMAC key (as many bytes as the digest's size).
TlsAuthCheck::TlsAuthCheck(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TlsAuthCheck>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(env, "TlsAuthCheck(digest: string, hmacKey: Uint8Array)");
  }
  std::string digest = info[0].As<Napi::String>().Utf8Value();
  auto key = info[1].As<Napi::Uint8Array>();
  EVP_MD* md = EVP_MD_fetch(nullptr, digest.c_str(), nullptr);
  const int mdSize = md != nullptr ? EVP_MD_get_size(md) : 0;
  EVP_MD_free(md);
  if (mdSize <= 0 || static_cast<size_t>(mdSize) > kMaxHmac) throw Napi::Error::New(env, "TlsAuthCheck: OpenSSL has no digest '" + digest + "'");
  size_ = static_cast<size_t>(mdSize);
  if (key.ByteLength() != size_) ThrowRange(env, "TlsAuthCheck: the key must be as long as the digest");
  mac_ = NewHmacContext(digest, key.Data(), key.ByteLength());
  if (mac_ == nullptr) throw Napi::Error::New(env, "TlsAuthCheck: OpenSSL has no HMAC or refused the key");
}

TlsAuthCheck::~TlsAuthCheck() { Wipe(); }

// The _free call cleanses the HMAC pads.
void TlsAuthCheck::Wipe() {
  if (mac_ != nullptr) EVP_MAC_CTX_free(mac_);
  mac_ = nullptr;
}

// verify(memory, at, length) -> true when memory[at, at + length) is a tls-auth packet whose
// HMAC field is the HMAC of its swapped layout under this key (compared in constant time).
Napi::Value TlsAuthCheck::Verify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (mac_ == nullptr) ThrowType(env, "TlsAuthCheck: destroyed");
  const PacketRange range = PacketArgs(info, "verify");
  const size_t n = range.length;
  if (n < kOpcodeSid + size_ + kPidSize) return Napi::Boolean::New(env, false);
  const uint8_t* packet = range.data;
  const uint8_t* field = packet + kOpcodeSid;
  const size_t rest = kOpcodeSid + size_ + kPidSize;
  uint8_t mac[kMaxHmac];
  size_t macLength = 0;
  // A NULL key re-initialises the context with the key it was given at construction.
  const bool ok = EVP_MAC_init(mac_, nullptr, 0, nullptr) == 1 && EVP_MAC_update(mac_, packet + kOpcodeSid + size_, kPidSize) == 1 &&
                  EVP_MAC_update(mac_, packet, kOpcodeSid) == 1 && EVP_MAC_update(mac_, packet + rest, n - rest) == 1 &&
                  EVP_MAC_final(mac_, mac, &macLength, sizeof mac) == 1 && macLength == size_ && CRYPTO_memcmp(mac, field, size_) == 0;
  return Napi::Boolean::New(env, ok);
}

Napi::Value TlsAuthCheck::Destroy(const Napi::CallbackInfo& info) {
  Wipe();
  return info.Env().Undefined();
}

}  // namespace shardvpn
