// FNV-1a over the input memory, 64-bit and 32-bit, in two sections.
#include "sb_bpf.h"

SEC("socket/fnv64") __u64 fnv1a64(void *data, __u64 len) {
  const __u8 *p = data;
  __u64 h = 0xcbf29ce484222325ULL;
  for (__u64 i = 0; i < len && i < 4096; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

SEC("socket/fnv32") __u64 fnv1a32(void *data, __u64 len) {
  const __u8 *p = data;
  __u32 h = 0x811c9dc5;
  for (__u64 i = 0; i < len && i < 4096; i++) {
    h ^= p[i];
    h *= 0x01000193;
  }
  return h;
}
