#include "aead.h"

#include <openssl/crypto.h>

#include <string>

#include "batch.h"
#include "errors.h"

namespace shardvpn {

namespace {
constexpr size_t kNonceLength = 12;
constexpr size_t kTagLength = 16;

}  // namespace

bool AeadKey::FitsLayout(size_t length, const Layout& layout) {
  return length >= layout.payloadOffset && length >= layout.aadOffset + layout.aadLength &&
         length >= layout.nonceOffset + layout.nonceLength && length >= layout.tagOffset + kTagLength;
}

namespace {

const EVP_CIPHER* CipherByName(const std::string& name) {
  if (name == "AES-128-GCM") return EVP_aes_128_gcm();
  if (name == "AES-256-GCM") return EVP_aes_256_gcm();
  if (name == "CHACHA20-POLY1305") return EVP_chacha20_poly1305();
  return nullptr;
}
}  // namespace

Napi::Function AeadKey::Define(Napi::Env env) {
  return DefineClass(env, "AeadKey",
                     {
                         InstanceMethod("seal", &AeadKey::Seal),
                         InstanceMethod("open", &AeadKey::Open),
                         InstanceMethod("destroy", &AeadKey::Destroy),
                         InstanceAccessor("cipher", &AeadKey::Cipher, nullptr),
                         InstanceAccessor("implementation", &AeadKey::Implementation, nullptr),
                     });
}

// new AeadKey(cipher, sealKey, sealImplicitIv, openKey, openImplicitIv[, preferEvp]). A direction
// whose key is empty is not set up (seal-only or open-only objects). The nonce of a packet is its
// nonce field (e.g. OpenVPN's 4-byte packet-id) followed by the implicit IV (the rest of the 12
// bytes). preferEvp keeps ChaCha20-Poly1305 on EVP where OpenSSL's cores are available (tests
// and the bench compare the two).
AeadKey::AeadKey(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AeadKey>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowType(env, "AeadKey(cipher, ...): cipher must be a string");
  cipherName_ = info[0].As<Napi::String>().Utf8Value();
  cipher_ = CipherByName(cipherName_);
  if (cipher_ == nullptr) {
    ThrowRange(env, "AeadKey: unsupported cipher '" + cipherName_ +
                        "' (AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305)");
  }
  keyLength_ = static_cast<size_t>(EVP_CIPHER_key_length(cipher_));
  preferEvp_ = info.Length() > 5 && info[5].IsBoolean() && info[5].As<Napi::Boolean>().Value();
  try {
    InitDirection(env, &seal_, info[1], info[2], true);
    InitDirection(env, &open_, info[3], info[4], false);
  } catch (...) {
    Wipe();
    throw;
  }
}

AeadKey::~AeadKey() { Wipe(); }

void AeadKey::InitDirection(Napi::Env env, Direction* direction, const Napi::Value& key, const Napi::Value& iv,
                            bool encrypt) {
  const char* which = encrypt ? "seal" : "open";
  if (!key.IsTypedArray() || key.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(env, std::string("AeadKey: ") + which + " key must be a Uint8Array");
  }
  auto keyBytes = key.As<Napi::Uint8Array>();
  if (keyBytes.ByteLength() == 0) return;
  if (keyBytes.ByteLength() != keyLength_) {
    ThrowRange(env, std::string("AeadKey: ") + which + " key for " + cipherName_ + " must be " +
                        std::to_string(keyLength_) + " bytes, got " + std::to_string(keyBytes.ByteLength()));
  }
  if (!iv.IsTypedArray() || iv.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      iv.As<Napi::Uint8Array>().ByteLength() > kNonceLength) {
    ThrowType(env, std::string("AeadKey: ") + which + " implicit IV must be a Uint8Array of at most 12 bytes");
  }
  auto ivBytes = iv.As<Napi::Uint8Array>();
  direction->implicitIvLength = ivBytes.ByteLength();
  memcpy(direction->implicitIv.data(), ivBytes.Data(), ivBytes.ByteLength());
  direction->ctx = EVP_CIPHER_CTX_new();
  if (direction->ctx == nullptr) throw Napi::Error::New(env, "AeadKey: EVP_CIPHER_CTX_new failed");
  int ok = encrypt ? EVP_EncryptInit_ex(direction->ctx, cipher_, nullptr, keyBytes.Data(), nullptr)
                   : EVP_DecryptInit_ex(direction->ctx, cipher_, nullptr, keyBytes.Data(), nullptr);
  if (ok != 1) throw Napi::Error::New(env, std::string("AeadKey: OpenSSL rejected the ") + which + " key");
  if (cipher_ == EVP_chacha20_poly1305() && !preferEvp_ && ChaChaPolyKey::Available()) {
    direction->cores.SetKey(keyBytes.Data());
    direction->useCores = true;
  }
}

void AeadKey::Wipe() {
  // EVP_CIPHER_CTX_free cleanses the expanded key schedule.
  for (Direction* direction : {&seal_, &open_}) {
    if (direction->ctx != nullptr) EVP_CIPHER_CTX_free(direction->ctx);
    direction->ctx = nullptr;
    direction->cores.Wipe();
    direction->useCores = false;
    OPENSSL_cleanse(direction->implicitIv.data(), direction->implicitIv.size());
    direction->implicitIvLength = 0;
  }
}

// Layout as a Uint32Array [aadOffset, aadLength, nonceOffset, nonceLength, tagOffset,
// payloadOffset], all relative to each packet's start; the payload runs to the packet's end.
AeadKey::Layout AeadKey::ParseLayout(const Napi::CallbackInfo& info, size_t index, const char* call) const {
  Napi::Env env = info.Env();
  Napi::Value value = info[index];
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
      value.As<Napi::Uint32Array>().ElementLength() != 6) {
    ThrowType(env, std::string(call) + ": layout must be a Uint32Array of 6 words");
  }
  auto words = value.As<Napi::Uint32Array>();
  Layout layout{words[0], words[1], words[2], words[3], words[4], words[5]};
  if (layout.nonceLength > kNonceLength) ThrowRange(env, std::string(call) + ": nonce field longer than 12 bytes");
  if (layout.aadLength > 4096) ThrowRange(env, std::string(call) + ": AAD longer than 4096 bytes");
  return layout;
}

