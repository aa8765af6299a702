// OpenVPN's --mark and --bind-dev on a link socket.
#pragma once
#include <napi.h>

namespace shardvpn {

// setSocketRouting(fd, mark, device): SO_MARK = mark when mark > 0 (the routing policy's fwmark;
// needs CAP_NET_ADMIN), SO_BINDTODEVICE = device when device is not '' (the socket sends and
// receives only through that interface, or VRF). Throws with errno's name on failure.
Napi::Value SetSocketRouting(const Napi::CallbackInfo& info);

}  // namespace shardvpn
