// The verifier's abstract interpreter (see verifier.h): a depth-first walk
// of every path with a stack of pending branch states, as the kernel's
// do_check. In order below:
//   the static pass       function of each instruction, reachability,
//                         prune points (jump targets, fall-throughs of
//                         conditional jumps, call returns), register liveness
//   states                frames (registers, stack slots), references
//   pruning               is_state_visited: a state at a prune point that a
//                         finished state subsumes (regsafe, stacksafe) stops;
//                         one equal to a state still being explored is an
//                         infinite loop
//   instructions          ALU (scalar bounds, pointer arithmetic), memory
//                         (per pointer type), jumps (both edges refined),
//                         calls (helpers by prototype, bpf-to-bpf frames), exit
#include "frontend/verifier/verifier.h"

#include <algorithm>
#include <array>
#include <bit>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "frontend/disassembler.h"
#include "frontend/loop_helper.h"
#include "frontend/validator.h"
#include "frontend/verifier/reg_state.h"
#include "ir/diag.h"

namespace sb::bpf::verifier {

namespace {

constexpr int64_t kS64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kS64Max = std::numeric_limits<int64_t>::max();
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
constexpr int64_t kMaxVarOff = int64_t(1) << 29;     // BPF_MAX_VAR_OFF
constexpr uint64_t kMaxVarSize = uint64_t(1) << 29;  // BPF_MAX_VAR_SIZ
constexpr uint32_t kMaxPacketOff = 0xffff;           // MAX_PACKET_OFF
constexpr int kStackSlots = kStackSize / 8;

// --- states -----------------------------------------------------------------

enum class Slot : uint8_t { Invalid, Misc, Zero, Spill };

struct StackSlot {
  RegState spilled;  // valid when every byte is Spill
  std::array<Slot, 8> type{};
  bool operator==(const StackSlot&) const = default;
  // Every byte written with zeros (a store of 0): the number 0.
  bool zero_bytes() const {
    return std::all_of(type.begin(), type.end(), [](Slot t) { return t == Slot::Zero; });
  }
};

struct Frame {
  std::array<RegState, kNumRegs> regs{};
  std::vector<StackSlot> stack;  // stack[k]: bytes [-8k-8, -8k) below the frame pointer
  int32_t callsite = -1;         // the caller's call instruction (-1: the entry)
  uint32_t func = 0;             // index into the function starts
  // A callback's frame (bpf_loop, bpf_for_each_map_elem): its exit either ends the loop or runs the
  // callback again, from the caller frames as they were at this entry
  // (`loop_entry`), widened (see callback_call).
  bool callback = false;
  uint32_t iteration = 0;  // a callback's: which run of it this frame is (0: the first)
  std::shared_ptr<const std::vector<Frame>> loop_entry;
  bool operator==(const Frame&) const = default;
};

struct Ref {
  uint32_t id;
  uint32_t insn;  // where it was acquired
  bool operator==(const Ref&) const = default;
};

struct State {
  std::vector<Frame> frames;
  std::vector<Ref> refs;
  uint64_t raw_len = 0;  // raw programs: bytes of r1's memory this path proved (a compare of the entry's r2)
  // The bpf_spin_lock this path holds (the kernel's active_lock): the map
  // and the id of the value pointer it was taken through; -1: none.
  int32_t lock_map = -1;
  uint32_t lock_id = 0;
  Frame& cur() { return frames.back(); }
  const Frame& cur() const { return frames.back(); }
};

// One executed instruction of a path, for precision backtracking: its
// frame, and the stack slot it filled from or stored to (a spill), if any.
struct Step {
  uint32_t insn;
  uint8_t frame;
  int8_t slot = -1;  // stack slot index (bytes [-8k-8, -8k)), -1: none
  uint8_t slot_frame = 0;
};

// Exploration bookkeeping for pruning: a node is a state stored at a prune
// point; `branches` counts the paths still being explored from it (directly,
// or through a child node). Pruning is only against finished nodes. A node
// keeps the instructions run from its parent node to it, so that a check
// that depends on a scalar marks that scalar precise in every stored state
// it came through (the kernel's mark_chain_precision).
//
// A node dropped from its visited list while paths below it still run
// keeps only what precision marking reads of its state (`marks`): nothing
// compares against it again, but a demand that reaches a value already
// precise there stops, which keeps each backtrack short. In a long loop
// almost every node is such a node (fnv's 65,536 iterations each store
// one): a few dozen bytes instead of a whole state.
struct Marks {
  struct FrameMarks {
    uint16_t scalar = 0, precise = 0;              // per register
    uint64_t slot_scalar = 0, slot_precise = 0;    // per stack slot: a spilled scalar, or zero bytes
    std::array<uint32_t, 10> id{};                 // per register: a scalar's id
  };
  size_t n = 0;
  std::unique_ptr<FrameMarks[]> frames;
};

struct Node {
  uint32_t branches = 0;
  Node* parent = nullptr;
  State st;
  Marks marks;  // instead of `st`, once out of the visited list (above): marks.n > 0
  std::vector<Step> history;
  uint32_t hit = 0, miss = 0;
  bool listed = false;  // still in visited_ (a candidate for pruning)
};

struct Path {
  State st;
  size_t insn = 0;
  Node* parent = nullptr;
  std::vector<Step> history;  // since `parent`
};

// Registers and stack slots whose values a check needs, per frame.
struct Demand {
  std::array<uint16_t, kMaxCallDepth> regs{};
  std::array<uint64_t, kMaxCallDepth> slots{};
  bool empty() const {
    for (size_t f = 0; f < regs.size(); ++f)
      if (regs[f] || slots[f]) return false;
    return true;
  }
};

// Id correspondence between an old and a current state, both ways.
class IdMap {
 public:
  bool check(uint32_t old_id, uint32_t cur_id) {
    if (old_id == 0) return true;
    if (cur_id == 0) return false;
    for (const auto& [o, c] : pairs_) {
      if (o == old_id) return c == cur_id;
      if (c == cur_id) return false;
    }
    pairs_.push_back({old_id, cur_id});
    return true;
  }

 private:
  std::vector<std::pair<uint32_t, uint32_t>> pairs_;
};

enum class Cmp : uint8_t { Eq, Ne, Gt, Ge, Lt, Le, Sgt, Sge, Slt, Sle, Set, NotSet };

Cmp negate(Cmp c) {
  switch (c) {
    case Cmp::Eq: return Cmp::Ne;
    case Cmp::Ne: return Cmp::Eq;
    case Cmp::Gt: return Cmp::Le;
    case Cmp::Ge: return Cmp::Lt;
    case Cmp::Lt: return Cmp::Ge;
    case Cmp::Le: return Cmp::Gt;
    case Cmp::Sgt: return Cmp::Sle;
    case Cmp::Sge: return Cmp::Slt;
    case Cmp::Slt: return Cmp::Sge;
    case Cmp::Sle: return Cmp::Sgt;
    case Cmp::Set: return Cmp::NotSet;
    case Cmp::NotSet: return Cmp::Set;
  }
  return c;
}

// The comparison with its operands swapped: a OP b == b swap(OP) a.
Cmp swapped(Cmp c) {
  switch (c) {
    case Cmp::Gt: return Cmp::Lt;
    case Cmp::Ge: return Cmp::Le;
    case Cmp::Lt: return Cmp::Gt;
    case Cmp::Le: return Cmp::Ge;
    case Cmp::Sgt: return Cmp::Slt;
    case Cmp::Sge: return Cmp::Sle;
    case Cmp::Slt: return Cmp::Sgt;
    case Cmp::Sle: return Cmp::Sge;
    default: return c;
  }
}

std::optional<Cmp> cmp_of(uint8_t jop) {
  switch (jop) {
    case JEQ: return Cmp::Eq;
    case JNE: return Cmp::Ne;
    case JGT: return Cmp::Gt;
    case JGE: return Cmp::Ge;
    case JLT: return Cmp::Lt;
    case JLE: return Cmp::Le;
    case JSGT: return Cmp::Sgt;
    case JSGE: return Cmp::Sge;
    case JSLT: return Cmp::Slt;
    case JSLE: return Cmp::Sle;
    case JSET: return Cmp::Set;
    default: return std::nullopt;
  }
}

const char* alu_name(uint8_t op) {
  switch (op) {
    case ADD: return "+=";
    case SUB: return "-=";
    case MUL: return "*=";
    case DIV: return "/=";
    case OR: return "|=";
    case AND: return "&=";
    case LSH: return "<<=";
    case RSH: return ">>=";
    case NEG: return "neg";
    case MOD: return "%=";
    case XOR: return "^=";
    case MOV: return "=";
    case ARSH: return "s>>=";
    case END: return "endian";
  }
  return "?";
}

// --- scalar bounds of one width ------------------------------------------

// The extremes of a width, as Bounds hold them (32-bit values sign- or
// zero-extended).
struct Width {
  unsigned bits;
  int64_t smin() const { return bits == 64 ? kS64Min : int64_t(std::numeric_limits<int32_t>::min()); }
  int64_t smax() const { return bits == 64 ? kS64Max : int64_t(std::numeric_limits<int32_t>::max()); }
  uint64_t umax() const { return bits == 64 ? kU64Max : uint64_t(std::numeric_limits<uint32_t>::max()); }
  Bounds unbounded() const { return {smin(), smax(), 0, umax()}; }
  Tnum tnum(const RegState& r) const { return bits == 64 ? r.var_off : r.var_off.subreg(); }
};

bool add_overflows_s(int64_t a, int64_t b, Width w, int64_t& out) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return true;
  if (r < w.smin() || r > w.smax()) return true;
  out = r;
  return false;
}
bool sub_overflows_s(int64_t a, int64_t b, Width w, int64_t& out) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) return true;
  if (r < w.smin() || r > w.smax()) return true;
  out = r;
  return false;
}

// Bounds of a op b for the ops whose result bounds follow from the operand
// bounds (the kernel's scalar_min_max_* functions); var_off is computed by
// the caller, and sync() then tightens both.
Bounds scalar_bounds(uint8_t op, const Bounds& a, const Bounds& b, Tnum result, Width w) {
  Bounds r = w.unbounded();
  switch (op) {
    case ADD: {
      int64_t lo, hi;
      if (!add_overflows_s(a.smin, b.smin, w, lo) && !add_overflows_s(a.smax, b.smax, w, hi)) r.smin = lo, r.smax = hi;
      uint64_t ulo = a.umin + b.umin, uhi = a.umax + b.umax;
      bool over = uhi < a.umax || (w.bits == 32 && uhi > w.umax());
      if (!over) r.umin = ulo, r.umax = uhi;
      break;
    }
    case SUB: {
      int64_t lo, hi;
      if (!sub_overflows_s(a.smin, b.smax, w, lo) && !sub_overflows_s(a.smax, b.smin, w, hi)) r.smin = lo, r.smax = hi;
      if (a.umin >= b.umax) r.umin = a.umin - b.umax, r.umax = a.umax - b.umin;
      break;
    }
    case MUL: {
      if (a.smin < 0 || b.smin < 0) break;  // the kernel gives up on signed operands
      unsigned __int128 hi = (unsigned __int128)a.umax * b.umax;
      if (hi > w.umax()) break;
      r.umin = a.umin * b.umin, r.umax = uint64_t(hi);
      if (r.umax <= uint64_t(w.smax())) r.smin = int64_t(r.umin), r.smax = int64_t(r.umax);
      break;
    }
    case AND:
      r.umin = result.value;
      r.umax = std::min(a.umax, b.umax);
      if (a.smin >= 0 && b.smin >= 0) r.smin = int64_t(r.umin), r.smax = int64_t(r.umax);
      break;
    case OR:
      r.umin = std::max(a.umin, b.umin);
      r.umax = result.value | result.mask;
      if (a.smin >= 0 && b.smin >= 0) r.smin = int64_t(r.umin), r.smax = int64_t(r.umax);
      break;
    case XOR:
      r.umin = result.value;
      r.umax = result.value | result.mask;
      if (a.smin >= 0 && b.smin >= 0) r.smin = int64_t(r.umin), r.smax = int64_t(r.umax);
      break;
    default: break;
  }
  if (w.bits == 32) r.umax = std::min(r.umax, w.umax());
  return r;
}

// --- the verifier ---------------------------------------------------------

// What every run over one program shares: the static analysis, the
// results, and the function summaries.
constexpr uint32_t kLengthId = 0xffffffffu;  // the id of a raw program's entry r2 and its copies

struct Shared {
  std::vector<size_t> starts;        // function starts
  std::vector<uint32_t> func_of;     // per slot: its function
  std::vector<uint8_t> prune;        // per slot: a prune point
  std::vector<uint16_t> live;        // per slot: registers live before it
  std::vector<uint8_t> second_half;  // per slot: the second half of an lddw
  std::vector<uint32_t> depth;       // deepest stack byte touched, per function
  enum Summary : uint8_t { Untried, Summarised, Inlined };
  std::vector<Summary> summary;      // per function
  std::vector<const GlobalFunc*> global;  // per function: its prototype when it is global (Program::globals)
  // The global functions checked on their own, with the arguments a raw
  // program passes as raw memory (a register mask; 0: as the prototype says).
  std::set<std::pair<uint32_t, uint16_t>> global_checked;
  std::deque<MapUse> maps;          // Program::maps, then maps VerifyOptions::map_at named, then inner templates
  std::map<int32_t, int32_t> inner_of;  // a map of maps' index in `maps` -> its inner template's
  // Per slot: the pointer a load, store or atomic went through, 1 the
  // context, 2 anything else (0: not yet seen), as the kernel's
  // insn_aux_data.ptr_type: one instruction may not do both, since the
  // context's accesses are rewritten.
  std::vector<uint8_t> ptr_kind;
  bool use_summaries = true;
  uint32_t len_id = 0;  // the id of the entry's r2 (the raw memory's length) and its copies; 0: none
  bool used_summary = false;
  uint32_t id_gen = 0;
  VerifyResult result;
};

class Verifier {
 public:
  Verifier(const Program& p, const VerifyOptions& opts, Shared& sh)
      : p_(p), opts_(opts), type_(opts.type ? *opts.type : p.type ? *p.type : raw_program_type()),
        n_(p.insns.size()), sh_(sh) {}

  VerifyResult run() {
    static_pass();
    sh_.maps.assign(p_.maps.begin(), p_.maps.end());
    sh_.result.proven.assign(n_, 0);
    sh_.result.ctx_fields.assign(n_, nullptr);
    sh_.ptr_kind.assign(n_, 0);
    sh_.depth.assign(sh_.starts.size(), 0);
    sh_.summary.assign(sh_.starts.size(), Shared::Untried);
    sh_.global.assign(sh_.starts.size(), nullptr);
    for (const GlobalFunc& g : p_.globals)
      if (g.start > 0 && g.start < n_ && sh_.starts[sh_.func_of[g.start]] == g.start) sh_.global[sh_.func_of[g.start]] = &g;
    // As the kernel's do_check_subprogs: each global function first, on its own.
    for (uint32_t f = 1; f < sh_.starts.size(); ++f)
      if (sh_.global[f]) check_global(f, 0);
    visited_.resize(n_);
    explore(initial_state());
    check_stack_depths();
    sh_.result.stack_depth.resize(sh_.starts.size());
    for (size_t f = 0; f < sh_.starts.size(); ++f) sh_.result.stack_depth[f] = round_depth(sh_.depth[f]);
    for (uint8_t& v : sh_.result.proven) v = v == 1;
    return std::move(sh_.result);
  }

  // A summary (the kernel's treatment of global functions): the function
  // at `entry` verified once for any values of its arguments `args` (a
  // register mask; numbers, or raw memory at any offset where `raw_args`
  // says) returning a number. Throws when it is not safe for all of them.
  // With `exact` (the caller proved `raw_len` bytes of raw memory), the raw
  // arguments are exactly those pointers, so accesses through them inside
  // the length are proven; the summary then serves only calls with the
  // same pointers and at least that length.
  void run_function(size_t entry, uint16_t args, uint16_t raw_args, const Frame* exact = nullptr,
                    uint64_t raw_len = 0) {
    Frame f;
    for (int r = 1; r <= 5; ++r) {
      if (!(args & (1u << r))) continue;
      if ((raw_args & (1u << r)) && exact) {
        f.regs[size_t(r)] = exact->regs[size_t(r)];
        f.regs[size_t(r)].id = 0;
      } else if (raw_args & (1u << r)) {
        f.regs[size_t(r)] = raw_memory_argument();
      } else {
        f.regs[size_t(r)] = RegState::unknown();
      }
    }
    run_from(entry, std::move(f), exact ? raw_len : 0);
  }

