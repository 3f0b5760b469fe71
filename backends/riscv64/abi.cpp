// riscv64 calling convention (LP64D): frames, calls, returns, exit stub.
//
// Every function's frame (design example 9), the entry function's here;
// addresses grow upwards:
//
//                    | caller's stack arguments   |  native signatures only:
//                    | word k at [s5+64+8k]       |  spilled below (see after)
//     caller's sp -> +----------------------------+  16-byte aligned
//                    | ra                 [s5+56] |
//                    | s1 .. s5  [s5+48]..[s5+16] |
//                    | s6                 [s5+8]  |
//                    | padding            [s5+0]  |
//   s5 = r10 = s6 -> +----------------------------+
//                    | the BPF stack region: the  |  a native signature's
//                    | entry's frame, 7 callee    |  argument words at
//                    | frames of 512 (ir.h        |  [s5+spill_off+8w]
//                    | kCallFrame), run block     |
//              sp -> +----------------------------+  16-byte aligned
//                    | CallSig's outgoing stack   |  only during the call,
//                    | words, 16-byte aligned     |  word k at [sp+8k]
//
// A bpf-to-bpf callee saves the same area without s6 and the padding (ra
// at [sp+40], s1 .. s5 at [sp+32] .. [sp+0]) and allocates nothing more:
// its s5 = r10 is the caller's minus 512, inside the entry's region, so no
// native data lies between two BPF frames.
//
// s6 keeps the entry frame, so Unwind and Trap leave from any call depth
// by resetting sp to it, and a tail call jumps from any depth to the
// target's tail entry (after its saves, where sp = s6) with sp = s6.
// The entry returns { a0 = r0, a1 = status }.
// Helper calls go through an absolute address in t0 (jalr).
//
// A function with a native signature (a trampoline) spills its argument
// words right after the prologue, which touches none of a0-a7 and fa0-fa7:
// a5 is BPF r0 and a6/a7 are argument registers 6 and 7, so nothing may run
// before the spill. Words come from a0-a7, fa0-fa7 (a float after the
// eighth goes to the next integer register, then the stack) and the
// caller's stack area above the save area. A 32-bit float is stored as its
// bits zero-extended: FSW (not FSD: the F register holds it NaN-boxed,
// upper half all ones) and a zero upper half. CallSig reverses the spill:
// outgoing stack words, then fa0-fa7, then a0-a7 last, as a0-a5 hold BPF
// r0-r5; integers narrower than 64 bits are extended as LP64 wants (32-bit
// ones, unsigned included, sign-extended), and a floating-point result's
// bits come back to r0 from fa0.
//
// Reach: local calls and jumps are JAL (+-1 MiB), and the assembler
// relaxes a conditional branch beyond +-4 KiB into an inverted branch over
// a JAL. So the code between a jump and its target (including a jump to
// the exit stub at the end of the entry, and a local call) must stay
// within 1 MiB. A far AUIPC+JALR pair would need LLVM's RISCVMCExpr
// (%pcrel_hi, %call), which is not among the installed headers.
#include <llvm/Support/MathExtras.h>

#include "backends/riscv64/riscv64.h"
#include "ir/diag.h"

