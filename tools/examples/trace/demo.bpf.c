/* Probes for tools/examples/trace/demo.c, written as libbpf programs are
 * (libbpf-bootstrap's uprobe.bpf.c): the entry probe prints compute's
 * arguments with bpf_printk, sends them as a perf event and counts the
 * calls; the return probe counts each result in a hash map and sends it
 * through a ring buffer; the USDT program (libbpf's usdt.bpf.h) keeps the
 * total of each round of the demo's demo:step probe.
 *
 *   springboard trace demo.bpf.o -- ./demo 3
 *
 * Compiled with clang -O2 -g -target bpf -D__TARGET_ARCH_x86. */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} calls SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __s64);
  __type(value, __u64);
} results SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4096);
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
} arguments SEC(".maps");

SEC("uprobe//proc/self/exe:compute")
int BPF_KPROBE(on_compute, long x, long y) {
  __u32 zero = 0;
  __u64* n = bpf_map_lookup_elem(&calls, &zero);
  if (n) __sync_fetch_and_add(n, 1);
  bpf_printk("compute(%ld, %ld) from pid %d", x, y, (int)(bpf_get_current_pid_tgid() >> 32));
  long args[2] = {x, y};
  bpf_perf_event_output(ctx, &arguments, BPF_F_CURRENT_CPU, args, sizeof args);
  return 0;
}

SEC("uretprobe//proc/self/exe:compute")
int BPF_KRETPROBE(on_compute_return, long ret) {
  __u64 one = 1;
  __u64* seen = bpf_map_lookup_elem(&results, &ret);
  if (seen) __sync_fetch_and_add(seen, 1);
  else bpf_map_update_elem(&results, &ret, &one, BPF_NOEXIST);
  long* e = bpf_ringbuf_reserve(&events, sizeof(long), 0);
  if (e) {
    *e = ret;
    bpf_ringbuf_submit(e, 0);
  }
  return 0;
}

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __s64);
  __type(value, __s64);
} steps SEC(".maps");

SEC("usdt//proc/self/exe:demo:step")
int BPF_USDT(on_step, int round, long total) {
  __s64 key = round, value = total;
  bpf_map_update_elem(&steps, &key, &value, BPF_ANY);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
