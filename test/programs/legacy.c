// Maps in the legacy `maps` section (struct bpf_map_def), no BTF needed.
#include "sb_bpf.h"

struct bpf_map_def SEC("maps") legacy_array = {
    .type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 8, .max_entries = 4};
struct bpf_map_def SEC("maps") legacy_hash = {
    .type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 8, .max_entries = 16};

SEC("socket") __u64 legacy(void *data, __u64 len) {
  __u32 slot = len & 3;
  __u64 *v = bpf_map_lookup_elem(&legacy_array, &slot);
  if (v) *v += len;
  __u32 key = (__u32)len;
  __u64 one = 1;
  __u64 *h = bpf_map_lookup_elem(&legacy_hash, &key);
  if (h) (*h)++;
  else bpf_map_update_elem(&legacy_hash, &key, &one, BPF_ANY);
  return v ? *v : 0;
}
