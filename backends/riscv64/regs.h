// riscv64 register map (design example 4): which native register holds each
// BPF register, and which native registers the backend keeps for itself.
#pragma once

#include <cstdint>

#include "backends/regmap.h"

namespace sb::riscv64 {

// Native registers in hardware encoding order (x0..x31), by ABI name.
enum NReg : uint8_t {
  ZERO, RA, SP, GP, TP, T0, T1, T2, S0, S1, A0, A1, A2, A3, A4, A5,
  A6, A7, S2, S3, S4, S5, S6, S7, S8, S9, S10, S11, T3, T4, T5, T6,
};

// BPF register -> native register, as the Linux kernel's bpf2rv[]. r1-r5
// are the LP64 argument registers in order, so helper calls need no moves;
// r0 is a5 rather than a0 so that r1 (a0) survives until a helper call
// returns; r6-r9 and r10 live in callee-saved registers, so they survive
// helper calls without spills.
inline constexpr NReg kBpfToNative[11] = {
    A5,  // r0: return value; the helper's a0 is copied here after a call
    A0,  // r1: argument 1 (the memory pointer on entry)
    A1,  // r2: argument 2 (the memory length on entry)
    A2,  // r3: argument 3
    A3,  // r4: argument 4
    A4,  // r5: argument 5
    S1,  // r6: callee-saved
    S2,  // r7: callee-saved
    S3,  // r8: callee-saved
    S4,  // r9: callee-saved
    S5,  // r10: frame pointer, callee-saved, top of the function's BPF stack
};

// IR register r11 (ax, see ir/ir.h): a caller-saved temporary of its own.
inline constexpr NReg kAX = T4;
// IR register r12 (ax2): another caller-saved temporary of its own.
inline constexpr NReg kAX2 = T5;

// Registers no BPF register lives in. All temporaries are caller-saved, so
// nothing is kept in them across a call.
inline constexpr NReg kScratch = T0;     // immediates, addresses, call targets
inline constexpr NReg kScratch2 = T1;    // second operand of compares, stored values, masks
inline constexpr NReg kScratch3 = T2;    // quotients, loaded values of LR/SC loops, masks
inline constexpr NReg kScratch4 = T3;    // SC status, the second byte-swap mask
inline constexpr NReg kEntryFrame = S6;  // entry function's frame, to unwind from any depth

// LP64D: the argument registers, the return registers and the callee-saved set.
inline constexpr NReg kArgRegs[8] = {A0, A1, A2, A3, A4, A5, A6, A7};
// Floating-point registers f0..f31 are numbered as x0..x31; only the
// argument registers fa0..fa7 (f10..f17) are used, by native signatures
// (trampolines). fa0 carries a floating-point result.
inline constexpr uint8_t kFpArgRegs[8] = {10, 11, 12, 13, 14, 15, 16, 17};
inline constexpr NReg kRetRegs[2] = {A0, A1};  // the entry returns { r0, status } here
constexpr bool is_callee_saved(NReg r) { return r == SP || r == S0 || r == S1 || (r >= S2 && r <= S11); }

// zero, ra, sp, gp and tp have fixed roles in the ABI.
constexpr bool is_reserved(NReg r) { return r == ZERO || r == RA || r == SP || r == GP || r == TP; }

static_assert(backend::regmap::args_in_place(kBpfToNative, kArgRegs), "r1-r5 must be the native argument registers");
static_assert(backend::regmap::callee_saved_kept(kBpfToNative, is_callee_saved), "r6-r10 must survive native calls");
static_assert(backend::regmap::one_to_one(kBpfToNative, is_reserved),
              "each BPF register needs its own native register, never a reserved one");
static_assert(kBpfToNative[0] != kRetRegs[0] && kBpfToNative[0] != kRetRegs[1],
              "r0 is copied from a0 after a helper call, and to a0 (status in a1) at the end");
static_assert(is_callee_saved(kEntryFrame), "the entry frame must survive helper calls");
static_assert(!is_reserved(kScratch) && !is_reserved(kScratch2) && !is_reserved(kScratch3) &&
                  !is_reserved(kScratch4) && !is_reserved(kEntryFrame),
              "scratch registers must not be reserved ones");
static_assert(backend::regmap::private_regs_free(kBpfToNative, {kScratch, kScratch2, kScratch3, kScratch4, kEntryFrame, kAX, kAX2}),
              "scratch registers must be distinct and hold no BPF register");

}  // namespace sb::riscv64
