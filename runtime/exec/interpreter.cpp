// The reference interpreter. It executes the raw instruction words of
// frontend/bpf.h directly: nothing here may use the IR or a backend, so that
// it stays an independent oracle for them.
//
// Layout of one run (all of it lives in a Machine on the host stack, so runs
// can happen in parallel):
//
//   stack_[0]                                   stack_[8 * 512]
//   | frame 7 | frame 6 | ... | frame 1 | frame 0 (entry) |
//                                   ^ r10 of frame 1      ^ r10 of frame 0
//
// A bpf-to-bpf call pushes a CallFrame (return pc, caller's r6-r9 and r10)
// and moves r10 down by 512 bytes, so the callee gets a fresh frame. A tail
// call (runtime/helpers/tail_call.h) drops every frame and starts the target at
// frame 0 with the registers as they are (r1 = ctx).
//
// Width-generic operations (ALU/ALU64, JMP/JMP32 conditions, 32/64-bit
// atomics) are templates on the operand type T = uint32_t or uint64_t; a
// 32-bit result converts to uint64_t, which is exactly the zero extension
// RFC 9669 asks for.
#include "runtime/exec/interpreter.h"

#include <bit>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>

#include "frontend/loop_helper.h"
#include "frontend/validator.h"
#include "frontend/verifier/verifier.h"
#include "ir/diag.h"
#include "runtime/exec/hardening.h"
#include "runtime/helpers/tail_call.h"

namespace sb::rt {
namespace {

using bpf::Insn;

std::string hex(uint64_t v) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  do {
    s.insert(s.begin(), digits[v & 0xf]);
    v >>= 4;
  } while (v != 0);
  return "0x" + s;
}

// The ten JMP/JMP32 conditions on operands of width T (RFC 9669 4.3).
// Returns nullopt for an op that is not a condition.
template <typename T>
std::optional<bool> condition(uint8_t op, T a, T b) {
  using S = std::make_signed_t<T>;
  switch (op) {
    case bpf::JEQ: return a == b;
    case bpf::JNE: return a != b;
    case bpf::JGT: return a > b;
    case bpf::JGE: return a >= b;
    case bpf::JLT: return a < b;
    case bpf::JLE: return a <= b;
    case bpf::JSET: return (a & b) != 0;
    case bpf::JSGT: return S(a) > S(b);
    case bpf::JSGE: return S(a) >= S(b);
    case bpf::JSLT: return S(a) < S(b);
    case bpf::JSLE: return S(a) <= S(b);
    default: return std::nullopt;
  }
}

struct CallFrame {
  size_t return_pc = 0;
  uint64_t saved[4] = {};  // caller's r6..r9
  uint64_t saved_r10 = 0;
  uint16_t saved_written = 0;  // InterpOptions::check_uninit: the caller's written registers
};

constexpr uint16_t reg_bit(int r) { return uint16_t(1u << r); }
constexpr uint16_t kArgRegs = 0x3e;  // r1..r5

class Machine {
 public:
  Machine(const bpf::Program& p, const HelperTable& helpers, const InterpOptions& opts)
      : p_(&p), entry_(&p), helpers_(helpers), opts_(opts) {}

  uint64_t run(void* mem, size_t len);

 private:
  static constexpr size_t kStackBytes = size_t(bpf::kStackSize) * bpf::kMaxCallDepth;

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(insn_location(p_->name, pc_), what);
  }
  [[noreturn]] void bad_opcode(const Insn& in) const { fail("unknown opcode " + hex(in.opcode)); }

