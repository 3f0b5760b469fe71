#include "runtime/hook/tramp_runtime.h"

#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

#include "backends/native_abi.h"

#include "runtime/exec/cycle_clock.h"
#include "runtime/helpers/helpers.h"  // SB_TLS_INITIAL_EXEC
#include "runtime/hook/sanitizer.h"

namespace sb::rt {

namespace {

// The guard's state and the current run context (tramp_runtime.h,
// ThreadGuard): the guard's "active" state is per thread, as the kernel's
// is per CPU (a program running on another thread is not recursion).
// Enter and exit nest like the calls they bracket, so the running programs
// are a stack, and with no program running an enter looks at nothing.
// Initial-exec TLS: one fs-relative access, no __tls_get_addr call, even
// in the shared library (which is loaded with the program, not dlopen'ed
// late; a few hundred bytes of static TLS). Only compared pointers: it
// holds nothing beyond a program's run.
thread_local ThreadGuard t_guard SB_TLS_INITIAL_EXEC;
// Exits come in the reverse order of enters, so the one ending is the top;
// should one ever be missed, the program is found below it.
[[gnu::noinline]] void remove_active(ThreadGuard& a, const ProgState* s) {
  for (uint32_t i = a.depth; i-- > 0;)
    if (a.running[i] == s) {
      for (uint32_t j = i + 1; j < a.depth; ++j) a.running[j - 1] = a.running[j];
      --a.depth;
      return;
    }
}

thread_local InFlightStack t_in_flight SB_TLS_INITIAL_EXEC;
static_assert(offsetof(InFlightStack, token) == 8 && sizeof(InFlightStack::token) / 8 == kInFlightCapacity,
              "frontend/trampoline.cpp writes the depth at +0 and token i at +8 + 8*i");

uintptr_t thread_pointer() {
  uintptr_t tp;
#if defined(__x86_64__)
  asm("mov %%fs:0, %0" : "=r"(tp));  // the TCB's self pointer, as the trampoline reads it
#else
  tp = reinterpret_cast<uintptr_t>(__builtin_thread_pointer());
#endif
  return tp;
}

// Where this thread's `p` lies from the thread pointer: the same in every
// thread for initial-exec TLS.
int64_t from_thread_pointer(const void* p) { return int64_t(reinterpret_cast<uintptr_t>(p) - thread_pointer()); }

}  // namespace

int64_t in_flight_tls_offset() { return from_thread_pointer(&t_in_flight); }

SB_SIGNAL_CONTEXT void mark_in_flight(const uint64_t* tokens, size_t n, uint8_t* hit) {
  const InFlightStack& s = t_in_flight;
  const uint64_t depth = s.depth;
  for (size_t i = 0; i < n; ++i) {
    bool inside = depth > kInFlightCapacity;
    for (uint64_t k = 0; k < depth && k < kInFlightCapacity && !inside; ++k)
      inside = s.token[k] == tokens[i] || s.token[k] == 0;
    if (inside) __atomic_store_n(&hit[i], uint8_t(1), __ATOMIC_RELAXED);
  }
}

namespace {
struct ReturnStack {
  uint32_t depth;
  struct Pending {
    uint64_t ret;  // the real return address
    uint64_t sp;   // where it was on the stack
    ReturnSite* site;
  } entry[kMaxReturnDepth];
};
thread_local ReturnStack t_returns SB_TLS_INITIAL_EXEC;
constexpr const backend::ProbeRegs& kRegs = backend::probe_regs(Arch::X86_64);
}  // namespace

ReturnSite* new_return_site() {
  static std::mutex mu;
  static auto* sites = new std::vector<std::unique_ptr<ReturnSite>>;  // never destroyed: returns may come at exit
  std::lock_guard<std::mutex> lock(mu);
  return sites->emplace_back(std::make_unique<ReturnSite>()).get();
}

extern "C" void sb_uretprobe_enter(uint64_t* regs, ReturnSite* site, uint64_t landing) {
  ReturnStack& r = t_returns;
  const uint64_t sp = regs[kRegs.sp / 8];
  while (r.depth && r.entry[r.depth - 1].sp <= sp) --r.depth;  // frames gone without returning
  if (r.depth == kMaxReturnDepth) {
    site->misses.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto* slot = reinterpret_cast<uint64_t*>(sp);
  r.entry[r.depth++] = {*slot, sp, site};
  *slot = landing;
}

extern "C" uint64_t sb_uretprobe_dispatch(uint64_t* regs) {
  ReturnStack& r = t_returns;
  const uint64_t slot = regs[kRegs.sp / 8] - 8;  // the return popped the landing's address from here
  while (r.depth > 1 && r.entry[r.depth - 1].sp < slot) --r.depth;  // frames gone without returning
  if (!r.depth) {  // unreachable: the landing is only ever a return address this stack recorded
    static const char kMsg[] = "springboard: a uretprobe return with no return address recorded\n";
    (void)!write(2, kMsg, sizeof kMsg - 1);
    abort();
  }
  const ReturnStack::Pending e = r.entry[--r.depth];
  regs[kRegs.ip / 8] = e.ret;  // as the kernel: a return probe's ip is where the function returns to
  // Token 0 holds every image while this thread goes from loading the
  // pointer into the image, which pushes its own.
  InFlightStack& f = t_in_flight;
  if (f.depth < kInFlightCapacity) f.token[f.depth] = 0;
  __atomic_store_n(&f.depth, f.depth + 1, __ATOMIC_RELAXED);
  if (auto programs = e.site->programs.load(std::memory_order_acquire)) programs(regs);
  __atomic_store_n(&f.depth, f.depth - 1, __ATOMIC_RELAXED);
  return e.ret;
}

RunCtx* current_run_ctx() { return t_guard.run_ctx; }

int64_t guard_tls_offset() { return from_thread_pointer(&t_guard); }

ProgStats stats_of(const ProgState& s) {
  const RunTotals t = s.runs.totals();
  return {t.runs, ticks_to_ns(t.ticks), s.misses.load()};
}

extern "C" uint64_t sb_tramp_prog_enter(ProgState* s, RunCtx* rc) {
  tsan_acquire(s);  // published with the image (sanitizer.h)
  if (s->recursion_guard) {
    ThreadGuard& a = t_guard;
    for (uint32_t i = 0; i < a.depth; ++i)
      if (a.running[i] == s) {
        s->misses.fetch_add(1, std::memory_order_relaxed);
        return 0;
      }
    if (a.depth == kMaxNesting) {  // deeper nesting than the stack holds: skipped like recursion
      s->misses.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
    a.running[a.depth++] = s;
  }
  if (s->context && rc) rc->saved_context = ContextScope::exchange(s->context);
  if (rc) {  // null from a caller without one
    rc->prev = t_guard.run_ctx;
    t_guard.run_ctx = rc;
  }
  return s->stats ? read_ticks() : 1;
}

extern "C" void sb_tramp_prog_exit(ProgState* s, uint64_t start, RunCtx* rc) {
  if (start == 0) return;  // skipped by the guard: enter pushed nothing
  if (rc) t_guard.run_ctx = rc->prev;
  if (s->context && rc) ContextScope::exchange(rc->saved_context);
  if (s->stats) s->runs.add(read_ticks() - start);
  if (s->recursion_guard) {
    ThreadGuard& a = t_guard;
    if (a.depth && a.running[a.depth - 1] == s) [[likely]]
      --a.depth;
    else
      remove_active(a, s);
  }
  tsan_release(s);  // before the image's exit count: reclaiming acquires it
}

}  // namespace sb::rt
