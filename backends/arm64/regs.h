// arm64 register map (design example 4): which native register holds each
// BPF register, and which native registers the backend keeps for itself.
#pragma once

#include <cstdint>

#include "backends/regmap.h"

namespace sb::arm64 {

// Native registers in hardware encoding order. Encoding 31 is the zero
// register or sp depending on the instruction; they are told apart here
// (ZR = 31, SP = 32) because LLVM names them differently.
enum NReg : uint8_t {
  X0, X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12, X13, X14, X15,
  X16, X17, X18, X19, X20, X21, X22, X23, X24, X25, X26, X27, X28, FP, LR, ZR, SP,
};
constexpr int kNumNRegs = SP + 1;

// BPF register -> native register, as the Linux kernel's bpf2a64[]. r1-r5
// are the AAPCS64 argument registers in order, so helper calls need no
// moves; r0 is x7 rather than x0 so that r1 (x0) survives until a helper
// call returns; r6-r9 and r10 live in callee-saved registers, so they
// survive helper calls without spills.
inline constexpr NReg kBpfToNative[11] = {
    X7,   // r0: return value; the helper's x0 is copied here after a call
    X0,   // r1: argument 1 (the memory pointer on entry)
    X1,   // r2: argument 2 (the memory length on entry)
    X2,   // r3: argument 3
    X3,   // r4: argument 4
    X4,   // r5: argument 5
    X19,  // r6: callee-saved
    X20,  // r7: callee-saved
    X21,  // r8: callee-saved
    X22,  // r9: callee-saved
    X25,  // r10: frame pointer, callee-saved, top of the function's BPF stack
};

// IR register r11 (ax, see ir/ir.h): a caller-saved temporary of its own.
inline constexpr NReg kAX = X13;
// IR register r12 (ax2): another caller-saved temporary of its own.
inline constexpr NReg kAX2 = X14;

// Registers no BPF register lives in. The temporaries are caller-saved, so
// nothing is kept in them across a call.
inline constexpr NReg kTmp = X9;         // immediates, offsets, atomic addresses, call targets
inline constexpr NReg kTmp2 = X10;       // stored constants, quotients, exclusive-store status
inline constexpr NReg kTmp3 = X11;       // exclusive loops: the old value
inline constexpr NReg kTmp4 = X12;       // exclusive loops: the new value
inline constexpr NReg kEntryFrame = X26; // entry function's frame, to unwind from any depth

// AAPCS64: the argument registers, the return registers and the callee-saved set.
inline constexpr NReg kArgRegs[8] = {X0, X1, X2, X3, X4, X5, X6, X7};
inline constexpr NReg kRetRegs[2] = {X0, X1};  // the entry returns { r0, status } here
inline constexpr int kFpArgRegs = 8;             // v0-v7 (d0-d7 / s0-s7); v0 returns floats
constexpr bool is_callee_saved(NReg r) { return (r >= X19 && r <= X28) || r == FP || r == SP; }
// x16/x17 may be clobbered by veneers, x18 is the platform register.
constexpr bool is_reserved(NReg r) { return r == X16 || r == X17 || r == X18 || r == FP || r == LR || r >= ZR; }

static_assert(backend::regmap::args_in_place(kBpfToNative, kArgRegs), "r1-r5 must be the native argument registers");
static_assert(backend::regmap::callee_saved_kept(kBpfToNative, is_callee_saved), "r6-r10 must survive native calls");
static_assert(backend::regmap::one_to_one(kBpfToNative, is_reserved),
              "each BPF register needs its own native register, never a reserved one");
static_assert(kBpfToNative[0] != kRetRegs[0] && kBpfToNative[0] != kRetRegs[1],
              "r0 is copied from x0 after a helper call, and to x0 (status in x1) at the end");
static_assert(is_callee_saved(kEntryFrame), "the entry frame must survive helper calls");
static_assert(!is_reserved(kTmp) && !is_reserved(kTmp2) && !is_reserved(kTmp3) && !is_reserved(kTmp4) &&
                  !is_reserved(kEntryFrame),
              "scratch registers must not be reserved ones");
static_assert(backend::regmap::private_regs_free(kBpfToNative, {kTmp, kTmp2, kTmp3, kTmp4, kEntryFrame, kAX, kAX2}),
              "scratch registers must be distinct and hold no BPF register");

}  // namespace sb::arm64
