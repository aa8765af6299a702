// The (memory, at, length) arguments of the packet checks' verify(): a packet where it lies in
// a receive batch, read in place.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "errors.h"

namespace shardvpn {

struct PacketRange {
  const uint8_t* data;
  size_t length;
};

// memory[at, at + length) of info[0..2], or a TypeError / RangeError naming `what` (no sum that
// can overflow: the bounds are compared one at a time).
inline PacketRange PacketArgs(const Napi::CallbackInfo& info, const std::string& what) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array || !info[1].IsNumber() ||
      !info[2].IsNumber()) {
    ThrowType(env, what + "(memory: Uint8Array, at: number, length: number)");
  }
  auto memory = info[0].As<Napi::Uint8Array>();
  const double at = info[1].As<Napi::Number>().DoubleValue();
  const double length = info[2].As<Napi::Number>().DoubleValue();
  const double size = static_cast<double>(memory.ByteLength());
  // Negated comparisons so that NaN fails them too.
  if (!(at >= 0 && length >= 0 && at <= size && length <= size - at)) ThrowRange(env, what + ": range outside memory");
  return {memory.Data() + static_cast<size_t>(at), static_cast<size_t>(length)};
}

}  // namespace shardvpn
