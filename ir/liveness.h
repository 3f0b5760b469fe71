// Register liveness over a function's linear IR, for the passes that need
// to know whether a value is still used (ir/passes.h: fold_addresses'
// dead-code removal). The analysis is the textbook backward dataflow on
// the linear code (successors are the next instruction and a branch's
// label), iterated to a fixed point over the labels' live-in sets only;
// loops settle in two or three sweeps.
//
// Each instruction's effect is an over-approximation of what it reads and
// an under-approximation of what it writes, so "dead" is always safe:
//   calls read r1-r5 (all the argument registers, whatever the callee
//   takes; a call.addr that says how many it passes, only those; a
//   call.sig none, its words are in the frame) and write only r0; exit and unwind read r0; r10 is always live.
#pragma once

#include <cstdint>
#include <vector>

#include "ir/ir.h"

namespace sb::ir {

using RegSet = uint16_t;  // bit r: register r (kNumRegs <= 16)
constexpr RegSet reg_bit(uint8_t r) { return RegSet(1u << r); }

struct Effects {
  RegSet uses = 0;
  RegSet defs = 0;
};
// Inline: every pass that uses liveness calls it once per instruction.
namespace liveness_detail {
constexpr RegSet kArgs = reg_bit(1) | reg_bit(2) | reg_bit(3) | reg_bit(4) | reg_bit(5);
constexpr RegSet kAlways = reg_bit(kFP);
}  // namespace liveness_detail

inline Effects effects(const Inst& i) {
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
      // call.sig passes words from the frame ([r10 + off]), no register.
      e.uses = i.op == Op::CallSig                    ? RegSet(0)
               : i.op == Op::CallAddr && i.args < 5 ? RegSet(liveness_detail::kArgs & ((1u << (i.args + 1)) - 1))
                                                    : liveness_detail::kArgs;
      e.defs = reg_bit(0);
      break;
    case Form::Term:
      e.uses = i.op == Op::Trap ? 0 : reg_bit(0);
      break;
    case Form::Jump: case Form::Label:
      break;
  }
  e.uses |= liveness_detail::kAlways;
  return e;
}

// What is live before an instruction, given what is live after it.
inline RegSet live_in(RegSet out, const Effects& fx) { return RegSet(fx.uses | (out & ~fx.defs)); }

// Where control goes after fn.code[n]: the next instruction and/or a label.
inline bool falls_through(const Inst& i) {
  const Form form = op_form(i.op);
  return form != Form::Term && form != Form::Jump;
}
inline bool jumps(const Inst& i) {
  const Form form = op_form(i.op);
  return form == Form::Jump || form == Form::Branch;
}

// One backward sweep over fn.code: at(k, out, effects) is given what is
// live after code[k] (the next instruction's live-in and its label's from
// label_in) and returns what is live before it; a label's live-in goes
// into label_in. Returns whether label_in changed. Sweeping until it does
// not is the textbook fixed point, since only loops (backward jumps) read
// a label_in the same sweep has not yet rewritten.
template <typename At>
bool live_sweep(const Function& fn, std::vector<RegSet>& label_in, At&& at) {
  bool changed = false;
  RegSet live = 0;
  for (size_t k = fn.code.size(); k-- > 0;) {
    const Inst& i = fn.code[k];
    RegSet out = falls_through(i) ? live : 0;
    if (jumps(i)) out |= label_in[i.target];
    live = at(k, out, effects(i));
    if (i.op == Op::Label && live != label_in[i.target]) label_in[i.target] = live, changed = true;
  }
  return changed;
}

// The live-in of every label, at the fixed point.
std::vector<RegSet> label_live_in(const Function& fn);

// live_out(fn)[n]: what is live just after fn.code[n].
std::vector<RegSet> live_out(const Function& fn);

}  // namespace sb::ir
