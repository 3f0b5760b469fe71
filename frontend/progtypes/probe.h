// Probe programs (BPF_PROG_TYPE_KPROBE, which libbpf also loads for
// "uprobe" and "uretprobe" sections) and fentry / fexit / fmod_ret
// programs (BPF_PROG_TYPE_TRACING).
//
// A probe's context is the architecture's pt_regs as BPF programs see it
// (backends/native_abi.h, ProbeRegs): real memory, read-only, any aligned
// read of 1, 2, 4 or 8 bytes inside it, as the kernel's
// kprobe_prog_is_valid_access. The size is per architecture (x86-64
// pt_regs 168 bytes, arm64 user_pt_regs 272, riscv64 user_regs_struct
// 256), so there is one type per architecture; the section names give the
// host's.
//
// A tracing program's context is the trampoline's argument array
// (frontend/trampoline.h, Frame): up to 12 argument words and the return
// value, read-only, 8-byte reads (the kernel's btf_ctx_access, without BTF
// types for each word). As for probes, there is one type per architecture
// (the same context): only x86-64's, which runs natively in this process,
// may walk the stack (get_stack, get_stackid).
#pragma once

#include "backends/arch.h"
#include "frontend/progtypes/program_type.h"

namespace sb::bpf {

const ProgramType& probe_program_type(Arch arch);
const ProgramType& tracing_program_type(Arch arch = Arch::X86_64);

}  // namespace sb::bpf
