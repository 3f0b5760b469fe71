// Static checks of RFC 9669 bytecode (including the cpu v4 additions: sdiv,
// smod, movsx, bswap, ldxs*, gotol) plus callx (JMP|CALL|X, register in dst).
//
// Per instruction, one rule per opcode says what each field means; a field the
// rule gives no meaning must be zero (section 3: "unused fields ... SHALL be
// cleared to zero"). Then whole-program checks: LDDW pairs, branch targets,
// exits, and function boundaries (a function starts at 0 and at every local
// call target; control may not flow or jump from one function into another).
#include "frontend/validator.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "ir/diag.h"
#include "ir/harden.h"

namespace sb::bpf {

namespace {

enum class DstRule : uint8_t { Zero, Read, Write };  // Write also rejects r10
enum class SrcRule : uint8_t { Zero, Reg, CallKind, LddwKind };
enum class OffRule : uint8_t {
  Zero,
  Any,      // memory offset
  Jump,     // branch offset
  DivMod,   // 0 unsigned, 1 signed (section 4.1)
  MovSx32,  // 0 mov, 8/16 movsx (ALU)
  MovSx64,  // 0 mov, 8/16/32 movsx (ALU64)
};
enum class ImmRule : uint8_t {
  Zero,
  Any,
  Divisor,    // K-form div/mod: must not be 0
  SwapWidth,  // 16, 32 or 64 (section 4.2)
  Atomic,     // an atomic operation (section 5.3)
  Jump,       // branch offset (JMP32 JA)
  Call,       // helper id or local call offset, by src_reg (section 4.3.1)
};

struct Rule {
  bool valid = false;
  DstRule dst = DstRule::Zero;
  SrcRule src = SrcRule::Zero;
  OffRule off = OffRule::Zero;
  ImmRule imm = ImmRule::Zero;
};

// The RFC 9669 opcode map, built from its structure (class, operation,
// source/size, mode) rather than listed by number.
constexpr std::array<Rule, 256> make_rules() {
  using D = DstRule;
  using S = SrcRule;
  using O = OffRule;
  using I = ImmRule;
  std::array<Rule, 256> t{};
  auto set = [&t](uint8_t opcode, D d, S s, O o, I i) { t[opcode] = {true, d, s, o, i}; };

  // Section 4.1: arithmetic. NEG and END have no X form; END's X bit is the
  // byte order (section 4.2) and ALU64 has only the unconditional swap.
  constexpr uint8_t kBinary[] = {ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, MOD, XOR, MOV, ARSH};
  for (uint8_t cls : {uint8_t(ALU), uint8_t(ALU64)}) {
    for (uint8_t aop : kBinary) {
      bool divmod = aop == DIV || aop == MOD;
      O off_k = divmod ? O::DivMod : O::Zero;
      O off_x = divmod ? O::DivMod : aop == MOV ? (cls == ALU ? O::MovSx32 : O::MovSx64) : O::Zero;
      set(make_opcode(cls, aop, K), D::Write, S::Zero, off_k, divmod ? I::Divisor : I::Any);
      set(make_opcode(cls, aop, X), D::Write, S::Reg, off_x, I::Zero);
    }
    set(make_opcode(cls, NEG, K), D::Write, S::Zero, O::Zero, I::Zero);
    set(make_opcode(cls, END, TO_LE), D::Write, S::Zero, O::Zero, I::SwapWidth);
  }
  set(make_opcode(ALU, END, TO_BE), D::Write, S::Zero, O::Zero, I::SwapWidth);

  // Section 4.3: jumps. CALL and EXIT exist only in JMP; callx is JMP|CALL|X.
  constexpr uint8_t kConditional[] = {JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE, JLT, JLE, JSLT, JSLE};
  for (uint8_t cls : {uint8_t(JMP), uint8_t(JMP32)}) {
    for (uint8_t jop : kConditional) {
      set(make_opcode(cls, jop, K), D::Read, S::Zero, O::Jump, I::Any);
      set(make_opcode(cls, jop, X), D::Read, S::Reg, O::Jump, I::Zero);
    }
  }
  set(make_opcode(JMP, JA, K), D::Zero, S::Zero, O::Jump, I::Zero);
  set(make_opcode(JMP32, JA, K), D::Zero, S::Zero, O::Zero, I::Jump);
  set(make_opcode(JMP, CALL, K), D::Zero, S::CallKind, O::Zero, I::Call);
  set(make_opcode(JMP, CALL, X), D::Read, S::Zero, O::Zero, I::Zero);
  set(make_opcode(JMP, EXIT, K), D::Zero, S::Zero, O::Zero, I::Zero);

  // Sections 5.1-5.4: loads and stores. Sign-extending loads have no DW
  // form; atomics exist for W and DW only.
  for (uint8_t size : {uint8_t(B), uint8_t(H), uint8_t(W), uint8_t(DW)}) {
    set(make_opcode(LDX, MEM, size), D::Write, S::Reg, O::Any, I::Zero);
    set(make_opcode(ST, MEM, size), D::Read, S::Zero, O::Any, I::Any);
    set(make_opcode(STX, MEM, size), D::Read, S::Reg, O::Any, I::Zero);
    if (size != DW) set(make_opcode(LDX, MEMSX, size), D::Write, S::Reg, O::Any, I::Zero);
    if (size == W || size == DW) set(make_opcode(STX, ATOMIC, size), D::Read, S::Reg, O::Any, I::Atomic);
  }
  set(LDDW, D::Write, S::LddwKind, O::Zero, I::Any);
  return t;
}

constexpr std::array<Rule, 256> kRules = make_rules();

// Section 5.3: the imm values of the atomic instructions.
constexpr int32_t kAtomicOps[] = {
    ATOMIC_ADD, ATOMIC_ADD | FETCH, ATOMIC_OR,   ATOMIC_OR | FETCH, ATOMIC_AND, ATOMIC_AND | FETCH,
    ATOMIC_XOR, ATOMIC_XOR | FETCH, ATOMIC_XCHG, ATOMIC_CMPXCHG,
};

bool is_legacy_packet_access(uint8_t opcode) {  // section 5.5, deprecated
  return class_of(opcode) == LD && (mode_of(opcode) == ABS || mode_of(opcode) == IND);
}

bool ends_flow(const Insn& in) {  // no fall-through to the next instruction
  return in.opcode == make_opcode(JMP, EXIT, K) || in.opcode == make_opcode(JMP, JA, K) ||
         in.opcode == make_opcode(JMP32, JA, K);
}

bool is_local_call(const Insn& in) {
  return in.opcode == make_opcode(JMP, CALL, K) && in.src == CALL_LOCAL;
}

// Whether an instruction has a target (a branch or a local call), and
// which slot it is for the instruction at `index`.
bool has_target(const Rule& rule, const Insn& insn) {
  return rule.valid && (rule.off == OffRule::Jump || rule.imm == ImmRule::Jump ||
                        (rule.imm == ImmRule::Call && insn.src == CALL_LOCAL));
}
int64_t target_of(const Rule& rule, const Insn& insn, size_t index) {
  return int64_t(index) + 1 + (rule.off == OffRule::Jump ? insn.off : insn.imm);
}

class Validator {
 public:
  Validator(const Program& p, const ValidateOptions& opts) : p_(p), opts_(opts), n_(p.insns.size()) {}

