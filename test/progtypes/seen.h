// The map `seen` the socket-buffer test programs record into: u64 values by
// slot, SEE(field) storing skb->field at its __sk_buff offset / 4.
#pragma once
#include <stddef.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 48);
  __type(key, __u32);
  __type(value, __u64);
} seen SEC(".maps");

static __always_inline void put(__u32 slot, __u64 v) { bpf_map_update_elem(&seen, &slot, &v, BPF_ANY); }
#define SEE(field) put(offsetof(struct __sk_buff, field) / 4, skb->field)
