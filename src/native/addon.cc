// shardvpn's native addon: what JavaScript cannot do, or not fast enough. No protocol logic.
#include <napi.h>

#include "aead.h"
#include "cbc.h"
#include "heap.h"
#include "tcp.h"
#include "tls-auth-hmac.h"
#include "cert-purpose.h"
#include "socket-routing.h"
#include "tls-context.h"
#include "tls-crypt-check.h"
#include "tls-crypt-codec.h"
#include "tun.h"
#include "udp.h"

namespace shardvpn {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("TunDevice", TunDevice::Define(env));
  exports.Set("UdpSocket", UdpSocket::Define(env));
  exports.Set("AeadKey", AeadKey::Define(env));
  exports.Set("CbcHmacKey", CbcHmacKey::Define(env));
  exports.Set("TlsAuthHmac", TlsAuthHmac::Define(env));
  exports.Set("TlsCryptCheck", TlsCryptCheck::Define(env));
  exports.Set("TlsCryptDirection", TlsCryptDirection::Define(env));
  exports.Set("openTcpListener", Napi::Function::New(env, OpenTcpListener, "openTcpListener"));
  exports.Set("closeDescriptor", Napi::Function::New(env, CloseDescriptor, "closeDescriptor"));
  exports.Set("dupDescriptor", Napi::Function::New(env, DupDescriptor, "dupDescriptor"));
  exports.Set("claimDescriptor", Napi::Function::New(env, ClaimDescriptor, "claimDescriptor"));
  exports.Set("socketPort", Napi::Function::New(env, SocketPort, "socketPort"));
  exports.Set("trimHeap", Napi::Function::New(env, TrimHeap, "trimHeap"));
  exports.Set("shrinkJsHeap", Napi::Function::New(env, ShrinkJsHeap, "shrinkJsHeap"));
  exports.Set("dhParameterBits", Napi::Function::New(env, DhParameterBits, "dhParameterBits"));
  exports.Set("certPurposeMatches", Napi::Function::New(env, CertPurposeMatches, "certPurposeMatches"));
  exports.Set("setSocketRouting", Napi::Function::New(env, SetSocketRouting, "setSocketRouting"));
  exports.Set("disableTlsResumption", Napi::Function::New(env, DisableTlsResumption, "disableTlsResumption"));
  exports.Set("ADDRESS_SIZE", Napi::Number::New(env, static_cast<double>(kAddressSize)));
  return exports;
}

}  // namespace shardvpn

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return shardvpn::Init(env, exports); }

NODE_API_MODULE(shardvpn, InitAddon)
