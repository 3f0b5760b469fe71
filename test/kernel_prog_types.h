// The kernel's program types the kernel-oracle tests and benchmarks use
// (socket filter, tc classifier and action, XDP), as the kernel 6.18
// allows their context (net/core/filter.c: sk_filter_is_valid_access,
// tc_cls_act_is_valid_access, xdp_is_valid_access) and their helpers. A
// type Springboard registers (frontend/progtypes) with the same kernel
// number is returned instead of these tables.
#pragma once

#include <cstdint>

#include "frontend/progtypes/program_type.h"

namespace sb::test {

// By BPF_PROG_TYPE_*; null for a type neither has.
const bpf::ProgramType* kernel_program_type(uint32_t kernel_type);

}  // namespace sb::test
