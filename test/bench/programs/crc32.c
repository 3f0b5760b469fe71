// CRC-32 (IEEE 802.3, reflected, polynomial 0xedb88320) over 4 KiB, one bit
// at a time, without a table or a branch.
//
// The polynomial is selected by a multiply, not by the usual mask
// `0xedb88320 & -(crc & 1)`: on Linux 6.18 the verifier forks its state at
// every AND of a value in [-1, 0] (maybe_fork_scalars), 32768 times here,
// and at its pending-state limit it dereferences a null pointer (a kernel
// oops that kills the loading process). Do not bring the mask form back.
#include "bench.h"

#define CRC_BYTES 4096

static __noinline __u64 crc32_body(void *mem) {
  const __u8 *p = mem;
  __u32 crc = 0xffffffff;
  for (__u32 i = 0; i < CRC_BYTES; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ ((crc & 1) * 0xedb88320);
  }
  return ~crc;
}

SB_BENCH(crc32, CRC_BYTES)
