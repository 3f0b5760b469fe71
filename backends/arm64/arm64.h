// arm64 backend internals shared by regs.cpp (register map and LLVM name
// tables), isel.cpp (instruction selection, immediates) and abi.cpp
// (AAPCS64 calling convention, prologue/epilogue, calls, exit stub).
// The target is plain ARMv8.0-A: no LSE atomics (exclusive-access loops
// instead), so the code runs on every arm64 core and in Unicorn.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include <llvm/ADT/SmallVector.h>

#include "backends/arm64/regs.h"
#include "backends/isel.h"
#include "backends/mc/inst.h"
#include "backends/native_abi.h"

namespace sb::arm64 {

// Every LLVM opcode this backend emits, by TableGen name. Suffixes: X/W the
// register width; rs shifted register, ri immediate (logical: N:immr:imms;
// add/sub: imm12 and a shift of 0 or 12), rrr three registers; ui scaled
// unsigned offset, URi (LDUR/STUR) signed 9-bit offset, roX register offset.
#define SB_ARM64_OPCODES(X)                                                                        \
  X(ADDXrs) X(ADDWrs) X(ADDXri) X(ADDWri) X(SUBXrs) X(SUBWrs) X(SUBXri) X(SUBWri)                  \
  X(SUBSXrs) X(SUBSWrs) X(SUBSXri) X(SUBSWri) X(ADDSXri) X(ADDSWri) X(ADDXrx64)                    \
  X(ANDXrs) X(ANDWrs) X(ANDXri) X(ANDWri) X(ORRXrs) X(ORRWrs) X(ORRXri) X(ORRWri)                  \
  X(EORXrs) X(EORWrs) X(EORXri) X(EORWri) X(ANDSXrs) X(ANDSWrs) X(ANDSXri) X(ANDSWri)              \
  X(ORNXrs) X(ORNWrs)                                                                              \
  X(MADDXrrr) X(MADDWrrr) X(MSUBXrrr) X(MSUBWrrr) X(UDIVXr) X(UDIVWr) X(SDIVXr) X(SDIVWr)          \
  X(LSLVXr) X(LSLVWr) X(LSRVXr) X(LSRVWr) X(ASRVXr) X(ASRVWr)                                      \
  X(UBFMXri) X(UBFMWri) X(SBFMXri) X(SBFMWri) X(REVXr) X(REVWr) X(REV16Wr)                         \
  X(MOVZXi) X(MOVZWi) X(MOVNXi) X(MOVNWi) X(MOVKXi) X(MOVKWi)                                      \
  X(LDRBBui) X(LDRHHui) X(LDRWui) X(LDRXui) X(LDRSBXui) X(LDRSHXui) X(LDRSWui)                     \
  X(LDURBBi) X(LDURHHi) X(LDURWi) X(LDURXi) X(LDURSBXi) X(LDURSHXi) X(LDURSWi)                     \
  X(LDRBBroX) X(LDRHHroX) X(LDRWroX) X(LDRXroX) X(LDRSBXroX) X(LDRSHXroX) X(LDRSWroX)              \
  X(STRBBui) X(STRHHui) X(STRWui) X(STRXui) X(STURBBi) X(STURHHi) X(STURWi) X(STURXi)              \
  X(STRBBroX) X(STRHHroX) X(STRWroX) X(STRXroX) X(STPXi) X(LDPXi) X(STPXpre) X(LDPXpost)           \
  X(LDXRW) X(LDXRX) X(STLXRW) X(STLXRX) X(DMB) X(FMOVDXr) X(FMOVXDr) X(FMOVSWr) X(FMOVWSr)         \
  X(ADR) X(LDRSWl) X(B) X(Bcc) X(CBZX) X(CBZW) X(CBNZX) X(CBNZW) X(TBNZW) X(TBNZX) X(TBZW) X(TBZX) X(BL) X(BLR) X(BR)  \
  X(RET) X(STRXpre) X(LDRXpost) X(MRS) X(MSR) X(STPQi) X(LDPQi)

enum Opc : uint16_t {
#define SB_ARM64_ENUM(name) name,
  SB_ARM64_OPCODES(SB_ARM64_ENUM)
#undef SB_ARM64_ENUM
  kNumOpcodes
};

// LLVM numbers for the opcodes, for each native register as an X and a W
// register (in NReg order; SP's W name is WSP), and for the floating-point
// argument registers as D (double) and S (single) registers.
struct Tables {
  unsigned op[kNumOpcodes];
  unsigned x[kNumNRegs], w[kNumNRegs];
  unsigned d[kFpArgRegs], s[kFpArgRegs];
  unsigned q[32];  // the vector registers whole (a probe saves them)
};
const Tables& tables();  // resolved on first use
const char* opcode_name(Opc op);

inline constexpr mc::TargetSpec kSpec = {"aarch64-unknown-linux-gnu", "generic", ""};

// Condition codes (the Bcc operand). Inverting one flips its low bit.
enum CondCode : int64_t {
  EQ = 0, NE = 1, HS = 2, LO = 3, MI = 4, PL = 5, VS = 6, VC = 7,
  HI = 8, LS = 9, GE = 10, LT = 11, GT = 12, LE = 13,
};
constexpr CondCode invert(CondCode cc) { return CondCode(cc ^ 1); }

// The DMB operand: inner shareable, loads and stores.
constexpr int64_t kBarrierIsh = 11;
// The system register TPIDR_EL0 (op0 3, op1 3, CRn 13, CRm 0, op2 2) as MRS encodes it.
constexpr int64_t kTpidrEl0 = (3 << 14) | (3 << 11) | (13 << 7) | (0 << 3) | 2;
constexpr int64_t kNzcv = (3 << 14) | (3 << 11) | (4 << 7) | (2 << 3) | 0;  // the condition flags

// Logical immediates (AND/ORR/EOR/TST #imm): a rotated run of ones,
// replicated in elements of 2, 4, ..., 64 bits. encode_logical_imm gives
// the instruction's 13-bit N:immr:imms field, or nothing when `value` (its
// low `width` bits) has no such form (0 and all ones never do);
// decode_logical_imm is its inverse.
std::optional<uint32_t> encode_logical_imm(uint64_t value, unsigned width);
uint64_t decode_logical_imm(uint32_t field, unsigned width);

// Constant materialization: the shortest of MOVZ + MOVKs, MOVN + MOVKs, one
// ORR of a logical immediate (from the zero register), and such an ORR
// followed by MOVKs; values with a zero upper half use the W forms (which
// clear it). At most 4 instructions.
struct MatStep {
  Opc op;          // MOVZ/MOVN/MOVK (X or W), ORRXri/ORRWri
  uint32_t imm;    // MOV*: the 16-bit chunk; ORR: the N:immr:imms field
  uint8_t shift;   // MOV*: 0, 16, 32 or 48
};
using MatSeq = llvm::SmallVector<MatStep, 4>;
MatSeq materialize(uint64_t value);

// The three forms of a load or store of one size: scaled unsigned 12-bit
// offset, unscaled signed 9-bit offset (LDUR/STUR), register offset; and
// whether the data register is a W register.
struct MemForms {
  Opc ui, unscaled, ro;
  bool w32;
};
inline constexpr MemForms kLoadX = {LDRXui, LDURXi, LDRXroX, false};
inline constexpr MemForms kStoreX = {STRXui, STURXi, STRXroX, false};

// Branch reach. The AArch64 assembler does not relax branches, so the
// selector decides itself: each IR instruction becomes at most
// max_insts(inst) instructions (checked as they are emitted), which bounds
// the distance to a label by the IR instructions in between. Beyond a
// Bcc/CBZ's +-1 MiB (TBZ: +-32 KiB), the inverted branch skips an
// unconditional B (+-128 MiB).
constexpr int kMaxInstsPerOp = 16;  // every op but CallSig, which moves its argument words too
constexpr int64_t kCondBranchReach = int64_t(1) << 20;
constexpr int64_t kTestBranchReach = int64_t(1) << 15;

class A64ISel final : public backend::ISel {
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
  void select_one(const ir::Inst& inst);
  void alu(const ir::Inst& inst);
  void shift(const ir::Inst& inst);
  void divmod(const ir::Inst& inst);
  void movsx(const ir::Inst& inst);
  void bswap(const ir::Inst& inst);
  void load(const ir::Inst& inst);
  void store(const ir::Inst& inst);
  void atomic(const ir::Inst& inst);
  void branch(const ir::Inst& inst);
  uint64_t max_insts(const ir::Inst& inst) const;
  void measure_function();  // instruction bounds for branch reach (prologue)
  bool in_reach(const ir::Inst& inst, int64_t reach) const;
  void cond_branch(const ir::Inst& inst, CondCode cc);