  uint64_t reg(uint8_t r) const {
    if (r >= bpf::kNumRegs) fail("invalid register r" + std::to_string(r));
    if (opts_.check_uninit && !(written_ & reg_bit(r))) fail("R" + std::to_string(r) + " read before it was written");
    return r_[r];
  }
  void set(uint8_t r, uint64_t v) {
    if (r >= bpf::kFramePointer)
      fail(r == bpf::kFramePointer ? "r10 is read-only" : "invalid register r" + std::to_string(r));
    r_[r] = v;
    written_ |= reg_bit(r);
  }
  // The second operand: src register, or imm sign-extended to 64 bits and
  // then truncated to T.
  template <typename T>
  T operand(const Insn& in) const {
    return bpf::is_reg_source(in) ? T(reg(in.src)) : T(int64_t(in.imm));
  }
  // The address of an access of `size` bytes; in bounds-check mode it must
  // lie in the memory, the stack region or a reachable host range.
  uint8_t* address(uint8_t base, int32_t off, size_t size) const {
    const uint64_t a = reg(base) + uint64_t(int64_t(off));
    if (opts_.safety.bounds_check && !allowed(a, size)) fail(access_fault(a, size));
    return reinterpret_cast<uint8_t*>(uintptr_t(a));
  }
  bool allowed(uint64_t a, uint64_t size) const { return record_->allows(a, size); }
  // Where a load or store goes: as written, or, for a field of a rewritten
  // context (InterpOptions::ctx_fields), its place in the native context.
  struct Access {
    int32_t offset;
    unsigned size;
  };
  Access access(const Insn& in, unsigned size) const {
    if (p_ == entry_ && pc_ < opts_.ctx_fields.size() && opts_.ctx_fields[pc_]) {
      const bool store = bpf::class_of(in.opcode) != bpf::LDX;
      const bpf::NativeAccess a = bpf::native_access(*opts_.ctx_fields[pc_], uint32_t(in.off), size, store);
      return {a.offset, a.size};
    }
    if (p_ != entry_ && bpf::needs_context_rewrite(*p_))
      fail("a tail call into a typed program is not supported by the interpreter yet");
    return {in.off, size};
  }

  // One handler per instruction family. The data handlers leave pc_ to
  // run(); jump() and the call/exit handlers below it set pc_ themselves.
  template <typename T> void alu(const Insn& in);
  void endian(const Insn& in);
  void load(const Insn& in);
  void store(const Insn& in);
  template <typename T> void atomic(const Insn& in);
  void lddw(const Insn& lo);
  // Sets pc_ to the next instruction; returns r0 when the program ends.
  std::optional<uint64_t> jump(const Insn& in);
  std::optional<uint64_t> call_helper(uint64_t id);
  void call_local(const Insn& in);
  std::optional<uint64_t> exit();
  void branch(int64_t off);

  const bpf::Program* p_;
  const bpf::Program* entry_;  // the program the run started with (ctx_fields are its)
  const HelperTable& helpers_;
  const InterpOptions& opts_;
  size_t pc_ = 0;
  uint64_t r_[bpf::kNumRegs] = {};
  uint16_t written_ = reg_bit(1) | reg_bit(2) | reg_bit(bpf::kFramePointer);  // check_uninit
  CallFrame frames_[bpf::kMaxCallDepth];
  int depth_ = 0;  // number of active bpf-to-bpf calls; frame 0 is the entry
  alignas(16) uint8_t stack_[kStackBytes] = {};
  // Bounds-check mode: the run's record (runtime/exec/hardening.h) holds the
  // memory, the stack region a compiled program has (ir/ir.h
  // Module::stack_bytes: 512 bytes, or 8 frames with bpf-to-bpf calls) and
  // the host ranges; helpers check their pointer arguments against it too.
  std::optional<RunRecord> record_;
  HostRange memory_;
  void set_stack_region() {  // of the running program (a tail call changes it)
    bool calls = false;
    for (const Insn& in : p_->insns)
      calls |= bpf::class_of(in.opcode) == bpf::JMP && bpf::op_of(in) == bpf::CALL && in.src == bpf::CALL_LOCAL;
    const uint64_t top = uint64_t(uintptr_t(stack_ + kStackBytes));
    const uint64_t size = calls ? kStackBytes : size_t(bpf::kStackSize);
    record_->set_regions(memory_, {top - size, size});
  }
};

