// An array of maps initialised with two inner arrays (`.values`), and a
// hash of maps filled the same way: the program looks an inner map up in
// each and counts into it, as the kernel's map-in-map selftests do.
#include "seen.h"

struct inner {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
};
struct inner inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, 3);
  __type(key, __u32);
  __array(values, struct inner);
} outer SEC(".maps") = {.values = {[0] = &inner_a, [2] = &inner_b}};

// The same inner maps by other keys, in a hash (libbpf fills `.values`
// slots of a hash of maps by 4-byte keys too).
struct {
  __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
  __uint(max_entries, 8);
  __type(key, __u32);
  __array(values, struct inner);
} by_key SEC(".maps") = {.values = {[1] = &inner_b, [5] = &inner_a}};

SEC("xdp")
int xdp_map_in_map(struct xdp_md *ctx) {
  const __u32 len = ctx->data_end - ctx->data;
  __u32 slot = len % 3, k = len & 3;
  void *m = bpf_map_lookup_elem(&outer, &slot);
  if (!m) {
    put(0, 100 + slot);
    return XDP_PASS;
  }
  __u64 *v = bpf_map_lookup_elem(m, &k);
  if (v) *v += len;
  put(0, slot);
  __u32 key = len % 8;
  void *h = bpf_map_lookup_elem(&by_key, &key);
  if (!h) {
    put(1, 100 + key);
    return XDP_PASS;
  }
  __u32 k2 = (len >> 2) & 3;
  v = bpf_map_lookup_elem(h, &k2);
  if (v) *v += 1000;
  put(1, key);
  return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
