// Bit tricks on 256 u64 words (2 KiB), each a loop: population count
// (clearing the lowest set bit), count of leading zeros (a scan from the
// top) and bit reversal (one bit per step). Returns a hash of the results.
//
// The per-word work is a global function, which the kernel's verifier
// checks once for any word: inline, it would follow each loop's exit at
// every count for every word and exceed its limits.
#include "bench.h"

#define BITS_WORDS 256
#define BITS_BYTES (BITS_WORDS * 8)

__noinline __u64 bits_word(__u64 x) {
  __u64 pop = 0;
  for (__u64 y = x; y && pop < 64; pop++) y &= y - 1;

  __u64 clz = 0;
  while (clz < 64 && !((x >> (63 - clz)) & 1)) clz++;

  __u64 rev = 0, y = x;
  for (int k = 0; k < 64; k++) {
    rev = (rev << 1) | (y & 1);
    y >>= 1;
  }
  return rev ^ (pop << 8 | clz);
}

static __noinline __u64 bits_body(void *mem) {
  const __u64 *p = mem;
  __u64 h = 0;
  for (__u32 i = 0; i < BITS_WORDS; i++) h = (h ^ bits_word(p[i])) * 0x9e3779b97f4a7c15ULL;
  return h;
}

SB_BENCH(bits, BITS_BYTES)
