// What every map type's implementation shares (not part of the API): the
// allocation limits, sizes checked without overflow, errors naming the
// map, and the CPU a program runs on.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/maps/maps.h"

namespace sb::rt::map_support {

// Limits on what one map may allocate (the kernel has its own; these keep
// a hostile object file from asking for terabytes).
constexpr uint64_t kMaxKeySize = 512;  // the kernel's MAX_BPF_STACK
constexpr uint64_t kMaxValueSize = 64ull << 20;
constexpr uint64_t kMaxMapBytes = 1ull << 30;

inline uint64_t round8(uint64_t n) { return (n + 7) & ~uint64_t(7); }

// Throws sb::Error("map 'NAME'", what).
[[noreturn]] void fail(const MapSpec& spec, const std::string& what);

// Bytes for `count` elements of `stride` bytes (times `copies`), checked
// against kMaxMapBytes without overflowing.
size_t checked_bytes(const MapSpec& spec, uint64_t stride, uint64_t count, uint64_t copies = 1);

inline uint32_t index_of(const void* key) {
  uint32_t i;
  std::memcpy(&i, key, 4);
  return i;
}

inline std::vector<uint8_t> index_key(uint32_t i) {
  std::vector<uint8_t> k(4);
  std::memcpy(k.data(), &i, 4);
  return k;
}

inline std::vector<uint8_t> bytes(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  return {b, b + n};
}

// sched_getcpu(), 0 when it fails.
unsigned default_cpu();

}  // namespace sb::rt::map_support
