// A ring buffer producer: per run one reserved-and-submitted event, one
// reserved-and-discarded record, and a copy of the first four input bytes
// through bpf_ringbuf_output (a pointer into the input memory). Returns a
// bit mask of what failed (the buffer fills up when nobody consumes).
#include "sb_bpf.h"

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4096);
} events SEC(".maps");

struct event {
  __u32 seq;
  __u32 len;
  __u8 head[8];
};

__u32 seq;  // .bss

SEC("tp/produce") __u64 produce(void *data, __u64 len) {
  __u64 failed = 0;
  struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (e) {
    e->seq = seq++;
    e->len = (__u32)len;
    const __u8 *p = data;
    for (int i = 0; i < 8; i++) e->head[i] = i < len ? p[i] : 0;
    bpf_ringbuf_submit(e, 0);
  } else {
    failed |= 1;
  }
  void *d = bpf_ringbuf_reserve(&events, 32, 0);
  if (d) bpf_ringbuf_discard(d, 0);
  else failed |= 2;
  if (len >= 4 && bpf_ringbuf_output(&events, data, 4, 0) != 0) failed |= 4;
  void *bad = bpf_ringbuf_reserve(&events, 8, 1);  // flags must be 0: null
  if (bad) {  // (released on this path too, as the verifier requires)
    bpf_ringbuf_discard(bad, 0);
    failed |= 8;
  }
  return failed;
}
