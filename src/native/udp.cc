#include "udp.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <string.h>

#include "batch.h"

namespace shardvpn {

namespace {

constexpr int kFlagReusePort = 1;
constexpr int kFlagDualStack = 2;
constexpr size_t kMaxUdpPayload = 65507;

// Decodes caller address bytes into a sockaddr the socket's family can send to.
socklen_t EncodeName(const uint8_t* in, int socketFamily, struct sockaddr_storage* out, bool* ok) {
  memset(out, 0, sizeof(*out));
  *ok = true;
  uint16_t port = static_cast<uint16_t>((in[2] << 8) | in[3]);
  if (in[0] == 4 && socketFamily == AF_INET) {
    auto* sin = reinterpret_cast<struct sockaddr_in*>(out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    memcpy(&sin->sin_addr, in + 4, 4);
    return sizeof(*sin);
  }
  if (socketFamily == AF_INET6 && (in[0] == 4 || in[0] == 6)) {
    auto* sin6 = reinterpret_cast<struct sockaddr_in6*>(out);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    if (in[0] == 4) {
      // IPv4 peer on a dual-stack socket: the v4-mapped form.
      sin6->sin6_addr.s6_addr[10] = 0xff;
      sin6->sin6_addr.s6_addr[11] = 0xff;
      memcpy(&sin6->sin6_addr.s6_addr[12], in + 4, 4);
    } else {
      memcpy(&sin6->sin6_addr, in + 4, 16);
    }
    return sizeof(*sin6);
  }
  *ok = false;
  return 0;
}

void DecodeName(const struct sockaddr_storage* in, uint8_t* out) {
  memset(out, 0, kAddressSize);
  if (in->ss_family == AF_INET) {
    auto* sin = reinterpret_cast<const struct sockaddr_in*>(in);
    out[0] = 4;
    uint16_t port = ntohs(sin->sin_port);
    out[2] = port >> 8;
    out[3] = port & 0xff;
    memcpy(out + 4, &sin->sin_addr, 4);
  } else if (in->ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<const struct sockaddr_in6*>(in);
    uint16_t port = ntohs(sin6->sin6_port);
    out[2] = port >> 8;
    out[3] = port & 0xff;
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
      out[0] = 4;
      memcpy(out + 4, &sin6->sin6_addr.s6_addr[12], 4);
    } else {
      out[0] = 6;
      memcpy(out + 4, &sin6->sin6_addr, 16);
    }
  }
}

uint8_t* AddressesOf(const Napi::CallbackInfo& info, size_t index, const char* call, size_t count) {
  size_t length = 0;
  uint8_t* addrs = BytesOf(info, index, call, "addresses", &length);
  if (length < count * kAddressSize) {
    ThrowRange(info.Env(), std::string(call) + ": addresses holds " + std::to_string(length / kAddressSize) +
                               " entries of " + std::to_string(kAddressSize) + " bytes, " +
                               std::to_string(count) + " needed");
  }
  return addrs;
}

// Errors that concern one datagram's destination, not the socket: drop that datagram only.
bool PerDatagramError(int err) {
  return err == ENETUNREACH || err == EHOSTUNREACH || err == ECONNREFUSED || err == EPERM ||
         err == EACCES || err == EADDRNOTAVAIL || err == EINVAL || err == EAFNOSUPPORT || err == EMSGSIZE;
}

}  // namespace

Napi::Function UdpSocket::Define(Napi::Env env) {
  auto methods = DescriptorMethods();
  methods.push_back(InstanceMethod("bind", &UdpSocket::Bind));
  methods.push_back(InstanceMethod("localAddress", &UdpSocket::LocalAddress));
  methods.push_back(InstanceMethod("setBufferSizes", &UdpSocket::SetBufferSizes));
  methods.push_back(InstanceMethod("attachReusePortCbpf", &UdpSocket::AttachReusePortCbpf));
  methods.push_back(InstanceMethod("recv", &UdpSocket::Recv));
  methods.push_back(InstanceMethod("send", &UdpSocket::Send));
  methods.push_back(InstanceAccessor("drops", &UdpSocket::Drops, nullptr));
  return DefineClass(env, kClassName, methods);
}

// new UdpSocket(family: 4 | 6, flags: reusePort 1 | dualStack 2, fd: number). With fd >= 0 the
// socket wraps a descriptor opened elsewhere in this process (another thread) and does not
// close it: the opener owns it.
UdpSocket::UdpSocket(const Napi::CallbackInfo& info) : DescriptorWrap<UdpSocket>(info) {
  Napi::Env env = info.Env();
  int family = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  if (family != 4 && family != 6) ThrowRange(env, "UdpSocket: family must be 4 or 6");
  int flags = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  int existing = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
  family_ = family == 4 ? AF_INET : AF_INET6;
  if (existing >= 0) {
    int type = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(existing, SOL_SOCKET, SO_TYPE, &type, &len) < 0) ThrowErrno(env, "UdpSocket fd", errno);
    if (type != SOCK_DGRAM) ThrowErrno(env, "UdpSocket fd", ENOTSOCK);
    Adopt(existing, false);
    return;
  }
  int fd = socket(family_, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, "socket", errno);
  int one = 1;
  if ((flags & kFlagReusePort) && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, "setsockopt SO_REUSEPORT", err);
  }
  if (family_ == AF_INET6) {
    int v6only = (flags & kFlagDualStack) ? 0 : 1;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0) {
      int err = errno;
      close(fd);
      ThrowErrno(env, "setsockopt IPV6_V6ONLY", err);
    }
  }
  Adopt(fd, true);
}

