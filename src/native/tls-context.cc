// Why: OpenVPN never resumes a TLS session (every negotiation is a full handshake, its key
// derivation binds to that handshake), yet a node:tls server sends two TLS 1.3 NewSessionTickets
// after every handshake: each one a copy of the session with the peer's certificate chain, a
// resumption secret derived, a record sealed, one more control packet and its ACK on the wire,
// and the receiving client makes a session object of each. node:tls has no option for the ticket
// count (SSL_OP_NO_TICKET only turns TLS 1.3's stateless tickets into stateful ones) and keeps
// a session cache it then never uses for us. A SecureContext exposes its SSL_CTX as a V8
// External (`context._external`). Node-API's own externals wrap their pointer (for type tags),
// so this one is read through V8's API (like heap.cc, the addon is built for the Node.js
// running it); a napi_value is a v8::Local's handle.
#include "tls-context.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <v8.h>

#include <cstring>
#include <string>

namespace shardvpn {

Napi::Value DisableTlsResumption(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsExternal()) return Napi::Boolean::New(env, false);
  napi_value handle = info[0];
  v8::Local<v8::Value> value;
  static_assert(sizeof(value) == sizeof(handle), "a napi_value is a v8::Local");
  std::memcpy(static_cast<void*>(&value), &handle, sizeof(handle));
  if (!value->IsExternal()) return Napi::Boolean::New(env, false);
  SSL_CTX* ctx = static_cast<SSL_CTX*>(value.As<v8::External>()->Value());
  if (ctx == nullptr) return Napi::Boolean::New(env, false);
  // Sessions made from now on take these; a context is tuned before its first session.
  if (SSL_CTX_set_num_tickets(ctx, 0) != 1) return Napi::Boolean::New(env, false);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return Napi::Boolean::New(env, true);
}

Napi::Value DhParameterBits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "dhParameterBits(pem: string)");
  std::string pem = info[0].As<Napi::String>().Utf8Value();
  int bits = 0;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio != nullptr) {
    EVP_PKEY* params = PEM_read_bio_Parameters(bio, nullptr);
    if (params != nullptr) {
      if (EVP_PKEY_is_a(params, "DH") || EVP_PKEY_is_a(params, "DHX")) bits = EVP_PKEY_get_bits(params);
      EVP_PKEY_free(params);
    }
    BIO_free(bio);
  }
  // Errors left by a failed read would be reported by the next unrelated OpenSSL call.
  ERR_clear_error();
  return Napi::Number::New(env, bits);
}

}  // namespace shardvpn
