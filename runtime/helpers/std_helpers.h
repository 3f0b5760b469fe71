// The kernel's helper functions, by the kernel's ids, for programs compiled
// with `clang -target bpf`, and the Environment they work on: the maps a
// program's object defines, the trace_printk output, the ranges
// probe_read may read.
//
//   id   helper                 here
//   1    map_lookup_elem        Map::lookup; null for a handle not from this Environment
//   2    map_update_elem        Map::update (flags BPF_ANY/NOEXIST/EXIST)
//   3    map_delete_elem        Map::remove
//   4    probe_read             copy from a readable range (add_readable, or any
//                               map's memory); otherwise zero-fill, -EFAULT
//   5    ktime_get_ns           CLOCK_MONOTONIC (or EnvironmentOptions::clock)
//   6    trace_printk           printf subset into the trace buffer (take_trace)
//   7    get_prandom_u32        splitmix64 sequence (EnvironmentOptions::prandom_seed)
//   8    get_smp_processor_id   Environment::current_cpu(): the per-CPU maps' copy
//   42   get_numa_node_id       0 (one node)
//   87-89  map_push/pop/peek_elem  Map::push / pop / peek (queue, stack, bloom filter)
//   125  ktime_get_boot_ns      CLOCK_BOOTTIME (or EnvironmentOptions::clock)
//   93, 94  spin_lock, spin_unlock  the map value's struct bpf_spin_lock (a u32 word)
//   10, 11, 28  l3/l4_csum_replace, csum_diff (runtime/helpers/csum_helpers.h)
//   18, 19, 21  skb_vlan_push/pop, skb_set_tunnel_key (runtime/progtypes/skb_helpers.h)
//   13, 23, 25, 51  clone_redirect, redirect, perf_event_output, redirect_map (runtime/progtypes/packet_run.h)
//   38, 43  skb_change_tail, skb_change_head (runtime/progtypes/skb_helpers.h)
//   69   fib_lookup             the Environment's routes (runtime/progtypes/fib_lookup.h)
//   12   tail_call              ProgArrayMap slot -> the run's engine (runtime/helpers/tail_call.h):
//                               index >= max_entries, 33 tail calls made, or an empty
//                               slot (counted) fall through with r0 = 0
//   9, 26  skb_store_bytes, skb_load_bytes (runtime/progtypes/skb_helpers.h)
//   44, 54, 65, 188  xdp_adjust_head / meta / tail, xdp_get_buff_len (runtime/progtypes/xdp_helpers.h)
//   8, 14-16, 27, 67, 109, 112-115, 117, 173, 174  the tracing helpers (runtime/helpers/tracing_helpers.h)
//   130  ringbuf_output         RingBufMap::output
//   131  ringbuf_reserve        RingBufMap::reserve
//   132  ringbuf_submit         RingBufMap::commit
//   133  ringbuf_discard        RingBufMap::commit(discard)
// Note that id 5 is "unwind" in the conformance suite's table
// (HelperTable::conformance()); the two tables are separate.
//
// trace_printk accepts the kernel's conversions: %d %i %u %x %X %c %s %p
// %px and %%, with flags "-+ #0", a width, a precision, and the length
// modifiers h, hh, l, ll, z (without l/ll/z a value is taken as 32 bits);
// at most three arguments. A %s string is read only from readable memory
// (see probe_read) and prints empty otherwise, as in the kernel. The format
// itself is the program's own memory (the kernel's verifier contract) and
// must be NUL-terminated within fmt_size. Each call adds one line to the
// trace buffer (a newline is appended unless the text ends with one), as
// each call is one event in the kernel's trace_pipe; it returns the length
// of the formatted text.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "frontend/elf_loader.h"
#include "runtime/helpers/helpers.h"
#include "runtime/maps/maps.h"
#include "runtime/progtypes/fib_lookup.h"

