// Several programs in one object: two in section "xdp" (chosen by function
// name), one in "tc", and a global .text function usable as an entry.
// They use probe_read, get_prandom_u32 and ktime_get_ns.
#include "sb_bpf.h"

__noinline __u64 twice(__u64 x) { return 2 * x; }

// The first 8 input bytes are an address to read 8 bytes from.
SEC("xdp") __u64 read_pointer(void *data, __u64 len) {
  if (len < 8) return 1;
  __u64 addr = *(__u64 *)data;
  __u64 value = 0x1111;
  long err = bpf_probe_read(&value, sizeof(value), (const void *)addr);
  return err ? (__u64)err : twice(value);
}

SEC("xdp") __u64 random_pair(void *data, __u64 len) {
  __u64 a = bpf_get_prandom_u32(), b = bpf_get_prandom_u32();
  return a << 32 | b;
}

SEC("tc") __u64 elapsed(void *data, __u64 len) {
  __u64 t0 = bpf_ktime_get_ns();
  __u64 t1 = bpf_ktime_get_ns();
  return t1 - t0;
}
