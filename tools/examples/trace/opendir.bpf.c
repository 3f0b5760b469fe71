/* A probe on a function of the C library, for any program that lists a
 * directory:
 *
 *   springboard trace opendir.bpf.o -- ls /usr
 *
 * prints each directory `ls` opens (the string read from the traced
 * process with bpf_probe_read_user_str) and counts the opens per result:
 * the return probe sees whether opendir returned NULL.
 * Compiled with clang -O2 -g -target bpf -D__TARGET_ARCH_x86. */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u64);
} opened SEC(".maps"); /* [0]: failed, [1]: opened */

SEC("uprobe/libc.so.6:opendir")
int BPF_KPROBE(on_opendir, const char* path) {
  char name[64];
  if (bpf_probe_read_user_str(name, sizeof name, path) < 0) return 0;
  bpf_printk("opendir(%s)", name);
  return 0;
}

SEC("uretprobe/libc.so.6:opendir")
int BPF_KRETPROBE(on_opendir_return, void* dir) {
  __u32 k = dir != 0;
  __u64* n = bpf_map_lookup_elem(&opened, &k);
  if (n) __sync_fetch_and_add(n, 1);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
