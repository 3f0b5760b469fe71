// bpf_for_each_map_elem from XDP (frontend/loop_helper.h): a walk of an
// array that adds the packet's length to every value and stops at the
// first value above a bound, a walk of a hash summing keys and values
// through a context on the stack, a walk with no context, and a flag the
// helper refuses (-EINVAL). Results go to `seen` (seen.h), slot by slot.
#include "seen.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 6);
  __type(key, __u32);
  __type(value, __u64);
} counts SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 8);
  __type(key, __u32);
  __type(value, __u64);
} flows SEC(".maps");

struct bump {
  __u64 add;
  __u64 stop_above;
  __u64 last_key;
};

static long bump_value(void *map, __u32 *key, __u64 *value, struct bump *b) {
  *value += b->add;
  b->last_key = *key;
  return *value > b->stop_above;
}

struct sums {
  __u64 keys;
  __u64 values;
};

static long sum_flow(void *map, __u32 *key, __u64 *value, struct sums *s) {
  s->keys += *key;
  s->values += *value;
  return 0;
}

static long nothing(void *map, __u32 *key, __u64 *value, void *ctx) { return 0; }

SEC("xdp")
int xdp_for_each(struct xdp_md *ctx) {
  const __u32 len = ctx->data_end - ctx->data;
  struct bump b = {len, 100, 99};
  put(0, bpf_for_each_map_elem(&counts, bump_value, &b, 0));
  put(1, b.last_key);
  __u32 k = len & 7;
  __u64 v = len;
  bpf_map_update_elem(&flows, &k, &v, BPF_ANY);
  struct sums s = {0, 0};
  put(2, bpf_for_each_map_elem(&flows, sum_flow, &s, 0));
  put(3, s.keys);
  put(4, s.values);
  put(5, bpf_for_each_map_elem(&flows, nothing, 0, 0));
  put(6, bpf_for_each_map_elem(&counts, nothing, 0, 1));
  return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