  // An argument that is raw memory at some offset, in a function checked on its own.
  static RegState raw_memory_argument() {
    RegState r = RegState::pointer(RegType::RawMem);
    r.var_off = Tnum::unknown();
    r.mark_unbounded();
    return r;
  }

  // A global function (GlobalFunc) on its own, as the kernel's
  // do_check_common for a subprogram: its arguments as its BTF prototype
  // says (btf_prepare_func_args): numbers, the context, or memory of the
  // pointee's size that may be null; in a raw program, the arguments in
  // `raw_args` are raw memory (its callers passed raw memory there).
  void run_global(const GlobalFunc& g, uint16_t raw_args) {
    global_ = &g;
    at_ = g.start;
    if (g.params.size() > 5)
      fail(fmt::format("Global function {}() with {} > 5 args. Buggy compiler.", g.name, g.params.size()));
    if (!g.returns_scalar)
      fail(fmt::format("Global function {}() doesn't return scalar. Only those are supported.", g.name));
    Frame f;
    for (size_t i = 0; i < g.params.size(); ++i) {
      RegState& r = f.regs[i + 1];
      switch (param_kind(g.params[i], i, g)) {
        case Param::Scalar: r = RegState::unknown(); break;
        case Param::Ctx: r = RegState::pointer(RegType::Ctx); break;
        case Param::Mem:
          if (raw_args & (1u << (i + 1))) {
            r = raw_memory_argument();
          } else {
            r = RegState::pointer(RegType::MemOrNull);
            r.mem_size = *g.params[i].size;
            r.id = new_id();
          }
          break;
      }
    }
    run_from(g.start, std::move(f), 0);
  }

 private:
  // A function's run on its own: the entry frame's exit returns to a caller it does not know.
  void run_from(size_t entry, Frame f, uint64_t raw_len) {
    function_run_ = true;
    visited_.resize(n_);
    Path path;
    path.st.raw_len = raw_len;
    f.regs[10] = RegState::pointer(RegType::Stack);
    f.func = sh_.func_of[entry];
    path.st.frames.push_back(std::move(f));
    path.insn = entry;
    nodes_.emplace_back();
    nodes_.back().branches = 1;
    path.parent = &nodes_.back();
    explore(std::move(path));
  }

  // --- diagnostics ---
  std::string where(size_t i) const {
    const std::string_view prog = opts_.program.empty() ? type_.name : std::string_view(opts_.program);
    if (global_) return insn_location(fmt::format("{}: {}: global function {}()", p_.name, prog, global_->name), i);
    return insn_location(fmt::format("{}: {}", p_.name, prog), i);
  }
  [[noreturn]] void fail(size_t i, const std::string& what) const { throw Error(where(i), what); }
  [[noreturn]] void fail(const std::string& what) const { fail(at_, what); }

  std::string reg_str(const RegState& r) const {
    if (r.map >= 0 && size_t(r.map) < sh_.maps.size()) {
      const MapUse& m = sh_.maps[size_t(r.map)];
      return r.str(m.name.c_str(), m.value_size);
    }
    return r.str();
  }
  std::string state_str(const State& st) const {
    std::string out;
    for (size_t f = 0; f < st.frames.size(); ++f) {
      const Frame& fr = st.frames[f];
      if (st.frames.size() > 1) out += fmt::format("{}frame{}:", out.empty() ? "" : " ", f);
      for (int r = 0; r < kNumRegs; ++r)
        if (fr.regs[size_t(r)].type != RegType::NotInit)
          out += fmt::format(" R{}={}", r, reg_str(fr.regs[size_t(r)]));
      for (size_t k = 0; k < fr.stack.size(); ++k) {
        const StackSlot& s = fr.stack[k];
        if (s.type[0] == Slot::Spill) {
          out += fmt::format(" fp-{}={}", 8 * (k + 1), reg_str(s.spilled));
          continue;
        }
        std::string bytes;
        bool any = false;
        for (int b = 7; b >= 0; --b) {
          const Slot t = s.type[size_t(b)];
          any |= t != Slot::Invalid;
          bytes += t == Slot::Invalid ? '?' : t == Slot::Misc ? 'm' : '0';
        }
        if (any) out += fmt::format(" fp-{}={}", 8 * (k + 1), bytes);
      }
    }
    return out;
  }

  // --- the static pass: functions, reachability, prune points, liveness ---
  void static_pass() {
    sh_.starts = function_starts(p_);
    sh_.func_of.assign(n_, 0);
    for (size_t f = 0; f < sh_.starts.size(); ++f) {
      const size_t end = f + 1 < sh_.starts.size() ? sh_.starts[f + 1] : n_;
      for (size_t i = sh_.starts[f]; i < end; ++i) sh_.func_of[i] = uint32_t(f);
    }
    sh_.prune.assign(n_, 0);
    for (size_t s : sh_.starts) sh_.prune[s] = 1;
    std::vector<uint8_t> reached(n_, 0);
    std::vector<size_t> work{0};
    reached[0] = 1;
    auto reach = [&](size_t t) {
      if (t < n_ && !reached[t]) reached[t] = 1, work.push_back(t);
    };
    while (!work.empty()) {
      const size_t i = work.back();
      work.pop_back();
      for (size_t s : successors(i)) reach(s);
      const Insn& in = p_.insns[i];
      if (in.opcode == make_opcode(JMP, CALL, K) && in.src == CALL_LOCAL) reach(size_t(*branch_target(in, i)));
      if (is_func_ref(in)) reach(size_t(func_ref_target(in, i)));
    }
    for (size_t i = 0; i < n_; i += slot_count(p_.insns[i]))
      if (!reached[i]) fail(i, fmt::format("unreachable insn {}", i));
    for (size_t i = 0; i < n_; i += slot_count(p_.insns[i])) {
      const Insn& in = p_.insns[i];
      const uint8_t cls = class_of(in.opcode);
      if (cls != JMP && cls != JMP32) continue;
      if (std::optional<int64_t> t = branch_target(in, i)) sh_.prune[size_t(*t)] = 1;
      const uint8_t op = op_of(in);
      if ((op != JA && op != EXIT && op != CALL) && i + 1 < n_) sh_.prune[i + 1] = 1;
      if (op == CALL && i + 1 < n_) sh_.prune[i + 1] = 1;
    }
    liveness();
  }

  // Where control goes after instruction i within its function (a call
  // returns to i + 1; exit goes nowhere).
  struct Successors {
    std::array<size_t, 2> at{};
    size_t n = 0;
    void add(size_t i) { at[n++] = i; }
    const size_t* begin() const { return at.data(); }
    const size_t* end() const { return at.data() + n; }
  };
  Successors successors(size_t i) const {
    const Insn& in = p_.insns[i];
    const uint8_t cls = class_of(in.opcode);
    Successors out;
    if (cls == JMP || cls == JMP32) {
      const uint8_t op = op_of(in);
      if (op == EXIT && cls == JMP) return out;
      if (op == CALL && cls == JMP) {
        out.add(i + 1);
        return out;
      }
      std::optional<int64_t> t = branch_target(in, i);
      if (t) out.add(size_t(*t));
      if (op != JA) out.add(i + 1);
      return out;
    }
    out.add(i + slot_count(in));
    return out;
  }

  // Registers (bit r) an instruction reads and writes, for liveness.
  static void use_def(const Insn& in, uint16_t& use, uint16_t& def) {
    use = def = 0;
    auto bit = [](int r) { return uint16_t(1u << r); };
    const uint8_t cls = class_of(in.opcode);
    switch (cls) {
      case ALU:
      case ALU64: {
        const uint8_t op = op_of(in);
        if (op != MOV) use |= bit(in.dst);
        if (is_reg_source(in) && op != NEG && op != END) use |= bit(in.src);
        def |= bit(in.dst);
        break;
      }
      case LDX: use |= bit(in.src), def |= bit(in.dst); break;
      case ST: use |= bit(in.dst); break;
      case STX:
        use |= bit(in.dst) | bit(in.src);
        if (mode_of(in.opcode) == ATOMIC) {
          if (in.imm == ATOMIC_CMPXCHG) use |= bit(0), def |= bit(0);
          else if (in.imm & FETCH) def |= bit(in.src);
        }
        break;
      case LD:
        if (is_lddw(in)) def |= bit(in.dst);
        break;
      case JMP:
      case JMP32: {
        const uint8_t op = op_of(in);
        if (op == EXIT) {
          use |= bit(0);
        } else if (op == CALL) {
          use |= 0x3e;  // r1-r5
          if (is_reg_source(in)) use |= bit(in.dst);
          def |= 0x3f;  // r0-r5
        } else if (op != JA) {
          use |= bit(in.dst);
          if (is_reg_source(in)) use |= bit(in.src);
        }
        break;
      }
    }
    use &= 0x3ff, def &= 0x3ff;  // r10 is never compared
  }

  void liveness() {
    sh_.live.assign(n_ + 1, 0);
    std::vector<uint16_t> use(n_, 0), def(n_, 0);
    for (size_t i = 0; i < n_; i += slot_count(p_.insns[i])) use_def(p_.insns[i], use[i], def[i]);
    bool changed = true;
    while (changed) {
      changed = false;
      for (size_t k = n_; k-- > 0;) {
        if (second_half(k)) continue;
        uint16_t out = 0;
        for (size_t s : successors(k))
          if (s < n_) out |= sh_.live[s];
        const uint16_t in = uint16_t(use[k] | (out & ~def[k]));
        if (in != sh_.live[k]) sh_.live[k] = in, changed = true;
      }
    }
  }

  bool second_half(size_t k) const {
    // Walk from the function start would be exact; the validator already
    // rejected jumps into an lddw's second slot, so a slot is a second half
    // when the slot before it starts an lddw that is itself an instruction.
    if (k == 0) return false;
    if (sh_.second_half.empty()) {
      sh_.second_half.assign(n_, 0);
      for (size_t i = 0; i < n_; i += slot_count(p_.insns[i]))
        if (is_lddw(p_.insns[i]) && i + 1 < n_) sh_.second_half[i + 1] = 1;
    }
    return sh_.second_half[k];
  }

  // --- the initial state ---
  Path initial_state() {
    Path path;
    Frame f;
    if (type_.raw_memory) {
      f.regs[1] = RegState::pointer(RegType::RawMem);
      f.regs[2] = RegState::unknown();
      // A reserved id (new_id() counts up from 1), so other ids read as before.
      if (opts_.raw_length_in_r2) f.regs[2].id = sh_.len_id = kLengthId;
    } else {
      f.regs[1] = RegState::pointer(RegType::Ctx);
    }
    f.regs[10] = RegState::pointer(RegType::Stack);
    path.st.frames.push_back(std::move(f));
    nodes_.emplace_back();
    nodes_.back().branches = 1;
    path.parent = &nodes_.back();
    return path;
  }

  // --- exploration ---
  void explore(Path first) {
    pending_.push_back(std::move(first));
    while (!pending_.empty()) {
      Path path = std::move(pending_.back());
      pending_.pop_back();
      walk(path);
    }
  }

  void finish(Path& path) {
    for (Node* n = path.parent; n; n = n->parent) {
      if (--n->branches) break;
      if (!n->listed) release(n);
    }
  }

  // A finished node out of the visited lists: nothing reads its state again.
  void release(Node* n) {
    n->st = State{};
    n->marks = {};
    n->history = {};
    --live_states_;
  }

  // A node out of the visited lists with paths still below it: only
  // precision marking reads it again (Marks).
  static void keep_marks_only(Node* n) {
    Marks m{n->st.frames.size(), std::make_unique<Marks::FrameMarks[]>(n->st.frames.size())};
    for (size_t f = 0; f < m.n; ++f) {
      const Frame& fr = n->st.frames[f];
      Marks::FrameMarks& fm = m.frames[f];
      for (int r = 0; r < 10; ++r) {
        const RegState& x = fr.regs[size_t(r)];
        if (x.type != RegType::Scalar) continue;
        fm.scalar |= uint16_t(1u << r);
        if (x.precise) fm.precise |= uint16_t(1u << r);
        fm.id[size_t(r)] = x.id;
      }
      for (size_t k = 0; k < fr.stack.size() && k < 64; ++k) {
        const StackSlot& sl = fr.stack[k];
        const bool spilled = sl.type[0] == Slot::Spill && sl.spilled.type == RegType::Scalar;
        if (spilled || sl.zero_bytes())
          fm.slot_scalar |= uint64_t(1) << k;
        if (spilled && sl.spilled.precise) fm.slot_precise |= uint64_t(1) << k;
      }
    }
    n->marks = std::move(m);
    n->st = State{};
  }

  void fork(const Path& path, State st, size_t insn) {
    Path other{std::move(st), insn, path.parent, path.history};
    other.history.push_back(step_);  // the branch itself
    path.parent->branches++;
    pending_.push_back(std::move(other));
  }

  // One path until it exits or is pruned.
  void walk(Path& path) {
    for (;;) {
      at_ = path.insn;
      if (sh_.prune[at_] && visit(path)) {
        finish(path);
        return;
      }
      if (++sh_.result.insns_processed > opts_.complexity_limit)
        fail(fmt::format("BPF program is too large. Processed {} insn (the complexity limit is {})",
                         sh_.result.insns_processed, opts_.complexity_limit));
      ++insns_since_state_;
      if (opts_.log) {
        const Insn& in = p_.insns[at_];
        opts_.log(fmt::format("{}:{}", at_, state_str(path.st)));
        opts_.log(fmt::format("{}: ({:02x}) {}", at_, in.opcode,
                              disassemble(in, is_lddw(in) && at_ + 1 < n_ ? &p_.insns[at_ + 1] : nullptr)));
      }
      step_ = Step{uint32_t(at_), uint8_t(path.st.frames.size() - 1)};
      const bool goes_on = step(path);
      path.history.push_back(step_);
      if (!goes_on) {
        finish(path);
        return;
      }
    }
  }

  // is_state_visited: true when the path can stop here.
  bool visit(Path& path) {
    std::vector<Node*>& list = visited_[at_];
    for (size_t k = 0; k < list.size();) {
      Node* v = list[k];
      if (v->branches == 0) {
        if (states_safe(v->st, path.st, false)) {
          ++v->hit;
          // The path is safe because its values are within the old state's
          // precise ones: those are precise on this path too.
          propagate_precision(path, v->st);
          return true;
        }
      } else if (states_safe(v->st, path.st, true)) {
        // The same state in a later run of a callback than the one still
        // being explored from it: that exploration covers this one, and
        // the helper bounds the runs. In the same run, a real loop.
        if (later_iteration(v->st, path.st)) {
          ++v->hit;
          return true;
        }
        fail(fmt::format("infinite loop detected at insn {}", at_));
      }
      // A state that keeps missing is unlikely to help: drop it (the
      // kernel's heuristic, miss_cnt > hit_cnt * 3 + 3).
      if (++v->miss > v->hit * 3 + 3) {
        v->listed = false;
        if (v->branches == 0) release(v);
        else keep_marks_only(v);
        list[k] = list.back();
        list.pop_back();
        continue;
      }
      ++k;
    }
    // Keep a state only every few jumps and instructions (the kernel's
    // add_new_state), and always at a function entry or an empty list.
    const bool add = list.empty() || callback_entry(path) || (jumps_since_state_ >= 2 && insns_since_state_ >= 8);
    if (!add) return false;
    jumps_since_state_ = insns_since_state_ = 0;
    // Precision starts afresh: the checks below this state will ask for it.
    for_each_reg(path.st, [](RegState& x) { x.precise = false; });
    nodes_.emplace_back();
    Node* n = &nodes_.back();
    n->branches = 1;
    n->parent = path.parent;
    n->st = path.st;
    n->history.assign(path.history.begin(), path.history.end());  // one allocation; the path keeps its capacity
    n->listed = true;
    path.history.clear();
    path.parent = n;
    list.push_back(n);
    ++sh_.result.states_stored;
    sh_.result.peak_states = std::max<uint64_t>(sh_.result.peak_states, ++live_states_);
    return false;
  }

