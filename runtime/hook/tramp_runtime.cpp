#include "runtime/hook/tramp_runtime.h"

#include <time.h>

#include <array>

namespace sb::rt {

namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// The guard's "active" counters are per thread, as the kernel's are per
// CPU: a program running on another thread is not recursion. This is the
// one piece of thread-local state in the library; it holds no pointers
// beyond the programs' lifetimes that matter (an entry is only compared).
struct ActiveSlot {
  const ProgState* state;
  uint32_t depth;
};
thread_local std::array<ActiveSlot, 64> t_active{};

uint32_t* depth_of(const ProgState* s) {
  ActiveSlot* free_slot = nullptr;
  for (ActiveSlot& a : t_active) {
    if (a.state == s) return &a.depth;
    if (!free_slot && a.depth == 0) free_slot = &a;
  }
  if (!free_slot) return nullptr;  // more than 64 programs nested on one thread
  free_slot->state = s;
  return &free_slot->depth;
}

}  // namespace

ProgStats stats_of(const ProgState& s) {
  return {s.run_count.load(), s.run_time_ns.load(), s.misses.load()};
}

extern "C" uint64_t sb_tramp_prog_enter(ProgState* s, RunCtx*) {
  if (s->recursion_guard) {
    uint32_t* depth = depth_of(s);
    if (!depth || ++*depth != 1) {
      s->misses.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
  }
  return s->stats ? now_ns() : 1;
}

extern "C" void sb_tramp_prog_exit(ProgState* s, uint64_t start, RunCtx*) {
  if (s->stats && start) {
    s->run_count.fetch_add(1, std::memory_order_relaxed);
    s->run_time_ns.fetch_add(now_ns() - start, std::memory_order_relaxed);
  }
  if (s->recursion_guard)
    if (uint32_t* depth = depth_of(s); depth && *depth) --*depth;
}

}  // namespace sb::rt
