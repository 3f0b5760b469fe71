// x86-64 calling convention (System V): frames, calls, returns, exit stub.
//
// Every function's frame (design example 9). The BPF stack is one
// contiguous region in the entry's frame (ir/ir.h kCallFrame): a
// bpf-to-bpf callee moves r10 down by 512 bytes inside it and allocates
// nothing on the native stack, so no return address or saved register
// lies between two BPF frames.
//
//   entry function (called from C)          bpf-to-bpf callee
//   +----------------------------+          +----------------------------+
//   | return address             |          | return address             |
//   | saved rbp, rbx,            |          | saved rbp, [rbx, r13,      |
//   | r13, r14, r15, r12         |          | r14, r15], [8 bytes pad]   |
//   +----------------------------+ <- rbp = r10 = r12     +------------+ <- rsp
//   | entry's BPF frame          |  (frame_size)          r10 = caller's r10 - 512
//   | 7 callee frames of 512     |
//   | run block (160 bytes)      |  ir/harden.h
//   | 8 bytes padding            |
//   +----------------------------+ <- rsp, 16-byte aligned
//
// A callee saves rbx, r13, r14 and r15 (BPF r6-r9) only when it writes
// them, padding to keep rsp 16-byte aligned at calls. Every entry saves all
// four: Unwind and Trap skip the callees' epilogues, and a tail call enters
// another program's entry after that entry's pushes (see below), so every
// entry must push the same. r12 keeps the entry frame, so Unwind and Trap
// leave from any call depth by resetting rsp to it, and a tail call jumps
// from any depth to the target's tail entry (after its pushes, where rsp =
// r12) with rsp = r12. The entry returns { rax = r0, rdx = status }.
//
// A function with a native signature (a trampoline) spills its incoming
// argument words into its frame right after the prologue: registers from
// rdi..r9 and xmm0..xmm7, stack arguments from above the return address:
//
//   | stack argument 1, 2, ...  | <- rbp + 8 * (pushes + 1)
//   | return address            | <- rbp + 48: the stack pointer at entry
//   | saved registers           |    (rbp + 40 the caller's rbp; native_abi.h,
//   |                           |     kX86NativeEntryFrame)
//   +---------------------------+ <- rbp = r10
//   | ... argument words at r10 + spill_off, 8 bytes each ...
//
// CallSig reverses it: outgoing stack words below rsp, then registers.
#include <llvm/Support/MathExtras.h>

#include "backends/x86_64/x86_64.h"
#include "ir/diag.h"

