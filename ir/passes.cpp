// The IR passes of ir/passes.h. Each rewrites a function's code in place,
// keeping every instruction's origin (a merged instruction keeps the first
// one's), so listings and fault reports still name the bytecode.
#include "ir/passes.h"

#include <algorithm>
#include <bit>
#include <optional>

#include "ir/liveness.h"

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
    case Cond::Set: return Cond::Clear;
    case Cond::Clear: return Cond::Set;
  }
  return Cond::Set;
}

// Is `label` defined among the labels that start at code[at]?
bool label_follows(const std::vector<Inst>& code, size_t at, uint32_t label) {
  for (; at < code.size() && code[at].op == Op::Label; ++at)
    if (code[at].target == label) return true;
  return false;
}

// What fold_addresses knows about a register's value within a
// straight-line stretch: value == base + (index << scale) + disp, where
// base and index (either may be absent) still hold what they held then.
struct AddrExpr {
  bool valid = false;
  uint8_t base = kNoIndex, index = kNoIndex, scale = 0;
  int64_t disp = 0;
  bool refers_to(uint8_t r) const { return valid && (base == r || index == r); }
  int terms() const { return (base != kNoIndex) + (index != kNoIndex); }
};

// Only BPF registers other than r10's writers go into an expression: the
// hidden scratch registers may be clobbered by a division or an atomic.
bool addressable(uint8_t r) { return r < kAX; }

// a + b, or an invalid expression when it has more register terms (or
// scaled ones) than one address holds.
AddrExpr sum(const AddrExpr& a, const AddrExpr& b) {
  AddrExpr r;
  if (!a.valid || !b.valid || a.terms() + b.terms() > 2) return r;
  r = a;
  r.disp = a.disp + b.disp;
  if (!fits_i32(r.disp)) return AddrExpr{};
  const uint8_t regs[2] = {b.base, b.index};
  const uint8_t scales[2] = {0, b.scale};
  for (int t = 0; t < 2; ++t) {
    if (regs[t] == kNoIndex) continue;
    if (scales[t] == 0 && r.base == kNoIndex) {
      r.base = regs[t];
    } else if (r.index == kNoIndex) {
      r.index = regs[t], r.scale = scales[t];
    } else {
      return AddrExpr{};
    }
  }
  return r;
}

AddrExpr reg_expr(uint8_t r) {
  AddrExpr e;
  if (addressable(r)) e.valid = true, e.base = r;
  return e;
}

// The expression `i` leaves in i.dst, given the ones before it.
AddrExpr defined_expr(const Inst& i, const AddrExpr* e) {
  if (op_form(i.op) != Form::Alu || i.width != 64) return AddrExpr{};
  const AddrExpr& d = e[i.dst];
  AddrExpr b;  // the second operand
  if (i.k) {
    b.valid = fits_i32(i.imm), b.disp = i.imm;
  } else if (i.src != i.dst) {
    b = e[i.src].valid ? e[i.src] : reg_expr(i.src);
  }
  switch (i.op) {
    case Op::Mov:
      return b;
    case Op::Add: {
      if (!b.valid) return AddrExpr{};
      AddrExpr r = sum(d, b);
      // Keep the register itself when its own expression does not fit.
      if (!r.valid && !i.k && e[i.src].valid) r = sum(d, reg_expr(i.src));
      return r;
    }
    case Op::Sub:
      if (!i.k || !d.valid || !fits_i32(d.disp - i.imm)) return AddrExpr{};
      {
        AddrExpr r = d;
        r.disp -= i.imm;
        return r;
      }
    case Op::Shl:
      // (base) << k for an index scale: only a lone register.
      if (i.k && i.imm >= 1 && i.imm <= 3 && d.valid && d.terms() == 1 && d.base != kNoIndex && d.disp == 0) {
        AddrExpr r;
        r.valid = true, r.index = d.base, r.scale = uint8_t(i.imm);
        return r;
      }
      return AddrExpr{};
    default:
      return AddrExpr{};
  }
}

// Whether the target's addresses scale an index by 2^scale for an access
// of `size` bytes.
bool scale_allowed(const AddressModes& modes, unsigned scale, unsigned size) {
  return scale <= modes.max_scale || (modes.size_scale && (1u << scale) == size);
}

// Puts `e` into the address of load/store `i` (base register `base`) if
// the target encodes it; returns whether it did.
bool fold_into(Inst& i, uint8_t& base, const AddrExpr& e, const AddressModes& modes) {
  if (!e.valid || i.index != kNoIndex) return false;
  const int64_t off = e.disp + i.off;
  if (!fits_i32(off)) return false;
  AddrExpr a = e;
  if (a.base == kNoIndex && a.index != kNoIndex && a.scale == 0) a.base = a.index, a.index = kNoIndex;
  if (a.base == kNoIndex) return false;  // a constant or a lone scaled index
  if (a.index == kNoIndex) {
    // base + off: worth it when the target encodes off in the instruction.
    if (off != i.off && (off < modes.min_off || off > modes.max_off)) return false;
  } else {
    if (!modes.index || !scale_allowed(modes, a.scale, i.size) || (off != 0 && !modes.index_with_off)) return false;
    if (off != 0 && (off < modes.min_off || off > modes.max_off)) return false;
    i.index = a.index, i.scale = a.scale;
  }
  base = a.base;
  i.off = int32_t(off);
  return true;
}

// cc with its operands swapped: a < b is b > a.
Cond mirrored(Cond cc) {
  switch (cc) {
    case Cond::Gt: return Cond::Lt;
    case Cond::Lt: return Cond::Gt;
    case Cond::Ge: return Cond::Le;
    case Cond::Le: return Cond::Ge;
    case Cond::SGt: return Cond::SLt;
    case Cond::SLt: return Cond::SGt;
    case Cond::SGe: return Cond::SLe;
    case Cond::SLe: return Cond::SGe;
    default: return cc;  // eq, ne, set and clear are symmetric
  }
}

// The immediate that stands for register value `v` as the second operand
// of `i`, if there is one.
std::optional<int64_t> as_operand(const Inst& i, uint64_t v) {
  const Form form = op_form(i.op);
  const bool wide = form == Form::Store ? i.size == 8 : i.width == 64;
  if (form == Form::Alu && (i.op == Op::UDiv || i.op == Op::SDiv || i.op == Op::UMod || i.op == Op::SMod) &&
      (wide ? v : uint32_t(v)) == 0)
    return std::nullopt;  // keep the division-by-zero rule in one place: the register form
  if (form == Form::Alu && (i.op == Op::Shl || i.op == Op::LShr || i.op == Op::AShr))
    return int64_t(v & (i.width - 1));  // a register count is taken mod width too
  if (!wide) return int64_t(int32_t(uint32_t(v)));  // 32-bit operations read the low half
  if (!fits_i32(int64_t(v))) return std::nullopt;
  return int64_t(v);
}

