#include "runtime/maps/bloom_filter.h"

#include <fmt/format.h>

#include "runtime/maps/jhash.h"
#include "runtime/maps/map_support.h"

namespace sb::rt {

using namespace map_support;

BloomFilterMap::BloomFilterMap(MapSpec spec) : Map(std::move(spec)) {
  const MapSpec& s = this->spec();
  if (s.map_extra & ~uint64_t(0xf))
    fail(s, fmt::format("map_extra {:#x}: only bits 0-3 (the number of hash functions) may be set", s.map_extra));
  hashes_ = s.map_extra ? uint32_t(s.map_extra) : 5;
  // The kernel's sizing, in u32 as there: 7/5 approximates 1/ln 2; at
  // least one 64-bit word; an overflow, or more than 2^31 bits, is 2^32.
  const uint64_t n = uint64_t(s.max_entries) * hashes_;
  uint64_t bits = 1ull << 32;
  if (n <= UINT32_MAX && n / 5 * 7 <= (1ull << 31)) {
    bits = 64;
    while (bits < n / 5 * 7) bits <<= 1;
  }
  words_per_value_ = s.value_size % 4 == 0 ? s.value_size / 4 : 0;
  checked_bytes(s, bits / 8, 1);
  mask_ = bits - 1;
  words_ = std::make_unique<std::atomic<uint64_t>[]>(size_t(bits / 64));
  for (uint64_t i = 0; i < bits / 64; ++i) words_[i].store(0, std::memory_order_relaxed);
}

// Hash i of the value, as the kernel's hash(): seed + i as jhash's initval.
uint64_t BloomFilterMap::bit_of(const void* value, uint32_t i) const {
  constexpr uint32_t kSeed = 0;
  const uint32_t h = words_per_value_ ? jhash2(value, words_per_value_, kSeed + i)
                                      : jhash(value, spec().value_size, kSeed + i);
  return h & mask_;
}

int64_t BloomFilterMap::push(const void* value, uint64_t flags) {
  if (flags != kUpdateAny) return -EINVAL;
  for (uint32_t i = 0; i < hashes_; ++i) {
    const uint64_t b = bit_of(value, i);
    words_[b / 64].fetch_or(uint64_t(1) << (b % 64), std::memory_order_relaxed);
  }
  return 0;
}

int64_t BloomFilterMap::peek(void* value) {
  for (uint32_t i = 0; i < hashes_; ++i) {
    const uint64_t b = bit_of(value, i);
    if (!(words_[b / 64].load(std::memory_order_relaxed) & (uint64_t(1) << (b % 64)))) return -ENOENT;
  }
  return 0;
}

}  // namespace sb::rt
