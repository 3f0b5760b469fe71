// The liveness analysis of ir/liveness.h.
#include "ir/liveness.h"

namespace sb::ir {

namespace {
constexpr RegSet kArgs = reg_bit(1) | reg_bit(2) | reg_bit(3) | reg_bit(4) | reg_bit(5);
constexpr RegSet kAlways = reg_bit(kFP);
}  // namespace

Effects effects(const Inst& i) {
  Effects e;
  const RegSet b = i.k ? 0 : reg_bit(i.src);  // the second operand, when a register
  const RegSet index = i.index == kNoIndex ? 0 : reg_bit(i.index);
  switch (op_form(i.op)) {
    case Form::Alu:
      e.uses = (i.op == Op::Mov ? 0 : reg_bit(i.dst)) | b;
      e.defs = reg_bit(i.dst);
      break;
    case Form::Unary:
      e.uses = e.defs = reg_bit(i.dst);
      break;
    case Form::Ext:
      e.uses = reg_bit(i.op == Op::Bswap ? i.dst : i.src);
      e.defs = reg_bit(i.dst);
      break;
    case Form::Imm64: case Form::Def:
      e.defs = reg_bit(i.dst);
      break;
    case Form::Load:
      e.uses = reg_bit(i.src) | index;
      e.defs = reg_bit(i.dst);
      break;
    case Form::Store:
      e.uses = reg_bit(i.dst) | index | b;
      break;
    case Form::Atomic:
      e.uses = reg_bit(i.dst) | reg_bit(i.src) | (i.aop == AtomicOp::CmpXchg ? reg_bit(0) : 0);
      e.defs = i.aop == AtomicOp::CmpXchg ? reg_bit(0) : i.fetch ? reg_bit(i.src) : 0;
      break;
    case Form::Branch:
      e.uses = reg_bit(i.dst) | b;
      break;
    case Form::Call:
      e.uses = kArgs;
      e.defs = reg_bit(0);
      break;
    case Form::Term:
      e.uses = i.op == Op::Trap ? 0 : reg_bit(0);
      break;
    case Form::Jump: case Form::Label:
      break;
  }
  e.uses |= kAlways;
  return e;
}

bool falls_through(const Inst& i) {
  const Form form = op_form(i.op);
  return form != Form::Term && form != Form::Jump;
}

bool jumps(const Inst& i) {
  const Form form = op_form(i.op);
  return form == Form::Jump || form == Form::Branch;
}

std::vector<size_t> label_index(const Function& fn) {
  std::vector<size_t> at(fn.num_labels, fn.code.size());
  for (size_t k = 0; k < fn.code.size(); ++k)
    if (fn.code[k].op == Op::Label && fn.code[k].target < fn.num_labels) at[fn.code[k].target] = k;
  return at;
}

Liveness liveness(const Function& fn) {
  const std::vector<Inst>& code = fn.code;
  const size_t n = code.size();
  const std::vector<size_t> label_at = label_index(fn);
  std::vector<Effects> fx(n);
  for (size_t k = 0; k < n; ++k) fx[k] = effects(code[k]);

  Liveness l{std::vector<RegSet>(n + 1, 0), std::vector<RegSet>(n, 0)};
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t k = n; k-- > 0;) {
      const Inst& i = code[k];
      RegSet o = 0;
      if (falls_through(i)) o |= l.in[k + 1];
      if (jumps(i)) o |= l.in[label_at[i.target]];
      const RegSet li = fx[k].uses | RegSet(o & ~fx[k].defs);
      if (o != l.out[k] || li != l.in[k]) changed = true;
      l.out[k] = o;
      l.in[k] = li;
    }
  }
  return l;
}

}  // namespace sb::ir
