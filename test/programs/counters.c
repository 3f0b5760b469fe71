// Counters in maps: a hash map of byte frequencies, an array of totals, a
// per-CPU array, and a small hash map that fills up. Also records the
// error codes map_update_elem / map_delete_elem / lookups return.
#include "sb_bpf.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 256);
  __type(key, __u32);
  __type(value, __u64);
} byte_counts SEC(".maps");

enum { RUNS, BYTES, NEW_KEYS, DELETED, ERR_EXIST, ERR_NOEXIST, OUT_OF_RANGE, ERR_FULL, NUM_TOTALS };

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, NUM_TOTALS);
  __type(key, __u32);
  __type(value, __s64);
} totals SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u64);
} per_cpu SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4);
  __type(key, __u64);
  __type(value, __u32);
} small SEC(".maps");

static __always_inline void add(__u32 which, __s64 v) {
  __s64 *t = bpf_map_lookup_elem(&totals, &which);
  if (t) __sync_fetch_and_add(t, v);
}

SEC("tc") __u64 count_bytes(void *data, __u64 len) {
  const __u8 *p = data;
  __u64 fresh = 0;
  for (__u64 i = 0; i < len && i < 64; i++) {
    __u32 key = p[i];
    __u64 *c = bpf_map_lookup_elem(&byte_counts, &key);
    if (c) {
      *c += 1;
    } else {
      __u64 one = 1;
      if (bpf_map_update_elem(&byte_counts, &key, &one, BPF_NOEXIST) == 0) fresh++;
    }
  }
  add(RUNS, 1);
  add(BYTES, len);
  add(NEW_KEYS, fresh);

  // A zero first byte deletes the count of byte 1 (-ENOENT when absent).
  if (len > 0 && p[0] == 0) {
    __u32 key = 1;
    add(DELETED, bpf_map_delete_elem(&byte_counts, &key));
  }
  // NOEXIST on a present key, EXIST on an absent one.
  __u32 present = len > 0 ? p[0] : 0, absent = 1000;
  __u64 v = 7;
  if (len > 0) add(ERR_EXIST, bpf_map_update_elem(&byte_counts, &present, &v, BPF_NOEXIST));
  add(ERR_NOEXIST, bpf_map_update_elem(&byte_counts, &absent, &v, BPF_EXIST));
  __u32 beyond = NUM_TOTALS;
  if (!bpf_map_lookup_elem(&totals, &beyond)) add(OUT_OF_RANGE, 1);

  // Six distinct keys into a map of four: the last two fail with -E2BIG.
  for (__u64 k = 0; k < 6; k++) {
    __u64 key = k * 1000 + len;
    __u32 val = (__u32)k;
    long err = bpf_map_update_elem(&small, &key, &val, BPF_ANY);
    if (err) add(ERR_FULL, err);
  }
  for (__u64 k = 0; k < 6; k++) {
    __u64 key = k * 1000 + len;
    bpf_map_delete_elem(&small, &key);
  }

  __u32 zero = 0, one_key = 1;
  __u64 *pc = bpf_map_lookup_elem(&per_cpu, &zero);
  if (pc) *pc += 1;
  pc = bpf_map_lookup_elem(&per_cpu, &one_key);
  if (pc) *pc += len;
  return fresh;
}
