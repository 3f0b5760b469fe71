#include "runtime/maps/stack_trace.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "runtime/maps/map_support.h"
#include "runtime/trace/build_id.h"

namespace sb::rt {

using namespace map_support;

namespace {

constexpr size_t kMaxDepth = 127;  // sysctl kernel.perf_event_max_stack
// map_flags the kernel accepts (STACK_CREATE_FLAG_MASK): BPF_F_NUMA_NODE,
// BPF_F_RDONLY, BPF_F_WRONLY and BPF_F_STACK_BUILD_ID.
constexpr uint32_t kNumaNode = 4, kRdonly = 8, kWronly = 16, kBuildId = 32;

uint32_t round_up_pow2(uint32_t n) {
  uint32_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

}  // namespace

StackTraceMap::StackTraceMap(MapSpec spec) : Map(std::move(spec)) {
  const MapSpec& s = this->spec();
  if (s.flags & ~(kNumaNode | kRdonly | kWronly | kBuildId))
    fail(s, fmt::format("map_flags {:#x} are not allowed", s.flags));
  build_ids_ = s.flags & kBuildId;
  elem_ = build_ids_ ? sizeof(StackBuildId) : 8;
  if (s.value_size % elem_ != 0 || s.value_size == 0 || s.value_size / elem_ > kMaxDepth)
    fail(s, build_ids_ ? fmt::format("value_size {} must be a multiple of 32 of at most {} (a struct "
                                     "bpf_stack_build_id per frame, at most perf_event_max_stack of them)",
                                     s.value_size, kMaxDepth * 32)
                       : fmt::format("value_size {} must be a multiple of 8 of at most {} (an ip per u64, at most "
                                     "perf_event_max_stack of them)",
                                     s.value_size, kMaxDepth * 8));
  if (s.max_entries > 1u << 31) fail(s, fmt::format("max_entries {} is more than 2^31", s.max_entries));
  depth_ = s.value_size / elem_;
  const uint32_t n = round_up_pow2(s.max_entries);
  checked_bytes(s, s.value_size + 8, n);
  hash_.assign(n, 0);
  nr_.assign(n, 0);
  data_.assign(size_t(n) * s.value_size, 0);
}

int64_t StackTraceMap::stack_id(std::span<const uint64_t> trace, uint64_t flags) {
  const size_t skip = flags & kStackSkipMask;
  if (trace.size() <= skip) return -EFAULT;  // nothing left after the skipped frames
  const std::span<const uint64_t> ips = trace.subspan(skip, std::min(trace.size() - skip, depth_));
  const uint32_t hash = jhash2(ips.data(), uint32_t(ips.size() * 2), 0);  // of the ips, build ids or not
  const uint32_t id = hash & (buckets() - 1);
  // What the bucket holds: the ips, or their build ids and offsets.
  StackBuildId entries[kMaxDepth];
  const uint8_t* value = reinterpret_cast<const uint8_t*>(ips.data());
  if (build_ids_) {
    build_id_offsets(ips.data(), ips.size(), entries);
    value = reinterpret_cast<const uint8_t*>(entries);
  }
  const size_t len = ips.size() * elem_;
  std::lock_guard lock(mutex_);
  const bool used = nr_[id] != 0;
  const bool hash_matches = used && hash_[id] == hash;
  uint8_t* bucket = &data_[size_t(id) * spec().value_size];
  if (hash_matches && (flags & kStackFastCmp)) return id;
  // The kernel takes a new bucket before it compares (build ids) or
  // before it frees the one replaced.
  if (build_ids_ && used_ == spec().max_entries) return -ENOMEM;
  if (hash_matches && nr_[id] == ips.size() && std::memcmp(bucket, value, len) == 0) return id;
  if (used && !(flags & kStackReuseId)) return -EEXIST;
  if (used_ == spec().max_entries) return -ENOMEM;
  if (!used) ++used_;
  std::memcpy(bucket, value, len);
  std::memset(bucket + len, 0, spec().value_size - len);
  hash_[id] = hash;
  nr_[id] = uint32_t(ips.size());
  return id;
}

bool StackTraceMap::copy(uint32_t id, void* value) const {
  std::lock_guard lock(mutex_);
  if (id >= buckets() || nr_[id] == 0) return false;
  std::memcpy(value, &data_[size_t(id) * spec().value_size], spec().value_size);  // zero past nr
  return true;
}

int64_t StackTraceMap::remove(const void* key) {
  const uint32_t id = index_of(key);
  std::lock_guard lock(mutex_);
  if (id >= buckets()) return -E2BIG;
  if (nr_[id] == 0) return -ENOENT;
  nr_[id] = 0;
  hash_[id] = 0;
  std::fill_n(&data_[size_t(id) * spec().value_size], spec().value_size, 0);
  --used_;
  return 0;
}

std::vector<MapEntry> StackTraceMap::entries() const {
  std::vector<MapEntry> out;
  std::lock_guard lock(mutex_);
  for (uint32_t id = 0; id < buckets(); ++id)
    if (nr_[id]) out.push_back({index_key(id), {bytes(&data_[size_t(id) * spec().value_size], spec().value_size)}});
  return out;
}

}  // namespace sb::rt
