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
// TLS_CRYPT_V2_MAX_WKC_LEN (tls_crypt.h).
constexpr size_t kMaxWkcLength = 1024;
}  // namespace

Napi::Function TlsCryptCheck::Define(Napi::Env env) {
  return DefineClass(env, "TlsCryptCheck",
                     {
                         InstanceMethod("verify", &TlsCryptCheck::Verify),
                         InstanceMethod("verifyWkc", &TlsCryptCheck::VerifyWkc),
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


// Whether `tag` is HMAC(prefix || plaintext) of `body` decrypted with the tag's first 16 bytes
// as the CTR IV (tls_crypt_unwrap's order and tls-crypt-v2's WKc alike), compared in constant
// time; the plaintext is decrypted a chunk at a time on the stack and wiped.
bool TlsCryptCheck::CheckTag(const uint8_t* prefix, size_t prefixLength, const uint8_t* tag, const uint8_t* body, size_t bodyLength) {
  static_assert(kIvSize <= kTagSize, "the IV is the start of the tag");
  bool ok = EVP_DecryptInit_ex2(keys_.ctr, nullptr, nullptr, tag, nullptr) == 1 && EVP_MAC_init(keys_.mac, nullptr, 0, nullptr) == 1 &&
            EVP_MAC_update(keys_.mac, prefix, prefixLength) == 1;
  uint8_t plain[kChunk];
  for (size_t off = 0; ok && off < bodyLength; off += kChunk) {
    const size_t n = std::min(kChunk, bodyLength - off);
    int outLength = 0;
    ok = EVP_DecryptUpdate(keys_.ctr, plain, &outLength, body + off, static_cast<int>(n)) == 1 && outLength == static_cast<int>(n) &&
         EVP_MAC_update(keys_.mac, plain, n) == 1;
  }
  uint8_t mac[kTagSize];
  size_t macLength = 0;
  ok = ok && EVP_MAC_final(keys_.mac, mac, &macLength, sizeof mac) == 1 && macLength == kTagSize && CRYPTO_memcmp(mac, tag, kTagSize) == 0;
  OPENSSL_cleanse(plain, sizeof plain);
  return ok;
}

// verify(memory, at, length) -> true when memory[at, at + length) is a tls-crypt packet whose
// tag is the HMAC of its header and decrypted body under these keys.
Napi::Value TlsCryptCheck::Verify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (keys_.ctr == nullptr) ThrowType(env, "TlsCryptCheck: destroyed");
  const PacketRange range = PacketArgs(info, "verify");
  if (range.length < kBodyOffset) return Napi::Boolean::New(env, false);
  const uint8_t* packet = range.data;
  return Napi::Boolean::New(env, CheckTag(packet, kTagOffset, packet + kTagOffset, packet + kBodyOffset, range.length - kBodyOffset));
}

// verifyWkc(memory, at, length) -> true when memory[at, at + length) ends in a tls-crypt-v2 WKc
// (its length is the packet's last two bytes, big-endian) whose tag verifies under these keys,
// the server key's Ke and Ka: WKc = T || AES-256-CTR(Ke, IV T[0..16), Kc || metadata) || len,
// T = HMAC-SHA256(Ka, len || Kc || metadata) (tls_crypt_v2_unwrap_client_key). What this refuses
// the TypeScript unwrap refuses too; what passes is unwrapped there again.
Napi::Value TlsCryptCheck::VerifyWkc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (keys_.ctr == nullptr) ThrowType(env, "TlsCryptCheck: destroyed");
  const PacketRange range = PacketArgs(info, "verifyWkc");
  // The opcode byte, at least one more, and the length field (tls_crypt_v2_extract_client_key).
  if (range.length < 4) return Napi::Boolean::New(env, false);
  const uint8_t* end = range.data + range.length;
  const size_t wkcLength = (static_cast<size_t>(end[-2]) << 8) | end[-1];
  if (wkcLength > range.length - 1 || wkcLength > kMaxWkcLength || wkcLength < kTagSize + 2) return Napi::Boolean::New(env, false);
  const uint8_t* wkc = end - wkcLength;
  return Napi::Boolean::New(env, CheckTag(end - 2, 2, wkc, wkc + kTagSize, wkcLength - kTagSize - 2));
}

Napi::Value TlsCryptCheck::Destroy(const Napi::CallbackInfo& info) {
  keys_.Wipe();
  return info.Env().Undefined();
}

}  // namespace shardvpn
