// Turning failed system calls into JavaScript exceptions that name the call and the errno.
#pragma once
#include <napi.h>
#include <string>

namespace shardvpn {

// Throws Error("<call>: <ERRNAME> (<strerror>)") with .code = "ERRNAME", .errno, .syscall.
[[noreturn]] void ThrowErrno(Napi::Env env, const std::string& call, int err);

// Throws a TypeError / RangeError with the given message.
[[noreturn]] void ThrowType(Napi::Env env, const std::string& message);
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message);

// Reports an exception left pending by a JavaScript callback invoked from a libuv callback
// (there is no JavaScript caller to hand it to), as process 'uncaughtException'.
void ReportPendingException(Napi::Env env);

}  // namespace shardvpn