namespace sb::rt {

struct EnvironmentOptions {
  unsigned num_cpus = 0;                  // copies in per-CPU maps; 0: the host's CPU count
  std::function<unsigned()> current_cpu;  // the copy a program sees; null: sched_getcpu()
  std::function<uint64_t()> clock;        // ktime_get_ns; null: CLOCK_MONOTONIC
  uint64_t prandom_seed = 0;              // get_prandom_u32's sequence; 0: seeded from getrandom()
};

// Owns maps and the helpers' state. Create maps (or load objects) before
// running programs; lookups of maps by handle, map operations, tracing and
// probe_read may then happen from any number of threads.
class Environment : public HelperContext {
 public:
  explicit Environment(EnvironmentOptions opts = {});

  // --- maps ---
  // Throws sb::Error on an unsupported type, bad sizes or a duplicate name.
  Map& create_map(const MapSpec& spec);
  Map* find_map(std::string_view name) const;  // null when absent
  template <typename T>
  T* find(std::string_view name) const {       // null when absent or of another type
    return dynamic_cast<T*>(find_map(name));
  }
  Map* map_from_handle(uint64_t handle) const;  // null unless one of these maps
  RingBufMap* ring_holding(uint64_t sample) const;  // the ring buffer a reserved sample is in
  std::vector<Map*> maps() const;                  // in creation order

  // --- programs from clang objects: creates the object's maps here ---
  bpf::ElfProgram load_elf(const std::string& path, const bpf::ElfSelection& which = {});
  bpf::ElfProgram load_elf(std::span<const uint8_t> bytes, const std::string& name,
                           const bpf::ElfSelection& which = {});
  // Every program of the object (bpf::list_elf_programs), sharing one set
  // of its maps.
  std::vector<bpf::ElfProgram> load_elf_all(std::span<const uint8_t> bytes, const std::string& name);

  // --- trace_printk ---
  void trace(std::string_view text);  // appends (and calls the sink, if set)
  std::string take_trace();            // everything traced since the last call
  void set_trace_sink(std::function<void(std::string_view)> sink);

  // --- probe_read: memory a program may copy from besides map memory ---
  void add_readable(const void* addr, size_t size);
  bool readable(uint64_t addr, uint64_t size) const;
  uint64_t readable_from(uint64_t addr) const;  // readable bytes from addr on (0: none)

  // --- the other helpers' sources ---
  uint64_t now_ns() const;   // ktime_get_ns
  uint64_t boot_ns() const;  // ktime_get_boot_ns: CLOCK_BOOTTIME (or EnvironmentOptions::clock)
  uint32_t prandom_u32();
  unsigned num_cpus() const { return opts_.num_cpus; }  // the copies per-CPU maps keep
  unsigned current_cpu() const;  // get_smp_processor_id: the copy per-CPU maps give a program

  // --- bpf_fib_lookup's routing table (runtime/progtypes/fib_lookup.h) ---
  void add_fib_route(const FibRoute& route);
  std::vector<FibRoute> fib_routes() const;

  std::vector<HostRange> host_ranges() const override;
  std::optional<bpf::MapUse> map_use(uint64_t handle) const override;

 private:
  EnvironmentOptions opts_;
  mutable std::shared_mutex mutex_;  // guards maps_, by_handle_, readable_
  std::vector<std::unique_ptr<Map>> maps_;
  std::unordered_map<uint64_t, Map*> by_handle_;
  std::vector<HostRange> readable_;
  std::vector<FibRoute> routes_;  // guarded by mutex_
  std::mutex trace_mutex_;
  std::string trace_;
  std::function<void(std::string_view)> sink_;
  std::atomic<uint64_t> prandom_state_;
};

// The map with this handle in the Environment that is the running
// program's helper context (HelperContext::current()); null otherwise.
Map* current_map(uint64_t handle);

// The helpers above, with `env` as their context. `env` must outlive every
// run with this table. Embedders add more with HelperTable::add.
HelperTable standard_helpers(Environment& env);

}  // namespace sb::rt
