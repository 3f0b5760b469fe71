// BPF_MAP_TYPE_BLOOM_FILTER (kernel/bpf/bloom_filter.c): no keys
// (key_size 0), values of value_size bytes added with push (helper 87,
// flags must be BPF_ANY) and tested with peek (helper 89: 0 when the value
// may have been added, -ENOENT when it certainly was not). map_extra's low
// 4 bits give the number of hash functions (0: 5; higher bits: -EINVAL at
// creation). The bit array is sized as the kernel sizes it
// (max_entries * hashes * 7 / 5 bits, rounded up to a power of two), and
// hash i is the kernel's: jhash2 of a value whose size is a multiple of 4
// (jhash otherwise) with seed + i. The seed is 0: the kernel's with
// BPF_F_ZERO_SEED, where false positives are then the kernel's exactly
// (KernelMaps.BloomFilterAsTheKernel); without that flag the kernel draws a
// random seed per map, of which 0 is one, so runs here stay repeatable.
#pragma once

#include <atomic>
#include <memory>

#include "runtime/maps/maps.h"

namespace sb::rt {

class BloomFilterMap : public Map {
 public:
  explicit BloomFilterMap(MapSpec spec);
  int64_t push(const void* value, uint64_t flags) override;
  int64_t peek(void* value) override;
  int64_t update(const void* key, const void* value, uint64_t flags) override { return push(value, flags); }

  uint32_t hashes() const { return hashes_; }
  uint64_t bits() const { return mask_ + 1; }

 private:
  uint64_t bit_of(const void* value, uint32_t i) const;
  uint32_t hashes_;
  uint32_t words_per_value_;  // value_size / 4 when a whole number of words (jhash2), else 0 (jhash)
  uint64_t mask_;
  std::unique_ptr<std::atomic<uint64_t>[]> words_;
};

}  // namespace sb::rt