  // Whether `cur` is in a later run of some callback frame than `old` (the
  // same frames: states_safe compared them).
  static bool later_iteration(const State& old, const State& cur) {
    for (size_t f = 0; f < cur.frames.size() && f < old.frames.size(); ++f)
      if (cur.frames[f].callback && cur.frames[f].iteration != old.frames[f].iteration) return true;
    return false;
  }

  // The first instruction of a callback, in its frame: where the
  // iterations meet, so a state is always kept there.
  bool callback_entry(const Path& path) const {
    const Frame& f = path.st.cur();
    return f.callback && at_ == sh_.starts[f.func];
  }

  // regsafe: every value `cur` may hold, `old` may hold (exact: the same
  // abstract value, for the infinite-loop check).
  bool reg_safe(const RegState& o, const RegState& c, IdMap& ids, bool exact) const {
    if (o.type == RegType::NotInit) return !exact || c.type == RegType::NotInit;
    if (o.type != c.type) return false;
    auto var_within = [&] {
      if (exact) return o.var_off == c.var_off && o.smin == c.smin && o.smax == c.smax && o.umin == c.umin &&
                        o.umax == c.umax && o.s32_min == c.s32_min && o.s32_max == c.s32_max &&
                        o.u32_min == c.u32_min && o.u32_max == c.u32_max;
      return range_within(o, c) && o.var_off.contains(c.var_off);
    };
    switch (o.type) {
      case RegType::Scalar:
        if (!exact && !o.precise) return true;  // nothing below depended on its value
        return var_within() && ids.check(o.id, c.id);
      case RegType::PacketEnd: return true;
      case RegType::MapHandle: return o.map == c.map;
      case RegType::MapHandleOrNull: return o.map == c.map && ids.check(o.id, c.id);
      case RegType::Func: return o.off == c.off;
      case RegType::Packet:
      case RegType::PacketMeta:
        if (exact ? o.range != c.range : o.range > c.range) return false;
        return o.off == c.off && var_within() && ids.check(o.id, c.id);
      default:
        return o.off == c.off && o.map == c.map && o.mem_size == c.mem_size && o.frame == c.frame && var_within() &&
               ids.check(o.id, c.id) && ids.check(o.ref_obj_id, c.ref_obj_id);
    }
  }

  bool stack_safe(const Frame& o, const Frame& c, IdMap& ids, bool exact) const {
    static const StackSlot kEmpty{};
    const size_t n = std::max(o.stack.size(), c.stack.size());
    for (size_t k = 0; k < n; ++k) {
      const StackSlot& os = k < o.stack.size() ? o.stack[k] : kEmpty;
      const StackSlot& cs = k < c.stack.size() ? c.stack[k] : kEmpty;
      if (exact) {
        // Zero bytes and a spilled 0 are the same value (precision marking
        // turns the first into the second in stored states).
        if (os.type != cs.type) {
          if (zero_slot(os) && zero_slot(cs)) continue;
          return false;
        }
        if (os.type[0] == Slot::Spill && !reg_safe(os.spilled, cs.spilled, ids, true)) return false;
        continue;
      }
      // A narrow spill: the same bytes, and the spilled value within.
      if ((os.type[0] == Slot::Spill && spill_size(os) < 8) || (cs.type[0] == Slot::Spill && spill_size(cs) < 8)) {
        for (size_t b = 0; b < 8; ++b)
          if (os.type[b] != Slot::Invalid && os.type[b] != cs.type[b]) return false;
        if (os.type[0] == Slot::Spill && !reg_safe(os.spilled, cs.spilled, ids, false)) return false;
        continue;
      }
      // Slots that read back as numbers compare as the numbers they read
      // back as: a spilled scalar, zero bytes (0), misc bytes (unknown).
      RegState ov, cv;
      if (slot_scalar(os, ov) && slot_scalar(cs, cv)) {
        if (!reg_safe(ov, cv, ids, false)) return false;
        continue;
      }
      if (os.type[0] == Slot::Spill) {
        if (cs.type[0] != Slot::Spill || !reg_safe(os.spilled, cs.spilled, ids, false)) return false;
        continue;
      }
      const bool cur_number = cs.type[0] == Slot::Spill && cs.spilled.type == RegType::Scalar;
      for (size_t b = 0; b < 8; ++b) {
        const Slot ot = os.type[b], ct = cs.type[b];
        if (ot == Slot::Invalid) continue;
        if (ot == Slot::Misc && (ct == Slot::Misc || ct == Slot::Zero || cur_number)) continue;
        if (ot == Slot::Zero && ct == Slot::Zero) continue;
        return false;
      }
    }
    return true;
  }

  static bool zero_slot(const StackSlot& s) {
    if (s.type[0] == Slot::Spill) return spill_size(s) == 8 && s.spilled.type == RegType::Scalar && s.spilled.is_known_zero();
    return s.zero_bytes();
  }

  static bool slot_scalar(const StackSlot& s, RegState& out) {
    if (s.type[0] == Slot::Spill) {
      out = s.spilled;
      return s.spilled.type == RegType::Scalar;
    }
    if (s.zero_bytes()) {
      out = RegState::known(0);
      return true;
    }
    if (std::all_of(s.type.begin(), s.type.end(), [](Slot t) { return t == Slot::Misc; })) {
      out = RegState::unknown();
      return true;
    }
    return false;
  }

  bool states_safe(const State& o, const State& c, bool exact) const {
    if (o.frames.size() != c.frames.size() || o.refs.size() != c.refs.size()) return false;
    if (o.lock_map != c.lock_map) return false;
    if (exact ? o.raw_len != c.raw_len : o.raw_len > c.raw_len) return false;
    IdMap ids;
    for (size_t f = 0; f < o.frames.size(); ++f) {
      const Frame& of = o.frames[f];
      const Frame& cf = c.frames[f];
      if (of.callsite != cf.callsite) return false;
      // Registers read later: in the running frame those live here; in a
      // caller only r6-r9 survive the return.
      const bool top = f + 1 == o.frames.size();
      const uint16_t live = top ? sh_.live[at_] : uint16_t(sh_.live[size_t(o.frames[f + 1].callsite) + 1] & 0x3c0);
      for (int r = 0; r < 10; ++r) {
        if (!exact && !(live & (1u << r))) continue;
        if (!reg_safe(of.regs[size_t(r)], cf.regs[size_t(r)], ids, exact)) return false;
      }
      if (!stack_safe(of, cf, ids, exact)) return false;
    }
    for (size_t k = 0; k < o.refs.size(); ++k)
      if (!ids.check(o.refs[k].id, c.refs[k].id)) return false;
    if (o.lock_map >= 0 && !ids.check(o.lock_id, c.lock_id)) return false;
    return true;
  }

  // --- precision (mark_chain_precision) ---
  // A check depends on scalar register `r` of the running frame: it and
  // everything it was computed from become precise in the stored states
  // the path came through.
  void demand_reg(Path& path, int r) {
    if (path.st.cur().regs[size_t(r)].type != RegType::Scalar) return;
    Demand d;
    d.regs[path.st.frames.size() - 1] |= uint16_t(1u << r);
    backtrack(path, d);
  }

  void propagate_precision(Path& path, const State& old) {
    Demand d;
    for (size_t f = 0; f < old.frames.size(); ++f) {
      const Frame& fr = old.frames[f];
      for (int r = 0; r < 10; ++r)
        if (fr.regs[size_t(r)].type == RegType::Scalar && fr.regs[size_t(r)].precise) d.regs[f] |= uint16_t(1u << r);
      for (size_t k = 0; k < fr.stack.size(); ++k)
        if (fr.stack[k].type[0] == Slot::Spill && fr.stack[k].spilled.type == RegType::Scalar &&
            fr.stack[k].spilled.precise)
          d.slots[f] |= uint64_t(1) << k;
    }
    if (!d.empty()) backtrack(path, d);
  }

  void backtrack(Path& path, Demand d) {
    walk_back(path.history, d);
    for (Node* n = path.parent; n && !d.empty(); n = n->parent) {
      if (n->marks.n) {
        MarksView v{n->marks};
        mark_in(v, d);
      } else {
        StateView v{n->st};
        mark_in(v, d);
      }
      if (d.empty()) break;
      walk_back(n->history, d);
    }
  }

  // What mark_in reads and writes of a stored node: its whole state, or
  // the marks a node out of the visited lists keeps (Marks).
  struct StateView {
    State& st;
    size_t frames() const { return st.frames.size(); }
    bool scalar(size_t f, int r) const { return st.frames[f].regs[size_t(r)].type == RegType::Scalar; }
    bool precise(size_t f, int r) const { return st.frames[f].regs[size_t(r)].precise; }
    void set_precise(size_t f, int r) { st.frames[f].regs[size_t(r)].precise = true; }
    uint32_t id(size_t f, int r) const { return st.frames[f].regs[size_t(r)].id; }
    // Marks slot k precise when it holds a number not yet precise: a spilled
    // scalar, or zero bytes, which become a spilled precise 0.
    bool mark_slot(size_t f, size_t k) {
      std::vector<StackSlot>& stack = st.frames[f].stack;
      if (k >= stack.size()) return false;
      StackSlot& slot = stack[k];
      if (slot.zero_bytes()) {
        slot.type.fill(Slot::Spill);
        slot.spilled = RegState::known(0);
        slot.spilled.precise = true;
        return true;
      }
      if (slot.type[0] != Slot::Spill || slot.spilled.type != RegType::Scalar || slot.spilled.precise) return false;
      slot.spilled.precise = true;
      return true;
    }
  };
  struct MarksView {
    Marks& m;
    size_t frames() const { return m.n; }
    bool scalar(size_t f, int r) const { return (m.frames[f].scalar >> r) & 1; }
    bool precise(size_t f, int r) const { return (m.frames[f].precise >> r) & 1; }
    void set_precise(size_t f, int r) { m.frames[f].precise |= uint16_t(1u << r); }
    uint32_t id(size_t f, int r) const { return m.frames[f].id[size_t(r)]; }
    bool mark_slot(size_t f, size_t k) {
      Marks::FrameMarks& fm = m.frames[f];
      const uint64_t bit = uint64_t(1) << k;
      if (!(fm.slot_scalar & bit) || (fm.slot_precise & bit)) return false;
      fm.slot_precise |= bit;
      return true;
    }
  };

  // Marks the demanded values precise in a stored state; a value already
  // precise there was already propagated further up, so it leaves the demand.
  // Scalars linked to a precise one (copies sharing its id, refined together
  // by branches) become precise with it, so that pruning demands the same
  // links of a later state.
  template <class View>
  static void mark_in(View& st, Demand& d) {
    mark_demanded(st, d);
    for (bool grew = true; grew;) {
      grew = false;
      std::array<uint32_t, kMaxCallDepth * 10> ids;
      size_t n_ids = 0;
      for (size_t f = 0; f < st.frames() && f < d.regs.size(); ++f)
        for (int r = 0; r < 10; ++r)
          if ((d.regs[f] >> r) & 1)
            if (uint32_t id = st.id(f, r)) ids[n_ids++] = id;
      if (n_ids == 0) return;
      Demand more;
      for (size_t f = 0; f < st.frames() && f < d.regs.size(); ++f)
        for (int r = 0; r < 10; ++r) {
          const uint32_t id = st.id(f, r);
          const bool linked = id && std::find(ids.begin(), ids.begin() + n_ids, id) != ids.begin() + n_ids;
          if (linked && st.scalar(f, r) && !st.precise(f, r))
            more.regs[f] |= uint16_t(1u << r);
        }
      if (more.empty()) return;
      mark_demanded(st, more);
      for (size_t f = 0; f < d.regs.size(); ++f) d.regs[f] |= more.regs[f];
      grew = true;
    }
  }

  template <class View>
  static void mark_demanded(View& st, Demand& d) {
    for (size_t f = 0; f < d.regs.size(); ++f) {
      if (f >= st.frames()) {
        d.regs[f] = 0, d.slots[f] = 0;
        continue;
      }
      for (int r = 0; r < 10; ++r) {
        const uint16_t bit = uint16_t(1u << r);
        if (!(d.regs[f] & bit)) continue;
        if (!st.scalar(f, r) || st.precise(f, r)) d.regs[f] &= uint16_t(~bit);
        else st.set_precise(f, r);
      }
      for (uint64_t rest = d.slots[f]; rest; rest &= rest - 1) {
        const size_t k = size_t(std::countr_zero(rest));
        if (!st.mark_slot(f, k)) d.slots[f] &= ~(uint64_t(1) << k);
      }
    }
  }

  void walk_back(const std::vector<Step>& history, Demand& d) const {
    for (auto it = history.rbegin(); it != history.rend() && !d.empty(); ++it) backtrack_insn(*it, d);
  }

  // backtrack_insn: what the demanded values were before one instruction.
  void backtrack_insn(const Step& e, Demand& d) const {
    const Insn& in = p_.insns[e.insn];
    const size_t f = e.frame;
    uint16_t& regs = d.regs[f];
    auto has = [&](int r) { return (regs >> r) & 1; };
    auto set = [&](int r) { regs |= uint16_t(1u << r); };
    auto clear = [&](int r) { regs &= uint16_t(~(1u << r)); };
    auto slot_bit = [&]() -> uint64_t { return e.slot >= 0 ? uint64_t(1) << e.slot : 0; };
    switch (class_of(in.opcode)) {
      case ALU:
      case ALU64: {
        if (!has(in.dst)) return;
        const uint8_t op = op_of(in);
        if (op == MOV) {
          clear(in.dst);
          if (is_reg_source(in)) set(in.src);
        } else if (op != NEG && op != END && is_reg_source(in)) {
          set(in.src);
        }
        return;
      }
      case LDX:
        if (!has(in.dst)) return;
        clear(in.dst);
        if (e.slot >= 0) d.slots[e.slot_frame] |= slot_bit();
        return;
      case ST:
      case STX:
        if (e.slot < 0 || !(d.slots[e.slot_frame] & slot_bit())) {
          if (mode_of(in.opcode) == ATOMIC) {
            if (in.imm == ATOMIC_CMPXCHG) clear(0);
            else if (in.imm & FETCH) clear(in.src);
          }
          return;
        }
        d.slots[e.slot_frame] &= ~slot_bit();
        if (class_of(in.opcode) == STX && mode_of(in.opcode) == MEM) set(in.src);  // the spilled register
        if (mode_of(in.opcode) == ATOMIC) {
          if (in.imm == ATOMIC_CMPXCHG) clear(0);
          else if (in.imm & FETCH) clear(in.src);
        }
        return;
      case LD: clear(in.dst); return;
      case JMP:
      case JMP32: {
        const uint8_t op = op_of(in);
        if (op == CALL && class_of(in.opcode) == JMP) {
          if (in.src == CALL_LOCAL && !is_reg_source(in) && sh_.global[sh_.func_of[*branch_target(in, e.insn)]]) {
            regs &= uint16_t(~0x3f);  // a global function's result is a fresh number; its arguments needed none
          } else if (in.src == CALL_LOCAL && !is_reg_source(in)) {
            // Backwards out of the callee: its arguments were the caller's r1-r5.
            if (f + 1 < d.regs.size()) {
              regs |= uint16_t(d.regs[f + 1] & 0x3e);
              d.regs[f + 1] = 0, d.slots[f + 1] = 0;
            }
          } else {
            regs &= uint16_t(~0x3f);  // a helper's result, and the registers it clobbered
            // Backwards out of a callback: its arguments are fresh (the
            // index) or pointers (map, key, value, context), nothing to carry back.
            const uint32_t id = uint32_t(in.imm);
            if ((id == HELPER_LOOP || id == HELPER_FOR_EACH_MAP_ELEM) && f + 1 < d.regs.size())
              d.regs[f + 1] = 0, d.slots[f + 1] = 0;
          }
          return;
        }
        if (op == EXIT) {
          // Backwards into the callee from its return: the caller's r0 is its r0.
          if (f > 0 && (d.regs[f - 1] & 1)) {
            d.regs[f - 1] &= uint16_t(~1u);
            d.regs[f] = 1;
            d.slots[f] = 0;
          }
          if (f > 0) d.regs[f - 1] &= uint16_t(~0x3eu);
          return;
        }
        if (op != JA && is_reg_source(in) && (has(in.dst) || has(in.src))) set(in.dst), set(in.src);
        return;
      }
    }
  }

