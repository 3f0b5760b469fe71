// Stack entries as build id and file offset (the kernel's
// stack_map_get_build_id_offset, kernel/bpf/stackmap.c), for bpf_get_stack
// with BPF_F_USER_BUILD_ID and stack trace maps made with
// BPF_F_STACK_BUILD_ID: an ip inside a loaded ELF object of this process
// (the executable, a shared library: dl_iterate_phdr) that carries an
// NT_GNU_BUILD_ID note becomes BPF_STACK_BUILD_ID_VALID with the note's
// first 20 bytes and the ip's offset in the file (its mapping's file
// offset plus the distance into it, as vm_pgoff << PAGE_SHIFT + ip -
// vm_start); any other ip (JIT code, the vDSO, which the kernel does not
// take as a file either, anonymous memory) stays an ip,
// BPF_STACK_BUILD_ID_IP with a zero build id.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sb::rt {

// struct bpf_stack_build_id (include/uapi/linux/bpf.h).
struct StackBuildId {
  int32_t status;  // kBuildIdEmpty, kBuildIdValid, kBuildIdIp
  uint8_t build_id[20];
  uint64_t offset_or_ip;
};
static_assert(sizeof(StackBuildId) == 32);
constexpr int32_t kBuildIdEmpty = 0, kBuildIdValid = 1, kBuildIdIp = 2;

void build_id_offsets(const uint64_t* ips, size_t n, StackBuildId* out);

}  // namespace sb::rt
