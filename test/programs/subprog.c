// Calls through .text subprograms: static and global (__noinline)
// functions, a chain five calls deep, each with its own stack frame.
#include "sb_bpf.h"

static __noinline __u64 mix(__u64 a, __u64 b) { return (a ^ b) * 0x9e3779b97f4a7c15ULL; }

__noinline __u64 step3(__u64 x) { return mix(x, 3) + 1; }  // a global function

static __noinline __u64 step2(__u64 acc, __u64 byte) { return step3(acc) ^ mix(byte, acc); }

static __noinline __u64 fold(const __u8 *p, __u64 n) {
  __u64 acc = 0;
  for (__u64 i = 0; i < n && i < 32; i++) acc = step2(acc, p[i]);
  return acc;
}

// Uses its own frame: fills a local buffer and sums it.
static __noinline __u64 frame_user(__u64 seed) {
  volatile __u8 buf[64];
  for (int i = 0; i < 64; i++) buf[i] = (__u8)(seed + i);
  __u64 s = 0;
  for (int i = 0; i < 64; i++) s += buf[i];
  return s;
}

static __noinline __u64 depth1(__u64 x) { return frame_user(x) + 1; }
static __noinline __u64 depth2(__u64 x) { return depth1(x * 3) + 2; }
static __noinline __u64 depth3(__u64 x) { return depth2(x + 5) + 3; }
__noinline __u64 depth4(__u64 x) { return depth3(x ^ 0x55) + 4; }
static __noinline __u64 depth5(__u64 x) { return depth4(x) + 5; }

SEC("xdp") __u64 chain(void *data, __u64 len) {
  volatile __u64 keep = len;  // a value in the caller's frame across calls
  __u64 r = fold(data, len);
  r += depth5(len);
  return r + keep;
}