// bind(address: string, port: number)
Napi::Value UdpSocket::Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireOpen(env, "bind");
  if (!info[0].IsString() || !info[1].IsNumber()) ThrowType(env, "UdpSocket.bind(address, port): bad arguments");
  std::string address = info[0].As<Napi::String>().Utf8Value();
  int64_t port = info[1].As<Napi::Number>().Int64Value();
  if (port < 0 || port > 65535) ThrowRange(env, "UdpSocket.bind: port " + std::to_string(port) + " outside 0..65535");
  struct sockaddr_storage name;
  memset(&name, 0, sizeof(name));
  socklen_t nameLength = 0;
  if (family_ == AF_INET) {
    auto* sin = reinterpret_cast<struct sockaddr_in*>(&name);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, address.c_str(), &sin->sin_addr) != 1) {
      ThrowType(env, "UdpSocket.bind: '" + address + "' is not an IPv4 address");
    }
    nameLength = sizeof(*sin);
  } else {
    auto* sin6 = reinterpret_cast<struct sockaddr_in6*>(&name);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, address.c_str(), &sin6->sin6_addr) != 1) {
      ThrowType(env, "UdpSocket.bind: '" + address + "' is not an IPv6 address");
    }
    nameLength = sizeof(*sin6);
  }
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&name), nameLength) < 0) {
    ThrowErrno(env, "bind " + address + ":" + std::to_string(port), errno);
  }
  return env.Undefined();
}

// localAddress(): { family, address, port } from getsockname.
Napi::Value UdpSocket::LocalAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireOpen(env, "localAddress");
  struct sockaddr_storage name;
  socklen_t length = sizeof(name);
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&name), &length) < 0) ThrowErrno(env, "getsockname", errno);
  char text[INET6_ADDRSTRLEN] = {0};
  Napi::Object result = Napi::Object::New(env);
  if (name.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<struct sockaddr_in*>(&name);
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
    result.Set("family", 4);
    result.Set("port", ntohs(sin->sin_port));
  } else {
    auto* sin6 = reinterpret_cast<struct sockaddr_in6*>(&name);
    inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
    result.Set("family", 6);
    result.Set("port", ntohs(sin6->sin6_port));
  }
  result.Set("address", text);
  return result;
}