  // Building blocks.
  void load_imm(NReg dst, uint64_t imm);                       // dst = imm (all 64 bits)
  void add_imm(NReg dst, NReg src, int64_t imm, bool w32 = false);  // dst = src + imm; large via kTmp
  NReg operand(const ir::Inst& inst, NReg scratch);            // `b` in a register: src, zr or scratch
  void mov(NReg dst, NReg src, bool w32 = false);
  void rrs(Opc o, bool w32, NReg d, NReg a, NReg b);           // shifted-register forms, shift 0
  void rr(Opc o, bool w32, NReg d, NReg a, NReg b);            // divisions, shifts by register
  void bfm(Opc o, bool w32, NReg d, NReg s, int64_t immr, int64_t imms);
  void memory(const MemForms& f, int size, NReg data, NReg base, int32_t off);  // offsets via kTmp
  void memory(const MemForms& f, int size, NReg data, NReg base, const ir::Inst& access);
  void jump(llvm::MCSymbol* target) { emit(mc::I(t_.op[B]).e(ref(target))); }
  void emit(const llvm::MCInst& inst) {
    out_.emit(inst);
    ++emitted_;
  }
  unsigned R(NReg r, bool w32) const { return w32 ? t_.w[r] : t_.x[r]; }

  const Tables& t_ = tables();
  uint64_t emitted_ = 0;             // instructions so far (reach bookkeeping)
  std::vector<uint64_t> bound_;      // this function: instructions before each IR inst, at most
  std::vector<size_t> label_index_;  // this function's labels: index of their Label inst
};

inline NReg native(uint8_t ir_reg) {
  return ir_reg == ir::kAX ? kAX : ir_reg == ir::kAX2 ? kAX2 : kBpfToNative[ir_reg];
}

}  // namespace sb::arm64
