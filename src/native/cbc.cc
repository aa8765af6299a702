#include "cbc.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>
#include <string>

#include "batch.h"
#include "errors.h"

namespace shardvpn {

namespace {
constexpr size_t kMaxBlock = 16;
constexpr size_t kMaxMac = 64;

const char* ModeName(const std::string& name) {
  // Only CBC ciphers: OpenVPN 2.6 still speaks CFB/OFB in theory, but no client negotiates them.
  return name.size() > 4 && name.compare(name.size() - 4, 4, "-CBC") == 0 ? name.c_str() : nullptr;
}
}  // namespace

Napi::Function CbcHmacKey::Define(Napi::Env env) {
  return DefineClass(env, "CbcHmacKey",
                     {
                         InstanceMethod("seal", &CbcHmacKey::Seal),
                         InstanceMethod("open", &CbcHmacKey::Open),
                         InstanceMethod("destroy", &CbcHmacKey::Destroy),
                         InstanceMethod("sizes", &CbcHmacKey::Sizes),
                     });
}

// new CbcHmacKey(cipher, digest, sealKey, sealHmacKey, openKey, openHmacKey). `digest` '' is
// OpenVPN's `auth none` (no HMAC). A direction whose cipher key is empty is not set up.
CbcHmacKey::CbcHmacKey(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CbcHmacKey>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString()) ThrowType(env, "CbcHmacKey(cipher, digest, ...): names must be strings");
  cipherName_ = info[0].As<Napi::String>().Utf8Value();
  digestName_ = info[1].As<Napi::String>().Utf8Value();
  if (ModeName(cipherName_) == nullptr) ThrowRange(env, "CbcHmacKey: '" + cipherName_ + "' is not a CBC cipher");
  cipher_ = EVP_CIPHER_fetch(nullptr, cipherName_.c_str(), nullptr);
  if (cipher_ == nullptr) {
    ThrowRange(env, "CbcHmacKey: OpenSSL has no cipher '" + cipherName_ + "'" +
                        (cipherName_ == "BF-CBC" ? " (BF-CBC needs OpenSSL's legacy provider, which is not loaded)" : ""));
  }
  keyLength_ = static_cast<size_t>(EVP_CIPHER_get_key_length(cipher_));
  ivLength_ = static_cast<size_t>(EVP_CIPHER_get_iv_length(cipher_));
  blockSize_ = static_cast<size_t>(EVP_CIPHER_get_block_size(cipher_));
  if (blockSize_ > kMaxBlock || ivLength_ > kMaxBlock || ivLength_ != blockSize_) {
    Wipe();
    ThrowRange(env, "CbcHmacKey: unexpected block or IV size of " + cipherName_);
  }
  if (!digestName_.empty()) {
    EVP_MD* md = EVP_MD_fetch(nullptr, digestName_.c_str(), nullptr);
    if (md == nullptr) {
      Wipe();
      ThrowRange(env, "CbcHmacKey: OpenSSL has no digest '" + digestName_ + "'");
    }
    macLength_ = static_cast<size_t>(EVP_MD_get_size(md));
    EVP_MD_free(md);
    hmac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (hmac_ == nullptr || macLength_ > kMaxMac) {
      Wipe();
      throw Napi::Error::New(env, "CbcHmacKey: OpenSSL has no HMAC for " + digestName_);
    }
  }
  try {
    InitDirection(env, &seal_, info[2], info[3], true);
    InitDirection(env, &open_, info[4], info[5], false);
  } catch (...) {
    Wipe();
    throw;
  }
}

CbcHmacKey::~CbcHmacKey() { Wipe(); }

