// Global functions (not static, not __hidden): the kernel's verifier checks
// each once, on its own, for any arguments its BTF prototype allows, and
// checks each call's arguments against that prototype instead of following
// the call (btf_prepare_func_args, btf_check_subprog_call). `accepted`
// calls them with the context, stack memory, null, a map value that may be
// null and a packet header; it records what they return in `seen`. Each
// other program breaks one rule and is refused, by the kernel as by
// Springboard (test/progtypes_kernel_test.cpp, KernelXdp.GlobalFunctions).
#include <linux/if_ether.h>
#include <bpf/bpf_endian.h>
#include "seen.h"

struct pair {
  __u32 a, b;
};
struct counts {
  __u64 packets, bytes;
};
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, struct counts);
} stats SEC(".maps");

// The context: a pointer to the program type's context struct.
__noinline int frame_len(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  return end - data;
}

// Memory of the pointee's size that may be null: the function checks.
__noinline int pair_sum(struct pair *p) {
  if (!p) return -1;
  p->b += p->a;
  return p->a + p->b;
}

__noinline int bump(struct counts *c, __u64 bytes) {
  if (!c) return 0;
  c->packets++;
  c->bytes += bytes;
  return 1;
}

__noinline int eth_proto(const struct ethhdr *eth) {
  if (!eth) return 0;
  return bpf_ntohs(eth->h_proto);
}

// A number the caller cannot know: it only sees "some number".
__noinline int four(void) { return 4; }

SEC("xdp") int accepted(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  const int len = frame_len(ctx);
  struct pair p = {(__u32)len, 3};
  const int sum = pair_sum(&p);
  const int none = pair_sum(0);
  __u32 k = len & 3;
  const int bumped = bump(bpf_map_lookup_elem(&stats, &k), len);
  struct ethhdr *eth = data;
  int proto = -2;
  if ((void *)(eth + 1) <= end) proto = eth_proto(eth);
  put(0, len);
  put(1, sum);
  put(2, p.b);  // written by pair_sum through the pointer
  put(3, none);
  put(4, bumped);
  put(5, proto);
  put(6, four());
  return proto == ETH_P_IP ? XDP_PASS : XDP_DROP;
}

// Refused in the function itself: a pointer argument may be null.
__noinline int first_unchecked(struct pair *p) { return p->a; }
SEC("xdp") int unchecked_argument(struct xdp_md *ctx) {
  struct pair p = {1, 2};
  return first_unchecked(&p) & 1;
}

// Refused at the call: pair_sum reads 8 bytes, 4 of them never written.
// (Kernels from 6.3 on accept this for a privileged loader, allow_uninit_stack;
// Springboard refuses reads of unwritten stack always, as 6.1 and an
// unprivileged loader do.)
SEC("xdp") int uninitialized_stack(struct xdp_md *ctx) {
  struct pair p;
  p.a = ctx->ingress_ifindex;
  asm volatile("" : : "r"(&p) : "memory");
  return pair_sum(&p) & 1;
}

// Refused at the call: 14 packet bytes not proven against data_end.
SEC("xdp") int unchecked_packet(struct xdp_md *ctx) {
  return eth_proto((void *)(long)ctx->data) & 1;
}

// Refused: a global function's result is a number the caller knows nothing
// of (here not that it is below 8), so it cannot index an 8-byte stack
// buffer; followed into, as a static function is, it could.
__noinline int low_bits(int x) { return x & 7; }
SEC("xdp") int unknown_result(struct xdp_md *ctx) {
  volatile __u8 buf[8];
  for (int i = 0; i < 8; i++) buf[i] = i;
  return buf[low_bits(ctx->ingress_ifindex)] & 1;
}

// Refused: `void *` has no size to check.
__noinline int takes_void(void *p) { return p != 0; }
SEC("xdp") int void_pointer(struct xdp_md *ctx) {
  __u64 x = 1;
  return takes_void(&x);
}

// Refused at the call: the context parameter given a stack pointer.
SEC("xdp") int not_the_context(struct xdp_md *ctx) {
  struct xdp_md fake = {};
  return frame_len(&fake) & 1;
}

char _license[] SEC("license") = "GPL";