uint64_t Machine::run(void* mem, size_t len) {
  r_[1] = uint64_t(uintptr_t(mem));
  r_[2] = len;
  r_[bpf::kFramePointer] = uint64_t(uintptr_t(stack_ + kStackBytes));
  std::optional<RunScope> scope;
  if (opts_.safety.bounds_check) {
    record_.emplace(reachable_ranges(helpers_), opts_.safety);
    memory_ = {uint64_t(uintptr_t(mem)), mem ? len : 0};
    set_stack_region();
    scope.emplace(&*record_);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(opts_.safety.time_budget_ns);
  uint64_t executed = 0;
  for (;;) {
    const size_t n = p_->insns.size();  // changes with a tail call
    if (pc_ >= n) {
      if (n == 0) fail("empty program");
      pc_ = n - 1;
      fail("execution ran past the last instruction");
    }
    if (opts_.insn_budget != 0 && executed == opts_.insn_budget)
      fail("instruction budget of " + std::to_string(opts_.insn_budget) + " exhausted");
    if (opts_.safety.time_budget_ns != 0 && executed % 1024 == 0 && std::chrono::steady_clock::now() >= deadline)
      fail("time budget of " + std::to_string(opts_.safety.time_budget_ns / 1000) + " us exhausted");
    ++executed;
    const Insn& in = p_->insns[pc_];
    switch (bpf::class_of(in.opcode)) {
      case bpf::ALU:
        if (bpf::op_of(in) == bpf::END) endian(in); else alu<uint32_t>(in);
        pc_ += 1;
        break;
      case bpf::ALU64:
        if (bpf::op_of(in) == bpf::END) endian(in); else alu<uint64_t>(in);
        pc_ += 1;
        break;
      case bpf::JMP:
      case bpf::JMP32:
        if (auto result = jump(in)) return *result;
        break;
      case bpf::LDX: load(in); pc_ += 1; break;
      case bpf::ST:
      case bpf::STX: store(in); pc_ += 1; break;
      case bpf::LD: lddw(in); pc_ += 2; break;
    }
  }
}

// ALU (T = uint32_t) and ALU64 (T = uint64_t), every op except END.
template <typename T>
void Machine::alu(const Insn& in) {
  using S = std::make_signed_t<T>;
  constexpr T kShiftMask = sizeof(T) * 8 - 1;
  const uint8_t op = bpf::op_of(in);
  const T a = op == bpf::MOV ? T(0) : T(reg(in.dst));  // a move does not read its destination
  const T b = op == bpf::NEG ? T(0) : operand<T>(in);
  // DIV and MOD: off 0 is unsigned, off 1 signed (cpu v4, sdiv/smod).
  if ((op == bpf::DIV || op == bpf::MOD) && in.off != 0 && in.off != 1)
    fail("invalid offset " + std::to_string(in.off) + " for div/mod");
  const bool is_signed = in.off == 1;
  T r;
  switch (op) {
    case bpf::ADD: r = a + b; break;
    case bpf::SUB: r = a - b; break;
    case bpf::MUL: r = a * b; break;
    case bpf::OR: r = a | b; break;
    case bpf::AND: r = a & b; break;
    case bpf::XOR: r = a ^ b; break;
    case bpf::LSH: r = a << (b & kShiftMask); break;
    case bpf::RSH: r = a >> (b & kShiftMask); break;
    case bpf::ARSH: r = T(S(a) >> (b & kShiftMask)); break;
    case bpf::NEG: r = T(0) - a; break;
    case bpf::DIV:
      if (b == 0)
        r = 0;
      else if (!is_signed)
        r = a / b;
      else if (S(b) == -1)
        r = T(0) - a;  // INT_MIN / -1 = INT_MIN, without the host trap
      else
        r = T(S(a) / S(b));
      break;
    case bpf::MOD:
      if (b == 0)
        r = a;
      else if (!is_signed)
        r = a % b;
      else if (S(b) == -1)
        r = 0;  // INT_MIN % -1 = 0, without the host trap
      else
        r = T(S(a) % S(b));
      break;
    case bpf::MOV:
      switch (in.off) {
        case 0: r = b; break;
        case 8: r = T(int8_t(b)); break;
        case 16: r = T(int16_t(b)); break;
        case 32: r = T(int32_t(b)); break;
        default: fail("invalid offset " + std::to_string(in.off) + " for mov");
      }
      break;
    default: bad_opcode(in);
  }
  set(in.dst, uint64_t(r));
}

// ALU|END|TO_LE truncates, ALU|END|TO_BE swaps (this host is little-endian),
// ALU64|END|TO_LE swaps unconditionally; all three zero-extend the result.
void Machine::endian(const Insn& in) {
  static_assert(std::endian::native == std::endian::little);
  const uint64_t v = reg(in.dst);
  const bool swap = bpf::class_of(in.opcode) == bpf::ALU64 || (in.opcode & bpf::TO_BE) != 0;
  if (bpf::class_of(in.opcode) == bpf::ALU64 && (in.opcode & bpf::TO_BE) != 0) bad_opcode(in);
  uint64_t r;
  switch (in.imm) {
    case 16: r = swap ? __builtin_bswap16(uint16_t(v)) : uint16_t(v); break;
    case 32: r = swap ? __builtin_bswap32(uint32_t(v)) : uint32_t(v); break;
    case 64: r = swap ? __builtin_bswap64(v) : v; break;
    default: fail("invalid byte swap width " + std::to_string(in.imm));
  }
  set(in.dst, r);
}

// LDX MEM zero-extends, LDX MEMSX sign-extends.
void Machine::load(const Insn& in) {
  const uint8_t mode = in.opcode & 0xe0;
  if (mode != bpf::MEM && mode != bpf::MEMSX) bad_opcode(in);
  const unsigned size = bpf::size_bytes(in.opcode);
  if (mode == bpf::MEMSX && size == 8) bad_opcode(in);
  const Access a = access(in, size);
  const uint8_t* p = address(in.src, a.offset, a.size);
  uint64_t v;
  switch (a.size) {
    case 1: { uint8_t x; std::memcpy(&x, p, 1); v = mode == bpf::MEMSX ? uint64_t(int8_t(x)) : x; break; }
    case 2: { uint16_t x; std::memcpy(&x, p, 2); v = mode == bpf::MEMSX ? uint64_t(int16_t(x)) : x; break; }
    case 4: { uint32_t x; std::memcpy(&x, p, 4); v = mode == bpf::MEMSX ? uint64_t(int32_t(x)) : x; break; }
    default: std::memcpy(&v, p, 8); break;
  }
  set(in.dst, v);
}

// ST stores imm (sign-extended to 64 bits for DW), STX a register; STX
// ATOMIC goes to atomic<T>.
void Machine::store(const Insn& in) {
  const uint8_t mode = in.opcode & 0xe0;
  const unsigned size = bpf::size_bytes(in.opcode);
  const bool is_stx = bpf::class_of(in.opcode) == bpf::STX;
  if (is_stx && mode == bpf::ATOMIC) {
    if (size == 4) return atomic<uint32_t>(in);
    if (size == 8) return atomic<uint64_t>(in);
    bad_opcode(in);
  }
  if (mode != bpf::MEM) bad_opcode(in);
  const uint64_t v = is_stx ? reg(in.src) : uint64_t(int64_t(in.imm));
  const Access a = access(in, size);
  uint8_t* p = address(in.dst, a.offset, a.size);
  switch (a.size) {
    case 1: { uint8_t x = uint8_t(v); std::memcpy(p, &x, 1); break; }
    case 2: { uint16_t x = uint16_t(v); std::memcpy(p, &x, 2); break; }
    case 4: { uint32_t x = uint32_t(v); std::memcpy(p, &x, 4); break; }
    default: std::memcpy(p, &v, 8); break;
  }
}

// STX ATOMIC of width T; memory may be shared, so these are real atomics.
// FETCH puts the old value in src (32-bit: zero-extended); CMPXCHG compares
// (the low T of) r0 with memory and puts the old value in r0.
template <typename T>
void Machine::atomic(const Insn& in) {
  T* p = reinterpret_cast<T*>(address(in.dst, in.off, sizeof(T)));
  const T v = T(reg(in.src));
  T old;
  switch (in.imm & ~bpf::FETCH) {
    case bpf::ATOMIC_ADD: old = __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); break;
    case bpf::ATOMIC_OR: old = __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); break;
    case bpf::ATOMIC_AND: old = __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); break;
    case bpf::ATOMIC_XOR: old = __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); break;
    case bpf::ATOMIC_XCHG & ~bpf::FETCH:
      if (in.imm != bpf::ATOMIC_XCHG) fail("invalid atomic operation " + hex(uint32_t(in.imm)));
      old = __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
      break;
    case bpf::ATOMIC_CMPXCHG & ~bpf::FETCH: {
      if (in.imm != bpf::ATOMIC_CMPXCHG) fail("invalid atomic operation " + hex(uint32_t(in.imm)));
      T expected = T(reg(0));
      __atomic_compare_exchange_n(p, &expected, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
      set(0, uint64_t(expected));  // the old value whether or not it matched
      return;
    }
    default: fail("invalid atomic operation " + hex(uint32_t(in.imm)));
  }
  if (in.imm & bpf::FETCH) set(in.src, uint64_t(old));
}