// setBufferSizes(rcvbuf, sndbuf): 0 leaves one unchanged. Returns the sizes the kernel applied.
Napi::Value UdpSocket::SetBufferSizes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireOpen(env, "setBufferSizes");
  const int options[2] = {SO_RCVBUF, SO_SNDBUF};
  const char* names[2] = {"setsockopt SO_RCVBUF", "setsockopt SO_SNDBUF"};
  Napi::Object result = Napi::Object::New(env);
  for (int i = 0; i < 2; i++) {
    int64_t size = info[i].IsNumber() ? info[i].As<Napi::Number>().Int64Value() : 0;
    if (size < 0 || size > INT32_MAX) ThrowRange(env, std::string("UdpSocket.setBufferSizes: bad size"));
    if (size > 0) {
      int value = static_cast<int>(size);
      if (setsockopt(fd, SOL_SOCKET, options[i], &value, sizeof(value)) < 0) ThrowErrno(env, names[i], errno);
    }
    int applied = 0;
    socklen_t length = sizeof(applied);
    getsockopt(fd, SOL_SOCKET, options[i], &applied, &length);
    result.Set(i == 0 ? "rcvbuf" : "sndbuf", applied);
  }
  return result;
}

// attachReusePortCbpf(program: Uint32Array of [code, jt, jf, k] quadruples): a classic BPF
// program that picks the socket of the SO_REUSEPORT group for each datagram.
Napi::Value UdpSocket::AttachReusePortCbpf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireOpen(env, "attachReusePortCbpf");
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    ThrowType(env, "UdpSocket.attachReusePortCbpf: program must be a Uint32Array");
  }
  auto program = info[0].As<Napi::Uint32Array>();
  size_t words = program.ElementLength();
  if (words == 0 || words % 4 != 0 || words / 4 > BPF_MAXINSNS) {
    ThrowRange(env, "UdpSocket.attachReusePortCbpf: program must be 1..4096 instructions of 4 words");
  }
  std::vector<struct sock_filter> filter(words / 4);
  for (size_t i = 0; i < filter.size(); i++) {
    filter[i].code = static_cast<uint16_t>(program[i * 4]);
    filter[i].jt = static_cast<uint8_t>(program[i * 4 + 1]);
    filter[i].jf = static_cast<uint8_t>(program[i * 4 + 2]);
    filter[i].k = program[i * 4 + 3];
  }
  struct sock_fprog fprog;
  fprog.len = static_cast<unsigned short>(filter.size());
  fprog.filter = filter.data();
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog, sizeof(fprog)) < 0) {
    ThrowErrno(env, "setsockopt SO_ATTACH_REUSEPORT_CBPF", errno);
  }
  return env.Undefined();
}

void UdpSocket::Reserve(size_t count) {
  if (messages_.size() >= count) return;
  messages_.resize(count);
  iovecs_.resize(count);
  names_.resize(count);
}

// recv(memory, offsets, lengths, count, capacity, addresses): receives up to `count` datagrams
// with one recvmmsg; datagram i lands at memory[offsets[i]], its size in lengths[i], its source
// in addresses[i * 20 ..]. Returns how many; 0 when none is waiting. A datagram longer than
// `capacity` is dropped and counted (drops.truncated), never passed on cut short.
Napi::Value UdpSocket::Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireOpen(env, "recv");
  if (!info[4].IsNumber()) ThrowType(env, "UdpSocket.recv: capacity must be a number");
  int64_t capacity = info[4].As<Napi::Number>().Int64Value();
  if (capacity <= 0 || capacity > 65535) ThrowRange(env, "UdpSocket.recv: capacity must be 1..65535");
  Batch batch = ParseBatch(info, 0, "UdpSocket.recv", static_cast<size_t>(capacity));
  uint8_t* addrs = AddressesOf(info, 5, "UdpSocket.recv", batch.count);
  if (batch.count == 0) return Napi::Number::New(env, 0);
  Reserve(batch.count);
  size_t delivered = 0;
  // Loop only to refill the places of truncated datagrams.
  while (delivered < batch.count) {
    size_t want = batch.count - delivered;
    for (size_t i = 0; i < want; i++) {
      size_t slot = delivered + i;
      iovecs_[i].iov_base = batch.memory + batch.offsets[slot];
      iovecs_[i].iov_len = static_cast<size_t>(capacity);
      memset(&messages_[i].msg_hdr, 0, sizeof(messages_[i].msg_hdr));
      messages_[i].msg_hdr.msg_iov = &iovecs_[i];
      messages_[i].msg_hdr.msg_iovlen = 1;
      messages_[i].msg_hdr.msg_name = &names_[i];
      messages_[i].msg_hdr.msg_namelen = sizeof(names_[i]);
      messages_[i].msg_len = 0;
    }
    int got = recvmmsg(fd, messages_.data(), static_cast<unsigned int>(want), MSG_DONTWAIT, nullptr);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // ICMP errors from earlier sends (ECONNREFUSED) are reported here on Linux: not fatal.
      if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) continue;
      if (delivered > 0) break;
      ThrowErrno(env, "UdpSocket.recv (recvmmsg)", errno);
    }
    if (got == 0) break;
    size_t kept = delivered;
    for (int i = 0; i < got; i++) {
      if (messages_[i].msg_hdr.msg_flags & MSG_TRUNC) {
        truncatedDrops_++;
        continue;
      }
      size_t from = delivered + i;
      if (kept != from) {
        memmove(batch.memory + batch.offsets[kept], batch.memory + batch.offsets[from], messages_[i].msg_len);
      }
      batch.lengths[kept] = messages_[i].msg_len;
      DecodeName(&names_[i], addrs + kept * kAddressSize);
      kept++;
    }
    bool dropped = kept < delivered + static_cast<size_t>(got);
    delivered = kept;
    // recvmmsg returned fewer than asked: the queue is drained, unless a drop made the room.
    if (static_cast<size_t>(got) < want && !dropped) break;
  }
  return Napi::Number::New(env, static_cast<double>(delivered));
}