  // The checks in order: fields (and LDDW pairs), branch targets, exits,
  // function boundaries, the call graph. Each branch's target is computed
  // once, in the first pass, and the later passes walk those sites.
  void run() {
    if (n_ == 0) throw Error(p_.name.empty() ? "<program>" : p_.name, "empty program");
    second_half_.assign(n_, 0);
    sites_.reserve(n_);  // at most one per slot: one allocation, not a growth series
    bool has_exit = false;
    for (size_t i = 0; i < n_; i += slot_count(p_.insns[i])) {
      const Insn& in = p_.insns[i];
      check_fields(i);
      if (is_lddw(in)) check_lddw_pair(i);
      has_exit |= in.opcode == make_opcode(JMP, EXIT, K);
      const Rule& rule = kRules[in.opcode];
      if (has_target(rule, in)) sites_.push_back({i, target_of(rule, in, i), is_local_call(in)});
      if (is_func_ref(in)) sites_.push_back({i, func_ref_target(in, i), true, true});
    }
    for (const Site& s : sites_) check_target(s);
    if (!has_exit) fail(last_before(n_), "program has no exit instruction");
    check_functions();
  }

 private:
  struct Site {
    size_t at;       // the branch or call
    int64_t target;  // its target slot
    bool call;       // a local call or a function's address (else a jump)
    // An lddw of a function's address: a callback, which bpf_loop calls
    // from a frame of its own (frontend/loop_helper.h), two frames deeper.
    bool callback = false;
  };

  [[noreturn]] void fail(size_t i, const std::string& what) const {
    throw Error(insn_location(p_.name, i), what);
  }

