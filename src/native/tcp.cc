#include "tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "errors.h"
#include "socket-routing.h"

namespace shardvpn {

// openTcpListener(family: 4 | 6, reusePort: boolean, dualStack: boolean, address, port,
// backlog, mark, device) -> { fd, routingProblem }. A non-blocking, close-on-exec listening
// socket; the caller owns the fd. mark/device (0 / '': none) are set before the bind, best effort:
// routingProblem says what failed ('' when nothing did).
Napi::Value OpenTcpListener(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6 || !info[0].IsNumber() || !info[3].IsString() || !info[4].IsNumber() || !info[5].IsNumber()) {
    ThrowType(env, "openTcpListener(family, reusePort, dualStack, address, port, backlog): bad arguments");
  }
  int family = info[0].As<Napi::Number>().Int32Value();
  bool reusePort = info[1].ToBoolean();
  bool dualStack = info[2].ToBoolean();
  std::string address = info[3].As<Napi::String>().Utf8Value();
  int64_t port = info[4].As<Napi::Number>().Int64Value();
  int backlog = info[5].As<Napi::Number>().Int32Value();
  int64_t mark = info.Length() > 6 && info[6].IsNumber() ? info[6].As<Napi::Number>().Int64Value() : 0;
  std::string device = info.Length() > 7 && info[7].IsString() ? info[7].As<Napi::String>().Utf8Value() : std::string();
  if (family != 4 && family != 6) ThrowRange(env, "openTcpListener: family must be 4 or 6");
  if (port < 0 || port > 65535) ThrowRange(env, "openTcpListener: port " + std::to_string(port) + " outside 0..65535");
  struct sockaddr_storage name;
  memset(&name, 0, sizeof(name));
  socklen_t nameLength = 0;
  if (family == 4) {
    auto* sin = reinterpret_cast<struct sockaddr_in*>(&name);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, address.c_str(), &sin->sin_addr) != 1) ThrowType(env, "openTcpListener: '" + address + "' is not an IPv4 address");
    nameLength = sizeof(*sin);
  } else {
    auto* sin6 = reinterpret_cast<struct sockaddr_in6*>(&name);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, address.c_str(), &sin6->sin6_addr) != 1) ThrowType(env, "openTcpListener: '" + address + "' is not an IPv6 address");
    nameLength = sizeof(*sin6);
  }
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, "socket", errno);
  int one = 1;
  int v6only = dualStack ? 0 : 1;
  const char* failed = nullptr;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) failed = "setsockopt SO_REUSEADDR";
  if (failed == nullptr && reusePort && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) failed = "setsockopt SO_REUSEPORT";
  if (failed == nullptr && family == 6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0) failed = "setsockopt IPV6_V6ONLY";
  std::string routingProblem = failed == nullptr ? ApplySocketRouting(fd, mark, device) : std::string();
  std::string where = "bind " + address + ":" + std::to_string(port);
  if (failed == nullptr && bind(fd, reinterpret_cast<struct sockaddr*>(&name), nameLength) < 0) failed = where.c_str();
  if (failed == nullptr && listen(fd, backlog) < 0) failed = "listen";
  if (failed != nullptr) {
    int err = errno;
    close(fd);
    ThrowErrno(env, failed, err);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("fd", fd);
  result.Set("routingProblem", routingProblem);
  return result;
}

// A descriptor copy that belongs to the JavaScript thread that made it until something there
// takes it over. A worker terminated between the copy and net.Server.listen({ fd }) would leak it:
// nothing in JavaScript runs after termination, so the copy's environment closes it instead.
struct ThreadCopy {
  napi_env env;
  int fd;
  dev_t device;
  ino_t inode;
};

// By thread environment and number: a number closed behind a copy's back (a listen that failed)
// may be another thread's copy next.
std::mutex threadCopiesLock;
std::map<std::pair<napi_env, int>, ThreadCopy*> threadCopies;

// Runs as the thread's environment ends, after Node has closed its handles: a copy a handle took
// over is closed already, and its number may have been reused. Only a number that still names the
// same socket is ours to close (only this worker copies this shard's listener; a replacement
// starts after this environment is gone).
void CloseUnclaimedCopy(void* data) {
  ThreadCopy* copy = static_cast<ThreadCopy*>(data);
  {
    std::lock_guard<std::mutex> hold(threadCopiesLock);
    auto found = threadCopies.find({copy->env, copy->fd});
    if (found != threadCopies.end() && found->second == copy) threadCopies.erase(found);
  }
  struct stat now;
  if (fstat(copy->fd, &now) == 0 && now.st_dev == copy->device && now.st_ino == copy->inode) close(copy->fd);
  delete copy;
}

// dupDescriptor(fd) -> a new close-on-exec descriptor of the same socket: a worker's net.Server
// closes its copy when the worker ends, and the original stays for the worker's replacement.
// Until claimDescriptor(copy), the copy is closed when this thread's environment ends.
Napi::Value DupDescriptor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) ThrowType(env, "dupDescriptor(fd): fd must be a number");
  int fd = fcntl(info[0].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, "dup", errno);
  struct stat identity;
  if (fstat(fd, &identity) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, "fstat", err);
  }
  ThreadCopy* copy = new ThreadCopy{env, fd, identity.st_dev, identity.st_ino};
  {
    std::lock_guard<std::mutex> hold(threadCopiesLock);
    threadCopies[{env, fd}] = copy;
  }
  napi_add_env_cleanup_hook(env, CloseUnclaimedCopy, copy);
  return Napi::Number::New(env, fd);
}

// claimDescriptor(copy): something in this thread (a net.Server) owns and will close the copy.
Napi::Value ClaimDescriptor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) ThrowType(env, "claimDescriptor(fd): fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  ThreadCopy* copy = nullptr;
  {
    std::lock_guard<std::mutex> hold(threadCopiesLock);
    auto found = threadCopies.find({env, fd});
    if (found != threadCopies.end()) {
      copy = found->second;
      threadCopies.erase(found);
    }
  }
  if (copy == nullptr) ThrowType(env, "claimDescriptor(fd): not a copy made by dupDescriptor");
  napi_remove_env_cleanup_hook(env, CloseUnclaimedCopy, copy);
  delete copy;
  return env.Undefined();
}

// socketPort(fd) -> the local port a socket is bound to (getsockname).
Napi::Value SocketPort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) ThrowType(env, "socketPort(fd): fd must be a number");
  struct sockaddr_storage name;
  socklen_t length = sizeof(name);
  if (getsockname(info[0].As<Napi::Number>().Int32Value(), reinterpret_cast<struct sockaddr*>(&name), &length) < 0) {
    ThrowErrno(env, "getsockname", errno);
  }
  uint16_t port = name.ss_family == AF_INET ? reinterpret_cast<struct sockaddr_in*>(&name)->sin_port
                                            : reinterpret_cast<struct sockaddr_in6*>(&name)->sin6_port;
  return Napi::Number::New(env, ntohs(port));
}

// closeDescriptor(fd): for listeners opened here that no net.Server took over.
Napi::Value CloseDescriptor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) ThrowType(env, "closeDescriptor(fd): fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd >= 0 && close(fd) < 0 && errno != EBADF) ThrowErrno(env, "close", errno);
  return env.Undefined();
}

}  // namespace shardvpn