// LD|IMM|DW: imm64 from two slots. Only src 0 (a plain constant) for now.
void Machine::lddw(const Insn& lo) {
  if (lo.opcode != bpf::LDDW) bad_opcode(lo);
  if (pc_ + 1 >= p_->insns.size()) fail("lddw is missing its second slot");
  if (lo.src != bpf::LDDW_IMM64) fail("unsupported lddw source " + std::to_string(lo.src));
  const Insn& hi = p_->insns[pc_ + 1];
  set(lo.dst, uint64_t(uint32_t(lo.imm)) | uint64_t(uint32_t(hi.imm)) << 32);
}

void Machine::branch(int64_t off) {
  const int64_t target = int64_t(pc_) + 1 + off;
  if (target < 0 || uint64_t(target) >= p_->insns.size())
    fail("jump target " + std::to_string(target) + " out of range");
  pc_ = size_t(target);
}

std::optional<uint64_t> Machine::jump(const Insn& in) {
  const bool wide = bpf::class_of(in.opcode) == bpf::JMP;
  const uint8_t op = bpf::op_of(in);
  switch (op) {
    case bpf::JA:
      if (bpf::is_reg_source(in)) bad_opcode(in);
      branch(wide ? in.off : in.imm);  // JMP32|JA is gotol: imm is the offset
      return std::nullopt;
    case bpf::CALL:
      if (!wide) bad_opcode(in);
      if (bpf::is_reg_source(in)) return call_helper(reg(in.dst));  // callx
      switch (in.src) {
        case bpf::CALL_HELPER: return call_helper(uint32_t(in.imm));
        case bpf::CALL_LOCAL: call_local(in); return std::nullopt;
        default: fail("unsupported call source " + std::to_string(in.src));
      }
    case bpf::EXIT:
      if (!wide || bpf::is_reg_source(in)) bad_opcode(in);
      return exit();
    default: break;
  }
  const auto taken = wide ? condition<uint64_t>(op, reg(in.dst), operand<uint64_t>(in))
                          : condition<uint32_t>(op, uint32_t(reg(in.dst)), operand<uint32_t>(in));
  if (!taken) bad_opcode(in);
  if (*taken)
    branch(in.off);
  else
    pc_ += 1;
  return std::nullopt;
}

