// Collatz: the number of steps from n to 1 for every n in 1..N, where N is
// the first u64 of the input (at most 1000). Returns the sum of steps * n.
//
// The step count is a global function, which the kernel's verifier checks
// once for any n; its loop has a bound (1000 steps, never reached for
// n <= 1000, whose longest path is 178 steps) because the verifier cannot
// know that the sequence reaches 1.
#include "bench.h"

#define COLLATZ_BYTES 8
#define COLLATZ_MAX_N 1000
#define COLLATZ_MAX_STEPS 1000

__noinline __u64 collatz_steps(__u64 n) {
  __u64 steps = 0;
  while (n > 1 && steps < COLLATZ_MAX_STEPS) {
    n = (n & 1) ? 3 * n + 1 : n >> 1;
    steps++;
  }
  return steps;
}

static __noinline __u64 collatz_body(void *mem) {
  __u64 last = *(const __u64 *)mem;
  if (last > COLLATZ_MAX_N) last = COLLATZ_MAX_N;
  __u64 total = 0;
  for (__u64 i = 1; i <= last; i++) total += collatz_steps(i) * i;
  return total;
}

SB_BENCH(collatz, COLLATZ_BYTES)
