// The mnemonic table of the conformance assembler syntax: the one list of
// instruction names, shared by the assembler (text -> Insn) and the
// disassembler (Insn -> text).
//
// A row is a mnemonic, the fields its encoding fixes, and up to three operands
// that fill in the rest. encode_row() is the only code that turns operands into
// fields. The disassembler picks a row by reading an instruction's operands
// back out (operands_of) and re-encoding them: the row matches only if that
// reproduces the instruction bit for bit. So the two directions cannot drift,
// and an encoding no row reproduces prints as ".raw" instead of as a lie.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "frontend/bpf.h"

namespace sb::bpf {

// How one operand's text maps onto instruction fields.
enum class Operand : uint8_t {
  None,
  Dst,        // %rN              -> dst_reg
  Src,        // %rN              -> src_reg
  SrcOrImm,   // %rN | number     -> src_reg and the X bit | imm
  Imm,        // number           -> imm
  Imm64,      // number           -> imm of both LDDW slots
  DstMem,     // [%rN+off]        -> dst_reg, offset
  SrcMem,     // [%rN+off]        -> src_reg, offset
  OffTarget,  // label | +N | -N  -> offset, relative to the next slot
  ImmTarget,  // label | +N | -N  -> imm, relative to the next slot
};

struct Mnemonic {
  std::string_view name;  // words separated by single spaces: "lock fetch add"
  uint8_t opcode = 0;     // for SrcOrImm rows the K form; a register adds X
  uint8_t src = 0;        // fixed src_reg (local call)
  int16_t off = 0;        // fixed offset (sdiv/smod, movsx)
  int32_t imm = 0;        // fixed imm (byte swap width, atomic operation)
  std::array<Operand, 3> operands{};

