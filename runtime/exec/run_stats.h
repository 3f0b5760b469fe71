// Run statistics that many threads add to at once and few read (a code's
// runs through the C API, a program's runs in a trampoline), kept as the
// kernel keeps bpf_prog_stats per CPU: each thread adds to a stripe of its
// own with plain loads and stores (no lock prefix: a locked add costs about
// 6 ns, and two threads adding to one counter bounce its cache line), and a
// read sums the stripes.
//
// A thread takes a stripe the first time it adds anything and gives it back
// when it exits; the counts stay in the stripe, and its next owner adds to
// them. Beyond kStripes threads at once, the others share one stripe with
// atomic adds. A sum read while threads add sees each stripe's counts as of
// some moment (runs and ticks of a stripe may be one run apart).
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/helpers/helpers.h"  // SB_TLS_INITIAL_EXEC

namespace sb::rt {

namespace run_stats_detail {
inline constexpr uint32_t kStripes = 32;
inline constexpr uint32_t kShared = kStripes;  // the stripe of threads that found none free
// This thread's stripe + 1; 0: none taken yet. Defined here, constant
// initialised: an access is one TLS load, with no wrapper call.
inline constinit thread_local uint32_t t_stripe SB_TLS_INITIAL_EXEC = 0;
uint32_t take_stripe() noexcept;  // the slow path of the first add on a thread
inline uint32_t stripe() noexcept {
  const uint32_t s = t_stripe;
  return s ? s - 1 : take_stripe();
}
}  // namespace run_stats_detail

struct RunTotals {
  uint64_t runs = 0;
  uint64_t ticks = 0;  // read_ticks() units (runtime/exec/cycle_clock.h)
};

class RunStats {
 public:
  // One run that took `ticks` (0: not timed).
  void add(uint64_t ticks) noexcept {
    using namespace run_stats_detail;
    const uint32_t s = stripe();
    Stripe& st = stripes_[s];
    if (s != kShared) [[likely]] {  // only this thread writes here
      st.runs.store(st.runs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      if (ticks) st.ticks.store(st.ticks.load(std::memory_order_relaxed) + ticks, std::memory_order_relaxed);
      return;
    }
    st.runs.fetch_add(1, std::memory_order_relaxed);
    st.ticks.fetch_add(ticks, std::memory_order_relaxed);
  }
  // Totals carried over from elsewhere (a destroyed code's), atomically.
  void add_totals(const RunTotals& t) noexcept {
    Stripe& st = stripes_[run_stats_detail::kShared];
    st.runs.fetch_add(t.runs, std::memory_order_relaxed);
    st.ticks.fetch_add(t.ticks, std::memory_order_relaxed);
  }
  RunTotals totals() const noexcept {
    RunTotals t;
    for (const Stripe& st : stripes_) {
      t.runs += st.runs.load(std::memory_order_relaxed);
      t.ticks += st.ticks.load(std::memory_order_relaxed);
    }
    return t;
  }

 private:
  struct alignas(64) Stripe {  // a cache line each: no two threads' counts share one
    std::atomic<uint64_t> runs{0}, ticks{0};
  };
  Stripe stripes_[run_stats_detail::kStripes + 1];
};

}  // namespace sb::rt
