#include "udp.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/udp.h>
#include <string.h>

#include <algorithm>

#include "batch.h"

namespace shardvpn {

namespace {

constexpr int kFlagReusePort = 1;
constexpr int kFlagDualStack = 2;
constexpr size_t kMaxUdpPayload = 65507;
// GSO: the kernel takes at most UDP_MAX_SEGMENTS segments per message (64 on older kernels), and
// the whole message must still fit one IP datagram's worth of UDP payload.
constexpr size_t kMaxGsoSegments = 64;
constexpr size_t kMaxGsoBytes = kMaxUdpPayload;
// GRO: a coalesced message is at most one IP datagram's payload (65507 bytes), so 64 KiB each.
constexpr size_t kGroBuffer = 65536;
constexpr size_t kGroMessages = 16;
// One cmsghdr and an int (UDP_GRO) or a uint16_t (UDP_SEGMENT), in 8-byte words.
constexpr size_t kControlWords = (CMSG_SPACE(sizeof(int)) + 7) / 8;

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
  methods.push_back(InstanceMethod("setOffload", &UdpSocket::SetOffload));
  methods.push_back(InstanceMethod("setCoalesce", &UdpSocket::SetCoalesce));
  methods.push_back(InstanceAccessor("drops", &UdpSocket::Drops, nullptr));
  methods.push_back(InstanceAccessor("offload", &UdpSocket::Offload, nullptr));
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
  messageFirst_.resize(count);
  messageCount_.resize(count);
  controls_.resize(count * kControlWords);
}

// setOffload(gso: boolean, gro: boolean): asks the kernel for UDP segmentation offload on send
// (UDP_SEGMENT) and receive coalescing (UDP_GRO); returns { gso, gro } as granted. A kernel
// without them (ENOPROTOOPT) leaves one datagram per message, as before; a refused GSO counts
// as a fallback. Sends learn later refusals (EIO: no checksum offload on the route) themselves.
Napi::Value UdpSocket::SetOffload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireOpen(env, "setOffload");
  bool wantGso = info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();
  bool wantGro = info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  gso_ = false;
  if (wantGso) {
    // gso_size 0 on the socket: segmentation only where a message carries its own UDP_SEGMENT.
    int zero = 0;
    gso_ = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof(zero)) == 0;
    if (!gso_) gsoFallbacks_++;
  }
  int on = wantGro ? 1 : 0;
  bool granted = setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0;
  gro_ = wantGro && granted;
  if (gro_ && groArea_ == nullptr) {
    // Not zeroed: the pages stay untouched until data lands in them (a plain datagram touches
    // the first page of its buffer only).
    groArea_.reset(new uint8_t[kGroMessages * kGroBuffer]);
    groControls_.resize(kGroMessages * kControlWords);
    groLengths_.resize(kGroMessages);
    groSegments_.resize(kGroMessages);
    groNames_.resize(kGroMessages);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("gso", gso_);
  result.Set("gro", gro_);
  return result;
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
  // Datagrams left over from a coalesced receive go first, whatever the setting is now.
  if (gro_ || groNext_ < groGot_) {
    uint64_t coalescedBefore = groMessages_;
    uint64_t receivedBefore = groReceived_;
    size_t got = RecvGro(env, fd, batch, addrs, static_cast<size_t>(capacity));
    // Whether the datagrams come coalesced is known only from a read that took new messages (not
    // one that handed out what was left of an earlier one).
    if (groReceived_ != receivedBefore) sendersCoalesce_ = groMessages_ != coalescedBefore;
    poller().NoteRead(got == batch.count || sendersCoalesce_);
    return Napi::Number::New(env, static_cast<double>(got));
  }
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
  // A full batch may have left more waiting: the next readable turn must not wait to coalesce.
  poller().NoteRead(delivered == batch.count);
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
  size_t messages = BuildSendMessages(env, batch, addrs, 0, gso_);
  size_t done = 0;  // messages consumed
  while (done < messages) {
    int sent = sendmmsg(fd, messages_.data() + done, static_cast<unsigned int>(messages - done), MSG_DONTWAIT);
    if (sent < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) break;
      size_t first = messageFirst_[done];
      size_t count = messageCount_[done];
      if (count > 1 && (err == EIO || err == EINVAL || err == EMSGSIZE || err == ENOPROTOOPT || err == EOPNOTSUPP)) {
        // The kernel refused the segmented message: EIO when the route cannot checksum it
        // (no checksum offload, xfrm), ENOPROTOOPT/EOPNOTSUPP without GSO at all: the socket
        // stops segmenting. EINVAL/EMSGSIZE when a segment exceeds the route's MTU (GSO never
        // fragments; OpenVPN's full-size packets on a 1500-byte link are such): datagrams of
        // this size and larger are no longer segmented, and go as before, fragmented by IP.
        gsoFallbacks_++;
        if (err == EIO || err == ENOPROTOOPT || err == EOPNOTSUPP) gso_ = false;
        if (err == EINVAL || err == EMSGSIZE) {
          gsoSegmentLimit_ = std::min(gsoSegmentLimit_, static_cast<size_t>(batch.lengths[first]));
        }
        messages = BuildSendMessages(env, batch, addrs, first, false);
        done = 0;
        continue;
      }
      if (PerDatagramError(err)) {
        // sendmmsg fails on the first message it could not send: drop that one (all its
        // datagrams share one destination), go on.
        sendDrops_ += count;
        done++;
        continue;
      }
      ThrowErrno(env, "UdpSocket.send (sendmmsg)", err);
    }
    for (size_t m = done; m < done + static_cast<size_t>(sent); m++) {
      if (messageCount_[m] > 1) {
        gsoMessages_++;
        gsoDatagrams_ += messageCount_[m];
      }
    }
    done += static_cast<size_t>(sent);
  }
  size_t consumed = done < messages ? messageFirst_[done] : batch.count;
  return Napi::Number::New(env, static_cast<double>(consumed));
}

