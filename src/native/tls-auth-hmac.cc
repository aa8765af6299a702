#include "tls-auth-hmac.h"

#include <openssl/crypto.h>

#include <cstring>
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

Napi::Function TlsAuthHmac::Define(Napi::Env env) {
  return DefineClass(env, "TlsAuthHmac",
                     {
                         InstanceMethod("verify", &TlsAuthHmac::Verify),
                         InstanceMethod("sign", &TlsAuthHmac::Sign),
                         InstanceMethod("destroy", &TlsAuthHmac::Destroy),
                     });
}

// new TlsAuthHmac(digest, hmacKey): the `--auth` digest as OpenSSL names it ("SHA1",
// "SHA256", ...) and this direction's HMAC key (as many bytes as the digest's size).
TlsAuthHmac::TlsAuthHmac(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TlsAuthHmac>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(env, "TlsAuthHmac(digest: string, hmacKey: Uint8Array)");
  }
  std::string digest = info[0].As<Napi::String>().Utf8Value();
  auto key = info[1].As<Napi::Uint8Array>();
  EVP_MD* md = EVP_MD_fetch(nullptr, digest.c_str(), nullptr);
  const int mdSize = md != nullptr ? EVP_MD_get_size(md) : 0;
  EVP_MD_free(md);
  if (mdSize <= 0 || static_cast<size_t>(mdSize) > kMaxHmac) throw Napi::Error::New(env, "TlsAuthHmac: OpenSSL has no digest '" + digest + "'");
  size_ = static_cast<size_t>(mdSize);
  if (key.ByteLength() != size_) ThrowRange(env, "TlsAuthHmac: the key must be as long as the digest");
  mac_ = NewHmacContext(digest, key.Data(), key.ByteLength());
  if (mac_ == nullptr) throw Napi::Error::New(env, "TlsAuthHmac: OpenSSL has no HMAC or refused the key");
}

TlsAuthHmac::~TlsAuthHmac() { Wipe(); }

// The _free call cleanses the HMAC pads.
void TlsAuthHmac::Wipe() {
  if (mac_ != nullptr) EVP_MAC_CTX_free(mac_);
  mac_ = nullptr;
}

bool TlsAuthHmac::Compute(const uint8_t* packet, size_t length, uint8_t* out) {
  const size_t rest = kOpcodeSid + size_ + kPidSize;
  size_t macLength = 0;
  // A NULL key re-initialises the context with the key it was given at construction.
  return EVP_MAC_init(mac_, nullptr, 0, nullptr) == 1 && EVP_MAC_update(mac_, packet + kOpcodeSid + size_, kPidSize) == 1 &&
         EVP_MAC_update(mac_, packet, kOpcodeSid) == 1 && EVP_MAC_update(mac_, packet + rest, length - rest) == 1 &&
         EVP_MAC_final(mac_, out, &macLength, kMaxHmac) == 1 && macLength == size_;
}

// verify(memory, at, length) -> true when memory[at, at + length) is a tls-auth packet whose
// HMAC field is the HMAC of its swapped layout under this key (compared in constant time).
Napi::Value TlsAuthHmac::Verify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (mac_ == nullptr) ThrowType(env, "TlsAuthHmac: destroyed");
  const PacketRange range = PacketArgs(info, "verify");
  if (range.length < kOpcodeSid + size_ + kPidSize) return Napi::Boolean::New(env, false);
  uint8_t mac[kMaxHmac];
  const bool ok = Compute(range.data, range.length, mac) && CRYPTO_memcmp(mac, range.data + kOpcodeSid, size_) == 0;
  OPENSSL_cleanse(mac, sizeof mac);
  return Napi::Boolean::New(env, ok);
}

// sign(packet): packet is the wire layout with the HMAC field still to fill; writes the HMAC of
// its swapped layout into packet[9, 9 + H).
Napi::Value TlsAuthHmac::Sign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (mac_ == nullptr) ThrowType(env, "TlsAuthHmac: destroyed");
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) ThrowType(env, "sign(packet: Uint8Array)");
  auto packet = info[0].As<Napi::Uint8Array>();
  if (packet.ByteLength() < kOpcodeSid + size_ + kPidSize) ThrowRange(env, "sign: shorter than a tls-auth header");
  uint8_t mac[kMaxHmac];
  if (!Compute(packet.Data(), packet.ByteLength(), mac)) throw Napi::Error::New(env, "TlsAuthHmac: HMAC failed");
  std::memcpy(packet.Data() + kOpcodeSid, mac, size_);
  OPENSSL_cleanse(mac, sizeof mac);
  return env.Undefined();
}

Napi::Value TlsAuthHmac::Destroy(const Napi::CallbackInfo& info) {
  Wipe();
  return info.Env().Undefined();
}

}  // namespace shardvpn
