// Global data: .rodata (a const volatile tunable, a table, strings), .data
// (initialised) and .bss (zeroed, static and global), plus trace_printk
// with formats from .rodata and a %s string from .data.
#include "sb_bpf.h"

const volatile __u32 scale = 3;            // .rodata
const __u64 table[4] = {1, 10, 100, 1000}; // .rodata
__u64 total = 100;                          // .data
char greeting[8] = "hello";                 // .data
__u64 calls;                                // .bss
static __u64 hidden;                        // .bss

SEC("xdp") __u64 use_globals(void *data, __u64 len) {
  calls++;
  total += len * scale;
  hidden += table[len & 3];
  bpf_printk("call %d len %llu total %llu", calls, len, total);
  bpf_printk("%s %c %03x", greeting, 'x', 255);
  return total * 1000000 + hidden;
}