  // One instruction against its opcode's rule: dst, src, offset, imm in turn.
  void check_fields(size_t i) const {
    const Insn& in = p_.insns[i];
    const Rule& rule = kRules[in.opcode];
    if (!rule.valid) {
      if (is_legacy_packet_access(in.opcode))
        fail(i, fmt::format("unsupported legacy packet access opcode {:#04x}", in.opcode));
      fail(i, fmt::format("unknown opcode {:#04x}", in.opcode));
    }

    switch (rule.dst) {
      case DstRule::Zero:
        if (in.dst != 0) fail(i, "reserved field dst_reg must be 0");
        break;
      case DstRule::Read:
      case DstRule::Write:
        if (in.dst >= kNumRegs) fail(i, fmt::format("invalid destination register r{}", in.dst));
        if (rule.dst == DstRule::Write && in.dst == kFramePointer)
          fail(i, "write to read-only register r10");
        break;
    }

    switch (rule.src) {
      case SrcRule::Zero:
        if (in.src != 0) fail(i, "reserved field src_reg must be 0");
        break;
      case SrcRule::Reg:
        if (in.src >= kNumRegs) fail(i, fmt::format("invalid source register r{}", in.src));
        break;
      case SrcRule::CallKind:
        if (in.src == CALL_HELPER_BTF)
          fail(i, "unsupported call kind: helper by BTF ID (src_reg 2)");
        if (in.src != CALL_HELPER && in.src != CALL_LOCAL)
          fail(i, fmt::format("invalid call kind src_reg {}", in.src));
        break;
      case SrcRule::LddwKind:
        if (in.src > LDDW_MAP_IDX_VALUE) fail(i, fmt::format("invalid lddw source src_reg {}", in.src));
        break;
    }

    switch (rule.off) {
      case OffRule::Zero:
        if (in.off != 0) fail(i, "reserved field offset must be 0");
        break;
      case OffRule::Any:
      case OffRule::Jump:
        break;
      case OffRule::DivMod:
        if (in.off != 0 && in.off != 1)
          fail(i, fmt::format("invalid offset {} for div/mod (0 unsigned, 1 signed)", in.off));
        break;
      case OffRule::MovSx32:
        if (in.off != 0 && in.off != 8 && in.off != 16)
          fail(i, fmt::format("invalid movsx offset {} for mov32 (8 or 16)", in.off));
        break;
      case OffRule::MovSx64:
        if (in.off != 0 && in.off != 8 && in.off != 16 && in.off != 32)
          fail(i, fmt::format("invalid movsx offset {} for mov (8, 16 or 32)", in.off));
        break;
    }

    switch (rule.imm) {
      case ImmRule::Zero:
        if (in.imm != 0) fail(i, "reserved field imm must be 0");
        break;
      case ImmRule::Any:
      case ImmRule::Jump:
        break;
      case ImmRule::Divisor:
        if (in.imm == 0)
          fail(i, op_of(in) == DIV ? "division by zero immediate" : "modulo by zero immediate");
        break;
      case ImmRule::SwapWidth:
        if (in.imm != 16 && in.imm != 32 && in.imm != 64)
          fail(i, fmt::format("invalid byte swap width {}", in.imm));
        break;
      case ImmRule::Atomic:
        if (std::find(std::begin(kAtomicOps), std::end(kAtomicOps), in.imm) == std::end(kAtomicOps))
          fail(i, fmt::format("invalid atomic operation {:#x}", uint32_t(in.imm)));
        if ((in.imm & FETCH) && in.src == kFramePointer)  // fetch writes the old value to src
          fail(i, "write to read-only register r10");
        break;
      case ImmRule::Call:
        // bpf_loop and bpf_for_each_map_elem are no host functions:
        // lowering writes them as loops of calls (frontend/loop_helper.h).
        if (in.src == CALL_HELPER && ir::is_reserved_helper(uint32_t(in.imm)))
          fail(i, fmt::format("unknown helper {} (an id Springboard keeps for its own code)", uint32_t(in.imm)));
        if (in.src == CALL_HELPER && uint32_t(in.imm) != HELPER_LOOP && uint32_t(in.imm) != HELPER_FOR_EACH_MAP_ELEM &&
            opts_.helper_exists &&
            !opts_.helper_exists(uint32_t(in.imm)))
          fail(i, fmt::format("unknown helper {}", uint32_t(in.imm)));
        break;
    }
  }

  // Section 5.4: the second slot carries only the upper half of imm.
  void check_lddw_pair(size_t i) {
    if (i + 1 == n_) fail(i, "truncated lddw");
    const Insn& hi = p_.insns[i + 1];
    if (hi.opcode != 0 || hi.dst != 0 || hi.src != 0 || hi.off != 0)
      fail(i, "second slot of lddw must have opcode, registers and offset 0");
    if (is_func_ref(p_.insns[i]) && hi.imm != 0) fail(i, "lddw of a function's address: its second slot's imm must be 0");
    second_half_[i + 1] = 1;
  }

  void check_target(const Site& s) const {
    const char* what = s.callback ? "function address" : s.call ? "call" : "jump";
    if (s.target < 0 || s.target >= int64_t(n_))
      fail(s.at, fmt::format("{} target {} out of range [0, {})", what, s.target, n_));
    if (second_half_[size_t(s.target)])
      fail(s.at, fmt::format("{} into the middle of lddw at {}", what, s.target - 1));
  }