// The value an ALU operation leaves, when both operands are known. Not
// shared with runtime/exec/interpreter.cpp on purpose: the interpreter is the
// independent reference that the differential tests hold the passes to.
std::optional<uint64_t> evaluate(const Inst& i, uint64_t a, uint64_t b) {
  const bool wide = i.width == 64;
  const unsigned sh = unsigned(b & (i.width - 1));
  uint64_t r;
  switch (i.op) {
    case Op::Mov: r = b; break;
    case Op::Add: r = a + b; break;
    case Op::Sub: r = a - b; break;
    case Op::Mul: r = a * b; break;
    case Op::Or: r = a | b; break;
    case Op::And: r = a & b; break;
    case Op::Xor: r = a ^ b; break;
    case Op::Shl: r = a << sh; break;
    case Op::LShr: r = wide ? a >> sh : uint64_t(uint32_t(a) >> sh); break;
    case Op::AShr: r = wide ? uint64_t(int64_t(a) >> sh) : uint64_t(uint32_t(int32_t(uint32_t(a)) >> sh)); break;
    default: return std::nullopt;
  }
  return wide ? r : uint64_t(uint32_t(r));
}

// Drops code[k] for every dead[k] (nothing when dead is empty).
void erase_marked(std::vector<Inst>& code, const std::vector<bool>& dead) {
  if (dead.empty()) return;
  size_t w = 0;
  for (size_t r = 0; r < code.size(); ++r)
    if (!dead[r]) code[w++] = code[r];
  code.resize(w);
}

bool pure(const Inst& i) {
  switch (op_form(i.op)) {
    case Form::Alu: case Form::Unary: case Form::Ext: case Form::Imm64: case Form::Def:
      return true;
    default:
      return false;
  }
}

// combine_loads: what a register holds, byte by byte, when every one of
// its non-zero bytes is a byte of memory at [base + offset], read by
// loads of this straight-line stretch.
struct ByteGather {
  static constexpr int64_t kZero = INT64_MIN;
  uint8_t base = kNoIndex;  // kNoIndex: nothing known
  int64_t at[8];            // at[j]: the offset from base result byte j holds, or kZero
  uint32_t from[8];         // the loads (indices into the new code) that read those bytes
  uint8_t nfrom = 0;
  bool valid() const { return base != kNoIndex; }
  // The bytes an operation of `width` reads: a 32-bit one drops 4..7,
  // which must be zero (a loaded byte dropped leaves a load not covered).
  bool narrow_to(int width) const {
    if (width == 64) return true;
    for (int j = 4; j < 8; ++j)
      if (at[j] != kZero) return false;
    return true;
  }
  // Shifted by `bytes` (left when positive); false when a loaded byte falls off.
  bool shift(int bytes, int width) {
    int64_t next[8];
    const int top = width / 8;
    for (int j = 0; j < 8; ++j) next[j] = kZero;
    for (int j = 0; j < 8; ++j) {
      if (at[j] == kZero) continue;
      const int to = j + bytes;
      if (to < 0 || to >= top) return false;
      next[to] = at[j];
    }
    std::copy(next, next + 8, at);
    return true;
  }
  // The one load of `size` bytes at base + off (little-endian order) or
  // its byte swap that this is, when it is one.
  std::optional<std::pair<int64_t, bool>> as_load(int size) const {
    for (int j = size; j < 8; ++j)
      if (at[j] != kZero) return std::nullopt;
    bool le = true, be = true;
    for (int j = 0; j < size; ++j) {
      if (at[j] == kZero) return std::nullopt;
      le = le && at[j] == at[0] + j;
      be = be && at[j] == at[size - 1] + (size - 1 - j);
    }
    if (le) return std::pair{at[0], false};
    if (be) return std::pair{at[size - 1], true};
    return std::nullopt;
  }
};

// remove_redundant_copies: which registers hold the same value, as
// classes named by a member (root[r] == root[s]: r == s), and which hold
// a known constant, at one point.
struct Copies {
  bool reached = false;  // false: no path gets here (yet), the meet's identity
  uint8_t root[kNumRegs];
  RegSet shared = 0;         // the registers in a class of two or more
  RegSet known = 0;          // the registers whose value[] holds
  uint64_t value[kNumRegs];
  static Copies entry() {
    Copies c;
    c.reached = true;
    for (uint8_t r = 0; r < kNumRegs; ++r) c.root[r] = r;
    return c;
  }
  bool holds(uint8_t r, uint64_t v) const { return (known & reg_bit(r)) && value[r] == v; }
  void set(uint8_t r, uint64_t v) {
    define(r);
    known |= reg_bit(r), value[r] = v;
  }
  bool same(uint8_t a, uint8_t b) const { return root[a] == root[b]; }
  // r gets a value of its own: the rest of its class keeps theirs.
  void define(uint8_t r) {
    known &= RegSet(~reg_bit(r));
    if (!(shared & reg_bit(r))) {
      root[r] = r;  // alone already (most registers, most of the time)
      return;
    }
    uint8_t next = kNumRegs;
    RegSet rest = 0;
    for (unsigned m = shared & RegSet(~reg_bit(r)); m; m &= m - 1) {
      const uint8_t s = uint8_t(std::countr_zero(m));
      if (root[s] != root[r]) continue;
      if (next == kNumRegs) next = s;
      root[s] = next, rest |= reg_bit(s);
    }
    root[r] = r;
    shared &= RegSet(~reg_bit(r));
    if (std::has_single_bit(unsigned(rest))) shared &= RegSet(~rest);  // one left: alone now
  }
  void copy(uint8_t d, uint8_t s) {
    if (same(d, s)) return;
    define(d);
    root[d] = root[s];
    shared |= reg_bit(d) | reg_bit(s);
    if (known & reg_bit(s)) known |= reg_bit(d), value[d] = value[s];
  }
  // What holds on both paths. Returns whether *this changed.
  bool meet(const Copies& o) {
    if (!o.reached) return false;
    if (!reached) return *this = o, true;
    uint8_t next[kNumRegs];
    RegSet both = 0;
    for (uint8_t r = 0; r < kNumRegs; ++r) next[r] = r;
    for (unsigned m = shared & o.shared; m; m &= m - 1) {
      const uint8_t r = uint8_t(std::countr_zero(m));
      for (unsigned n = shared & o.shared & (reg_bit(r) - 1u); n; n &= n - 1) {
        const uint8_t s = uint8_t(std::countr_zero(n));
        if (same(r, s) && o.same(r, s)) {
          next[r] = next[s], both |= reg_bit(r) | reg_bit(s);
          break;
        }
      }
    }
    RegSet agree = known & o.known;
    for (unsigned m = agree; m; m &= m - 1) {
      const int r = std::countr_zero(m);
      if (value[r] != o.value[r]) agree &= RegSet(~reg_bit(uint8_t(r)));
    }
    const bool changed = !std::equal(next, next + kNumRegs, root) || agree != known;
    std::copy(next, next + kNumRegs, root);
    shared = both;
    known = agree;
    return changed;
  }
};

