// bpf_spin_lock / bpf_spin_unlock around a counter in an array map's value
// (struct bpf_spin_lock found from the value's BTF, as libbpf passes it to
// the kernel), and a hash whose value has its lock after a u64.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct counter {
  __u32 packets;
  struct bpf_spin_lock lock;
  __u64 bytes;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct counter);
} counters SEC(".maps");

struct flow {
  __u64 seen;
  struct bpf_spin_lock lock;
  __u32 last_len;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, struct flow);
} flows SEC(".maps");

SEC("xdp")
int xdp_spin(struct xdp_md *ctx) {
  const __u32 len = ctx->data_end - ctx->data;
  __u32 k = 0;
  struct counter *c = bpf_map_lookup_elem(&counters, &k);
  if (!c) return XDP_ABORTED;
  bpf_spin_lock(&c->lock);
  c->packets++;
  c->bytes += len;
  bpf_spin_unlock(&c->lock);
  k = len & 3;
  struct flow *f = bpf_map_lookup_elem(&flows, &k);
  if (!f) {
    struct flow fresh = {};
    bpf_map_update_elem(&flows, &k, &fresh, BPF_NOEXIST);
    f = bpf_map_lookup_elem(&flows, &k);
    if (!f) return XDP_ABORTED;
  }
  bpf_spin_lock(&f->lock);
  f->seen++;
  f->last_len = len;
  bpf_spin_unlock(&f->lock);
  return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