  // --- registers ---
  RegState& reg(Path& path, int r) { return path.st.cur().regs[size_t(r)]; }
  const RegState& read_reg(Path& path, int r) {
    const RegState& v = reg(path, r);
    if (v.type == RegType::NotInit) fail(fmt::format("R{} !read_ok", r));
    return v;
  }
  void write_reg(Path& path, int r, const RegState& v) {
    if (r == kFramePointer) fail("frame pointer is read only");
    reg(path, r) = v;
  }

  uint32_t new_id() { return ++sh_.id_gen; }

  // Every register and spilled register of the state, in every frame.
  template <typename Fn>
  static void for_each_reg(State& st, Fn&& fn) {
    for (Frame& f : st.frames) {
      for (RegState& r : f.regs) fn(r);
      for (StackSlot& s : f.stack)
        if (s.type[0] == Slot::Spill) fn(s.spilled);
    }
  }

  // --- one instruction; false when the path ends ---
  bool step(Path& path) {
    const Insn& in = p_.insns[at_];
    switch (class_of(in.opcode)) {
      case ALU:
      case ALU64: alu(path, in); path.insn = at_ + 1; return true;
      case LDX: load(path, in); path.insn = at_ + 1; return true;
      case ST:
      case STX:
        if (mode_of(in.opcode) == ATOMIC)
          atomic(path, in);
        else
          store(path, in);
        path.insn = at_ + 1;
        return true;
      case LD: lddw(path, in); path.insn = at_ + 2; return true;
      case JMP:
      case JMP32: return jump(path, in);
    }
    fail("unknown instruction class");
  }

  // --- ALU ---
  void alu(Path& path, const Insn& in) {
    const bool is64 = class_of(in.opcode) == ALU64;
    const Width w{is64 ? 64u : 32u};
    const uint8_t op = op_of(in);
    RegState src;
    if (op != NEG && op != END) {
      if (is_reg_source(in))
        src = read_reg(path, in.src);
      else
        src = RegState::known(is64 ? uint64_t(int64_t(in.imm)) : uint64_t(uint32_t(in.imm)));
    }
    if (op == MOV) return mov(path, in, src, is64);
    const RegState dst = read_reg(path, in.dst);
    if (op == NEG || op == END) return unary(path, in, dst, is64);
    if (is_pointer(dst.type) || is_pointer(src.type)) return pointer_alu(path, in, dst, src, is64);
    write_reg(path, in.dst, scalar_alu(op, in.off, dst, src, w));
  }

  void mov(Path& path, const Insn& in, const RegState& src, bool is64) {
    RegState out = src;
    if (in.off != 0) {  // movsx: sign-extend the low `off` bits
      const unsigned bits = unsigned(in.off);
      if (src.is_const()) {
        const int64_t v = bits == 8 ? int8_t(src.const_value()) : bits == 16 ? int16_t(src.const_value())
                                                                               : int32_t(src.const_value());
        out = RegState::known(is64 ? uint64_t(v) : uint64_t(uint32_t(v)));
      } else {
        out = RegState::unknown();
        out.smin = -(int64_t(1) << (bits - 1)), out.smax = (int64_t(1) << (bits - 1)) - 1;
        if (!is64) {
          out.s32_min = int32_t(out.smin), out.s32_max = int32_t(out.smax);
          out.smin = kS64Min, out.smax = kS64Max;
          out.sync();
          out.zext32();
        }
        out.sync();
      }
      write_reg(path, in.dst, out);
      return;
    }
    if (!is64) {
      if (is_pointer(src.type)) {
        out = RegState::unknown();  // partial copy of a pointer: a number (allowed as root)
        out.var_off = Tnum::unknown().subreg();
        out.mark_unbounded();
        out.umax = out.u32_max;
        out.sync();
      } else {
        out.id = 0;
        out.zext32();
        out.sync();
      }
      write_reg(path, in.dst, out);
      return;
    }
    if (is_reg_source(in) && src.type == RegType::Scalar) {
      // Copies share an id, so that a branch on one bounds both.
      RegState& s = reg(path, in.src);
      if (s.id == 0 && !s.is_const()) s.id = new_id();
      out = s;
    }
    write_reg(path, in.dst, out);
  }

  void unary(Path& path, const Insn& in, const RegState& dst, bool is64) {
    const uint8_t op = op_of(in);
    RegState out = RegState::unknown();
    if (is_pointer(dst.type)) {
      write_reg(path, in.dst, out);  // a pointer's bytes as a number (allowed as root)
      return;
    }
    const uint64_t v = dst.const_value();
    if (op == NEG) {
      if (dst.is_const()) out = RegState::known(is64 ? uint64_t(0) - v : uint64_t(uint32_t(-uint32_t(v))));
      else if (!is64) out.var_off = Tnum::unknown().subreg(), out.sync();
      write_reg(path, in.dst, out);
      return;
    }
    // END: le16/le32/le64 truncate (a little-endian host), be and bswap swap.
    const unsigned bits = unsigned(in.imm);
    const bool swap = is64 || (in.opcode & TO_BE);
    if (!swap) {
      out.var_off = dst.var_off.cast(bits / 8);
      out.sync();
    } else if (dst.is_const()) {
      const uint64_t s = bits == 16 ? __builtin_bswap16(uint16_t(v)) : bits == 32 ? __builtin_bswap32(uint32_t(v))
                                                                              : __builtin_bswap64(v);
      out = RegState::known(s);
    } else {
      out.var_off = Tnum::unknown().cast(bits / 8);
      out.sync();
    }
    write_reg(path, in.dst, out);
  }

  // adjust_scalar_min_max_vals: both operands numbers.
  RegState scalar_alu(uint8_t op, int16_t off, const RegState& dst, const RegState& src, Width w) const {
    const Tnum a = w.tnum(dst), b = w.tnum(src);
    const Bounds ba = dst.bounds(w.bits), bb = src.bounds(w.bits);
    const bool src_known = b.is_const();
    RegState out = RegState::unknown();
    auto finish = [&](Tnum t, const Bounds& bounds) {
      out.mark_unbounded();
      if (w.bits == 64) {
        out.var_off = t;
        out.set_bounds(64, bounds);
        out.combine_64_into_32();
        if (!out.sync()) out = RegState::unknown();  // cannot happen for sound inputs; stay safe
      } else {
        out.var_off = t.subreg();
        out.set_bounds(32, bounds);
        if (!out.sync()) out = RegState::unknown();
        out.zext32();
        if (!out.sync()) out = RegState::unknown();
      }
      return out;
    };
    auto mask_width = [&](Tnum t) { return w.bits == 32 ? t.subreg() : t; };
    switch (op) {
      case ADD: {
        const Tnum t = mask_width(tnum_add(a, b));
        return finish(t, scalar_bounds(op, ba, bb, t, w));
      }
      case SUB: {
        const Tnum t = mask_width(tnum_sub(a, b));
        return finish(t, scalar_bounds(op, ba, bb, t, w));
      }
      case MUL: {
        const Tnum t = mask_width(tnum_mul(a, b));
        return finish(t, scalar_bounds(op, ba, bb, t, w));
      }
      case AND:
      case OR:
      case XOR: {
        const Tnum t = op == AND ? tnum_and(a, b) : op == OR ? tnum_or(a, b) : tnum_xor(a, b);
        return finish(t, scalar_bounds(op, ba, bb, t, w));
      }
      case LSH:
      case RSH:
      case ARSH: {
        // Shifts by an unknown amount or by the width or more: unknown.
        if (!src_known || bb.umax >= w.bits) return finish(w.bits == 32 ? Tnum::unknown().subreg() : Tnum::unknown(), w.unbounded());
        const unsigned s = unsigned(bb.umax);
        Bounds r = w.unbounded();
        Tnum t;
        if (op == LSH) {
          t = mask_width(tnum_lshift(a, s));
          if (s == 0 || (ba.umax >> (w.bits - s)) == 0) r.umin = ba.umin << s, r.umax = ba.umax << s;
        } else if (op == RSH) {
          t = tnum_rshift(a, s);
          r.umin = ba.umin >> s, r.umax = ba.umax >> s;
        } else {
          t = mask_width(tnum_arshift(a, s, w.bits));
          r.smin = ba.smin >> s, r.smax = ba.smax >> s;
        }
        return finish(t, r);
      }
      case DIV:
      case MOD: {
        const bool is_signed = off == 1;
        if (dst.is_const() && src_known) {
          const uint64_t x = a.value, y = b.value;
          uint64_t r;
          if (w.bits == 64) {
            if (is_signed) {
              const int64_t sx = int64_t(x), sy = int64_t(y);
              if (op == DIV) r = sy == 0 ? 0 : (sy == -1 ? uint64_t(-uint64_t(sx)) : uint64_t(sx / sy));
              else r = sy == 0 ? x : (sy == -1 ? 0 : uint64_t(sx % sy));
            } else {
              r = op == DIV ? (y == 0 ? 0 : x / y) : (y == 0 ? x : x % y);
            }
          } else {
            const uint32_t x32 = uint32_t(x), y32 = uint32_t(y);
            uint32_t r32;
            if (is_signed) {
              const int32_t sx = int32_t(x32), sy = int32_t(y32);
              if (op == DIV) r32 = sy == 0 ? 0 : (sy == -1 ? uint32_t(-x32) : uint32_t(sx / sy));
              else r32 = sy == 0 ? x32 : (sy == -1 ? 0 : uint32_t(sx % sy));
            } else {
              r32 = op == DIV ? (y32 == 0 ? 0 : x32 / y32) : (y32 == 0 ? x32 : x32 % y32);
            }
            r = r32;
          }
          return RegState::known(r);
        }
        Bounds r = w.unbounded();
        if (!is_signed && src_known && b.value != 0) {
          if (op == DIV) r.umin = ba.umin / b.value, r.umax = ba.umax / b.value;
          else r.umin = 0, r.umax = std::min(ba.umax, b.value - 1);
        }
        return finish(w.bits == 32 ? Tnum::unknown().subreg() : Tnum::unknown(), r);
      }
      default: break;
    }
    return finish(w.bits == 32 ? Tnum::unknown().subreg() : Tnum::unknown(), w.unbounded());
  }

  // adjust_ptr_min_max_vals, as the kernel allows it to a privileged program.
  void pointer_alu(Path& path, const Insn& in, const RegState& dst, const RegState& src, bool is64) {
    const uint8_t op = op_of(in);
    const bool dst_ptr = is_pointer(dst.type), src_ptr = is_pointer(src.type);
    if (!is64) {
      if (op == SUB) return write_reg(path, in.dst, RegState::unknown());  // a meaningless number
      fail(fmt::format("R{} 32-bit pointer arithmetic prohibited", dst_ptr ? in.dst : in.src));
    }
    if (dst_ptr && src_ptr) {
      if (op == SUB) return write_reg(path, in.dst, RegState::unknown());  // pointer difference: a number
      fail(fmt::format("R{} pointer {} pointer prohibited", in.dst, alu_name(op)));
    }
    const RegState& ptr = dst_ptr ? dst : src;
    const RegState& k = dst_ptr ? src : dst;
    const int ptr_reg = dst_ptr ? in.dst : in.src;
    if (is_nullable(ptr.type))
      fail(fmt::format("R{} pointer arithmetic on {} prohibited, null-check it first", ptr_reg,
                       reg_type_name(ptr.type)));
    // A map handle plus a known 0 is the handle (the kernel allows it).
    if (ptr.type == RegType::MapHandle && op == ADD && k.is_const() && k.const_value() == 0)
      return write_reg(path, in.dst, ptr);
    if (ptr.type == RegType::MapHandle || ptr.type == RegType::PacketEnd || ptr.type == RegType::Func)
      fail(fmt::format("R{} pointer arithmetic on {} prohibited", ptr_reg, reg_type_name(ptr.type)));
    if (op != ADD && op != SUB) {
      if (op == AND || op == OR || op == XOR)
        fail(fmt::format("R{} bitwise operator {} on pointer prohibited", in.dst, alu_name(op)));
      fail(fmt::format("R{} pointer arithmetic with {} operator prohibited", in.dst, alu_name(op)));
    }
    if (op == SUB && !dst_ptr) fail(fmt::format("R{} tried to subtract pointer from scalar", in.dst));
    // As the kernel: no subtraction from a stack pointer (JITs may not deal with it).
    if (op == SUB && ptr.type == RegType::Stack)
      fail(fmt::format("R{} subtraction from stack pointer prohibited", in.dst));
    const bool raw = ptr.type == RegType::RawMem;
    if (!raw && is_reg_source(in)) demand_reg(path, dst_ptr ? in.src : in.dst);
    if (!raw) {
      if (k.is_const() && (int64_t(k.const_value()) >= kMaxVarOff || int64_t(k.const_value()) <= -kMaxVarOff))
        fail(fmt::format("math between {} pointer and {} is not allowed", reg_type_name(ptr.type),
                         int64_t(k.const_value())));
      if (!k.is_const() && k.smin <= -kMaxVarOff)
        fail(fmt::format("math between {} pointer and register with unbounded min value is not allowed",
                         reg_type_name(ptr.type)));
    }
    RegState out = ptr;
    const int64_t kval = int64_t(k.const_value());
    // Wrapping (no signed overflow): a sum beyond int64 is no 32-bit offset either.
    const int64_t new_off = int64_t(op == ADD ? uint64_t(int64_t(ptr.off)) + uint64_t(kval)
                                              : uint64_t(int64_t(ptr.off)) - uint64_t(kval));
    if (k.is_const() && new_off == int64_t(int32_t(new_off))) {
      out.off = int32_t(new_off);
    } else {
      // A variable part (or an offset past 32 bits): into var_off and the bounds.
      RegState var = ptr;
      var.type = RegType::Scalar;
      var.id = 0;
      RegState sum = scalar_alu(op, 0, var, k, Width{64});
      out.var_off = sum.var_off;
      out.smin = sum.smin, out.smax = sum.smax, out.umin = sum.umin, out.umax = sum.umax;
      out.s32_min = sum.s32_min, out.s32_max = sum.s32_max, out.u32_min = sum.u32_min, out.u32_max = sum.u32_max;
      if (is_packet(ptr.type)) {
        out.id = new_id();  // something was added to a packet pointer: its range is unknown
        out.range = 0;
      }
    }
    if (!raw && (out.off >= kMaxVarOff || out.off <= -kMaxVarOff))
      fail(fmt::format("{} pointer offset {} is not allowed", reg_type_name(ptr.type), out.off));
    if (is_packet(out.type) && (out.umax > kMaxPacketOff || out.umax + uint64_t(std::max(out.off, 0)) > kMaxPacketOff))
      fail(fmt::format("R{} pointer arithmetic on {}: value makes the pointer out of bounds", in.dst,
                       reg_type_name(out.type)));
    write_reg(path, in.dst, out);
  }

  // --- memory ---
  enum class Access : uint8_t { Read, Write, Atomic };

  // Whether an access of `size` bytes at raw pointer `ptr` + off lies,
  // for every value of the pointer, inside the length the path proved.
  static bool raw_inside(const State& st, const RegState& ptr, int32_t off, unsigned size) {
    if (st.raw_len == 0 || ptr.smin < 0 || ptr.umax > (uint64_t(1) << 32)) return false;
    const int64_t lo = int64_t(ptr.off) + off + ptr.smin;
    const int64_t hi = int64_t(ptr.off) + off + int64_t(ptr.umax) + int64_t(size);
    return lo >= 0 && uint64_t(hi) <= st.raw_len;
  }

