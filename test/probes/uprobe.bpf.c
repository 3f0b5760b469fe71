/* Probes written as libbpf-bootstrap's uprobe.bpf.c writes them
 * (SEC("uprobe"), BPF_KPROBE, PT_REGS_*, BPF_KRETPROBE), recording what
 * they saw in a map for probe_test.cpp. Compiled with -D__TARGET_ARCH_x86. */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct seen {
  __u64 entries, returns;
  __s64 a, b, ret;
  __u64 ip, sp, ret_ip, ret_sp;
  __s64 args[6];
  __u64 cookie;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 3);
  __type(key, __u32);
  __type(value, struct seen);
} seen SEC(".maps");

static struct seen* slot(__u32 k) { return bpf_map_lookup_elem(&seen, &k); }

/* An array of one `value_type`, where a program leaves what it saw, and
 * that element. */
#define RESULT_MAP(name, value_type)         \
  struct {                                   \
    __uint(type, BPF_MAP_TYPE_ARRAY);        \
    __uint(max_entries, 1);                  \
    __type(key, __u32);                      \
    __type(value, value_type);               \
  } name SEC(".maps")
#define RESULT(name)                         \
  ({                                         \
    __u32 result_key_ = 0;                   \
    bpf_map_lookup_elem(&name, &result_key_);\
  })

SEC("uprobe")
int BPF_KPROBE(uprobe_add, long a, long b) {
  struct seen* s = slot(0);
  if (!s) return 0;
  __sync_fetch_and_add(&s->entries, 1);
  s->a = a;
  s->b = b;
  s->ip = PT_REGS_IP(ctx);
  s->sp = PT_REGS_SP(ctx);
  return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe_add, long ret) {
  struct seen* s = slot(0);
  if (!s) return 0;
  __sync_fetch_and_add(&s->returns, 1);
  s->ret = ret;
  s->ret_ip = PT_REGS_IP(ctx);
  s->ret_sp = PT_REGS_SP(ctx);
  return 0;
}

/* Attached by its section (sb_vm_attach_object) to a function of the test
 * executable itself. */
SEC("uprobe//proc/self/exe:sb_probe_by_section")
int BPF_KPROBE(uprobe_mix, long a, long b, long c, long d, long e) {
  struct seen* s = slot(1);
  if (!s) return 0;
  __sync_fetch_and_add(&s->entries, 1);
  s->args[0] = a;
  s->args[1] = b;
  s->args[2] = c;
  s->args[3] = d;
  s->args[4] = e;
  s->args[5] = ctx->r9;  /* libbpf 1.1's BPF_KPROBE stops at five */
  return 0;
}

SEC("uretprobe//proc/self/exe:sb_probe_by_section")
int BPF_KRETPROBE(uretprobe_mix, long ret) {
  struct seen* s = slot(1);
  if (!s) return 0;
  __sync_fetch_and_add(&s->returns, 1);
  s->ret = ret;
  return 0;
}

/* fentry and fexit by their sections: the traced function's prototype
 * comes from this object's BTF, which a stub of the same name that nothing
 * calls puts there (a BPF object has no other way to describe a user-space
 * function; the kernel's come from vmlinux BTF). */
__attribute__((used, noinline)) static long sb_probe_fentry_target(long a, int b) { return a + b; }

SEC("fentry/sb_probe_fentry_target")
int BPF_PROG(fentry_target, long a, int b) {
  struct seen* s = slot(2);
  if (!s) return 0;
  __sync_fetch_and_add(&s->entries, 1);
  s->a = a;
  s->b = b;
  return 0;
}

SEC("fexit/sb_probe_fentry_target")
int BPF_PROG(fexit_target, long a, int b, long ret) {
  struct seen* s = slot(2);
  if (!s) return 0;
  __sync_fetch_and_add(&s->returns, 1);
  s->ret = ret;
  return 0;
}

/* The tracing helpers, from a probe on sb_probe_read_target(const char* s,
 * const long* p). */
struct reads {
  __u64 pid_tgid, uid_gid, cookie, func_ip, cpu;
  char comm[16];
  char comm4[4];     /* get_current_comm into 4 bytes: 3 and a NUL */
  char str[8];       /* probe_read_user_str of s into 8 bytes */
  __s64 str_ret;
  __s64 long_ret;
  __s64 value;       /* probe_read_user of *p */
  __s64 bad_ret, bad_str_ret, kernel_ret;
  __u64 bad_value;   /* what a failed read leaves: zeros */
  char bad_str[4];
  __s64 printk_ret;
};

RESULT_MAP(reads, struct reads);

