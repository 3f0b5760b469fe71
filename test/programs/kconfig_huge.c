// An error case: a __kconfig char array whose BTF type claims 1 GiB. The
// loader must refuse it by its size before allocating the .kconfig value
// (the fuzzer found such a type spending seconds and gigabytes in memset).
#include "sb_bpf.h"

extern char CONFIG_SB_HUGE[1u << 30] __attribute__((section(".kconfig"), weak));

SEC("xdp") __u64 kconfig_huge(void *data, __u64 len) { return CONFIG_SB_HUGE[len & 7]; }
