// BPF_MAP_TYPE_BLOOM_FILTER (kernel/bpf/bloom_filter.c): no keys
// (key_size 0), values of value_size bytes added with push (helper 87,
// flags must be BPF_ANY) and tested with peek (helper 89: 0 when the value
// may have been added, -ENOENT when it certainly was not). map_extra's low
// 4 bits give the number of hash functions (0: 5; higher bits: -EINVAL at
// creation). The bit array is sized as the kernel sizes it
// (max_entries * hashes * 7 / 5 bits, rounded up to a power of two), but
// the hash differs from the kernel's (jhash with a random seed there), so
// which absent values collide (false positives) differs, as it does from
// one kernel map to the next; values that were added are always found.
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
  uint64_t mask_;
  std::unique_ptr<std::atomic<uint64_t>[]> words_;
};

}  // namespace sb::rt
