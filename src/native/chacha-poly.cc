#include "chacha-poly.h"

#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <initializer_list>
#include <vector>

namespace shardvpn {

namespace {

// Signatures of OpenSSL's internal cores (crypto/chacha.h, crypto/poly1305.h): the key and the
// counter block are little-endian 32-bit words; counter[0] is the block counter, counter[1..3]
// the nonce.
using ChaChaCtr32 = void (*)(unsigned char* out, const unsigned char* in, size_t length, const unsigned int key[8],
                             const unsigned int counter[4]);
using PolyCtxSize = size_t (*)();
using PolyInit = void (*)(void* ctx, const unsigned char key[32]);
using PolyUpdate = void (*)(void* ctx, const unsigned char* in, size_t length);
using PolyFinal = void (*)(void* ctx, unsigned char mac[16]);

struct Cores {
  ChaChaCtr32 chacha = nullptr;
  PolyInit polyInit = nullptr;
  PolyUpdate polyUpdate = nullptr;
  PolyFinal polyFinal = nullptr;
  bool ready = false;
};

// Room for OpenSSL's POLY1305 state (about 250 bytes on x86-64), aligned as its assembly wants.
constexpr size_t kPolyStateSize = 512;
// Keystream made ahead into scratch: block 0 (the Poly1305 key) and the payload's first bytes in
// one ChaCha20 call, so the vector code runs once instead of a lone block first. Longer payloads
// are encrypted in place from there on.
constexpr size_t kScratchSize = 2048;
constexpr size_t kBlock = 64;

uint32_t LoadLittleEndian32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

void StoreLittleEndian64(uint8_t* p, uint64_t value) {
  for (int i = 0; i < 8; i++) p[i] = static_cast<uint8_t>(value >> (8 * i));
}

// Eight bytes at a time: the addon is built with -O2, where GCC leaves a byte loop unvectorized
// (a 1400-byte packet's XOR would cost about as much as its ChaCha20).
void XorInto(uint8_t* __restrict out, const uint8_t* __restrict keystream, size_t length) {
  size_t i = 0;
  for (; i + 8 <= length; i += 8) {
    uint64_t a;
    uint64_t b;
    memcpy(&a, out + i, 8);
    memcpy(&b, keystream + i, 8);
    a ^= b;
    memcpy(out + i, &a, 8);
  }
  for (; i < length; i++) out[i] ^= keystream[i];
}

// RFC 8439 section 2.8.2's example.
constexpr uint8_t kVectorKey[32] = {0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a,
                                    0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95,
                                    0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f};
constexpr uint8_t kVectorNonce[12] = {0x07, 0x00, 0x00, 0x00, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47};
constexpr uint8_t kVectorAad[12] = {0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7};
constexpr char kVectorPlaintext[] =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would "
    "be it.";
constexpr uint8_t kVectorTag[16] = {0x1a, 0xe1, 0x0b, 0x59, 0x4f, 0x09, 0xe2, 0x6a,
                                    0x7e, 0x90, 0x2e, 0xcb, 0xd0, 0x60, 0x06, 0x91};

// The composed AEAD against RFC 8439's tag and EVP's ciphertext, at sizes around the scratch's
// edge and the in-place tail: a core of another ABI under the same name fails here, not on the
// wire.
bool SelfTest() {
  ChaChaPolyKey key;
  key.SetKey(kVectorKey);
  uint8_t text[sizeof(kVectorPlaintext) - 1];
  memcpy(text, kVectorPlaintext, sizeof(text));
  uint8_t tag[16];
  key.Seal(text, sizeof(text), kVectorAad, sizeof(kVectorAad), kVectorNonce, tag);
  bool ok = memcmp(tag, kVectorTag, sizeof(tag)) == 0 &&
            key.Open(text, sizeof(text), kVectorAad, sizeof(kVectorAad), kVectorNonce, tag) &&
            memcmp(text, kVectorPlaintext, sizeof(text)) == 0;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ok = ok && ctx != nullptr;
  std::vector<uint8_t> oursBytes(5000);
  std::vector<uint8_t> theirsBytes(5000);
  uint8_t* ours = oursBytes.data();
  uint8_t* theirs = theirsBytes.data();
  for (size_t length : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, kScratchSize - kBlock - 1,
                        kScratchSize - kBlock, kScratchSize - kBlock + 1, size_t{4999}}) {
    if (!ok) break;
    for (size_t i = 0; i < length; i++) ours[i] = theirs[i] = static_cast<uint8_t>(i * 7 + 3);
    uint8_t evpTag[16];
    int out = 0;
    ok = EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, kVectorKey, kVectorNonce) == 1 &&
         EVP_EncryptUpdate(ctx, nullptr, &out, kVectorAad, sizeof(kVectorAad)) == 1 &&
         (length == 0 || EVP_EncryptUpdate(ctx, theirs, &out, theirs, static_cast<int>(length)) == 1) &&
         EVP_EncryptFinal_ex(ctx, theirs + length, &out) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, evpTag) == 1;
    key.Seal(ours, length, kVectorAad, sizeof(kVectorAad), kVectorNonce, tag);
    ok = ok && memcmp(tag, evpTag, 16) == 0 && memcmp(ours, theirs, length) == 0;
  }
  EVP_CIPHER_CTX_free(ctx);
  key.Wipe();
  return ok;
}