void CbcHmacKey::InitDirection(Napi::Env env, Direction* direction, const Napi::Value& key, const Napi::Value& hmacKey,
                               bool encrypt) {
  const char* which = encrypt ? "seal" : "open";
  for (const Napi::Value* v : {&key, &hmacKey}) {
    if (!v->IsTypedArray() || v->As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      ThrowType(env, std::string("CbcHmacKey: ") + which + " keys must be Uint8Arrays");
    }
  }
  auto keyBytes = key.As<Napi::Uint8Array>();
  auto macBytes = hmacKey.As<Napi::Uint8Array>();
  if (keyBytes.ByteLength() == 0) return;
  if (keyBytes.ByteLength() != keyLength_) {
    ThrowRange(env, std::string("CbcHmacKey: ") + which + " key for " + cipherName_ + " must be " +
                        std::to_string(keyLength_) + " bytes, got " + std::to_string(keyBytes.ByteLength()));
  }
  if (macLength_ > 0 && macBytes.ByteLength() != macLength_) {
    ThrowRange(env, std::string("CbcHmacKey: ") + which + " HMAC key for " + digestName_ + " must be " +
                        std::to_string(macLength_) + " bytes, got " + std::to_string(macBytes.ByteLength()));
  }
  direction->cipher = EVP_CIPHER_CTX_new();
  if (direction->cipher == nullptr) throw Napi::Error::New(env, "CbcHmacKey: EVP_CIPHER_CTX_new failed");
  int ok = encrypt ? EVP_EncryptInit_ex2(direction->cipher, cipher_, keyBytes.Data(), nullptr, nullptr)
                   : EVP_DecryptInit_ex2(direction->cipher, cipher_, keyBytes.Data(), nullptr, nullptr);
  // Padding is ours (PKCS#7 written and checked here), so each packet is one in-place pass.
  if (ok != 1 || EVP_CIPHER_CTX_set_padding(direction->cipher, 0) != 1) {
    throw Napi::Error::New(env, std::string("CbcHmacKey: OpenSSL rejected the ") + which + " key of " + cipherName_);
  }
  if (macLength_ == 0) return;
  direction->mac = EVP_MAC_CTX_new(hmac_);
  std::string digest = digestName_;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest.data(), 0), OSSL_PARAM_construct_end()};
  if (direction->mac == nullptr || EVP_MAC_init(direction->mac, macBytes.Data(), macBytes.ByteLength(), params) != 1) {
    throw Napi::Error::New(env, std::string("CbcHmacKey: OpenSSL rejected the ") + which + " HMAC key");
  }
}

void CbcHmacKey::Wipe() {
  // The _free calls cleanse the key schedules and HMAC pads.
  for (Direction* direction : {&seal_, &open_}) {
    if (direction->cipher != nullptr) EVP_CIPHER_CTX_free(direction->cipher);
    if (direction->mac != nullptr) EVP_MAC_CTX_free(direction->mac);
    direction->cipher = nullptr;
    direction->mac = nullptr;
  }
  if (cipher_ != nullptr) EVP_CIPHER_free(cipher_);
  if (hmac_ != nullptr) EVP_MAC_free(hmac_);
  cipher_ = nullptr;
  hmac_ = nullptr;
}

bool CbcHmacKey::Mac(Direction* direction, const uint8_t* data, size_t length, uint8_t* out) {
  size_t outLength = 0;
  // A NULL key re-initialises with the key already set: no key schedule per packet.
  return EVP_MAC_init(direction->mac, nullptr, 0, nullptr) == 1 && EVP_MAC_update(direction->mac, data, length) == 1 &&
         EVP_MAC_final(direction->mac, out, &outLength, kMaxMac) == 1 && outLength == macLength_;
}

// sizes() -> [ivLength, blockSize, macLength]
Napi::Value CbcHmacKey::Sizes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(ivLength_)));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(blockSize_)));
  out.Set(2u, Napi::Number::New(env, static_cast<double>(macLength_)));
  return out;
}

