// riscv64 instruction selection: one IR instruction -> MCInsts, and the
// constant materializer. Calls, returns and frames are in abi.cpp; the
// register map in regs.h.
//
// Two RV64 facts shape most of this file:
//  - the *W instructions compute on the low 32 bits and SIGN-extend the
//    result, while BPF's 32-bit operations zero-extend: every 32-bit result
//    is zero-extended afterwards (slli 32 + srli 32; no Zba here);
//  - division never traps: x/0 = all ones, x%0 = x, MIN/-1 = MIN and
//    MIN%-1 = 0. Only x/0 differs from BPF (0), and is masked to 0.
#include <llvm/ADT/bit.h>
#include <llvm/Support/MathExtras.h>

#include "backends/riscv64/riscv64.h"
#include "ir/diag.h"

namespace sb::riscv64 {

using ir::Op;
using mc::I;

// ---- constant materialization -------------------------------------------

namespace {

// The core recursion (LLVM's generateInstSeqImpl for RV64I): a 32-bit value
// is LUI + ADDIW (either may be omitted). A wider one drops its low 12 bits
// (sign-extended, as ADDI will add them back) and its trailing zeros, is
// built recursively, then shifted back and the low 12 bits added.
void mat_core(int64_t v, MatSeq& out) {
  if (llvm::isInt<32>(v)) {
    const int64_t hi20 = ((v + 0x800) >> 12) & 0xfffff;
    const int64_t lo12 = llvm::SignExtend64<12>(v);
    if (hi20) out.push_back({LUI, hi20});
    // ADDIW wraps LUI's result at 32 bits, as needed for 0x7ffff800..0x7fffffff.
    if (lo12 || !hi20) out.push_back({hi20 ? ADDIW : ADDI, lo12});
    return;
  }
  const int64_t lo12 = llvm::SignExtend64<12>(v);
  v = int64_t(uint64_t(v) - uint64_t(lo12));
  int shift = 0;
  if (!llvm::isInt<32>(v)) {
    shift = llvm::countr_zero(uint64_t(v));
    v >>= shift;  // arithmetic: the sign stays in the rest
    // LUI brings 12 zero bits of its own: shift less and let it fill them.
    if (shift > 12 && !llvm::isInt<12>(v) && llvm::isInt<32>(int64_t(uint64_t(v) << 12))) {
      shift -= 12;
      v = int64_t(uint64_t(v) << 12);
    }
  }
  mat_core(v, out);
  if (shift) out.push_back({SLLI, shift});
  if (lo12) out.push_back({ADDI, lo12});
}

MatSeq core(int64_t v) {
  MatSeq s;
  mat_core(v, s);
  return s;
}

// A positive value built shifted left over its leading zeros, then SRLI:
// the vacated low bits filled with ones (masks like 0x00000fffffffffff) or
// zeros, whichever is shorter.
MatSeq with_leading_zeros(int64_t v) {
  const int lz = llvm::countl_zero(uint64_t(v));
  const uint64_t shifted = uint64_t(v) << lz;
  MatSeq ones = core(int64_t(shifted | llvm::maskTrailingOnes<uint64_t>(lz)));
  MatSeq zeros = core(int64_t(shifted));
  MatSeq& best = zeros.size() < ones.size() ? zeros : ones;
  best.push_back({SRLI, lz});
  return best;
}

}  // namespace

// The core sequence, then the alternatives LLVM's RISCVMatInt tries for
// RV64I, each kept only when strictly shorter.
MatSeq materialize(int64_t v) {
  MatSeq best = core(v);
  auto keep_if_shorter = [&](MatSeq s) {
    if (s.size() < best.size()) best = std::move(s);
  };
  // Trailing zeros under non-zero low 12 bits: build v >> tz, then SLLI.
  // On a tie LLVM prefers a 6-bit start (compressible as c.li + c.slli);
  // so do we, to produce the same code as LLVM's `li`.
  if ((v & 0xfff) != 0 && (v & 1) == 0 && best.size() >= 2) {
    const int tz = llvm::countr_zero(uint64_t(v));
    MatSeq s = core(v >> tz);
    s.push_back({SLLI, tz});
    if (llvm::isInt<6>(v >> tz) && s.size() == best.size()) best = std::move(s);
    else keep_if_shorter(std::move(s));
  }
  if (best.size() <= 2) return best;
  // Low 13 bits like 0x17ff: build v rounded up to 0x1800 (whose -0x800
  // the core peels off, leaving more trailing zeros), then ADDI back.
  if ((v & 0xfff) != 0 && (v & 0x1800) == 0x1000) {
    const int64_t imm12 = -(0x800 - (v & 0xfff));
    MatSeq s = core(v - imm12);
    s.push_back({ADDI, imm12});
    keep_if_shorter(std::move(s));
  }
  if (v > 0 && best.size() > 2) keep_if_shorter(with_leading_zeros(v));
  // A negative value with a short inverse: build ~v, then XORI -1.
  if (v < 0 && best.size() > 3) {
    MatSeq s = with_leading_zeros(int64_t(~uint64_t(v)));
    s.push_back({XORI, -1});
    keep_if_shorter(std::move(s));
  }
  return best;
}

// ---- selection ----------------------------------------------------------

namespace {

constexpr Opc kNone = kNumOpcodes;

// Each two-operand operation at each width, by register and by a 12-bit
// immediate (kNone: no immediate form, the constant goes to a register).
// 32-bit forms compute on the low halves; the result is zero-extended after.
struct AluForms {
  Op op;
  Opc rr64, rr32, ri64, ri32;
};
constexpr AluForms kAluForms[] = {
    // op        rr64  rr32   ri64   ri32
    {Op::Add,  ADD,  ADDW,  ADDI,  ADDIW},
    {Op::Sub,  SUB,  SUBW,  kNone, kNone},  // sub of an imm: add of its negation
    {Op::Mul,  MUL,  MULW,  kNone, kNone},
    {Op::And,  AND,  AND,   ANDI,  ANDI},
    {Op::Or,   OR,   OR,    ORI,   ORI},
    {Op::Xor,  XOR,  XOR,   XORI,  XORI},
    {Op::Shl,  SLL,  SLLW,  SLLI,  SLLIW},  // by register: low 6 (W: 5) bits, as BPF
    {Op::LShr, SRL,  SRLW,  SRLI,  SRLIW},
    {Op::AShr, SRA,  SRAW,  SRAI,  SRAIW},
    {Op::UDiv, DIVU, DIVUW, kNone, kNone},
    {Op::SDiv, DIV,  DIVW,  kNone, kNone},
    {Op::UMod, REMU, REMUW, kNone, kNone},
    {Op::SMod, REM,  REMW,  kNone, kNone},
};

const AluForms& alu_forms(Op op) {
  for (const AluForms& f : kAluForms)
    if (f.op == op) return f;
  throw Error("riscv64 isel", std::string("no ALU form for ") + ir::op_name(op));
}

bool is_shift(Op op) { return op == Op::Shl || op == Op::LShr || op == Op::AShr; }

// Branch on each condition: the instruction, and whether the operands are
// swapped (a > b is b < a). Set branches on (a & b) != 0, Clear on == 0.
struct CondForm {
  ir::Cond cc;
  Opc op;
  bool swap;
};
constexpr CondForm kCondForms[] = {
    {ir::Cond::Eq, BEQ, false},  {ir::Cond::Ne, BNE, false},  {ir::Cond::Gt, BLTU, true},
    {ir::Cond::Ge, BGEU, false}, {ir::Cond::Lt, BLTU, false}, {ir::Cond::Le, BGEU, true},
    {ir::Cond::SGt, BLT, true},  {ir::Cond::SGe, BGE, false}, {ir::Cond::SLt, BLT, false},
    {ir::Cond::SLe, BGE, true},  {ir::Cond::Set, BNE, false},
    {ir::Cond::Clear, BEQ, false},
};
static_assert([] {
  for (size_t k = 0; k < std::size(kCondForms); ++k)
    if (size_t(kCondForms[k].cc) != k) return false;
  return std::size(kCondForms) == size_t(ir::Cond::Clear) + 1;
}(), "kCondForms is indexed by ir::Cond");

// Loads by size: zero-extending and sign-extending.
struct LoadForms {
  Opc zext, sext;
};
constexpr LoadForms kLoads[9] = {{}, {LBU, LB}, {LHU, LH}, {}, {LWU, LW}, {}, {}, {}, {LD, LD}};
constexpr Opc kStores[9] = {kNone, SB, SH, kNone, SW, kNone, kNone, kNone, SD};

// AMOs by atomic op: 32-bit and 64-bit (all .aqrl: sequentially consistent).
struct AmoForms {
  ir::AtomicOp aop;
  Opc w, d;
};
constexpr AmoForms kAmos[] = {
    {ir::AtomicOp::Add, AMOADD_W_AQ_RL, AMOADD_D_AQ_RL},
    {ir::AtomicOp::Or, AMOOR_W_AQ_RL, AMOOR_D_AQ_RL},
    {ir::AtomicOp::And, AMOAND_W_AQ_RL, AMOAND_D_AQ_RL},
    {ir::AtomicOp::Xor, AMOXOR_W_AQ_RL, AMOXOR_D_AQ_RL},
    {ir::AtomicOp::Xchg, AMOSWAP_W_AQ_RL, AMOSWAP_D_AQ_RL},
};

using backend::imm_at;

}  // namespace

void RvISel::load_imm(NReg dst, int64_t imm) {
  NReg src = ZERO;
  for (const MatStep& s : materialize(imm)) {
    if (s.op == LUI) emit(I(t_.op[LUI]).r(t_.x[dst]).i(s.imm));
    else ri(s.op, dst, src, s.imm);
    src = dst;
  }
}

// Within 4 KiB or so, two ADDIs beat building the constant (LUI + ADDIW + ADD).
void RvISel::add_imm(NReg dst, NReg src, int64_t imm, bool w32) {
  const Opc addi = w32 ? ADDIW : ADDI;
  if (llvm::isInt<12>(imm)) return ri(addi, dst, src, imm);
  if (imm >= -4096 && imm <= 4094) {
    const int64_t part = imm > 0 ? 2047 : -2048;
    ri(addi, dst, src, part);
    return ri(addi, dst, dst, imm - part);
  }
  load_imm(kScratch, imm);
  rr(w32 ? ADDW : ADD, dst, src, kScratch);
}

void RvISel::zext32(NReg dst, NReg src) {
  ri(SLLI, dst, src, 32);
  ri(SRLI, dst, dst, 32);
}

NReg RvISel::operand(const ir::Inst& i, NReg scratch) {
  if (!i.k) return native(i.src);
  const int64_t imm = imm_at(i);
  if (imm == 0) return ZERO;
  load_imm(scratch, imm);
  return scratch;
}

// Loads and stores take a 12-bit signed displacement; a larger one is split
// into LUI (the upper part, added to the base in kScratch) and the rest.
std::pair<NReg, int64_t> RvISel::address(NReg base, const ir::Inst& access) {
  // riscv64 has base + imm12 only, so its TargetDesc::addressing lets
  // fold_addresses make no indexed access.
  if (access.index != ir::kNoIndex) throw Error("riscv64 isel", "an indexed address (riscv64 has none)");
  return address(base, access.off);
}

std::pair<NReg, int64_t> RvISel::address(NReg base, int32_t off) {
  if (llvm::isInt<12>(off)) return {base, off};
  const int64_t hi = (int64_t(off) + 0x800) >> 12;
  if (llvm::isInt<20>(hi)) {
    emit(I(t_.op[LUI]).r(t_.x[kScratch]).i(hi & 0xfffff));
    rr(ADD, kScratch, kScratch, base);
    return {kScratch, off - (hi << 12)};
  }
  load_imm(kScratch, off);  // within 2 KiB of INT32_MAX: LUI cannot reach
  rr(ADD, kScratch, kScratch, base);
  return {kScratch, 0};
}

void RvISel::select(const ir::Inst& i) {
  const bool wide = i.width == 64;
  const NReg d = native(i.dst);
  switch (i.op) {
    case Op::Mov:
      if (i.k) return load_imm(d, wide ? i.imm : int64_t(uint32_t(i.imm)));
      if (const auto fused = copy_plus_constant(i, -2048, 2047)) {  // d = s + c: one addi
        ri(ADDI, d, native(i.src), fused->sum);
        return take_next(fused->count);
      }
      if (wide) return mv(d, native(i.src));
      return zext32(d, native(i.src));
    case Op::Add: case Op::Sub: case Op::Mul: case Op::And: case Op::Or: case Op::Xor:
    case Op::Shl: case Op::LShr: case Op::AShr:
      return alu(i);
    case Op::UDiv: case Op::SDiv: case Op::UMod: case Op::SMod:
      return divmod(i);
    case Op::Neg:
      rr(wide ? SUB : SUBW, d, ZERO, d);
      if (!wide) zext32(d, d);
      return;
    case Op::MovSx:
      return movsx(i);
    case Op::Bswap:
      return bswap(i);
    case Op::LoadImm:
      return load_imm(d, i.imm);
    case Op::LoadSym:
      return load_symbol(d, i.target, i.imm);
    case Op::Load:
      return load(i);
    case Op::Store:
      return store(i);
    case Op::Atomic:
      return atomic(i);
    case Op::Jmp:
      return jump(label(i.target));
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
      return jump(exit_label());
    case Op::Trap:
      return trap(i);
    case Op::EntryFrame:
      return mv(d, kEntryFrame);
    case Op::ThreadPtr:
      return mv(d, TP);
    case Op::Label:
      return;
  }
}

void RvISel::alu(const ir::Inst& i) {
  const bool wide = i.width == 64;
  const NReg d = native(i.dst);
  const AluForms* f = &alu_forms(i.op);
  if (!i.k) {
    rr(wide ? f->rr64 : f->rr32, d, d, native(i.src));
    if (!wide) zext32(d, d);
    return;
  }
  int64_t imm = imm_at(i);
  if (is_shift(i.op)) imm &= i.width - 1;
  if (i.op == Op::Sub && imm != INT64_MIN) {  // x - imm = x + (-imm)
    f = &alu_forms(Op::Add);
    imm = -imm;
  }
  if (f->op == Op::Add) {
    add_imm(d, d, imm, !wide);
    if (!wide) zext32(d, d);
    return;
  }
  // A mask of the low n bits (0xffff: le16) is a shift pair; n < 32 at 32 bits.
  if (i.op == Op::And && imm > 0 && !llvm::isInt<12>(imm) && llvm::isMask_64(uint64_t(imm))) {
    const int64_t n = 64 - llvm::popcount(uint64_t(imm));
    ri(SLLI, d, d, n);
    ri(SRLI, d, d, n);
    return;
  }
  const Opc ri_op = wide ? f->ri64 : f->ri32;
  if (ri_op != kNone && llvm::isInt<12>(imm)) {
    ri(ri_op, d, d, imm);
    // SRLIW by 1..31 leaves bit 31 clear, so its sign extension is a zero extension.
    if (!wide && !(i.op == Op::LShr && imm != 0)) zext32(d, d);
    return;
  }
  rr(wide ? f->rr64 : f->rr32, d, d, operand(i, kScratch));
  if (!wide) zext32(d, d);
}

// BPF division never traps: x/0 = 0, x%0 = x, MIN/-1 = MIN, MIN%-1 = 0
// (RFC 9669 section 4.1). RISC-V agrees except x/0, which gives all ones
// there: a divisor in a register is turned into a mask (divisor != 0 ? ~0
// : 0) that clears the quotient, with no branch. The W forms divide the low
// halves, so a 32-bit zero test looks at the divisor's low half only.
void RvISel::divmod(const ir::Inst& i) {
  const bool wide = i.width == 64;
  const bool is_div = i.op == Op::UDiv || i.op == Op::SDiv;
  const NReg d = native(i.dst);
  const AluForms& f = alu_forms(i.op);
  if (i.k && imm_at(i) == 0) {  // by a constant zero: no division at all
    if (is_div) load_imm(d, 0);
    else if (!wide) zext32(d, d);
    return;
  }
  const NReg b = operand(i, kScratch);
  const Opc o = wide ? f.rr64 : f.rr32;
  if (is_div && !i.k) {
    NReg divisor = b;
    if (!wide) {
      ri(SLLI, kScratch2, b, 32);
      divisor = kScratch2;
    }
    ri(SLTIU, kScratch2, divisor, 1);     // seqz: 1 if the divisor is 0
    ri(ADDI, kScratch2, kScratch2, -1);   // 0 if the divisor is 0, else ~0
    rr(o, d, d, b);
    rr(AND, d, d, kScratch2);
  } else {
    rr(o, d, d, b);
  }
  if (!wide) zext32(d, d);
}

// Sign extension by a shift pair; a 32-bit result is zero-extended too.
void RvISel::movsx(const ir::Inst& i) {
  const NReg d = native(i.dst), s = native(i.src);
  if (i.ext == 32) {
    if (i.width == 64) ri(ADDIW, d, s, 0);  // sext.w
    else zext32(d, s);
    return;
  }
  ri(SLLI, d, s, 64 - i.ext);
  if (i.width == 64) {
    ri(SRAI, d, d, 64 - i.ext);
  } else {  // sign bits into 32..63 then back down: sext to 32, zext to 64
    ri(SRAI, d, d, 32 - i.ext);
    ri(SRLI, d, d, 32);
  }
}

// No Zbb (rev8), so byte swaps are built from shifts and masks: swap the
// halves, then the quarters within each half, and so on, each step
//   d = ((d >> n) & mask) | ((d & mask) << n).
// The masks are built from each other: m16 = m32 ^ (m32 << 16), m8 = m16 ^
// (m16 << 8). The result is zero-extended above `ext` bits.
void RvISel::bswap(const ir::Inst& i) {
  const NReg d = native(i.dst);
  auto swap_step = [&](int n, NReg mask) {
    ri(SRLI, kScratch, d, n);
    rr(AND, kScratch, kScratch, mask);
    rr(AND, d, d, mask);
    ri(SLLI, d, d, n);
    rr(OR, d, d, kScratch);
  };
  switch (i.ext) {
    case 16:
      ri(SRLI, kScratch, d, 8);
      ri(ANDI, kScratch, kScratch, 0xff);
      ri(ANDI, d, d, 0xff);
      ri(SLLI, d, d, 8);
      rr(OR, d, d, kScratch);
      return;
    case 32:
      ri(SRLIW, kScratch, d, 16);  // bits 16..31, zero-extended
      ri(SLLI, d, d, 48);          // bits 0..15 to 16..31, the rest cleared
      ri(SRLI, d, d, 32);
      rr(OR, d, d, kScratch);
      load_imm(kScratch2, 0x00ff00ff);
      swap_step(8, kScratch2);
      return;
    default:
      ri(SRLI, kScratch, d, 32);
      ri(SLLI, d, d, 32);
      rr(OR, d, d, kScratch);
      ri(ADDI, kScratch2, ZERO, -1);  // m32 = 0x00000000ffffffff
      ri(SRLI, kScratch2, kScratch2, 32);
      ri(SLLI, kScratch3, kScratch2, 16);  // m16 = 0x0000ffff0000ffff
      rr(XOR, kScratch2, kScratch2, kScratch3);
      swap_step(16, kScratch2);
      ri(SLLI, kScratch3, kScratch2, 8);  // m8 = 0x00ff00ff00ff00ff
      rr(XOR, kScratch2, kScratch2, kScratch3);
      swap_step(8, kScratch2);
      return;
  }
}

void RvISel::load(const ir::Inst& i) {
  const LoadForms& f = kLoads[i.size];
  const auto [base, off] = address(native(i.src), i);
  ri(i.sext ? f.sext : f.zext, native(i.dst), base, off);
}

// A stored constant is cut to the access size first (its sign extension
// there is shortest to build); zero is stored from x0.
void RvISel::store(const ir::Inst& i) {
  NReg value = native(i.src);
  if (i.k) {
    const int64_t imm = i.size == 1 ? int8_t(i.imm) : i.size == 2 ? int16_t(i.imm)
                        : i.size == 4 ? int32_t(i.imm) : i.imm;
    value = ZERO;
    if (imm != 0) {
      load_imm(kScratch2, imm);
      value = kScratch2;
    }
  }
  const auto [base, off] = address(native(i.dst), i);
  emit(I(t_.op[kStores[i.size]]).r(t_.x[value]).r(t_.x[base]).i(off));
}

// AMOs take no displacement: base + off goes to kScratch first. The .W
// forms sign-extend the old value; BPF wants it zero-extended.
void RvISel::atomic(const ir::Inst& i) {
  const bool wide = i.size == 8;
  const NReg s = native(i.src);
  NReg addr = native(i.dst);
  if (i.off != 0) {
    add_imm(kScratch, addr, i.off);
    addr = kScratch;
  }
  if (i.aop == ir::AtomicOp::CmpXchg) {
    // r0 = the old value; the new value is stored only if the old one equals
    // r0. LR.W sign-extends, so a 32-bit compare uses r0's low half
    // sign-extended.
    const NReg r0 = native(0);
    NReg expected = r0;
    if (!wide) {
      ri(ADDIW, kScratch2, r0, 0);
      expected = kScratch2;
    }
    llvm::MCSymbol* retry = out_.new_label();
    llvm::MCSymbol* done = out_.new_label();
    out_.bind(retry);
    emit(I(t_.op[wide ? LR_D_AQ_RL : LR_W_AQ_RL]).r(t_.x[kScratch3]).r(t_.x[addr]));
    emit(I(t_.op[BNE]).r(t_.x[kScratch3]).r(t_.x[expected]).e(ref(done)));
    emit(I(t_.op[wide ? SC_D_RL : SC_W_RL]).r(t_.x[kScratch4]).r(t_.x[addr]).r(t_.x[s]));
    emit(I(t_.op[BNE]).r(t_.x[kScratch4]).r(t_.x[ZERO]).e(ref(retry)));
    out_.bind(done);
    if (wide) mv(r0, kScratch3);
    else zext32(r0, kScratch3);
    return;
  }
  const AmoForms* f = nullptr;
  for (const AmoForms& a : kAmos)
    if (a.aop == i.aop) f = &a;
  const bool fetch = i.fetch || i.aop == ir::AtomicOp::Xchg;
  emit(I(t_.op[wide ? f->d : f->w]).r(t_.x[fetch ? s : ZERO]).r(t_.x[addr]).r(t_.x[s]));
  if (fetch && !wide) zext32(s, s);
}

// Compares of 64-bit values use the registers; 32-bit compares sign-extend
// both low halves first (sext.w): that keeps equality, the signed order and
// the unsigned order of the low halves, so one form serves every condition.
void RvISel::branch(const ir::Inst& i) {
  const bool wide = i.width == 64;
  const CondForm& c = kCondForms[size_t(i.cc)];
  NReg a = native(i.dst), b = ZERO;
  if (i.cc == ir::Cond::Set || i.cc == ir::Cond::Clear) {
    const int64_t imm = imm_at(i);
    if (i.k && llvm::isInt<12>(imm)) ri(ANDI, kScratch, a, imm);
    else rr(AND, kScratch, a, operand(i, kScratch2));
    // Only the low half counts; a small positive mask has nothing above it.
    if (!wide && !(i.k && imm >= 0 && llvm::isInt<12>(imm))) ri(SLLI, kScratch, kScratch, 32);
    a = kScratch;
  } else {
    if (!wide) {
      ri(ADDIW, kScratch, a, 0);
      a = kScratch;
    }
    if (i.k) {
      b = operand(i, kScratch2);  // a 32-bit immediate is sign-extended already
    } else {
      b = native(i.src);
      if (!wide) {
        ri(ADDIW, kScratch2, b, 0);
        b = kScratch2;
      }
    }
  }
  const NReg lhs = c.swap ? b : a, rhs = c.swap ? a : b;
  emit(I(t_.op[c.op]).r(t_.x[lhs]).r(t_.x[rhs]).e(ref(label(i.target))));
}

}  // namespace sb::riscv64
