#include "errors.h"

#include <string.h>
#include <uv.h>

namespace shardvpn {

void ThrowErrno(Napi::Env env, const std::string& call, int err) {
  // uv_err_name maps a negated errno to its symbolic name ("EPERM", "EADDRINUSE", ...).
  const char* name = uv_err_name(-err);
  std::string message = call + ": " + name + " (" + strerror(err) + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, name));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, call));
  throw error;
}

void ThrowType(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

void ThrowRange(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, message);
}

void ReportPendingException(Napi::Env env) {
  if (!env.IsExceptionPending()) return;
  Napi::Error error = env.GetAndClearPendingException();
  napi_fatal_exception(env, error.Value());
}

}  // namespace shardvpn