std::optional<uint64_t> Machine::call_helper(uint64_t id) {
  const Helper* h = id <= UINT32_MAX ? helpers_.find(uint32_t(id)) : nullptr;
  if (h == nullptr || h->fn == nullptr) fail("unknown helper " + std::to_string(id));
  r_[0] = h->fn(r_[1], r_[2], r_[3], r_[4], r_[5]);
  written_ = uint16_t((written_ & ~kArgRegs) | reg_bit(0));  // a call clobbers r1-r5
  if (h->unwind_on_zero && r_[0] == 0) return uint64_t(0);
  if (h->tail_call && r_[0] != 0) {  // the target replaces the program, from the entry frame
    p_ = reinterpret_cast<const bpf::Program*>(uintptr_t(r_[0]));
    if (opts_.safety.bounds_check) {  // as hardened compiled code, the target starts on a zeroed stack
      set_stack_region();
      std::memset(stack_, 0, kStackBytes);
    }
    depth_ = 0;
    r_[bpf::kFramePointer] = uint64_t(uintptr_t(stack_ + kStackBytes));
    written_ = reg_bit(1) | reg_bit(2) | reg_bit(bpf::kFramePointer);  // as at the entry
    pc_ = 0;
    return std::nullopt;
  }
  pc_ += 1;
  return std::nullopt;
}