  void note_proven(bool proven) {
    uint8_t& v = sh_.result.proven[at_];
    if (!proven) v = 2;
    else if (v == 0) v = 1;
  }

  // The stack slot state of frame `f` at byte offset `o` (negative) and
  // whether it exists.
  Frame& frame_of(Path& path, const RegState& ptr) { return path.st.frames[ptr.frame]; }

  void touch_depth(const RegState& ptr, const Path& path, int64_t lowest) {
    const uint32_t func = path.st.frames[ptr.frame].func;
    sh_.depth[func] = std::max<uint32_t>(sh_.depth[func], uint32_t(-lowest));
  }

  // How many bytes from the slot's start a spill covers: 8 for a register
  // spilled whole, 1, 2 or 4 for a scalar stored narrower at the slot's
  // start (the kernel's save_register_state of `size` bytes), 0 for none.
  static unsigned spill_size(const StackSlot& s) {
    unsigned n = 0;
    while (n < 8 && s.type[n] == Slot::Spill) ++n;
    return n;
  }

  // A spilled scalar `r` read back as `size` bytes from the slot's start:
  // itself when its value fits (coerce_reg_to_size), else any number of
  // that size.
  static RegState narrow_fill(RegState r, unsigned size, bool sign) {
    if (size == 8) return r;
    const unsigned bits = size * 8;
    const bool fits = sign ? r.smin >= -(int64_t(1) << (bits - 1)) && r.smax < (int64_t(1) << (bits - 1))
                           : r.umax < (uint64_t(1) << bits);
    if (!fits) return loaded_scalar(size, sign);
    r.id = 0;
    return r;
  }

  static Slot& slot_byte(Frame& f, int64_t o) {
    const size_t k = size_t((-o - 1) / 8);
    if (f.stack.size() <= k) f.stack.resize(k + 1);
    return f.stack[k].type[size_t((o + int64_t(8) * int64_t(k + 1)) % 8)];
  }
  static Slot byte_at(const Frame& f, int64_t o) {
    const size_t k = size_t((-o - 1) / 8);
    if (f.stack.size() <= k) return Slot::Invalid;
    return f.stack[k].type[size_t((o + int64_t(8) * int64_t(k + 1)) % 8)];
  }
  // Drops the spilled register of the slot holding byte `o` (its bytes become misc).
  static void break_spill(Frame& f, int64_t o) {
    const size_t k = size_t((-o - 1) / 8);
    if (f.stack.size() <= k || f.stack[k].type[0] != Slot::Spill) return;
    f.stack[k].type.fill(Slot::Misc);
    f.stack[k].spilled = {};
  }

  // The stack bytes [lo, hi) an access of `size` through `ptr` + insn off
  // may touch, checked against the frame.
  std::pair<int64_t, int64_t> stack_extent(const RegState& ptr, int regno, int32_t off, unsigned size, Access acc) {
    const char* what = acc == Access::Read ? "read from" : "write to";
    const int64_t fixed = int64_t(ptr.off) + off;
    if (ptr.var_off.is_const()) {
      const int64_t o = fixed + int64_t(ptr.var_off.value);
      if (o < -kStackSize || o + int64_t(size) > 0)
        fail(fmt::format("invalid {} stack R{} off={} size={}", what, regno, o, size));
      if (o % int64_t(size) != 0)
        fail(fmt::format("misaligned stack access off {}+{}+{} size {}", ptr.var_off.str(), ptr.off, off, size));
      return {o, o + int64_t(size)};
    }
    if (ptr.smin <= -kMaxVarOff || ptr.smax >= kMaxVarOff)
      fail(fmt::format("invalid unbounded variable-offset {} stack R{}", what, regno));
    const int64_t lo = fixed + ptr.smin, hi = fixed + ptr.smax + int64_t(size);
    if (lo < -kStackSize || hi > 0)
      fail(fmt::format("invalid variable-offset {} stack R{} var_off={} off={} size={}", what, regno,
                       ptr.var_off.str(), off, size));
    const Tnum at = tnum_add(ptr.var_off, Tnum::constant(uint64_t(fixed)));
    if ((at.value | at.mask) & (size - 1) && size > 1)
      fail(fmt::format("misaligned variable stack access off {}+{}+{} size {}", ptr.var_off.str(), ptr.off, off, size));
    return {lo, hi};
  }

  // A read of [lo, hi) on the stack: every byte written.
  void check_stack_init(const Frame& f, int regno, int64_t lo, int64_t hi, unsigned size) {
    for (int64_t o = lo; o < hi; ++o)
      if (byte_at(f, o) == Slot::Invalid)
        fail(fmt::format("invalid read from stack R{} off {}+{} size {} (stack byte fp{} not written)", regno, lo,
                         o - lo, size, o));
  }

  RegState stack_read(Path& path, const RegState& ptr, int regno, int32_t off, unsigned size, bool sign) {
    Frame& f = frame_of(path, ptr);
    auto [lo, hi] = stack_extent(ptr, regno, off, size, Access::Read);
    touch_depth(ptr, path, lo);
    check_stack_init(f, regno, lo, hi, size);
    if (ptr.var_off.is_const()) {
      const size_t k = size_t((-lo - 1) / 8);
      const StackSlot& s = f.stack[k];
      step_.slot = int8_t(k), step_.slot_frame = ptr.frame;
      if (s.type[0] == Slot::Spill) {
        const unsigned spilled = spill_size(s);
        if (size == 8 && spilled == 8) return s.spilled;
        if (s.spilled.type != RegType::Scalar)
          fail(fmt::format("invalid size of register fill: {} bytes of a spilled {}", size,
                           reg_type_name(s.spilled.type)));
        // A narrow fill from the slot's start reads the spilled value's low bytes.
        if (lo == -int64_t(8) * int64_t(k + 1) && size <= spilled) return narrow_fill(s.spilled, size, sign);
        bool all_spill = true;
        for (int64_t o = lo; o < hi; ++o) all_spill &= byte_at(f, o) == Slot::Spill;
        if (all_spill && s.spilled.is_known_zero()) return RegState::known(0);
      } else {
        bool zero = true;
        for (int64_t o = lo; o < hi; ++o) zero &= byte_at(f, o) == Slot::Zero;
        if (zero) return RegState::known(0);
      }
    }
    return loaded_scalar(size, sign);
  }

  void stack_write(Path& path, const RegState& ptr, int regno, int32_t off, unsigned size, const RegState* value,
                   Access acc) {
    Frame& f = frame_of(path, ptr);
    auto [lo, hi] = stack_extent(ptr, regno, off, size, acc);
    touch_depth(ptr, path, lo);
    if (value && acc == Access::Write && is_pointer(value->type) && ptr.var_off.is_const()) {
      // check_stack_write_fixed_off: a pointer is spilled whole, and a
      // stack pointer only into its own function's frame.
      if (size != 8) fail("invalid size of register spill");
      if (value->type == RegType::Stack && ptr.frame + 1u != path.st.frames.size())
        fail("cannot spill pointers to stack into stack frame of the caller");
    }
    if (!ptr.var_off.is_const()) {
      for (int64_t o = lo; o < hi; ++o) break_spill(f, o);
      for (int64_t o = lo; o < hi; ++o) slot_byte(f, o) = Slot::Misc;
      return;
    }
    const size_t k = size_t((-lo - 1) / 8);
    step_.slot = int8_t(k), step_.slot_frame = ptr.frame;
    if (value && size == 8 && acc == Access::Write && (value->type != RegType::Scalar || !value->is_known_zero())) {
      slot_byte(f, lo);
      f.stack[k].spilled = *value;
      f.stack[k].type.fill(Slot::Spill);
      return;
    }
    if (value && size < 8 && acc == Access::Write && value->type == RegType::Scalar && !value->is_known_zero() &&
        lo == -int64_t(8) * int64_t(k + 1)) {
      // A narrow scalar spill at the slot's start: its bytes keep the
      // register (read back whole by a fill no wider), the slot's other
      // bytes are numbers (zero bytes stay zero, unwritten ones unwritten).
      slot_byte(f, lo);
      StackSlot& slot = f.stack[k];
      const bool was_spill = slot.type[0] == Slot::Spill;
      for (size_t b = 0; b < 8; ++b) {
        if (b < size) slot.type[b] = Slot::Spill;
        else if (was_spill && slot.type[b] == Slot::Spill) slot.type[b] = Slot::Misc;
      }
      slot.spilled = *value;
      return;
    }
    const bool zero = acc == Access::Write && value && value->is_known_zero();
    break_spill(f, lo);
    for (int64_t o = lo; o < hi; ++o) slot_byte(f, o) = zero ? Slot::Zero : Slot::Misc;
  }

  // An unknown number of `size` bytes, zero- or sign-extended.
  static RegState loaded_scalar(unsigned size, bool sign) {
    RegState r = RegState::unknown();
    if (size == 8) return r;
    if (sign) {
      r.smin = -(int64_t(1) << (size * 8 - 1));
      r.smax = (int64_t(1) << (size * 8 - 1)) - 1;
    } else {
      r.var_off = Tnum::unknown().cast(size);
    }
    r.sync();
    return r;
  }

  // An object of `limit` bytes at the pointer's base (map value, helper
  // memory): [off + var, off + var + size) inside it.
  void check_region(const RegState& ptr, int regno, int32_t off, unsigned size, uint64_t limit, const char* what,
                    const char* limit_name) {
    if (ptr.smin < 0)
      fail(fmt::format("R{} min value is negative, either use unsigned index or do a if (index >=0) check.", regno));
    if (ptr.umax >= uint64_t(kMaxVarOff))
      fail(fmt::format("R{} unbounded memory access, make sure to bounds check any such access", regno));
    const int64_t lo = int64_t(ptr.off) + off + ptr.smin;
    const int64_t hi = int64_t(ptr.off) + off + int64_t(ptr.umax) + int64_t(size);
    if (lo < 0 || hi > int64_t(limit)) {
      if (ptr.var_off.is_const())
        fail(fmt::format("invalid access to {}, {}={} off={} size={}", what, limit_name, limit, lo, size));
      fail(fmt::format("invalid access to {}, {}={} off={} size={} (R{} var_off={}, smin={}, umax={})", what,
                       limit_name, limit, lo < 0 ? lo : hi - int64_t(size), size, regno, ptr.var_off.str(), ptr.smin,
                       ptr.umax));
    }
  }

  void check_packet(const RegState& ptr, int regno, int32_t off, unsigned size, Access acc) {
    if (!type_.direct_packet_access)
      fail(fmt::format("R{} cannot access packet memory directly in a {} program", regno, type_.name));
    if (ptr.smin < 0)
      fail(fmt::format("R{} min value is negative, either use unsigned index or do a if (index >=0) check.", regno));
    const int64_t o = int64_t(ptr.off) + off;
    if (o < 0 || o + int64_t(size) > int64_t(ptr.range))
      fail(fmt::format("R{} invalid access to {}, off={} size={}, R{} range={} (compare with {} first)", regno,
                       ptr.type == RegType::PacketMeta ? "packet metadata" : "packet", o, size, regno, ptr.range,
                       ptr.type == RegType::PacketMeta ? "data" : "data_end"));
    (void)acc;
  }

  RegState ctx_access(const RegState& ptr, int regno, int32_t off, unsigned size, Access acc, bool sign) {
    if (acc == Access::Atomic)
      fail(fmt::format("BPF_ATOMIC stores into R{} ctx is not allowed", regno));
    if (ptr.off != 0 || !ptr.var_off.is_const() || ptr.var_off.value != 0)
      fail(fmt::format("dereference of modified ctx ptr R{} off={} disallowed", regno,
                       ptr.var_off.is_const() ? int64_t(ptr.off) + int64_t(ptr.var_off.value) : int64_t(ptr.off)));
    const ContextLayout& ctx = type_.ctx;
    const bool write = acc == Access::Write;
    auto refuse = [&] { fail(fmt::format("invalid bpf_context access off={} size={}", off, size)); };
    if (off < 0 || uint64_t(off) + size > ctx.size || off % int32_t(size) != 0) refuse();
    if (ctx.fields.empty()) {
      if (write && !ctx.writable) refuse();
      return loaded_scalar(size, false);
    }
    const CtxField* f = ctx.field_at(uint32_t(off));
    if (!f || uint32_t(off) + size > uint32_t(f->offset) + f->size) refuse();
    if (write ? !f->write : !f->read)
      fail(fmt::format("invalid bpf_context access off={} size={} (field {} may not be {} by {} programs)", off,
                       size, f->name, write ? "written" : "read", type_.name));
    const bool whole = uint32_t(off) == f->offset && size == f->size;
    if (!whole && (!f->narrow || f->value != CtxValue::Scalar))
      fail(fmt::format("invalid bpf_context access off={} size={} ({} is read as {} bytes)", off, size, f->name,
                       f->size));
    if (!whole && write && !f->narrow_write && !ctx.fields.empty() && ctx.rewritten)
      fail(fmt::format("invalid bpf_context access off={} size={} ({} is written as {} bytes)", off, size, f->name,
                       f->size));
    if (sign && ctx.rewritten)
      fail(fmt::format("sign-extending load of context field {} is not supported", f->name));
    if (ctx.rewritten) sh_.result.ctx_fields[at_] = f;
    switch (f->value) {
      case CtxValue::Scalar: return loaded_scalar(size, false);
      case CtxValue::PacketData: return RegState::pointer(RegType::Packet);
      case CtxValue::PacketEnd: return RegState::pointer(RegType::PacketEnd);
      case CtxValue::PacketMeta: return RegState::pointer(RegType::PacketMeta);
    }
    fail(fmt::format("invalid bpf_context access off={} size={}", off, size));
  }

  // check_mem_access: a load (returns the value), store or atomic of `size`
  // bytes at register `regno` + off.
  RegState mem_access(Path& path, int regno, int32_t off, unsigned size, Access acc, const RegState* value,
                      bool sign) {
    const RegState ptr = read_reg(path, regno);
    if (is_pointer(ptr.type)) {
      const uint8_t kind = ptr.type == RegType::Ctx ? 1 : 2;
      uint8_t& seen = sh_.ptr_kind[at_];
      if (seen && seen != kind) fail("same insn cannot be used with different pointers");
      seen = kind;
    }
    switch (ptr.type) {
      case RegType::RawMem:
        note_proven(raw_inside(path.st, ptr, off, size));
        return loaded_scalar(size, sign);
      case RegType::Stack: {
        note_proven(true);
        if (acc == Access::Read) return stack_read(path, ptr, regno, off, size, sign);
        // An atomic's fetched value is what the slot held (a spilled
        // constant or pointer comes back as itself); the slot is a number after.
        RegState old = acc == Access::Atomic ? stack_read(path, ptr, regno, off, size, sign) : loaded_scalar(size, sign);
        stack_write(path, ptr, regno, off, size, value, acc);
        return old;
      }
      case RegType::MapValue: {
        const MapUse& m = sh_.maps[size_t(ptr.map)];
        if (acc == Access::Atomic) check_atomic_align(ptr, regno, off, size);
        check_region(ptr, regno, off, size, m.value_size, "map value", "value_size");
        if (acc != Access::Read && read_only_for_programs(m))
          fail(fmt::format("write into map forbidden, value_size={} off={} size={}", m.value_size, off, size));
        if (m.spin_lock_offset >= 0) {  // check_map_access: the lock word is the helpers' alone
          const int64_t lo = int64_t(ptr.off) + off + ptr.smin, hi = int64_t(ptr.off) + off + ptr.smax + size;
          if (lo < m.spin_lock_offset + 4 && hi > m.spin_lock_offset)
            fail("bpf_spin_lock cannot be accessed directly by load/store");
        }
        note_proven(true);
        return loaded_scalar(size, sign);
      }
      case RegType::Mem:
        if (acc == Access::Atomic) check_atomic_align(ptr, regno, off, size);
        check_region(ptr, regno, off, size, ptr.mem_size, "memory", "mem_size");
        note_proven(true);
        return loaded_scalar(size, sign);
      case RegType::Packet:
      case RegType::PacketMeta:
        if (acc == Access::Atomic)
          fail(fmt::format("BPF_ATOMIC stores into R{} {} is not allowed", regno, reg_type_name(ptr.type)));
        check_packet(ptr, regno, off, size, acc);
        note_proven(true);
        return loaded_scalar(size, sign);
      case RegType::Ctx: {
        RegState v = ctx_access(ptr, regno, off, size, acc, sign);
        note_proven(true);
        if (sign && v.type == RegType::Scalar) v = loaded_scalar(size, true);
        return v;
      }
      default:
        fail(fmt::format("R{} invalid mem access '{}'", regno, reg_type_name(ptr.type)));
    }
  }