void AeadKey::BuildNonce(const Direction& direction, const uint8_t* packet, const Layout& layout,
                         uint8_t* nonce) const {
  memcpy(nonce, packet + layout.nonceOffset, layout.nonceLength);
  memcpy(nonce + layout.nonceLength, direction.implicitIv.data(), kNonceLength - layout.nonceLength);
}

// seal(memory, offsets, lengths, count, layout): encrypts each packet's payload in place and
// writes its 16-byte tag at tagOffset.
Napi::Value AeadKey::Seal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (seal_.ctx == nullptr) throw Napi::Error::New(env, "AeadKey.seal: no seal key (destroyed or open-only)");
  Batch batch = ParseBatch(info, 0, "AeadKey.seal", 0);
  Layout layout = ParseLayout(info, 4, "AeadKey.seal");
  if (layout.nonceLength + seal_.implicitIvLength != kNonceLength) {
    ThrowRange(env, "AeadKey.seal: nonce field plus implicit IV must make exactly 12 bytes");
  }
  // Check the whole batch first, so a bad packet leaves every packet untouched.
  for (size_t i = 0; i < batch.count; i++) {
    if (!FitsLayout(batch.lengths[i], layout)) {
      ThrowRange(env, "AeadKey.seal: packet " + std::to_string(i) + " (" + std::to_string(batch.lengths[i]) +
                          " bytes) is shorter than its layout");
    }
  }
  uint8_t nonce[kNonceLength];
  for (size_t i = 0; i < batch.count; i++) {
    uint8_t* packet = batch.memory + batch.offsets[i];
    size_t length = batch.lengths[i];
    BuildNonce(seal_, packet, layout, nonce);
    uint8_t* payload = packet + layout.payloadOffset;
    int payloadLength = static_cast<int>(length - layout.payloadOffset);
    bool ok = true;
    if (seal_.useCores) {
      seal_.cores.Seal(payload, static_cast<size_t>(payloadLength), packet + layout.aadOffset, layout.aadLength, nonce,
                       packet + layout.tagOffset);
    } else {
      ok = SealWithEvp(packet, layout, nonce, payload, payloadLength);
    }
    if (!ok) throw Napi::Error::New(env, "AeadKey.seal: OpenSSL failed on packet " + std::to_string(i));
  }
  return env.Undefined();
}

