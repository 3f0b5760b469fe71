// `extern __kconfig` variables as libbpf resolves them (frontend/kconfig.h):
// LINUX_KERNEL_VERSION and LINUX_HAS_BPF_COOKIE, which libbpf defines, and
// a __weak CONFIG_ option no kernel has, which is then 0.
#include "sb_bpf.h"

extern unsigned int LINUX_KERNEL_VERSION __attribute__((section(".kconfig")));
extern _Bool LINUX_HAS_BPF_COOKIE __attribute__((section(".kconfig")));
extern int CONFIG_SB_NOT_A_KERNEL_OPTION __attribute__((section(".kconfig"), weak));

SEC("xdp") __u64 kconfig(void *data, __u64 len) {
  return ((__u64)LINUX_KERNEL_VERSION << 32) | ((__u64)LINUX_HAS_BPF_COOKIE << 16) |
         (__u16)CONFIG_SB_NOT_A_KERNEL_OPTION;
}
