// The probe (kprobe) and tracing program types; see probe.h.
#include "frontend/progtypes/probe.h"

#include "backends/native_abi.h"
#include "frontend/trampoline.h"

namespace sb::bpf {

namespace {

// kprobe_prog_func_proto / tracing_prog_func_proto: everything but the
// packet helpers, as far as Springboard has them; perf_event_output is
// theirs too (bpf_perf_event_output_proto, without packet bytes). The
// stack helpers only where the context is x86-64 pt_regs (the kernel's
// tracing type has them through the trampoline's registers, which
// Springboard does not give them).
bool tracing_helper_allowed(uint32_t id) { return id == 25 || (!packet_helper(id) && !regs_stack_helper(id)); }
bool x86_probe_helper_allowed(uint32_t id) { return regs_stack_helper(id) || tracing_helper_allowed(id); }

constexpr ProgramType probe_type(Arch arch) {
  return ProgramType{.name = arch == Arch::X86_64 ? "kprobe" : arch == Arch::Arm64 ? "kprobe.arm64" : "kprobe.riscv64",
                     .kernel_type = 2,  // BPF_PROG_TYPE_KPROBE
                     .ctx = {.size = backend::probe_regs(arch).size, .fields = {}, .rewritten = false,
                             .writable = false},
                     .raw_memory = false,
                     .direct_packet_access = false,
                     .ret_range = std::nullopt,  // the kernel ignores a probe's result
                     .helper_allowed = arch == Arch::X86_64 ? x86_probe_helper_allowed : tracing_helper_allowed};
}
constexpr ProgramType kProbe[] = {probe_type(Arch::X86_64), probe_type(Arch::Arm64), probe_type(Arch::Riscv64)};

constexpr ProgramType kTracing{.name = "tracing",
                               .kernel_type = 26,  // BPF_PROG_TYPE_TRACING
                               .ctx = {.size = 8 * (tramp::kMaxArgs + 1), .fields = {}, .rewritten = false,
                                       .writable = false},
                               .raw_memory = false,
                               .direct_packet_access = false,
                               .ret_range = std::nullopt,
                               .helper_allowed = tracing_helper_allowed};

}  // namespace

const ProgramType& probe_program_type(Arch arch) { return kProbe[size_t(arch)]; }
const ProgramType& tracing_program_type() { return kTracing; }

}  // namespace sb::bpf