// The registers `i` may write, over-approximated (a call clobbers the
// argument registers, which liveness does not count as written).
RegSet clobbers(const Inst& i) {
  if (op_form(i.op) == Form::Call) return RegSet(0x3f | reg_bit(kAX) | reg_bit(kAX2));
  return effects(i).defs;
}

// A loop of the linear code: the label at `head`, the last jump back to it
// at `end`, and nothing from outside [head, end] jumps in; it is entered by
// falling into the label. By head, outer loops first.
struct Loop {
  size_t head, end;
  bool contains(size_t k) const { return k > head && k < end; }
};

std::vector<Loop> simple_loops(const Function& fn) {
  const std::vector<Inst>& code = fn.code;
  constexpr size_t kNone = SIZE_MAX;
  std::vector<size_t> at(fn.num_labels, kNone);
  for (size_t k = 0; k < code.size(); ++k)
    if (code[k].op == Op::Label) at[code[k].target] = k;
  std::vector<size_t> last_back(fn.num_labels, kNone);
  std::vector<std::pair<size_t, size_t>> edges;  // every jump: from, to
  for (size_t k = 0; k < code.size(); ++k) {
    if (!jumps(code[k])) continue;
    edges.push_back({k, at[code[k].target]});
    if (at[code[k].target] < k) last_back[code[k].target] = k;
  }
  std::vector<Loop> loops;
  for (uint32_t l = 0; l < fn.num_labels; ++l) {
    const size_t h = at[l], e = last_back[l];
    if (e == kNone || (h > 0 && !falls_through(code[h - 1]))) continue;  // h == 0: entered at the start
    const bool entered = std::any_of(edges.begin(), edges.end(), [&](const auto& j) {
      return (j.first < h || j.first > e) && j.second >= h && j.second <= e;
    });
    if (!entered) loops.push_back({h, e});
  }
  std::sort(loops.begin(), loops.end(), [](const Loop& a, const Loop& b) { return a.head < b.head; });
  return loops;
}

// The one register a pure instruction writes, or kNoIndex.
uint8_t pure_def(const Inst& i) {
  if (!pure(i)) return kNoIndex;
  const RegSet defs = effects(i).defs;
  return std::has_single_bit(unsigned(defs)) && i.dst < kAX ? uint8_t(std::countr_zero(defs)) : kNoIndex;
}

// What `i` (not a load) leaves in i.dst as a gather, given the gathers in
// the registers before it, into r; false when it is not one.
bool gathered(const Inst& i, const ByteGather* g, ByteGather& r) {
  if (op_form(i.op) != Form::Alu) return false;
  const int w = i.width;
  if (i.op == Op::Mov && !i.k) {
    r = g[i.src];
    return r.valid() && r.narrow_to(w);
  }
  r = g[i.dst];
  if (!r.valid() || !r.narrow_to(w)) return false;
  const bool by_bytes = i.k && i.imm > 0 && i.imm < w && i.imm % 8 == 0;
  switch (i.op) {
    case Op::Shl:
      return by_bytes && r.shift(int(i.imm / 8), w);
    case Op::LShr:
      return by_bytes && r.shift(-int(i.imm / 8), w);
    case Op::And:
      // A mask that keeps every loaded byte whole changes nothing.
      if (!i.k) return false;
      for (int j = 0; j < w / 8; ++j)
        if (r.at[j] != ByteGather::kZero && uint8_t(uint64_t(i.imm) >> (8 * j)) != 0xff) return false;
      return true;
    case Op::Or: {
      if (i.k || i.src == i.dst) return false;
      const ByteGather& b = g[i.src];
      if (!b.valid() || b.base != r.base || !b.narrow_to(w) || r.nfrom + b.nfrom > 8) return false;
      for (int j = 0; j < 8; ++j) {
        if (b.at[j] == ByteGather::kZero) continue;
        if (r.at[j] != ByteGather::kZero) return false;
        r.at[j] = b.at[j];
      }
      std::copy(b.from, b.from + b.nfrom, r.from + r.nfrom);
      r.nfrom = uint8_t(r.nfrom + b.nfrom);
      return true;
    }
    default:
      return false;
  }
}

// The forward dataflow remove_redundant_copies and remove_redundant_masks
// share: sweeps of the linear code from the entry, each label's state the
// meet of every way into it (`meet(at_label, in, label, back)`, true when it
// changed; `back` for a jump from below the label, a loop's back edge), a
// branch's two edges as `edge(state, branch, taken)` gives them, until no
// label changes. That last sweep saw the fixpoint: the instructions
// `step(state, inst)` (which also moves the state past it) said to drop in
// it go.
template <class State, class Meet, class Edge, class Step>
void forward_rewrite(Function& fn, Meet meet, Edge edge, Step step) {
  std::vector<Inst>& code = fn.code;
  std::vector<State> at_label(fn.num_labels);
  std::vector<size_t> label_at(fn.num_labels, 0);
  for (size_t r = 0; r < code.size(); ++r)
    if (code[r].op == Op::Label) label_at[code[r].target] = r;
  std::vector<bool> drop(code.size());
  auto sweep = [&] {
    bool changed = false;
    State cur = State::entry();
    for (size_t r = 0; r < code.size(); ++r) {
      const Inst& i = code[r];
      const Form form = op_form(i.op);
      bool keep = true;
      if (form == Form::Label) {
        changed |= meet(at_label[i.target], cur, i.target, false);
        cur = at_label[i.target];
      } else if (form == Form::Jump) {
        changed |= meet(at_label[i.target], cur, i.target, label_at[i.target] < r);
        cur = State{};
      } else if (form == Form::Branch) {
        if (cur.reached) {
          changed |= meet(at_label[i.target], edge(cur, i, true), i.target, label_at[i.target] < r);
          cur = edge(cur, i, false);
        }
      } else if (form == Form::Term) {
        cur = State{};
      } else if (cur.reached) {
        keep = step(cur, i);
      }
      drop[r] = !keep;
    }
    return changed;
  };
  while (sweep()) {
  }
  erase_marked(code, drop);
}

}  // namespace

