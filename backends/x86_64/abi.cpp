// x86-64 calling convention (System V): frames, calls, returns, exit stub.
//
// Every function's frame (design example 9):
//
//   entry function (called from C)        bpf-to-bpf callee
//   +--------------------------+          +--------------------------+
//   | return address           |          | return address           |
//   | saved rbp, rbx,          |          | saved rbp, rbx,          |
//   | r13, r14, r15, r12       |          | r13, r14, r15            |
//   +--------------------------+ <- rbp = r10 = r12                   <- rbp = r10
//   | 512-byte BPF stack       |          | 512-byte BPF stack       |
//   | 8 bytes padding          |          |                          |
//   +--------------------------+ <- rsp, 16-byte aligned  ----------- <- rsp
//
// r12 keeps the entry frame, so Unwind and Trap leave from any call depth
// by resetting rsp to it. The entry returns { rax = r0, rdx = status }.
#include "backends/x86_64/x86_64.h"

namespace sb::x86_64 {

using mc::I;

namespace {
constexpr NReg kSavedByEveryFunction[] = {RBP, RBX, R13, R14, R15};  // push order
}

void X86ISel::prologue() {
  const auto& op = t_.op;
  for (NReg r : kSavedByEveryFunction) emit(I(op[PUSH64r]).r(reg(r, 64)));
  if (in_entry()) emit(I(op[PUSH64r]).r(reg(kEntryFrame, 64)));
  emit(I(op[MOV64rr]).r(reg(RBP, 64)).r(reg(RSP, 64)));
  // Entry: 6 pushes + return address = 56 bytes, so 8 more keep rsp aligned.
  const int64_t frame = fn().frame_size + (in_entry() ? 8 : 0);
  emit(I(op[SUB64ri32]).r(reg(RSP, 64)).r(reg(RSP, 64)).i(frame));
  if (in_entry()) emit(I(op[MOV64rr]).r(reg(kEntryFrame, 64)).r(reg(RBP, 64)));
}

// rsp = frame top, pop what prologue() pushed, return.
void X86ISel::function_epilogue(NReg frame_top) {
  const auto& op = t_.op;
  emit(I(op[MOV64rr]).r(reg(RSP, 64)).r(reg(frame_top, 64)));
  if (frame_top == kEntryFrame) emit(I(op[POP64r]).r(reg(kEntryFrame, 64)));
  for (int k = std::size(kSavedByEveryFunction) - 1; k >= 0; --k)
    emit(I(op[POP64r]).r(reg(kSavedByEveryFunction[k], 64)));
  emit(I(op[RET64]));
}

void X86ISel::program_exit_stub() {
  const auto& op = t_.op;
  out_.bind(exit_label());
  load_imm(RDX, 0, 32);  // status: no fault
  out_.bind(trap_label());
  function_epilogue(kEntryFrame);
}

void X86ISel::exit(const ir::Inst& inst) {
  if (!in_entry()) return function_epilogue(RBP);
  if (!is_last(inst)) emit(I(t_.op[JMP_1]).e(ref(exit_label())));  // else falls into the stub
}

void X86ISel::trap(const ir::Inst& inst) {
  load_imm(RAX, inst.origin, 32);
  load_imm(RDX, inst.target, 32);
  emit(I(t_.op[JMP_1]).e(ref(trap_label())));
}

// r1-r5 are already the argument registers and rsp is aligned (see above).
void X86ISel::call_helper(uint32_t id) {
  load_imm(kScratch, int64_t(helper_address(id)), 64);
  emit(I(t_.op[CALL64r]).r(reg(kScratch, 64)));
}

void X86ISel::call_local(uint32_t index) {
  emit(I(t_.op[CALL64pcrel32]).e(ref(function(index))));
}

}  // namespace sb::x86_64

namespace sb::backend {
extern const TargetDesc kX86_64Target;
const TargetDesc kX86_64Target = {
    Arch::X86_64, "x86-64", x86_64::kSpec,
    [](mc::Emitter& out, const CodegenOptions& opts) -> std::unique_ptr<ISel> {
      return std::make_unique<x86_64::X86ISel>(out, opts);
    }};
}  // namespace sb::backend
