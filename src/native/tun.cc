#include "tun.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "batch.h"
#include "checksum.h"

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
  methods.push_back(InstanceAccessor("offload", &TunDevice::Offload, nullptr));
  methods.push_back(InstanceAccessor("pending", &TunDevice::Pending, nullptr));
  return DefineClass(env, kClassName, methods);
}

// new TunDevice(name: string, multiQueue: boolean, fd?: number, offload?: number). An empty name
// lets the kernel choose (tunN). With fd >= 0 the object wraps a device another thread of this
// process opened (a shard writing to the main thread's TUN device) and does not close it; whether
// that descriptor carries offload headers is read from the kernel. `offload`: 0 none, 1 TCP
// (checksum offload and TSO), 3 TCP and UDP (USO, where the kernel has it).
TunDevice::TunDevice(const Napi::CallbackInfo& info) : DescriptorWrap<TunDevice>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowType(env, "TunDevice(name, multiQueue): name must be a string");
  std::string requested = info[0].As<Napi::String>().Utf8Value();
  int existing = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
  int offload = info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : 0;
  if (existing >= 0) {
    if (fcntl(existing, F_GETFD) < 0) ThrowErrno(env, "TunDevice fd", errno);
    name_ = requested;
    Adopt(existing, false);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    if (ioctl(existing, TUNGETIFF, &ifr) == 0 && (ifr.ifr_flags & IFF_VNET_HDR) != 0) {
      vnet_ = true;
      readArea_.reset(new uint8_t[kVnetHeaderSize + kMaxSuperpacket + 1]);
    }
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
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (multiQueue ? IFF_MULTI_QUEUE : 0) | (offload != 0 ? IFF_VNET_HDR : 0);
  if (!requested.empty()) strncpy(ifr.ifr_name, requested.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, "ioctl TUNSETIFF " + (requested.empty() ? std::string("(any)") : requested), err);
  }
  name_ = ifr.ifr_name;
  Adopt(fd, true);
  if (offload != 0) EnableOffloads(fd, (offload & 2) != 0);
}

// Asks for checksum offload and TSO (and USO when `uso`): the kernel may then hand us
// superpackets and partial checksums. A kernel without USO refuses the whole set (EINVAL): ask
// again without it. Writing coalesced superpackets needs only the header, granted or not.
void TunDevice::EnableOffloads(int fd, bool uso) {
  vnet_ = true;
  readArea_.reset(new uint8_t[kVnetHeaderSize + kMaxSuperpacket + 1]);
  unsigned int tcp = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
  if (uso && ioctl(fd, TUNSETOFFLOAD, tcp | kTunUso4 | kTunUso6) == 0) {
    tso_ = uso_ = true;
    return;
  }
  tso_ = ioctl(fd, TUNSETOFFLOAD, tcp) == 0;
}

Napi::Value TunDevice::Offload(const Napi::CallbackInfo& info) {
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("vnetHeader", vnet_);
  result.Set("tso", tso_);
  result.Set("uso", uso_);
  result.Set("superpackets", static_cast<double>(superpackets_));
  result.Set("segments", static_cast<double>(segments_));
  result.Set("checksums", static_cast<double>(checksums_));
  result.Set("readDrops", static_cast<double>(readDrops_));
  result.Set("coalescedWrites", static_cast<double>(coalescedWrites_));
  result.Set("coalescedPackets", static_cast<double>(coalescedPackets_));
  result.Set("coalesceRefusals", static_cast<double>(coalesceRefusals_));
  return result;
}

// Segments of a superpacket not yet handed out: the caller must read again even though the
// descriptor may not poll readable.
Napi::Value TunDevice::Pending(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), split_.pending());
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
  if (vnet_) return Napi::Number::New(env, static_cast<double>(ReadOffloaded(env, fd, batch, static_cast<size_t>(capacity))));
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
  if (vnet_) return Napi::Number::New(env, static_cast<double>(WriteOffloaded(env, fd, batch)));
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