size_t UdpSocket::BuildSendMessages(Napi::Env env, const Batch& batch, const uint8_t* addrs, size_t from,
                                    bool segment) {
  size_t m = 0;
  size_t i = from;
  while (i < batch.count) {
    size_t size = batch.lengths[i];
    if (size > kMaxUdpPayload) {
      ThrowRange(env, "UdpSocket.send: datagram " + std::to_string(i) + " is " + std::to_string(size) +
                          " bytes, over the " + std::to_string(kMaxUdpPayload) + "-byte UDP limit");
    }
    const uint8_t* address = addrs + i * kAddressSize;
    bool ok = false;
    socklen_t nameLength = EncodeName(address, family_, &names_[m], &ok);
    if (!ok) {
      ThrowType(env, "UdpSocket.send: datagram " + std::to_string(i) + " has an address of family " +
                         std::to_string(address[0]) + " this socket cannot reach");
    }
    // A run: the datagrams after i to the same peer with the same size; the last may be
    // shorter and ends it (the kernel cuts the payload into gso_size pieces, the last the rest).
    size_t run = 1;
    size_t total = size;
    if (segment && size > 0 && size < gsoSegmentLimit_) {
      while (i + run < batch.count && run < kMaxGsoSegments) {
        size_t next = batch.lengths[i + run];
        if (next == 0 || next > size || total + next > kMaxGsoBytes) break;
        if (memcmp(addrs + (i + run) * kAddressSize, address, kAddressSize) != 0) break;
        total += next;
        run++;
        if (next < size) break;
      }
    }
    for (size_t k = i; k < i + run; k++) {
      iovecs_[k].iov_base = batch.memory + batch.offsets[k];
      iovecs_[k].iov_len = batch.lengths[k];
    }
    struct msghdr* hdr = &messages_[m].msg_hdr;
    memset(hdr, 0, sizeof(*hdr));
    hdr->msg_iov = &iovecs_[i];
    hdr->msg_iovlen = run;
    hdr->msg_name = &names_[m];
    hdr->msg_namelen = nameLength;
    if (run > 1) {
      uint64_t* control = controls_.data() + m * kControlWords;
      memset(control, 0, kControlWords * 8);
      hdr->msg_control = control;
      hdr->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
      struct cmsghdr* cmsg = CMSG_FIRSTHDR(hdr);
      cmsg->cmsg_level = SOL_UDP;
      cmsg->cmsg_type = UDP_SEGMENT;
      cmsg->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t gsoSize = static_cast<uint16_t>(size);
      memcpy(CMSG_DATA(cmsg), &gsoSize, sizeof(gsoSize));
    }
    messageFirst_[m] = i;
    messageCount_[m] = run;
    m++;
    i += run;
  }
  return m;
}

