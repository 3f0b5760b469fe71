// BPF_MAP_TYPE_PERF_EVENT_ARRAY: the perf events bpf_perf_event_output
// (helper 25) writes records to, one slot per CPU as libbpf's perf_buffer
// sets them up. Here a slot is a list of the records written to it; slots
// [0, min(max_entries, CPUs)) are open on their own CPU from the start (a
// reader on every CPU, as perf_buffer__new gives), others can be opened or
// closed by the embedder. The helper's rules are the kernel's
// (bpf_perf_event_output / bpf_skb_event_output / bpf_xdp_event_output):
// flags' low 32 bits the slot (BPF_F_CURRENT_CPU: the CPU the program runs
// on), bits 32-51 how many packet bytes to append after the data; an index
// >= max_entries is -E2BIG, a closed slot -ENOENT, a slot open on another
// CPU -EOPNOTSUPP, other flag bits -EINVAL, more packet bytes than the
// packet has -EFAULT. Records keep exactly the bytes written (the kernel's
// perf ring pads each to 8 bytes with its 4-byte size).
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "runtime/maps/maps.h"

namespace sb::rt {

class PerfEventArrayMap : public Map {
 public:
  PerfEventArrayMap(MapSpec spec, unsigned num_cpus, std::function<unsigned()> current_cpu);

  struct Record {
    uint32_t slot = 0;
    std::vector<uint8_t> bytes;
  };
  // Opens slot `index` as an event on `cpu`, or closes it (nullopt).
  void set_slot(uint32_t index, std::optional<unsigned> cpu);
  // bpf_perf_event_output's core: `data` then `extra` (packet bytes) as one
  // record into the slot `flags` names; 0 or a negative errno.
  int64_t output(uint64_t flags, std::span<const uint8_t> data, std::span<const uint8_t> extra);
  // The records written since the last call, in order.
  std::vector<Record> take_records();
  unsigned current_cpu() const { return current_cpu_() % num_cpus_; }

 private:
  unsigned num_cpus_;
  std::function<unsigned()> current_cpu_;
  mutable std::mutex mutex_;
  std::vector<std::optional<unsigned>> slots_;  // the CPU each open slot's event is on
  std::vector<Record> records_;
};

}  // namespace sb::rt