// open(memory, offsets, lengths, count, layout, results): checks each packet's tag and decrypts
// its payload in place. results[i] = 1 when packet i is authentic, 0 when not (its payload is
// then zeroed, so unauthenticated plaintext never reaches the caller). Returns the failure count.
Napi::Value AeadKey::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (open_.ctx == nullptr) throw Napi::Error::New(env, "AeadKey.open: no open key (destroyed or seal-only)");
  Batch batch = ParseBatch(info, 0, "AeadKey.open", 0);
  Layout layout = ParseLayout(info, 4, "AeadKey.open");
  size_t resultsLength = 0;
  uint8_t* results = BytesOf(info, 5, "AeadKey.open", "results", &resultsLength);
  if (resultsLength < batch.count) ThrowRange(env, "AeadKey.open: results is shorter than count");
  if (layout.nonceLength + open_.implicitIvLength != kNonceLength) {
    ThrowRange(env, "AeadKey.open: nonce field plus implicit IV must make exactly 12 bytes");
  }
  uint8_t nonce[kNonceLength];
  size_t failed = 0;
  for (size_t i = 0; i < batch.count; i++) {
    uint8_t* packet = batch.memory + batch.offsets[i];
    size_t length = batch.lengths[i];
    // A short packet is hostile input, not a caller error: it fails like a bad tag.
    if (!FitsLayout(length, layout)) {
      results[i] = 0;
      failed++;
      continue;
    }
    BuildNonce(open_, packet, layout, nonce);
    uint8_t* payload = packet + layout.payloadOffset;
    int payloadLength = static_cast<int>(length - layout.payloadOffset);
    bool ok = open_.useCores
                  ? open_.cores.Open(payload, static_cast<size_t>(payloadLength), packet + layout.aadOffset,
                                     layout.aadLength, nonce, packet + layout.tagOffset)
                  : OpenWithEvp(packet, layout, nonce, payload, payloadLength);
    if (!ok) {
      OPENSSL_cleanse(payload, static_cast<size_t>(payloadLength));
      failed++;
    }
    results[i] = ok ? 1 : 0;
  }
  return Napi::Number::New(env, static_cast<double>(failed));
}

bool AeadKey::SealWithEvp(uint8_t* packet, const Layout& layout, const uint8_t* nonce, uint8_t* payload,
                          int payloadLength) {
  int outLength = 0;
  return EVP_EncryptInit_ex(seal_.ctx, nullptr, nullptr, nullptr, nonce) == 1 &&
         (layout.aadLength == 0 || EVP_EncryptUpdate(seal_.ctx, nullptr, &outLength, packet + layout.aadOffset,
                                                     static_cast<int>(layout.aadLength)) == 1) &&
         EVP_EncryptUpdate(seal_.ctx, payload, &outLength, payload, payloadLength) == 1 &&
         EVP_EncryptFinal_ex(seal_.ctx, payload + outLength, &outLength) == 1 &&
         EVP_CIPHER_CTX_ctrl(seal_.ctx, EVP_CTRL_AEAD_GET_TAG, kTagLength, packet + layout.tagOffset) == 1;
}

bool AeadKey::OpenWithEvp(const uint8_t* packet, const Layout& layout, const uint8_t* nonce, uint8_t* payload,
                          int payloadLength) {
  int outLength = 0;
  // EVP takes the expected tag through a non-const pointer; it only reads it.
  uint8_t* tag = const_cast<uint8_t*>(packet + layout.tagOffset);
  return EVP_DecryptInit_ex(open_.ctx, nullptr, nullptr, nullptr, nonce) == 1 &&
         (layout.aadLength == 0 || EVP_DecryptUpdate(open_.ctx, nullptr, &outLength, packet + layout.aadOffset,
                                                     static_cast<int>(layout.aadLength)) == 1) &&
         EVP_DecryptUpdate(open_.ctx, payload, &outLength, payload, payloadLength) == 1 &&
         EVP_CIPHER_CTX_ctrl(open_.ctx, EVP_CTRL_AEAD_SET_TAG, kTagLength, tag) == 1 &&
         EVP_DecryptFinal_ex(open_.ctx, payload + outLength, &outLength) == 1;
}

Napi::Value AeadKey::Destroy(const Napi::CallbackInfo& info) {
  Wipe();
  return info.Env().Undefined();
}

Napi::Value AeadKey::Cipher(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), cipherName_); }

// 'openssl-cores' where ChaCha20-Poly1305 runs on OpenSSL's cores, else 'evp'.
Napi::Value AeadKey::Implementation(const Napi::CallbackInfo& info) {
  bool cores = seal_.useCores || open_.useCores;
  return Napi::String::New(info.Env(), cores ? "openssl-cores" : "evp");
}

}  // namespace shardvpn
