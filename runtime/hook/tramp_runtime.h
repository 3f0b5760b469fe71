// What a trampoline calls around each program (frontend/trampoline.h,
// Bindings::prog_enter / prog_exit), as the kernel's __bpf_prog_enter and
// __bpf_prog_exit: the recursion guard and the statistics.
#pragma once

#include <atomic>
#include <cstdint>

namespace sb::rt {

struct RunCtx {  // lives in the trampoline's frame (tramp::Frame::run_ctx)
  uint64_t cookie;
  uint64_t reserved;
};

struct ProgState {  // one per attached program
  bool stats = false;           // count runs and time them (runtime/exec/cycle_clock.h)
  bool recursion_guard = true;  // skip the program when it is already running on this thread
  std::atomic<uint64_t> run_count{0};
  std::atomic<uint64_t> run_ticks{0};  // read_ticks() units; stats_of converts
  std::atomic<uint64_t> misses{0};  // runs skipped by the recursion guard
};

struct ProgStats {
  uint64_t run_count, run_time_ns, misses;
};
ProgStats stats_of(const ProgState& s);

extern "C" {
// Returns 0 to skip the program (it is already active on this thread, or
// 31 programs are), otherwise the start in read_ticks() units (or 1 without
// statistics). The trampoline calls prog_exit either way, with this value.
uint64_t sb_tramp_prog_enter(ProgState* state, RunCtx* run_ctx);
void sb_tramp_prog_exit(ProgState* state, uint64_t start, RunCtx* run_ctx);
}

}  // namespace sb::rt
