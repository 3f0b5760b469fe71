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

// The kernel's copy_map_value: a value's bytes into an element, except
// its struct bpf_spin_lock (MapSpec::spin_lock_offset), which keeps what
// the element holds, so an update never takes or releases a lock another
// thread holds. A fresh element's lock starts unlocked (`fresh`).
inline void copy_map_value(const MapSpec& spec, void* dst, const void* src, bool fresh = false) {
  auto* d = static_cast<uint8_t*>(dst);
  const auto* s = static_cast<const uint8_t*>(src);
  const int32_t lock = spec.spin_lock_offset;
  if (lock < 0 || uint32_t(lock) + 4 > spec.value_size) {
    std::memcpy(d, s, spec.value_size);
    return;
  }
  std::memcpy(d, s, size_t(lock));
  std::memcpy(d + lock + 4, s + lock + 4, spec.value_size - uint32_t(lock) - 4);
  if (fresh) std::memset(d + lock, 0, 4);
}

// sched_getcpu(), 0 when it fails.
unsigned default_cpu();

}  // namespace sb::rt::map_support