SEC("uprobe")
int BPF_KPROBE(uprobe_read, const char* s, const long* p) {
  struct reads* r = RESULT(reads);
  if (!r) return 0;
  r->pid_tgid = bpf_get_current_pid_tgid();
  r->uid_gid = bpf_get_current_uid_gid();
  r->cookie = bpf_get_attach_cookie(ctx);
  r->func_ip = bpf_get_func_ip(ctx);
  r->cpu = bpf_get_smp_processor_id();
  bpf_get_current_comm(r->comm, sizeof r->comm);
  bpf_get_current_comm(r->comm4, sizeof r->comm4);
  r->str_ret = bpf_probe_read_user_str(r->str, sizeof r->str, s);
  r->long_ret = bpf_probe_read_user(&r->value, sizeof r->value, p);
  r->bad_value = 0x5555;
  r->bad_ret = bpf_probe_read_user(&r->bad_value, sizeof r->bad_value, (const void*)8);
  r->bad_str[0] = 'x';
  r->bad_str_ret = bpf_probe_read_user_str(r->bad_str, sizeof r->bad_str, (const void*)8);
  __s64 v = 0;
  r->kernel_ret = bpf_probe_read_kernel(&v, sizeof v, p);
  r->printk_ret = bpf_printk("read %ld", v);
  return 0;
}

/* bpf_get_stack: the user stack by frame pointers, the (empty) kernel one,
 * and a size that is not a multiple of 8. */
struct stack {
  __s64 user_ret, kernel_ret, odd_ret;
  __u64 ips[8];
  __u64 kips[2];
};

RESULT_MAP(stacks, struct stack);

SEC("uprobe")
int BPF_KPROBE(uprobe_stack) {
  struct stack* s = RESULT(stacks);
  if (!s) return 0;
  s->user_ret = bpf_get_stack(ctx, s->ips, sizeof s->ips, BPF_F_USER_STACK);
  s->kips[0] = 0x5555;
  s->kernel_ret = bpf_get_stack(ctx, s->kips, sizeof s->kips, 0);
  s->odd_ret = bpf_get_stack(ctx, s->kips, 12, BPF_F_USER_STACK);
  return 0;
}

/* bpf_get_stackid: the user stack into a stack trace map (twice: the same
 * id), the same stack by bpf_get_stack to compare with, and the errors:
 * the (empty) kernel stack, more skipped frames than there are, unknown
 * flags. */
/* 64 buckets of `depth` ips. */
#define STACK_TRACE_MAP(name, depth)             \
  struct {                                       \
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);      \
    __uint(max_entries, 64);                     \
    __uint(key_size, sizeof(__u32));             \
    __uint(value_size, (depth) * sizeof(__u64)); \
  } name SEC(".maps")
STACK_TRACE_MAP(stack_ids, 8);
/* Three ips: what the kernel's walk and Springboard's agree on at
 * sb_probe_oracle_leaf (the chain beyond the test's frame-pointer
 * functions is the compiler's). */
STACK_TRACE_MAP(stack_ids3, 3);

/* The same three frames as build ids and file offsets
 * (BPF_F_STACK_BUILD_ID: a struct bpf_stack_build_id per frame). */
struct {
  __uint(type, BPF_MAP_TYPE_STACK_TRACE);
  __uint(max_entries, 64);
  __uint(map_flags, BPF_F_STACK_BUILD_ID);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, 3 * sizeof(struct bpf_stack_build_id));
} stack_bids3 SEC(".maps");

struct stackid {
  __s64 id, again, kernel, skip_all, bad_flags, id3;
  __u64 ips[8];
  /* bpf_get_stack with BPF_F_USER_BUILD_ID: three frames, then the kernel
   * stack's build ids and a size that is no multiple of an entry (both
   * -EINVAL); the build-id map's id. */
  __s64 bid_ret, bid_kernel, bid_odd, bid_id;
  struct bpf_stack_build_id bids[3];
};

RESULT_MAP(stackids, struct stackid);

SEC("uprobe")
int BPF_KPROBE(uprobe_stackid) {
  struct stackid* s = RESULT(stackids);
  if (!s) return 0;
  s->id = bpf_get_stackid(ctx, &stack_ids, BPF_F_USER_STACK);
  s->again = bpf_get_stackid(ctx, &stack_ids, BPF_F_USER_STACK);
  s->kernel = bpf_get_stackid(ctx, &stack_ids, 0);
  s->skip_all = bpf_get_stackid(ctx, &stack_ids, BPF_F_USER_STACK | 200);
  s->bad_flags = bpf_get_stackid(ctx, &stack_ids, BPF_F_USER_STACK | (1ULL << 11));
  s->id3 = bpf_get_stackid(ctx, &stack_ids3, BPF_F_USER_STACK);
  bpf_get_stack(ctx, s->ips, sizeof s->ips, BPF_F_USER_STACK);
  s->bid_kernel = bpf_get_stack(ctx, s->bids, sizeof s->bids[0], BPF_F_USER_BUILD_ID);
  s->bid_odd = bpf_get_stack(ctx, s->bids, 40, BPF_F_USER_STACK | BPF_F_USER_BUILD_ID);
  s->bid_ret = bpf_get_stack(ctx, s->bids, sizeof s->bids, BPF_F_USER_STACK | BPF_F_USER_BUILD_ID);
  s->bid_id = bpf_get_stackid(ctx, &stack_bids3, BPF_F_USER_STACK);
  return 0;
}

