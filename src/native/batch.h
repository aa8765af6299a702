// A batch of packets described by the caller: one block of memory (a Uint8Array, possibly over
// a SharedArrayBuffer such as ring slots) plus, per packet, its start offset and its length.
// Reading fills lengths; writing reads them. Nothing is copied: the kernel reads or writes the
// caller's memory directly.
#pragma once
#include <napi.h>
#include <stddef.h>
#include <stdint.h>

namespace shardvpn {

struct Batch {
  uint8_t* memory = nullptr;
  size_t memoryLength = 0;
  uint32_t* offsets = nullptr;
  uint32_t* lengths = nullptr;
  size_t count = 0;
};

// Parses (memory, offsets, lengths, count) starting at info[first]. When `capacity` > 0 the
// batch is for reading: every packet must have `capacity` bytes of room. Otherwise each packet's
// own length must fit. Throws TypeError/RangeError naming `call` when the description is bad.
Batch ParseBatch(const Napi::CallbackInfo& info, size_t first, const char* call, size_t capacity);

// A Uint8Array argument's bytes (any backing store, SharedArrayBuffer included).
uint8_t* BytesOf(const Napi::CallbackInfo& info, size_t index, const char* call, const char* what,
                 size_t* length);

}  // namespace shardvpn
