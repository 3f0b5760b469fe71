// bpf_perf_event_output from XDP: a record of 12 bytes on this CPU's
// event, one with the frame's first 20 bytes appended (flags bits 32-51),
// one of 3 bytes, and the refusals (an index past max_entries, another
// CPU's event, unknown flag bits, more packet bytes than the frame has),
// each return value into `seen`.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "seen.h"

struct {
  __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
  __uint(max_entries, 8);
  __type(key, __u32);
  __type(value, __u32);
} events SEC(".maps");

SEC("xdp")
int xdp_events(struct xdp_md *ctx) {
  const __u8 *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  if (data + 16 > end) return XDP_ABORTED;
  struct {
    __u32 a, b, c;
  } rec = {0x11111111, data[14], data[15]};
  const __u64 len = (__u64)(end - data);
  put(0, bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &rec, sizeof rec));
  put(1, bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU | (20ull << 32), &rec, sizeof rec));
  put(2, bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &rec, 3));
  put(3, bpf_perf_event_output(ctx, &events, 100, &rec, sizeof rec));  // -E2BIG
  put(4, bpf_perf_event_output(ctx, &events, bpf_get_smp_processor_id() ^ 1, &rec, sizeof rec));  // -EOPNOTSUPP
  put(5, bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU | (1ull << 60), &rec, sizeof rec));  // -EINVAL
  put(6, bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU | ((len + 1) << 32), &rec, sizeof rec));  // -EFAULT
  put(7, bpf_perf_event_output(ctx, &events, 5, &rec, sizeof rec));  // a slot without an event: -ENOENT
  return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
