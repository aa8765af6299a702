#include "tun.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "batch.h"

namespace shardvpn {

namespace {

// A kernel interface name: 1..15 bytes, no '/', no whitespace, not "." or "..".
bool ValidInterfaceName(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == "..") return false;
  for (char c : name) {
    if (c == '/' || c == ':' || c <= ' ' || c == 0x7f) return false;
  }
  return true;
}

// Runs one SIOC* interface ioctl on a throwaway control socket.
void InterfaceIoctl(Napi::Env env, const char* call, unsigned long request, struct ifreq* ifr) {
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) ThrowErrno(env, std::string(call) + " socket", errno);
  int rc = ioctl(sock, request, ifr);
  int err = errno;
  close(sock);
  if (rc < 0) ThrowErrno(env, call, err);
}

}  // namespace

Napi::Function TunDevice::Define(Napi::Env env) {
  auto methods = DescriptorMethods();
  methods.push_back(InstanceAccessor("name", &TunDevice::Name, nullptr));
  methods.push_back(InstanceMethod("setMtu", &TunDevice::SetMtu));
  methods.push_back(InstanceMethod("setUp", &TunDevice::SetUp));
  methods.push_back(InstanceMethod("read", &TunDevice::Read));
  methods.push_back(InstanceMethod("write", &TunDevice::Write));
  methods.push_back(InstanceAccessor("writeDrops", &TunDevice::WriteDrops, nullptr));
  return DefineClass(env, kClassName, methods);
}

// new TunDevice(name: string, multiQueue: boolean, fd?: number). An empty name lets the kernel
// choose (tunN). With fd >= 0 the object wraps a device another thread of this process opened
// (a shard writing to the main thread's TUN device) and does not close it.
TunDevice::TunDevice(const Napi::CallbackInfo& info) : DescriptorWrap<TunDevice>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowType(env, "TunDevice(name, multiQueue): name must be a string");
  std::string requested = info[0].As<Napi::String>().Utf8Value();
  int existing = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
  if (existing >= 0) {
    if (fcntl(existing, F_GETFD) < 0) ThrowErrno(env, "TunDevice fd", errno);
    name_ = requested;
    Adopt(existing, false);
    return;
  }
  bool multiQueue = info[1].ToBoolean().Value();
  if (!requested.empty() && !ValidInterfaceName(requested)) {
    ThrowRange(env, "TunDevice: invalid interface name '" + requested +
                        "' (1-15 characters, no '/', ':' or whitespace)");
  }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) ThrowErrno(env, "open /dev/net/tun", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (multiQueue ? IFF_MULTI_QUEUE : 0);
  if (!requested.empty()) strncpy(ifr.ifr_name, requested.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, "ioctl TUNSETIFF " + (requested.empty() ? std::string("(any)") : requested), err);
  }
  name_ = ifr.ifr_name;
  Adopt(fd, true);
}

Napi::Value TunDevice::Name(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), name_);
}

Napi::Value TunDevice::WriteDrops(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(writeDrops_));
}

Napi::Value TunDevice::SetMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, "setMtu");
  if (!info[0].IsNumber()) ThrowType(env, "TunDevice.setMtu(mtu): mtu must be a number");
  int64_t mtu = info[0].As<Napi::Number>().Int64Value();
  if (mtu < 68 || mtu > 65535) ThrowRange(env, "TunDevice.setMtu: mtu " + std::to_string(mtu) + " outside 68..65535");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  strncpy(ifr.ifr_name, name_.c_str(), IFNAMSIZ - 1);
  ifr.ifr_mtu = static_cast<int>(mtu);
  InterfaceIoctl(env, "ioctl SIOCSIFMTU", SIOCSIFMTU, &ifr);
  return env.Undefined();
}

Napi::Value TunDevice::SetUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, "setUp");
  bool up = info.Length() == 0 || info[0].ToBoolean().Value();
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  strncpy(ifr.ifr_name, name_.c_str(), IFNAMSIZ - 1);
  InterfaceIoctl(env, "ioctl SIOCGIFFLAGS", SIOCGIFFLAGS, &ifr);
  if (up) {
    ifr.ifr_flags |= IFF_UP;
  } else {
    ifr.ifr_flags &= ~IFF_UP;
  }
  InterfaceIoctl(env, "ioctl SIOCSIFFLAGS", SIOCSIFFLAGS, &ifr);
  return env.Undefined();
}

// read(memory, offsets, lengths, count, capacity): reads up to `count` packets, packet i into
// memory[offsets[i] .. offsets[i] + capacity), its size into lengths[i]. Returns how many were
// read; 0 when none is waiting. A packet larger than `capacity` is truncated by the kernel, so
// callers size capacity to the MTU.
Napi::Value TunDevice::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireOpen(env, "read");
  if (!info[4].IsNumber()) ThrowType(env, "TunDevice.read: capacity must be a number");
  int64_t capacity = info[4].As<Napi::Number>().Int64Value();
  if (capacity <= 0 || capacity > 65535) ThrowRange(env, "TunDevice.read: capacity must be 1..65535");
  Batch batch = ParseBatch(info, 0, "TunDevice.read", static_cast<size_t>(capacity));
  size_t n = 0;
  while (n < batch.count) {
    ssize_t got = ::read(fd, batch.memory + batch.offsets[n], static_cast<size_t>(capacity));
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (n > 0) break;  // report the error on the next call, after the packets we have
      ThrowErrno(env, "TunDevice.read", errno);
    }
    batch.lengths[n++] = static_cast<uint32_t>(got);
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// write(memory, offsets, lengths, count): writes packets in order. Returns how many were consumed
// (written, or refused by the kernel as malformed and counted in writeDrops); fewer than `count`
// means the device queue is full (EAGAIN): poll for writable or drop.
Napi::Value TunDevice::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireOpen(env, "write");
  Batch batch = ParseBatch(info, 0, "TunDevice.write", 0);
  for (size_t i = 0; i < batch.count; i++) {
    if (batch.lengths[i] > 65535) {
      ThrowRange(env, "TunDevice.write: packet " + std::to_string(i) + " is " +
                          std::to_string(batch.lengths[i]) + " bytes, over the 65535-byte IP limit");
    }
  }
  size_t n = 0;
  while (n < batch.count) {
    ssize_t put = ::write(fd, batch.memory + batch.offsets[n], batch.lengths[n]);
    if (put < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINVAL) {
        // The kernel refused this packet (not a valid IP packet): drop it, keep the batch going.
        writeDrops_++;
        n++;
        continue;
      }
      ThrowErrno(env, "TunDevice.write (packet " + std::to_string(n) + ")", errno);
    }
    n++;
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace shardvpn
