#include "tls-crypt-codec.h"

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
  if (!keys_.Init(key.Data(), macKey.Data(), macKey.ByteLength(), true)) {
    throw Napi::Error::New(env, "TlsCryptDirection: OpenSSL has no AES-256-CTR or HMAC-SHA256, or refused the keys");
  }
}

TlsCryptDirection::~TlsCryptDirection() { keys_.Wipe(); }


// seal(packet) (tls_crypt_wrap): packet is [header 17][room for the tag 32][plaintext]; writes
// the tag = HMAC(header || plaintext) and encrypts the plaintext in place with the tag's first
// 16 bytes as the CTR IV.
Napi::Value TlsCryptDirection::Seal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (keys_.ctr == nullptr) ThrowType(env, "TlsCryptDirection: destroyed");
  if (!IsBytes(info[0])) ThrowType(env, "seal(packet: Uint8Array)");
  auto packet = info[0].As<Napi::Uint8Array>();
  const size_t length = packet.ByteLength();
  if (length < kBodyOffset) ThrowRange(env, "seal: packet shorter than the tls-crypt header and tag");
  uint8_t* p = packet.Data();
  uint8_t* body = p + kBodyOffset;
  const size_t bodyLength = length - kBodyOffset;
  size_t macLength = 0;
  int outLength = 0;
  bool ok = EVP_MAC_init(keys_.mac, nullptr, 0, nullptr) == 1 && EVP_MAC_update(keys_.mac, p, kHeaderSize) == 1 &&
            EVP_MAC_update(keys_.mac, body, bodyLength) == 1 && EVP_MAC_final(keys_.mac, p + kHeaderSize, &macLength, kTagSize) == 1 &&
            macLength == kTagSize && EVP_EncryptInit_ex2(keys_.ctr, nullptr, nullptr, p + kHeaderSize, nullptr) == 1 &&
            (bodyLength == 0 || (EVP_EncryptUpdate(keys_.ctr, body, &outLength, body, static_cast<int>(bodyLength)) == 1 &&
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
  if (keys_.ctr == nullptr) ThrowType(env, "TlsCryptDirection: destroyed");
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
  bool ok = EVP_EncryptInit_ex2(keys_.ctr, nullptr, nullptr, tag, nullptr) == 1 &&
            (bodyLength == 0 || (EVP_EncryptUpdate(keys_.ctr, plain, &outLength, w + kBodyOffset, static_cast<int>(bodyLength)) == 1 &&
                                 outLength == static_cast<int>(bodyLength))) &&
            EVP_MAC_init(keys_.mac, nullptr, 0, nullptr) == 1 && EVP_MAC_update(keys_.mac, w, kHeaderSize) == 1 &&
            EVP_MAC_update(keys_.mac, plain, bodyLength) == 1 && EVP_MAC_final(keys_.mac, mac, &macLength, sizeof mac) == 1 &&
            macLength == kTagSize && CRYPTO_memcmp(mac, tag, kTagSize) == 0;
  if (!ok) OPENSSL_cleanse(o, out.ByteLength());
  return Napi::Boolean::New(env, ok);
}

Napi::Value TlsCryptDirection::Destroy(const Napi::CallbackInfo& info) {
  keys_.Wipe();
  return info.Env().Undefined();
}

}  // namespace shardvpn