void Machine::call_local(const Insn& in) {
  if (depth_ + 1 >= bpf::kMaxCallDepth) fail("call depth exceeded");
  const int64_t target = int64_t(pc_) + 1 + in.imm;
  if (target < 0 || uint64_t(target) >= p_->insns.size())
    fail("call target " + std::to_string(target) + " out of range");
  CallFrame& f = frames_[depth_++];
  f.return_pc = pc_ + 1;
  std::memcpy(f.saved, &r_[6], sizeof f.saved);
  f.saved_r10 = r_[bpf::kFramePointer];
  f.saved_written = written_;
  written_ = uint16_t((written_ & kArgRegs) | reg_bit(bpf::kFramePointer));  // the callee has its arguments
  r_[bpf::kFramePointer] -= bpf::kStackSize;
  pc_ = size_t(target);
}

std::optional<uint64_t> Machine::exit() {
  if (depth_ == 0) {
    if (opts_.check_uninit && !(written_ & reg_bit(0))) fail("R0 read before it was written");
    return r_[0];
  }
  const CallFrame& f = frames_[--depth_];
  std::memcpy(&r_[6], f.saved, sizeof f.saved);
  r_[bpf::kFramePointer] = f.saved_r10;
  written_ = uint16_t((f.saved_written & ~(kArgRegs | reg_bit(0))) | (written_ & reg_bit(0)));
  pc_ = f.return_pc;
  return std::nullopt;
}

}  // namespace

namespace {
// Tail-call targets are the programs themselves, validated on first use.
class InterpLoader final : public TailCallLoader {
 public:
  InterpLoader(const HelperTable& helpers, bool verify, uint32_t max_loops)
      : helpers_(helpers), verify_(verify), max_loops_(max_loops) {}
  uint64_t load(const std::shared_ptr<const bpf::Program>& target) override {
    for (const auto& p : loaded_)
      if (p == target) return uint64_t(uintptr_t(p.get()));
    bpf::ValidateOptions v;
    v.helper_exists = [&](uint32_t id) { return helpers_.find(id) != nullptr; };
    bpf::validate(*target, v);
    if (verify_) bpf::verifier::verify(*target, helpers_.verify_options());
    loaded_.push_back(target);  // kept alive for the run
    std::optional<bpf::Program> rewritten = bpf::rewrite_loop_helper(*target, max_loops_);
    if (!rewritten) return uint64_t(uintptr_t(target.get()));
    rewritten_.push_back(std::make_shared<const bpf::Program>(std::move(*rewritten)));
    return uint64_t(uintptr_t(rewritten_.back().get()));
  }

 private:
  const HelperTable& helpers_;
  const bool verify_;  // targets are verified as the program was
  const uint32_t max_loops_;
  std::vector<std::shared_ptr<const bpf::Program>> loaded_;
  std::vector<std::shared_ptr<const bpf::Program>> rewritten_;  // bpf_loop as bytecode (frontend/loop_helper.h)
};
}  // namespace

uint64_t interpret(const bpf::Program& p, const HelperTable& helpers, void* mem, size_t len,
                   const InterpOptions& opts) {
  ContextScope scope(helpers.context());
  InterpLoader loader(helpers, opts.safety.verify, opts.max_loops);
  TailCallRun tail_calls(loader);
  // A typed program's context accesses come from the verifier's result.
  InterpOptions with_ctx;
  bpf::verifier::VerifyResult verified;
  if (bpf::needs_context_rewrite(p) && opts.ctx_fields.empty()) {
    verified = bpf::verifier::verify(p, helpers.verify_options());
    with_ctx = opts;
    with_ctx.ctx_fields = verified.ctx_fields;
  }
  // bpf_loop runs as bytecode; the slots keep their indexes, so ctx_fields still apply.
  const std::optional<bpf::Program> rewritten = bpf::rewrite_loop_helper(p, opts.max_loops);
  Machine m(rewritten ? *rewritten : p, helpers, with_ctx.ctx_fields.empty() ? opts : with_ctx);
  const uint64_t r0 = m.run(mem, len);
  tail_calls.finish();
  return r0;
}

}  // namespace sb::rt
