// Bytecode -> conformance assembler syntax, via the shared mnemonic table
// (frontend/mnemonics.h). Whatever no row reproduces exactly prints as
// ".raw 0x<64-bit word>", which the assembler reads back, so
// assemble(disassemble(p)) == p for every program.
#include "frontend/disassembler.h"

#include <fmt/format.h>

#include "frontend/decoder.h"
#include "frontend/mnemonics.h"

namespace sb::bpf {

namespace {

std::string reg(uint8_t r) { return fmt::format("%r{}", r); }

std::string signed_offset(int64_t v) { return fmt::format("{:+d}", v); }

std::string format_operand(Operand kind, const OperandValue& v) {
  switch (kind) {
    case Operand::None: return {};
    case Operand::Dst:
    case Operand::Src: return reg(v.reg);
    case Operand::SrcOrImm: return v.is_reg ? reg(v.reg) : fmt::format("{}", v.value);
    case Operand::Imm: return fmt::format("{}", v.value);
    case Operand::Imm64: return fmt::format("{:#x}", uint64_t(v.value));
    case Operand::DstMem:
    case Operand::SrcMem:
      return v.value == 0 ? fmt::format("[{}]", reg(v.reg))
                          : fmt::format("[{}{}]", reg(v.reg), signed_offset(v.value));
    case Operand::OffTarget:
    case Operand::ImmTarget: return signed_offset(v.value);
  }
  return {};
}

std::string raw(const Insn& insn) { return fmt::format(".raw {:#018x}", to_word(insn)); }

// The text of the instruction at `insn` and the number of slots it covers.
std::pair<std::string, size_t> disassemble_one(const Insn& insn, const Insn* next) {
  std::optional<RowMatch> match = match_row(insn, next);
  if (!match) return {raw(insn), 1};
  const Mnemonic& m = *match->row;
  std::string text(m.name);
  for (size_t k = 0; k < m.arity(); ++k) {
    text += k == 0 ? " " : ", ";
    text += format_operand(m.operands[k], match->operands[k]);
  }
  return {std::move(text), uses_two_slots(m) ? 2 : 1};
}

}  // namespace

std::string disassemble(const Insn& insn, const Insn* next) {
  return disassemble_one(insn, next).first;
}

std::string disassemble(const Program& p) {
  std::string out;
  for (size_t i = 0; i < p.insns.size();) {
    const Insn* next = i + 1 < p.insns.size() ? &p.insns[i + 1] : nullptr;
    auto [text, slots] = disassemble_one(p.insns[i], next);
    out += text;
    out += '\n';
    i += slots;
  }
  return out;
}

}  // namespace sb::bpf