// Reads with offload headers: hands out the segments of a superpacket still pending, then reads
// the next one into the read area and splits it into the caller's slots. A superpacket whose
// segments do not all fit stays pending for the next call (`pending`).
size_t TunDevice::ReadOffloaded(Napi::Env env, int fd, const Batch& batch, size_t capacity) {
  size_t n = 0;
  // Segments sized for an earlier call's slots cannot go into smaller ones: dropped, counted.
  if (split_.pending() && split_.largest() > capacity) {
    split_.Drop();
    readDrops_++;
  }
  while (n < batch.count) {
    if (split_.pending()) {
      batch.lengths[n] = static_cast<uint32_t>(split_.Next(batch.memory + batch.offsets[n]));
      n++;
      continue;
    }
    ssize_t got = ::read(fd, readArea_.get(), kVnetHeaderSize + kMaxSuperpacket + 1);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (n > 0) break;
      ThrowErrno(env, "TunDevice.read", errno);
    }
    size_t length = static_cast<size_t>(got);
    if (length <= kVnetHeaderSize || length > kVnetHeaderSize + kMaxSuperpacket) {
      readDrops_++;
      continue;
    }
    VnetHeader vnet;
    memcpy(&vnet, readArea_.get(), kVnetHeaderSize);
    if (split_.Start(vnet, readArea_.get() + kVnetHeaderSize, length - kVnetHeaderSize, capacity) != SplitResult::kOk) {
      readDrops_++;
      continue;
    }
    if (split_.segmented()) {
      superpackets_++;
      segments_ += split_.count();
    } else if ((vnet.flags & kVnetNeedsChecksum) != 0) {
      checksums_++;
    }
  }
  return n;
}

int TunDevice::WriteVector(Napi::Env env, int fd, const struct iovec* iov, int count, size_t index) {
  for (;;) {
    if (::writev(fd, iov, count) >= 0) return 1;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    if (errno == EINVAL) return -1;
    ThrowErrno(env, "TunDevice.write (packet " + std::to_string(index) + ")", errno);
  }
}

// Writes with offload headers: each run of TCP segments of one flow that GRO would merge leaves
// as one superpacket (PlanCoalescedRun), anything else alone behind an empty header. Should the
// kernel refuse a superpacket, its packets go alone (counted), so a mistake costs speed, not data.
size_t TunDevice::WriteOffloaded(Napi::Env env, int fd, const Batch& batch) {
  static const VnetHeader kPlain = {};
  writePackets_.resize(batch.count);
  for (size_t i = 0; i < batch.count; i++) writePackets_[i] = batch.memory + batch.offsets[i];
  struct iovec iov[kMaxCoalesced + 2];
  size_t n = 0;
  while (n < batch.count) {
    if (coalesce_) {
      PlanCoalescedRun(writePackets_.data(), batch.lengths, n, batch.count, &run_);
    } else {
      run_.count = 1;
    }
    if (run_.count > 1) {
      iov[0] = {&run_.vnet, kVnetHeaderSize};
      iov[1] = {run_.header, run_.headerLength};
      for (size_t k = 0; k < run_.count; k++) {
        size_t skip = run_.payloadOffset[k];
        iov[2 + k] = {const_cast<uint8_t*>(writePackets_[n + k]) + skip, batch.lengths[n + k] - skip};
      }
      int result = WriteVector(env, fd, iov, static_cast<int>(run_.count + 2), n);
      if (result == 0) break;
      if (result > 0) {
        coalescedWrites_++;
        coalescedPackets_ += run_.count;
        refusalsInARow_ = 0;
        n += run_.count;
        continue;
      }
      coalesceRefusals_++;
      // A kernel that refuses every superpacket would cost a failed call per run: stop asking.
      if (++refusalsInARow_ >= kRefusalsBeforeGivingUp) coalesce_ = false;
    }
    // One packet alone (or the packets of a refused superpacket, one by one).
    size_t alone = run_.count;
    size_t done = 0;
    for (; done < alone; done++) {
      iov[0] = {const_cast<VnetHeader*>(&kPlain), kVnetHeaderSize};
      iov[1] = {const_cast<uint8_t*>(writePackets_[n + done]), batch.lengths[n + done]};
      int result = WriteVector(env, fd, iov, 2, n + done);
      if (result == 0) break;
      if (result < 0) writeDrops_++;
    }
    n += done;
    if (done < alone) break;
  }
  return n;
}

}  // namespace shardvpn