// With GRO the kernel may hand over one message holding many datagrams of gso_size bytes each
// (the last may be shorter), up to 64 KiB in all, and a receive buffer too small for it would
// cut it short (MSG_TRUNC) and lose the rest. Giving each of the caller's slots 64 KiB would
// make the batch memory 32 times as large (64 slots of 2 KiB: 128 KiB -> 4 MiB per socket, per
// shard). Instead the socket owns one receive area of kGroMessages (16) buffers of 64 KiB
// (1 MiB of address space, allocated only where GRO is on, its pages touched only as far as
// messages fill them): recvmmsg
// fills it, and the datagrams are copied out one by one into the caller's slots (one memcpy per
// datagram, small beside the decryption that follows). Datagrams for which the caller has no
// slot left stay in the area for the next call, which hands them out before receiving again, so
// nothing received is lost and the order is kept. Plain datagrams take the same path, 16 per
// recvmmsg, with the call repeated until the caller's slots are full or the queue is empty: up
// to 4 times the recvmmsg calls for traffic that never coalesces, a few hundredths of the
// system calls a GB costs (bench/syscalls.bench.ts), for a quarter of the memory.
size_t UdpSocket::RecvGro(Napi::Env env, int fd, const Batch& batch, uint8_t* addrs, size_t capacity) {
  size_t delivered = DrainGro(batch, addrs, 0, capacity);
  Reserve(kGroMessages);
  while (delivered < batch.count && gro_) {
    for (size_t i = 0; i < kGroMessages; i++) {
      iovecs_[i].iov_base = groArea_.get() + i * kGroBuffer;
      iovecs_[i].iov_len = kGroBuffer;
      struct msghdr* hdr = &messages_[i].msg_hdr;
      memset(hdr, 0, sizeof(*hdr));
      hdr->msg_iov = &iovecs_[i];
      hdr->msg_iovlen = 1;
      // Names of their own: a send between two receives must not overwrite those still pending.
      hdr->msg_name = &groNames_[i];
      hdr->msg_namelen = sizeof(groNames_[i]);
      hdr->msg_control = groControls_.data() + i * kControlWords;
      hdr->msg_controllen = kControlWords * 8;
      messages_[i].msg_len = 0;
    }
    int got = recvmmsg(fd, messages_.data(), static_cast<unsigned int>(kGroMessages), MSG_DONTWAIT, nullptr);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) continue;
      if (delivered > 0) break;
      ThrowErrno(env, "UdpSocket.recv (recvmmsg)", errno);
    }
    if (got == 0) break;
    groReceived_ += static_cast<uint64_t>(got);
    for (int i = 0; i < got; i++) {
      struct msghdr* hdr = &messages_[i].msg_hdr;
      groLengths_[i] = messages_[i].msg_len;
      groSegments_[i] = 0;
      if (hdr->msg_flags & MSG_TRUNC) {
        // Cannot happen with 64 KiB buffers; counted and dropped should a kernel ever do it.
        truncatedDrops_++;
        groLengths_[i] = UINT32_MAX;
        continue;
      }
      for (struct cmsghdr* cmsg = CMSG_FIRSTHDR(hdr); cmsg != nullptr; cmsg = CMSG_NXTHDR(hdr, cmsg)) {
        if (cmsg->cmsg_level == SOL_UDP && cmsg->cmsg_type == UDP_GRO && cmsg->cmsg_len >= CMSG_LEN(sizeof(int))) {
          int gsoSize = 0;
          memcpy(&gsoSize, CMSG_DATA(cmsg), sizeof(gsoSize));
          if (gsoSize > 0 && static_cast<uint32_t>(gsoSize) < groLengths_[i]) {
            groSegments_[i] = static_cast<uint32_t>(gsoSize);
            groMessages_++;
            groDatagrams_ += (groLengths_[i] + gsoSize - 1) / gsoSize;
          }
        }
      }
    }
    groGot_ = static_cast<size_t>(got);
    groNext_ = 0;
    groOffset_ = 0;
    delivered = DrainGro(batch, addrs, delivered, capacity);
    // recvmmsg returned fewer than asked: the queue is drained.
    if (static_cast<size_t>(got) < kGroMessages) break;
  }
  return delivered;
}

