#include "runtime/maps/bloom_filter.h"

#include <fmt/format.h>

#include "runtime/maps/map_support.h"

namespace sb::rt {

using namespace map_support;

BloomFilterMap::BloomFilterMap(MapSpec spec) : Map(std::move(spec)) {
  const MapSpec& s = this->spec();
  if (s.map_extra & ~uint64_t(0xf))
    fail(s, fmt::format("map_extra {:#x}: only bits 0-3 (the number of hash functions) may be set", s.map_extra));
  hashes_ = s.map_extra ? uint32_t(s.map_extra) : 5;
  // The kernel's sizing: 7/5 approximates 1/ln 2; at least one 64-bit word.
  uint64_t n = uint64_t(s.max_entries) * hashes_ / 5 * 7;
  if (n > (1ull << 32)) n = 1ull << 32;
  uint64_t bits = 64;
  while (bits < n) bits <<= 1;
  checked_bytes(s, bits / 8, 1);
  mask_ = bits - 1;
  words_ = std::make_unique<std::atomic<uint64_t>[]>(size_t(bits / 64));
  for (uint64_t i = 0; i < bits / 64; ++i) words_[i].store(0, std::memory_order_relaxed);
}

// Hash i of the value: FNV-1a over the bytes, seeded by i, then a
// 64-bit finaliser (splitmix64's) so the low bits spread.
uint64_t BloomFilterMap::bit_of(const void* value, uint32_t i) const {
  const auto* p = static_cast<const uint8_t*>(value);
  uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t(i) * 0x9e3779b97f4a7c15ull);
  for (uint32_t k = 0; k < spec().value_size; ++k) h = (h ^ p[k]) * 0x100000001b3ull;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return (h ^ (h >> 31)) & mask_;
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
