// A byte-at-a-time copy of the first 64 KiB of the input to the second
// 64 KiB. Returns a hash of every 4096th byte of the copy.
#include "bench.h"

#define COPY_N 65536
#define COPY_BYTES (2 * COPY_N)

static __noinline __u64 copy_body(void *mem) {
  const __u8 *src = mem;
  __u8 *dst = (__u8 *)mem + COPY_N;
  for (__u32 i = 0; i < COPY_N; i++) dst[i] = src[i];
  __u64 h = 0;
  for (__u32 i = 0; i < COPY_N; i += 4096) h = h * 31 + dst[i] + dst[i + 4095];
  return h;
}

SB_BENCH(copy, COPY_BYTES)
