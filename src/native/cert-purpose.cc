// Why: --ns-cert-type (OpenVPN 2.6 still accepts it, deprecated, and old client profiles carry
// `ns-cert-type server`) asks whether the peer certificate is meant for a TLS server or client.
// OpenVPN answers with OpenSSL's X509_check_purpose, whose rules (which extended key usages, key
// usages and Netscape cert types count, and how a malformed extension fails the check) node:crypto
// does not expose; reading them from the same OpenSSL gives the same answer for every certificate.
#include "cert-purpose.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>

namespace shardvpn {

Napi::Value CertPurposeMatches(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsBuffer() || !info[1].IsString())
    throw Napi::TypeError::New(env, "certPurposeMatches(der: Buffer, role: 'server' | 'client')");
  Napi::Buffer<uint8_t> der = info[0].As<Napi::Buffer<uint8_t>>();
  std::string role = info[1].As<Napi::String>().Utf8Value();
  if (role != "server" && role != "client") throw Napi::TypeError::New(env, "certPurposeMatches: role must be 'server' or 'client'");
  const unsigned char* p = der.Data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.Length()));
  bool ok = false;
  if (cert != nullptr) {
    // As OpenVPN tests it: any non-zero answer passes (-1, an extension OpenSSL could not read, too).
    ok = X509_check_purpose(cert, role == "server" ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT, 0) != 0;
    if (!ok) {
      // OpenVPN's fallback: the Netscape cert type bit alone.
      ASN1_BIT_STRING* ns = static_cast<ASN1_BIT_STRING*>(X509_get_ext_d2i(cert, NID_netscape_cert_type, nullptr, nullptr));
      if (ns != nullptr) {
        const int bit = role == "server" ? NS_SSL_SERVER : NS_SSL_CLIENT;
        ok = ns->length > 0 && (ns->data[0] & bit) != 0;
        ASN1_BIT_STRING_free(ns);
      }
    }
    X509_free(cert);
  }
  // A failed parse or check leaves errors that the next unrelated OpenSSL call would report.
  ERR_clear_error();
  return Napi::Boolean::New(env, ok);
}

}  // namespace shardvpn
