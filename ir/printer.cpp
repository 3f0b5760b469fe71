// The IR's text form (see the header comment of ir/ir.h) and the table
// lookups generated from the X-macros.
#include <fmt/format.h>

#include "ir/ir.h"

namespace sb::ir {

namespace {
struct OpInfo {
  const char* text;
  const char* meaning;
};
constexpr OpInfo kOps[] = {
#define SB_IR_ROW(name, text, form, meaning) {text, meaning},
    SB_IR_OPS(SB_IR_ROW)
#undef SB_IR_ROW
};
constexpr const char* kConds[] = {
#define SB_IR_ROW(name, text) text,
    SB_IR_CONDS(SB_IR_ROW)
#undef SB_IR_ROW
};
constexpr const char* kAtomics[] = {
#define SB_IR_ROW(name, text) text,
    SB_IR_ATOMICS(SB_IR_ROW)
#undef SB_IR_ROW
};

std::string operand_b(const Inst& i) {
  return i.k ? fmt::format("{}", i.imm) : fmt::format("r{}", i.src);
}
std::string address(uint8_t base, int32_t off, uint8_t index_reg = kNoIndex, int scale = 0) {
  const std::string index = index_reg == kNoIndex ? "" : fmt::format("+r{}*{}", index_reg, 1 << scale);
  return off < 0 ? fmt::format("[r{}{}-{}]", base, index, -int64_t(off))
                 : fmt::format("[r{}{}+{}]", base, index, off);
}
}  // namespace

const char* type_name(Type t) {
  static constexpr const char* kTypes[] = {
#define SB_IR_ROW(name, text, size) text,
      SB_IR_TYPES(SB_IR_ROW)
#undef SB_IR_ROW
  };
  return kTypes[size_t(t)];
}

const char* op_name(Op op) { return kOps[size_t(op)].text; }
const char* op_meaning(Op op) { return kOps[size_t(op)].meaning; }
const char* cond_name(Cond cc) { return kConds[size_t(cc)]; }
const char* atomic_name(AtomicOp a) { return kAtomics[size_t(a)]; }
const char* trap_message(TrapCode code) {
  static constexpr const char* kTraps[] = {
#define SB_IR_ROW(name, text) text,
      SB_IR_TRAPS(SB_IR_ROW)
#undef SB_IR_ROW
  };
  return size_t(code) < std::size(kTraps) ? kTraps[size_t(code)] : "unknown fault";
}
bool is_terminator(Op op) {
  return op == Op::Jmp || op == Op::Exit || op == Op::Unwind || op == Op::Trap;
}

std::string print(const Inst& i) {
  const char* name = op_name(i.op);
  switch (op_form(i.op)) {
    case Form::Alu:
      return fmt::format("r{} = {}.{} r{}, {}", i.dst, name, i.width, i.dst, operand_b(i));
    case Form::Unary:
      return fmt::format("r{} = {}.{} r{}", i.dst, name, i.width, i.dst);
    case Form::Ext:
      return fmt::format("r{} = {}{}.{} r{}", i.dst, name, i.ext, i.width,
                         i.op == Op::Bswap ? i.dst : i.src);
    case Form::Imm64:
      if (i.op == Op::LoadSym) return fmt::format("r{} = {} @{}{:+#x}", i.dst, name, i.target, i.imm);
      return fmt::format("r{} = {} {:#x}", i.dst, name, uint64_t(i.imm));
    case Form::Load:
      return fmt::format("r{} = {}.{}{} {}", i.dst, name, i.sext ? 's' : 'u', i.size * 8,
                         address(i.src, i.off, i.index, i.scale));
    case Form::Store:
      return fmt::format("{}.{} {}, {}", name, i.size * 8, address(i.dst, i.off, i.index, i.scale), operand_b(i));
    case Form::Atomic: {
      // Name the register that receives the old value: src with fetch, r0 for cmpxchg.
      std::string result = i.aop == AtomicOp::CmpXchg ? "r0 = " : i.fetch ? fmt::format("r{} = ", i.src) : "";
      const char* fetch = i.fetch && i.aop < AtomicOp::Xchg ? "fetch_" : "";
      return fmt::format("{}{}.{}{}.{} {}, r{}", result, name, fetch, atomic_name(i.aop), i.size * 8,
                         address(i.dst, i.off), i.src);
    }
    case Form::Jump:
      return fmt::format("{} -> L{}", name, i.target);
    case Form::Branch:
      return fmt::format("{}.{} {} r{}, {} -> L{}", name, i.width, cond_name(i.cc), i.dst,
                         operand_b(i), i.target);
    case Form::Call:
      switch (i.op) {
        case Op::Call: return fmt::format("call helper {}", i.target);
        case Op::TailCall: return fmt::format("tailcall helper {}", i.target);
        case Op::CallLocal: return fmt::format("call func {}", i.target);
        case Op::CallAddr:
          return i.args < 5 ? fmt::format("call.addr {:#x}, r1..r{}", uint64_t(i.imm), i.args)
                            : fmt::format("call.addr {:#x}", uint64_t(i.imm));
        case Op::CallSym: return fmt::format("call.sym @{}", i.target);
        default: return fmt::format("call.sig {:#x}, args {}", uint64_t(i.imm), address(kFP, i.off));
      }
    case Form::Term:
      return i.op == Op::Trap ? fmt::format("{} {}", name, trap_message(TrapCode(i.target))) : name;
    case Form::Label:
      return fmt::format("L{}:", i.target);
    case Form::Def:
      return fmt::format("r{} = {}", i.dst, name);
  }
  return name;
}

std::string print(const Function& fn) {
  std::string sig;
  if (fn.native) {
    sig = " native(";
    for (size_t a = 0; a < fn.native->args.size(); ++a)
      sig += fmt::format("{}{}{}", a ? ", " : "", type_name(fn.native->args[a].type),
                         fn.native->args[a].type == Type::Struct ? std::to_string(fn.native->args[a].size) : "");
    sig += fmt::format(") -> {}, args spilled at {}", type_name(fn.native->ret.type), address(kFP, fn.native->spill_off));
  }
  if (fn.probe) {
    sig += fmt::format(", probe at ip {:#x}", fn.probe->ip);
    if (fn.probe->next) sig += fmt::format(", next {:#x}", *fn.probe->next);
    if (fn.probe->vectors == Function::Probe::Vectors::None) sig += ", vector registers untouched";
    if (fn.probe->vectors == Function::Probe::Vectors::ReturnValues) sig += ", return-value vector registers kept";
  }
  std::string out = fmt::format("function {} (frame {}){}\n", fn.name, fn.frame_size, sig);
  for (const Inst& i : fn.code) {
    out += i.op == Op::Label ? "" : "  ";
    out += print(i);
    out += '\n';
  }
  return out;
}

std::string print(const Module& m) {
  std::string out;
  for (size_t s = 0; s < m.symbols.size(); ++s) out += fmt::format("; symbol @{} {}\n", s, m.symbols[s]);
  for (size_t f = 0; f < m.functions.size(); ++f) {
    if (f) out += '\n';
    out += fmt::format("; function {}\n", f);
    out += print(m.functions[f]);
  }
  return out;
}

}  // namespace sb::ir
