// BPF_MAP_TYPE_LPM_TRIE (kernel/bpf/lpm_trie.c): keys are the kernel's
// struct bpf_lpm_trie_key { u32 prefixlen; u8 data[key_size - 4]; } with
// the data in network order (most significant bit first); a lookup finds
// the element with the longest prefix, of at most the lookup key's
// prefixlen, whose bits match. Update and delete name an element exactly
// (its prefixlen and that many leading bits).
//
// Semantics as the kernel's: BPF_ANY / BPF_NOEXIST / BPF_EXIST (-EEXIST,
// -ENOENT), -EINVAL for a prefixlen above 8 * (key_size - 4) or other
// flags, -ENOSPC when max_entries elements exist, -ENOENT when deleting an
// absent prefix. The kernel requires BPF_F_NO_PREALLOC and key_size
// 5..260; create_map checks both. An element keeps the key bytes it was
// last written with (the kernel copies the whole key), which entries()
// reports, sorted.
//
// Storage: max_entries preallocated slots (key, value) in page-aligned
// memory, so a value pointer a lookup returns stays put; an index from
// (prefixlen, masked data) to slot; a lookup tries each prefix length in
// use from the longest down, which is O(prefix bits) hash probes.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/maps/maps.h"

namespace sb::rt {

class LpmTrieMap : public Map {
 public:
  explicit LpmTrieMap(MapSpec spec);
  void* lookup(const void* key) override;
  int64_t update(const void* key, const void* value, uint64_t flags) override;
  int64_t remove(const void* key) override;
  std::vector<HostRange> ranges() const override { return {storage_.range()}; }
  std::vector<MapEntry> entries() const override;

  uint32_t max_prefixlen() const { return max_prefixlen_; }
  size_t size() const;

 private:
  // (prefixlen, the data's first prefixlen bits, the rest zero).
  std::string masked(uint32_t prefixlen, const uint8_t* data) const;
  uint8_t* key_at(uint32_t slot) const { return storage_.data() + size_t(slot) * slot_size_; }
  uint8_t* value_at(uint32_t slot) const { return key_at(slot) + key_stride_; }

  uint32_t data_size_, max_prefixlen_;
  size_t key_stride_, slot_size_;
  PageMemory storage_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, uint32_t> index_;
  std::vector<uint32_t> per_length_;  // elements of each prefix length
  std::vector<uint32_t> free_;
};

}  // namespace sb::rt
