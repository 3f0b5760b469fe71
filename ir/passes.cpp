// The IR passes of ir/passes.h. Each rewrites a function's code in place,
// keeping every instruction's origin (a merged instruction keeps the first
// one's), so listings and fault reports still name the bytecode.
#include "ir/passes.h"

#include <bit>

namespace sb::ir {

namespace {

bool fits_i32(int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }

// The unsigned value of an immediate operand at the operation's width.
uint64_t imm_at_width(const Inst& i) { return i.width == 32 ? uint64_t(uint32_t(i.imm)) : uint64_t(i.imm); }

bool is_reg_mov(const Inst& i, int width) { return i.op == Op::Mov && !i.k && i.width == width; }

// x = mov.32 x, x: only zero-extends x.
bool is_self_zext(const Inst& i) { return is_reg_mov(i, 32) && i.dst == i.src; }

// True if `i` writes register x with a value below 2^32, so a following
// zero-extension of x changes nothing.
bool leaves_zero_extended(const Inst& i, uint8_t x) {
  if (i.dst != x) return false;
  switch (op_form(i.op)) {
    case Form::Alu: case Form::Unary:
      return i.width == 32;  // 32-bit operations zero-extend their result
    case Form::Ext:
      return i.op == Op::MovSx ? i.width == 32 : i.ext <= 32;  // bswap16/32 zero-extend
    case Form::Load:
      return !i.sext && i.size <= 4;
    case Form::Imm64:
      return uint64_t(i.imm) <= UINT32_MAX;
    default:
      return false;
  }
}

// Rule: is `a` (just before `b`, nothing between) mergeable with `b`?
// On success `a` becomes the merged instruction and `b` is to be dropped.
bool merge_zero_extension(Inst& a, const Inst& b) {
  // shl.64 x, 32; lshr.64 x, 32  ->  mov.32 x, x
  if (a.op == Op::Shl && b.op == Op::LShr && a.k && b.k && a.width == 64 && b.width == 64 && a.imm == 32 &&
      b.imm == 32 && a.dst == b.dst) {
    a.op = Op::Mov, a.width = 32, a.k = false, a.src = a.dst, a.imm = 0;
    return true;
  }
  if (!is_self_zext(b) || a.dst != b.dst) return false;
  // mov.64 x, y (or a constant); mov.32 x, x  ->  mov.32 x, y
  if (a.op == Op::Mov && a.width == 64) {
    a.width = 32;  // a constant keeps its value: mov.32 uses its low half
    return true;
  }
  // a 32-bit result in x; mov.32 x, x  ->  the result alone
  return leaves_zero_extended(a, b.dst);
}

Cond inverse(Cond cc) {
  switch (cc) {
    case Cond::Eq: return Cond::Ne;
    case Cond::Ne: return Cond::Eq;
    case Cond::Gt: return Cond::Le;
    case Cond::Le: return Cond::Gt;
    case Cond::Ge: return Cond::Lt;
    case Cond::Lt: return Cond::Ge;
    case Cond::SGt: return Cond::SLe;
    case Cond::SLe: return Cond::SGt;
    case Cond::SGe: return Cond::SLt;
    case Cond::SLt: return Cond::SGe;
    case Cond::Set: break;  // no "none set" condition
  }
  return Cond::Set;
}

// Is `label` defined among the labels that start at code[at]?
bool label_follows(const std::vector<Inst>& code, size_t at, uint32_t label) {
  for (; at < code.size() && code[at].op == Op::Label; ++at)
    if (code[at].target == label) return true;
  return false;
}

}  // namespace

void reduce_strength(Function& fn) {
  for (Inst& i : fn.code) {
    if (!i.k || (i.op != Op::Mul && i.op != Op::UDiv && i.op != Op::UMod)) continue;
    const uint64_t v = imm_at_width(i);
    if (!std::has_single_bit(v)) continue;
    const int shift = std::countr_zero(v);
    if (i.op == Op::Mul) {
      i.op = Op::Shl, i.imm = shift;
    } else if (i.op == Op::UDiv) {
      i.op = Op::LShr, i.imm = shift;
    } else if (fits_i32(int64_t(v - 1))) {
      i.op = Op::And, i.imm = int64_t(v - 1);
    }
  }
}

void fold_zero_extension(Function& fn) {
  std::vector<Inst>& code = fn.code;
  size_t w = 0;  // code[0, w) is the output so far
  for (size_t r = 0; r < code.size(); ++r) {
    if (w > 0 && code[w - 1].op != Op::Label && merge_zero_extension(code[w - 1], code[r])) {
      // The merged instruction may merge again with the one before it.
      while (w > 1 && code[w - 2].op != Op::Label && merge_zero_extension(code[w - 2], code[w - 1])) --w;
      continue;
    }
    if (w != r) code[w] = code[r];
    ++w;
  }
  code.resize(w);
}

void invert_branch_over_jump(Function& fn) {
  std::vector<Inst>& code = fn.code;
  size_t w = 0;
  for (size_t r = 0; r < code.size(); ++r) {
    if (w != r) code[w] = code[r];
    Inst& i = code[w];
    if (i.op == Op::Br && i.cc != Cond::Set && r + 1 < code.size() && code[r + 1].op == Op::Jmp &&
        label_follows(code, r + 2, i.target)) {
      i.cc = inverse(i.cc);
      i.target = code[r + 1].target;
      ++r;  // the jmp
      // The inverted branch may now go to the label right after it.
      if (label_follows(code, r + 1, i.target)) continue;
    } else if ((i.op == Op::Jmp || i.op == Op::Br) && label_follows(code, r + 1, i.target)) {
      continue;  // a jump to the next instruction (a branch has no side effects)
    }
    ++w;
  }
  code.resize(w);
}

void optimize(Module& m) {
  for (Function& fn : m.functions) {
    reduce_strength(fn);
    fold_zero_extension(fn);
    invert_branch_over_jump(fn);
  }
}

}  // namespace sb::ir
