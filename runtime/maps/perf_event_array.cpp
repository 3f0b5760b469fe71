#include "runtime/maps/perf_event_array.h"

#include <algorithm>
#include <utility>

#include "runtime/maps/map_support.h"

namespace sb::rt {

using namespace map_support;

namespace {
constexpr uint64_t kIndexMask = 0xffffffffull;       // BPF_F_INDEX_MASK
constexpr uint64_t kCurrentCpu = kIndexMask;         // BPF_F_CURRENT_CPU
constexpr uint64_t kCtxLenMask = 0xfffffull << 32;  // BPF_F_CTXLEN_MASK
}  // namespace

PerfEventArrayMap::PerfEventArrayMap(MapSpec spec, unsigned num_cpus, std::function<unsigned()> current_cpu)
    : Map(std::move(spec)),
      num_cpus_(std::max(1u, num_cpus)),
      current_cpu_(current_cpu ? std::move(current_cpu) : default_cpu) {
  checked_bytes(this->spec(), sizeof(std::optional<unsigned>), this->spec().max_entries);
  slots_.resize(this->spec().max_entries);
  for (unsigned c = 0; c < num_cpus_ && c < slots_.size(); ++c) slots_[c] = c;
}

void PerfEventArrayMap::set_slot(uint32_t index, std::optional<unsigned> cpu) {
  std::lock_guard lock(mutex_);
  if (index >= slots_.size()) fail(spec(), "slot " + std::to_string(index) + " is past max_entries");
  slots_[index] = cpu;
}

int64_t PerfEventArrayMap::output(uint64_t flags, std::span<const uint8_t> data, std::span<const uint8_t> extra) {
  if (flags & ~(kIndexMask | kCtxLenMask)) return -EINVAL;
  const unsigned cpu = current_cpu();
  const uint64_t index = (flags & kIndexMask) == kCurrentCpu ? cpu : flags & kIndexMask;
  std::lock_guard lock(mutex_);
  if (index >= slots_.size()) return -E2BIG;
  if (!slots_[size_t(index)]) return -ENOENT;
  if (*slots_[size_t(index)] != cpu) return -EOPNOTSUPP;
  Record r{uint32_t(index), std::vector<uint8_t>(data.begin(), data.end())};
  r.bytes.insert(r.bytes.end(), extra.begin(), extra.end());
  records_.push_back(std::move(r));
  return 0;
}

std::vector<PerfEventArrayMap::Record> PerfEventArrayMap::take_records() {
  std::lock_guard lock(mutex_);
  return std::exchange(records_, {});
}

}  // namespace sb::rt
