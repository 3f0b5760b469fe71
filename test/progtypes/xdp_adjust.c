// The packet-changing helpers, chosen by the first payload byte after the
// Ethernet header, with their results in the map `results`:
//   0: push 4 bytes of metadata (adjust_meta), write a marker there
//   1: pop the Ethernet header's first 4 bytes (adjust_head +4)
//   2: push 8 bytes at the front (adjust_head -8) and write them
//   3: grow the tail by 16 (adjust_tail +16), zeroed
//   4: shrink the tail by 4
//   5: adjust_head far too much (-EINVAL), adjust_meta by 6 (-EACCES),
//      adjust_tail below the Ethernet header (-EINVAL)
//   6: metadata of 8, then adjust_head -4 (the metadata moves with it)
// Returns XDP_TX when every step worked, XDP_PASS for an unknown selector,
// XDP_DROP for a frame too short to read the selector. Built a second time
// with -DNO_META (selectors 0 and 6 pass) for kernels that refuse
// bpf_xdp_adjust_meta in XDP programs.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __s64);
} results SEC(".maps");

static __always_inline void record(__u32 slot, __s64 v) { bpf_map_update_elem(&results, &slot, &v, BPF_ANY); }

SEC("xdp")
int xdp_adjust(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  if (data + 15 > data_end) return XDP_DROP;
  __u8 sel = ((__u8 *)data)[14];
  long r;
  switch (sel) {
#ifndef NO_META
    case 0: {
      r = bpf_xdp_adjust_meta(ctx, -4);
      record(0, r);
      if (r) return XDP_ABORTED;
      void *meta = (void *)(long)ctx->data_meta;
      data = (void *)(long)ctx->data;
      if (meta + 4 > data) return XDP_ABORTED;
      *(__u32 *)meta = 0xfeedf00d;
      return XDP_TX;
    }
#endif
    case 1:
      r = bpf_xdp_adjust_head(ctx, 4);
      record(0, r);
      return r ? XDP_ABORTED : XDP_TX;
    case 2: {
      r = bpf_xdp_adjust_head(ctx, -8);
      record(0, r);
      if (r) return XDP_ABORTED;
      data = (void *)(long)ctx->data;
      data_end = (void *)(long)ctx->data_end;
      if (data + 8 > data_end) return XDP_ABORTED;
      *(__u64 *)data = 0x0102030405060708ull;
      return XDP_TX;
    }
    case 3:
      r = bpf_xdp_adjust_tail(ctx, 16);
      record(0, r);
      record(1, bpf_xdp_get_buff_len(ctx));
      return r ? XDP_ABORTED : XDP_TX;
    case 4:
      r = bpf_xdp_adjust_tail(ctx, -4);
      record(0, r);
      return r ? XDP_ABORTED : XDP_TX;
    case 5:
      record(0, bpf_xdp_adjust_head(ctx, -4096));
#ifndef NO_META
      record(1, bpf_xdp_adjust_meta(ctx, -6));
#endif
      record(2, bpf_xdp_adjust_tail(ctx, -4096));
      record(3, bpf_xdp_adjust_head(ctx, 4096));
      return XDP_TX;
#ifndef NO_META
    case 6: {
      r = bpf_xdp_adjust_meta(ctx, -8);
      record(0, r);
      if (r) return XDP_ABORTED;
      void *meta = (void *)(long)ctx->data_meta;
      data = (void *)(long)ctx->data;
      if (meta + 8 > data) return XDP_ABORTED;
      *(__u64 *)meta = 0x1122334455667788ull;
      r = bpf_xdp_adjust_head(ctx, -4);
      record(1, r);
      return r ? XDP_ABORTED : XDP_TX;
    }
#endif
    default:
      return XDP_PASS;
  }
}

char _license[] SEC("license") = "GPL";
