// A cheap clock for run statistics: the CPU's constant-rate counter (rdtsc
// on x86-64, cntvct_el0 on arm64, rdtime on riscv64; steady_clock
// nanoseconds elsewhere), read as raw ticks on the hot path and converted to
// nanoseconds only when statistics are read, with a rate calibrated once per
// process against CLOCK_MONOTONIC.
#pragma once

#include <chrono>
#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace sb::rt {

// The counter now; never 0 (callers use 0 to mean "not started").
inline uint64_t read_ticks() {
  uint64_t t;
#if defined(__x86_64__)
  t = __rdtsc();
#elif defined(__aarch64__)
  asm volatile("mrs %0, cntvct_el0" : "=r"(t));
#elif defined(__riscv) && __riscv_xlen == 64
  asm volatile("rdtime %0" : "=r"(t));
#else
  t = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
                   .count());
#endif
  return t | 1;
}

// Nanoseconds in `ticks` of read_ticks(). The first call with ticks != 0
// calibrates (about 2 ms against CLOCK_MONOTONIC, once per process,
// thread-safe).
uint64_t ticks_to_ns(uint64_t ticks);
double ns_per_tick();

}  // namespace sb::rt
