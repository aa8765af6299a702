#include "tls-crypt-check.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "errors.h"
#include "packet-range.h"

namespace shardvpn {

namespace {
// tls-crypt layout (tls_crypt.h): [op|key_id 1][session id 8][packet id 4][time 4][tag 32][AES-256-CTR body].
constexpr size_t kTagOffset = 17;
constexpr size_t kTagSize = 32;
constexpr size_t kBodyOffset = kTagOffset + kTagSize;
constexpr size_t kIvSize = 16;
constexpr size_t kKeySize = 32;
constexpr size_t kChunk = 256;
}  // namespace

Napi::Function TlsCryptCheck::Define(Napi::Env env) {
  return DefineClass(env, "TlsCryptCheck",
                     {
                         InstanceMethod("verify", &TlsCryptCheck::Verify),
                         InstanceMethod("destroy", &TlsCryptCheck::Destroy),
                     });
}

// new TlsCryptCheck(cipherKey, hmacKey): the receive direction's 32-byte AES-256-CTR key and
// 32-byte HMAC-SHA256 key.
TlsCryptCheck::TlsCryptCheck(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TlsCryptCheck>(info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < 2; i++) {
    if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
        info[i].As<Napi::Uint8Array>().ByteLength() != kKeySize) {
      ThrowType(env, "TlsCryptCheck(cipherKey, hmacKey): two 32-byte Uint8Arrays");
    }
  }
  auto key = info[0].As<Napi::Uint8Array>();
  auto macKey = info[1].As<Napi::Uint8Array>();
  if (!keys_.Init(key.Data(), macKey.Data(), macKey.ByteLength(), false)) {
    throw Napi::Error::New(env, "TlsCryptCheck: OpenSSL has no AES-256-CTR or HMAC-SHA256, or refused the keys");
  }
}

TlsCryptCheck::~TlsCryptCheck() { keys_.Wipe(); }


// verify(memory, at, length) -> true when memory[at, at + length) is a tls-crypt packet whose
// tag is the HMAC of its header and decrypted body under these keys (tls_crypt_unwrap's order:
// decrypt with the tag as IV, then HMAC over header and plaintext, compared in constant time).
Napi::Value TlsCryptCheck::Verify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (keys_.ctr == nullptr) ThrowType(env, "TlsCryptCheck: destroyed");
  const PacketRange range = PacketArgs(info, "verify");
  const size_t length = range.length;
  if (length < kBodyOffset) return Napi::Boolean::New(env, false);
  const uint8_t* packet = range.data;
  const uint8_t* tag = packet + kTagOffset;
  bool ok = EVP_DecryptInit_ex2(keys_.ctr, nullptr, nullptr, tag, nullptr) == 1 && EVP_MAC_init(keys_.mac, nullptr, 0, nullptr) == 1 &&
            EVP_MAC_update(keys_.mac, packet, kTagOffset) == 1;
  uint8_t plain[kChunk];
  for (size_t off = kBodyOffset; ok && off < length; off += kChunk) {
    const size_t n = std::min(kChunk, length - off);
    int outLength = 0;
    ok = EVP_DecryptUpdate(keys_.ctr, plain, &outLength, packet + off, static_cast<int>(n)) == 1 && outLength == static_cast<int>(n) &&
         EVP_MAC_update(keys_.mac, plain, n) == 1;
  }
  uint8_t mac[kTagSize];
  size_t macLength = 0;
  ok = ok && EVP_MAC_final(keys_.mac, mac, &macLength, sizeof mac) == 1 && macLength == kTagSize && CRYPTO_memcmp(mac, tag, kTagSize) == 0;
  OPENSSL_cleanse(plain, sizeof plain);
  static_assert(kIvSize <= kTagSize, "the IV is the start of the tag");
  return Napi::Boolean::New(env, ok);
}

Napi::Value TlsCryptCheck::Destroy(const Napi::CallbackInfo& info) {
  keys_.Wipe();
  return info.Env().Undefined();
}

}  // namespace shardvpn
