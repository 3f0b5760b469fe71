// The map types beyond array and hash, from an XDP program, each operation's
// result into `seen` (slot by slot, in order): an LPM trie (longest-prefix
// lookups, exact updates and deletes, the errors), a queue and a stack
// (push past max_entries, BPF_EXIST overwriting the oldest, pop and peek of
// an empty one), a bloom filter, per-CPU and LRU hashes within their
// capacity, and XDP redirects through a devmap and a devmap_hash (set by
// the test: devmap slot 1 and devmap_hash key 7 hold ifindex 1, cpumap
// slot 0 a queue of 192; the xskmap stays empty), and
// bpf_fib_lookup's host-independent answers. The frame's
// byte 14 chooses the part; bytes 15-18 are an IPv4 address for the trie,
// byte 19 the redirect's key. The program returns what the last redirect
// helper returned (or XDP_PASS).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "seen.h"

struct lpm_key {
  __u32 prefixlen;
  __u8 addr[4];
};

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 6);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct lpm_key);
  __type(value, __u32);
} lpm SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_QUEUE);
  __uint(max_entries, 4);
  __type(value, __u32);
} queue SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_STACK);
  __uint(max_entries, 4);
  __type(value, __u32);
} stack SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
  __uint(max_entries, 16);
  __uint(map_extra, 3);
  __type(value, __u32);
} bloom SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
} pcpu_hash SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u64);
} lru SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u64);
} lru_pcpu SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_DEVMAP);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u32);
} devs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u32);
} devs_hash SEC(".maps");

// The next result into `seen` at *at (each part counts its own slots).
struct {
  __uint(type, BPF_MAP_TYPE_CPUMAP);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u32);
} cpus SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u32);
} xsks SEC(".maps");

static __always_inline void out_at(__u32 *at, __s64 v) {
  put(*at, (__u64)v);
  *at += 1;
}
#define out(v) out_at(at, (v))

static __always_inline __s64 lpm_update(__u32 len, __u8 a, __u8 b, __u8 c, __u32 value, __u64 flags) {
  struct lpm_key k = {len, {a, b, c, 0}};
  return bpf_map_update_elem(&lpm, &k, &value, flags);
}

static __always_inline __s64 lpm_find(__u32 len, const __u8 *addr) {
  struct lpm_key k = {len, {addr[0], addr[1], addr[2], addr[3]}};
  __u32 *v = bpf_map_lookup_elem(&lpm, &k);
  return v ? *v : -1;
}

static __always_inline void lpm_part(__u32 *at, const __u8 *addr) {
  out(lpm_update(8, 10, 0, 0, 1, BPF_NOEXIST));
  out(lpm_update(16, 10, 1, 0, 2, BPF_NOEXIST));
  out(lpm_update(24, 10, 1, 2, 3, BPF_ANY));
  out(lpm_update(16, 10, 1, 0, 20, BPF_NOEXIST));  // -EEXIST
  out(lpm_update(16, 10, 1, 0, 22, BPF_EXIST));
  out(lpm_update(12, 10, 16, 0, 4, BPF_EXIST));    // -ENOENT
  out(lpm_update(33, 10, 0, 0, 5, BPF_ANY));       // -EINVAL
  out(lpm_update(0, 0, 0, 0, 99, BPF_ANY));        // the default route
  out(lpm_find(32, addr));
  out(lpm_find(20, addr));  // at most 20 bits of the address count
  out(lpm_find(8, addr));
  out(lpm_update(12, 10, 16, 0, 6, BPF_ANY));
  out(lpm_update(9, 10, 128, 0, 7, BPF_ANY));
  out(lpm_update(10, 10, 192, 0, 8, BPF_ANY));     // -ENOSPC: six already
  out(lpm_find(32, addr));
  struct lpm_key k = {16, {10, 1, 0, 0}};
  out(bpf_map_delete_elem(&lpm, &k));
  out(bpf_map_delete_elem(&lpm, &k));  // -ENOENT
  out(lpm_find(32, addr));
}

static __always_inline void queue_part(__u32 *at, void *map) {
  __u32 v;
#pragma unroll
  for (__u32 i = 1; i <= 5; i++) {
    v = i;
    out(bpf_map_push_elem(map, &v, 0));  // the fifth: -E2BIG
  }
  v = 6;
  out(bpf_map_push_elem(map, &v, BPF_EXIST));  // drops the oldest
  out(bpf_map_push_elem(map, &v, BPF_NOEXIST));  // -EINVAL
  out(bpf_map_peek_elem(map, &v));
  out(v);
#pragma unroll
  for (int i = 0; i < 5; i++) {
    v = 77;
    out(bpf_map_pop_elem(map, &v));  // the fifth: -ENOENT, v zeroed
    out(v);
  }
  v = 78;
  out(bpf_map_peek_elem(map, &v));
  out(v);
}

