// riscv64 calling convention (LP64): frames, calls, returns, exit stub.
//
// Every function's frame (design example 9), the entry function's here;
// addresses grow upwards:
//
//     caller's sp -> +----------------------------+  16-byte aligned
//                    | ra                 [s5+56] |
//                    | s1 .. s5  [s5+48]..[s5+16] |
//                    | s6                 [s5+8]  |
//                    | padding            [s5+0]  |
//   s5 = r10 = s6 -> +----------------------------+
//                    | BPF stack: frame_size      |
//                    | bytes, rounded up to 16    |
//              sp -> +----------------------------+  16-byte aligned
//
// A bpf-to-bpf callee's frame is the same without s6 and the padding: ra
// at [s5+40], s1 .. s5 at [s5+32] .. [s5+0].
//
// s6 keeps the entry frame, so Unwind and Trap leave from any call depth
// by resetting sp to it. The entry returns { a0 = r0, a1 = status }.
// Helper calls go through an absolute address in t0 (jalr).
//
// Reach: local calls and jumps are JAL (+-1 MiB), and the assembler
// relaxes a conditional branch beyond +-4 KiB into an inverted branch over
// a JAL. So the code between a jump and its target (including a jump to
// the exit stub at the end of the entry, and a local call) must stay
// within 1 MiB. A far AUIPC+JALR pair would need LLVM's RISCVMCExpr
// (%pcrel_hi, %call), which is not among the installed headers.
#include <llvm/Support/MathExtras.h>

#include "backends/riscv64/riscv64.h"

namespace sb::riscv64 {

using mc::I;

namespace {
constexpr NReg kSavedByEveryFunction[] = {RA, S1, S2, S3, S4, S5};  // from the top of the frame down

// The save area: every function's registers, and s6 in the entry.
constexpr int64_t save_area(bool entry) {
  return llvm::alignTo(8 * (std::size(kSavedByEveryFunction) + (entry ? 1 : 0)), 16);
}
constexpr int64_t slot(size_t k, bool entry) { return save_area(entry) - 8 * int64_t(k + 1); }
}  // namespace

void RvISel::prologue() {
  const bool entry = in_entry();
  ri(ADDI, SP, SP, -save_area(entry));
  for (size_t k = 0; k < std::size(kSavedByEveryFunction); ++k)
    emit(I(t_.op[SD]).r(t_.x[kSavedByEveryFunction[k]]).r(t_.x[SP]).i(slot(k, entry)));
  if (entry) emit(I(t_.op[SD]).r(t_.x[kEntryFrame]).r(t_.x[SP]).i(slot(std::size(kSavedByEveryFunction), entry)));
  mv(native(ir::kFP), SP);
  const int64_t frame = llvm::alignTo(fn().frame_size, 16);
  if (frame) add_imm(SP, SP, -frame);
  if (entry) mv(kEntryFrame, native(ir::kFP));
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

void RvISel::exit(const ir::Inst& inst) {
  if (!in_entry()) return function_epilogue(native(ir::kFP));
  if (!is_last(inst)) jump(exit_label());  // else falls into the stub
}

void RvISel::trap(const ir::Inst& inst) {
  load_imm(native(0), int64_t(inst.origin));
  load_imm(kRetRegs[1], inst.target);
  jump(trap_label());
}

// r1-r5 are already the argument registers and sp is aligned (see above).
void RvISel::call_helper(uint32_t id) {
  load_imm(kScratch, int64_t(helper_address(id)));
  ri(JALR, RA, kScratch, 0);
  mv(native(0), kRetRegs[0]);
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
    }};
}  // namespace sb::backend