  // The last real instruction before slot `end` (skipping an LDDW's second half).
  size_t last_before(size_t end) const { return second_half_[end - 1] ? end - 2 : end - 1; }

  // Function starts as function_starts() finds them: 0 and every (by now
  // in-range) local call target.
  std::vector<size_t> starts() const {
    std::vector<size_t> starts{0};
    for (const Site& s : sites_)
      if (s.call) starts.push_back(size_t(s.target));
    std::sort(starts.begin(), starts.end());
    starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
    return starts;
  }

  void check_functions() const {
    const std::vector<size_t> starts = this->starts();
    auto site = sites_.begin();
    for (size_t f = 0; f < starts.size(); ++f) {
      size_t begin = starts[f];
      size_t end = f + 1 < starts.size() ? starts[f + 1] : n_;
      size_t last = last_before(end);
      if (!ends_flow(p_.insns[last])) {
        if (end == n_) fail(last, "falls off the end of the program");
        fail(last, fmt::format("falls through into the function at {}", end));
      }
      for (; site != sites_.end() && site->at < end; ++site)
        if (!site->call && (site->target < int64_t(begin) || site->target >= int64_t(end)))
          fail(site->at, fmt::format("jump target {} is outside its function [{}, {})", site->target, begin, end));
    }
    if (std::any_of(sites_.begin(), sites_.end(), [](const Site& s) { return s.call; })) check_call_graph(starts);
  }

  // bpf-to-bpf calls must form a DAG no deeper than kMaxCallDepth frames,
  // as the kernel's verifier requires: compiled code has no frame limit
  // of its own, so recursion would exhaust the native stack.
  void check_call_graph(const std::vector<size_t>& starts) const {
    const size_t nf = starts.size();
    auto function_of = [&](size_t insn) {
      return size_t(std::upper_bound(starts.begin(), starts.end(), insn) - starts.begin()) - 1;
    };
    // sites_ is in instruction order and functions are contiguous, so the
    // calls of function f are the call sites in sites_[first[f], first[f + 1]).
    enum State : uint8_t { Unvisited, Active, Done };
    struct Node {
      size_t first = 0;  // its first site
      State state = Unvisited;
      int depth = 1;     // frames on the deepest path starting here
    };
    std::vector<Node> node(nf + 1);
    for (size_t f = 0, k = 0; f <= nf; ++f) {
      const size_t begin = f < nf ? starts[f] : n_;
      while (k < sites_.size() && sites_[k].at < begin) ++k;
      node[f].first = k;
    }
    auto visit = [&](auto& self, size_t f) -> void {
      node[f].state = Active;
      for (size_t k = node[f].first; k < node[f + 1].first; ++k) {
        const Site& c = sites_[k];
        if (!c.call) continue;
        const size_t callee = function_of(size_t(c.target));
        if (node[callee].state == Active)
          fail(c.at, fmt::format("recursive call to the function at {}", starts[callee]));
        if (node[callee].state == Unvisited) self(self, callee);
        node[f].depth = std::max(node[f].depth, node[callee].depth + (c.callback ? 2 : 1));
        if (node[f].depth > kMaxCallDepth)
          fail(c.at, fmt::format("call depth exceeds {} frames", kMaxCallDepth));
      }
      node[f].state = Done;
    };
    for (size_t f = 0; f < nf; ++f)
      if (node[f].state == Unvisited) visit(visit, f);
  }

  const Program& p_;
  const ValidateOptions& opts_;
  const size_t n_;
  std::vector<uint8_t> second_half_;  // slot i is the second half of an LDDW
  std::vector<Site> sites_;           // every branch and local call, in order
};

}  // namespace

std::optional<int64_t> branch_target(const Insn& insn, size_t index) {
  const Rule& rule = kRules[insn.opcode];
  if (!has_target(rule, insn)) return std::nullopt;
  return target_of(rule, insn, index);
}

void validate(const Program& p, const ValidateOptions& opts) { Validator(p, opts).run(); }

std::vector<size_t> function_starts(const Program& p) {
  std::vector<size_t> starts{0};
  for (size_t i = 0; i < p.insns.size(); i += slot_count(p.insns[i])) {
    std::optional<int64_t> target;
    if (is_local_call(p.insns[i])) target = branch_target(p.insns[i], i);
    else if (is_func_ref(p.insns[i])) target = func_ref_target(p.insns[i], i);
    else continue;
    if (target && *target >= 0 && *target < int64_t(p.insns.size())) starts.push_back(size_t(*target));
  }
  std::sort(starts.begin(), starts.end());
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  return starts;
}

}  // namespace sb::bpf
