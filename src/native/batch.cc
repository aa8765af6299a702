#include "batch.h"

#include <string>

#include "errors.h"

namespace shardvpn {

namespace {
uint32_t* Uint32Of(const Napi::CallbackInfo& info, size_t index, const char* call, const char* what,
                   size_t* length) {
  Napi::Value value = info[index];
  if (!value.IsTypedArray() ||
      value.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    ThrowType(info.Env(), std::string(call) + ": " + what + " must be a Uint32Array");
  }
  auto array = value.As<Napi::Uint32Array>();
  *length = array.ElementLength();
  return array.Data();
}
}  // namespace

uint8_t* BytesOf(const Napi::CallbackInfo& info, size_t index, const char* call, const char* what,
                 size_t* length) {
  Napi::Value value = info[index];
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(info.Env(), std::string(call) + ": " + what + " must be a Uint8Array or Buffer");
  }
  auto array = value.As<Napi::Uint8Array>();
  *length = array.ByteLength();
  return array.Data();
}

Batch ParseBatch(const Napi::CallbackInfo& info, size_t first, const char* call, size_t capacity) {
  Napi::Env env = info.Env();
  Batch batch;
  batch.memory = BytesOf(info, first, call, "memory", &batch.memoryLength);
  size_t offsetCount = 0;
  size_t lengthCount = 0;
  batch.offsets = Uint32Of(info, first + 1, call, "offsets", &offsetCount);
  batch.lengths = Uint32Of(info, first + 2, call, "lengths", &lengthCount);
  if (!info[first + 3].IsNumber()) ThrowType(env, std::string(call) + ": count must be a number");
  double rawCount = info[first + 3].As<Napi::Number>().DoubleValue();
  if (rawCount != static_cast<double>(static_cast<int64_t>(rawCount))) {
    ThrowRange(env, std::string(call) + ": count must be an integer");
  }
  int64_t count = static_cast<int64_t>(rawCount);
  if (count < 0 || static_cast<size_t>(count) > offsetCount ||
      static_cast<size_t>(count) > lengthCount) {
    ThrowRange(env, std::string(call) + ": count " + std::to_string(count) +
                        " exceeds the offsets/lengths arrays");
  }
  batch.count = static_cast<size_t>(count);
  for (size_t i = 0; i < batch.count; i++) {
    size_t need = capacity > 0 ? capacity : batch.lengths[i];
    if (static_cast<size_t>(batch.offsets[i]) + need > batch.memoryLength) {
      ThrowRange(env, std::string(call) + ": packet " + std::to_string(i) + " (offset " +
                          std::to_string(batch.offsets[i]) + ", " + std::to_string(need) +
                          " bytes) lies outside the " + std::to_string(batch.memoryLength) +
                          "-byte memory");
    }
  }
  return batch;
}

}  // namespace shardvpn
