// OpenSSL's certificate purpose check, for OpenVPN's --ns-cert-type.
#pragma once
#include <napi.h>

namespace shardvpn {

// certPurposeMatches(der, role): whether the DER certificate may act as a TLS `role` ('server'
// or 'client') as OpenSSL's X509_check_purpose judges it (extended key usage, key usage and
// nsCertType where present), or, failing that, its legacy nsCertType extension names the role
// (OpenVPN's x509_verify_ns_cert_type). A DER that does not parse is false.
Napi::Value CertPurposeMatches(const Napi::CallbackInfo& info);

}  // namespace shardvpn