namespace sb::x86_64 {

using mc::I;

namespace {
constexpr const backend::CallingConvention& kSysV = backend::calling_convention(Arch::X86_64);

// The BPF registers `fn` writes, as a bit mask.
unsigned written_regs(const ir::Function& fn) {
  unsigned mask = 0;
  for (const ir::Inst& i : fn.code) {
    switch (ir::op_form(i.op)) {
      case ir::Form::Alu: case ir::Form::Unary: case ir::Form::Ext: case ir::Form::Imm64: case ir::Form::Load:
        mask |= 1u << i.dst;
        break;
      case ir::Form::Atomic:  // fetching forms and xchg write src
        if (i.fetch || i.aop == ir::AtomicOp::Xchg) mask |= 1u << i.src;
        break;
      default:
        break;
    }
  }
  return mask;
}
}  // namespace

// rbp, then the native registers of r6-r9 that the frame rules above need.
void X86ISel::choose_saved_registers() {
  const unsigned written = in_entry() ? ~0u : written_regs(fn());
  saved_.assign(1, RBP);
  for (uint8_t r = 6; r <= 9; ++r)
    if (written & (1u << r)) saved_.push_back(kBpfToNative[r]);
}

// A probe (ir::Function::probe) is jumped to from the probed instruction
// with every register live, so it saves them all, builds the kernel's
// x86-64 pt_regs (backends/native_abi.h) and calls the body, which is an
// ordinary native function (ptr) -> ptr laid out as the entry above:
//
//   | the probed code's red zone (128)    | <- rsp at the probe = pt_regs.sp
//   | continuation (the body's result)    |
//   | pt_regs: r15 ... ss (168 bytes)     | <- rbx = rdi, the body's argument
//   | alignment (0 or 8)                  |
//   | xmm0-xmm15 (256; xmm0-1 at a return)| <- rsp, 16-byte aligned at the call
//   | return address, the body's frame    |
//
// On the way back every register is reloaded from pt_regs. With a fixed
// `next` the stack pointer is then restored whole and `jmp [rip+next]`
// goes on (no return the return-stack predictor would miss); otherwise
// rsp is moved to the continuation and `ret 128` jumps there and steps
// over the red zone. Only the instructions between saving the flags
// (pushfq) and restoring them change flags. They are restored without
// popfq (microcoded, about 20 cycles): the direction flag by std when it
// was set (the body runs with it clear, as the C ABI requires), then
// the arithmetic ones as lahf/sahf-style instrumentation does: OF by
// `add al, 0x7f` with al = OF, then SF ZF AF PF CF by sahf; rax last, by
// mov. Not kept: TF and AC (a debugger's single-step, alignment checks),
// the upper halves of ymm/zmm registers and the x87 stack (neither the
// body, the programs nor the trampoline runtime use them; a helper
// calling an AVX library routine would clobber ymm upper halves).
namespace {
// Each register's offset in pt_regs (arch/x86/include/asm/ptrace.h), by NReg.
constexpr int32_t kPtRegsOffset[16] = {80, 88, 96, 40, 152, 32, 104, 112, 72, 64, 56, 48, 24, 16, 8, 0};
constexpr int32_t kPtRegsFlags = 144, kPtRegsOrigAx = 120, kPtRegsCs = 136, kPtRegsSs = 160;
constexpr int32_t kRedZone = 128;
constexpr int64_t kFlagDirection = 0x400, kFlagOverflowBit = 11;
constexpr const backend::ProbeRegs& kPtRegs = backend::probe_regs(Arch::X86_64);
static_assert(kPtRegs.rc == kPtRegsOffset[RAX] && kPtRegs.sp == kPtRegsOffset[RSP] &&
                  kPtRegs.arg[0] == kPtRegsOffset[RDI] && kPtRegs.arg[1] == kPtRegsOffset[RSI] &&
                  kPtRegs.arg[2] == kPtRegsOffset[RDX] && kPtRegs.arg[3] == kPtRegsOffset[RCX] &&
                  kPtRegs.arg[4] == kPtRegsOffset[R8] && kPtRegs.arg[5] == kPtRegsOffset[R9],
              "the register offsets must be those of backends/native_abi.h");
}  // namespace

void X86ISel::probe_entry() {
  const auto& op = t_.op;
  const ir::Function::Probe& probe = *fn().probe;
  const int32_t regs = kPtRegs.size, cont = regs;
  auto lea = [&](NReg dst, NReg base, int32_t disp) {
    I i(op[LEA64r]);
    emit(mem(i.r(reg(dst, 64)), base, disp));
  };
  auto store = [&](int32_t off, NReg r) {
    I i(op[MOV64mr]);
    emit(mem(i, RSP, off).r(reg(r, 64)));
  };
  auto store_imm = [&](int32_t off, int32_t v) {
    I i(op[MOV64mi32]);
    emit(mem(i, RSP, off).i(v));
  };
  lea(RSP, RSP, -(kRedZone + 8 + regs));
  for (uint8_t r = 0; r < 16; ++r)
    if (r != RSP) store(kPtRegsOffset[r], NReg(r));
  emit(I(op[PUSHF64]));
  emit(I(op[POP64r]).r(reg(RAX, 64)));
  store(kPtRegsFlags, RAX);
  emit(I(op[CLD]));
  lea(RAX, RSP, regs + 8 + kRedZone);
  store(kPtRegs.sp, RAX);
  store_imm(kPtRegsOrigAx, -1);  // as a trap's frame: no system call
  store_imm(kPtRegsCs, 0x33);    // the user code and stack segments of x86-64 Linux
  store_imm(kPtRegsSs, 0x2b);
  load_imm(RAX, int64_t(probe.ip), 64);
  store(kPtRegs.ip, RAX);
  emit(I(op[MOV64rr]).r(reg(RBX, 64)).r(reg(RSP, 64)));
  emit(I(op[AND64ri8]).r(reg(RSP, 64)).r(reg(RSP, 64)).i(-16));
  using V = ir::Function::Probe::Vectors;
  const int vectors = probe.vectors == V::All ? 16 : probe.vectors == V::ReturnValues ? 2 : 0;
  if (vectors) emit(I(op[SUB64ri32]).r(reg(RSP, 64)).r(reg(RSP, 64)).i(16 * vectors));  // keeps 16-byte alignment
  for (int x = 0; x < vectors; ++x) {
    I i(op[MOVAPSmr]);
    emit(mem(i, RSP, 16 * x).r(t_.xmm[x]));
  }
  emit(I(op[MOV64rr]).r(reg(RDI, 64)).r(reg(RBX, 64)));
  llvm::MCSymbol* body = out_.new_label();
  emit(I(op[CALL64pcrel32]).e(ref(body)));
  for (int x = 0; x < vectors; ++x) {
    I i(op[MOVAPSrm]);
    emit(mem(i.r(t_.xmm[x]), RSP, 16 * x));
  }
  emit(I(op[MOV64rr]).r(reg(RSP, 64)).r(reg(RBX, 64)));
  if (!probe.next) store(cont, RAX);
  for (uint8_t r = 0; r < 16; ++r)
    if (r != RSP && r != RAX) {
      I i(op[MOV64rm]);
      emit(mem(i.r(reg(NReg(r), 64)), RSP, kPtRegsOffset[r]));
    }
  {  // the flags, then rax
    I load(op[MOVZX32rm16]);
    emit(mem(load.r(reg(RAX, 32)), RSP, kPtRegsFlags));
    llvm::MCSymbol* clear = out_.new_label();
    emit(I(op[TEST32ri]).r(reg(RAX, 32)).i(kFlagDirection));
    emit(I(op[JCC_1]).e(ref(clear)).i(CC_E));
    emit(I(op[STD]));
    out_.bind(clear);
    emit(I(op[ROL16ri]).r(reg(RAX, 16)).r(reg(RAX, 16)).i(8));  // ah = SF ZF AF PF CF, al = the high byte
    emit(I(op[SHR8ri]).r(reg(RAX, 8)).r(reg(RAX, 8)).i(kFlagOverflowBit - 8));
    emit(I(op[AND8ri]).r(reg(RAX, 8)).r(reg(RAX, 8)).i(1));
    emit(I(op[ADD8ri]).r(reg(RAX, 8)).r(reg(RAX, 8)).i(0x7f));  // OF = al
    emit(I(op[SAHF]));
    I rax(op[MOV64rm]);
    emit(mem(rax.r(reg(RAX, 64)), RSP, kPtRegsOffset[RAX]));
  }
  if (probe.next) {
    lea(RSP, RSP, cont + 8 + kRedZone);
    llvm::MCSymbol* data = out_.new_label();
    emit(I(op[JMP64m]).r(t_.rip).i(1).r(0).e(ref(data)).r(0));
    out_.bind(data);
    out_.u64(*probe.next);
  } else {
    lea(RSP, RSP, cont);
    emit(I(op[RETI64]).i(kRedZone));
  }
  out_.bind(body);
}

void X86ISel::prologue() {
  const auto& op = t_.op;
  if (in_entry() && fn().probe) probe_entry();
  choose_saved_registers();
  for (NReg r : saved_) emit(I(op[PUSH64r]).r(reg(r, 64)));
  if (!in_entry()) {
    if (callee_padding()) emit(I(op[SUB64ri8]).r(reg(RSP, 64)).r(reg(RSP, 64)).i(8));
    emit(I(op[SUB64ri32]).r(reg(RBP, 64)).r(reg(RBP, 64)).i(ir::kCallFrame));
    return;
  }
  emit(I(op[PUSH64r]).r(reg(kEntryFrame, 64)));
  out_.mark_symbol(mc::kTailEntrySymbol);  // rsp = the entry frame (r12)
  emit(I(op[MOV64rr]).r(reg(RBP, 64)).r(reg(RSP, 64)));
  // 6 pushes + return address = 56 bytes, so 8 more keep rsp aligned.
  const int64_t frame = int64_t(llvm::alignTo(module().stack_bytes() + ir::kRunBlockBytes, 16)) + 8;
  emit(I(op[SUB64ri32]).r(reg(RSP, 64)).r(reg(RSP, 64)).i(frame));
  emit(I(op[MOV64rr]).r(reg(kEntryFrame, 64)).r(reg(RBP, 64)));
  if (fn().native) spill_native_args();
}

void X86ISel::spill_native_args() {
  const auto& op = t_.op;
  const ir::Signature& sig = *fn().native;
  const int32_t caller_args = int32_t(8 * (pushes() + 1));
  if (saved_.front() != RBP || caller_args - 8 != backend::kX86NativeEntryFrame.entry_sp)
    throw Error("x86-64 abi", "the native entry frame differs from backends/native_abi.h (kX86NativeEntryFrame)");
  const std::vector<backend::WordLocation> locs = backend::classify_args(sig, kSysV);
  for (size_t w = 0; w < locs.size(); ++w) {
    const int32_t slot = sig.spill_off + int32_t(8 * w);
    const backend::WordLocation& l = locs[w];
    I store(op[MOV64mr]);
    if (l.kind == backend::WordLocation::IntReg) {
      emit(mem(store, RBP, slot).r(reg(kArgRegs[l.index], 64)));
      continue;
    }
    if (l.kind == backend::WordLocation::FpReg) {
      I fp(op[l.f32 ? MOVSSmr : MOVSDmr]);
      emit(mem(fp, RBP, slot).r(t_.xmm[l.index]));
    } else {
      I load(op[MOV64rm]);
      emit(mem(load.r(reg(kScratch, 64)), RBP, caller_args + int32_t(8 * l.index)));
      emit(mem(store, RBP, slot).r(reg(kScratch, 64)));
    }
    if (l.f32) {  // floats are their bits, zero-extended
      I zero(op[MOV32mi]);
      emit(mem(zero, RBP, slot + 4).i(0));
    }
  }
}

// Pops what prologue() pushed and returns. The entry (and Unwind and Trap
// from any depth) first reset rsp to the entry frame; a callee's rsp is
// already where its pushes left it.
void X86ISel::function_epilogue(NReg frame_top) {
  const auto& op = t_.op;
  if (frame_top == kEntryFrame) {
    emit(I(op[MOV64rr]).r(reg(RSP, 64)).r(reg(kEntryFrame, 64)));
    emit(I(op[POP64r]).r(reg(kEntryFrame, 64)));
  } else if (callee_padding()) {
    emit(I(op[ADD64ri8]).r(reg(RSP, 64)).r(reg(RSP, 64)).i(8));
  }
  for (auto r = saved_.rbegin(); r != saved_.rend(); ++r) emit(I(op[POP64r]).r(reg(*r, 64)));
  emit(I(op[RET64]));
}

void X86ISel::program_exit_stub() {
  out_.bind(exit_label());
  load_imm(RDX, 0, 32);  // status: no fault
  out_.bind(trap_label());
  function_epilogue(kEntryFrame);
}

void X86ISel::exit(const ir::Inst& inst) {
  if (fn().native && fn().native->ret.is_fp()) {  // the result is r0's bits, in xmm0
    const bool f32 = fn().native->ret.type == ir::Type::F32;
    emit(I(t_.op[f32 ? MOVDI2PDIrr : MOV64toPQIrr]).r(t_.xmm[0]).r(reg(RAX, f32 ? 32 : 64)));
  }
  if (!in_entry()) return function_epilogue(RBP);
  if (!is_last(inst)) emit(I(t_.op[JMP_1]).e(ref(exit_label())));  // else falls into the stub
}

void X86ISel::trap(const ir::Inst& inst) {
  load_imm(RAX, inst.origin, 32);
  load_imm(RDX, inst.target, 32);
  emit(I(t_.op[JMP_1]).e(ref(trap_label())));
}

// r1-r5 are already the argument registers and rsp is aligned (see above).
void X86ISel::call_helper(uint32_t id) { call_address(helper_address(id)); }

void X86ISel::call_address(uint64_t address) {
  load_imm(kScratch, int64_t(address), 64);
  emit(I(t_.op[CALL64r]).r(reg(kScratch, 64)));
}

// Ahead-of-time objects (backends/aot.h): a direct call the linker
// resolves (R_X86_64_PLT32), and a RIP-relative address (R_X86_64_PC32),
// both position-independent.
void X86ISel::call_symbol(uint32_t index) { emit(I(t_.op[CALL64pcrel32]).e(symbol_ref(index))); }

void X86ISel::load_symbol(NReg dst, uint32_t index, int64_t addend) {
  emit(I(t_.op[LEA64r]).r(reg(dst, 64)).r(t_.rip).i(1).r(0).e(symbol_ref(index, addend)).r(0));
}

// Calls `inst.imm` with this function's own signature, the argument words
// read from [r10 + inst.off]; the result (float bits included) lands in r0.
void X86ISel::call_with_signature(const ir::Inst& inst) {
  const auto& op = t_.op;
  const ir::Signature& sig = *fn().native;
  const std::vector<backend::WordLocation> locs = backend::classify_args(sig, kSysV);
  const int32_t area = int32_t((backend::stack_slots(locs) * 8 + 15) / 16 * 16);  // keeps rsp aligned
  if (area) emit(I(op[SUB64ri32]).r(reg(RSP, 64)).r(reg(RSP, 64)).i(area));
  for (size_t w = 0; w < locs.size(); ++w) {
    const int32_t slot = inst.off + int32_t(8 * w);
    const backend::WordLocation& l = locs[w];
    if (l.kind == backend::WordLocation::Stack) {
      I load(op[MOV64rm]);
      emit(mem(load.r(reg(kScratch, 64)), RBP, slot));
      I store(op[MOV64mr]);
      emit(mem(store, RSP, int32_t(8 * l.index)).r(reg(kScratch, 64)));
    } else if (l.kind == backend::WordLocation::FpReg) {
      I load(op[l.f32 ? MOVSSrm : MOVSDrm]);
      emit(mem(load.r(t_.xmm[l.index]), RBP, slot));
    }
  }
  for (size_t w = 0; w < locs.size(); ++w)  // last: they hold r1-r5, read above only through r10
    if (locs[w].kind == backend::WordLocation::IntReg) {
      I load(op[MOV64rm]);
      emit(mem(load.r(reg(kArgRegs[locs[w].index], 64)), RBP, inst.off + int32_t(8 * w)));
    }
  call_address(uint64_t(inst.imm));
  if (area) emit(I(op[ADD64ri32]).r(reg(RSP, 64)).r(reg(RSP, 64)).i(area));
  if (sig.ret.is_fp()) {
    const bool f32 = sig.ret.type == ir::Type::F32;
    emit(I(op[f32 ? MOVPDI2DIrr : MOVPQIto64rr]).r(reg(RAX, f32 ? 32 : 64)).r(t_.xmm[0]));
  }
}

// The helper with r1 and r2 kept (two pushes keep rsp aligned): the target
// starts with r1 = ctx and r2 = the program array, as after the kernel's
// x86-64 JIT and as in the emulated backends, whatever the helper leaves
// in rsi. A non-zero result is the target's tail entry: rsp goes back to
// the entry frame, as the entry prologue left it after its pushes (r12),
// and control jumps there. The target's epilogue then returns to the
// entry's caller.
void X86ISel::tail_call(const ir::Inst& inst) {
  const auto& op = t_.op;
  const unsigned ctx = reg(native(1), 64), map = reg(native(2), 64), r0 = reg(native(0), 64);
  emit(I(op[PUSH64r]).r(ctx));
  emit(I(op[PUSH64r]).r(map));
  call_helper(inst.target);
  emit(I(op[POP64r]).r(map));
  emit(I(op[POP64r]).r(ctx));
  llvm::MCSymbol* fall_through = out_.new_label();
  emit(I(op[TEST64rr]).r(r0).r(r0));
  emit(I(op[JCC_1]).e(ref(fall_through)).i(CC_E));
  emit(I(op[MOV64rr]).r(reg(RSP, 64)).r(reg(kEntryFrame, 64)));
  emit(I(op[JMP64r]).r(r0));
  out_.bind(fall_through);
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
    },
    // [base + index*1/2/4/8 + disp32]
    {.index = true, .max_scale = 3, .index_with_off = true, .min_off = INT32_MIN, .max_off = INT32_MAX,
     .unaligned_loads = true}};
}  // namespace sb::backend
