// Where a native signature's argument words live on entry to a function,
// for the three C calling conventions (System V x86-64, AAPCS64, RISC-V
// LP64D). The rules differ in a few facts, kept in one table per target
// (CallingConvention), so one classifier serves every backend: the
// prologue spill of native functions and CallSig both walk its result.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/arch.h"
#include "ir/ir.h"

namespace sb::backend {

struct CallingConvention {
  uint8_t int_regs;  // argument registers for integers: 6, 8, 8
  uint8_t fp_regs;   // for floating point: 8, 8, 8
  // A two-word struct that does not fit in the remaining integer registers
  // goes wholly on the stack (System V, AAPCS64); RISC-V splits it between
  // the last register and the stack.
  bool struct_splits;
  // AAPCS64: once an argument went to the stack for want of integer
  // registers, no later argument uses an integer register.
  bool stack_closes_int_regs;
  // RISC-V: floating-point arguments use integer registers, then the
  // stack, once the floating-point registers are used up.
  bool fp_falls_back_to_int;
};

// The facts of each target's convention, indexed by Arch: the backends'
// abi.cpp and the emulator's guest harness read them from here.
inline constexpr CallingConvention kCallingConventions[] = {
    {6, 8, false, false, false},  // x86-64 System V: rdi..r9, xmm0-7
    {8, 8, false, true, false},   // AAPCS64: x0-x7, v0-v7
    {8, 8, true, false, true},    // RISC-V LP64D: a0-a7, fa0-fa7
};
constexpr const CallingConvention& calling_convention(Arch arch) { return kCallingConventions[size_t(arch)]; }

struct WordLocation {
  enum Kind : uint8_t { IntReg, FpReg, Stack } kind;
  uint8_t index;       // register number within its class, or stack slot (8 bytes each)
  bool f32 = false;    // a 32-bit float: only the low 4 bytes are significant
};

// One location per argument word, in word order (a struct of 9-16 bytes has
// two words). Stack slots count from the first stack argument at the
// caller's stack pointer.
std::vector<WordLocation> classify_args(const ir::Signature& sig, const CallingConvention& cc);

// The number of 8-byte stack slots the arguments use.
uint32_t stack_slots(const std::vector<WordLocation>& locs);

}  // namespace sb::backend

namespace sb::backend {

// The register block a probe's programs get as their context: the
// kernel's pt_regs as BPF programs see it on each architecture (libbpf
// bpf_tracing.h, PT_REGS_*): x86-64 `struct pt_regs`
// (arch/x86/include/asm/ptrace.h: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax
// cx dx si di orig_ax ip cs flags sp ss), arm64 `struct user_pt_regs`
// (regs[31] sp pc pstate), riscv64 `struct user_regs_struct` (pc ra sp gp
// tp t0-t2 s0 s1 a0-a7 s2-s11 t3-t6). Offsets in bytes.
struct ProbeRegs {
  uint16_t size;  // sizeof the struct: what a program may read
  uint16_t ip;    // PT_REGS_IP: the probed instruction (at a return probe, the return address)
  uint16_t sp;    // PT_REGS_SP: the stack pointer at the probe
  uint16_t rc;    // PT_REGS_RC: the return value register
  uint16_t arg[6];  // PT_REGS_PARM1..6 (x86-64: di si dx cx r8 r9)
};
inline constexpr ProbeRegs kProbeRegs[] = {
    {168, 128, 152, 80, {112, 104, 96, 88, 72, 64}},  // x86-64 pt_regs
    {272, 256, 248, 0, {0, 8, 16, 24, 32, 40}},       // arm64 user_pt_regs
    {256, 0, 16, 80, {80, 88, 96, 104, 112, 120}},    // riscv64 user_regs_struct
};
constexpr const ProbeRegs& probe_regs(Arch arch) { return kProbeRegs[size_t(arch)]; }

}  // namespace sb::backend

namespace sb::backend {

// An x86-64 function with a native signature (a trampoline) as its
// prologue leaves it (backends/x86_64/abi.cpp, which checks these): at
// r10 + caller_fp the frame pointer its caller had (rbp, pushed first),
// at r10 + entry_sp the stack pointer it was entered with, where the
// return address into the caller is. What the stack helpers walk from
// (runtime/helpers/tracing_helpers.cpp, RunCtx::frame).
struct NativeEntryFrame {
  int32_t caller_fp;
  int32_t entry_sp;
};
inline constexpr NativeEntryFrame kX86NativeEntryFrame = {40, 48};  // six pushes: rbp rbx r13 r14 r15 r12

}  // namespace sb::backend