namespace sb::riscv64 {

using mc::I;

namespace {
constexpr NReg kSavedByEveryFunction[] = {RA, S1, S2, S3, S4, S5};  // from the top of the frame down
// LP64D (backends/native_abi.h): 8 integer and 8 floating-point argument
// registers, two-word structs split between a7 and the stack, floats
// falling back to integer registers.
constexpr const backend::CallingConvention& kLp64d = backend::calling_convention(Arch::Riscv64);
static_assert(std::size(kArgRegs) == 8 && std::size(kFpArgRegs) == 8);

// How an integer argument of each type is read from its word so that it is
// extended as LP64 passes it: signed types sign-extended, unsigned ones zero-
// extended, except 32-bit ones, which are sign-extended whatever their sign.
Opc lp64_load(const ir::NativeValue& v) {
  switch (v.type) {
    case ir::Type::I8: return LB;
    case ir::Type::U8: return LBU;
    case ir::Type::I16: return LH;
    case ir::Type::U16: return LHU;
    case ir::Type::I32: case ir::Type::U32: return LW;
    default: return LD;  // 64-bit integers, pointers, struct words, floats in integer registers
  }
}

// The argument each word belongs to (a two-word struct has two).
std::vector<ir::NativeValue> word_types(const ir::Signature& sig) {
  std::vector<ir::NativeValue> out;
  for (const ir::NativeValue& a : sig.args)
    for (uint32_t w = 0; w < a.words(); ++w) out.push_back(a);
  return out;
}

// The save area: every function's registers, and s6 in the entry.
constexpr int64_t save_area(bool entry) {
  return llvm::alignTo(8 * (std::size(kSavedByEveryFunction) + (entry ? 1 : 0)), 16);
}
constexpr int64_t slot(size_t k, bool entry) { return save_area(entry) - 8 * int64_t(k + 1); }
}  // namespace

// A probe (ir::Function::probe) is jumped to from the probed instruction
// with every register live. It saves them in the kernel's riscv64
// user_regs_struct (backends/native_abi.h: pc, then x1-x31 at 8 * n) and
// calls the body, an ordinary native function (ptr) -> ptr:
//
//   probed code's sp -> +-----------------------------+  = regs.sp (x2)
//                       | user_regs_struct (256)      |
//                  sp -> +-----------------------------+  <- a0, the body's argument
//                       | f0-f31 (256; fa0-fa1 at a   |
//                       | return)                     |
//                       | the body's frame            |
//
// On the way back every register but t1 is reloaded and control goes on
// at the body's result through t1. Without ir::Function::Probe::next (a
// return landing, where t1 is dead) sp is given back first. With `next`
// (a probe's stub, runtime/hook/hook_guest.h) sp stays at the
// user_regs_struct: the stub reloads t1 from it and frees it, so no
// register the probed code has live is lost, wherever the probe is.
// RISC-V has no flags to keep.
void RvISel::probe_entry() {
  const ir::Function::Probe& probe = *fn().probe;
  const backend::ProbeRegs& regs = backend::probe_regs(Arch::Riscv64);
  static_assert(backend::probe_regs(Arch::Riscv64).ip == 0 && backend::probe_regs(Arch::Riscv64).sp == 8 * SP &&
                    backend::probe_regs(Arch::Riscv64).rc == 8 * A0,
                "user_regs_struct keeps x<n> at 8 * n, pc at 0");
  auto sd = [&](NReg r, int32_t off) { emit(I(t_.op[SD]).r(t_.x[r]).r(t_.x[SP]).i(off)); };
  auto ld = [&](NReg r, int32_t off) { emit(I(t_.op[LD]).r(t_.x[r]).r(t_.x[SP]).i(off)); };
  ri(ADDI, SP, SP, -int64_t(regs.size));
  for (uint8_t r = RA; r < 32; ++r)
    if (r != SP) sd(NReg(r), 8 * r);
  ri(ADDI, T0, SP, regs.size);
  sd(T0, 8 * SP);
  load_imm(T0, int64_t(probe.ip));
  sd(T0, regs.ip);
  using V = ir::Function::Probe::Vectors;
  // All of them, or fa0-fa1 (f10, f11) at a return; slot k holds f(first + k).
  const int first = probe.vectors == V::ReturnValues ? 10 : 0;
  const int fregs = probe.vectors == V::All ? 32 : probe.vectors == V::ReturnValues ? 2 : 0;
  mv(A0, SP);
  const int farea = (8 * fregs + 15) / 16 * 16;  // sp stays 16-byte aligned
  if (fregs) ri(ADDI, SP, SP, -farea);
  for (int f = 0; f < fregs; ++f) emit(I(t_.op[FSD]).r(t_.f64[first + f]).r(t_.x[SP]).i(8 * f));
  llvm::MCSymbol* body = out_.new_label();
  emit(I(t_.op[JAL]).r(t_.x[RA]).e(ref(body)));
  for (int f = 0; f < fregs; ++f) emit(I(t_.op[FLD]).r(t_.f64[first + f]).r(t_.x[SP]).i(8 * f));
  if (fregs) ri(ADDI, SP, SP, farea);
  mv(T1, A0);  // where to go on
  for (uint8_t r = RA; r < 32; ++r)
    if (r != SP && r != T1) ld(NReg(r), 8 * r);
  if (!probe.next) ri(ADDI, SP, SP, regs.size);
  emit(I(t_.op[JALR]).r(t_.x[ZERO]).r(t_.x[T1]).i(0));
  out_.bind(body);
}

void RvISel::prologue() {
  if (in_entry() && fn().probe) probe_entry();
  const bool entry = in_entry();
  ri(ADDI, SP, SP, -save_area(entry));
  for (size_t k = 0; k < std::size(kSavedByEveryFunction); ++k)
    emit(I(t_.op[SD]).r(t_.x[kSavedByEveryFunction[k]]).r(t_.x[SP]).i(slot(k, entry)));
  if (entry) emit(I(t_.op[SD]).r(t_.x[kEntryFrame]).r(t_.x[SP]).i(slot(std::size(kSavedByEveryFunction), entry)));
  if (!entry) {  // r10 moves down inside the entry's BPF stack region
    add_imm(native(ir::kFP), native(ir::kFP), -int64_t(ir::kCallFrame));
    return;
  }
  out_.mark_symbol(mc::kTailEntrySymbol);  // sp = the entry frame (s6)
  mv(native(ir::kFP), SP);
  add_imm(SP, SP, -int64_t(llvm::alignTo(module().stack_bytes() + ir::kRunBlockBytes, 16)));
  mv(kEntryFrame, native(ir::kFP));
  if (fn().native) spill_native_args();
}

void RvISel::fp_mem(Opc o, uint8_t freg, bool f32, NReg base, int32_t off) {
  const auto [b, disp] = address(base, off);
  emit(I(t_.op[o]).r(f32 ? t_.f32[freg] : t_.f64[freg]).r(t_.x[b]).i(disp));
}

// Argument word w to [r10 + spill_off + 8w] (see the diagram above). Only
// kScratch (addresses) and kScratch2 (stack words) are written.
void RvISel::spill_native_args() {
  const ir::Signature& sig = *fn().native;
  const NReg fp = native(ir::kFP);
  const int32_t caller_args = int32_t(save_area(in_entry()));
  const std::vector<backend::WordLocation> locs = backend::classify_args(sig, kLp64d);
  auto store = [&](Opc o, NReg value, int32_t off) {
    const auto [b, disp] = address(fp, off);
    emit(I(t_.op[o]).r(t_.x[value]).r(t_.x[b]).i(disp));
  };
  for (size_t w = 0; w < locs.size(); ++w) {
    const int32_t slot = sig.spill_off + int32_t(8 * w);
    const backend::WordLocation& l = locs[w];
    switch (l.kind) {
      case backend::WordLocation::IntReg:
        store(SD, kArgRegs[l.index], slot);
        break;
      case backend::WordLocation::FpReg:
        fp_mem(l.f32 ? FSW : FSD, kFpArgRegs[l.index], l.f32, fp, slot);
        break;
      case backend::WordLocation::Stack: {
        const auto [b, disp] = address(fp, caller_args + int32_t(8 * l.index));
        ri(LD, kScratch2, b, disp);
        store(SD, kScratch2, slot);
        break;
      }
    }
    // A float's upper half: NaN-boxing ones in an F register, undefined in
    // an integer register or a stack slot. The frame holds zeros there.
    if (l.f32) store(SW, ZERO, slot + 4);
  }
}

// sp = frame top, reload what prologue() saved, return.
void RvISel::function_epilogue(NReg frame_top) {
  const bool entry = frame_top == kEntryFrame;
  mv(SP, frame_top);
  for (size_t k = 0; k < std::size(kSavedByEveryFunction); ++k)
    ri(LD, kSavedByEveryFunction[k], SP, slot(k, entry));
  if (entry) ri(LD, kEntryFrame, SP, slot(std::size(kSavedByEveryFunction), entry));
  ri(ADDI, SP, SP, save_area(entry));
  ri(JALR, ZERO, RA, 0);
}

void RvISel::program_exit_stub() {
  out_.bind(exit_label());
  load_imm(kRetRegs[1], 0);  // status: no fault
  out_.bind(trap_label());
  mv(kRetRegs[0], native(0));
  function_epilogue(kEntryFrame);
}

// A native function returns r0 as its signature's type: a float's bits in
// fa0 (FMV.W.X NaN-boxes), a narrow integer extended as LP64 wants.
void RvISel::exit(const ir::Inst& inst) {
  if (fn().native) {
    const ir::NativeValue& ret = fn().native->ret;
    const NReg r0 = native(0);
    if (ret.is_fp()) {
      const bool f32 = ret.type == ir::Type::F32;
      emit(I(t_.op[f32 ? FMV_W_X : FMV_D_X]).r(f32 ? t_.f32[kFpArgRegs[0]] : t_.f64[kFpArgRegs[0]]).r(t_.x[r0]));
    } else {
      switch (ret.type) {
        case ir::Type::I8: ri(SLLI, r0, r0, 56); ri(SRAI, r0, r0, 56); break;
        case ir::Type::U8: ri(ANDI, r0, r0, 0xff); break;
        case ir::Type::I16: ri(SLLI, r0, r0, 48); ri(SRAI, r0, r0, 48); break;
        case ir::Type::U16: ri(SLLI, r0, r0, 48); ri(SRLI, r0, r0, 48); break;
        case ir::Type::I32: case ir::Type::U32: ri(ADDIW, r0, r0, 0); break;
        default: break;
      }
    }
  }
  if (!in_entry()) return function_epilogue(SP);  // sp is still at the save area
  if (!is_last(inst)) jump(exit_label());  // else falls into the stub
}

void RvISel::trap(const ir::Inst& inst) {
  load_imm(native(0), int64_t(inst.origin));
  load_imm(kRetRegs[1], inst.target);
  jump(trap_label());
}

// r1-r5 are already the argument registers and sp is aligned (see above).
void RvISel::call_helper(uint32_t id) { call_address(helper_address(id)); }

void RvISel::call_address(uint64_t address) {
  load_imm(kScratch, int64_t(address));
  ri(JALR, RA, kScratch, 0);
  mv(native(0), kRetRegs[0]);
}

// Ahead-of-time objects (backends/aot.h). Without RISCVMCExpr (%pcrel_hi,
// %call) there is no AUIPC pair, so the address comes from a 32-bit
// PC-relative word (R_RISCV_32_PCREL) that a JAL jumps over, leaving the
// word's address in its link register; the code stays position-independent:
//   jal  t0, 1f            ; t0 = the word's address
//   .reloc ., R_RISCV_32_PCREL, symbol + addend; .word 0
// 1: lw   t1, 0(t0)
//   add  dst, t0, t1
// A call does that into t0 and then `jalr ra, 0(t0)`.
void RvISel::load_symbol(NReg dst, uint32_t index, int64_t addend) {
  llvm::MCSymbol* after = out_.new_label();
  emit(I(t_.op[JAL]).r(t_.x[kScratch]).e(ref(after)));
  out_.reloc_value(symbol_ref(index, addend), 4, "R_RISCV_32_PCREL");  // LLVM would write ADD32 + SUB32
  out_.bind(after);
  ri(LW, kScratch2, kScratch, 0);
  rr(ADD, dst, kScratch, kScratch2);
}

void RvISel::call_symbol(uint32_t index) {
  load_symbol(kScratch, index, 0);
  ri(JALR, RA, kScratch, 0);
  mv(native(0), kRetRegs[0]);
}

// The helper with r1 (a0) kept in a 16-byte slot below sp; a non-zero
// result is the target's tail entry: sp goes back to the entry frame, as
// the entry prologue left it after its saves (s6), and control jumps
// there. The target's epilogue then returns to the entry's caller.
void RvISel::tail_call(const ir::Inst& inst) {
  const NReg ctx = native(1), r0 = native(0);
  ri(ADDI, SP, SP, -16);
  emit(I(t_.op[SD]).r(t_.x[ctx]).r(t_.x[SP]).i(0));
  call_helper(inst.target);
  ri(LD, ctx, SP, 0);
  ri(ADDI, SP, SP, 16);
  llvm::MCSymbol* fall_through = out_.new_label();
  emit(I(t_.op[BEQ]).r(t_.x[r0]).r(t_.x[ZERO]).e(ref(fall_through)));
  mv(SP, kEntryFrame);
  ri(JALR, ZERO, r0, 0);
  out_.bind(fall_through);
}

// Calls `inst.imm` with this function's own signature, the argument words
// read from [r10 + inst.off]; the result (float bits included) lands in r0.
void RvISel::call_with_signature(const ir::Inst& inst) {
  const ir::Signature& sig = *fn().native;
  const NReg fp = native(ir::kFP);
  const std::vector<backend::WordLocation> locs = backend::classify_args(sig, kLp64d);
  const std::vector<ir::NativeValue> types = word_types(sig);
  const int64_t area = llvm::alignTo(8 * backend::stack_slots(locs), 16);  // keeps sp aligned
  auto load = [&](Opc o, NReg dst, int32_t off) {
    const auto [b, disp] = address(fp, off);
    ri(o, dst, b, disp);
  };
  if (area) add_imm(SP, SP, -area);
  for (size_t w = 0; w < locs.size(); ++w) {
    const int32_t slot = inst.off + int32_t(8 * w);
    const backend::WordLocation& l = locs[w];
    if (l.kind == backend::WordLocation::Stack) {
      load(lp64_load(types[w]), kScratch2, slot);
      const auto [b, disp] = address(SP, int32_t(8 * l.index));
      emit(I(t_.op[SD]).r(t_.x[kScratch2]).r(t_.x[b]).i(disp));
    } else if (l.kind == backend::WordLocation::FpReg) {
      fp_mem(l.f32 ? FLW : FLD, kFpArgRegs[l.index], l.f32, fp, slot);  // FLW NaN-boxes
    }
  }
  for (size_t w = 0; w < locs.size(); ++w)  // last: a0-a5 hold r1-r5 and r0, read above only through r10
    if (locs[w].kind == backend::WordLocation::IntReg)
      load(lp64_load(types[w]), kArgRegs[locs[w].index], inst.off + int32_t(8 * w));
  call_address(uint64_t(inst.imm));
  if (area) add_imm(SP, SP, area);
  if (sig.ret.is_fp()) {
    const NReg r0 = native(0);
    if (sig.ret.type == ir::Type::F32) {
      emit(I(t_.op[FMV_X_W]).r(t_.x[r0]).r(t_.f32[kFpArgRegs[0]]));  // sign-extends the bits
      zext32(r0, r0);
    } else {
      emit(I(t_.op[FMV_X_D]).r(t_.x[r0]).r(t_.f64[kFpArgRegs[0]]));
    }
  }
}

void RvISel::call_local(uint32_t index) {
  emit(I(t_.op[JAL]).r(t_.x[RA]).e(ref(function(index))));
}

}  // namespace sb::riscv64

namespace sb::backend {
extern const TargetDesc kRiscv64Target;
const TargetDesc kRiscv64Target = {
    Arch::Riscv64, "riscv64", riscv64::kSpec,
    [](mc::Emitter& out, const CodegenOptions& opts) -> std::unique_ptr<ISel> {
      return std::make_unique<riscv64::RvISel>(out, opts);
    },
    // base + a signed 12-bit offset only
    {.min_off = -2048, .max_off = 2047}};
}  // namespace sb::backend
