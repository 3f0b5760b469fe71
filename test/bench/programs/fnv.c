// FNV-1a (64-bit) over 64 KiB, one byte at a time.
#include "bench.h"

#define FNV_BYTES 65536

static __noinline __u64 fnv_body(void *mem) {
  const __u8 *p = mem;
  __u64 h = 0xcbf29ce484222325ULL;
  for (__u32 i = 0; i < FNV_BYTES; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

SB_BENCH(fnv, FNV_BYTES)