static __always_inline void bloom_part(__u32 *at) {
  __u32 v;
#pragma unroll
  for (int i = 1; i <= 3; i++) {
    v = 10 * i;
    out(bpf_map_push_elem(&bloom, &v, BPF_ANY));
  }
  out(bpf_map_push_elem(&bloom, &v, BPF_EXIST));  // -EINVAL
#pragma unroll
  for (int i = 1; i <= 3; i++) {
    v = 10 * i;
    out(bpf_map_peek_elem(&bloom, &v));
  }
}

static __always_inline void hash_part(__u32 *at, void *map) {
  __u32 k = 1;
  __u64 v = 100, *p;
  out(bpf_map_update_elem(map, &k, &v, BPF_EXIST));  // -ENOENT
  out(bpf_map_update_elem(map, &k, &v, BPF_NOEXIST));
  out(bpf_map_update_elem(map, &k, &v, BPF_NOEXIST));  // -EEXIST
  p = bpf_map_lookup_elem(map, &k);
  out(p ? *p : -1);
  if (p) *p += 5;
  k = 2;
  out(bpf_map_update_elem(map, &k, &v, BPF_ANY));
  out(bpf_map_delete_elem(map, &k));
  out(bpf_map_delete_elem(map, &k));  // -ENOENT
  out(bpf_map_update_elem(map, &k, &v, 4));  // -EINVAL (BPF_F_LOCK without a lock)
#pragma unroll
  for (int i = 10; i < 14; i++) {
    k = i;
    out(bpf_map_update_elem(map, &k, &v, BPF_ANY));  // a 4-entry hash: -E2BIG at 13
  }
}

static __always_inline __s64 redirect_part(__u32 *at, __u32 key) {
  __s64 r;
  out(r = bpf_redirect_map(&devs, key, XDP_PASS));
  out(bpf_redirect_map(&devs, key, XDP_DROP));
  out(bpf_redirect_map(&devs, key, 64));  // an unknown flag: XDP_ABORTED
  out(bpf_redirect_map(&devs_hash, key, XDP_TX));
  __u32 *ifindex = bpf_map_lookup_elem(&devs, &key);
  out(ifindex ? *ifindex : -1);
  out(bpf_redirect_map(&cpus, key, XDP_PASS));
  out(bpf_redirect_map(&cpus, key, BPF_F_BROADCAST));  // a devmap's flag only: XDP_ABORTED
  out(bpf_redirect_map(&xsks, key, XDP_DROP));         // no socket: the fallback
  out(bpf_redirect(1, 0));
  out(bpf_redirect(1, 1));  // XDP takes no flags: XDP_ABORTED
  return r;
}

// bpf_fib_lookup's refusals and verdicts that do not depend on the host's
// routes: a short plen, unknown flags, an unknown family, a device that does
// not exist, forwarding disabled on the loopback (also for output).
static __always_inline void fib_part(__u32 *at, struct xdp_md *ctx) {
  struct bpf_fib_lookup p = {.family = 2, .ifindex = 1, .ipv4_dst = 0x0100007f};  // 127.0.0.1
  out(bpf_fib_lookup(ctx, &p, sizeof p - 4, 0));  // -EINVAL
  out(bpf_fib_lookup(ctx, &p, sizeof p, 1 << 7));   // -EINVAL
  p.family = 99;
  out(bpf_fib_lookup(ctx, &p, sizeof p, 0));  // -EAFNOSUPPORT
  p.family = 2;
  p.ifindex = 7777;
  out(bpf_fib_lookup(ctx, &p, sizeof p, 0));  // -ENODEV
  p.ifindex = 1;
  out(bpf_fib_lookup(ctx, &p, sizeof p, 0));  // BPF_FIB_LKUP_RET_FWD_DISABLED
  p.family = 10;
  out(bpf_fib_lookup(ctx, &p, sizeof p, 0));
  p.family = 2;
  out(bpf_fib_lookup(ctx, &p, sizeof p, BPF_FIB_LOOKUP_OUTPUT));
}

SEC("xdp")
int xdp_maps(struct xdp_md *ctx) {
  const __u8 *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  if (data + 20 > end) return XDP_ABORTED;
  __u32 slot = 0, *at = &slot;
  switch (data[14]) {
    case 0: lpm_part(at, data + 15); break;
    case 1: queue_part(at, &queue); break;
    case 2: queue_part(at, &stack); break;
    case 3: bloom_part(at); break;
    case 4: hash_part(at, &pcpu_hash); break;
    case 5: hash_part(at, &lru); break;
    case 6: hash_part(at, &lru_pcpu); break;
    case 7: return redirect_part(at, data[19]);
    case 8: fib_part(at, ctx); break;
  }
  return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
