// bpf_loop from XDP (frontend/loop_helper.h): a callback that walks the
// packet through a context on the caller's stack (spilled packet pointers,
// a running hash and a counter written back each iteration), stops early
// at a 0xff byte or at the packet's end, and the helper's own answers:
// -EINVAL for flags, -E2BIG above BPF_MAX_LOOPS, no call for 0 loops, a
// null context. Results go to the map `seen` (seen.h), slot by slot.
// (Branching on w.zeros after the loop makes it precise, and this kernel
// then walks the callback once per count and gives up at its complexity
// limit; Springboard's verifier widens the counter and accepts it.)
#include "seen.h"

struct walk {
  void *data;
  void *data_end;
  __u64 hash;
  __u32 zeros;
};

static long hash_byte(__u32 i, void *arg) {
  struct walk *w = arg;
  if (i > 1500) return 1;
  __u8 *p = (__u8 *)w->data + i;
  if ((void *)(p + 1) > w->data_end) return 1;
  if (*p == 0xff) return 1;
  w->hash = w->hash * 31 + *p;
  if (*p == 0) w->zeros++;
  return 0;
}

static long count(__u32 i, void *arg) { return 0; }

// Stops at the third call.
static long third(__u32 i, void *arg) { return i == 2; }

SEC("xdp")
int xdp_loop(struct xdp_md *ctx) {
  struct walk w = {(void *)(long)ctx->data, (void *)(long)ctx->data_end, 7, 0};
  const __u32 len = ctx->data_end - ctx->data;
  put(0, bpf_loop(len + 1, hash_byte, &w, 0));
  put(1, w.hash);
  put(2, w.zeros);
  put(3, bpf_loop(1, count, 0, 1));
  put(4, bpf_loop((1u << 23) + 1, count, 0, 0));
  put(5, bpf_loop(0, hash_byte, &w, 0));
  put(6, bpf_loop(5, count, 0, 0));
  put(7, bpf_loop(100, third, 0, 0));
  return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
