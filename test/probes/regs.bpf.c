/* One probe program for every architecture (probe_arch_test.cpp), written
 * as libbpf-bootstrap's uprobe.bpf.c: SEC("uprobe") with BPF_KPROBE and
 * PT_REGS_*, SEC("uretprobe") with BPF_KRETPROBE, compiled by clang
 * -target bpf with -D__TARGET_ARCH_x86, _arm64 or _riscv. The register
 * structs are the ones user space sees (as <asm/ptrace.h> of each
 * architecture declares them; vmlinux.h would give the kernel's). What
 * the programs see goes to a record at a fixed address (REC), which the
 * test maps: a guest has no maps, and the test runs them unverified. */
#include <linux/types.h>
#include <linux/bpf.h>

#include "user_regs.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#ifndef REC
#define REC 0x10000000ul
#endif

struct record {
  __u64 entries, returns;
  __s64 a, b, c, d, e;
  __u64 ip, sp, ret_ip, ret_sp;
  __s64 ret;
};
#define R ((volatile struct record*)REC)

SEC("uprobe")
int BPF_KPROBE(probe_mix, long a, long b, long c, long d, long e) {
  R->entries++;
  R->a = a;
  R->b = b;
  R->c = c;
  R->d = d;
  R->e = e;
  R->ip = PT_REGS_IP(ctx);
  R->sp = PT_REGS_SP(ctx);
  return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(retprobe_mix, long ret) {
  R->returns++;
  R->ret = ret;
  R->ret_ip = PT_REGS_IP(ctx);
  R->ret_sp = PT_REGS_SP(ctx);
  return 0;
}

/* A probe inside a function (probes/loop.c): for each of the first 8
 * hits, PT_REGS_IP, PT_REGS_SP and every register of the struct the
 * PT_REGS_* macros read (__PT_REGS_CAST), word by word. */
#define SITE_HITS 8
#define SITE_WORDS (sizeof(*__PT_REGS_CAST((struct pt_regs*)0)) / 8)
struct site_record {
  __u64 hits;
  __u64 ip[SITE_HITS], sp[SITE_HITS];
  __u64 regs[SITE_HITS][34]; /* arm64's 34 words, the most */
};
#define SITE ((volatile struct site_record*)(REC + 0x100))

SEC("uprobe")
int BPF_KPROBE(probe_site) {
  __u64 n = SITE->hits++;
  if (n >= SITE_HITS) return 0;
  SITE->ip[n] = PT_REGS_IP(ctx);
  SITE->sp[n] = PT_REGS_SP(ctx);
  const __u64* words = (const __u64*)__PT_REGS_CAST(ctx);
#pragma unroll
  for (unsigned w = 0; w < SITE_WORDS; ++w) SITE->regs[n][w] = words[w];
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
