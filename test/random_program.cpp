// The random program generator (see random_program.h for the shape of a
// program and the rules it keeps).
//
// Generation is structured: a function is a block of statements, and a
// statement is one instruction or a small construct (if, if-else, loop,
// call) whose jumps are patched once its body is known. Alongside the code
// the generator tracks what every register holds (RegState): undefined, a
// scalar, or a pointer into one of the function's memory regions (the input
// buffer, its own stack slots, or a pointer argument), so that each
// instruction reads only defined scalars and accesses only bytes that exist
// and were written. At the join of an if, a register keeps its state only
// if both paths agree (meet); a loop body is regenerated until the state at
// its head is a fixed point.
#include "test/random_program.h"

#include <algorithm>
#include <array>
#include <limits>
#include <string>
#include <utility>

namespace sb::test {

uint64_t Rng::below(uint64_t n) {
  // Rejection sampling: drop the 2^64 mod n lowest outputs so that the rest
  // split evenly into n residues.
  const uint64_t threshold = (0 - n) % n;
  for (;;) {
    const uint64_t x = engine_();
    if (x >= threshold) return x % n;
  }
}

int64_t Rng::range(int64_t lo, int64_t hi) { return lo + int64_t(below(uint64_t(hi - lo) + 1)); }

namespace {

using namespace sb::bpf;

constexpr uint8_t kLoopReg = 8;  // the loop counter; not written inside a loop body
constexpr uint8_t kMemReg = 9;   // the input buffer, copied from r1 at entry, never written again
constexpr uint8_t kFp = kFramePointer;

enum class Kind : uint8_t { Undef, Scalar, Ptr };

struct RegState {
  Kind kind = Kind::Undef;
  int region = -1;  // Ptr: index into Builder::regions_
  int32_t off = 0;  // Ptr: byte offset from the region's base
  bool operator==(const RegState&) const = default;
};
using Regs = std::array<RegState, kNumRegs>;

RegState scalar() { return {Kind::Scalar, -1, 0}; }
RegState pointer(int region, int32_t off) { return {Kind::Ptr, region, off}; }

// The state after two paths join: what both agree on.
Regs meet(const Regs& a, const Regs& b) {
  Regs r;
  for (size_t i = 0; i < r.size(); ++i) r[i] = a[i] == b[i] ? a[i] : RegState{};
  return r;
}

// Bytes [lo, hi) from a region's base that exist and hold written data.
struct Span {
  int32_t lo, hi;
  int32_t size() const { return hi - lo; }
};

// Region 0 of every function is the input buffer, region 1 its own stack
// (base r10, negative offsets), regions 2.. its pointer arguments.
constexpr int kBufferRegion = 0;
constexpr int kStackRegion = 1;
struct Region {
  std::vector<Span> spans;
};

// r1 is always the buffer; r2..r<nargs> are scalars (0) or pointers to
// arg_bytes[i] readable and writable bytes.
struct Signature {
  int nargs = 1;
  std::array<int32_t, 6> arg_bytes{};
};

struct Function {
  Signature sig;
  int level = 0;  // main 0; a function calls only functions of a higher level
  int32_t callback_ctx = 0;  // a bpf_loop callback: the bytes of its context (r2), else 0
  std::vector<Insn> code;
  std::vector<std::pair<size_t, size_t>> calls;  // (index in code, callee)
};

Insn make(uint8_t opcode, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  return Insn{opcode, uint8_t(dst & 0xf), uint8_t(src & 0xf), off, imm};
}

class Generator {
 public:
  Generator(uint64_t seed, const RandomProgramOptions& opts) : rng(seed), opts(opts) {}

  Program generate(uint64_t seed);
  size_t new_function(int level, int32_t callback_ctx = 0);  // generates it now; returns its index

  Rng rng;
  const RandomProgramOptions& opts;
  std::vector<Function> funcs;
  size_t emitted = 0;  // instructions so far, including discarded loop attempts
  size_t limit() const { return opts.kernel_compatible ? 220 : 320; }
};

class Builder {
 public:
  Builder(Generator& g, size_t fid) : g_(g), rng_(g.rng), kernel_(g.opts.kernel_compatible), fid_(fid) {
    sig_ = g.funcs[fid].sig;
    level_ = g.funcs[fid].level;
  }

  // Entry (r9 and the stack slots), `statements` statements, fold, exit.
  void build(int statements);

  std::vector<Insn> code;
  std::vector<std::pair<size_t, size_t>> calls;

 private:
  enum class Stmt : uint8_t {
    AluImm, AluReg, Unary, DivMod, Lddw, Load, Store, Atomic, If, IfElse, Loop,
    CallLocal, CallHelper, Callx, MakePtr, Observe, CallLoop,
  };

  // --- emission and register bookkeeping ---
  size_t emit(const Insn& in) {
    code.push_back(in);
    ++g_.emitted;
    return code.size() - 1;
  }
  void patch_jump(size_t at) {  // a forward jump at `at` lands here
    const int64_t off = int64_t(code.size()) - int64_t(at) - 1;
    if (code[at].opcode == make_opcode(JMP32, JA))
      code[at].imm = int32_t(off);
    else
      code[at].off = int16_t(off);
  }
  bool writable(uint8_t r) const { return r <= 7 || (r == kLoopReg && !in_loop_); }
  bool over_budget() const { return g_.emitted >= g_.limit(); }

