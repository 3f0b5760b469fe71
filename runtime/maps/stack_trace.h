// BPF_MAP_TYPE_STACK_TRACE (kernel/bpf/stackmap.c): the stacks
// bpf_get_stackid (helper 27, runtime/helpers/tracing_helpers.h) stores,
// each in the bucket its id names. Keys are u32 ids, values arrays of u64
// instruction pointers (value_size a multiple of 8, at most 127 of them:
// the kernel's perf_event_max_stack), or with BPF_F_STACK_BUILD_ID arrays
// of struct bpf_stack_build_id (runtime/trace/build_id.h; the bucket is
// still the ips' hash, the comparison the build ids'). There are max_entries rounded up to
// a power of two buckets, and max_entries stacks at most (the kernel
// preallocates that many).
//
// stack_id() is the kernel's __bpf_get_stackid: the bucket is the jhash2
// of the ips (Bob Jenkins' lookup3 hashword, seed 0, as the kernel hashes
// them, so the same stack gets the kernel's id) masked to the bucket
// count. The same stack again gives the same id; another stack in an
// occupied bucket is -EEXIST unless BPF_F_REUSE_STACKID replaces it;
// BPF_F_FAST_STACK_CMP compares only the hashes; more skipped frames
// (flags' low 8 bits) than the stack has is -EFAULT, no free bucket left
// -ENOMEM. Programs cannot look up, update or delete elements (the
// verifier lets only get_stackid take this map). User space: copy() reads
// a bucket's ips zero-padded to value_size (bpf_stackmap_copy), remove()
// frees it (-ENOENT when empty, -E2BIG past the buckets), update is
// -EINVAL, entries() lists the used buckets by id.
// One mutex guards the buckets.
#pragma once

#include <mutex>
#include <span>
#include <vector>

#include "runtime/maps/jhash.h"  // jhash2, the bucket's hash
#include "runtime/maps/maps.h"

namespace sb::rt {

// bpf_get_stackid's flags (include/uapi/linux/bpf.h).
constexpr uint64_t kStackSkipMask = 0xff, kStackUser = 1u << 8, kStackFastCmp = 1u << 9,
                   kStackReuseId = 1u << 10;

class StackTraceMap : public Map {
 public:
  explicit StackTraceMap(MapSpec spec);

  // The id of `trace` (innermost frame first, before flags' skip), or a
  // negative errno as above. Flags beyond the four are the caller's check.
  int64_t stack_id(std::span<const uint64_t> trace, uint64_t flags);
  // bpf_stackmap_copy: value_size bytes into `value`; false when `id` is
  // no bucket or an empty one (-ENOENT).
  bool copy(uint32_t id, void* value) const;

  int64_t update(const void*, const void*, uint64_t) override { return -EINVAL; }
  int64_t remove(const void* key) override;
  std::vector<MapEntry> entries() const override;

  uint32_t buckets() const { return uint32_t(nr_.size()); }
  size_t depth() const { return depth_; }  // frames per value

 private:
  bool build_ids_ = false;  // BPF_F_STACK_BUILD_ID: values are struct bpf_stack_build_id, not ips
  size_t elem_ = 8;         // bytes per frame
  size_t depth_;
  mutable std::mutex mutex_;
  std::vector<uint32_t> hash_, nr_;  // per bucket; nr 0: empty
  std::vector<uint8_t> data_;        // value_size per bucket, zero past nr frames
  uint32_t used_ = 0;                // buckets holding a stack, at most max_entries
};


}  // namespace sb::rt
