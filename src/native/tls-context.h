// Settings node:tls does not expose, applied to the OpenSSL context of a node:tls SecureContext.
#pragma once
#include <napi.h>

namespace shardvpn {

// disableTlsResumption(ctx): ctx is a SecureContext's `context._external` (the SSL_CTX node
// made). No TLS 1.3 NewSessionTicket after a handshake and no session cache. Returns false
// where the value is not such a context (the settings stay as node made them).
Napi::Value DisableTlsResumption(const Napi::CallbackInfo& info);

// dhParameterBits(pem): the size of the PEM DH parameters in `pem`, 0 when it holds none.
// node:tls drops DH parameters it cannot read without a word; this lets a config say so.
Napi::Value DhParameterBits(const Napi::CallbackInfo& info);

}  // namespace shardvpn
