// x86-64 backend internals shared by regs.cpp (register map and LLVM name
// tables), isel.cpp (instruction selection) and abi.cpp (System V calling
// convention, prologue/epilogue, calls, exit stub).
#pragma once

#include <cstdint>

#include <llvm/ADT/SmallVector.h>

#include "backends/isel.h"
#include "backends/native_abi.h"
#include "backends/mc/inst.h"
#include "backends/x86_64/regs.h"

namespace sb::x86_64 {

// Every LLVM opcode this backend emits, by TableGen name.
#define SB_X86_OPCODES(X)                                                                     \
  X(MOV64rr) X(MOV32rr) X(MOV64ri) X(MOV64ri32) X(MOV32ri) X(MOV32r0) X(XOR32rr)            \
  X(ADD64rr) X(ADD32rr) X(ADD64ri8) X(ADD64ri32) X(ADD32ri8) X(ADD32ri)                       \
  X(SUB64rr) X(SUB32rr) X(SUB64ri8) X(SUB64ri32) X(SUB32ri8) X(SUB32ri)                       \
  X(AND64rr) X(AND32rr) X(AND64ri8) X(AND64ri32) X(AND32ri8) X(AND32ri)                       \
  X(OR64rr) X(OR32rr) X(OR64ri8) X(OR64ri32) X(OR32ri8) X(OR32ri)                             \
  X(XOR64rr) X(XOR64ri8) X(XOR64ri32) X(XOR32ri8) X(XOR32ri)                                  \
  X(IMUL64rr) X(IMUL32rr) X(IMUL64rri8) X(IMUL64rri32) X(IMUL32rri8) X(IMUL32rri)             \
  X(SHL64ri) X(SHL32ri) X(SHR64ri) X(SHR32ri) X(SAR64ri) X(SAR32ri)                           \
  X(SHL64rCL) X(SHL32rCL) X(SHR64rCL) X(SHR32rCL) X(SAR64rCL) X(SAR32rCL)                     \
  X(NEG64r) X(NEG32r) X(DIV64r) X(DIV32r) X(IDIV64r) X(IDIV32r) X(CQO) X(CDQ)                 \
  X(TEST64rr) X(TEST32rr) X(CMP64rr) X(CMP32rr) X(CMP64ri8) X(CMP64ri32) X(CMP32ri8) X(CMP32ri) \
  X(TEST64ri32) X(TEST32ri)                                                                  \
  X(MOVSX64rr8) X(MOVSX64rr16) X(MOVSX64rr32) X(MOVSX32rr8) X(MOVSX32rr16) X(MOVZX32rr16)     \
  X(BSWAP64r) X(BSWAP32r) X(ROL16ri)                                                         \
  X(MOVZX32rm8) X(MOVZX32rm16) X(MOV32rm) X(MOV64rm) X(MOVSX64rm8) X(MOVSX64rm16) X(MOVSX64rm32) \
  X(MOV8mr) X(MOV16mr) X(MOV32mr) X(MOV64mr) X(MOV8mi) X(MOV16mi) X(MOV32mi) X(MOV64mi32)     \
  X(LOCK_PREFIX) X(ADD64mr) X(ADD32mr) X(OR64mr) X(OR32mr) X(AND64mr) X(AND32mr) X(XOR64mr)   \
  X(XOR32mr) X(XADD64rm) X(XADD32rm) X(XCHG64rm) X(XCHG32rm) X(CMPXCHG64rm) X(CMPXCHG32rm)    \
  X(JMP_1) X(JMP64r) X(JCC_1) X(CALL64r) X(CALL64pcrel32) X(RET64) X(PUSH64r) X(POP64r)               \
  X(LEA64r) X(LEA64_32r)                                                                     \
  X(MOVSDmr) X(MOVSSmr) X(MOVSDrm) X(MOVSSrm) X(MOVPQIto64rr) X(MOV64toPQIrr)                \
  X(MOVPDI2DIrr) X(MOVDI2PDIrr)                                                              \
  X(PUSHF64) X(CLD) X(STD) X(SAHF) X(RETI64) X(JMP64m) X(MOVAPSmr) X(MOVAPSrm) X(SHR8ri) X(AND8ri) X(ADD8ri)

enum Opc : uint16_t {
#define SB_X86_ENUM(name) name,
  SB_X86_OPCODES(SB_X86_ENUM)
#undef SB_X86_ENUM
  kNumOpcodes
};

// LLVM numbers for the opcodes and for each native register at each width.
struct Tables {
  unsigned op[kNumOpcodes];
  unsigned r64[16], r32[16], r16[16], r8[16];
  unsigned xmm[16];
  unsigned rip;  // the base of RIP-relative operands (LoadSym)
  unsigned fs;   // the segment of the thread pointer (ThreadPtr: mov fs:0)
};
const Tables& tables();  // resolved on first use
inline constexpr mc::TargetSpec kSpec = {"x86_64-unknown-linux-gnu", "", ""};

// x86 condition codes (the JCC_1 operand).
enum CondCode : int64_t {
  CC_B = 2, CC_AE = 3, CC_E = 4, CC_NE = 5, CC_BE = 6, CC_A = 7,
  CC_L = 12, CC_GE = 13, CC_LE = 14, CC_G = 15,
};

class X86ISel final : public backend::ISel {
 public:
  using ISel::ISel;

