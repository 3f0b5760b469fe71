// arm64 calling convention (AAPCS64): frames, calls, returns, exit stub.
//
// Every function's frame (design example 9); addresses grow upwards:
//
//     caller's sp -> +-------------------------+  16-byte aligned
//                    | x26 (entry frame) [+56] |
//                    | x25 (r10)         [+48] |
//                    | x22 (r9)          [+40] |
//                    | x21 (r8)          [+32] |
//                    | x20 (r7)          [+24] |
//                    | x19 (r6)          [+16] |
//                    | x30 (lr)          [+8]  |
//                    | x29 (fp)          [+0]  |  the AAPCS frame record
// x29 = x25 = r10 -> +-------------------------+
//   (= x26 in entry) | the BPF stack region:   |  entry function only
//                    | its frame, 7 callee     |
//                    | frames of 512 (ir.h     |
//                    | kCallFrame), run block  |
//              sp -> +-------------------------+  16-byte aligned
//
// A bpf-to-bpf callee saves the same area and sets its x25 = r10 to the
// caller's minus 512, inside the entry's region; it allocates nothing
// more, so no native data lies between two BPF frames, and its sp stays
// at its frame record (x29).
//
// The save area is the same in every function (x26 shares its STP with
// x25, so saving it costs nothing in a bpf-to-bpf callee).
//
// x26 keeps the entry frame, so Unwind and Trap leave from any call depth
// by resetting sp to it, and a tail call jumps from any depth to the
// target's tail entry (after its saves, where sp = x26) with sp = x26.
// The entry returns { x0 = r0, x1 = status }.
// Helper calls go through an absolute address in x9 (blr); local calls are
// BL (+-128 MiB).
//
// A function with a native signature (a trampoline) spills its incoming
// argument words into its frame right after the prologue: registers from
// x0-x7 and d0-d7 (s0-s7), stack arguments from the caller's sp, just above
// the save area:
//
//   | stack argument 1, 2, ...  | <- x25 + 64 + 8 * slot
//   | save area (64 bytes)      |
//   +---------------------------+ <- x25 = r10
//   | ... argument words at r10 + spill_off, 8 bytes each ...
//
// CallSig reverses it: outgoing stack words at sp (a 16-byte aligned
// area), then floating-point and integer registers; a float result comes
// back in d0/s0 and goes to r0 as its bits.
#include <llvm/Support/MathExtras.h>

#include "backends/arm64/arm64.h"
#include "ir/diag.h"

