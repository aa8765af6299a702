#include "tls-crypt-codec.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>

#include <algorithm>

#include "errors.h"

namespace shardvpn {

namespace {
// tls-crypt layout (tls_crypt.h): [op|key_id 1][session id 8][packet id 4][time 4][tag 32][AES-256-CTR body].
constexpr size_t kHeaderSize = 17;
constexpr size_t kPidOffset = 9;
constexpr size_t kTagSize = 32;
constexpr size_t kBodyOffset = kHeaderSize + kTagSize;
constexpr size_t kKeySize = 32;

bool IsBytes(const Napi::Value& v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
}
}  // namespace

Napi::Function TlsCryptDirection::Define(Napi::Env env) {
  return DefineClass(env, "TlsCryptDirection",
                     {
                         InstanceMethod("seal", &TlsCryptDirection::Seal),
                         InstanceMethod("open", &TlsCryptDirection::Open),
                         InstanceMethod("destroy", &TlsCryptDirection::Destroy),
                     });
}

// new TlsCryptDirection(cipherKey, hmacKey): one direction's 32-byte AES-256-CTR key and
// 32-byte HMAC-SHA256 key. CTR encrypts and decrypts alike, so one object seals or opens.
TlsCryptDirection::TlsCryptDirection(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TlsCryptDirection>(info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < 2; i++) {
    if (!IsBytes(info[i]) || info[i].As<Napi::Uint8Array>().ByteLength() != kKeySize) {
      ThrowType(env, "TlsCryptDirection(cipherKey, hmacKey): two 32-byte Uint8Arrays");
    }
  }
  auto key = info[0].As<Napi::Uint8Array>();
  auto macKey = info[1].As<Napi::Uint8Array>();
  cipher_ = EVP_CIPHER_fetch(nullptr, "AES-256-CTR", nullptr);
  ctr_ = EVP_CIPHER_CTX_new();
  hmac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  mac_ = hmac_ != nullptr ? EVP_MAC_CTX_new(hmac_) : nullptr;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (cipher_ == nullptr || ctr_ == nullptr || mac_ == nullptr || EVP_EncryptInit_ex2(ctr_, cipher_, key.Data(), nullptr, nullptr) != 1 ||
      EVP_MAC_init(mac_, macKey.Data(), macKey.ByteLength(), params) != 1) {
    Wipe();
    throw Napi::Error::New(env, "TlsCryptDirection: OpenSSL has no AES-256-CTR or HMAC-SHA256, or refused the keys");
  }
}

TlsCryptDirection::~TlsCryptDirection() { Wipe(); }

void TlsCryptDirection::Wipe() {
  // The _free calls cleanse the key schedule and the HMAC pads.
  if (ctr_ != nullptr) EVP_CIPHER_CTX_free(ctr_);
  if (mac_ != nullptr) EVP_MAC_CTX_free(mac_);
  if (cipher_ != nullptr) EVP_CIPHER_free(cipher_);
  if (hmac_ != nullptr) EVP_MAC_free(hmac_);
  ctr_ = nullptr;
  mac_ = nullptr;
  cipher_ = nullptr;
  hmac_ = nullptr;
}

// seal(packet) (tls_crypt_wrap): packet is [header 17][room for the tag 32][plaintext]; writes
// the tag = HMAC(header || plaintext) and encrypts the plaintext in place with the tag's first
// 16 bytes as the CTR IV.
Napi::Value TlsCryptDirection::Seal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (ctr_ == nullptr) ThrowType(env, "TlsCryptDirection: destroyed");
  if (!IsBytes(info[0])) ThrowType(env, "seal(packet: Uint8Array)");
  auto packet = info[0].As<Napi::Uint8Array>();
  const size_t length = packet.ByteLength();
  if (length < kBodyOffset) ThrowRange(env, "seal: packet shorter than the tls-crypt header and tag");
  uint8_t* p = packet.Data();
  uint8_t* body = p + kBodyOffset;
  const size_t bodyLength = length - kBodyOffset;
  size_t macLength = 0;
  int outLength = 0;
  bool ok = EVP_MAC_init(mac_, nullptr, 0, nullptr) == 1 && EVP_MAC_update(mac_, p, kHeaderSize) == 1 &&
            EVP_MAC_update(mac_, body, bodyLength) == 1 && EVP_MAC_final(mac_, p + kHeaderSize, &macLength, kTagSize) == 1 &&
            macLength == kTagSize && EVP_EncryptInit_ex2(ctr_, nullptr, nullptr, p + kHeaderSize, nullptr) == 1 &&
            (bodyLength == 0 || (EVP_EncryptUpdate(ctr_, body, &outLength, body, static_cast<int>(bodyLength)) == 1 &&
                                 outLength == static_cast<int>(bodyLength)));
  if (!ok) throw Napi::Error::New(env, "tls-crypt seal: OpenSSL failed");
  return env.Undefined();
}

// open(wire, out) (tls_crypt_unwrap): decrypts wire's body into out after out's first 9 bytes
// (opcode and session id, copied from wire), then checks the tag over wire's header and the
// plaintext in constant time. out.length must be wire.length - 40. True when authentic; out is
// zeroed when not.
Napi::Value TlsCryptDirection::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (ctr_ == nullptr) ThrowType(env, "TlsCryptDirection: destroyed");
  if (!IsBytes(info[0]) || !IsBytes(info[1])) ThrowType(env, "open(wire: Uint8Array, out: Uint8Array)");
  auto wire = info[0].As<Napi::Uint8Array>();
  auto out = info[1].As<Napi::Uint8Array>();
  const size_t length = wire.ByteLength();
  if (length < kBodyOffset) return Napi::Boolean::New(env, false);
  const size_t bodyLength = length - kBodyOffset;
  if (out.ByteLength() != kPidOffset + bodyLength) ThrowRange(env, "open: out must be wire.length - 40 bytes");
  const uint8_t* w = wire.Data();
  const uint8_t* tag = w + kHeaderSize;
  uint8_t* o = out.Data();
  std::copy(w, w + kPidOffset, o);
  uint8_t* plain = o + kPidOffset;
  uint8_t mac[kTagSize];
  size_t macLength = 0;
  int outLength = 0;
  bool ok = EVP_EncryptInit_ex2(ctr_, nullptr, nullptr, tag, nullptr) == 1 &&
            (bodyLength == 0 || (EVP_EncryptUpdate(ctr_, plain, &outLength, w + kBodyOffset, static_cast<int>(bodyLength)) == 1 &&
                                 outLength == static_cast<int>(bodyLength))) &&
            EVP_MAC_init(mac_, nullptr, 0, nullptr) == 1 && EVP_MAC_update(mac_, w, kHeaderSize) == 1 &&
            EVP_MAC_update(mac_, plain, bodyLength) == 1 && EVP_MAC_final(mac_, mac, &macLength, sizeof mac) == 1 &&
            macLength == kTagSize && CRYPTO_memcmp(mac, tag, kTagSize) == 0;
  if (!ok) OPENSSL_cleanse(o, out.ByteLength());
  return Napi::Boolean::New(env, ok);
}

Napi::Value TlsCryptDirection::Destroy(const Napi::CallbackInfo& info) {
  Wipe();
  return info.Env().Undefined();
}

}  // namespace shardvpn