// send(memory, offsets, lengths, count, addresses): sends datagram i from memory[offsets[i]],
// lengths[i] bytes, to addresses[i * 20 ..], with sendmmsg. Returns how many were consumed
// (sent, or refused for their destination and counted in drops.send); fewer than `count` means
// the socket buffer is full (EAGAIN): poll for writable and send the rest.
Napi::Value UdpSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireOpen(env, "send");
  Batch batch = ParseBatch(info, 0, "UdpSocket.send", 0);
  uint8_t* addrs = AddressesOf(info, 4, "UdpSocket.send", batch.count);
  Reserve(batch.count);
  for (size_t i = 0; i < batch.count; i++) {
    if (batch.lengths[i] > kMaxUdpPayload) {
      ThrowRange(env, "UdpSocket.send: datagram " + std::to_string(i) + " is " + std::to_string(batch.lengths[i]) +
                          " bytes, over the " + std::to_string(kMaxUdpPayload) + "-byte UDP limit");
    }
    bool ok = false;
    socklen_t nameLength = EncodeName(addrs + i * kAddressSize, family_, &names_[i], &ok);
    if (!ok) {
      ThrowType(env, "UdpSocket.send: datagram " + std::to_string(i) + " has an address of family " +
                         std::to_string(addrs[i * kAddressSize]) + " this socket cannot reach");
    }
    iovecs_[i].iov_base = batch.memory + batch.offsets[i];
    iovecs_[i].iov_len = batch.lengths[i];
    memset(&messages_[i].msg_hdr, 0, sizeof(messages_[i].msg_hdr));
    messages_[i].msg_hdr.msg_iov = &iovecs_[i];
    messages_[i].msg_hdr.msg_iovlen = 1;
    messages_[i].msg_hdr.msg_name = &names_[i];
    messages_[i].msg_hdr.msg_namelen = nameLength;
  }
  size_t done = 0;
  while (done < batch.count) {
    int sent = sendmmsg(fd, messages_.data() + done, static_cast<unsigned int>(batch.count - done), MSG_DONTWAIT);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) break;
      if (PerDatagramError(errno)) {
        // sendmmsg fails on the first datagram it could not send: drop that one, go on.
        sendDrops_++;
        done++;
        continue;
      }
      ThrowErrno(env, "UdpSocket.send (sendmmsg)", errno);
    }
    done += static_cast<size_t>(sent);
  }
  return Napi::Number::New(env, static_cast<double>(done));
}

// drops: { truncated, send } counts kept by this socket.
Napi::Value UdpSocket::Drops(const Napi::CallbackInfo& info) {
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("truncated", static_cast<double>(truncatedDrops_));
  result.Set("send", static_cast<double>(sendDrops_));
  return result;
}

}  // namespace shardvpn
