// x86-64 instruction selection: one IR instruction -> MCInsts.
// Calls, returns and frames are in abi.cpp; the register map in regs.h.
#include <llvm/Support/MathExtras.h>

#include "backends/x86_64/x86_64.h"
#include "ir/diag.h"

namespace sb::x86_64 {

using ir::Op;
using mc::I;

namespace {

// The encodings of a two-operand ALU operation at each width and immediate size.
struct AluForms {
  Opc rr64, rr32, ri8_64, ri32_64, ri8_32, ri32_32;
};
constexpr AluForms kAdd = {ADD64rr, ADD32rr, ADD64ri8, ADD64ri32, ADD32ri8, ADD32ri};
constexpr AluForms kSub = {SUB64rr, SUB32rr, SUB64ri8, SUB64ri32, SUB32ri8, SUB32ri};
constexpr AluForms kAnd = {AND64rr, AND32rr, AND64ri8, AND64ri32, AND32ri8, AND32ri};
constexpr AluForms kOr = {OR64rr, OR32rr, OR64ri8, OR64ri32, OR32ri8, OR32ri};
constexpr AluForms kXor = {XOR64rr, XOR32rr, XOR64ri8, XOR64ri32, XOR32ri8, XOR32ri};
constexpr AluForms kMul = {IMUL64rr, IMUL32rr, IMUL64rri8, IMUL64rri32, IMUL32rri8, IMUL32rri};

const AluForms& alu_forms(Op op) {
  switch (op) {
    case Op::Add: return kAdd;
    case Op::Sub: return kSub;
    case Op::And: return kAnd;
    case Op::Or: return kOr;
    case Op::Xor: return kXor;
    case Op::Mul: return kMul;
    default: throw Error("x86-64 isel", std::string("no ALU form for ") + ir::op_name(op));
  }
}

// Shift encodings: {by imm 64, by imm 32, by cl 64, by cl 32}.
struct ShiftForms {
  Opc ri64, ri32, cl64, cl32;
};
ShiftForms shift_forms(Op op) {
  switch (op) {
    case Op::Shl: return {SHL64ri, SHL32ri, SHL64rCL, SHL32rCL};
    case Op::LShr: return {SHR64ri, SHR32ri, SHR64rCL, SHR32rCL};
    default: return {SAR64ri, SAR32ri, SAR64rCL, SAR32rCL};
  }
}

CondCode cond_code(ir::Cond cc) {
  switch (cc) {
    case ir::Cond::Eq: return CC_E;
    case ir::Cond::Ne: return CC_NE;
    case ir::Cond::Gt: return CC_A;
    case ir::Cond::Ge: return CC_AE;
    case ir::Cond::Lt: return CC_B;
    case ir::Cond::Le: return CC_BE;
    case ir::Cond::SGt: return CC_G;
    case ir::Cond::SGe: return CC_GE;
    case ir::Cond::SLt: return CC_L;
    case ir::Cond::SLe: return CC_LE;
    case ir::Cond::Set: return CC_NE;  // after TEST
    case ir::Cond::Clear: return CC_E;  // after TEST
  }
  return CC_E;
}

using backend::imm_at;

}  // namespace

unsigned X86ISel::reg(NReg r, int width) const {
  switch (width) {
    case 64: return t_.r64[r];
    case 32: return t_.r32[r];
    case 16: return t_.r16[r];
    default: return t_.r8[r];
  }
}

mc::I& X86ISel::mem(mc::I& i, NReg base, int32_t disp) {
  return i.r(t_.r64[base]).i(1).r(0).i(disp).r(0);
}

mc::I& X86ISel::mem(mc::I& i, NReg base, const ir::Inst& access) {
  if (access.index == ir::kNoIndex) return mem(i, base, access.off);
  return i.r(t_.r64[base]).i(1 << access.scale).r(t_.r64[native(access.index)]).i(access.off).r(0);
}

void X86ISel::load_imm(NReg dst, int64_t imm, int width) {
  if (width == 32) imm = int64_t(uint32_t(imm));
  const auto& op = t_.op;
  if (imm == 0)
    emit(I(op[XOR32rr]).r(reg(dst, 32)).r(reg(dst, 32)).r(reg(dst, 32)));
  else if (llvm::isUInt<32>(uint64_t(imm)))
    emit(I(op[MOV32ri]).r(reg(dst, 32)).i(imm));  // zero-extends
  else if (llvm::isInt<32>(imm))
    emit(I(op[MOV64ri32]).r(reg(dst, 64)).i(imm));
  else
    emit(I(op[MOV64ri]).r(reg(dst, 64)).i(imm));
}

void X86ISel::select(const ir::Inst& i) {
  const auto& op = t_.op;
  const int w = i.width;
  const NReg d = native(i.dst);
  switch (i.op) {
    case Op::Mov:
      if (i.k)
        load_imm(d, i.imm, w);
      else if (!fused_lea(i))
        emit(I(op[w == 64 ? MOV64rr : MOV32rr]).r(reg(d, w)).r(reg(native(i.src), w)));
      return;
    case Op::Mul:
      if (i.k && fused_lea(i)) return;
      return alu(i);
    case Op::Add: case Op::Sub: case Op::And: case Op::Or: case Op::Xor:
      return alu(i);
    case Op::Shl: case Op::LShr: case Op::AShr:
      return shift(i);
    case Op::UDiv: case Op::SDiv: case Op::UMod: case Op::SMod:
      return divmod(i);
    case Op::Neg:
      emit(I(op[w == 64 ? NEG64r : NEG32r]).r(reg(d, w)).r(reg(d, w)));
      return;
    case Op::MovSx: {
      const NReg s = native(i.src);
      if (w == 64) {
        Opc o = i.ext == 8 ? MOVSX64rr8 : i.ext == 16 ? MOVSX64rr16 : MOVSX64rr32;
        emit(I(op[o]).r(reg(d, 64)).r(reg(s, i.ext)));
      } else if (i.ext == 32) {
        emit(I(op[MOV32rr]).r(reg(d, 32)).r(reg(s, 32)));
      } else {
        emit(I(op[i.ext == 8 ? MOVSX32rr8 : MOVSX32rr16]).r(reg(d, 32)).r(reg(s, i.ext)));
      }
      return;
    }
    case Op::Bswap:
      if (i.ext == 64) {
        emit(I(op[BSWAP64r]).r(reg(d, 64)).r(reg(d, 64)));
      } else if (i.ext == 32) {
        emit(I(op[BSWAP32r]).r(reg(d, 32)).r(reg(d, 32)));  // zero-extends
      } else {
        emit(I(op[ROL16ri]).r(reg(d, 16)).r(reg(d, 16)).i(8));
        emit(I(op[MOVZX32rr16]).r(reg(d, 32)).r(reg(d, 16)));
      }
      return;
    case Op::LoadImm:
      return load_imm(d, i.imm, 64);
    case Op::LoadSym:
      return load_symbol(d, i.target, i.imm);
    case Op::Load:
      return load(i);
    case Op::Store:
      return store(i);
    case Op::Atomic:
      return atomic(i);
    case Op::Jmp:
      emit(I(op[JMP_1]).e(ref(label(i.target))));
      return;
    case Op::Br:
      return branch(i);
    case Op::Call:
      return call_helper(i.target);
    case Op::CallLocal:
      return call_local(i.target);
    case Op::CallAddr:
      return call_address(uint64_t(i.imm));
    case Op::CallSig:
      return call_with_signature(i);
    case Op::CallSym:
      return call_symbol(i.target);
    case Op::TailCall:
      return tail_call(i);
    case Op::Exit:
      return exit(i);
    case Op::Unwind:
      emit(I(op[JMP_1]).e(ref(exit_label())));
      return;
    case Op::Trap:
      return trap(i);
    case Op::ThreadPtr:  // the TCB's self pointer at fs:0 (x86-64 TLS variant II)
      emit(I(op[MOV64rm]).r(reg(d, 64)).r(0).i(1).r(0).i(0).r(t_.fs));
      return;
    case Op::EntryFrame:
      emit(I(op[MOV64rr]).r(reg(d, 64)).r(reg(kEntryFrame, 64)));
      return;
    case Op::Label:
      return;
  }
}

void X86ISel::alu(const ir::Inst& i) {
  const auto& op = t_.op;
  const AluForms& f = alu_forms(i.op);
  const int w = i.width;
  const unsigned d = reg(native(i.dst), w);
  if (!i.k) {
    emit(I(op[w == 64 ? f.rr64 : f.rr32]).r(d).r(d).r(reg(native(i.src), w)));
    return;
  }
  const int64_t imm = imm_at(i);
  if (i.op == Op::Mul && (imm == 3 || imm == 5 || imm == 9)) {
    // x * (1 + 2^k) = x + x << k: lea takes one cycle, imul three.
    const unsigned base = reg(native(i.dst), 64);
    emit(I(op[w == 64 ? LEA64r : LEA64_32r]).r(d).r(base).i(imm - 1).r(base).i(0).r(0));
  } else if (llvm::isInt<8>(imm)) {
    emit(I(op[w == 64 ? f.ri8_64 : f.ri8_32]).r(d).r(d).i(imm));
  } else if (llvm::isInt<32>(imm)) {
    emit(I(op[w == 64 ? f.ri32_64 : f.ri32_32]).r(d).r(d).i(imm));
  } else {  // only 64-bit operations get here
    load_imm(kScratch, imm, 64);
    emit(I(op[f.rr64]).r(d).r(d).r(reg(kScratch, 64)));
  }
}

// d = s [* (1 + 2^k)] [+ c] in one lea, for a copy, a multiply by 3, 5 or
// 9 and constant adds and subtracts on d that follow each other: bytecode
// writes `r1 = r10; r1 += -8` for every stack pointer it passes, and
// `n = 3 * n + 1` is mul and add. At least two instructions, or nothing.
// A 32-bit lea keeps the low 32 bits of the sum, zero-extended, as the
// 32-bit copy, multiply and add do.
bool X86ISel::fused_lea(const ir::Inst& i) {
  const int w = i.width;
  auto on_dst = [&](const ir::Inst* x, Op o) { return x && x->op == o && x->k && x->dst == i.dst && x->width == w; };
  auto small_mul = [&](const ir::Inst* x) { return on_dst(x, Op::Mul) && (x->imm == 3 || x->imm == 5 || x->imm == 9); };
  auto at = [&](size_t n) { return n == 0 ? &i : next_inst(n); };
  size_t n = 0, last = 0;
  NReg s;
  if (i.op == Op::Mov && !i.k && (i.dst != i.src || w == 32)) {
    s = native(i.src);
    n = 1;
  } else if (small_mul(&i)) {
    s = native(i.dst);
  } else {
    return false;
  }
  int64_t mul = 1;
  if (small_mul(at(n))) mul = at(n)->imm, last = n++;
  const ConstantAdds adds = constant_adds(n, i.dst, w, INT32_MIN, INT32_MAX);  // lea's disp32
  if (adds.count) last = n + adds.count - 1;
  if (last == 0) return false;
  const int64_t disp = adds.sum;
  const unsigned base = reg(s, 64);
  emit(I(t_.op[w == 64 ? LEA64r : LEA64_32r])
           .r(reg(native(i.dst), w))
           .r(base)
           .i(mul == 1 ? 1 : mul - 1)
           .r(mul == 1 ? 0 : base)
           .i(disp)
           .r(0));
  take_next(last);
  return true;
}

// x86 masks shift counts to 6 (64-bit) or 5 (32-bit) bits, as BPF requires.
// A count in a register must be in cl; rcx holds r4, so it is saved in r11.
void X86ISel::shift(const ir::Inst& i) {
  const auto& op = t_.op;
  const ShiftForms f = shift_forms(i.op);
  const int w = i.width;
  const NReg d = native(i.dst);
  if (i.k) {
    emit(I(op[w == 64 ? f.ri64 : f.ri32]).r(reg(d, w)).r(reg(d, w)).i(i.imm & (w - 1)));
    return;
  }
  const NReg s = native(i.src);
  const Opc by_cl = w == 64 ? f.cl64 : f.cl32;
  if (s == RCX) {
    emit(I(op[by_cl]).r(reg(d, w)).r(reg(d, w)));
    return;
  }
  const NReg target = d == RCX ? kScratch : d;  // shifting r4 itself: shift its copy
  emit(I(op[MOV64rr]).r(reg(kScratch, 64)).r(reg(RCX, 64)));
  emit(I(op[MOV64rr]).r(reg(RCX, 64)).r(reg(s, 64)));
  emit(I(op[by_cl]).r(reg(target, w)).r(reg(target, w)));
  emit(I(op[MOV64rr]).r(reg(RCX, 64)).r(reg(kScratch, 64)));
}

// BPF division never traps: x/0 = 0, x%0 = x, MIN/-1 = MIN, MIN%-1 = 0
// (RFC 9669 section 4.1). DIV/IDIV use rdx:rax, which hold r3 and r0, so
// both are parked in r9/r10; the divisor goes to r11 and so does the result.
void X86ISel::divmod(const ir::Inst& i) {
  const auto& op = t_.op;
  const int w = i.width;
  const NReg d = native(i.dst);
  const bool is_div = i.op == Op::UDiv || i.op == Op::SDiv;
  const bool is_signed = i.op == Op::SDiv || i.op == Op::SMod;
  const Opc mov = w == 64 ? MOV64rr : MOV32rr;
  auto R = [&](NReg r) { return reg(r, w); };

  if (i.k && imm_at(i) == 0) {  // by a constant zero: no division at all
    if (is_div) load_imm(d, 0, 64);
    else if (w == 32) emit(I(op[MOV32rr]).r(R(d)).r(R(d)));
    return;
  }
  if (i.k) load_imm(kScratch, i.imm, w);
  else emit(I(op[MOV64rr]).r(reg(kScratch, 64)).r(reg(native(i.src), 64)));
  if (d != RAX) emit(I(op[MOV64rr]).r(reg(kSaveRax, 64)).r(reg(RAX, 64)));
  if (d != RDX) emit(I(op[MOV64rr]).r(reg(kSaveRdx, 64)).r(reg(RDX, 64)));
  if (d != RAX) emit(I(op[MOV64rr]).r(reg(RAX, 64)).r(reg(d, 64)));

  llvm::MCSymbol* done = out_.new_label();
  llvm::MCSymbol* zero = i.k ? nullptr : out_.new_label();
  if (zero) {
    emit(I(op[w == 64 ? TEST64rr : TEST32rr]).r(R(kScratch)).r(R(kScratch)));
    emit(I(op[JCC_1]).e(ref(zero)).i(CC_E));
  }
  const bool maybe_minus_one = is_signed && (!i.k || imm_at(i) == -1);
  const bool always_minus_one = is_signed && i.k && imm_at(i) == -1;
  llvm::MCSymbol* divide = nullptr;
  if (maybe_minus_one) {
    if (!always_minus_one) {
      divide = out_.new_label();
      emit(I(op[w == 64 ? CMP64ri8 : CMP32ri8]).r(R(kScratch)).i(-1));
      emit(I(op[JCC_1]).e(ref(divide)).i(CC_NE));
    }
    // x / -1 = -x (wrapping, so MIN stays MIN); x % -1 = 0.
    if (is_div) {
      emit(I(op[w == 64 ? NEG64r : NEG32r]).r(R(RAX)).r(R(RAX)));
      emit(I(op[mov]).r(R(kScratch)).r(R(RAX)));
    } else {
      load_imm(kScratch, 0, 64);
    }
    if (divide) {
      emit(I(op[JMP_1]).e(ref(done)));
      out_.bind(divide);
    }
  }
  if (!always_minus_one) {
    if (is_signed) {
      emit(I(op[w == 64 ? CQO : CDQ]));
      emit(I(op[w == 64 ? IDIV64r : IDIV32r]).r(R(kScratch)));
    } else {
      load_imm(RDX, 0, 32);
      emit(I(op[w == 64 ? DIV64r : DIV32r]).r(R(kScratch)));
    }
    emit(I(op[mov]).r(R(kScratch)).r(R(is_div ? RAX : RDX)));
  }
  if (zero) {
    emit(I(op[JMP_1]).e(ref(done)));
    out_.bind(zero);
    if (is_div) load_imm(kScratch, 0, 64);
    else emit(I(op[mov]).r(R(kScratch)).r(R(RAX)));  // x % 0 = x (32-bit: zero-extended)
  }
  out_.bind(done);
  if (d != RAX) emit(I(op[MOV64rr]).r(reg(RAX, 64)).r(reg(kSaveRax, 64)));
  if (d != RDX) emit(I(op[MOV64rr]).r(reg(RDX, 64)).r(reg(kSaveRdx, 64)));
  emit(I(op[mov]).r(R(d)).r(R(kScratch)));
}

void X86ISel::load(const ir::Inst& i) {
  const auto& op = t_.op;
  const NReg d = native(i.dst);
  Opc o;
  int w = 32;
  switch (i.size) {
    case 1: o = i.sext ? MOVSX64rm8 : MOVZX32rm8; break;
    case 2: o = i.sext ? MOVSX64rm16 : MOVZX32rm16; break;
    case 4: o = i.sext ? MOVSX64rm32 : MOV32rm; break;
    default: o = MOV64rm; w = 64; break;
  }
  if (i.sext) w = 64;
  I inst(op[o]);
  inst.r(reg(d, w));
  emit(mem(inst, native(i.src), i));
}

void X86ISel::store(const ir::Inst& i) {
  const auto& op = t_.op;
  const NReg base = native(i.dst);
  static constexpr Opc kByReg[9] = {MOV8mr, MOV8mr, MOV16mr, MOV16mr, MOV32mr, MOV32mr, MOV32mr, MOV32mr, MOV64mr};
  static constexpr Opc kByImm[9] = {MOV8mi, MOV8mi, MOV16mi, MOV16mi, MOV32mi, MOV32mi, MOV32mi, MOV32mi, MOV64mi32};
  if (i.k && llvm::isInt<32>(i.imm)) {
    int64_t imm = i.size == 1 ? int8_t(i.imm) : i.size == 2 ? int16_t(i.imm) : int32_t(i.imm);
    I inst(op[kByImm[i.size]]);
    emit(mem(inst, base, i).i(imm));
    return;
  }
  NReg src = native(i.src);
  if (i.k) {  // a 64-bit constant: through the scratch register
    load_imm(kScratch, i.imm, 64);
    src = kScratch;
  }
  I inst(op[kByReg[i.size]]);
  emit(mem(inst, base, i).r(reg(src, i.size * 8)));
}

void X86ISel::atomic(const ir::Inst& i) {
  const auto& op = t_.op;
  const int w = i.size * 8;
  const bool wide = w == 64;
  const NReg base = native(i.dst);
  const NReg s = native(i.src);
  auto locked = [&](Opc o) {
    emit(I(op[LOCK_PREFIX]));
    I inst(op[o]);
    emit(mem(inst, base, i.off).r(reg(s, w)));
  };
  switch (i.aop) {
    case ir::AtomicOp::Add:
      if (i.fetch) {  // lock xadd leaves the old value in src
        emit(I(op[LOCK_PREFIX]));
        I inst(op[wide ? XADD64rm : XADD32rm]);
        emit(mem(inst.r(reg(s, w)).r(reg(s, w)), base, i.off));
      } else {
        locked(wide ? ADD64mr : ADD32mr);
      }
      return;
    case ir::AtomicOp::Xchg: {  // xchg with memory is locked implicitly
      I inst(op[wide ? XCHG64rm : XCHG32rm]);
      emit(mem(inst.r(reg(s, w)).r(reg(s, w)), base, i.off));
      return;
    }
    case ir::AtomicOp::CmpXchg:  // compares with rax = r0 and loads the old value into it
      locked(wide ? CMPXCHG64rm : CMPXCHG32rm);
      if (!wide) emit(I(op[MOV32rr]).r(reg(RAX, 32)).r(reg(RAX, 32)));  // r0 zero-extended
      return;
    case ir::AtomicOp::Or: case ir::AtomicOp::And: case ir::AtomicOp::Xor:
      break;
  }
  const Opc mem_op = i.aop == ir::AtomicOp::Or ? (wide ? OR64mr : OR32mr)
                     : i.aop == ir::AtomicOp::And ? (wide ? AND64mr : AND32mr)
                                                  : (wide ? XOR64mr : XOR32mr);
  if (!i.fetch) return locked(mem_op);

  // Fetching or/and/xor: x86 has no such instruction, so a cmpxchg loop.
  // rax is the comparand; r0 (rax) is parked in r10, and a base or source
  // that is r0 is read from a copy.
  const Opc rr = i.aop == ir::AtomicOp::Or ? (wide ? OR64rr : OR32rr)
                 : i.aop == ir::AtomicOp::And ? (wide ? AND64rr : AND32rr)
                                              : (wide ? XOR64rr : XOR32rr);
  emit(I(op[MOV64rr]).r(reg(kSaveRax, 64)).r(reg(RAX, 64)));
  NReg b = base;
  if (base == RAX) {
    emit(I(op[MOV64rr]).r(reg(kSaveRdx, 64)).r(reg(RAX, 64)));
    b = kSaveRdx;
  }
  const NReg value = s == RAX ? kSaveRax : s;
  {
    I inst(op[wide ? MOV64rm : MOV32rm]);
    inst.r(reg(RAX, w));
    emit(mem(inst, b, i.off));
  }
  llvm::MCSymbol* retry = out_.new_label();
  out_.bind(retry);
  emit(I(op[wide ? MOV64rr : MOV32rr]).r(reg(kScratch, w)).r(reg(RAX, w)));
  emit(I(op[rr]).r(reg(kScratch, w)).r(reg(kScratch, w)).r(reg(value, w)));
  emit(I(op[LOCK_PREFIX]));
  {
    I inst(op[wide ? CMPXCHG64rm : CMPXCHG32rm]);
    emit(mem(inst, b, i.off).r(reg(kScratch, w)));
  }
  emit(I(op[JCC_1]).e(ref(retry)).i(CC_NE));
  if (s != RAX) {  // src = old value; restore r0
    emit(I(op[MOV64rr]).r(reg(s, 64)).r(reg(RAX, 64)));
    emit(I(op[MOV64rr]).r(reg(RAX, 64)).r(reg(kSaveRax, 64)));
  }
}

void X86ISel::branch(const ir::Inst& i) {
  const auto& op = t_.op;
  const int w = i.width;
  const bool wide = w == 64;
  const unsigned d = reg(native(i.dst), w);
  const bool test = i.cc == ir::Cond::Set || i.cc == ir::Cond::Clear;
  if (!i.k) {
    emit(I(op[test ? (wide ? TEST64rr : TEST32rr) : (wide ? CMP64rr : CMP32rr)]).r(d).r(reg(native(i.src), w)));
  } else {
    const int64_t imm = imm_at(i);
    if (!llvm::isInt<32>(imm)) {
      load_imm(kScratch, imm, 64);
      emit(I(op[test ? TEST64rr : CMP64rr]).r(d).r(reg(kScratch, 64)));
    } else if (test) {
      emit(I(op[wide ? TEST64ri32 : TEST32ri]).r(d).i(imm));
    } else if (imm == 0 && (i.cc == ir::Cond::Eq || i.cc == ir::Cond::Ne)) {
      emit(I(op[wide ? TEST64rr : TEST32rr]).r(d).r(d));
    } else if (llvm::isInt<8>(imm)) {
      emit(I(op[wide ? CMP64ri8 : CMP32ri8]).r(d).i(imm));
    } else {
      emit(I(op[wide ? CMP64ri32 : CMP32ri]).r(d).i(imm));
    }
  }
  emit(I(op[JCC_1]).e(ref(label(i.target))).i(cond_code(i.cc)));
}

}  // namespace sb::x86_64
