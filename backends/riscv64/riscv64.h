// riscv64 backend internals shared by regs.cpp (register map and LLVM name
// tables), isel.cpp (instruction selection, constant materialization) and
// abi.cpp (LP64D calling convention, prologue/epilogue, calls, exit stub).
// The target is RV64IMAFD: no compressed instructions, no bit manipulation;
// F and D only move floating-point arguments and results of native
// signatures (trampolines) between registers and memory.
#pragma once

#include <cstdint>
#include <utility>

#include <llvm/ADT/SmallVector.h>

#include "backends/isel.h"
#include "backends/native_abi.h"
#include "backends/mc/inst.h"
#include "backends/riscv64/regs.h"

namespace sb::riscv64 {

// Every LLVM opcode this backend emits, by TableGen name.
#define SB_RISCV64_OPCODES(X)                                                                   \
  X(ADD) X(ADDW) X(ADDI) X(ADDIW) X(SUB) X(SUBW) X(LUI)                                         \
  X(MUL) X(MULW) X(DIV) X(DIVU) X(DIVW) X(DIVUW) X(REM) X(REMU) X(REMW) X(REMUW)                \
  X(AND) X(ANDI) X(OR) X(ORI) X(XOR) X(XORI) X(SLTIU)                                           \
  X(SLL) X(SLLW) X(SLLI) X(SLLIW) X(SRL) X(SRLW) X(SRLI) X(SRLIW) X(SRA) X(SRAW) X(SRAI) X(SRAIW) \
  X(LB) X(LH) X(LW) X(LD) X(LBU) X(LHU) X(LWU) X(SB) X(SH) X(SW) X(SD)                          \
  X(BEQ) X(BNE) X(BLT) X(BGE) X(BLTU) X(BGEU) X(JAL) X(JALR)                                    \
  X(AMOADD_W_AQ_RL) X(AMOADD_D_AQ_RL) X(AMOOR_W_AQ_RL) X(AMOOR_D_AQ_RL)                         \
  X(AMOAND_W_AQ_RL) X(AMOAND_D_AQ_RL) X(AMOXOR_W_AQ_RL) X(AMOXOR_D_AQ_RL)                       \
  X(AMOSWAP_W_AQ_RL) X(AMOSWAP_D_AQ_RL) X(LR_W_AQ_RL) X(LR_D_AQ_RL) X(SC_W_RL) X(SC_D_RL)        \
  X(FLW) X(FSW) X(FLD) X(FSD) X(FMV_X_W) X(FMV_X_D) X(FMV_W_X) X(FMV_D_X)

enum Opc : uint16_t {
#define SB_RISCV64_ENUM(name) name,
  SB_RISCV64_OPCODES(SB_RISCV64_ENUM)
#undef SB_RISCV64_ENUM
  kNumOpcodes
};

// LLVM numbers for the opcodes, for x0..x31 (in NReg order) and for
// f0..f31 as single (f32) and as double (f64) registers.
struct Tables {
  unsigned op[kNumOpcodes];
  unsigned x[32];
  unsigned f32[32], f64[32];
};
const Tables& tables();  // resolved on first use
const char* opcode_name(Opc op);

// "-relax": branches to local labels are resolved by the assembler, with no
// linker relaxation relocations; the assembler still turns an out-of-range
// conditional branch into an inverted branch over a JAL.
inline constexpr mc::TargetSpec kSpec = {"riscv64-unknown-linux-gnu", "generic-rv64", "+m,+a,+f,+d,-c,-relax"};

// Constant materialization (as LLVM's RISCVMatInt, restricted to RV64I):
// a sequence of at most 8 instructions, the first reading x0 and each
// following one reading the previous result. Ops: LUI, ADDI, ADDIW, SLLI,
// SRLI, XORI; `imm` is the instruction's immediate operand (LUI: 20 bits).
struct MatStep {
  Opc op;
  int64_t imm;
};
using MatSeq = llvm::SmallVector<MatStep, 8>;
MatSeq materialize(int64_t value);

class RvISel final : public backend::ISel {
 public:
  using ISel::ISel;

 private:
  // abi.cpp
  void prologue() override;
  void program_exit_stub() override;
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
  void divmod(const ir::Inst& inst);
  void movsx(const ir::Inst& inst);
  void bswap(const ir::Inst& inst);
  void load(const ir::Inst& inst);
  void store(const ir::Inst& inst);
  void atomic(const ir::Inst& inst);
  void branch(const ir::Inst& inst);

  // Building blocks.
  void load_imm(NReg dst, int64_t imm);                 // dst = imm (all 64 bits)
  void add_imm(NReg dst, NReg src, int64_t imm, bool w32 = false);  // dst = src + imm; large via kScratch
  void zext32(NReg dst, NReg src);                      // dst = (uint32_t)src
  NReg operand(const ir::Inst& inst, NReg scratch);     // `b` in a register: src, x0 or scratch
  std::pair<NReg, int64_t> address(NReg base, int32_t off);  // base' + imm12, maybe via kScratch
  std::pair<NReg, int64_t> address(NReg base, const ir::Inst& access);  // a load's or store's
  void fp_mem(Opc o, uint8_t freg, bool f32, NReg base, int32_t off);  // FLW/FSW/FLD/FSD freg, off(base)
  void rr(Opc o, NReg d, NReg a, NReg b) { emit(mc::I(t_.op[o]).r(t_.x[d]).r(t_.x[a]).r(t_.x[b])); }
  void ri(Opc o, NReg d, NReg a, int64_t imm) { emit(mc::I(t_.op[o]).r(t_.x[d]).r(t_.x[a]).i(imm)); }
  void mv(NReg d, NReg s) { if (d != s) ri(ADDI, d, s, 0); }
  void jump(llvm::MCSymbol* target) { emit(mc::I(t_.op[JAL]).r(t_.x[ZERO]).e(ref(target))); }
  void emit(const llvm::MCInst& inst) { out_.emit(inst); }

  const Tables& t_ = tables();
};

inline NReg native(uint8_t ir_reg) {
  return ir_reg == ir::kAX ? kAX : ir_reg == ir::kAX2 ? kAX2 : kBpfToNative[ir_reg];
}

}  // namespace sb::riscv64