/* bpf_get_stack and bpf_get_stackid from fentry, fmod_ret and fexit
 * programs, whose ctx is the argument array (the helpers walk from the
 * trampoline's frame): the user stack, the same from the caller on (one
 * frame skipped), a buffer of two ips, the (empty) kernel stack, a size
 * that is not a multiple of 8 and a flag get_stack does not take; the
 * stack's id in a map of four ips (twice), the kernel stack's, more
 * skipped frames than there are, unknown flags. Element 0 is fentry's,
 * 1 fmod_ret's, 2 fexit's. The sections name sb_probe_stack_leaf, whose
 * prototype the stub below gives. */
struct traced_stack {
  __s64 user_ret, skip_ret, small_ret, kernel_ret, odd_ret, flags_ret;
  __s64 id, again, kernel_id, skip_all, bad_flags;
  __u64 ips[8];
  __u64 skipped[8];
  __u64 small[2];
  __u64 kips[2];
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 3);
  __type(key, __u32);
  __type(value, struct traced_stack);
} traced_stacks SEC(".maps");
STACK_TRACE_MAP(traced_ids, 4);

__attribute__((used, noinline)) static long sb_probe_stack_leaf(long x) { return x; }

static __always_inline void record_stack(void* ctx, __u32 key) {
  struct traced_stack* s = bpf_map_lookup_elem(&traced_stacks, &key);
  if (!s) return;
  s->user_ret = bpf_get_stack(ctx, s->ips, sizeof s->ips, BPF_F_USER_STACK);
  s->skip_ret = bpf_get_stack(ctx, s->skipped, sizeof s->skipped, BPF_F_USER_STACK | 1);
  s->small_ret = bpf_get_stack(ctx, s->small, sizeof s->small, BPF_F_USER_STACK);
  s->kips[0] = 0x5555;
  s->kernel_ret = bpf_get_stack(ctx, s->kips, sizeof s->kips, 0);
  s->odd_ret = bpf_get_stack(ctx, s->kips, 12, BPF_F_USER_STACK);
  s->flags_ret = bpf_get_stack(ctx, s->kips, sizeof s->kips, BPF_F_USER_STACK | BPF_F_REUSE_STACKID);
  s->id = bpf_get_stackid(ctx, &traced_ids, BPF_F_USER_STACK);
  s->again = bpf_get_stackid(ctx, &traced_ids, BPF_F_USER_STACK);
  s->kernel_id = bpf_get_stackid(ctx, &traced_ids, 0);
  s->skip_all = bpf_get_stackid(ctx, &traced_ids, BPF_F_USER_STACK | 200);
  s->bad_flags = bpf_get_stackid(ctx, &traced_ids, BPF_F_USER_STACK | (1ULL << 11));
}

SEC("fentry/sb_probe_stack_leaf")
int fentry_stack(__u64* ctx) {
  record_stack(ctx, 0);
  return 0;
}

SEC("fmod_ret/sb_probe_stack_leaf")
int fmod_ret_stack(__u64* ctx) {
  record_stack(ctx, 1);
  return 0;  /* the original runs */
}

SEC("fexit/sb_probe_stack_leaf")
int fexit_stack(__u64* ctx) {
  record_stack(ctx, 2);
  return 0;
}

/* bpf_send_signal / bpf_send_signal_thread: SIGUSR1 (10) to the process
 * and to the thread, the check of signal 0, and a signal past 64. */
struct signals {
  __s64 process, thread, zero, invalid;
};

RESULT_MAP(signals, struct signals);

SEC("uprobe")
int BPF_KPROBE(uprobe_signal) {
  struct signals* s = RESULT(signals);
  if (!s) return 0;
  s->process = bpf_send_signal(10);
  s->thread = bpf_send_signal_thread(10);
  s->zero = bpf_send_signal(0);
  s->invalid = bpf_send_signal_thread(65);
  return 0;
}

/* Fault injection as with kprobes (bpf_override_return): the probed
 * function returns -12 (-ENOMEM) for the argument 13, its body skipped;
 * any other argument runs it. The helper's own result goes to `overrides`. */
RESULT_MAP(overrides, __s64);

SEC("uprobe")
int BPF_KPROBE(uprobe_override, long x) {
  if (x == 13) {
    __s64* r = RESULT(overrides);
    long rc = bpf_override_return(ctx, -12);
    if (r) *r = rc;
  }
  return 0;
}

/* Not a probe: attaching it as one is an error. */
SEC("xdp")
int not_a_probe(struct xdp_md* ctx) { return XDP_PASS; }

char LICENSE[] SEC("license") = "GPL";