  uint8_t pick_writable(uint32_t avoid = 0);
  uint8_t need_scalar(uint32_t avoid = 0, bool writable_only = false);
  uint8_t need_scalar_dst(uint32_t avoid = 0) { return need_scalar(avoid, true); }
  void load_const(uint8_t r, int64_t v);
  int64_t value();     // an interesting 64-bit value
  int32_t imm32();     // an interesting 32-bit immediate
  void ensure_r0();

  // --- memory ---
  bool region_allows(int region, bool immediate_store, bool atomic) const {
    // The kernel forbids BPF_ST and atomics on a context pointer.
    return !(kernel_ && region == kBufferRegion && (immediate_store || atomic));
  }
  uint8_t pick_ptr(bool immediate_store, bool atomic, uint32_t avoid = 0);
  int16_t access_offset(uint8_t ptr, unsigned size, bool aligned);
  void make_pointer_into(uint8_t dst, int32_t min_bytes, bool stack_only = false);

  // --- statements ---
  bool block(int n, bool may_exit);
  bool statement(bool last, bool may_exit);
  Stmt choose();
  void alu_imm();
  void alu_reg();
  void unary();
  void divmod();
  void lddw();
  void load();
  void store();
  void atomic();
  Insn condition();
  bool if_then();
  bool if_else();
  void loop();
  void call_local();
  void helper_arg();
  void call_helper();
  void callx();
  void call_loop();
  void emit_exit();
  void make_ptr();
  void observe(uint8_t r);
  void fold_and_exit(bool main);
  void fold_accumulator();

