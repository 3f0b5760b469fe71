// bpf_loop on every engine (frontend/loop_helper.h): a callback reading the
// run's memory through a context on the caller's stack, stopping at the
// memory's end, and calling bpf_loop itself (a callback three frames down);
// a flag the helper refuses (-EINVAL).
#include "sb_bpf.h"

struct acc {
  __u64 hash;
  __u64 inner;
  const __u8 *data;
  __u64 len;
};

static long add_index(__u32 j, void *arg) {
  struct acc *a = arg;
  a->inner += j + 1;
  return 0;
}

static long hash_byte(__u32 i, void *arg) {
  struct acc *a = arg;
  if (i >= a->len) return 1;
  a->hash = a->hash * 31 + a->data[i];
  bpf_loop(i & 3, add_index, a, 0);
  return 0;
}

SEC("xdp") __u64 loop(void *data, __u64 len) {
  struct acc a = {7, 0, data, len};
  const long calls = bpf_loop(64, hash_byte, &a, 0);
  const long bad = bpf_loop(1, add_index, &a, 2);
  return (a.hash & 0xffff) | (a.inner & 0xff) << 16 | ((__u64)calls & 0xff) << 24 | ((__u64)bad & 0xff) << 32;
}
