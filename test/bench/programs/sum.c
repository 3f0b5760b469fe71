// Sum of the 8192 u64 words of 64 KiB.
#include "bench.h"

#define SUM_BYTES 65536

static __noinline __u64 sum_body(void *mem) {
  const __u64 *p = mem;
  __u64 s = 0;
  for (__u32 i = 0; i < SUM_BYTES / 8; i++) s += p[i];
  return s;
}

SB_BENCH(sum, SUM_BYTES)
