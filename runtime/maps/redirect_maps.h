// The maps XDP programs redirect through with bpf_redirect_map (helper 51,
// runtime/progtypes/redirect.h): BPF_MAP_TYPE_DEVMAP and DEVMAP_HASH
// (network devices by ifindex: a u32, or struct bpf_devmap_val {u32
// ifindex; u32 prog} of 8 bytes), CPUMAP (CPUs: a u32 queue size, or
// struct bpf_cpumap_val of 8 bytes) and XSKMAP (AF_XDP sockets: a u32).
//
// User space has no devices, CPUs' kthreads or sockets to point at, so a
// slot holds what was written: any non-zero ifindex is a device, any
// non-zero queue size a CPU, any non-zero value a socket; writing 0 (an
// ifindex or queue size) empties a slot, as the kernel's updates do
// (the kernel would also refuse an ifindex with no device: -ENODEV, and a
// queue size above 16384: -EOVERFLOW, which is kept). DEVMAP, CPUMAP and
// XSKMAP are arrays (key < max_entries, else -E2BIG; BPF_NOEXIST is
// -EEXIST); DEVMAP_HASH is a hash of u32 keys (-EEXIST, -ENOENT, -E2BIG).
// A program may look up a devmap's slot (its value, read-only); the
// verifier refuses lookups of the others, as the kernel's.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "runtime/maps/maps.h"

namespace sb::rt {

class RedirectMap : public Map {
 public:
  explicit RedirectMap(MapSpec spec);
  void* lookup(const void* key) override;  // a devmap's value, or null
  int64_t update(const void* key, const void* value, uint64_t flags) override;
  int64_t remove(const void* key) override;
  std::vector<HostRange> ranges() const override { return {storage_.range()}; }
  std::vector<MapEntry> entries() const override;

  bool hashed() const { return type() == MapType::DevMapHash; }
  // Whether bpf_redirect_map finds slot `key` (what lookup would give).
  bool has(uint32_t key) const;

 private:
  uint8_t* value_at(uint32_t slot) const { return storage_.data() + size_t(slot) * stride_; }
  size_t stride_;
  PageMemory storage_;
  mutable std::mutex mutex_;
  std::map<uint32_t, uint32_t> slots_;  // key -> slot (the key itself for the arrays)
  std::vector<uint32_t> free_;          // DEVMAP_HASH
};

}  // namespace sb::rt
