#include "runtime/exec/cycle_clock.h"

#include <time.h>

#include <mutex>

namespace sb::rt {

namespace {

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// One (monotonic ns, ticks) pair, the ticks read between two clock reads
// that are as close together as a few tries get them.
struct Sample {
  double ns, ticks;
};
Sample sample() {
  Sample best{0, 0};
  uint64_t best_gap = ~uint64_t(0);
  for (int i = 0; i < 5; ++i) {
    const uint64_t a = monotonic_ns();
    const uint64_t t = read_ticks();
    const uint64_t b = monotonic_ns();
    if (b - a < best_gap) best_gap = b - a, best = {double(a) + double(b - a) / 2, double(t)};
  }
  return best;
}

double calibrate() {
#if !defined(__x86_64__) && !defined(__aarch64__) && !(defined(__riscv) && __riscv_xlen == 64)
  return 1.0;  // read_ticks() is steady_clock nanoseconds already
#else
  constexpr uint64_t kSpanNs = 2000000;
  const Sample first = sample();
  while (monotonic_ns() - uint64_t(first.ns) < kSpanNs) {
  }
  const Sample last = sample();
  const double ticks = last.ticks - first.ticks;
  return ticks > 0 ? (last.ns - first.ns) / ticks : 1.0;
#endif
}

}  // namespace

double ns_per_tick() {
  static std::once_flag once;
  static double rate = 1.0;
  std::call_once(once, [] { rate = calibrate(); });
  return rate;
}

uint64_t ticks_to_ns(uint64_t ticks) { return ticks ? uint64_t(double(ticks) * ns_per_tick() + 0.5) : 0; }

}  // namespace sb::rt