 private:
  // abi.cpp
  void prologue() override;
  void program_exit_stub() override;
  // Loop heads on 16 bytes when that takes at most 10 bytes of nops, as
  // gcc -O2 aligns them (.p2align 4,,10): on this Intel VM collatz ran 10%
  // faster, sort 4%; aligning every head was faster still for bits (20%)
  // but made its code larger than the kernel JIT's, which aligns nothing.
  static constexpr unsigned kLoopMaxSkip = 10;
  LoopAlignment loop_alignment() const override { return {16, kLoopMaxSkip}; }
  void choose_saved_registers();
  int64_t pushes() const { return int64_t(saved_.size()) + (in_entry() ? 1 : 0); }  // r12 too in the entry
  // A callee's pushes and return address leave rsp 8 bytes off alignment.
  bool callee_padding() const { return !in_entry() && saved_.size() % 2 == 0; }
  void function_epilogue(NReg frame_top);
  void call_helper(uint32_t id);
  void call_local(uint32_t index);
  void call_address(uint64_t address);
  void call_symbol(uint32_t index);
  void load_symbol(NReg dst, uint32_t index, int64_t addend);
  void call_with_signature(const ir::Inst& inst);
  void tail_call(const ir::Inst& inst);
  void spill_native_args();
  void probe_entry();
  void exit(const ir::Inst& inst);
  void trap(const ir::Inst& inst);

  // isel.cpp
  void select(const ir::Inst& inst) override;
  void alu(const ir::Inst& inst);
  bool fused_lea(const ir::Inst& inst);
  void shift(const ir::Inst& inst);
  void divmod(const ir::Inst& inst);
  void load_imm(NReg dst, int64_t imm, int width);
  void load(const ir::Inst& inst);
  void store(const ir::Inst& inst);
  void atomic(const ir::Inst& inst);
  void branch(const ir::Inst& inst);
  void emit(const llvm::MCInst& inst) { out_.emit(inst); }
  mc::I& mem(mc::I& i, NReg base, int32_t disp);  // base, scale 1, no index, disp, no segment
  mc::I& mem(mc::I& i, NReg base, const ir::Inst& access);  // a load's or store's, index included
  unsigned reg(NReg r, int width) const;

  const Tables& t_ = tables();
  llvm::SmallVector<NReg, 5> saved_;  // this function's callee-saved pushes, in order (abi.cpp)
};

inline NReg native(uint8_t ir_reg) {
  return ir_reg == ir::kAX ? kAX : ir_reg == ir::kAX2 ? kAX2 : kBpfToNative[ir_reg];
}

}  // namespace sb::x86_64