  constexpr size_t arity() const {
    size_t n = 0;
    while (n < operands.size() && operands[n] != Operand::None) ++n;
    return n;
  }
};

namespace mnemonic_rows {
using enum Operand;
// Short for make_opcode, to keep the rows below on one line each.
constexpr uint8_t op(uint8_t a, uint8_t b, uint8_t c = 0) { return make_opcode(a, b, c); }

// Arithmetic, section 4.1: "add %r1, %r2" / "add %r1, 5".
constexpr Mnemonic alu(std::string_view n, uint8_t cls, uint8_t aop, int16_t off = 0) {
  return {n, op(cls, aop, K), 0, off, 0, {Dst, SrcOrImm}};
}
// MOVSX, section 4.1: register source only, offset = source width.
constexpr Mnemonic movsx(std::string_view n, uint8_t cls, int16_t width) {
  return {n, op(cls, MOV, X), 0, width, 0, {Dst, Src}};
}
// Byte swaps, section 4.2: imm = width.
constexpr Mnemonic swap(std::string_view n, uint8_t cls, uint8_t dir, int32_t width) {
  return {n, op(cls, END, dir), 0, 0, width, {Dst}};
}
// Conditional jumps, section 4.3: "jeq %r1, 5, +2".
constexpr Mnemonic jcc(std::string_view n, uint8_t cls, uint8_t jop) {
  return {n, op(cls, jop, K), 0, 0, 0, {Dst, SrcOrImm, OffTarget}};
}
// Loads and stores, section 5.1/5.2.
constexpr Mnemonic ldx(std::string_view n, uint8_t mode, uint8_t size) {
  return {n, op(LDX, mode, size), 0, 0, 0, {Dst, SrcMem}};
}
constexpr Mnemonic st(std::string_view n, uint8_t size) {
  return {n, op(ST, MEM, size), 0, 0, 0, {DstMem, Imm}};
}
constexpr Mnemonic stx(std::string_view n, uint8_t size) {
  return {n, op(STX, MEM, size), 0, 0, 0, {DstMem, Src}};
}
// Atomics, section 5.3: "lock fetch add [%r1+0], %r2", imm = operation.
constexpr Mnemonic atomic(std::string_view n, uint8_t size, int32_t aop) {
  return {n, op(STX, ATOMIC, size), 0, 0, aop, {DstMem, Src}};
}
// Rows are searched in order; of two rows with the same encoding the first is
// the one the disassembler prints (so aliases follow their canonical name).
inline constexpr Mnemonic kTable[] = {
    // ALU64 and ALU (32-bit, "32" suffix), section 4.1.
    alu("add", ALU64, ADD),      alu("add32", ALU, ADD),
    alu("sub", ALU64, SUB),      alu("sub32", ALU, SUB),
    alu("mul", ALU64, MUL),      alu("mul32", ALU, MUL),
    alu("div", ALU64, DIV),      alu("div32", ALU, DIV),
    alu("sdiv", ALU64, DIV, 1),  alu("sdiv32", ALU, DIV, 1),
    alu("or", ALU64, OR),        alu("or32", ALU, OR),
    alu("and", ALU64, AND),      alu("and32", ALU, AND),
    alu("lsh", ALU64, LSH),      alu("lsh32", ALU, LSH),
    alu("rsh", ALU64, RSH),      alu("rsh32", ALU, RSH),
    alu("mod", ALU64, MOD),      alu("mod32", ALU, MOD),
    alu("smod", ALU64, MOD, 1),  alu("smod32", ALU, MOD, 1),
    alu("xor", ALU64, XOR),      alu("xor32", ALU, XOR),
    alu("mov", ALU64, MOV),      alu("mov32", ALU, MOV),
    alu("arsh", ALU64, ARSH),    alu("arsh32", ALU, ARSH),
    // movsx<from><to>: sign-extend the low <from> bits of src to <to> bits.
    movsx("movsx864", ALU64, 8), movsx("movsx1664", ALU64, 16), movsx("movsx3264", ALU64, 32),
    movsx("movsx832", ALU, 8),   movsx("movsx1632", ALU, 16),
    {"neg", op(ALU64, NEG, K), 0, 0, 0, {Dst}},
    {"neg32", op(ALU, NEG, K), 0, 0, 0, {Dst}},

    // Byte swaps, section 4.2: to big/little endian (ALU), unconditional (ALU64).
    swap("be16", ALU, TO_BE, 16),      swap("be32", ALU, TO_BE, 32),      swap("be64", ALU, TO_BE, 64),
    swap("le16", ALU, TO_LE, 16),      swap("le32", ALU, TO_LE, 32),      swap("le64", ALU, TO_LE, 64),
    swap("bswap16", ALU64, TO_LE, 16), swap("bswap32", ALU64, TO_LE, 32), swap("bswap64", ALU64, TO_LE, 64),
    swap("swap16", ALU64, TO_LE, 16),  swap("swap32", ALU64, TO_LE, 32),  swap("swap64", ALU64, TO_LE, 64),

    // JMP and JMP32 ("32" suffix), section 4.3.
    jcc("jeq", JMP, JEQ),        jcc("jeq32", JMP32, JEQ),
    jcc("jgt", JMP, JGT),        jcc("jgt32", JMP32, JGT),
    jcc("jge", JMP, JGE),        jcc("jge32", JMP32, JGE),
    jcc("jset", JMP, JSET),      jcc("jset32", JMP32, JSET),
    jcc("jne", JMP, JNE),        jcc("jne32", JMP32, JNE),
    jcc("jsgt", JMP, JSGT),      jcc("jsgt32", JMP32, JSGT),
    jcc("jsge", JMP, JSGE),      jcc("jsge32", JMP32, JSGE),
    jcc("jlt", JMP, JLT),        jcc("jlt32", JMP32, JLT),
    jcc("jle", JMP, JLE),        jcc("jle32", JMP32, JLE),
    jcc("jslt", JMP, JSLT),      jcc("jslt32", JMP32, JSLT),
    jcc("jsle", JMP, JSLE),      jcc("jsle32", JMP32, JSLE),
    {"ja", op(JMP, JA, K), 0, 0, 0, {OffTarget}},
    {"ja32", op(JMP32, JA, K), 0, 0, 0, {ImmTarget}},  // "gotol": 32-bit offset in imm
    // Calls, section 4.3.1; "call %rN" is callx (not in RFC 9669, register in dst).
    {"call", op(JMP, CALL, K), CALL_HELPER, 0, 0, {Imm}},
    {"call local", op(JMP, CALL, K), CALL_LOCAL, 0, 0, {ImmTarget}},
    {"call", op(JMP, CALL, X), 0, 0, 0, {Dst}},
    {"exit", op(JMP, EXIT, K), 0, 0, 0, {}},

    // Loads and stores, sections 5.1, 5.2 and 5.4.
    {"lddw", LDDW, LDDW_IMM64, 0, 0, {Dst, Imm64}},
    ldx("ldxb", MEM, B),   ldx("ldxh", MEM, H),   ldx("ldxw", MEM, W),   ldx("ldxdw", MEM, DW),
    ldx("ldxsb", MEMSX, B), ldx("ldxsh", MEMSX, H), ldx("ldxsw", MEMSX, W),
    st("stb", B),          st("sth", H),          st("stw", W),          st("stdw", DW),
    stx("stxb", B),        stx("stxh", H),        stx("stxw", W),        stx("stxdw", DW),

    // Atomics, section 5.3.
    atomic("lock add", DW, ATOMIC_ADD),          atomic("lock add32", W, ATOMIC_ADD),
    atomic("lock fetch add", DW, ATOMIC_ADD | FETCH), atomic("lock fetch add32", W, ATOMIC_ADD | FETCH),
    atomic("lock or", DW, ATOMIC_OR),            atomic("lock or32", W, ATOMIC_OR),
    atomic("lock fetch or", DW, ATOMIC_OR | FETCH), atomic("lock fetch or32", W, ATOMIC_OR | FETCH),
    atomic("lock and", DW, ATOMIC_AND),          atomic("lock and32", W, ATOMIC_AND),
    atomic("lock fetch and", DW, ATOMIC_AND | FETCH), atomic("lock fetch and32", W, ATOMIC_AND | FETCH),
    atomic("lock xor", DW, ATOMIC_XOR),          atomic("lock xor32", W, ATOMIC_XOR),
    atomic("lock fetch xor", DW, ATOMIC_XOR | FETCH), atomic("lock fetch xor32", W, ATOMIC_XOR | FETCH),
    atomic("lock xchg", DW, ATOMIC_XCHG),        atomic("lock xchg32", W, ATOMIC_XCHG),
    atomic("lock cmpxchg", DW, ATOMIC_CMPXCHG),  atomic("lock cmpxchg32", W, ATOMIC_CMPXCHG),
};
}  // namespace mnemonic_rows

inline constexpr const auto& kMnemonics = mnemonic_rows::kTable;

// One operand's value. Registers set `reg`; numbers, relative targets and
// LDDW's 64-bit value set `value`; memory operands set both (base, offset).
struct OperandValue {
  bool is_reg = false;
  uint8_t reg = 0;
  int64_t value = 0;
};
using OperandValues = std::array<OperandValue, 3>;

// A row's encoding: one slot, or two for LDDW.
struct Encoding {
  std::array<Insn, 2> slots{};
  size_t count = 1;
  std::span<const Insn> view() const { return {slots.data(), count}; }
};

// Operands -> fields: the fixed fields come from the row. Values are truncated
// to their fields; the assembler range-checks them first.
inline Encoding encode_row(const Mnemonic& m, const OperandValues& ops) {
  Encoding e;
  Insn& i = e.slots[0];
  i.opcode = m.opcode;
  i.src = m.src & 0xf;
  i.off = m.off;
  i.imm = m.imm;
  for (size_t k = 0; k < m.arity(); ++k) {
    const OperandValue& v = ops[k];
    switch (m.operands[k]) {
      case Operand::None: break;
      case Operand::Dst: i.dst = v.reg & 0xf; break;
      case Operand::Src: i.src = v.reg & 0xf; break;
      case Operand::SrcOrImm:
        if (v.is_reg) {
          i.opcode |= X;
          i.src = v.reg & 0xf;
        } else {
          i.imm = int32_t(v.value);
        }
        break;
      case Operand::Imm: i.imm = int32_t(v.value); break;
      case Operand::Imm64:  // section 5.4: low half in the first slot
        i.imm = int32_t(uint32_t(uint64_t(v.value)));
        e.slots[1].imm = int32_t(uint32_t(uint64_t(v.value) >> 32));
        e.count = 2;
        break;
      case Operand::DstMem: i.dst = v.reg & 0xf; i.off = int16_t(v.value); break;
      case Operand::SrcMem: i.src = v.reg & 0xf; i.off = int16_t(v.value); break;
      case Operand::OffTarget: i.off = int16_t(v.value); break;
      case Operand::ImmTarget: i.imm = int32_t(v.value); break;
    }
  }
  return e;
}

// Fields -> operands, assuming `insn` (and `next` for Imm64) is encoded by `m`.
inline OperandValues operands_of(const Mnemonic& m, const Insn& insn, const Insn* next) {
  OperandValues ops{};
  for (size_t k = 0; k < m.arity(); ++k) {
    OperandValue& v = ops[k];
    switch (m.operands[k]) {
      case Operand::None: break;
      case Operand::Dst: v = {true, insn.dst, 0}; break;
      case Operand::Src: v = {true, insn.src, 0}; break;
      case Operand::SrcOrImm:
        v = is_reg_source(insn) ? OperandValue{true, insn.src, 0} : OperandValue{false, 0, insn.imm};
        break;
      case Operand::Imm: v.value = insn.imm; break;
      case Operand::Imm64:
        v.value = int64_t(uint64_t(uint32_t(insn.imm)) |
                          (next ? uint64_t(uint32_t(next->imm)) << 32 : 0));
        break;
      case Operand::DstMem: v = {true, insn.dst, insn.off}; break;
      case Operand::SrcMem: v = {true, insn.src, insn.off}; break;
      case Operand::OffTarget: v.value = insn.off; break;
      case Operand::ImmTarget: v.value = insn.imm; break;
    }
  }
  return ops;
}

inline bool uses_two_slots(const Mnemonic& m) {
  for (Operand o : m.operands)
    if (o == Operand::Imm64) return true;
  return false;
}

// The row that reproduces `insn` exactly (with `next` as LDDW's second slot),
// and its operands; nullopt when none does.
struct RowMatch {
  const Mnemonic* row;
  OperandValues operands;
};
inline std::optional<RowMatch> match_row(const Insn& insn, const Insn* next) {
  for (const Mnemonic& m : kMnemonics) {
    bool two = uses_two_slots(m);
    if (two && !next) continue;
    OperandValues ops = operands_of(m, insn, next);
    Encoding e = encode_row(m, ops);
    if (e.slots[0] == insn && (!two || e.slots[1] == *next)) return RowMatch{&m, ops};
  }
  return std::nullopt;
}

}  // namespace sb::bpf