void propagate_constants(Function& fn) {
  RegSet known = 0;  // the registers whose value[] holds
  uint64_t value[kNumRegs] = {};
  auto forget = [&](RegSet regs) { known &= RegSet(~regs); };
  // Only BPF registers: the hidden scratch ones carry blinded constants.
  auto constant = [&](uint8_t r) { return r < kAX && (known & reg_bit(r)); };
  for (Inst& i : fn.code) {
    const Form form = op_form(i.op);
    if (form == Form::Label || form == Form::Jump || form == Form::Term) {
      forget(RegSet(~0u));
      continue;
    }
    const bool takes_b = form == Form::Alu || form == Form::Branch || form == Form::Store;
    if (form == Form::Branch && !i.k && constant(i.dst) && !constant(i.src)) {
      // c > x is x < c, whose constant can be an immediate.
      if (as_operand(i, value[i.dst])) std::swap(i.dst, i.src), i.cc = mirrored(i.cc);
    }
    if (takes_b && !i.k && constant(i.src)) {
      if (const auto imm = as_operand(i, value[i.src])) i.k = true, i.imm = *imm, i.src = 0;
    }
    if (form == Form::Call) {
      forget(reg_bit(0) | reg_bit(1) | reg_bit(2) | reg_bit(3) | reg_bit(4) | reg_bit(5));
      continue;
    }
    // What it leaves: a constant, folded when the operands are known.
    std::optional<uint64_t> result;
    if (form == Form::Imm64 && i.op == Op::LoadImm) {
      result = uint64_t(i.imm);
    } else if (form == Form::Alu && i.k && (i.op == Op::Mov || constant(i.dst))) {
      result = evaluate(i, value[i.dst], uint64_t(i.imm));
      if (result && i.op != Op::Mov) {
        // dst = c: as a mov when the constant fits one, else as ldimm.
        const Inst was = i;
        if (fits_i32(int64_t(*result)) || i.width == 32) {
          i = alu_imm(Op::Mov, was.width, was.dst, int64_t(*result));
        } else {
          i = Inst{};
          i.op = Op::LoadImm, i.dst = was.dst, i.imm = int64_t(*result);
        }
        i.origin = was.origin;
      }
    }
    forget(effects(i).defs);
    if (result && i.dst < kAX) known |= reg_bit(i.dst), value[i.dst] = *result;
  }
}

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
    if (i.op == Op::Br && r + 1 < code.size() && code[r + 1].op == Op::Jmp &&
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

void combine_loads(Function& fn, const AddressModes& modes) {
  if (!modes.unaligned_loads) return;
  std::vector<Inst> out;
  out.reserve(fn.code.size());
  std::vector<bool> covered;  // loads a combined load made redundant (in out)
  ByteGather g[kNumRegs] = {};
  RegSet have = 0;  // the registers whose g[] is valid
  // The gathers in `regs` and those based on them are no longer true.
  auto forget = [&](RegSet regs) {
    for (unsigned m = have; m; m &= m - 1) {
      const uint8_t r = uint8_t(std::countr_zero(m));
      if (!((reg_bit(r) | reg_bit(g[r].base)) & regs)) continue;
      g[r].base = kNoIndex;
      have &= RegSet(~reg_bit(r));
    }
  };
  for (const Inst& i : fn.code) {
    const Form form = op_form(i.op);
    out.push_back(i);
    if (form != Form::Load && !have) continue;  // nothing to extend or forget
    if (form == Form::Label || form == Form::Branch || form == Form::Jump || form == Form::Call ||
        form == Form::Term || form == Form::Store || form == Form::Atomic) {
      forget(RegSet(~0u));
      continue;
    }
    const RegSet defs = effects(i).defs;
    if (!defs) continue;
    ByteGather next;
    bool gather = false;
    if (form == Form::Load) {
      // A load from another base ends the gathers: a combined load sits
      // where its last byte joined, so it must not pass a load that could
      // fault first.
      for (unsigned m = have; m; m &= m - 1)
        if (g[std::countr_zero(m)].base != i.src) {
          forget(RegSet(~0u));
          break;
        }
      if (!i.sext && i.index == kNoIndex && addressable(i.src) && i.src != i.dst) {
        next.base = i.src;
        for (int j = 0; j < 8; ++j) next.at[j] = j < i.size ? int64_t(i.off) + j : ByteGather::kZero;
        next.from[0] = uint32_t(out.size() - 1), next.nfrom = 1;
        gather = true;
      }
    } else if (defs == reg_bit(i.dst)) {
      gather = gathered(i, g, next);
    }
    forget(defs);
    if (!gather || next.base == i.dst) continue;
    if (i.op == Op::Or) {
      for (int size : {8, 4, 2}) {
        const auto load_of = next.as_load(size);
        if (!load_of || !fits_i32(load_of->first)) continue;
        // The bytes that went into i.dst, read by one load (and swapped
        // when they were put together most significant first).
        uint32_t origin = out[next.from[0]].origin;
        if (covered.size() < out.size() + 1) covered.resize(out.size() + 1, false);
        for (int f = 0; f < next.nfrom; ++f) covered[next.from[f]] = true;
        Inst combined = load(size, false, i.dst, next.base, int32_t(load_of->first));
        combined.origin = origin;
        out.back() = combined;
        next.from[0] = uint32_t(out.size() - 1), next.nfrom = 1;
        if (load_of->second) {
          Inst swap = alu(Op::Bswap, 64, i.dst, i.dst);
          swap.ext = uint8_t(8 * size);
          swap.origin = i.origin;
          out.push_back(swap);
        }
        break;
      }
    }
    g[i.dst] = next;
    have |= reg_bit(i.dst);
  }
  if (covered.empty()) return;
  fn.code = std::move(out);
  covered.resize(fn.code.size(), false);
  // The arithmetic that put the bytes together, and the byte loads
  // themselves (the combined load reads every byte they read), where
  // nothing else reads them.
  std::vector<RegSet> label_in = label_live_in(fn);
  std::vector<bool> dead;
  live_sweep(fn, label_in, [&](size_t k, RegSet o, const Effects& fx) {
    if (!(pure(fn.code[k]) || covered[k]) || !fx.defs || (fx.defs & o)) return live_in(o, fx);
    if (dead.empty()) dead.assign(fn.code.size(), false);
    dead[k] = true;
    return o;
  });
  erase_marked(fn.code, dead);
}

void remove_redundant_copies(Function& fn) {
  // Drops each mov.64 d, s where d already equals s, and mov d, c where d holds c.
  forward_rewrite<Copies>(
      fn, [](Copies& at, const Copies& in, uint32_t, bool) { return at.meet(in); },
      [](const Copies& cur, const Inst&, bool) { return cur; },
      [](Copies& cur, const Inst& i) {
        if (i.op == Op::Mov && !i.k && i.width == 64) {
          const bool keep =
              !cur.same(i.dst, i.src) && !((cur.known & reg_bit(i.src)) && cur.holds(i.dst, cur.value[i.src]));
          cur.copy(i.dst, i.src);
          return keep;
        }
        if ((i.op == Op::Mov && i.k) || i.op == Op::LoadImm) {
          const uint64_t v = i.op == Op::LoadImm || i.width == 64 ? uint64_t(i.imm) : uint64_t(uint32_t(i.imm));
          const bool keep = !cur.holds(i.dst, v);
          cur.set(i.dst, v);
          return keep;
        }
        for (unsigned m = clobbers(i); m; m &= m - 1) cur.define(uint8_t(std::countr_zero(m)));
        return true;
      });
}

namespace {

// remove_redundant_masks: an unsigned interval [lo, hi] per register at one
// point, met at labels as their union.
struct Ranges {
  static constexpr uint64_t kMax = UINT64_MAX, kMax32 = UINT32_MAX;
  bool reached = false;
  uint64_t lo[kNumRegs], hi[kNumRegs];
  static Ranges entry() {
    Ranges r;
    r.reached = true;
    for (uint8_t x = 0; x < kNumRegs; ++x) r.lo[x] = 0, r.hi[x] = kMax;
    return r;
  }
  void set(uint8_t x, uint64_t l, uint64_t h) { lo[x] = l, hi[x] = h; }
  void unknown(uint8_t x, int width) { set(x, 0, width == 32 ? kMax32 : kMax); }
  // `i`, an and with an immediate, leaves its register as it was: the
  // register's value is what the operation's width sees (below 2^32 for a
  // 32-bit and), and the mask has every bit below that value's top.
  bool and_keeps(const Inst& i) const {
    if (i.width == 32 && hi[i.dst] > kMax32) return false;
    const int bits = std::bit_width(hi[i.dst]);
    const uint64_t low = bits == 64 ? kMax : (uint64_t(1) << bits) - 1;
    return (imm_at_width(i) & low) == low;
  }
  // Whether *this grew to take in `o`. On a loop's back edge (`widen`) a
  // bound that grows jumps to the next of `stops` (widening with
  // thresholds: a counted loop's bound, so that its counter converges
  // there in a sweep or two instead of one value per sweep).
  bool meet(const Ranges& o, bool widen, const std::vector<uint64_t>& stops) {
    if (!o.reached) return false;
    if (!reached) return *this = o, true;
    bool changed = false;
    for (uint8_t x = 0; x < kNumRegs; ++x) {
      if (o.lo[x] < lo[x]) {
        lo[x] = widen ? *std::prev(std::upper_bound(stops.begin(), stops.end(), o.lo[x])) : o.lo[x];
        changed = true;
      }
      if (o.hi[x] > hi[x]) {
        hi[x] = widen ? *std::lower_bound(stops.begin(), stops.end(), o.hi[x]) : o.hi[x];
        changed = true;
      }
    }
    return changed;
  }
};

// [lo, hi] + d without wrapping, or nothing.
std::optional<std::pair<uint64_t, uint64_t>> shifted(uint64_t lo, uint64_t hi, int64_t d, uint64_t max) {
  if (d >= 0) {
    if (hi > max - uint64_t(d)) return std::nullopt;
    return std::pair{lo + uint64_t(d), hi + uint64_t(d)};
  }
  const uint64_t m = uint64_t(0) - uint64_t(d);
  if (lo < m) return std::nullopt;
  return std::pair{lo - m, hi - m};
}

// What `i` leaves in the registers it writes.
void range_transfer(Ranges& r, const Inst& i) {
  const uint64_t max = i.width == 32 ? Ranges::kMax32 : Ranges::kMax;
  const bool fits = i.width == 64 || r.hi[i.dst] <= Ranges::kMax32;  // the 32-bit view is the value
  const uint64_t b_lo = i.k ? imm_at_width(i) : r.lo[i.src], b_hi = i.k ? imm_at_width(i) : r.hi[i.src];
  const bool b_fits = i.k || i.width == 64 || r.hi[i.src] <= Ranges::kMax32;
  switch (i.op) {
    case Op::Mov:
      if (b_fits) r.set(i.dst, b_lo, b_hi);
      else r.unknown(i.dst, 32);
      return;
    case Op::LoadImm: r.set(i.dst, uint64_t(i.imm), uint64_t(i.imm)); return;
    case Op::Add: case Op::Sub:
      if (fits && i.k) {
        const int64_t d = i.width == 32 ? int64_t(int32_t(i.imm)) : i.imm;
        if (d != INT64_MIN) {
          if (auto v = shifted(r.lo[i.dst], r.hi[i.dst], i.op == Op::Add ? d : -d, max))
            return r.set(i.dst, v->first, v->second);
        }
      } else if (fits && b_fits && i.op == Op::Add && r.hi[i.dst] <= max - b_hi) {
        return r.set(i.dst, r.lo[i.dst] + b_lo, r.hi[i.dst] + b_hi);
      }
      return r.unknown(i.dst, i.width);
    case Op::And:
      if (i.k && r.and_keeps(i)) return;  // the value as it was
      return r.set(i.dst, 0, std::min(fits ? r.hi[i.dst] : max, b_fits ? b_hi : max));
    case Op::LShr:
      if (i.k && fits) {
        const int by = int(i.imm & (i.width - 1));
        return r.set(i.dst, r.lo[i.dst] >> by, r.hi[i.dst] >> by);
      }
      return r.set(i.dst, 0, fits ? r.hi[i.dst] : max);
    case Op::UDiv:
      if (i.k && fits && imm_at_width(i) != 0) return r.set(i.dst, r.lo[i.dst] / b_lo, r.hi[i.dst] / b_lo);
      return r.set(i.dst, 0, fits ? r.hi[i.dst] : max);
    case Op::UMod:
      if (i.k && imm_at_width(i) != 0) return r.set(i.dst, 0, std::min(fits ? r.hi[i.dst] : max, imm_at_width(i) - 1));
      return r.unknown(i.dst, i.width);
    case Op::Load:
      return r.set(i.dst, 0, i.sext || i.size == 8 ? Ranges::kMax : (uint64_t(1) << (8 * i.size)) - 1);
    default:
      for (unsigned m = clobbers(i); m; m &= m - 1) r.unknown(uint8_t(std::countr_zero(m)), 64);
      if (op_form(i.op) == Form::Alu || op_form(i.op) == Form::Unary) r.unknown(i.dst, i.width);
      return;
  }
}

// The ranges on the edge where `dst cc b` holds; unreached when it cannot.
// Only where the compared view is the whole value: a 32-bit compare of
// registers below 2^32, a signed one of registers that are not negative.
Ranges refined(Ranges r, const Inst& i, Cond cc) {
  const uint64_t view = i.width == 32 ? Ranges::kMax32 : Ranges::kMax;
  const uint64_t b = imm_at_width(i);
  uint64_t blo = i.k ? b : r.lo[i.src], bhi = i.k ? b : r.hi[i.src];
  uint64_t alo = r.lo[i.dst], ahi = r.hi[i.dst];
  if (!i.k && i.src == i.dst) return r;
  if (ahi > view || bhi > view) return r;
  const uint64_t sign = (view >> 1) + 1;  // values below it read the same signed
  switch (cc) {
    case Cond::SGt: case Cond::SGe: case Cond::SLt: case Cond::SLe:
      if (ahi >= sign || bhi >= sign) return r;
      cc = cc == Cond::SGt ? Cond::Gt : cc == Cond::SGe ? Cond::Ge : cc == Cond::SLt ? Cond::Lt : Cond::Le;
      break;
    case Cond::Set: case Cond::Clear: return r;
    default: break;
  }
  uint64_t nalo = alo, nahi = ahi, nblo = blo, nbhi = bhi;
  switch (cc) {
    case Cond::Eq:
      nalo = nblo = std::max(alo, blo), nahi = nbhi = std::min(ahi, bhi);
      break;
    case Cond::Ne:
      if (blo == bhi) {
        if (alo == blo) ++nalo;
        if (ahi == blo) --nahi;  // lo > hi when a held only b: unreached below
      }
      if (alo == ahi) {
        if (blo == alo) ++nblo;
        if (bhi == alo) --nbhi;
      }
      break;
    case Cond::Gt:  // a > b
      if (blo == Ranges::kMax || ahi == 0) return Ranges{};
      nalo = std::max(alo, blo + 1), nbhi = std::min(bhi, ahi - 1);
      break;
    case Cond::Ge:
      nalo = std::max(alo, blo), nbhi = std::min(bhi, ahi);
      break;
    case Cond::Lt:  // a < b
      if (bhi == 0 || alo == Ranges::kMax) return Ranges{};
      nahi = std::min(ahi, bhi - 1), nblo = std::max(blo, alo + 1);
      break;
    case Cond::Le:
      nahi = std::min(ahi, bhi), nblo = std::max(blo, alo);
      break;
    default:
      return r;
  }
  if (nalo > nahi || nblo > nbhi) return Ranges{};
  r.set(i.dst, nalo, nahi);
  if (!i.k) r.set(i.src, nblo, nbhi);
  return r;
}

}  // namespace

void remove_redundant_masks(Function& fn) {
  // Most functions have nothing it could drop: then it costs one scan.
  if (std::none_of(fn.code.begin(), fn.code.end(),
                   [](const Inst& i) { return (i.op == Op::And && i.k) || is_self_zext(i); }))
    return;
  // Widening stops: every compared or masked constant, one either side of it.
  std::vector<uint64_t> stops{0, Ranges::kMax32, Ranges::kMax};
  for (const Inst& i : fn.code)
    if (i.k && (i.op == Op::Br || i.op == Op::And))
      for (int64_t d : {-1, 0, 1}) stops.push_back(imm_at_width(i) + uint64_t(d));
  std::sort(stops.begin(), stops.end());
  stops.erase(std::unique(stops.begin(), stops.end()), stops.end());
  forward_rewrite<Ranges>(
      fn,
      [&](Ranges& at, const Ranges& in, uint32_t, bool back) { return at.meet(in, back, stops); },
      [](const Ranges& cur, const Inst& br, bool taken) { return refined(cur, br, taken ? br.cc : inverse(br.cc)); },
      [](Ranges& cur, const Inst& i) {
        bool keep = true;
        if (i.op == Op::And && i.k)
          keep = !cur.and_keeps(i);
        else if (is_self_zext(i))
          keep = cur.hi[i.dst] > Ranges::kMax32;
        range_transfer(cur, i);
        return keep;
      });
}

void hoist_loop_invariants(Function& fn) {
  // Innermost (latest head) first: a hoist moves code only inside
  // [head - hoisted, end], so the loops not yet seen keep their places.
  const std::vector<Loop> loops = simple_loops(fn);
  if (loops.empty()) return;
  // One analysis serves every loop: a hoist makes its x live only inside
  // its own loop, and what the loops around it find live at their heads
  // can only have shrunk (over-approximated, never unsafe).
  const std::vector<RegSet> label_in = label_live_in(fn);
  for (size_t n = loops.size(); n-- > 0;) {
    const Loop loop = loops[n];
    std::vector<Inst>& code = fn.code;
    RegSet written = 0, twice = 0;
    for (size_t k = loop.head; k <= loop.end; ++k) {
      const RegSet c = clobbers(code[k]);
      twice |= written & c, written |= c;
    }
    const RegSet live_at_head = label_in[code[loop.head].target];
    // x = f(y) where y never changes in the loop and nothing else writes x
    // gives the same x every time; with x not live into the loop, no read
    // (in the loop or after it) can see the value x had before. Hoisted in
    // order, so one that reads another's x stays (its y changes).
    std::vector<Inst> hoisted;
    std::vector<bool> moved(code.size(), false);
    for (size_t k = loop.head + 1; k < loop.end; ++k) {
      const uint8_t x = pure_def(code[k]);
      if (x == kNoIndex || (twice & reg_bit(x)) || (live_at_head & reg_bit(x))) continue;
      if (effects(code[k]).uses & written & RegSet(~reg_bit(kFP))) continue;
      hoisted.push_back(code[k]);
      moved[k] = true;
    }
    if (hoisted.empty()) continue;
    std::vector<Inst> next;
    next.reserve(code.size());
    for (size_t k = 0; k < code.size(); ++k) {
      if (k == loop.head) next.insert(next.end(), hoisted.begin(), hoisted.end());
      if (!moved[k]) next.push_back(code[k]);
    }
    code = std::move(next);
  }
}

void sink_past_branches(Function& fn) {
  std::vector<Inst>& code = fn.code;
  if (std::none_of(code.begin(), code.end(), [](const Inst& i) { return i.op == Op::Br; })) return;
  std::vector<RegSet> label_in = label_live_in(fn);
  std::vector<RegSet> live_before(code.size(), 0);  // live-in of each instruction
  live_sweep(fn, label_in, [&](size_t k, RegSet after, const Effects& fx) { return live_before[k] = live_in(after, fx); });
  const std::vector<Loop> loops = simple_loops(fn);
  std::vector<size_t> at(fn.num_labels, 0);
  for (size_t k = 0; k < code.size(); ++k)
    if (code[k].op == Op::Label) at[code[k].target] = k;
  // A forward branch out of a loop it is in: taken once per loop.
  auto leaves_loop = [&](size_t k) {
    return std::any_of(loops.begin(), loops.end(),
                       [&](const Loop& l) { return l.contains(k) && at[code[k].target] > l.end; });
  };
  std::vector<Inst> next, split;
  next.reserve(code.size());
  for (size_t k = 0; k < code.size(); ++k) {
    if (code[k].op != Op::Br || next.empty()) {
      next.push_back(code[k]);
      continue;
    }
    Inst br = code[k];
    const RegSet read = effects(br).uses;
    const RegSet at_target = label_in[br.target];
    const RegSet fallthrough = k + 1 < code.size() ? live_before[k + 1] : 0;
    // The pure instructions right before the branch whose result only
    // one side reads: into the fallthrough when the target does not read
    // it, onto the target's edge (a block of its own at the end) when the
    // fallthrough does not and the branch leaves a loop.
    auto sinkable = [&](const Inst& i, bool onto_edge) {
      const uint8_t x = pure_def(i);
      if (x == kNoIndex || (read & reg_bit(x))) return false;
      return onto_edge ? !(fallthrough & reg_bit(x)) : !(at_target & reg_bit(x));
    };
    const bool onto_edge = !sinkable(next.back(), false);
    if (onto_edge && !(sinkable(next.back(), true) && leaves_loop(k))) {
      next.push_back(br);
      continue;
    }
    size_t first = next.size();
    while (first > 0 && sinkable(next[first - 1], onto_edge)) --first;
    std::vector<Inst> run(next.begin() + ptrdiff_t(first), next.end());
    next.resize(first);
    if (onto_edge) {
      const uint32_t edge = fn.new_label();
      split.push_back(label(edge));
      split.insert(split.end(), run.begin(), run.end());
      Inst back = jump(br.target);
      back.origin = br.origin;
      split.push_back(back);
      br.target = edge;
      next.push_back(br);
    } else {
      next.push_back(br);
      next.insert(next.end(), run.begin(), run.end());
    }
  }
  next.insert(next.end(), split.begin(), split.end());
  code = std::move(next);
}

namespace {
// br reads x, which the copy right before it made of y: a 64-bit copy for
// any compare; a 32-bit one (x = y's low half, zero-extended) for a 32-bit
// compare, or a 64-bit unsigned or equality compare or bit test with a
// constant below 2^32, which then reads the same on y's low half.
bool compares_copy(const Inst& br, const Inst& copy) {
  if (br.op != Op::Br || copy.op != Op::Mov || copy.k || copy.dst != br.dst || copy.src == copy.dst) return false;
  if (!br.k && br.src == br.dst) return false;
  if (copy.width == 64 || br.width == 32) return true;
  const bool unsigned_cc = br.cc != Cond::SGt && br.cc != Cond::SGe && br.cc != Cond::SLt && br.cc != Cond::SLe;
  return br.k && unsigned_cc && br.imm >= 0 && br.imm <= int64_t(UINT32_MAX);
}
}  // namespace

void fold_bit_test(Function& fn) {
  std::vector<Inst>& code = fn.code;
  std::optional<std::vector<RegSet>> out;  // liveness once a candidate shows up
  std::vector<bool> dead;
  for (size_t k = 1; k < code.size(); ++k) {
    Inst& br = code[k];
    if (br.op == Op::Br) {
      // x = y; (a few instructions that change neither) br x, c: compare
      // y. The copy goes in remove_dead_code when nothing else reads x
      // (clang's `w3 = w2; ...; if w3 != 0` loop counters).
      const uint8_t x = br.dst;
      RegSet between_defs = 0;
      size_t j = k;
      while (j-- > 0 && k - j <= 4) {
        const Inst& c = code[j];
        const Form f = op_form(c.op);
        if (f == Form::Label || f == Form::Jump || f == Form::Term || f == Form::Call || (!dead.empty() && dead[j])) break;
        if (clobbers(c) & reg_bit(x)) {
          if (compares_copy(br, c) && !(between_defs & reg_bit(c.src))) {
            if (c.width == 32) br.width = 32;
            br.dst = c.src;
          }
          break;
        }
        between_defs |= clobbers(c);
      }
      if (br.dst != x) continue;
    }
    const Inst& mask = code[k - 1];
    if (br.op != Op::Br || !br.k || br.imm != 0 || (br.cc != Cond::Eq && br.cc != Cond::Ne)) continue;
    const uint8_t x = br.dst;
    if (mask.op != Op::And || mask.dst != x || (!mask.k && mask.src == x) || (!dead.empty() && dead[k - 1])) continue;
    if (!out) out = live_out(fn);
    if ((*out)[k] & reg_bit(x)) continue;
    // Both halves of a 32-bit step test the low halves: (x & b) has no
    // bit set in 32 bits exactly when a 32-bit and leaves zero.
    int width = std::min(br.width, mask.width);
    uint8_t tested = x;
    // x = y; x &= b: test y itself, and the copy goes too when nothing
    // else reads it (x is dead after the branch and b is not x).
    const Inst* copy = k >= 2 && (dead.empty() || !dead[k - 2]) ? &code[k - 2] : nullptr;
    const bool from_copy = copy && copy->op == Op::Mov && !copy->k && copy->dst == x && copy->src != x &&
                           (mask.k || mask.src != x);
    if (from_copy) tested = copy->src, width = std::min<int>(width, copy->width);
    Inst test = mask.k ? branch_imm(br.cc == Cond::Eq ? Cond::Clear : Cond::Set, width, tested, mask.imm, br.target)
                       : branch(br.cc == Cond::Eq ? Cond::Clear : Cond::Set, width, tested, mask.src, br.target);
    test.origin = br.origin;
    br = test;
    if (dead.empty()) dead.assign(code.size(), false);
    dead[k - 1] = true;
    if (from_copy) dead[k - 2] = true;
  }
  erase_marked(code, dead);
}

void fold_addresses(Function& fn, const AddressModes& modes) {
  AddrExpr e[kNumRegs];
  RegSet have = 0;  // the registers whose e[] is valid
  auto drop = [&](RegSet regs) {
    for (unsigned m = regs & have; m; m &= m - 1) e[std::countr_zero(m)].valid = false;
    have &= RegSet(~regs);
  };
  for (Inst& i : fn.code) {
    const Form form = op_form(i.op);
    if (form == Form::Load && (have & reg_bit(i.src))) fold_into(i, i.src, e[i.src], modes);
    if (form == Form::Store && (have & reg_bit(i.dst))) fold_into(i, i.dst, e[i.dst], modes);
    if (form == Form::Label || form == Form::Call || form == Form::Jump || form == Form::Term) {
      drop(have);
      continue;
    }
    const RegSet defs = effects(i).defs;
    if (!defs) continue;
    // mov.64 x, x and add.64 x, 0 change nothing.
    if ((i.op == Op::Mov && !i.k && i.src == i.dst && i.width == 64) ||
        ((i.op == Op::Add || i.op == Op::Sub) && i.k && i.imm == 0 && i.width == 64))
      continue;
    const AddrExpr next = defs == reg_bit(i.dst) ? defined_expr(i, e) : AddrExpr{};
    // The new values invalidate what was said in terms of the old ones.
    RegSet stale = defs;
    for (unsigned m = have; m; m &= m - 1) {
      const int r = std::countr_zero(m);
      if ((reg_bit(e[r].base) | reg_bit(e[r].index)) & defs) stale |= reg_bit(uint8_t(r));
    }
    drop(stale);
    if (next.valid && !next.refers_to(i.dst) && addressable(i.dst)) e[i.dst] = next, have |= reg_bit(i.dst);
  }
}

void remove_dead_code(Function& fn) {
  // A last sweep over the fixed point: a backward jump reads the analysis'
  // live-in, which predates the removals and so over-approximates (never
  // unsafe); a forward one reads what this sweep found after them.
  std::vector<RegSet> label_in = label_live_in(fn);
  std::vector<Inst>& code = fn.code;
  std::vector<bool> dead;
  live_sweep(fn, label_in, [&](size_t k, RegSet out, const Effects& fx) {
    if (!pure(code[k]) || !fx.defs || (fx.defs & out)) return live_in(out, fx);
    if (dead.empty()) dead.assign(code.size(), false);
    dead[k] = true;
    return out;
  });
  erase_marked(code, dead);
}

void fold_index_shift(Function& fn, const AddressModes& modes) {
  // Liveness only once a candidate shows up (most functions have none);
  // removals only make less live, so one analysis serves the whole pass.
  std::optional<std::vector<RegSet>> out;
  std::vector<Inst>& code = fn.code;
  std::vector<bool> dead;
  for (size_t k = 0; k < code.size(); ++k) {
    Inst& access = code[k];
    const Form form = op_form(access.op);
    if ((form != Form::Load && form != Form::Store) || access.index == kNoIndex || access.scale != 0) continue;
    const uint8_t x = access.index;
    const uint8_t base = form == Form::Load ? access.src : access.dst;
    if (base == x || (form == Form::Store && !access.k && access.src == x)) continue;
    // The shift that made x, with nothing between that reads or writes x
    // or leaves the straight line.
    size_t shift = k;
    for (size_t j = k; j-- > 0;) {
      const Inst& i = code[j];
      if (!dead.empty() && dead[j]) continue;
      const Form f = op_form(i.op);
      if (f == Form::Label || f == Form::Branch || f == Form::Jump || f == Form::Call || f == Form::Term) break;
      const Effects fx = effects(i);
      if (!((fx.uses | fx.defs) & reg_bit(x))) continue;
      const bool scale_ok = i.k && i.imm >= 1 && i.imm <= 3 && scale_allowed(modes, unsigned(i.imm), access.size);
      if (i.op == Op::Shl && i.width == 64 && i.dst == x && scale_ok) shift = j;
      break;
    }
    if (shift == k) continue;
    // x must be dead after the access (or be the loaded register).
    if (!(form == Form::Load && access.dst == x)) {
      if (!out) out = live_out(fn);
      if ((*out)[k] & reg_bit(x)) continue;
    }
    if (dead.empty()) dead.assign(code.size(), false);
    dead[shift] = true;
    access.scale = uint8_t(code[shift].imm);
  }
  erase_marked(code, dead);
}

void compute_into_copies(Function& fn) {
  std::vector<Inst>& code = fn.code;
  auto copy = [](const Inst& i) { return i.op == Op::Mov && !i.k && i.width == 64 && i.dst != i.src; };
  // x op= c, x = -x: they read nothing but x.
  auto updates = [](const Inst& i, uint8_t x) {
    return i.dst == x && ((op_form(i.op) == Form::Alu && i.k && i.op != Op::Mov) || i.op == Op::Neg);
  };
  // Liveness only for a function with a copy right after an update of its source.
  size_t first = 0;
  for (size_t p = 1; p < code.size() && !first; ++p)
    if (copy(code[p]) && updates(code[p - 1], code[p].src)) first = p;
  if (!first) return;
  const std::vector<RegSet> out = live_out(fn);
  for (size_t p = first; p < code.size(); ++p) {
    if (!copy(code[p]) || (out[p] & reg_bit(code[p].src))) continue;
    const uint8_t s = code[p].src, d = code[p].dst;
    size_t q = p;
    while (q > 0 && updates(code[q - 1], s)) --q;
    if (q == p) continue;
    for (size_t k = q; k < p; ++k) code[k].dst = d;
    std::rotate(code.begin() + ptrdiff_t(q), code.begin() + ptrdiff_t(p), code.begin() + ptrdiff_t(p + 1));
  }
}

void optimize_for_target(Module& m, const AddressModes& modes) {
  for (Function& fn : m.functions) {
    combine_loads(fn, modes);
    fold_addresses(fn, modes);
    remove_dead_code(fn);
    if (modes.index) fold_index_shift(fn, modes);
  }
}

void optimize(Module& m) {
  for (Function& fn : m.functions) {
    propagate_constants(fn);
    reduce_strength(fn);
    remove_redundant_masks(fn);
    fold_zero_extension(fn);
    invert_branch_over_jump(fn);
    fold_bit_test(fn);
    remove_redundant_copies(fn);
    hoist_loop_invariants(fn);
    sink_past_branches(fn);
    compute_into_copies(fn);
  }
}

}  // namespace sb::ir
