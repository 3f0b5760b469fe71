// What a trampoline calls around each program (frontend/trampoline.h,
// Bindings::prog_enter / prog_exit), as the kernel's __bpf_prog_enter and
// __bpf_prog_exit: the recursion guard and the statistics.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "runtime/exec/run_stats.h"

namespace sb::rt {

class HelperContext;

// Lives in the trampoline's frame (tramp::Frame::run_ctx); the
// trampoline writes cookie, func_ip and frame (frontend/trampoline.cpp),
// enter and exit the rest. While its program runs it is the thread's
// current run context (current_run_ctx), as the kernel's current->bpf_ctx:
// what get_attach_cookie, get_func_ip, get_stack and get_stackid read.
struct RunCtx {
  // A call trampoline's (fentry, fmod_ret, fexit) r10: its native frame,
  // where the prologue saved the caller's frame pointer and above which
  // the return address into the caller lies (backends/native_abi.h,
  // NativeEntryFrame); 0 in a probe, whose programs' ctx is the pt_regs.
  uint64_t frame;
  uint64_t cookie;               // at ctx - 48 in a call trampoline's frame
  HelperContext* saved_context;  // the helper context before this program's run
  uint64_t func_ip;              // the function (or probed instruction) the program is attached to
  RunCtx* prev;                  // the run context before this program's run
};
static_assert(sizeof(RunCtx) == 40, "frontend/trampoline.cpp reserves 40 bytes (tramp::kRunCtxBytes)");
static_assert(offsetof(RunCtx, cookie) == 8 && offsetof(RunCtx, func_ip) == 24,
              "frontend/trampoline.h writes them at kRunCtxCookie and kRunCtxFuncIp");
// The run context of the program running on this thread through a
// trampoline or probe, or null.
RunCtx* current_run_ctx();

struct ProgState {  // one per attached program
  bool stats = false;           // count runs and time them (runtime/exec/cycle_clock.h)
  bool recursion_guard = true;  // skip the program when it is already running on this thread
  RunStats runs;  // count and read_ticks() units, per thread; stats_of converts
  std::atomic<uint64_t> misses{0};  // runs skipped by the recursion guard
  // The helpers' context (its maps, the VM) made current around each run,
  // as sb_code_run does; null: the program calls none that need one.
  HelperContext* context = nullptr;
};

// The calling thread's guard state, at one fixed offset from its thread
// pointer (guard_tls_offset), so that a host trampoline runs the common
// enter and exit inline (frontend/trampoline.h, Bindings::guard_tls): the
// current run context, and the programs running on this thread through a
// trampoline, innermost last (depth of them).
inline constexpr uint32_t kMaxNesting = 31;
struct ThreadGuard {
  RunCtx* run_ctx;
  uint32_t depth;
  const ProgState* running[kMaxNesting];
};
int64_t guard_tls_offset();

struct ProgStats {
  uint64_t run_count, run_time_ns, misses;
};
ProgStats stats_of(const ProgState& s);

// Which trampoline images this thread is inside (runtime/hook/trampoline.h
// frees a replaced image once no thread is): a trampoline pushes its
// image's token on entry, before it calls anything, and pops it just
// before it returns, with plain stores to the thread's own memory, found
// at a fixed offset from the thread pointer (frontend/trampoline.h,
// Bindings::in_flight_tls). No lock prefix and no line shared between
// threads: two `lock add`s on one counter per call cost about 8 ns.
// Deeper nesting than the stack holds still counts the depth, and then
// the thread counts as inside every image; so does a token 0 on its stack
// (the return dispatch holds one while it calls into an image).
inline constexpr uint32_t kInFlightCapacity = 63;
struct InFlightStack {
  uint64_t depth;
  uint64_t token[kInFlightCapacity];
};
// The calling thread's stack as an offset from its thread pointer: the same
// in every thread (initial-exec TLS of a module loaded at start-up).
int64_t in_flight_tls_offset();
// For each of `n` tokens, sets hit[i] when the calling thread is inside
// that image (every hit[i] when its nesting overflowed the stack).
// Async-signal-safe: a stop round's handler runs it on each thread.
// hit[] is written with __atomic_store_n (no library call: it runs in the
// handler, which ThreadSanitizer builds leave uninstrumented).
void mark_in_flight(const uint64_t* tokens, size_t n, uint8_t* hit);

// Return probes (uretprobe), as the kernel's uprobes do them: the probe
// at the function's entry replaces the return address on the stack with
// the return landing (frontend/trampoline.h, lower_return_landing) and
// keeps the real one on this thread's return stack; the landing's
// dispatch pops it, runs the site's uretprobe programs with the pt_regs
// at the return and goes on there. The stack is per thread, so threads
// and recursion each find their own return. An entry whose frame is gone
// without returning (longjmp, an exception thrown through the function)
// is dropped once the stack pointer shows it (below the current one), as
// the kernel's cleanup_return_instances. A site is never freed: a
// thread may hold its address in its return stack at any time.
inline constexpr uint32_t kMaxReturnDepth = 64;  // as the kernel's MAX_URETPROBE_DEPTH
struct ReturnSite {
  // The uretprobe programs (lower_return's image); null: none linked.
  std::atomic<uint64_t (*)(void*)> programs{nullptr};
  std::atomic<uint64_t> misses{0};  // returns not caught: the thread's return stack was full
};

// A new site, kept for the life of the process (on a process-wide list, so
// that it stays reachable: leak checkers count it as in use, which it is).
ReturnSite* new_return_site();

extern "C" {
// The probe calls it with its pt_regs: catches the return of the call
// being entered (regs' sp points at its return address).
void sb_uretprobe_enter(uint64_t* regs, ReturnSite* site, uint64_t landing);
// The landing calls it with the pt_regs at the return: sets their ip to
// the real return address, runs the site's programs, returns where to go on.
uint64_t sb_uretprobe_dispatch(uint64_t* regs);
// `run_ctx` may be null (a guest's trampoline, its run context in guest
// memory): then no run context is made current.
// Returns 0 to skip the program (it is already active on this thread, or
// 31 programs are), otherwise the start in read_ticks() units (or 1 without
// statistics). The trampoline calls prog_exit either way, with this value.
uint64_t sb_tramp_prog_enter(ProgState* state, RunCtx* run_ctx);
void sb_tramp_prog_exit(ProgState* state, uint64_t start, RunCtx* run_ctx);
}

}  // namespace sb::rt
