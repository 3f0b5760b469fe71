// arm64 instruction selection: one IR instruction -> MCInsts, the logical
// immediate encoder and the constant materializer. Calls, returns and
// frames are in abi.cpp; the register map in regs.h.
//
// AArch64 matches BPF closely, which keeps most selections to one or two
// instructions:
//  - writing a W register zero-extends into the X register, exactly BPF's
//    32-bit rule, so 32-bit operations are the W forms and nothing more;
//  - division never traps and x/0 = 0, MIN/-1 = MIN (wrapping); the
//    remainder is x - (x/y)*y by MSUB, which gives x%0 = x and MIN%-1 = 0;
//  - shifts by register use the count modulo the width (LSLV etc.).
#include <llvm/ADT/bit.h>
#include <llvm/Support/MathExtras.h>

#include "backends/arm64/arm64.h"
#include "ir/diag.h"

namespace sb::arm64 {

using ir::Op;
using mc::I;

// ---- logical immediates -------------------------------------------------

std::optional<uint32_t> encode_logical_imm(uint64_t value, unsigned width) {
  if (width == 32) {
    value &= 0xffffffff;
    value |= value << 32;  // a 32-bit pattern is the 64-bit one with two copies
  }
  if (value == 0 || value == ~uint64_t(0)) return std::nullopt;
  // The element: the smallest size whose copies make up the value.
  unsigned size = 64;
  while (size > 2) {
    const unsigned half = size / 2;
    const uint64_t mask = llvm::maskTrailingOnes<uint64_t>(half);
    if ((value & mask) != ((value >> half) & mask)) break;
    size = half;
  }
  const uint64_t mask = llvm::maskTrailingOnes<uint64_t>(size);
  const uint64_t elem = value & mask;
  const unsigned ones = llvm::popcount(elem);
  // The element must be a run of ones rotated left by `rot`: either one
  // contiguous run, or (wrapping round) one contiguous run of zeros.
  unsigned rot;
  if (llvm::isShiftedMask_64(elem)) {
    rot = llvm::countr_zero(elem);
  } else {
    const uint64_t zeros = ~elem & mask;
    if (!llvm::isShiftedMask_64(zeros)) return std::nullopt;
    rot = llvm::countr_zero(zeros) + llvm::popcount(zeros);
  }
  // The instruction rotates the run right by immr; imms holds the element
  // size as a unary prefix (0, 10, 110, ... ; N=1 for 64) and ones - 1.
  const uint32_t immr = (size - rot) & (size - 1);
  const uint32_t imms = ((~(size - 1) << 1) & 0x3f) | (ones - 1);
  const uint32_t n = size == 64 ? 1 : 0;
  return (n << 12) | (immr << 6) | imms;
}

uint64_t decode_logical_imm(uint32_t field, unsigned width) {
  const uint32_t n = (field >> 12) & 1, immr = (field >> 6) & 0x3f, imms = field & 0x3f;
  const uint32_t prefix = (n << 6) | (~imms & 0x3f);
  if (prefix == 0) return 0;  // reserved
  const unsigned size = 1u << (31 - llvm::countl_zero(prefix));
  const unsigned ones = (imms & (size - 1)) + 1;
  if (size < 2 || ones == size) return 0;  // reserved
  const uint64_t mask = llvm::maskTrailingOnes<uint64_t>(size);
  const uint64_t run = llvm::maskTrailingOnes<uint64_t>(ones);
  const unsigned r = immr & (size - 1);
  uint64_t elem = r ? ((run >> r) | (run << (size - r))) & mask : run;
  uint64_t value = 0;
  for (unsigned at = 0; at < 64; at += size) value |= elem << at;
  return width == 32 ? value & 0xffffffff : value;
}

// ---- constant materialization -------------------------------------------

MatSeq materialize(uint64_t v) {
  // A value with a clear upper half is built in the W register (which
  // clears the upper half itself), from its two low chunks.
  const bool w = (v >> 32) == 0;
  const unsigned chunks = w ? 2 : 4;
  const Opc movz = w ? MOVZWi : MOVZXi, movn = w ? MOVNWi : MOVNXi, movk = w ? MOVKWi : MOVKXi;
  auto chunk = [](uint64_t x, unsigned k) { return uint32_t(x >> (16 * k)) & 0xffff; };

  // MOVZ (or MOVN) sets the first chunk that is not all zeros (all ones)
  // and clears (fills) the others; MOVKs patch in the remaining chunks.
  auto with_movk = [&](uint32_t fill, Opc first) {
    MatSeq s;
    for (unsigned k = 0; k < chunks; ++k) {
      if (chunk(v, k) == fill) continue;
      if (s.empty()) s.push_back({first, first == movn ? ~chunk(v, k) & 0xffff : chunk(v, k), uint8_t(16 * k)});
      else s.push_back({movk, chunk(v, k), uint8_t(16 * k)});
    }
    if (s.empty()) s.push_back({first, 0, 0});  // 0, or all ones
    return s;
  };
  MatSeq best = with_movk(0, movz);
  auto keep_if_shorter = [&](MatSeq s) {
    if (s.size() < best.size()) best = std::move(s);
  };
  if (best.size() == 1) return best;
  keep_if_shorter(with_movk(0xffff, movn));
  if (best.size() == 1) return best;
  if (auto field = encode_logical_imm(v, w ? 32 : 64)) return {{w ? ORRWri : ORRXri, *field, 0}};
  if (w || best.size() <= 2) return best;
  // A logical immediate that agrees with v in some chunks, then MOVKs for
  // the others. Candidates: either half, or one chunk, repeated.
  const uint64_t lo = v & 0xffffffff, hi = v >> 32;
  uint64_t candidates[] = {lo | (lo << 32), hi | (hi << 32), 0, 0, 0, 0};
  for (unsigned k = 0; k < 4; ++k) candidates[2 + k] = chunk(v, k) * 0x0001000100010001ull;
  for (uint64_t c : candidates) {
    auto field = encode_logical_imm(c, 64);
    if (!field) continue;
    MatSeq s = {{ORRXri, *field, 0}};
    for (unsigned k = 0; k < 4; ++k)
      if (chunk(c, k) != chunk(v, k)) s.push_back({MOVKXi, chunk(v, k), uint8_t(16 * k)});
    keep_if_shorter(std::move(s));
  }
  return best;
}

// ---- selection ----------------------------------------------------------

namespace {

constexpr Opc kNone = kNumOpcodes;

// Each two-operand operation at each width: by register, and by a logical
// immediate (kNone: none; add and sub have their own immediate path).
struct AluForms {
  Op op;
  Opc rr64, rr32, imm64, imm32;
};
constexpr AluForms kAluForms[] = {
    // op        rr64       rr32       imm64    imm32
    {Op::Add,  ADDXrs,    ADDWrs,    kNone,   kNone},
    {Op::Sub,  SUBXrs,    SUBWrs,    kNone,   kNone},
    {Op::Mul,  MADDXrrr,  MADDWrrr,  kNone,   kNone},  // + zr
    {Op::And,  ANDXrs,    ANDWrs,    ANDXri,  ANDWri},
    {Op::Or,   ORRXrs,    ORRWrs,    ORRXri,  ORRWri},
    {Op::Xor,  EORXrs,    EORWrs,    EORXri,  EORWri},
    {Op::Shl,  LSLVXr,    LSLVWr,    kNone,   kNone},  // count mod width, as BPF
    {Op::LShr, LSRVXr,    LSRVWr,    kNone,   kNone},
    {Op::AShr, ASRVXr,    ASRVWr,    kNone,   kNone},
    {Op::UDiv, UDIVXr,    UDIVWr,    kNone,   kNone},
    {Op::SDiv, SDIVXr,    SDIVWr,    kNone,   kNone},
    {Op::UMod, UDIVXr,    UDIVWr,    kNone,   kNone},  // then MSUB
    {Op::SMod, SDIVXr,    SDIVWr,    kNone,   kNone},
};

const AluForms& alu_forms(Op op) {
  for (const AluForms& f : kAluForms)
    if (f.op == op) return f;
  throw Error("arm64 isel", std::string("no ALU form for ") + ir::op_name(op));
}

// The condition after CMP dst, b (Set and Clear: after TST dst, b), by ir::Cond.
constexpr CondCode kCondCodes[] = {
    /* Eq */ EQ, /* Ne */ NE, /* Gt */ HI, /* Ge */ HS, /* Lt */ LO, /* Le */ LS,
    /* SGt */ GT, /* SGe */ GE, /* SLt */ LT, /* SLe */ LE, /* Set */ NE, /* Clear */ EQ,
};
static_assert(std::size(kCondCodes) == size_t(ir::Cond::Clear) + 1, "kCondCodes is indexed by ir::Cond");

// Loads and stores by size (arm64.h MemForms).
constexpr MemForms kLoadZext[9] = {
    {}, {LDRBBui, LDURBBi, LDRBBroX, true}, {LDRHHui, LDURHHi, LDRHHroX, true}, {},
    {LDRWui, LDURWi, LDRWroX, true}, {}, {}, {}, kLoadX};
constexpr MemForms kLoadSext[9] = {
    {}, {LDRSBXui, LDURSBXi, LDRSBXroX, false}, {LDRSHXui, LDURSHXi, LDRSHXroX, false}, {},
    {LDRSWui, LDURSWi, LDRSWroX, false}, {}, {}, {}, kLoadX};
constexpr MemForms kStores[9] = {
    {}, {STRBBui, STURBBi, STRBBroX, true}, {STRHHui, STURHHi, STRHHroX, true}, {},
    {STRWui, STURWi, STRWroX, true}, {}, {}, {}, kStoreX};

// The data operation of an exclusive-access loop, by width (kNone: Xchg
// stores src itself; CmpXchg has its own loop).
struct AtomicForms {
  ir::AtomicOp aop;
  Opc x, w;
};
constexpr AtomicForms kAtomics[] = {
    {ir::AtomicOp::Add, ADDXrs, ADDWrs},  {ir::AtomicOp::Or, ORRXrs, ORRWrs},
    {ir::AtomicOp::And, ANDXrs, ANDWrs},  {ir::AtomicOp::Xor, EORXrs, EORWrs},
    {ir::AtomicOp::Xchg, kNone, kNone},
};

using backend::imm_at;
// The immediate as a register would hold it for the operation.
uint64_t imm_bits(const ir::Inst& i) { return i.width == 32 ? uint32_t(i.imm) : uint64_t(i.imm); }

}  // namespace

void A64ISel::load_imm(NReg dst, uint64_t imm) {
  for (const MatStep& s : materialize(imm)) {
    const bool w = s.op == MOVZWi || s.op == MOVNWi || s.op == MOVKWi || s.op == ORRWri;
    I inst(t_.op[s.op]);
    inst.r(R(dst, w));
    if (s.op == MOVKXi || s.op == MOVKWi) inst.r(R(dst, w));
    if (s.op == ORRXri || s.op == ORRWri) inst.r(R(ZR, w)).i(s.imm);
    else inst.i(s.imm).i(s.shift);
    emit(inst);
  }
}

// ADD/SUB take a 12-bit immediate, optionally shifted left by 12: up to 24
// bits in two instructions; beyond that the constant goes to kTmp (and a
// register operand that is sp needs the extended-register form).
void A64ISel::add_imm(NReg dst, NReg src, int64_t imm, bool w32) {
  if (w32) imm = int32_t(imm);
  if (imm == 0) return mov(dst, src, w32);
  const bool sub = imm < 0;
  const uint64_t a = sub ? 0 - uint64_t(imm) : uint64_t(imm);
  const Opc o = sub ? (w32 ? SUBWri : SUBXri) : (w32 ? ADDWri : ADDXri);
  if (a < (uint64_t(1) << 24)) {
    if (a >> 12) emit(I(t_.op[o]).r(R(dst, w32)).r(R(src, w32)).i(int64_t(a >> 12)).i(12));
    if (a & 0xfff) emit(I(t_.op[o]).r(R(dst, w32)).r(R(a >> 12 ? dst : src, w32)).i(int64_t(a & 0xfff)).i(0));
    return;
  }
  load_imm(kTmp, w32 ? uint32_t(imm) : uint64_t(imm));
  if (dst == SP || src == SP) emit(I(t_.op[ADDXrx64]).r(t_.x[dst]).r(t_.x[src]).r(t_.x[kTmp]).i(24));  // uxtx
  else rrs(w32 ? ADDWrs : ADDXrs, w32, dst, src, kTmp);
}

void A64ISel::mov(NReg dst, NReg src, bool w32) {
  if (dst == SP || src == SP) {
    emit(I(t_.op[ADDXri]).r(t_.x[dst]).r(t_.x[src]).i(0).i(0));
  } else if (dst != src || w32) {  // mov wN, wN clears the upper half
    rrs(w32 ? ORRWrs : ORRXrs, w32, dst, ZR, src);
  }
}

void A64ISel::rrs(Opc o, bool w32, NReg d, NReg a, NReg b) {
  emit(I(t_.op[o]).r(R(d, w32)).r(R(a, w32)).r(R(b, w32)).i(0));
}

void A64ISel::rr(Opc o, bool w32, NReg d, NReg a, NReg b) {
  emit(I(t_.op[o]).r(R(d, w32)).r(R(a, w32)).r(R(b, w32)));
}

void A64ISel::bfm(Opc o, bool w32, NReg d, NReg s, int64_t immr, int64_t imms) {
  emit(I(t_.op[o]).r(R(d, w32)).r(R(s, w32)).i(immr).i(imms));
}

NReg A64ISel::operand(const ir::Inst& i, NReg scratch) {
  if (!i.k) return native(i.src);
  if (imm_bits(i) == 0) return ZR;
  load_imm(scratch, imm_bits(i));
  return scratch;
}

// Upper bounds of each IR instruction's expansion, and the labels'
// positions, to bound each branch's distance (arm64.h).
uint64_t A64ISel::max_insts(const ir::Inst& i) const {
  if (i.op != Op::CallSig || !fn().native) return kMaxInstsPerOp;
  return kMaxInstsPerOp + 6 * uint64_t(fn().native->words());  // ldr + str, offsets up to 2 each
}

void A64ISel::measure_function() {
  const auto& code = fn().code;
  bound_.assign(code.size() + 1, 0);
  label_index_.assign(fn().num_labels, 0);
  for (size_t k = 0; k < code.size(); ++k) {
    bound_[k + 1] = bound_[k] + (code[k].op == Op::Label ? 0 : max_insts(code[k]));
    if (code[k].op == Op::Label) label_index_[code[k].target] = k;
  }
}

// Forward: the code from the branch's instruction up to the label; backward:
// from the label through the branch's instruction.
bool A64ISel::in_reach(const ir::Inst& i, int64_t reach) const {
  const size_t at = size_t(&i - fn().code.data());
  const size_t to = label_index_[i.target];
  const uint64_t span = to > at ? bound_[to] - bound_[at] : bound_[at + 1] - bound_[to];
  return int64_t(span * 4) < reach;
}

void A64ISel::select(const ir::Inst& i) {
  const uint64_t before = emitted_;
  select_one(i);
  if (emitted_ - before > max_insts(i))
    throw Error("arm64 isel", "`" + ir::print(i) + "` took " + std::to_string(emitted_ - before) +
                                  " instructions, more than max_insts() (branch reach depends on it)");
}

void A64ISel::select_one(const ir::Inst& i) {
  const bool w32 = i.width == 32;
  const NReg d = native(i.dst);
  switch (i.op) {
    case Op::Mov:
      if (i.k) return load_imm(d, imm_bits(i));
      if (const auto fused = copy_plus_constant(i, -4095, 4095)) {  // d = s + c: one add or sub, as max_insts(mov)
        add_imm(d, native(i.src), fused->sum, false);
        return take_next(fused->count);
      }
      return mov(d, native(i.src), w32);
    case Op::Add: case Op::Sub: case Op::Mul: case Op::And: case Op::Or: case Op::Xor:
      return alu(i);
    case Op::Shl: case Op::LShr: case Op::AShr:
      return shift(i);
    case Op::UDiv: case Op::SDiv: case Op::UMod: case Op::SMod:
      return divmod(i);
    case Op::Neg:
      return rrs(w32 ? SUBWrs : SUBXrs, w32, d, ZR, d);
    case Op::MovSx:
      return movsx(i);
    case Op::Bswap:
      return bswap(i);
    case Op::LoadImm:
      return load_imm(d, uint64_t(i.imm));
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
      return mov(d, kEntryFrame);
    case Op::ThreadPtr:  // mrs d, tpidr_el0
      return emit(I(t_.op[MRS]).r(t_.x[d]).i(kTpidrEl0));
    case Op::Label:
      return;
  }
}

void A64ISel::alu(const ir::Inst& i) {
  const bool w32 = i.width == 32;
  const NReg d = native(i.dst);
  const AluForms& f = alu_forms(i.op);
  if (i.k) {
    const int64_t imm = imm_at(i);
    if (i.op == Op::Add) return add_imm(d, d, imm, w32);
    if (i.op == Op::Sub) return add_imm(d, d, int64_t(0 - uint64_t(imm)), w32);
    if (f.imm64 != kNone) {
      if (auto field = encode_logical_imm(imm_bits(i), i.width)) {
        emit(I(t_.op[w32 ? f.imm32 : f.imm64]).r(R(d, w32)).r(R(d, w32)).i(*field));
        return;
      }
      if (imm_bits(i) == (w32 ? 0xffffffff : ~uint64_t(0))) {  // all ones: no logical immediate
        if (i.op == Op::And) return mov(d, d, w32);
        if (i.op == Op::Or) return load_imm(d, imm_bits(i));
        return rrs(w32 ? ORNWrs : ORNXrs, w32, d, ZR, d);  // xor: mvn
      }
    }
  }
  const NReg b = operand(i, kTmp);
  if (i.op == Op::Mul) {
    emit(I(t_.op[w32 ? f.rr32 : f.rr64]).r(R(d, w32)).r(R(d, w32)).r(R(b, w32)).r(R(ZR, w32)));
    return;
  }
  rrs(w32 ? f.rr32 : f.rr64, w32, d, d, b);
}

// By register: LSLV/LSRV/ASRV. By a constant, the bitfield moves:
//   lsl #s = UBFM #(w-s)%w, #(w-1-s);  lsr #s = UBFM #s, #(w-1);  asr #s = SBFM #s, #(w-1).
void A64ISel::shift(const ir::Inst& i) {
  const bool w32 = i.width == 32;
  const NReg d = native(i.dst);
  if (!i.k) return rr(w32 ? alu_forms(i.op).rr32 : alu_forms(i.op).rr64, w32, d, d, native(i.src));
  const int64_t w = i.width;
  const int64_t s = i.imm & (w - 1);
  if (s == 0) return mov(d, d, w32);  // 32-bit: still zero-extends
  switch (i.op) {
    case Op::Shl: return bfm(w32 ? UBFMWri : UBFMXri, w32, d, d, (w - s) % w, w - 1 - s);
    case Op::LShr: return bfm(w32 ? UBFMWri : UBFMXri, w32, d, d, s, w - 1);
    default: return bfm(w32 ? SBFMWri : SBFMXri, w32, d, d, s, w - 1);
  }
}

// BPF division never traps: x/0 = 0, x%0 = x, MIN/-1 = MIN, MIN%-1 = 0
// (RFC 9669 section 4.1): UDIV/SDIV give exactly that quotient, and
// x - (x/y)*y (MSUB) exactly that remainder. A zero immediate is the zero
// register; unsigned division by a power of two is a shift or a mask.
void A64ISel::divmod(const ir::Inst& i) {
  const bool w32 = i.width == 32;
  const NReg d = native(i.dst);
  const AluForms& f = alu_forms(i.op);
  if (i.k && (i.op == Op::UDiv || i.op == Op::UMod) && llvm::has_single_bit(imm_bits(i))) {
    const int s = llvm::countr_zero(imm_bits(i));
    if (i.op == Op::UDiv) return s ? bfm(w32 ? UBFMWri : UBFMXri, w32, d, d, s, i.width - 1) : mov(d, d, w32);
    if (s == 0) return load_imm(d, 0);  // x % 1
    emit(I(t_.op[w32 ? ANDWri : ANDXri]).r(R(d, w32)).r(R(d, w32)).i(*encode_logical_imm(imm_bits(i) - 1, i.width)));
    return;
  }
  const Opc div = w32 ? f.rr32 : f.rr64;
  const NReg b = operand(i, kTmp);
  if (i.op == Op::UDiv || i.op == Op::SDiv) return rr(div, w32, d, d, b);
  rr(div, w32, kTmp2, d, b);
  emit(I(t_.op[w32 ? MSUBWrrr : MSUBXrrr]).r(R(d, w32)).r(R(kTmp2, w32)).r(R(b, w32)).r(R(d, w32)));
}

// SXTB/SXTH/SXTW (SBFM #0, #ext-1); at 32 bits the W form zero-extends.
void A64ISel::movsx(const ir::Inst& i) {
  const NReg d = native(i.dst), s = native(i.src);
  if (i.width == 32 && i.ext == 32) return mov(d, s, true);
  if (i.width == 32) return bfm(SBFMWri, true, d, s, 0, i.ext - 1);
  bfm(SBFMXri, false, d, s, 0, i.ext - 1);
}

// REV (64), REV on W (32, zero-extends), REV16 then UXTH (16).
void A64ISel::bswap(const ir::Inst& i) {
  const NReg d = native(i.dst);
  switch (i.ext) {
    case 16:
      emit(I(t_.op[REV16Wr]).r(t_.w[d]).r(t_.w[d]));
      return bfm(UBFMWri, true, d, d, 0, 15);
    case 32:
      emit(I(t_.op[REVWr]).r(t_.w[d]).r(t_.w[d]));
      return;
    default:
      emit(I(t_.op[REVXr]).r(t_.x[d]).r(t_.x[d]));
      return;
  }
}

// [base + off]: a scaled unsigned 12-bit offset when aligned, else a signed
// 9-bit one (LDUR/STUR), else the offset in kTmp as an index register.
void A64ISel::memory(const MemForms& f, int size, NReg data, NReg base, int32_t off) {
  if (off >= 0 && off % size == 0 && off / size < 4096) {
    emit(I(t_.op[f.ui]).r(R(data, f.w32)).r(t_.x[base]).i(off / size));
  } else if (off >= -256 && off < 256) {
    emit(I(t_.op[f.unscaled]).r(R(data, f.w32)).r(t_.x[base]).i(off));
  } else {
    load_imm(kTmp, uint64_t(int64_t(off)));
    emit(I(t_.op[f.ro]).r(R(data, f.w32)).r(t_.x[base]).r(t_.x[kTmp]).i(0).i(0));
  }
}

// A load's or store's: a folded index (ir::fold_addresses) comes without
// an offset, [base, index{, LSL #log2 size}].
void A64ISel::memory(const MemForms& f, int size, NReg data, NReg base, const ir::Inst& access) {
  if (access.index == ir::kNoIndex) return memory(f, size, data, base, access.off);
  emit(I(t_.op[f.ro]).r(R(data, f.w32)).r(t_.x[base]).r(t_.x[native(access.index)]).i(0).i(access.scale ? 1 : 0));
}

void A64ISel::load(const ir::Inst& i) {
  memory((i.sext ? kLoadSext : kLoadZext)[i.size], i.size, native(i.dst), native(i.src), i);
}

// A stored constant only needs its low `size` bytes; zero is the zero register.
void A64ISel::store(const ir::Inst& i) {
  NReg value = native(i.src);
  if (i.k) {
    const uint64_t bits = uint64_t(i.imm) & llvm::maskTrailingOnes<uint64_t>(8 * i.size);
    value = ZR;
    if (bits != 0) {
      load_imm(kTmp2, bits);
      value = kTmp2;
    }
  }
  memory(kStores[i.size], i.size, value, native(i.dst), i);
}

// Exclusive-access loops (ARMv8.0 has no single-instruction atomics): LDXR,
// the operation, STLXR until it succeeds, then DMB ISH, so every atomic is
// fully ordered like the kernel's. 32-bit LDXR zero-extends the old value.
void A64ISel::atomic(const ir::Inst& i) {
  const bool w32 = i.size == 4;
  const NReg s = native(i.src);
  NReg addr = native(i.dst);
  if (i.off != 0) {
    add_imm(kTmp, addr, i.off);
    addr = kTmp;
  }
  const Opc ldxr = w32 ? LDXRW : LDXRX, stlxr = w32 ? STLXRW : STLXRX;
  llvm::MCSymbol* retry = out_.new_label();
  if (i.aop == ir::AtomicOp::CmpXchg) {
    // r0 = the old value; the new value is stored only if the old one equals
    // r0 (its low half for 32 bits). r0 is written only at the end, so it may
    // also be the base or the source.
    const NReg r0 = native(0);
    llvm::MCSymbol* done = out_.new_label();
    out_.bind(retry);
    emit(I(t_.op[ldxr]).r(R(kTmp3, w32)).r(t_.x[addr]));
    rrs(w32 ? SUBSWrs : SUBSXrs, w32, ZR, kTmp3, r0);
    emit(I(t_.op[Bcc]).i(NE).e(ref(done)));
    emit(I(t_.op[stlxr]).r(t_.w[kTmp2]).r(R(s, w32)).r(t_.x[addr]));
    emit(I(t_.op[CBNZW]).r(t_.w[kTmp2]).e(ref(retry)));
    out_.bind(done);
    emit(I(t_.op[DMB]).i(kBarrierIsh));
    mov(r0, kTmp3);
    return;
  }
  const AtomicForms* f = nullptr;
  for (const AtomicForms& a : kAtomics)
    if (a.aop == i.aop) f = &a;
  const bool fetch = i.fetch || i.aop == ir::AtomicOp::Xchg;
  out_.bind(retry);
  emit(I(t_.op[ldxr]).r(R(kTmp3, w32)).r(t_.x[addr]));
  NReg value = s;
  if (f->x != kNone) {
    rrs(w32 ? f->w : f->x, w32, kTmp4, kTmp3, s);
    value = kTmp4;
  }
  emit(I(t_.op[stlxr]).r(t_.w[kTmp2]).r(R(value, w32)).r(t_.x[addr]));
  emit(I(t_.op[CBNZW]).r(t_.w[kTmp2]).e(ref(retry)));
  emit(I(t_.op[DMB]).i(kBarrierIsh));
  if (fetch) mov(s, kTmp3);
}

// CMP (or TST for Set and Clear) and a conditional branch; compares with
// zero for equality are CBZ/CBNZ, a test of one bit is TBNZ/TBZ when the
// label is near.
void A64ISel::branch(const ir::Inst& i) {
  const bool w32 = i.width == 32;
  const NReg a = native(i.dst);
  const int64_t imm = imm_at(i);
  const CondCode cc = kCondCodes[size_t(i.cc)];
  if (i.cc == ir::Cond::Set || i.cc == ir::Cond::Clear) {
    const bool set = i.cc == ir::Cond::Set;
    const uint64_t bits = imm_bits(i);
    if (i.k && llvm::has_single_bit(bits) && in_reach(i, kTestBranchReach)) {
      const int bit = llvm::countr_zero(bits);
      const Opc o = set ? (bit < 32 ? TBNZW : TBNZX) : (bit < 32 ? TBZW : TBZX);
      emit(I(t_.op[o]).r(R(a, bit < 32)).i(bit).e(ref(label(i.target))));
      return;
    }
    std::optional<uint32_t> field = i.k ? encode_logical_imm(bits, i.width) : std::nullopt;
    if (field) emit(I(t_.op[w32 ? ANDSWri : ANDSXri]).r(R(ZR, w32)).r(R(a, w32)).i(*field));
    else rrs(w32 ? ANDSWrs : ANDSXrs, w32, ZR, a, operand(i, kTmp));
    return cond_branch(i, cc);
  }
  if (i.k && imm == 0 && (cc == EQ || cc == NE)) {
    const bool near = in_reach(i, kCondBranchReach);
    Opc o = (cc == EQ) == near ? (w32 ? CBZW : CBZX) : (w32 ? CBNZW : CBNZX);
    if (near) {
      emit(I(t_.op[o]).r(R(a, w32)).e(ref(label(i.target))));
      return;
    }
    llvm::MCSymbol* skip = out_.new_label();
    emit(I(t_.op[o]).r(R(a, w32)).e(ref(skip)));
    jump(label(i.target));
    out_.bind(skip);
    return;
  }
  // CMP #imm12 (or #imm12, lsl 12); a negative one is CMN #-imm, which sets
  // the same flags for every nonzero imm.
  const uint64_t mag = imm < 0 ? 0 - uint64_t(imm) : uint64_t(imm);
  const Opc cmp_ri = imm < 0 ? (w32 ? ADDSWri : ADDSXri) : (w32 ? SUBSWri : SUBSXri);
  if (i.k && mag < 4096) {
    emit(I(t_.op[cmp_ri]).r(R(ZR, w32)).r(R(a, w32)).i(int64_t(mag)).i(0));
  } else if (i.k && (mag & 0xfff) == 0 && mag < (uint64_t(1) << 24)) {
    emit(I(t_.op[cmp_ri]).r(R(ZR, w32)).r(R(a, w32)).i(int64_t(mag >> 12)).i(12));
  } else {
    rrs(w32 ? SUBSWrs : SUBSXrs, w32, ZR, a, operand(i, kTmp));
  }
  cond_branch(i, cc);
}

// B.cc to the label, or B.!cc over a B when the label may be out of reach.
void A64ISel::cond_branch(const ir::Inst& i, CondCode cc) {
  if (in_reach(i, kCondBranchReach)) {
    emit(I(t_.op[Bcc]).i(cc).e(ref(label(i.target))));
    return;
  }
  llvm::MCSymbol* skip = out_.new_label();
  emit(I(t_.op[Bcc]).i(invert(cc)).e(ref(skip)));
  jump(label(i.target));
  out_.bind(skip);
}

}  // namespace sb::arm64
