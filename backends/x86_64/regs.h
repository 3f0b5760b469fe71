// x86-64 register map (design example 4): which native register holds each
// BPF register, and which native registers the backend keeps for itself.
#pragma once

#include <cstdint>

#include "backends/regmap.h"

namespace sb::x86_64 {

// Native registers in hardware encoding order.
enum NReg : uint8_t { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

// BPF register -> native register. r1-r5 are the System V argument
// registers in order, so helper calls need no moves; r0 is rax, the return
// register; r6-r9 and r10 live in callee-saved registers, so they survive
// helper calls without spills (the Linux kernel makes the same choice).
inline constexpr NReg kBpfToNative[11] = {
    RAX,  // r0: return value of helpers and of the program
    RDI,  // r1: argument 1 (the memory pointer on entry)
    RSI,  // r2: argument 2 (the memory length on entry)
    RDX,  // r3: argument 3; div/mod clobber rdx, so it is saved around them
    RCX,  // r4: argument 4; shifts by register need cl, so it is saved around them
    R8,   // r5: argument 5
    RBX,  // r6: callee-saved
    R13,  // r7: callee-saved
    R14,  // r8: callee-saved
    R15,  // r9: callee-saved
    RBP,  // r10: frame pointer, callee-saved, top of the 512-byte BPF stack
};

// IR register r11 (ax, see ir/ir.h): x86-64 has no free register left: ax shares r9 with kSaveRdx, which is
// written only by div/mod and atomics, never while ax is live.
inline constexpr NReg kAX = R9;
// IR register r12 (ax2) shares r10 with kSaveRax in the same way.
inline constexpr NReg kAX2 = R10;

// Registers no BPF register lives in.
inline constexpr NReg kScratch = R11;     // immediates, divisors, call targets
inline constexpr NReg kSaveRax = R10;     // rax kept here across div/mod and fetch loops
inline constexpr NReg kSaveRdx = R9;      // rdx kept here across div/mod; second scratch
inline constexpr NReg kEntryFrame = R12;  // entry function's frame, to unwind from any depth

// System V: the argument registers and the callee-saved set.
inline constexpr NReg kArgRegs[6] = {RDI, RSI, RDX, RCX, R8, R9};
inline constexpr int kFpArgRegs = 8;  // xmm0-xmm7
constexpr bool is_callee_saved(NReg r) { return r == RBX || r == RBP || (r >= R12 && r <= R15); }

static_assert(backend::regmap::args_in_place(kBpfToNative, kArgRegs), "r1-r5 must be the native argument registers");
static_assert(backend::regmap::callee_saved_kept(kBpfToNative, is_callee_saved), "r6-r10 must survive native calls");
static_assert(backend::regmap::one_to_one(kBpfToNative, [](NReg r) { return r == RSP; }),
              "each BPF register needs its own native register, never rsp");
static_assert(kBpfToNative[0] == RAX, "r0 must be the native return register");
static_assert(is_callee_saved(kEntryFrame), "the entry frame must survive helper calls");
static_assert(backend::regmap::private_regs_free(kBpfToNative, {kScratch, kSaveRax, kSaveRdx, kEntryFrame}),
              "scratch registers must be distinct and hold no BPF register");
static_assert(kAX == kSaveRdx && kAX != kScratch, "div/mod read an ax divisor into kScratch before parking rdx");
static_assert(kAX2 == kSaveRax && kAX2 != kScratch, "ax2 is never live across div/mod or atomics");
}  // namespace sb::x86_64