  void check_atomic_align(const RegState& ptr, int regno, int32_t off, unsigned size) {
    const Tnum at = tnum_add(ptr.var_off, Tnum::constant(uint64_t(int64_t(ptr.off) + off)));
    if ((at.value | at.mask) & (size - 1))
      fail(fmt::format("misaligned access off {}+{}+{} size {} (atomics must be aligned)", ptr.var_off.str(), ptr.off,
                       off, size));
  }

  void load(Path& path, const Insn& in) {
    const unsigned size = size_bytes(in.opcode);
    const RegState v = mem_access(path, in.src, in.off, size, Access::Read, nullptr, mode_of(in.opcode) == MEMSX);
    write_reg(path, in.dst, v);
  }

  void store(Path& path, const Insn& in) {
    const unsigned size = size_bytes(in.opcode);
    RegState value;
    if (class_of(in.opcode) == STX) {
      value = read_reg(path, in.src);
    } else {
      const uint64_t imm = uint64_t(int64_t(in.imm));
      value = RegState::known(size == 8 ? imm : imm & ((uint64_t(1) << (size * 8)) - 1));
    }
    (void)mem_access(path, in.dst, in.off, size, Access::Write, &value, false);
  }

  void atomic(Path& path, const Insn& in) {
    const unsigned size = size_bytes(in.opcode);
    const RegState value = read_reg(path, in.src);
    if (in.imm == ATOMIC_CMPXCHG) (void)read_reg(path, 0);
    const RegState ptr = read_reg(path, in.dst);
    if (ptr.type == RegType::Ctx) fail(fmt::format("BPF_ATOMIC stores into R{} ctx is not allowed", in.dst));
    const RegState old = mem_access(path, in.dst, in.off, size, Access::Atomic, &value, false);
    if (in.imm == ATOMIC_CMPXCHG)
      write_reg(path, 0, old);
    else if (in.imm & FETCH)
      write_reg(path, in.src, old);
  }

  void lddw(Path& path, const Insn& in) {
    const uint64_t imm = uint64_t(uint32_t(in.imm)) | uint64_t(uint32_t(p_.insns[at_ + 1].imm)) << 32;
    if (opts_.map_at) {
      if (std::optional<MapUse> u = opts_.map_at(imm)) {
        RegState r = RegState::pointer(RegType::MapHandle);
        r.map = int32_t(sh_.maps.size());
        sh_.maps.push_back(*u);
        write_reg(path, in.dst, r);
        return;
      }
    }
    for (size_t m = 0; m < p_.maps.size(); ++m) {
      const MapUse& u = sh_.maps[m];
      if (u.insn != at_) continue;
      if (u.value && u.offset >= u.value_size)
        fail(fmt::format("direct value offset of {} is not allowed", u.offset));
      RegState r = RegState::pointer(u.value ? RegType::MapValue : RegType::MapHandle);
      r.map = int32_t(m);
      if (u.value) r.off = int32_t(u.offset);
      write_reg(path, in.dst, r);
      return;
    }
    // src_reg 1 (a map by fd) or 2 (a map value by fd) with no map here:
    // the kernel finds no map behind the fd either.
    if (in.src == LDDW_MAP_FD || in.src == LDDW_MAP_VALUE)
      fail(fmt::format("fd {} is not pointing to valid bpf_map (no map at this lddw)", in.imm));
    if (in.src == LDDW_MAP_IDX || in.src == LDDW_MAP_IDX_VALUE)
      fail(fmt::format("map index {} names no map (no map at this lddw)", in.imm));
    if (in.src == LDDW_CODE_ADDR) {
      RegState r = RegState::pointer(RegType::Func);
      r.off = int32_t(func_ref_target(in, at_));
      write_reg(path, in.dst, r);
      return;
    }
    if (in.src != LDDW_IMM64) fail(fmt::format("lddw src_reg {} (a BTF variable) is not supported", in.src));
    write_reg(path, in.dst, RegState::known(imm));
  }

  // --- jumps ---
  bool jump(Path& path, const Insn& in) {
    const bool is32 = class_of(in.opcode) == JMP32;
    const uint8_t op = op_of(in);
    if (op == JA) {
      ++jumps_since_state_;
      path.insn = size_t(*branch_target(in, at_));
      return true;
    }
    if (op == EXIT) return exit(path);
    if (op == CALL) {
      ++jumps_since_state_;
      if (is_reg_source(in)) return callx(path, in);
      if (in.src == CALL_LOCAL) return local_call(path, in);
      if (uint32_t(in.imm) == HELPER_LOOP || uint32_t(in.imm) == HELPER_FOR_EACH_MAP_ELEM)
        return callback_call(path, uint32_t(in.imm));
      helper_call(path, uint32_t(in.imm));
      path.insn = at_ + 1;
      return true;
    }
    ++jumps_since_state_;
    const Cmp cmp = *cmp_of(op);
    const RegState a = read_reg(path, in.dst);
    const RegState b = is_reg_source(in) ? read_reg(path, in.src)
                                         : RegState::known(is32 ? uint64_t(uint32_t(in.imm)) : uint64_t(int64_t(in.imm)));
    const size_t target = size_t(*branch_target(in, at_));
    // Numbers that decide the branch (a counted loop's test, mostly): only
    // one edge is refined, and the state is not copied for the other.
    if (a.type == RegType::Scalar && b.type == RegType::Scalar) {
      const Width w = is32 ? Width{32} : Width{64};
      RegState ta = a, tb = b, fa = a, fb = b;
      const bool can_take = refine_scalars(ta, tb, cmp, w), can_fall = refine_scalars(fa, fb, negate(cmp), w);
      if (!can_take || !can_fall) {
        if (can_take || can_fall) refine(path.st, in, a, b, can_take ? cmp : negate(cmp), is32);
        // The values decided the branch: they are precise.
        demand_reg(path, in.dst);
        if (is_reg_source(in)) demand_reg(path, in.src);
        if (!can_take && !can_fall) return false;  // cannot be reached (a contradiction upstream)
        path.insn = can_take ? target : at_ + 1;
        return true;
      }
    }
    State taken = path.st;
    const bool taken_ok = refine(taken, in, a, b, cmp, is32);
    const bool fall_ok = refine(path.st, in, a, b, negate(cmp), is32);
    if (!taken_ok || !fall_ok) {
      // The values decided the branch: they are precise.
      demand_reg(path, in.dst);
      if (is_reg_source(in)) demand_reg(path, in.src);
    }
    if (!taken_ok && !fall_ok) return false;  // cannot be reached (a contradiction upstream)
    if (taken_ok && fall_ok) {
      fork(path, std::move(taken), target);
      path.insn = at_ + 1;
      return true;
    }
    if (taken_ok) {
      path.st = std::move(taken);
      path.insn = target;
    } else {
      path.insn = at_ + 1;
    }
    return true;
  }

  // Applies `a cmp b` to `st`: false when no value satisfies it.
  bool refine(State& st, const Insn& in, const RegState& a, const RegState& b, Cmp cmp, bool is32) {
    const int ra = in.dst, rb = is_reg_source(in) ? in.src : -1;
    Frame& f = st.cur();
    // Null checks: a nullable pointer against 0.
    if (!is32 && (cmp == Cmp::Eq || cmp == Cmp::Ne)) {
      if (is_nullable(a.type) && b.is_known_zero()) return null_check(st, a, cmp == Cmp::Eq);
      if (rb >= 0 && is_nullable(b.type) && a.is_known_zero()) return null_check(st, b, cmp == Cmp::Eq);
    }
    // A non-null pointer against 0.
    if ((cmp == Cmp::Eq || cmp == Cmp::Ne) && !is32) {
      // Only the types the kernel's reg_not_null knows to be non-null: the
      // context, the stack and packet pointers are compared with 0 on both
      // edges, as the kernel does (raw memory may be empty, and null then).
      auto never_null = [](const RegState& r) {
        return r.type == RegType::MapValue || r.type == RegType::Mem || r.type == RegType::MapHandle;
      };
      if (never_null(a) && b.is_known_zero()) return cmp == Cmp::Ne;
      if (never_null(b) && a.is_known_zero()) return cmp == Cmp::Ne;
    }
    if (is_pointer(a.type) || is_pointer(b.type)) {
      if (!is32 && rb >= 0) packet_compare(st, a, b, cmp);
      return true;  // other pointer comparisons: allowed as root, nothing learnt
    }
    RegState na = a, nb = b;
    if (!refine_scalars(na, nb, cmp, is32 ? Width{32} : Width{64})) return false;
    propagate(st, ra, na);
    if (rb >= 0) propagate(st, rb, nb);
    // A compare of the raw memory's length (the entry's r2 or a copy).
    for (const RegState* v : {&na, &nb})
      if (sh_.len_id != 0 && v->type == RegType::Scalar && v->id == sh_.len_id) st.raw_len = std::max(st.raw_len, v->umin);
    (void)f;
    return true;
  }

  // Writes a refined register and every scalar sharing its id.
  void propagate(State& st, int r, const RegState& v) {
    st.cur().regs[size_t(r)] = v;
    if (v.id == 0) return;
    for_each_reg(st, [&](RegState& x) {
      if (x.type == RegType::Scalar && x.id == v.id) x = v;
    });
  }

  bool null_check(State& st, const RegState& ptr, bool is_null) {
    const uint32_t id = ptr.id;
    for_each_reg(st, [&](RegState& x) {
      if (!is_nullable(x.type) || x.id != id) return;
      if (is_null) {
        x = RegState::known(0);
      } else {
        x.type = non_null(x.type);
        if (x.type == RegType::MapValue || x.type == RegType::MapHandle) x.id = 0;
      }
    });
    if (is_null && ptr.ref_obj_id)
      std::erase_if(st.refs, [&](const Ref& r) { return r.id == ptr.ref_obj_id; });
    return true;
  }

  // try_match_pkt_pointers: `data + N` against data_end (or meta + N
  // against data) proves N bytes on the edge where it is not past the end.
  void packet_compare(State& st, const RegState& a, const RegState& b, Cmp cmp) {
    auto is_end_of = [](const RegState& p, const RegState& e) {
      return (p.type == RegType::Packet && e.type == RegType::PacketEnd) ||
             (p.type == RegType::PacketMeta && e.type == RegType::Packet);
    };
    const RegState* pkt = nullptr;
    if (is_end_of(a, b)) {
      pkt = &a;
    } else if (is_end_of(b, a)) {
      pkt = &b;
      cmp = swapped(cmp);
    }
    if (!pkt) return;
    // The end of metadata is the packet's start itself (reg_is_init_pkt_pointer).
    const RegState& end = pkt == &a ? b : a;
    if (end.type == RegType::Packet && (end.off != 0 || !end.var_off.is_const() || end.var_off.value != 0)) return;
    // Now `pkt cmp end`; the pointer is within the end on <= and <, and
    // `pkt < end` proves one byte more (pkt + 1 <= end), as the kernel's
    // range_right_open, though not for pkt + 0.
    if (cmp != Cmp::Le && cmp != Cmp::Lt) return;
    if (pkt->off < 0 || pkt->umax > kMaxPacketOff || pkt->umax + uint64_t(pkt->off) > kMaxPacketOff) return;
    if (cmp == Cmp::Lt && pkt->off == 0) return;
    const uint32_t range = uint32_t(pkt->off) + (cmp == Cmp::Lt ? 1 : 0);
    const RegType t = pkt->type;
    const uint32_t id = pkt->id;
    for_each_reg(st, [&](RegState& x) {
      if (x.type == t && x.id == id) x.range = std::max(x.range, range);
    });
  }

  // a >= b (a > b when `strict`) on one ordering's bounds [lo, hi] of the
  // width's range [min, max]: false when no pair of values satisfies it.
  template <typename T>
  static bool at_least(T& a_lo, T& a_hi, T& b_lo, T& b_hi, T min, T max, bool strict) {
    const T d = strict ? 1 : 0;
    if (strict && (b_lo == max || a_hi == min)) return false;
    a_lo = std::max(a_lo, T(b_lo + d));
    b_hi = std::min(b_hi, T(a_hi - d));
    return a_lo <= a_hi && b_lo <= b_hi;
  }

  // reg_set_min_max on both operands (is_branch_taken follows: an edge
  // whose refinement is empty cannot be taken).
  static bool refine_scalars(RegState& a, RegState& b, Cmp cmp, Width w) {
    Bounds ba = a.bounds(w.bits), bb = b.bounds(w.bits);
    Tnum ta = w.tnum(a), tb = w.tnum(b);
    auto set = [&](RegState& r, const Bounds& bounds, Tnum t) {
      r.set_bounds(w.bits, bounds);
      r.var_off = w.bits == 64 ? t : r.var_off.with_subreg(t);
      return r.sync();
    };
    auto is_const = [](const Bounds& x) { return x.umin == x.umax; };
    switch (cmp) {
      case Cmp::Eq: {
        if (!tnum_overlap(ta, tb)) return false;
        Bounds r{std::max(ba.smin, bb.smin), std::min(ba.smax, bb.smax), std::max(ba.umin, bb.umin),
                 std::min(ba.umax, bb.umax)};
        if (r.smin > r.smax || r.umin > r.umax) return false;
        const Tnum t = tnum_intersect(ta, tb);
        return set(a, r, t) && set(b, r, t);
      }
      case Cmp::Ne: {
        if (is_const(ba) && is_const(bb)) return ba.umin != bb.umin;
        auto exclude = [&](Bounds& x, const Bounds& c) {
          if (!is_const(c)) return;
          if (x.umin == c.umin) ++x.umin;
          if (x.umax == c.umin) --x.umax;
          if (x.smin == c.smin) ++x.smin;
          if (x.smax == c.smin) --x.smax;
        };
        // An endpoint equal to the constant moves in by one (never past the
        // other endpoint, as the operand is not itself that constant).
        exclude(ba, bb);
        exclude(bb, ba);
        return set(a, ba, ta) && set(b, bb, tb);
      }
      case Cmp::Gt:
      case Cmp::Ge:
        return at_least(ba.umin, ba.umax, bb.umin, bb.umax, uint64_t(0), w.umax(), cmp == Cmp::Gt) &&
               set(a, ba, ta) && set(b, bb, tb);
      case Cmp::Lt:
      case Cmp::Le: return refine_scalars(b, a, cmp == Cmp::Lt ? Cmp::Gt : Cmp::Ge, w);
      case Cmp::Sgt:
      case Cmp::Sge:
        return at_least(ba.smin, ba.smax, bb.smin, bb.smax, w.smin(), w.smax(), cmp == Cmp::Sgt) &&
               set(a, ba, ta) && set(b, bb, tb);
      case Cmp::Slt:
      case Cmp::Sle: return refine_scalars(b, a, cmp == Cmp::Slt ? Cmp::Sgt : Cmp::Sge, w);
      case Cmp::Set: {
        // Some bit of a & b set: impossible when none can be.
        if (((ta.value | ta.mask) & (tb.value | tb.mask)) == 0) return false;
        if (tb.is_const() && std::has_single_bit(tb.value)) ta = tnum_or(ta, tb);
        return set(a, ba, ta);
      }
      case Cmp::NotSet: {
        if ((ta.value & tb.value) != 0) return false;
        if (tb.is_const()) ta = tnum_and(ta, Tnum::constant(~tb.value));
        return set(a, ba, ta);
      }
    }
    return true;
  }