namespace sb::arm64 {

using mc::I;

namespace {
// Register pairs below the frame record, from [sp+16] up (STP/LDP offsets scale by 8).
constexpr std::pair<NReg, NReg> kSavedPairs[] = {{X19, X20}, {X21, X22}, {X25, kEntryFrame}};
constexpr int64_t kSaveArea = 16 * (1 + std::size(kSavedPairs));
static_assert(kSaveArea % 16 == 0, "sp stays 16-byte aligned");
// AAPCS64 (Linux): 8 integer and 8 floating-point argument registers; a
// struct that does not fit the integer registers left goes wholly to the
// stack, and so does every later integer argument.
constexpr const backend::CallingConvention& kAapcs64 = backend::calling_convention(Arch::Arm64);
}  // namespace

// A probe (ir::Function::probe) is branched to from the probed
// instruction with every register live. It saves them in the kernel's
// arm64 user_pt_regs (backends/native_abi.h) and calls the body, an
// ordinary native function (ptr) -> ptr:
//
//   probed code's sp -> +---------------------------+  = user_pt_regs.sp
//                       | user_pt_regs: x0-x30, sp, |
//                       | pc, pstate (272 bytes)    |
//                  sp -> +---------------------------+  <- x0, the body's argument
//                       | v0-v31 (512; v0-v3 at a   |
//                       | return)                   |
//                       | the body's frame          |
//
// pstate holds the condition flags (NZCV; the other bits are not the
// program's to see in user space). On the way back the flags and every
// register but x16 are reloaded and control goes on at the body's result
// (always where to go on; ir::Function::Probe::next, when set, is that
// same address) through x16 (IP0). Without `next` (a return landing,
// where x16 is dead) sp is given back first. With `next` (a probe's
// stub, runtime/hook/hook_guest.h) sp stays at the user_pt_regs: the stub
// reloads x16 from them and frees them, so no register the probed code
// has live is lost, wherever the probe is.
void A64ISel::probe_entry() {
  const auto& x = t_.x;
  const ir::Function::Probe& probe = *fn().probe;
  const backend::ProbeRegs& regs = backend::probe_regs(Arch::Arm64);
  add_imm(SP, SP, -int64_t(regs.size));
  for (uint8_t r = 0; r < 30; r += 2)
    emit(I(t_.op[STPXi]).r(x[r]).r(x[r + 1]).r(x[SP]).i(r));  // scaled by 8
  emit(I(t_.op[STRXui]).r(x[LR]).r(x[SP]).i(30));
  add_imm(X0, SP, regs.size);
  emit(I(t_.op[STRXui]).r(x[X0]).r(x[SP]).i(regs.sp / 8));
  emit(I(t_.op[MRS]).r(x[X0]).i(kNzcv));
  emit(I(t_.op[STRXui]).r(x[X0]).r(x[SP]).i((regs.ip + 8) / 8));  // pstate follows pc
  load_imm(X0, probe.ip);
  emit(I(t_.op[STRXui]).r(x[X0]).r(x[SP]).i(regs.ip / 8));
  using V = ir::Function::Probe::Vectors;
  const int vectors = probe.vectors == V::All ? 32 : probe.vectors == V::ReturnValues ? 4 : 0;
  mov(X0, SP);
  if (vectors) add_imm(SP, SP, -16 * vectors);
  for (int v = 0; v < vectors; v += 2) emit(I(t_.op[STPQi]).r(t_.q[v]).r(t_.q[v + 1]).r(x[SP]).i(v));  // scaled by 16
  llvm::MCSymbol* body = out_.new_label();
  emit(I(t_.op[BL]).e(ref(body)));
  for (int v = 0; v < vectors; v += 2) emit(I(t_.op[LDPQi]).r(t_.q[v]).r(t_.q[v + 1]).r(x[SP]).i(v));
  if (vectors) add_imm(SP, SP, 16 * vectors);
  mov(X16, X0);  // where to go on
  emit(I(t_.op[LDRXui]).r(x[X0]).r(x[SP]).i((regs.ip + 8) / 8));
  emit(I(t_.op[MSR]).i(kNzcv).r(x[X0]));
  for (uint8_t r = 0; r < 30; r += 2) {
    if (r == X16) {
      emit(I(t_.op[LDRXui]).r(x[X17]).r(x[SP]).i(X17));
      continue;
    }
    emit(I(t_.op[LDPXi]).r(x[r]).r(x[r + 1]).r(x[SP]).i(r));
  }
  emit(I(t_.op[LDRXui]).r(x[LR]).r(x[SP]).i(30));
  if (!probe.next) add_imm(SP, SP, regs.size);  // add: the flags stay
  emit(I(t_.op[BR]).r(x[X16]));
  out_.bind(body);
}

void A64ISel::prologue() {
  if (in_entry() && fn().probe) probe_entry();
  measure_function();
  const auto& x = t_.x;
  emit(I(t_.op[STPXpre]).r(x[SP]).r(x[FP]).r(x[LR]).r(x[SP]).i(-kSaveArea / 8));
  for (size_t k = 0; k < std::size(kSavedPairs); ++k)
    emit(I(t_.op[STPXi]).r(x[kSavedPairs[k].first]).r(x[kSavedPairs[k].second]).r(x[SP]).i(2 * int64_t(k + 1)));
  if (in_entry()) out_.mark_symbol(mc::kTailEntrySymbol);  // sp = the entry frame (x26)
  mov(FP, SP);
  if (!in_entry()) {  // r10 moves down inside the entry's BPF stack region
    add_imm(native(ir::kFP), native(ir::kFP), -int64_t(ir::kCallFrame));
    return;
  }
  mov(native(ir::kFP), SP);
  add_imm(SP, SP, -int64_t(llvm::alignTo(module().stack_bytes() + ir::kRunBlockBytes, 16)));
  mov(kEntryFrame, native(ir::kFP));
  if (fn().native) spill_native_args();
}

// 8-byte words between registers and [base + off] (memory() may use kTmp
// for the offset, so data goes through kTmp2).
void A64ISel::spill_native_args() {
  const ir::Signature& sig = *fn().native;
  const NReg fp = native(ir::kFP);
  const std::vector<backend::WordLocation> locs = backend::classify_args(sig, kAapcs64);
  for (size_t w = 0; w < locs.size(); ++w) {
    const int32_t slot = sig.spill_off + int32_t(8 * w);
    const backend::WordLocation& l = locs[w];
    NReg value = kTmp2;
    if (l.kind == backend::WordLocation::IntReg) {
      value = kArgRegs[l.index];
    } else if (l.kind == backend::WordLocation::FpReg) {  // floats are their bits, zero-extended
      if (l.f32) emit(I(t_.op[FMOVSWr]).r(t_.w[kTmp2]).r(t_.s[l.index]));
      else emit(I(t_.op[FMOVDXr]).r(t_.x[kTmp2]).r(t_.d[l.index]));
    } else {
      memory(kLoadX, 8, kTmp2, fp, int32_t(kSaveArea + 8 * l.index));
      if (l.f32) mov(kTmp2, kTmp2, true);
    }
    memory(kStoreX, 8, value, fp, slot);
  }
}

// sp = the save area (the entry frame's, or this callee's frame record),
// reload what prologue() saved, return.
void A64ISel::function_epilogue(NReg frame_top) {
  const auto& x = t_.x;
  if (frame_top != FP) mov(SP, frame_top);  // a callee's sp is still at its frame record
  for (size_t k = 0; k < std::size(kSavedPairs); ++k)
    emit(I(t_.op[LDPXi]).r(x[kSavedPairs[k].first]).r(x[kSavedPairs[k].second]).r(x[SP]).i(2 * int64_t(k + 1)));
  emit(I(t_.op[LDPXpost]).r(x[SP]).r(x[FP]).r(x[LR]).r(x[SP]).i(kSaveArea / 8));
  emit(I(t_.op[RET]).r(x[LR]));
}

void A64ISel::program_exit_stub() {
  out_.bind(exit_label());
  load_imm(kRetRegs[1], 0);  // status: no fault
  out_.bind(trap_label());
  mov(kRetRegs[0], native(0));
  function_epilogue(kEntryFrame);
}

void A64ISel::exit(const ir::Inst& inst) {
  if (fn().native && fn().native->ret.is_fp()) {  // the result is r0's bits, in d0/s0
    if (fn().native->ret.type == ir::Type::F32) emit(I(t_.op[FMOVWSr]).r(t_.s[0]).r(t_.w[native(0)]));
    else emit(I(t_.op[FMOVXDr]).r(t_.d[0]).r(t_.x[native(0)]));
  }
  if (!in_entry()) return function_epilogue(FP);
  if (!is_last(inst)) jump(exit_label());  // else falls into the stub
}

void A64ISel::trap(const ir::Inst& inst) {
  load_imm(native(0), inst.origin);
  load_imm(kRetRegs[1], inst.target);
  jump(trap_label());
}

// r1-r5 are already the argument registers and sp is aligned (see above).
void A64ISel::call_helper(uint32_t id) { call_address(helper_address(id)); }

void A64ISel::call_address(uint64_t address) {
  load_imm(kTmp, address);
  emit(I(t_.op[BLR]).r(t_.x[kTmp]));
  mov(native(0), kRetRegs[0]);
}

// Ahead-of-time objects (backends/aot.h): BL to the symbol
// (R_AARCH64_CALL26; the linker adds a veneer when it is far), and an
// address from a 32-bit PC-relative word beside the code
// (R_AARCH64_PREL32): no AArch64MCExpr (:lo12:) is needed, LLVM resolves
// ADR and the literal load within the section, and the code stays
// position-independent.
//   adr   x9, 1f           ; the word's address
//   ldrsw x10, 1f          ; symbol + addend - the word's address
//   add   dst, x9, x10
//   b     2f
// 1: .word symbol + addend - 1b
// 2:
void A64ISel::call_symbol(uint32_t index) {
  emit(I(t_.op[BL]).e(symbol_ref(index)));
  mov(native(0), kRetRegs[0]);
}

void A64ISel::load_symbol(NReg dst, uint32_t index, int64_t addend) {
  llvm::MCSymbol* word = out_.new_label();
  llvm::MCSymbol* after = out_.new_label();
  emit(I(t_.op[ADR]).r(t_.x[kTmp]).e(ref(word)));
  emit(I(t_.op[LDRSWl]).r(t_.x[kTmp2]).e(ref(word)));
  rrs(ADDXrs, false, dst, kTmp, kTmp2);
  jump(after);
  out_.bind(word);
  out_.value(llvm::MCBinaryExpr::createSub(symbol_ref(index, addend), ref(word), out_.ctx()), 4);
  ++emitted_;  // the word counts as an instruction slot for branch reach
  out_.bind(after);
}

// The helper with r1 (x0) kept in a 16-byte slot below sp; a non-zero
// result is the target's tail entry: sp goes back to the entry frame, as
// the entry prologue left it after its saves (x26), and control jumps
// there. The target's epilogue then returns to the entry's caller.
void A64ISel::tail_call(const ir::Inst& inst) {
  const auto& x = t_.x;
  const NReg ctx = native(1);
  emit(I(t_.op[STRXpre]).r(x[SP]).r(x[ctx]).r(x[SP]).i(-16));
  call_helper(inst.target);
  emit(I(t_.op[LDRXpost]).r(x[SP]).r(x[ctx]).r(x[SP]).i(16));
  llvm::MCSymbol* fall_through = out_.new_label();
  emit(I(t_.op[CBZX]).r(x[native(0)]).e(ref(fall_through)));
  mov(SP, kEntryFrame);
  emit(I(t_.op[BR]).r(x[native(0)]));
  out_.bind(fall_through);
}

// Calls `inst.imm` with this function's own signature, the argument words
// read from [r10 + inst.off]; the result (float bits included) lands in r0.
void A64ISel::call_with_signature(const ir::Inst& inst) {
  if (!fn().native) throw Error("arm64", "call.sig in a function without a native signature");
  const ir::Signature& sig = *fn().native;
  const NReg fp = native(ir::kFP);
  const std::vector<backend::WordLocation> locs = backend::classify_args(sig, kAapcs64);
  const int64_t area = llvm::alignTo(backend::stack_slots(locs) * 8, 16);
  if (area) add_imm(SP, SP, -area);
  for (size_t w = 0; w < locs.size(); ++w) {
    const int32_t slot = inst.off + int32_t(8 * w);
    const backend::WordLocation& l = locs[w];
    if (l.kind == backend::WordLocation::IntReg) continue;
    memory(kLoadX, 8, kTmp2, fp, slot);
    if (l.kind == backend::WordLocation::Stack) {
      memory(kStoreX, 8, kTmp2, SP, int32_t(8 * l.index));
    } else if (l.f32) {
      emit(I(t_.op[FMOVWSr]).r(t_.s[l.index]).r(t_.w[kTmp2]));
    } else {
      emit(I(t_.op[FMOVXDr]).r(t_.d[l.index]).r(t_.x[kTmp2]));
    }
  }
  for (size_t w = 0; w < locs.size(); ++w)  // last: x0-x7 hold r1-r5 and r0, read above only through r10
    if (locs[w].kind == backend::WordLocation::IntReg)
      memory(kLoadX, 8, kArgRegs[locs[w].index], fp, inst.off + int32_t(8 * w));
  call_address(uint64_t(inst.imm));
  if (area) add_imm(SP, SP, area);
  if (sig.ret.is_fp()) {
    if (sig.ret.type == ir::Type::F32) emit(I(t_.op[FMOVSWr]).r(t_.w[native(0)]).r(t_.s[0]));
    else emit(I(t_.op[FMOVDXr]).r(t_.x[native(0)]).r(t_.d[0]));
  }
}

void A64ISel::call_local(uint32_t index) { emit(I(t_.op[BL]).e(ref(function(index)))); }

}  // namespace sb::arm64

namespace sb::backend {
extern const TargetDesc kArm64Target;
const TargetDesc kArm64Target = {
    Arch::Arm64, "arm64", arm64::kSpec,
    [](mc::Emitter& out, const CodegenOptions& opts) -> std::unique_ptr<ISel> {
      return std::make_unique<arm64::A64ISel>(out, opts);
    },
    // [Xn, Xm] and [Xn, Xm, LSL #log2(size)]; LDUR/STUR take -256..255
    {.index = true, .size_scale = true, .min_off = -256, .max_off = 255, .unaligned_loads = true}};
}  // namespace sb::backend
