/* USDT programs as libbpf's usdt.bpf.h users write them (usdt_test.cpp),
 * compiled with clang -O2 -g -target bpf -D__TARGET_ARCH_x86 (and _arm64,
 * _riscv for the guests: usdt_guest_test.cpp).
 *   on_args     BPF_USDT with eight arguments: each into `seen`, and
 *               the argument count, the USDT cookie and bpf_usdt_arg's
 *               answer for an argument past the last
 *   on_value    bpf_usdt_arg(ctx, 0) into `values` (counted by value)
 *   on_who      the argument, bpf_get_current_pid_tgid and _comm into `seen`
 *   on_twice_by_section, on_throw   attached by their sections */
#include <stdbool.h>
#include <linux/bpf.h>
#include "user_regs.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 12);
  __type(key, __u32);
  __type(value, long);
} seen SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, long);
  __type(value, __u64);
} values SEC(".maps");

static void put(__u32 k, long v) { bpf_map_update_elem(&seen, &k, &v, 0); }

SEC("usdt")
int BPF_USDT(on_args, int i, long r, signed char c, short s, unsigned u, long t, long k, long* table) {
  put(0, i);
  put(1, r);
  put(2, c);
  put(3, s);
  put(4, u);
  put(5, t);
  put(6, k);
  put(7, (long)table);
  put(8, bpf_usdt_arg_cnt(ctx));
  put(9, bpf_usdt_cookie(ctx));
  long past = 0;
  put(10, bpf_usdt_arg(ctx, 8, &past));
  return 0;
}

SEC("usdt")
int on_value(struct pt_regs* ctx) {
  long x = 0;
  if (bpf_usdt_arg(ctx, 0, &x) != 0) return 0;
  __u64 one = 1, *n = bpf_map_lookup_elem(&values, &x);
  if (n) __sync_fetch_and_add(n, 1);
  else bpf_map_update_elem(&values, &x, &one, BPF_NOEXIST);
  return 0;
}

/* Who ran it, as a uprobe sees it: the probe's argument, the ids and the
 * thread's name (16 bytes, as two longs). */
SEC("usdt")
int BPF_USDT(on_who, long x) {
  char comm[16] = {};
  long words[2];
  put(0, x);
  put(1, bpf_get_current_pid_tgid());
  bpf_get_current_comm(comm, sizeof comm);
  __builtin_memcpy(words, comm, sizeof words);
  put(2, words[0]);
  put(3, words[1]);
  return 0;
}

SEC("usdt//proc/self/exe:sb_usdt_gccO2:twice")
int on_twice_by_section(struct pt_regs* ctx) {
  long x = 0;
  if (bpf_usdt_arg(ctx, 0, &x) != 0) return 0;
  x += 1000;  /* apart from on_value's keys */
  __u64 one = 1, *n = bpf_map_lookup_elem(&values, &x);
  if (n) __sync_fetch_and_add(n, 1);
  else bpf_map_update_elem(&values, &x, &one, BPF_NOEXIST);
  return 0;
}

/* libstdc++'s own probe, as libbpf-bootstrap's usdt.bpf.c attaches to a
 * system library's: __cxa_throw's (exception object, its std::type_info). */
SEC("usdt/libstdc++.so.6:libstdcxx:throw")
int BPF_USDT(on_throw, void* object, void* tinfo) {
  put(0, (long)object);
  put(1, (long)tinfo);
  int thrown = 0;
  bpf_probe_read_user(&thrown, sizeof thrown, object);
  put(2, thrown);
  put(3, bpf_usdt_arg_cnt(ctx));
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