  // --- calls ---
  HelperInfo helper_info(uint32_t id) const {
    if (opts_.helper) return opts_.helper(id);
    const HelperProto* proto = standard_helper_proto(id);
    return {proto != nullptr, proto};
  }

  // The memory a helper reads or writes: `size` bytes (bounds of a scalar) at `ptr`.
  void helper_mem(Path& path, int regno, const RegState& size_reg, int size_regno, bool write, bool zero_ok) {
    const RegState ptr = path.st.cur().regs[size_t(regno)];
    if (size_reg.type != RegType::Scalar)
      fail(fmt::format("R{} type={} expected=scalar", size_regno, reg_type_name(size_reg.type)));
    if (size_reg.smin < 0)
      fail(fmt::format("R{} min value is negative, either use unsigned or 'var &= const'", size_regno));
    if (size_reg.umax == 0 && !zero_ok) fail(fmt::format("R{} invalid zero-sized read", size_regno));
    if (size_reg.umax >= kMaxVarSize)
      fail(fmt::format("R{} unbounded memory access, use 'var &= const' or 'if (var < const)'", size_regno));
    if (size_reg.umax == 0) return;
    mem_region(path, regno, ptr, size_reg.umax, write);
  }

  // `size` bytes at `ptr` for a helper (check_helper_mem_access).
  void mem_region(Path& path, int regno, const RegState& ptr, uint64_t size, bool write) {
    switch (ptr.type) {
      case RegType::Stack: {
        RegState end = ptr;
        // The whole region inside the frame and, for a read, written.
        auto [lo, hi] = stack_extent(ptr, regno, 0, 1, write ? Access::Write : Access::Read);
        const int64_t last = hi - 1 + int64_t(size);
        if (last > 0)
          fail(fmt::format("invalid indirect access to stack R{} off={} size={}", regno, lo, size));
        touch_depth(ptr, path, lo);
        Frame& f = frame_of(path, ptr);
        if (write) {
          for (int64_t o = lo; o < last; ++o) break_spill(f, o);
          for (int64_t o = lo; o < last; ++o) slot_byte(f, o) = Slot::Misc;
        } else {
          for (int64_t o = lo; o < last; ++o)
            if (byte_at(f, o) == Slot::Invalid)
              fail(fmt::format("invalid indirect read from stack R{} off {}+{} size {}", regno, lo, o - lo, size));
        }
        (void)end;
        return;
      }
      case RegType::MapValue:
        check_region(ptr, regno, 0, uint32_t(size), sh_.maps[size_t(ptr.map)].value_size, "map value", "value_size");
        if (write && read_only_for_programs(sh_.maps[size_t(ptr.map)]))
          fail(fmt::format("write into map forbidden, value_size={} off={} size={}",
                           sh_.maps[size_t(ptr.map)].value_size, ptr.off, size));
        return;
      case RegType::Mem: check_region(ptr, regno, 0, uint32_t(size), ptr.mem_size, "memory", "mem_size"); return;
      case RegType::Packet:
      case RegType::PacketMeta: check_packet(ptr, regno, 0, uint32_t(size), write ? Access::Write : Access::Read); return;
      case RegType::RawMem: return;  // checked at run time (see verifier.h)
      default:
        fail(fmt::format("R{} type={} expected=fp, pkt, pkt_meta, map_value, mem", regno, reg_type_name(ptr.type)));
    }
  }

  // A devmap's values are the kernel's (dev_map_init_map sets
  // BPF_F_RDONLY_PROG): programs read them only.
  static bool read_only_for_programs(const MapUse& m) { return m.type == 14 || m.type == 25; }

  void helper_call(Path& path, uint32_t id) {
    const HelperInfo info = helper_info(id);
    if (!info.exists) fail(fmt::format("invalid func unknown#{}", id));
    if (path.st.lock_map >= 0 && !(info.proto && info.proto->args[0] == ArgKind::SpinUnlock))
      fail("function calls are not allowed while holding a lock");
    if (type_.helper_allowed && !type_.helper_allowed(id))
      fail(fmt::format("program of this type cannot use helper {}#{}", info.proto ? info.proto->name : "unknown", id));
    Frame& f = path.st.cur();
    RegState r0 = RegState::unknown();
    if (info.proto) {
      const HelperProto& pr = *info.proto;
      int32_t map = -1;
      int mem_reg = -1;
      bool mem_write = false, mem_null = false, mem_rw = false;
      uint64_t alloc = 0;
      uint32_t release = 0;
      for (int k = 0; k < 5; ++k) {
        const ArgKind kind = pr.args[size_t(k)];
        if (kind == ArgKind::None) break;
        const int r = k + 1;
        const RegState a = read_reg(path, r);
        if ((a.type == RegType::Packet || a.type == RegType::PacketMeta) && !pr.pkt_access)  // check_func_arg
          fail(fmt::format("R{} helper access to the packet is not allowed ({}#{})", r, pr.name, id));
        auto expect = [&](const char* what) {
          fail(fmt::format("R{} type={} expected={} (argument {} of {}#{})", r, reg_type_name(a.type), what, r,
                           pr.name, id));
        };
        switch (kind) {
          case ArgKind::None:
          case ArgKind::Anything: break;
          case ArgKind::Scalar:
            if (a.type != RegType::Scalar) expect("scalar");
            break;
          case ArgKind::Ctx:
            if (a.type != RegType::Ctx && a.type != RegType::RawMem) expect("ctx");
            if (a.off != 0 || !a.var_off.is_const() || a.var_off.value != 0)
              fail(fmt::format("dereference of modified ctx ptr R{} off={} disallowed", r, a.off));
            break;
          case ArgKind::Map: {
            if (a.type != RegType::MapHandle) expect("map_ptr");
            const MapUse& m = sh_.maps[size_t(a.map)];
            if (!pr.maps.has(map_kind_of_type(m.type)))
              fail(fmt::format("cannot pass map_type {} into func {}#{}", m.type, pr.name, id));
            map = a.map;
            break;
          }
          case ArgKind::MapKey:
          case ArgKind::MapValue:
          case ArgKind::MapValueOut: {
            if (map < 0) fail(fmt::format("invalid map_ptr to access map->{}", kind == ArgKind::MapKey ? "key" : "value"));
            const MapUse& m = sh_.maps[size_t(map)];
            if (!is_pointer(a.type) || is_nullable(a.type)) expect("fp, pkt, map_value, mem");
            mem_region(path, r, a, kind == ArgKind::MapKey ? m.key_size : m.value_size, kind == ArgKind::MapValueOut);
            break;
          }
          case ArgKind::ReadMemOrNull:
            mem_null = a.type == RegType::Scalar && a.is_const() && a.const_value() == 0;
            if (mem_null) {
              mem_reg = r;
              break;
            }
            [[fallthrough]];
          case ArgKind::ReadMem:
          case ArgKind::WriteMem:
          case ArgKind::ReadWriteMem:
            if (!is_pointer(a.type) || is_nullable(a.type)) expect("fp, pkt, map_value, mem");
            mem_reg = r;
            mem_write = kind == ArgKind::WriteMem;
            mem_rw = kind == ArgKind::ReadWriteMem;
            mem_null = false;
            break;
          case ArgKind::Size:
          case ArgKind::SizeOrZero:
            demand_reg(path, r);
            if (mem_null) {  // a null pointer goes with a size of 0 only
              if (!(a.type == RegType::Scalar && a.is_const() && a.const_value() == 0))
                fail(fmt::format("R{} type=scalar expected=fp, pkt, map_value, mem (a null R{} needs a size of 0 in "
                                 "R{})",
                                 mem_reg, mem_reg, r));
              mem_null = false;
              break;
            }
            helper_mem(path, mem_reg, a, r, mem_write, kind == ArgKind::SizeOrZero);
            if (mem_rw) helper_mem(path, mem_reg, a, r, true, kind == ArgKind::SizeOrZero);  // read, then written
            break;
          case ArgKind::AllocSize:
            if (!a.is_const()) fail(fmt::format("R{} is not a known constant", r));
            demand_reg(path, r);
            alloc = a.const_value();
            break;
          case ArgKind::SpinLock:
          case ArgKind::SpinUnlock: {  // process_spin_lock
            if (a.type != RegType::MapValue) expect("map_value");
            const MapUse& m = sh_.maps[size_t(a.map)];
            if (m.spin_lock_offset < 0) fail(fmt::format("map '{}' has no valid bpf_spin_lock", m.name));
            const int64_t at = int64_t(a.off) + int64_t(a.var_off.value);
            if (!a.var_off.is_const() || at != m.spin_lock_offset)
              fail(fmt::format("R{} off {} doesn't point to 'struct bpf_spin_lock' that is at {}", r, at,
                               m.spin_lock_offset));
            if (kind == ArgKind::SpinLock) {
              if (path.st.lock_map >= 0) fail("Locking two bpf_spin_locks are not allowed");
              path.st.lock_map = a.map;
              path.st.lock_id = a.id;
            } else {
              if (path.st.lock_map < 0) fail("bpf_spin_unlock without taking a lock");
              if (path.st.lock_map != a.map || path.st.lock_id != a.id) fail("bpf_spin_unlock of different lock");
              path.st.lock_map = -1;
              path.st.lock_id = 0;
            }
            break;
          }
          case ArgKind::RingbufRecord:
            if (a.type != RegType::Mem || a.ref_obj_id == 0) expect("ringbuf_mem");
            if (a.off != 0 || !a.var_off.is_const() || a.var_off.value != 0)
              fail(fmt::format("R{} must have zero offset when passed to release func", r));
            release = a.ref_obj_id;
            break;
        }
      }
      if (pr.tail_call && !path.st.refs.empty())
        fail(fmt::format("tail_call would lead to reference leak (reference id={} acquired at insn {})",
                         path.st.refs[0].id, path.st.refs[0].insn));
      if (release) {
        std::erase_if(path.st.refs, [&](const Ref& x) { return x.id == release; });
        for_each_reg(path.st, [&](RegState& x) {
          if (x.ref_obj_id == release) x = RegState::unknown();
        });
      }
      switch (pr.ret) {
        case RetKind::Integer: break;
        case RetKind::Void: r0 = RegState::not_init(); break;
        case RetKind::MapValueOrNull:
          r0 = RegState::pointer(RegType::MapValueOrNull);
          r0.map = map;
          if (map >= 0 && sh_.maps[size_t(map)].inner) {  // a map of maps: one of its inner maps
            r0.type = RegType::MapHandleOrNull;
            r0.map = inner_map(map);
          }
          r0.id = new_id();
          break;
        case RetKind::RecordOrNull:
          r0 = RegState::pointer(RegType::MemOrNull);
          r0.mem_size = uint32_t(std::min<uint64_t>(alloc, std::numeric_limits<uint32_t>::max()));
          r0.id = new_id();
          r0.ref_obj_id = r0.id;
          path.st.refs.push_back({r0.id, uint32_t(at_)});
          break;
      }
    }
    if (info.proto && info.proto->changes_packet) {
      // The packet moved: every pointer into it is a number now
      // (clear_all_pkt_pointers); the program must compare again.
      for_each_reg(path.st, [](RegState& x) {
        if (is_packet(x.type) || x.type == RegType::PacketEnd) x = RegState::unknown();
      });
    }
    (void)f;
    call_returned(path.st.cur(), r0);
  }

  bool callx(Path& path, const Insn& in) {
    const RegState t = read_reg(path, in.dst);
    if (!t.is_const())
      fail(fmt::format("R{} callx target is not a known helper id: {}", in.dst, reg_str(t)));
    // Every engine dispatches on all 64 bits (frontend/lower.cpp lower_callx).
    if (t.const_value() > UINT32_MAX)
      fail(fmt::format("R{} callx target {:#x} is not a helper id", in.dst, t.const_value()));
    helper_call(path, uint32_t(t.const_value()));
    path.insn = at_ + 1;
    return true;
  }

  bool local_call(Path& path, const Insn& in) {
    if (path.st.lock_map >= 0) fail("function calls are not allowed while holding a lock");
    if (path.st.frames.size() >= size_t(kMaxCallDepth))
      fail(fmt::format("the call stack of {} frames is too deep !", path.st.frames.size() + 1));
    const size_t target = size_t(*branch_target(in, at_));
    if (const GlobalFunc* g = sh_.global[sh_.func_of[target]]) return global_call(path, *g);
    if (summarised(path, target)) {
      call_returned(path.st.cur());
      path.insn = at_ + 1;
      return true;
    }
    Frame callee;
    const Frame& caller = path.st.cur();
    for (int r = 1; r <= 5; ++r) callee.regs[size_t(r)] = caller.regs[size_t(r)];
    callee.regs[10] = RegState::pointer(RegType::Stack);
    callee.regs[10].frame = uint8_t(path.st.frames.size());
    callee.callsite = int32_t(at_);
    callee.func = sh_.func_of[target];
    path.st.frames.push_back(std::move(callee));
    path.insn = target;
    return true;
  }

  // bpf_loop(nr_loops, callback_fn, callback_ctx, flags) and
  // bpf_for_each_map_elem(map, callback_fn, callback_ctx, flags): the
  // callback runs as its own frame, with r1 the index (a number) and r2
  // the context (a stack pointer or null) for bpf_loop, as the kernel's
  // set_loop_callback_state; r1 the map, r2 its key (key_size bytes), r3
  // the element's value and r4 the context for bpf_for_each_map_elem
  // (set_map_elem_callback_state). The path forks at the call: the loop
  // may run no iteration (r0 a number); the other path enters the
  // callback, and each exit of it forks again into "the loop ends" and
  // "once more" (callback_exit). Unlike 6.1, which walks a callback once,
  // every iteration's state is checked, as later kernels do: the caller's
  // stack the callback wrote is widened between iterations, so counters
  // become unknown numbers and the iterations reach a state seen before,
  // where the path is pruned.
  bool callback_call(Path& path, uint32_t id) {
    if (path.st.lock_map >= 0) fail("function calls are not allowed while holding a lock");
    const bool walk = id == HELPER_FOR_EACH_MAP_ELEM;
    const char* helper = walk ? "bpf_for_each_map_elem" : "bpf_loop";
    const RegState a = read_reg(path, 1), cb = read_reg(path, 2), ctx = read_reg(path, 3), flags = read_reg(path, 4);
    auto expect = [&](int r, const RegState& v, const char* type, const char* what) {
      fail(fmt::format("R{} type={} expected={} ({}'s {})", r, reg_type_name(v.type), type, helper, what));
    };
    if (walk) {
      if (a.type != RegType::MapHandle) expect(1, a, "map_ptr", "map");
      const MapUse& m = sh_.maps[size_t(a.map)];
      if (map_kind_of_type(m.type) != MapKind::Data)
        fail(fmt::format("cannot pass map_type {} into func bpf_for_each_map_elem#{}", m.type, id));
      if (m.key_size > kForEachKeyBytes)
        fail(fmt::format("bpf_for_each_map_elem over '{}': a key of {} bytes (Springboard walks keys of at most {})",
                         m.name, m.key_size, kForEachKeyBytes));
    } else if (a.type != RegType::Scalar) {
      expect(1, a, "scalar", "nr_loops");
    }
    if (cb.type != RegType::Func) expect(2, cb, "func", "callback_fn");
    if (ctx.type != RegType::Stack && !ctx.is_known_zero()) expect(3, ctx, "fp or 0", "callback_ctx");
    if (flags.type != RegType::Scalar) expect(4, flags, "scalar", "flags");
    // The rewrite (frontend/loop_helper.h) runs the callback from a frame of its own.
    if (path.st.frames.size() + 2 > size_t(kMaxCallDepth))
      fail(fmt::format("the call stack of {} frames is too deep ! ({} runs its callback two frames down)",
                       path.st.frames.size() + 2, helper));
    State none = path.st;
    call_returned(none.cur());  // r0 the number of calls or an error
    fork(path, std::move(none), at_ + 1);
    enter_callback(path.st, at_, size_t(cb.off));
    const auto callbacks =
        std::count_if(path.st.frames.begin(), path.st.frames.end(), [](const Frame& f) { return f.callback; });
    sh_.result.loop_depth = std::max(sh_.result.loop_depth, uint32_t(callbacks));
    path.insn = size_t(cb.off);
    return true;
  }