  Generator& g_;
  Rng& rng_;
  const bool kernel_;
  const size_t fid_;
  Signature sig_;
  int level_ = 0;
  Regs regs_{};
  std::vector<Region> regions_;
  int16_t acc_off_ = 0;  // the accumulator slot, from r10 (outside every span)
  bool in_loop_ = false;
  int nesting_ = 0;
};

// ---------------------------------------------------------------------------
// Registers and values

uint8_t Builder::pick_writable(uint32_t avoid) {
  uint8_t options[kNumRegs];
  size_t n = 0;
  for (uint8_t r = 0; r < kNumRegs; ++r)
    if (writable(r) && !(avoid >> r & 1)) options[n++] = r;
  return options[rng_.below(n)];
}

// A register holding a defined scalar (writable ones only if asked);
// sometimes, or when there is none, a fresh constant in a register outside
// `avoid`.
uint8_t Builder::need_scalar(uint32_t avoid, bool writable_only) {
  uint8_t options[kNumRegs];
  size_t n = 0;
  for (uint8_t r = 0; r < kNumRegs; ++r)
    if (regs_[r].kind == Kind::Scalar && (!writable_only || writable(r))) options[n++] = r;
  if (n == 0 || rng_.chance(8)) {
    const uint8_t r = pick_writable(avoid);
    load_const(r, value());
    return r;
  }
  return options[rng_.below(n)];
}

// mov (sign-extended imm), mov32 (zero-extended imm) or lddw, whichever
// represents v; sometimes lddw anyway.
void Builder::load_const(uint8_t r, int64_t v) {
  if (v == int64_t(int32_t(v)) && !rng_.chance(10)) {
    emit(make(make_opcode(ALU64, MOV, K), r, 0, 0, int32_t(v)));
  } else if (uint64_t(v) >> 32 == 0 && !rng_.chance(10)) {
    emit(make(make_opcode(ALU, MOV, K), r, 0, 0, int32_t(uint32_t(v))));
  } else {
    emit(make(LDDW, r, 0, 0, int32_t(uint32_t(uint64_t(v)))));
    emit(make(0, 0, 0, 0, int32_t(uint32_t(uint64_t(v) >> 32))));
  }
  regs_[r] = scalar();
}

int64_t Builder::value() {
  static constexpr int64_t kSpecial[] = {
      0, 1, -1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
      0x100000000, 0x100000001, 0x7fffffffffffffff, std::numeric_limits<int64_t>::min(),
      int64_t(0xffffffff80000000), int64_t(0xffffffff00000000), 31, 32, 33, 63, 64, 65,
  };
  switch (rng_.below(8)) {
    case 0:
    case 1: return rng_.pick(kSpecial);
    case 2: return rng_.range(-16, 16);
    case 3:
    case 4: return int64_t(int32_t(uint32_t(rng_.next())));
    case 5: return int64_t(uint32_t(rng_.next()));
    default: return int64_t(rng_.next());
  }
}

int32_t Builder::imm32() {
  static constexpr int32_t kSpecial[] = {
      0, 1, -1, 2, 3, 7, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff,
      std::numeric_limits<int32_t>::min(), 31, 32, 63, 64, -2, -128,
      // encoding boundaries: riscv64 12-bit, arm64 12-bit (shifted) and
      // bitmask immediates, x86-64 8-bit
      2047, 2048, -2048, -2049, 4095, 4096, 0xfff000, 0x1000000, 127, -129,
      0x0f0f0f0f, 0x00ff00ff, -16, 0x3ffff, 0x7ffff800,
  };
  switch (rng_.below(4)) {
    case 0: return rng_.pick(kSpecial);
    case 1: return int32_t(rng_.range(-64, 64));
    default: return int32_t(uint32_t(rng_.next()));
  }
}

void Builder::ensure_r0() {
  if (regs_[0].kind == Kind::Scalar) return;
  uint8_t options[kNumRegs];
  size_t n = 0;
  for (uint8_t r = 1; r < kNumRegs; ++r)
    if (regs_[r].kind == Kind::Scalar) options[n++] = r;
  if (n > 0 && rng_.chance(60)) {
    emit(make(make_opcode(ALU64, MOV, X), 0, options[rng_.below(n)], 0, 0));
    regs_[0] = scalar();
  } else {
    load_const(0, value());
  }
}

// ---------------------------------------------------------------------------
// Memory

// A register holding a pointer usable for the access (r10 always is); r9
// and r10 count twice, so most accesses use the plain bases.
uint8_t Builder::pick_ptr(bool immediate_store, bool atomic, uint32_t avoid) {
  uint8_t options[2 * kNumRegs];
  size_t n = 0;
  for (uint8_t r = 0; r < kNumRegs; ++r) {
    if (regs_[r].kind != Kind::Ptr || (avoid >> r & 1)) continue;
    if (!region_allows(regs_[r].region, immediate_store, atomic)) continue;
    options[n++] = r;
    if (r == kMemReg || r == kFp) options[n++] = r;
  }
  return options[rng_.below(n)];
}

// The offset for an access of `size` bytes through `ptr`, inside one span of
// its region; aligned to the size unless `aligned` is false.
int16_t Builder::access_offset(uint8_t ptr, unsigned size, bool aligned) {
  const RegState& p = regs_[ptr];
  const Region& region = regions_[size_t(p.region)];
  const Span& s = region.spans[rng_.below(region.spans.size())];  // every span is >= 8 bytes
  int32_t at;
  if (aligned)
    at = s.lo + int32_t(size) * int32_t(rng_.below(uint64_t(s.size()) / size));
  else
    at = s.lo + int32_t(rng_.below(uint64_t(s.size()) - size + 1));
  return int16_t(at - p.off);
}

// dst = a pointer to at least `min_bytes` accessible bytes (8-aligned), from
// any pointer register whose region has a span that long.
void Builder::make_pointer_into(uint8_t dst, int32_t min_bytes, bool stack_only) {
  struct Option { uint8_t base; Span span; };
  std::vector<Option> options;
  for (uint8_t r = 0; r < kNumRegs; ++r) {
    const RegState& p = regs_[r];
    if (p.kind != Kind::Ptr || (kernel_ && p.region == kBufferRegion) || (stack_only && p.region != kStackRegion))
      continue;
    for (const Span& s : regions_[size_t(p.region)].spans)
      if (s.size() >= min_bytes) options.push_back({r, s});
  }
  const Option o = options[rng_.below(options.size())];  // r10 has a 32-byte run
  const RegState base = regs_[o.base];
  const int32_t at = o.span.lo + 8 * int32_t(rng_.below(uint64_t(o.span.size() - min_bytes) / 8 + 1));
  if (dst != o.base) emit(make(make_opcode(ALU64, MOV, X), dst, o.base, 0, 0));
  if (at != base.off) {
    if (kernel_ || rng_.chance(50))
      emit(make(make_opcode(ALU64, ADD, K), dst, 0, 0, at - base.off));
    else
      emit(make(make_opcode(ALU64, SUB, K), dst, 0, 0, base.off - at));
  }
  regs_[dst] = pointer(base.region, at);
}

// ---------------------------------------------------------------------------
// Statements

Builder::Stmt Builder::choose() {
  struct Weight { Stmt s; unsigned w; };
  const Weight table[] = {
      {Stmt::AluImm, 14}, {Stmt::AluReg, 14}, {Stmt::Unary, 5}, {Stmt::DivMod, 8},
      {Stmt::Lddw, 3},    {Stmt::Load, 11},   {Stmt::Store, 9}, {Stmt::Atomic, 6},
      {Stmt::If, 7},      {Stmt::IfElse, 4},  {Stmt::Loop, 3},  {Stmt::CallLocal, 4},
      {Stmt::CallHelper, kernel_ ? 0u : 2u},  {Stmt::Callx, kernel_ ? 0u : 1u},
      {Stmt::MakePtr, 3},    {Stmt::Observe, 7},
      {Stmt::CallLoop, g_.opts.callbacks && !kernel_ ? 3u : 0u},
  };
  unsigned total = 0;
  for (const Weight& w : table) total += w.w;
  uint64_t x = rng_.below(total);
  for (const Weight& w : table) {
    if (x < w.w) return w.s;
    x -= w.w;
  }
  return Stmt::AluImm;
}

bool Builder::block(int n, bool may_exit) {
  for (int i = 0; i < n; ++i)
    if (!statement(i == n - 1, may_exit)) return false;
  return true;
}

// One statement; returns whether control falls through to the next.
bool Builder::statement(bool last, bool may_exit) {
  if (last && may_exit && nesting_ > 0 && rng_.chance(12)) {  // early return
    ensure_r0();
    fold_accumulator();
    emit_exit();
    return false;
  }
  Stmt s = choose();
  const bool compound_ok = nesting_ < 3 && !over_budget();
  if ((s == Stmt::If || s == Stmt::IfElse || s == Stmt::Loop) && !compound_ok) s = Stmt::AluReg;
  if (s == Stmt::Loop && in_loop_) s = Stmt::If;
  const bool callback = g_.funcs[fid_].callback_ctx != 0;
  if ((s == Stmt::CallLocal || s == Stmt::CallLoop) && (callback || level_ >= g_.opts.max_call_depth || over_budget()))
    s = Stmt::AluImm;
  switch (s) {
    case Stmt::AluImm: alu_imm(); break;
    case Stmt::AluReg: alu_reg(); break;
    case Stmt::Unary: unary(); break;
    case Stmt::DivMod: divmod(); break;
    case Stmt::Lddw: lddw(); break;
    case Stmt::Load: load(); break;
    case Stmt::Store: store(); break;
    case Stmt::Atomic: atomic(); break;
    case Stmt::If: return if_then();
    case Stmt::IfElse: return if_else();
    case Stmt::Loop: loop(); break;
    case Stmt::CallLocal: call_local(); break;
    case Stmt::CallHelper: call_helper(); break;
    case Stmt::Callx: callx(); break;
    case Stmt::MakePtr: make_ptr(); break;
    case Stmt::Observe: observe(need_scalar()); break;
    case Stmt::CallLoop: call_loop(); break;
  }
  return true;
}

constexpr uint8_t kBinaryOps[] = {ADD, SUB, MUL, OR, AND, LSH, RSH, XOR, MOV, ARSH};

void Builder::alu_imm() {
  const uint8_t cls = rng_.chance(50) ? ALU64 : ALU;
  const uint8_t op = rng_.pick(kBinaryOps);
  int32_t imm = imm32();
  if (op == LSH || op == RSH || op == ARSH) {
    const int width = cls == ALU64 ? 64 : 32;
    // RFC 9669 masks the count; the kernel rejects immediates >= the width.
    if (kernel_ || rng_.chance(75)) imm = int32_t(rng_.below(uint64_t(width)));
  }
  const uint8_t dst = op == MOV ? pick_writable() : need_scalar_dst();
  emit(make(make_opcode(cls, op, K), dst, 0, 0, imm));
  regs_[dst] = scalar();
}

void Builder::alu_reg() {
  const uint8_t cls = rng_.chance(50) ? ALU64 : ALU;
  const uint8_t op = rng_.pick(kBinaryOps);
  uint8_t src;
  if ((op == LSH || op == RSH || op == ARSH) && rng_.chance(40)) {
    static constexpr int64_t kCounts[] = {0, 1, 31, 32, 33, 63, 64, 65, -1, 0x100000001, 255, 4096};
    src = pick_writable();
    load_const(src, rng_.pick(kCounts));
  } else {
    src = need_scalar();
  }
  int16_t off = 0;
  if (op == MOV && rng_.chance(30)) {  // movsx
    static constexpr int16_t k32[] = {8, 16};
    static constexpr int16_t k64[] = {8, 16, 32};
    off = cls == ALU ? rng_.pick(k32) : rng_.pick(k64);
  }
  const uint8_t dst = op == MOV ? pick_writable() : need_scalar_dst(1u << src);
  emit(make(make_opcode(cls, op, X), dst, src, off, 0));
  regs_[dst] = scalar();
}

void Builder::unary() {
  const uint8_t dst = need_scalar_dst();
  static constexpr int32_t kWidths[] = {16, 32, 64};
  switch (rng_.below(4)) {
    case 0: emit(make(make_opcode(rng_.chance(50) ? ALU64 : ALU, NEG, K), dst, 0, 0, 0)); break;
    case 1: emit(make(make_opcode(ALU, END, TO_LE), dst, 0, 0, rng_.pick(kWidths))); break;
    case 2: emit(make(make_opcode(ALU, END, TO_BE), dst, 0, 0, rng_.pick(kWidths))); break;
    default: emit(make(make_opcode(ALU64, END, TO_LE), dst, 0, 0, rng_.pick(kWidths))); break;
  }
  regs_[dst] = scalar();
}

// div/mod/sdiv/smod with the corner cases on purpose: divisors 0 (reg only:
// an immediate 0 is invalid), -1, INT_MIN, a 64-bit value whose low half is
// 0 (zero for the 32-bit forms), and dividends INT_MIN.
void Builder::divmod() {
  const uint8_t cls = rng_.chance(50) ? ALU64 : ALU;
  const uint8_t op = rng_.chance(50) ? DIV : MOD;
  const int16_t is_signed = rng_.chance(50) ? 1 : 0;
  uint8_t dst;
  if (rng_.chance(25)) {
    static constexpr int64_t kDividends[] = {
        std::numeric_limits<int64_t>::min(), 0x80000000, int64_t(0xdeadbeef80000000), -1, 0, 1, -7, 7,
    };
    dst = pick_writable();
    load_const(dst, rng_.pick(kDividends));
  } else {
    dst = need_scalar_dst();
  }
  if (rng_.chance(40)) {
    static constexpr int32_t kDivisors[] = {-1, std::numeric_limits<int32_t>::min(), 1, 2, 3, 7, -3, 0x7fffffff};
    int32_t imm = rng_.chance(50) ? rng_.pick(kDivisors) : int32_t(uint32_t(rng_.next()));
    if (imm == 0) imm = 1;
    emit(make(make_opcode(cls, op, K), dst, 0, is_signed, imm));
  } else {
    uint8_t src;
    if (rng_.chance(40)) {
      static constexpr int64_t kDivisors[] = {
          0, 0, -1, -1, 0x100000000, 0xffffffff, std::numeric_limits<int64_t>::min(), 0x80000000, 1, 3,
      };
      src = pick_writable(1u << dst);
      load_const(src, rng_.pick(kDivisors));
    } else {
      src = need_scalar(1u << dst);
    }
    emit(make(make_opcode(cls, op, X), dst, src, is_signed, 0));
  }
  regs_[dst] = scalar();
}

void Builder::lddw() {
  const uint8_t dst = pick_writable();
  const uint64_t v = rng_.chance(50) ? rng_.next() : uint64_t(value());
  emit(make(LDDW, dst, 0, 0, int32_t(uint32_t(v))));
  emit(make(0, 0, 0, 0, int32_t(uint32_t(v >> 32))));
  regs_[dst] = scalar();
}

constexpr uint8_t kSizes[] = {B, H, W, DW};

void Builder::load() {
  const uint8_t ptr = pick_ptr(false, false);
  const uint8_t size = rng_.pick(kSizes);
  const bool sx = size != DW && rng_.chance(35);
  const int16_t off = access_offset(ptr, size_bytes(size), kernel_ || rng_.chance(90));
  const uint8_t dst = pick_writable();
  emit(make(make_opcode(LDX, sx ? MEMSX : MEM, size), dst, ptr, off, 0));
  regs_[dst] = scalar();
}

void Builder::store() {
  const uint8_t size = rng_.pick(kSizes);
  const bool immediate = rng_.chance(35);
  const uint8_t ptr = pick_ptr(immediate, false);
  const bool aligned = kernel_ || rng_.chance(90);
  if (immediate) {
    const int16_t off = access_offset(ptr, size_bytes(size), aligned);
    emit(make(make_opcode(ST, MEM, size), ptr, 0, off, imm32()));
  } else {
    const uint8_t src = need_scalar(1u << ptr);
    const int16_t off = access_offset(ptr, size_bytes(size), aligned);
    emit(make(make_opcode(STX, MEM, size), ptr, src, off, 0));
  }
}

void Builder::atomic() {
  static constexpr int32_t kOps[] = {
      ATOMIC_ADD, ATOMIC_ADD | FETCH, ATOMIC_OR, ATOMIC_OR | FETCH, ATOMIC_AND, ATOMIC_AND | FETCH,
      ATOMIC_XOR, ATOMIC_XOR | FETCH, ATOMIC_XCHG, ATOMIC_CMPXCHG,
  };
  const int32_t op = rng_.pick(kOps);
  const uint8_t size = rng_.chance(50) ? W : DW;
  const bool cmpxchg = op == ATOMIC_CMPXCHG;
  const uint8_t ptr = pick_ptr(false, true, cmpxchg ? 1u : 0u);  // cmpxchg needs r0 for data
  uint32_t avoid = 1u << ptr;
  if (cmpxchg) {
    ensure_r0();
    avoid |= 1u;
  }
  uint8_t src;
  if (op & FETCH && !cmpxchg)
    src = need_scalar_dst(avoid);  // the old value comes back in src
  else
    src = need_scalar(avoid);
  const int16_t off = access_offset(ptr, size_bytes(size), true);
  emit(make(make_opcode(STX, ATOMIC, size), ptr, src, off, op));
  regs_[cmpxchg ? 0 : src] = scalar();
}

// A conditional jump (offset patched by the caller), JMP or JMP32, on
// defined scalars only.
Insn Builder::condition() {
  static constexpr uint8_t kConds[] = {JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE, JLT, JLE, JSLT, JSLE};
  const uint8_t cls = rng_.chance(65) ? JMP : JMP32;
  const uint8_t op = rng_.pick(kConds);
  const uint8_t dst = need_scalar();
  if (rng_.chance(50)) {
    // Values near 0 and from the value pool make both outcomes likely; a
    // single bit for jset.
    int32_t imm;
    if (op == JSET && rng_.chance(50))
      imm = int32_t(uint32_t(1) << rng_.below(32));
    else if (rng_.chance(60))
      imm = rng_.chance(50) ? int32_t(rng_.range(-2, 2)) : int32_t(value());
    else
      imm = imm32();
    return make(make_opcode(cls, op, K), dst, 0, 0, imm);
  }
  const uint8_t src = need_scalar(1u << dst);
  return make(make_opcode(cls, op, X), dst, src, 0, 0);
}

bool Builder::if_then() {
  const size_t jump = emit(condition());
  const Regs before = regs_;
  // Rarely a long body, for branches beyond the short encodings (x86-64
  // rel8, riscv64 B-type +-4 KiB, arm64 imm19 is out of reach).
  const int n = nesting_ == 0 && rng_.chance(2) ? int(rng_.range(40, 250)) : int(rng_.range(1, 5));
  ++nesting_;
  const bool falls = block(n, true);
  --nesting_;
  patch_jump(jump);
  regs_ = falls ? meet(before, regs_) : before;
  return true;
}

bool Builder::if_else() {
  const size_t jump = emit(condition());
  const Regs before = regs_;
  ++nesting_;
  const bool then_falls = block(int(rng_.range(1, 4)), true);
  size_t skip = 0;
  if (then_falls)  // ja or gotol over the else part
    skip = emit(rng_.chance(70) ? make(make_opcode(JMP, JA), 0, 0, 0, 0) : make(make_opcode(JMP32, JA), 0, 0, 0, 0));
  const Regs after_then = regs_;
  patch_jump(jump);
  regs_ = before;
  const bool else_falls = block(int(rng_.range(1, 4)), then_falls);  // one path must reach the join
  --nesting_;
  if (then_falls) patch_jump(skip);
  if (then_falls && else_falls)
    regs_ = meet(after_then, regs_);
  else if (then_falls)
    regs_ = after_then;
  return true;
}

// A counted loop on r8 with 1..4 iterations. The body is generated for the
// state at the loop head; if the state at its end disagrees (the body
// clobbered a register the head had defined), the head state is narrowed
// to the meet and the body generated again.
void Builder::loop() {
  const int64_t bound = rng_.range(1, 4);
  const unsigned form = unsigned(rng_.below(4));
  switch (form) {
    case 0: emit(make(make_opcode(ALU64, MOV, K), kLoopReg, 0, 0, 0)); break;
    case 1: emit(make(make_opcode(ALU64, MOV, K), kLoopReg, 0, 0, int32_t(bound))); break;
    default: emit(make(make_opcode(ALU, MOV, K), kLoopReg, 0, 0, 0)); break;
  }
  regs_[kLoopReg] = scalar();
  Regs head = regs_;
  const size_t code_mark = code.size(), calls_mark = calls.size(), funcs_mark = g_.funcs.size();
  for (;;) {
    regs_ = head;
    in_loop_ = true;
    ++nesting_;
    const size_t top = code.size();
    block(int(rng_.range(1, 6)), false);
    --nesting_;
    in_loop_ = false;
    switch (form) {
      case 0:  // for (r8 = 0; ++r8 < bound;)
        emit(make(make_opcode(ALU64, ADD, K), kLoopReg, 0, 0, 1));
        emit(make(make_opcode(JMP, JLT, K), kLoopReg, 0, 0, int32_t(bound)));
        break;
      case 1:  // for (r8 = bound; --r8 s> 0;)
        emit(make(make_opcode(ALU64, SUB, K), kLoopReg, 0, 0, 1));
        emit(make(make_opcode(JMP, JSGT, K), kLoopReg, 0, 0, 0));
        break;
      case 2:  // 32-bit: while (++w8 < bound)
        emit(make(make_opcode(ALU, ADD, K), kLoopReg, 0, 0, 1));
        emit(make(make_opcode(JMP32, JLT, K), kLoopReg, 0, 0, int32_t(bound)));
        break;
      default:  // while (++r8 != bound)
        emit(make(make_opcode(ALU64, ADD, K), kLoopReg, 0, 0, 1));
        emit(make(make_opcode(JMP32, JNE, K), kLoopReg, 0, 0, int32_t(bound)));
        break;
    }
    code.back().off = int16_t(int64_t(top) - int64_t(code.size()));
    const Regs narrowed = meet(head, regs_);
    if (narrowed == head) return;  // regs_ is the state after the loop
    head = narrowed;
    code.resize(code_mark);
    calls.resize(calls_mark);
    g_.funcs.resize(funcs_mark);
  }
}

// bpf-to-bpf call: r1 = the buffer, r2.. the callee's arguments; afterwards
// r0 is its result and r1-r5 are undefined.
void Builder::call_local() {
  std::vector<size_t> existing;
  for (size_t f = 1; f < g_.funcs.size(); ++f)
    if (g_.funcs[f].level > level_ && !g_.funcs[f].callback_ctx) existing.push_back(f);
  const size_t callee = !existing.empty() && rng_.chance(40) ? existing[rng_.below(existing.size())]
                                                             : g_.new_function(level_ + 1);
  const Signature sig = g_.funcs[callee].sig;
  if (!(regs_[1] == pointer(kBufferRegion, 0)) || rng_.chance(30))
    emit(make(make_opcode(ALU64, MOV, X), 1, kMemReg, 0, 0));
  regs_[1] = pointer(kBufferRegion, 0);
  for (int i = 2; i <= sig.nargs; ++i) {
    const uint8_t r = uint8_t(i);
    if (sig.arg_bytes[size_t(i)] != 0) {
      make_pointer_into(r, sig.arg_bytes[size_t(i)]);
    } else if (regs_[r].kind != Kind::Scalar || rng_.chance(50)) {
      uint8_t options[kNumRegs];
      size_t n = 0;
      for (uint8_t s = 0; s < kNumRegs; ++s)
        if (regs_[s].kind == Kind::Scalar) options[n++] = s;
      if (n > 0 && rng_.chance(50)) {
        emit(make(make_opcode(ALU64, MOV, X), r, options[rng_.below(n)], 0, 0));
        regs_[r] = scalar();
      } else {
        load_const(r, value());
      }
    }
  }
  calls.push_back({emit(make(make_opcode(JMP, CALL), 0, CALL_LOCAL, 0, 0)), callee});
  regs_[0] = scalar();
  for (int i = 1; i <= 5; ++i) regs_[size_t(i)] = {};
  if (rng_.chance(80)) observe(0);
}

// r1 for helper 5: usually non-zero; 0 (or a register that holds 0) ends
// the program there.
void Builder::helper_arg() {
  if (rng_.chance(4)) {
    load_const(1, 0);
  } else if (rng_.chance(65)) {
    int64_t v = value();
    load_const(1, v == 0 ? 42 : v);
  } else {
    const uint8_t s = need_scalar(2);
    emit(make(make_opcode(ALU64, MOV, X), 1, s, 0, 0));
    regs_[1] = scalar();
  }
}

void Builder::call_helper() {
  helper_arg();
  emit(make(make_opcode(JMP, CALL), 0, CALL_HELPER, 0, 5));
  regs_[0] = scalar();
  for (int i = 1; i <= 5; ++i) regs_[size_t(i)] = {};
}

void Builder::callx() {
  helper_arg();
  const uint8_t r = pick_writable(rng_.chance(80) ? 2u : 0u);  // rarely r1 itself (then r1 = 5)
  load_const(r, 5);
  emit(make(make_opcode(JMP, CALL, X), r, 0, 0, 0));
  regs_[0] = scalar();
  for (int i = 1; i <= 5; ++i) regs_[size_t(i)] = {};
}

// bpf_loop(nr_loops, callback, ctx, flags) with a new callback over 8-32
// bytes of this frame's stack (a pointer argument may be raw memory, which
// the kernel's ARG_PTR_TO_STACK_OR_NULL refuses); afterwards r0 is the number
// of calls (or -EINVAL) and r1-r5 are undefined.
void Builder::call_loop() {
  const int32_t ctx_bytes = 8 * int32_t(rng_.range(1, 4));
  const size_t callee = g_.new_function(level_ + 1, ctx_bytes);
  if (rng_.chance(75)) {
    load_const(1, rng_.range(0, 5));
  } else {  // a number the verifier knows only the bounds of
    const uint8_t s = need_scalar(2);
    emit(make(make_opcode(ALU64, MOV, X), 1, s, 0, 0));
    emit(make(make_opcode(ALU64, AND, K), 1, 0, 0, 7));
  }
  regs_[1] = scalar();
  calls.push_back({emit(make(LDDW, 2, LDDW_CODE_ADDR, 0, 0)), callee});
  emit(make(0, 0, 0, 0, 0));
  regs_[2] = {};
  make_pointer_into(3, ctx_bytes, /*stack_only=*/true);
  load_const(4, rng_.chance(10) ? 1 : 0);
  emit(make(make_opcode(JMP, CALL), 0, CALL_HELPER, 0, int32_t(HELPER_LOOP)));
  regs_[0] = scalar();
  for (int i = 1; i <= 5; ++i) regs_[size_t(i)] = {};
  if (rng_.chance(80)) observe(0);
}

// exit; a callback's r0 must be 0 or 1 (continue, stop), so it keeps bit 0.
void Builder::emit_exit() {
  if (g_.funcs[fid_].callback_ctx) emit(make(make_opcode(ALU64, AND, K), 0, 0, 0, 1));
  emit(make(make_opcode(JMP, EXIT), 0, 0, 0, 0));
}

// dst = a pointer near accessible bytes, possibly outside them (the access
// offset brings it back); the kernel forbids arithmetic on the buffer
// (context) pointer, so there only a plain copy.
void Builder::make_ptr() {
  const uint8_t base = pick_ptr(false, false);
  const RegState b = regs_[base];
  const uint8_t dst = pick_writable();
  int32_t at = b.off;
  if (!(kernel_ && b.region == kBufferRegion) && rng_.chance(85)) {
    const Region& region = regions_[size_t(b.region)];
    const Span& s = region.spans[rng_.below(region.spans.size())];
    if (kernel_)
      at = int32_t(rng_.range(s.lo, s.hi));
    else if (rng_.chance(80))
      at = int32_t(rng_.range(s.lo - 16, s.hi + 16));
    else  // far away: the access offset needs more than a short immediate
      at = int32_t(rng_.range(s.lo - 5000, s.hi + 5000));
  }
  emit(make(make_opcode(ALU64, MOV, X), dst, base, 0, 0));
  if (at != b.off) {
    if (kernel_ || rng_.chance(50))  // the kernel only adds to stack pointers
      emit(make(make_opcode(ALU64, ADD, K), dst, 0, 0, at - b.off));
    else
      emit(make(make_opcode(ALU64, SUB, K), dst, 0, 0, b.off - at));
  }
  regs_[dst] = pointer(b.region, at);
}

// Adds a register to the frame's accumulator slot, which every exit folds
// into r0: without it most random values would be overwritten unseen.
void Builder::observe(uint8_t r) {
  emit(make(make_opcode(STX, ATOMIC, DW), kFp, r, acc_off_, rng_.chance(80) ? ATOMIC_ADD : ATOMIC_XOR));
}

void Builder::fold_accumulator() {
  const uint8_t t = pick_writable(1);
  emit(make(make_opcode(LDX, MEM, DW), t, kFp, acc_off_, 0));
  emit(make(make_opcode(ALU64, ADD, X), 0, t, 0, 0));
  regs_[t] = scalar();
}

// r0 mixes the accumulator and every defined scalar (r0 = r0 * odd + r) so
// that a wrong register shows in the result. In kernel mode main folds the
// high half into the low one too, since the kernel reports only the low 32
// bits of r0.
void Builder::fold_and_exit(bool main) {
  ensure_r0();
  if (main || rng_.chance(50)) {
    for (uint8_t r = 1; r <= kLoopReg; ++r) {
      if (regs_[r].kind != Kind::Scalar || !rng_.chance(80)) continue;
      static constexpr uint8_t kMix[] = {XOR, ADD, SUB};
      emit(make(make_opcode(ALU64, MUL, K), 0, 0, 0, 0x2545f491));
      emit(make(make_opcode(ALU64, rng_.pick(kMix), X), 0, r, 0, 0));
    }
  }
  fold_accumulator();
  if (main && kernel_) {
    emit(make(make_opcode(ALU64, MOV, X), 1, 0, 0, 0));
    emit(make(make_opcode(ALU64, RSH, K), 1, 0, 0, 32));
    emit(make(make_opcode(ALU64, XOR, X), 0, 1, 0, 0));
  }
  emit_exit();
}

void Builder::build(int statements) {
  const bool main = fid_ == 0;
  const int32_t callback_ctx = g_.funcs[fid_].callback_ctx;
  // Regions: the buffer (a callback's context), this frame's stack slots,
  // then pointer arguments.
  regions_.push_back({{{0, callback_ctx ? callback_ctx : int32_t(g_.opts.mem_size)}}});
  // A run of four slots (so any pointer argument fits) plus up to three more.
  const int max_slot = kernel_ ? 12 : kStackSize / 8;  // the kernel's 512 bytes are for all frames
  std::vector<int> slots;
  const int run = int(rng_.range(1, max_slot - 3));
  for (int k = run; k < run + 4; ++k) slots.push_back(k);
  for (int extra = int(rng_.range(0, 3)); extra > 0; --extra) slots.push_back(int(rng_.range(1, max_slot)));
  std::sort(slots.begin(), slots.end());
  slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
  int acc = int(rng_.range(1, max_slot));
  while (std::binary_search(slots.begin(), slots.end(), acc)) acc = acc % max_slot + 1;
  acc_off_ = int16_t(-8 * acc);
  Region stack;
  for (int k : slots) {  // slot k is [r10 - 8k, r10 - 8k + 8); merge neighbours
    if (!stack.spans.empty() && stack.spans.back().lo == -8 * (k - 1))
      stack.spans.back().lo = -8 * k;
    else
      stack.spans.push_back({-8 * k, -8 * k + 8});
  }
  regions_.push_back(stack);

  regs_[1] = pointer(kBufferRegion, 0);
  regs_[kFp] = pointer(kStackRegion, 0);
  if (main && !kernel_) regs_[2] = scalar();  // the buffer's length
  if (callback_ctx) {  // callback(index, ctx)
    regs_[1] = scalar();
    regs_[2] = pointer(kBufferRegion, 0);
  }
  for (int i = 2; !main && !callback_ctx && i <= sig_.nargs; ++i) {
    if (sig_.arg_bytes[size_t(i)] == 0) {
      regs_[size_t(i)] = scalar();
    } else {
      regions_.push_back({{{0, sig_.arg_bytes[size_t(i)]}}});
      regs_[size_t(i)] = pointer(int(regions_.size()) - 1, 0);
    }
  }

  emit(make(make_opcode(ALU64, MOV, X), kMemReg, callback_ctx ? 2 : 1, 0, 0));
  regs_[kMemReg] = pointer(kBufferRegion, 0);
  emit(make(make_opcode(ST, MEM, DW), kFp, 0, acc_off_, imm32()));
  for (int k : slots) {
    const int16_t off = int16_t(-8 * k);
    switch (rng_.below(6)) {
      case 0:  // two 32-bit halves
        emit(make(make_opcode(ST, MEM, W), kFp, 0, off, imm32()));
        emit(make(make_opcode(ST, MEM, W), kFp, 0, int16_t(off + 4), imm32()));
        break;
      case 1: {  // a full 64-bit pattern through r0
        const uint64_t v = rng_.next();
        emit(make(LDDW, 0, 0, 0, int32_t(uint32_t(v))));
        emit(make(0, 0, 0, 0, int32_t(uint32_t(v >> 32))));
        emit(make(make_opcode(STX, MEM, DW), kFp, 0, off, 0));
        regs_[0] = scalar();
        break;
      }
      default: emit(make(make_opcode(ST, MEM, DW), kFp, 0, off, imm32())); break;
    }
  }

  block(statements, false);
  fold_and_exit(main);
}

// ---------------------------------------------------------------------------

size_t Generator::new_function(int level, int32_t callback_ctx) {
  Function f;
  f.level = level;
  f.callback_ctx = callback_ctx;
  f.sig.nargs = callback_ctx ? 2 : int(rng.range(1, 5));
  for (int i = 2; !callback_ctx && i <= f.sig.nargs; ++i)
    if (rng.chance(30)) f.sig.arg_bytes[size_t(i)] = 8 * int32_t(rng.range(1, 4));
  funcs.push_back(f);
  const size_t id = funcs.size() - 1;
  Builder b(*this, id);
  b.build(int(rng.range(3, std::max(4, opts.main_statements / 2))));
  funcs[id].code = std::move(b.code);
  funcs[id].calls = std::move(b.calls);
  return id;
}

Program Generator::generate(uint64_t seed) {
  funcs.push_back(Function{});
  Builder b(*this, 0);
  b.build(int(rng.range(opts.main_statements / 2, opts.main_statements)));
  funcs[0].code = std::move(b.code);
  funcs[0].calls = std::move(b.calls);

  // Link: functions in creation order, local calls relative to the next slot.
  std::vector<size_t> start(funcs.size());
  size_t at = 0;
  for (size_t f = 0; f < funcs.size(); ++f) {
    start[f] = at;
    at += funcs[f].code.size();
  }
  Program p;
  p.name = "seed " + std::to_string(seed);
  for (size_t f = 0; f < funcs.size(); ++f) {
    for (auto [index, callee] : funcs[f].calls)
      funcs[f].code[index].imm = int32_t(int64_t(start[callee]) - int64_t(start[f] + index + 1));
    p.insns.insert(p.insns.end(), funcs[f].code.begin(), funcs[f].code.end());
  }
  return p;
}

}  // namespace

RandomProgram random_program(uint64_t seed, const RandomProgramOptions& opts) {
  RandomProgram out;
  Generator g(seed, opts);
  out.program = g.generate(seed);
  // The buffer from its own stream, so that it does not depend on the program.
  Rng mem(seed ^ 0x6a09e667f3bcc909);
  out.memory.resize(opts.mem_size);
  for (size_t i = 0; i < out.memory.size(); i += 8) {
    uint64_t word;
    switch (mem.below(8)) {
      case 0: word = 0; break;
      case 1: word = ~uint64_t(0); break;
      case 2: word = uint64_t(mem.range(-128, 128)); break;
      case 3: word = uint64_t(1) << 63 | uint64_t(1) << 31 | (mem.next() & 0xff); break;
      default: word = mem.next(); break;
    }
    for (size_t b = 0; b < 8 && i + b < out.memory.size(); ++b) out.memory[i + b] = uint8_t(word >> (8 * b));
  }
  return out;
}

}  // namespace sb::test
