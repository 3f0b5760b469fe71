// The probe (kprobe) and tracing program types; see probe.h.
#include "frontend/progtypes/probe.h"

#include "backends/native_abi.h"
#include "frontend/trampoline.h"

namespace sb::bpf {

namespace {

// kprobe_prog_func_proto / tracing_prog_func_proto: everything but the
// packet helpers, as far as Springboard has them; perf_event_output is
// theirs too (bpf_perf_event_output_proto, without packet bytes). The
// stack helpers only natively on x86-64, where they walk the stack of the
// code the program interrupted: a probe's from its pt_regs, a tracing
// program's from its trampoline's frame (the kernel's raw_tp variants,
// which fetch the caller's registers); a guest's is Unicorn memory.
bool guest_helper_allowed(uint32_t id) {
  return id == 25 || (!packet_helper(id) && !regs_stack_helper(id) && !regs_write_helper(id));
}
bool x86_helper_allowed(uint32_t id) { return regs_stack_helper(id) || guest_helper_allowed(id); }
// A probe's programs may also override the probed function's return.
bool x86_probe_helper_allowed(uint32_t id) { return regs_write_helper(id) || x86_helper_allowed(id); }
constexpr auto helpers_of(Arch arch) { return arch == Arch::X86_64 ? x86_helper_allowed : guest_helper_allowed; }

constexpr ProgramType probe_type(Arch arch) {
  return ProgramType{.name = arch == Arch::X86_64 ? "kprobe" : arch == Arch::Arm64 ? "kprobe.arm64" : "kprobe.riscv64",
                     .kernel_type = 2,  // BPF_PROG_TYPE_KPROBE
                     // bpf_user_pt_regs_t, the struct it names on each CPU
                     .ctx = {.size = backend::probe_regs(arch).size, .fields = {}, .rewritten = false,
                             .writable = false,
                             .btf_name = arch == Arch::X86_64  ? "pt_regs"
                                         : arch == Arch::Arm64 ? "user_pt_regs"
                                                               : "user_regs_struct"},
                     .raw_memory = false,
                     .direct_packet_access = false,
                     .ret_range = std::nullopt,  // the kernel ignores a probe's result
                     .helper_allowed = arch == Arch::X86_64 ? x86_probe_helper_allowed : helpers_of(arch)};
}
constexpr ProgramType kProbe[] = {probe_type(Arch::X86_64), probe_type(Arch::Arm64), probe_type(Arch::Riscv64)};

constexpr ProgramType tracing_type(Arch arch) {
  return ProgramType{.name = arch == Arch::X86_64  ? "tracing"
                             : arch == Arch::Arm64 ? "tracing.arm64"
                                                   : "tracing.riscv64",
                     .kernel_type = 26,  // BPF_PROG_TYPE_TRACING
                     .ctx = {.size = 8 * (tramp::kMaxArgs + 1), .fields = {}, .rewritten = false, .writable = false},
                     .raw_memory = false,
                     .direct_packet_access = false,
                     .ret_range = std::nullopt,
                     .helper_allowed = helpers_of(arch)};
}
constexpr ProgramType kTracing[] = {tracing_type(Arch::X86_64), tracing_type(Arch::Arm64), tracing_type(Arch::Riscv64)};

}  // namespace

const ProgramType& probe_program_type(Arch arch) { return kProbe[size_t(arch)]; }
const ProgramType& tracing_program_type(Arch arch) { return kTracing[size_t(arch)]; }

}  // namespace sb::bpf
