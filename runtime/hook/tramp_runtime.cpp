#include "runtime/hook/tramp_runtime.h"

#include <cstddef>

#include "runtime/exec/cycle_clock.h"
#include "runtime/helpers/helpers.h"  // SB_TLS_INITIAL_EXEC
#include "runtime/hook/sanitizer.h"

namespace sb::rt {

namespace {

// The programs running on this thread, innermost last: the guard's
// "active" state is per thread, as the kernel's is per CPU (a program
// running on another thread is not recursion). Enter and exit nest like the
// calls they bracket, so this is a stack, and with no program running an
// enter looks at nothing. Initial-exec TLS: one fs-relative access, no
// __tls_get_addr call, even in the shared library (which is loaded with
// the program, not dlopen'ed late; 256 bytes of static TLS). Only compared
// pointers: it holds nothing beyond a program's run.
constexpr uint32_t kMaxNesting = 31;
struct ActiveStack {
  uint32_t depth;
  const ProgState* running[kMaxNesting];
};
thread_local ActiveStack t_active SB_TLS_INITIAL_EXEC;

// Exits come in the reverse order of enters, so the one ending is the top;
// should one ever be missed, the program is found below it.
[[gnu::noinline]] void remove_active(ActiveStack& a, const ProgState* s) {
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

}  // namespace

int64_t in_flight_tls_offset() {
  return int64_t(reinterpret_cast<uintptr_t>(&t_in_flight) - thread_pointer());
}

SB_SIGNAL_CONTEXT void mark_in_flight(const uint64_t* tokens, size_t n, uint8_t* hit) {
  const InFlightStack& s = t_in_flight;
  const uint64_t depth = s.depth;
  for (size_t i = 0; i < n; ++i) {
    bool inside = depth > kInFlightCapacity;
    for (uint64_t k = 0; k < depth && k < kInFlightCapacity && !inside; ++k) inside = s.token[k] == tokens[i];
    if (inside) __atomic_store_n(&hit[i], uint8_t(1), __ATOMIC_RELAXED);
  }
}

ProgStats stats_of(const ProgState& s) {
  const RunTotals t = s.runs.totals();
  return {t.runs, ticks_to_ns(t.ticks), s.misses.load()};
}

extern "C" uint64_t sb_tramp_prog_enter(ProgState* s, RunCtx* rc) {
  tsan_acquire(s);  // published with the image (sanitizer.h)
  if (s->recursion_guard) {
    ActiveStack& a = t_active;
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
  if (s->context) rc->saved_context = ContextScope::exchange(s->context);
  return s->stats ? read_ticks() : 1;
}

extern "C" void sb_tramp_prog_exit(ProgState* s, uint64_t start, RunCtx* rc) {
  if (start == 0) return;  // skipped by the guard: enter pushed nothing
  if (s->context) ContextScope::exchange(rc->saved_context);
  if (s->stats) s->runs.add(read_ticks() - start);
  if (s->recursion_guard) {
    ActiveStack& a = t_active;
    if (a.depth && a.running[a.depth - 1] == s) [[likely]]
      --a.depth;
    else
      remove_active(a, s);
  }
  tsan_release(s);  // before the image's exit count: reclaiming acquires it
}

}  // namespace sb::rt
