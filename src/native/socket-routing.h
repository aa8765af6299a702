// OpenVPN's --mark and --bind-dev on a link socket.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

namespace shardvpn {

// SO_MARK = mark when mark > 0 (the routing policy's fwmark; needs CAP_NET_ADMIN), then
// SO_BINDTODEVICE = device when device is not '' (the socket sends and receives only through
// that interface or VRF). Best effort, as OpenVPN (socket.c only warns): returns what failed, ''
// when both took. Call before bind: a VRF's addresses can only be bound once the device is set.
std::string ApplySocketRouting(int fd, int64_t mark, const std::string& device);

// setSocketRouting(fd, mark, device) -> '' or what failed (ApplySocketRouting).
Napi::Value SetSocketRouting(const Napi::CallbackInfo& info);

}  // namespace shardvpn