size_t UdpSocket::DrainGro(const Batch& batch, uint8_t* addrs, size_t delivered, size_t capacity) {
  while (groNext_ < groGot_ && delivered < batch.count) {
    uint32_t length = groLengths_[groNext_];
    if (length == UINT32_MAX) {  // truncated, already counted
      groNext_++;
      continue;
    }
    const uint8_t* base = groArea_.get() + groNext_ * kGroBuffer;
    size_t segment = groSegments_[groNext_] > 0 ? groSegments_[groNext_] : length;
    // A zero-length datagram is one (empty) datagram; otherwise one per gso_size piece.
    do {
      size_t piece = std::min(segment, static_cast<size_t>(length) - groOffset_);
      if (piece > capacity) {
        truncatedDrops_++;
      } else {
        memcpy(batch.memory + batch.offsets[delivered], base + groOffset_, piece);
        batch.lengths[delivered] = static_cast<uint32_t>(piece);
        DecodeName(&groNames_[groNext_], addrs + delivered * kAddressSize);
        delivered++;
      }
      groOffset_ += piece;
    } while (groOffset_ < length && delivered < batch.count);
    if (groOffset_ >= length) {
      groNext_++;
      groOffset_ = 0;
    }
  }
  return delivered;
}

// drops: { truncated, send } counts kept by this socket.
Napi::Value UdpSocket::Drops(const Napi::CallbackInfo& info) {
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("truncated", static_cast<double>(truncatedDrops_));
  result.Set("send", static_cast<double>(sendDrops_));
  return result;
}

// offload: whether GSO and GRO are on, and their counts: datagrams sent inside segmented
// messages, those messages, refusals that fell back to one datagram per message, coalesced
// messages received and the datagrams split out of them; and the receive turns held back to
// coalesce (setCoalesce).
Napi::Value UdpSocket::Offload(const Napi::CallbackInfo& info) {
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("gso", gso_);
  result.Set("gro", gro_);
  result.Set("gsoDatagrams", static_cast<double>(gsoDatagrams_));
  result.Set("gsoMessages", static_cast<double>(gsoMessages_));
  result.Set("gsoFallbacks", static_cast<double>(gsoFallbacks_));
  result.Set("groMessages", static_cast<double>(groMessages_));
  result.Set("groDatagrams", static_cast<double>(groDatagrams_));
  result.Set("coalesceWaits", static_cast<double>(poller().coalesceWaits()));
  return result;
}

// setCoalesce(usecs): receive coalescing (see Poller::SetCoalesce); 0 turns it off.
Napi::Value UdpSocket::SetCoalesce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) ThrowType(env, "UdpSocket.setCoalesce(usecs): usecs must be a number");
  int64_t usecs = info[0].As<Napi::Number>().Int64Value();
  if (usecs < 0 || usecs > 10000) ThrowRange(env, "UdpSocket.setCoalesce: usecs must be 0..10000");
  poller().SetCoalesce(static_cast<uint64_t>(usecs) * 1000);
  return env.Undefined();
}

}  // namespace shardvpn