// seal(memory, offsets, lengths, count, headerLength, capacity). Packet i is
//   [header: headerLength][HMAC: macLength][IV: ivLength][plaintext .. lengths[i])
// on entry (HMAC and IV bytes are filled here). The plaintext gets PKCS#7 padding, a random IV
// and is encrypted in place; the HMAC covers IV and ciphertext (crypto.c openvpn_encrypt_v1).
// lengths[i] grows by the padding, which must stay within `capacity` bytes of the packet start.
Napi::Value CbcHmacKey::Seal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (seal_.cipher == nullptr) throw Napi::Error::New(env, "CbcHmacKey.seal: no seal key (destroyed or open-only)");
  if (!info[5].IsNumber() || !info[4].IsNumber()) ThrowType(env, "CbcHmacKey.seal: headerLength and capacity must be numbers");
  size_t header = info[4].As<Napi::Number>().Uint32Value();
  size_t capacity = info[5].As<Napi::Number>().Uint32Value();
  Batch batch = ParseBatch(info, 0, "CbcHmacKey.seal", 0);
  size_t start = header + macLength_ + ivLength_;
  // Check the whole batch first, so a bad packet leaves every packet untouched.
  for (size_t i = 0; i < batch.count; i++) {
    size_t length = batch.lengths[i];
    size_t padded = length < start ? 0 : length + blockSize_ - ((length - start) % blockSize_);
    if (length < start || padded > capacity || batch.offsets[i] + padded > batch.memoryLength) {
      ThrowRange(env, "CbcHmacKey.seal: packet " + std::to_string(i) + " (" + std::to_string(length) +
                          " bytes) does not fit its layout and padding in " + std::to_string(capacity));
    }
  }
  for (size_t i = 0; i < batch.count; i++) {
    uint8_t* packet = batch.memory + batch.offsets[i];
    size_t length = batch.lengths[i];
    uint8_t pad = static_cast<uint8_t>(blockSize_ - ((length - start) % blockSize_));
    memset(packet + length, pad, pad);
    length += pad;
    uint8_t* iv = packet + header + macLength_;
    uint8_t* body = packet + start;
    int bodyLength = static_cast<int>(length - start);
    int outLength = 0;
    bool ok = RAND_bytes(iv, static_cast<int>(ivLength_)) == 1 &&
              EVP_EncryptInit_ex2(seal_.cipher, nullptr, nullptr, iv, nullptr) == 1 &&
              EVP_EncryptUpdate(seal_.cipher, body, &outLength, body, bodyLength) == 1 && outLength == bodyLength &&
              (macLength_ == 0 || Mac(&seal_, iv, length - header - macLength_, packet + header));
    if (!ok) throw Napi::Error::New(env, "CbcHmacKey.seal: OpenSSL failed on packet " + std::to_string(i));
    batch.lengths[i] = static_cast<uint32_t>(length);
  }
  return env.Undefined();
}

// open(memory, offsets, lengths, count, headerLength, results): checks each packet's HMAC in
// constant time, then decrypts in place and strips the padding; lengths[i] shrinks to the end of
// the plaintext. results[i] = 1 when authentic and well padded, else 0 (the body is then zeroed,
// so nothing unauthenticated reaches the caller). Returns the failure count.
Napi::Value CbcHmacKey::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (open_.cipher == nullptr) throw Napi::Error::New(env, "CbcHmacKey.open: no open key (destroyed or seal-only)");
  if (!info[4].IsNumber()) ThrowType(env, "CbcHmacKey.open: headerLength must be a number");
  size_t header = info[4].As<Napi::Number>().Uint32Value();
  Batch batch = ParseBatch(info, 0, "CbcHmacKey.open", 0);
  size_t resultsLength = 0;
  uint8_t* results = BytesOf(info, 5, "CbcHmacKey.open", "results", &resultsLength);
  if (resultsLength < batch.count) ThrowRange(env, "CbcHmacKey.open: results is shorter than count");
  size_t start = header + macLength_ + ivLength_;
  std::array<uint8_t, kMaxMac> mac{};
  size_t failed = 0;
  for (size_t i = 0; i < batch.count; i++) {
    uint8_t* packet = batch.memory + batch.offsets[i];
    size_t length = batch.lengths[i];
    // Hostile lengths fail like a bad HMAC: at least one block, whole blocks only.
    if (length < start + blockSize_ || (length - start) % blockSize_ != 0) {
      results[i] = 0;
      failed++;
      continue;
    }
    uint8_t* iv = packet + header + macLength_;
    uint8_t* body = packet + start;
    int bodyLength = static_cast<int>(length - start);
    bool ok = macLength_ == 0 || (Mac(&open_, iv, length - header - macLength_, mac.data()) &&
                                  CRYPTO_memcmp(mac.data(), packet + header, macLength_) == 0);
    int outLength = 0;
    ok = ok && EVP_DecryptInit_ex2(open_.cipher, nullptr, nullptr, iv, nullptr) == 1 &&
         EVP_DecryptUpdate(open_.cipher, body, &outLength, body, bodyLength) == 1 && outLength == bodyLength;
    size_t pad = ok ? body[bodyLength - 1] : 0;
    if (ok && (pad == 0 || pad > blockSize_)) ok = false;
    for (size_t k = 1; ok && k <= pad; k++) ok = body[bodyLength - k] == pad;
    if (!ok) {
      OPENSSL_cleanse(body, static_cast<size_t>(bodyLength));
      results[i] = 0;
      failed++;
      continue;
    }
    batch.lengths[i] = static_cast<uint32_t>(length - pad);
    results[i] = 1;
  }
  return Napi::Number::New(env, static_cast<double>(failed));
}

Napi::Value CbcHmacKey::Destroy(const Napi::CallbackInfo& info) {
  Wipe();
  return info.Env().Undefined();
}

}  // namespace shardvpn