  // The callback's frame, its arguments from the caller's registers at the call.
  void enter_callback(State& st, size_t callsite, size_t target, uint32_t iteration = 0) {
    const Frame& caller = st.cur();
    Frame callee;
    if (uint32_t(p_.insns[callsite].imm) == HELPER_FOR_EACH_MAP_ELEM) {
      const RegState& map = caller.regs[1];
      callee.regs[1] = map;
      callee.regs[2] = RegState::pointer(RegType::Mem);
      callee.regs[2].mem_size = sh_.maps[size_t(map.map)].key_size;
      callee.regs[3] = RegState::pointer(RegType::MapValue);
      callee.regs[3].map = map.map;
      callee.regs[4] = caller.regs[3];
    } else {
      callee.regs[1] = RegState::unknown();
      callee.regs[2] = caller.regs[3];
    }
    callee.regs[10] = RegState::pointer(RegType::Stack);
    callee.regs[10].frame = uint8_t(st.frames.size());
    callee.callsite = int32_t(callsite);
    callee.func = sh_.func_of[target];
    callee.callback = true;
    callee.iteration = iteration;
    callee.loop_entry = std::make_shared<const std::vector<Frame>>(st.frames);
    st.frames.push_back(std::move(callee));
  }

  // `caller` after a call returned into it: r1-r5 clobbered, r0 the result
  // (a number unless the callee's r0 is known: a helper's, a followed function's).
  static void call_returned(Frame& caller, const RegState& r0 = RegState::unknown()) {
    for (int r = 1; r <= 5; ++r) caller.regs[size_t(r)] = RegState::not_init();
    caller.regs[0] = r0;
  }

  bool callback_exit(Path& path) {
    State& st = path.st;
    const RegState r0 = read_reg(path, 0);
    if (r0.type != RegType::Scalar)
      fail(fmt::format("At callback return the register R0 is not a known value ({})", reg_type_name(r0.type)));
    demand_reg(path, 0);
    if (r0.smin < 0 || r0.smax > 1)
      fail(fmt::format("At callback return the register R0 has {} should have been in [0, 1]", reg_str(r0)));
    if (!st.refs.empty())
      fail(fmt::format("Unreleased reference id={} alloc_insn={} at callback return", st.refs[0].id, st.refs[0].insn));
    const uint8_t gone = uint8_t(st.frames.size() - 1);
    const size_t callsite = size_t(st.cur().callsite);
    const size_t target = sh_.starts[st.cur().func];
    const std::shared_ptr<const std::vector<Frame>> entry = st.cur().loop_entry;
    const uint32_t iteration = st.cur().iteration;
    st.frames.pop_back();
    for_each_reg(st, [&](RegState& x) {
      if (x.type == RegType::Stack && x.frame >= gone) x = RegState::unknown();
    });
    if (r0.smin == 0) {  // it may return 0: the loop may go on
      State again = st;
      widen(again.frames, *entry);
      enter_callback(again, callsite, target, iteration + 1);
      fork(path, std::move(again), target);
    }
    call_returned(st.cur());  // r0 the number of calls or an error
    path.insn = callsite + 1;
    return true;
  }

  // The caller frames after an iteration, made to hold for every later
  // one too: a stack slot whose value changed since the iteration began
  // (a spilled number, or bytes turned from zero to some number) becomes
  // an unknown number. Slots only ever become more written, and pointers
  // are kept as they are (a pointer moved each time never converges and
  // ends at the complexity limit).
  static void widen(std::vector<Frame>& now, const std::vector<Frame>& before) {
    for (size_t f = 0; f < now.size() && f < before.size(); ++f)
      for (size_t k = 0; k < now[f].stack.size() && k < before[f].stack.size(); ++k) {
        StackSlot& a = now[f].stack[k];
        const StackSlot& b = before[f].stack[k];
        if (a == b) continue;
        if (a.type[0] == Slot::Spill && b.type[0] == Slot::Spill) {
          RegState x = a.spilled, y = b.spilled;  // the values, not their precision marks or ids
          x.precise = y.precise = false;
          x.id = y.id = 0;
          if (x != y && x.type == RegType::Scalar && y.type == RegType::Scalar) a.spilled = RegState::unknown();
          continue;
        }
        if (a.type[0] == Slot::Spill) continue;
        for (size_t byte = 0; byte < 8; ++byte)
          if (a.type[byte] == Slot::Zero && b.type[byte] != Slot::Zero) a.type[byte] = Slot::Misc;
      }
  }

  // --- global functions ---
  enum class Param : uint8_t { Scalar, Ctx, Mem };
  // What parameter `i` of global function `g` is for this program type;
  // fails for one the kernel does not support (btf_prepare_func_args).
  Param param_kind(const GlobalFuncParam& a, size_t i, const GlobalFunc& g) const {
    switch (a.kind) {
      case GlobalFuncParam::Kind::Scalar: return Param::Scalar;
      case GlobalFuncParam::Kind::Pointer:
        if (!a.pointee.empty() && a.pointee == type_.ctx.btf_name) return Param::Ctx;
        if (!a.size)
          fail(g.start, fmt::format("arg#{} reference type('{} {}') size cannot be determined", i, a.type, a.pointee));
        return Param::Mem;
      case GlobalFuncParam::Kind::Unsupported: break;
    }
    fail(g.start, fmt::format("Arg#{} type {} in {}() is not supported yet.", i, a.type, g.name));
  }

  // Checks global function `func` on its own, once per kind of arguments.
  void check_global(uint32_t func, uint16_t raw_args) {
    if (!sh_.global_checked.insert({func, raw_args}).second) return;
    const size_t saved_at = at_;
    Verifier(p_, opts_, sh_).run_global(*sh_.global[func], raw_args);
    at_ = saved_at;
  }

  // A call of a global function (the kernel's btf_check_subprog_call): the
  // arguments are checked against its prototype and the call is not
  // followed (the function was checked on its own for any such
  // arguments); then r0 is a number and r1-r5 are clobbered. Memory passed
  // to it must be readable and writable for the pointee's size, and what
  // the caller's stack held there is some number after (check_mem_reg).
  bool global_call(Path& path, const GlobalFunc& g) {
    const uint32_t func = sh_.func_of[g.start];
    auto bad = [&](const std::string& why) {
      fail(fmt::format("{}; caller passes invalid args into func#{} ({})", why, func, g.name));
    };
    uint16_t raw = 0;
    for (size_t i = 0; i < g.params.size(); ++i) {
      const int regno = int(i) + 1;
      const RegState arg = path.st.cur().regs[size_t(regno)];
      switch (param_kind(g.params[i], i, g)) {
        case Param::Scalar:
          if (arg.type != RegType::Scalar) bad(fmt::format("R{} is not a scalar", regno));
          break;
        case Param::Ctx:
          if (arg.type != RegType::Ctx)
            bad(fmt::format("arg#{} expected pointer to ctx, but got {}", i, reg_type_name(arg.type)));
          if (arg.off != 0 || !arg.var_off.is_const() || arg.var_off.value != 0)
            bad(fmt::format("dereference of modified ctx ptr R{} off={} disallowed", regno, arg.off));
          break;
        case Param::Mem: {
          if (arg.is_known_zero()) break;  // null: the callee checks for it
          if (arg.type == RegType::RawMem) {  // raw programs: checked at run time, in a run of its own
            raw |= uint16_t(1u << regno);
            break;
          }
          RegState ptr = arg;  // checked as if not null, as the callee checks
          ptr.type = non_null(ptr.type);
          try {
            mem_region(path, regno, ptr, *g.params[i].size, false);
            mem_region(path, regno, ptr, *g.params[i].size, true);
          } catch (const Error& e) {
            bad(e.message());
          }
          break;
        }
      }
    }
    if (raw) check_global(func, raw);
    call_returned(path.st.cur());
    path.insn = at_ + 1;
    return true;
  }

  // The index in sh_.maps of map `outer`'s inner template (a map of maps),
  // the same one for every lookup of it, so states compare equal.
  int32_t inner_map(int32_t outer) {
    auto [it, fresh] = sh_.inner_of.try_emplace(outer, int32_t(sh_.maps.size()));
    if (fresh) sh_.maps.push_back(*sh_.maps[size_t(outer)].inner);
    return it->second;
  }

  // Whether the call to `target` can use its summary (made on first use).
  bool summarised(Path& path, size_t target) {
    if (!sh_.use_summaries) return false;
    const uint32_t func = sh_.func_of[target];
    if (sh_.summary[func] == Shared::Inlined) return false;
    const uint16_t args = uint16_t(sh_.live[target] & 0x3e);
    uint16_t raw = 0;
    for (int r = 1; r <= 5; ++r) {
      if (!(args & (1u << r))) continue;
      const RegType t = path.st.cur().regs[size_t(r)].type;
      if (t == RegType::RawMem) raw |= uint16_t(1u << r);
      else if (t != RegType::Scalar) return false;
    }
    const Frame& caller = path.st.cur();
    const bool exact = raw != 0 && path.st.raw_len > 0;
    if (sh_.summary[func] == Shared::Untried) {
      // Made for these argument kinds; a refusal means the calls are explored inline.
      const size_t saved_at = at_;
      // A summary that fails costs the program nothing of its complexity
      // budget: the calls are then explored as the kernel does.
      const uint64_t saved_insns = sh_.result.insns_processed;
      try {
        Verifier sub(p_, opts_, sh_);
        sub.run_function(target, args, raw, exact ? &caller : nullptr, path.st.raw_len);
        sh_.summary[func] = Shared::Summarised;
        summary_raw_[func] = raw;
        if (exact) summary_exact_[func] = {caller, path.st.raw_len};
      } catch (const Error&) {
        sh_.summary[func] = Shared::Inlined;
        sh_.result.insns_processed = saved_insns;
      }
      at_ = saved_at;
      if (sh_.summary[func] == Shared::Inlined) return false;
    }
    auto it = summary_raw_.find(func);
    if (it == summary_raw_.end() || it->second != raw) return false;  // other argument kinds: inline
    if (auto e = summary_exact_.find(func); e != summary_exact_.end()) {
      // Made for exact raw pointers: the same ones, and at least the length it assumed.
      if (path.st.raw_len < e->second.second) return false;
      for (int r = 1; r <= 5; ++r) {
        if (!(raw & (1u << r))) continue;
        const RegState& a = e->second.first.regs[size_t(r)];
        const RegState& b = caller.regs[size_t(r)];
        if (a.off != b.off || a.var_off != b.var_off || a.smin != b.smin || a.smax != b.smax || a.umin != b.umin ||
            a.umax != b.umax)
          return false;
      }
    }
    sh_.used_summary = true;
    return true;
  }

  bool exit(Path& path) {
    State& st = path.st;
    if (st.lock_map >= 0) fail("bpf_spin_unlock is missing");
    if (st.frames.size() > 1 && st.cur().callback) return callback_exit(path);
    if (st.frames.size() > 1) {
      Frame& callee = st.cur();
      const RegState r0 = callee.regs[0];
      const uint8_t gone = uint8_t(st.frames.size() - 1);
      if (r0.type == RegType::Stack && r0.frame == gone)
        fail("cannot return stack pointer to the caller frame");
      const size_t ret = size_t(callee.callsite) + 1;
      st.frames.pop_back();
      // Pointers into the finished frame, left in a caller's stack, are numbers now.
      for_each_reg(st, [&](RegState& x) {
        if (x.type == RegType::Stack && x.frame >= gone) x = RegState::unknown();
      });
      call_returned(st.cur(), r0);
      path.insn = ret;
      return true;
    }
    const RegState& r0 = st.cur().regs[0];
    if (r0.type == RegType::NotInit) fail("R0 !read_ok");
    if (function_run_) {
      if (r0.type != RegType::Scalar)
        fail(fmt::format("At subprogram exit the register R0 is not a scalar value ({})", reg_type_name(r0.type)));
      if (!st.refs.empty()) fail("a summarised function must release its references");
      return false;
    }
    if (!st.refs.empty())
      fail(fmt::format("Unreleased reference id={} alloc_insn={} (a ring-buffer record must be submitted or "
                       "discarded on every path)",
                       st.refs[0].id, st.refs[0].insn));
    if (type_.ret_range) {
      demand_reg(path, 0);
      const auto [lo, hi] = *type_.ret_range;
      if (r0.type != RegType::Scalar)
        fail(fmt::format("At program exit the register R0 is not a known value ({})", reg_type_name(r0.type)));
      if (r0.smin < lo || r0.smax > hi)
        fail(fmt::format("At program exit the register R0 has {} should have been in [{}, {}]", reg_str(r0), lo, hi));
    }
    return false;
  }

  // --- stack depth across calls (check_max_stack_depth) ---
  // The function slot i calls: a local call's target, or a callback whose
  // address it takes (its frame sits on top of this one while bpf_loop runs).
  std::optional<size_t> callee_of(size_t i) const {
    const Insn& in = p_.insns[i];
    if (in.opcode == make_opcode(JMP, CALL, K) && in.src == CALL_LOCAL) return size_t(*branch_target(in, i));
    if (is_func_ref(in)) return size_t(func_ref_target(in, i));
    return std::nullopt;
  }
  static uint32_t round_depth(uint32_t d) { return (std::max<uint32_t>(d, 1) + 31) / 32 * 32; }

  void check_stack_depths() {
    // The deepest chain of frames from each function, by the static call graph.
    const size_t nf = sh_.starts.size();
    std::vector<int64_t> deepest(nf, -1);
    std::vector<size_t> via(nf, SIZE_MAX);  // the call site of the deepest chain
    auto visit = [&](auto& self, size_t f) -> int64_t {
      if (deepest[f] >= 0) return deepest[f];
      const size_t end = f + 1 < nf ? sh_.starts[f + 1] : n_;
      int64_t best = 0;
      for (size_t i = sh_.starts[f]; i < end; i += slot_count(p_.insns[i])) {
        const std::optional<size_t> callee = callee_of(i);
        if (!callee) continue;
        const int64_t d = self(self, sh_.func_of[*callee]);
        if (d > best) best = d, via[f] = i;
      }
      deepest[f] = best + round_depth(sh_.depth[f]);
      return deepest[f];
    };
    const int64_t total = visit(visit, 0);
    if (total > kStackSize) {
      size_t at = 0;
      for (size_t f = 0; via[f] != SIZE_MAX; f = sh_.func_of[*callee_of(via[f])]) at = via[f];
      fail(at, fmt::format("combined stack size of the calls is {}. Too large (the limit is {})", total, kStackSize));
    }
  }

  const Program& p_;
  const VerifyOptions& opts_;
  const ProgramType& type_;
  const size_t n_;
  Shared& sh_;
  bool function_run_ = false;  // a summary run: the entry frame's exit returns to an unknown caller
  const GlobalFunc* global_ = nullptr;  // the global function this run checks on its own
  std::vector<std::vector<Node*>> visited_;
  std::map<uint32_t, uint16_t> summary_raw_;  // per summarised function: its raw-memory arguments
  // Per function summarised for exact raw pointers: the caller's frame and raw_len it was made for.
  std::map<uint32_t, std::pair<Frame, uint64_t>> summary_exact_;
  Step step_{};  // the instruction being run
  std::deque<Node> nodes_;
  std::vector<Path> pending_;
  size_t at_ = 0;
  uint64_t insns_since_state_ = 0, jumps_since_state_ = 0, live_states_ = 0;
};

}  // namespace

VerifyResult verify(const Program& p, const VerifyOptions& opts) {
  {
    Shared sh;
    try {
      return Verifier(p, opts, sh).run();
    } catch (const Error&) {
      if (!sh.used_summary) throw;
    }
  }
  // A summary forgets what the caller knew of the arguments and the
  // result; the refusal may come from that. Explore every call inline.
  Shared sh;
  sh.use_summaries = false;
  return Verifier(p, opts, sh).run();
}

}  // namespace sb::bpf::verifier
