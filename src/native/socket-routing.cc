// Why: --mark (a firewall mark for policy routing) and --bind-dev (a device or VRF to send and
// receive through) are socket options Node's sockets do not expose; the link sockets are the
// addon's own, so it sets them on their descriptors before they are bound.
#include "socket-routing.h"

#include <net/if.h>
#include <string.h>
#include <sys/socket.h>

#include <cerrno>

#include "errors.h"

namespace shardvpn {

std::string ApplySocketRouting(int fd, int64_t mark, const std::string& device) {
  std::string problems;
  if (mark > 0) {
    uint32_t value = static_cast<uint32_t>(mark);
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &value, sizeof(value)) < 0) {
      int err = errno;
      problems += std::string("setsockopt SO_MARK ") + std::to_string(mark) + ": " + strerror(err);
    }
  }
  if (!device.empty()) {
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device.c_str(), static_cast<socklen_t>(device.size() + 1)) < 0) {
      int err = errno;
      if (!problems.empty()) problems += "; ";
      problems += "setsockopt SO_BINDTODEVICE " + device + ": " + strerror(err);
    }
  }
  return problems;
}

Napi::Value SetSocketRouting(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsString())
    ThrowType(env, "setSocketRouting(fd, mark, device): bad arguments");
  int fd = info[0].As<Napi::Number>().Int32Value();
  int64_t mark = info[1].As<Napi::Number>().Int64Value();
  std::string device = info[2].As<Napi::String>().Utf8Value();
  if (mark < 0 || mark > UINT32_MAX) ThrowRange(env, "setSocketRouting: mark outside 0..4294967295");
  if (device.size() >= IFNAMSIZ) ThrowRange(env, "setSocketRouting: device name '" + device + "' longer than " + std::to_string(IFNAMSIZ - 1));
  return Napi::String::New(env, ApplySocketRouting(fd, mark, device));
}

}  // namespace shardvpn
