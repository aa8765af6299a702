// TCP listening sockets with SO_REUSEPORT (Node 20's net cannot set it), so each shard can
// serve its own TCP connections: the main thread opens one listener per shard in one
// SO_REUSEPORT group and each worker hands its descriptor to net.Server.listen({ fd }).
#pragma once
#include <napi.h>

namespace shardvpn {

Napi::Value OpenTcpListener(const Napi::CallbackInfo& info);
Napi::Value CloseDescriptor(const Napi::CallbackInfo& info);
Napi::Value DupDescriptor(const Napi::CallbackInfo& info);
Napi::Value ClaimDescriptor(const Napi::CallbackInfo& info);
Napi::Value SocketPort(const Napi::CallbackInfo& info);

}  // namespace shardvpn
