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

// bpf_for_each_map_elem over an array: each value grows by its key + 1,
// the walk stops after key 2 (3 elements).
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
} cells SEC(".maps");

static long grow(void *map, __u32 *key, __u64 *value, void *ctx) {
  *value += *key + 1;
  return *key == 2;
}

SEC("xdp") __u64 walk(void *data, __u64 len) {
  const long n = bpf_for_each_map_elem(&cells, grow, 0, 0);
  __u32 k = 1;
  __u64 *v = bpf_map_lookup_elem(&cells, &k);
  return (__u64)n << 32 | (v ? *v : 99);
}