const Cores& ResolvedCores() {
  // Resolved on first use (C++ makes this thread-safe): the lookups, then the self-test, which
  // itself runs on the cores found.
  static const Cores cores = [] {
    Cores found;
    found.chacha = reinterpret_cast<ChaChaCtr32>(dlsym(RTLD_DEFAULT, "ChaCha20_ctr32"));
    auto ctxSize = reinterpret_cast<PolyCtxSize>(dlsym(RTLD_DEFAULT, "Poly1305_ctx_size"));
    found.polyInit = reinterpret_cast<PolyInit>(dlsym(RTLD_DEFAULT, "Poly1305_Init"));
    found.polyUpdate = reinterpret_cast<PolyUpdate>(dlsym(RTLD_DEFAULT, "Poly1305_Update"));
    found.polyFinal = reinterpret_cast<PolyFinal>(dlsym(RTLD_DEFAULT, "Poly1305_Final"));
    found.ready = found.chacha != nullptr && ctxSize != nullptr && found.polyInit != nullptr &&
                  found.polyUpdate != nullptr && found.polyFinal != nullptr && ctxSize() <= kPolyStateSize;
    return found;
  }();
  return cores;
}

// The Poly1305 tag over aad | pad | ciphertext | pad | le64(aad length) | le64(ciphertext length).
void Authenticate(const Cores& cores, const uint8_t polyKey[32], const uint8_t* aad, size_t aadLength,
                  const uint8_t* ciphertext, size_t length, uint8_t tag[16]) {
  alignas(64) uint8_t state[kPolyStateSize];
  static constexpr uint8_t kZeros[16] = {};
  cores.polyInit(state, polyKey);
  if (aadLength > 0) cores.polyUpdate(state, aad, aadLength);
  if (aadLength % 16 != 0) cores.polyUpdate(state, kZeros, 16 - aadLength % 16);
  if (length > 0) cores.polyUpdate(state, ciphertext, length);
  if (length % 16 != 0) cores.polyUpdate(state, kZeros, 16 - length % 16);
  uint8_t lengths[16];
  StoreLittleEndian64(lengths, aadLength);
  StoreLittleEndian64(lengths + 8, length);
  cores.polyUpdate(state, lengths, sizeof(lengths));
  // Poly1305_Final cleanses the state.
  cores.polyFinal(state, tag);
}

}  // namespace

bool ChaChaPolyKey::Available() {
  static const bool available = ResolvedCores().ready && SelfTest();
  return available;
}

void ChaChaPolyKey::SetKey(const uint8_t key[32]) {
  for (int i = 0; i < 8; i++) key_[i] = LoadLittleEndian32(key + 4 * i);
}

void ChaChaPolyKey::Wipe() { OPENSSL_cleanse(key_, sizeof(key_)); }

namespace {

struct Keystream {
  alignas(64) uint8_t bytes[kScratchSize];
  size_t covered = 0;  // payload bytes whose keystream sits in bytes[kBlock, kBlock + covered)
  // Block 0 holds the packet's one-time Poly1305 key. The rest is keystream, which with the
  // ciphertext on the wire gives no more than the plaintext the packet buffer holds anyway.
  ~Keystream() { OPENSSL_cleanse(bytes, kBlock); }
};

void Counter(const uint8_t nonce[12], uint32_t block, unsigned int counter[4]) {
  counter[0] = block;
  counter[1] = LoadLittleEndian32(nonce);
  counter[2] = LoadLittleEndian32(nonce + 4);
  counter[3] = LoadLittleEndian32(nonce + 8);
}

// Block 0 and the keystream of the payload's first bytes, in one call.
void FirstKeystream(const Cores& cores, const uint32_t key[8], const uint8_t nonce[12], size_t length,
                    Keystream* keystream) {
  size_t covered = length < kScratchSize - kBlock ? length : kScratchSize - kBlock;
  size_t bytes = (kBlock + covered + kBlock - 1) / kBlock * kBlock;
  unsigned int counter[4];
  Counter(nonce, 0, counter);
  memset(keystream->bytes, 0, bytes);
  cores.chacha(keystream->bytes, keystream->bytes, bytes, key, counter);
  keystream->covered = covered;
}

void Encrypt(const Cores& cores, const uint32_t key[8], const uint8_t nonce[12], const Keystream& keystream,
             uint8_t* payload, size_t length) {
  XorInto(payload, keystream.bytes + kBlock, keystream.covered);
  if (length > keystream.covered) {
    // covered is a whole number of blocks here (kScratchSize - kBlock).
    unsigned int counter[4];
    Counter(nonce, static_cast<uint32_t>(1 + keystream.covered / kBlock), counter);
    cores.chacha(payload + keystream.covered, payload + keystream.covered, length - keystream.covered, key, counter);
  }
}

}  // namespace

void ChaChaPolyKey::Seal(uint8_t* payload, size_t length, const uint8_t* aad, size_t aadLength,
                         const uint8_t nonce[12], uint8_t tag[16]) const {
  const Cores& cores = ResolvedCores();
  Keystream keystream;
  FirstKeystream(cores, key_, nonce, length, &keystream);
  Encrypt(cores, key_, nonce, keystream, payload, length);
  Authenticate(cores, keystream.bytes, aad, aadLength, payload, length, tag);
}

bool ChaChaPolyKey::Open(uint8_t* payload, size_t length, const uint8_t* aad, size_t aadLength,
                         const uint8_t nonce[12], const uint8_t tag[16]) const {
  const Cores& cores = ResolvedCores();
  Keystream keystream;
  FirstKeystream(cores, key_, nonce, length, &keystream);
  uint8_t expected[16];
  Authenticate(cores, keystream.bytes, aad, aadLength, payload, length, expected);
  bool authentic = CRYPTO_memcmp(expected, tag, sizeof(expected)) == 0;
  OPENSSL_cleanse(expected, sizeof(expected));
  if (!authentic) return false;
  // Encryption and decryption are the same XOR.
  Encrypt(cores, key_, nonce, keystream, payload, length);
  return true;
}

}  // namespace shardvpn
