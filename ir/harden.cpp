// The hardening passes (see ir/harden.h for what each guarantees).
#include "ir/harden.h"

#include <random>

namespace sb::ir {

namespace {

constexpr uint8_t kArgRegsSaved = 6;  // r0-r5, clobbered by the slow path's call

int size_index(uint8_t size) { return size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3; }

// Emits the new code of one function; every inserted instruction carries
// the origin of the instruction it guards, so faults and listings name it.
class Rewriter {
 public:
  Rewriter(const Module& m, Function& fn) : fn_(fn), block_(-int32_t(m.stack_bytes() + kRunBlockBytes)),
                                             stack_(m.stack_bytes()) {}

  void add(Inst i) {
    i.origin = origin_;
    out_.push_back(i);
  }
  void set_origin(uint32_t o) { origin_ = o; }
  uint32_t new_label() { return fn_.new_label(); }
  // Offset of a run-block field from the entry frame.
  int32_t field(size_t offset) const { return block_ + int32_t(offset); }

  void save_args() {
    add(entry_frame(kAX2));
    for (uint8_t r = 0; r < kArgRegsSaved; ++r)
      add(store(8, kAX2, field(offsetof(RunBlock, saved) + 8 * r), r));
  }
  void restore_args() {
    add(entry_frame(kAX2));
    for (uint8_t r = 0; r < kArgRegsSaved; ++r)
      add(load(8, false, r, kAX2, field(offsetof(RunBlock, saved) + 8 * r)));
  }

  // At the entry: the init helper fills the run block (r1, r2 are the
  // program's memory already), zeroes the BPF stack and the saved r0, r3-r5;
  // r6-r9 are zeroed here. So, as in the interpreter, a program starts from
  // zeroes and sees nothing of the host's registers or stack.
  void run_init() {
    save_args();
    add(entry_frame(3));
    add(alu_imm(Op::Mov, 64, 4, stack_));
    add(call_helper(kRunInitHelper));
    restore_args();
    for (uint8_t r = 6; r <= 9; ++r) add(alu_imm(Op::Mov, 64, r, 0));
  }

  // ok iff lo <= ax <= last[size], with lo and last loaded from the block.
  void range_check(size_t lo, size_t last, uint8_t size, uint32_t ok) {
    const uint32_t next = new_label();
    add(entry_frame(kAX2));
    add(load(8, false, kAX2, kAX2, field(lo)));
    add(branch(Cond::Lt, 64, kAX, kAX2, next));
    add(entry_frame(kAX2));
    add(load(8, false, kAX2, kAX2, field(last + 8 * size_index(size))));
    add(branch(Cond::Le, 64, kAX, kAX2, ok));
    add(ir::label(next));
  }

  void bounds_check(const Inst& access, uint8_t base) {
    const uint8_t size = access.size;
    const uint32_t ok = new_label(), not_stack = new_label();
    add(alu(Op::Mov, 64, kAX, base));
    if (access.off) add(alu_imm(Op::Add, 64, kAX, access.off));
    // The stack region [top - stack, top - size].
    add(entry_frame(kAX2));
    add(alu_imm(Op::Add, 64, kAX2, -int64_t(size)));
    add(branch(Cond::Gt, 64, kAX, kAX2, not_stack));
    add(alu_imm(Op::Add, 64, kAX2, -int64_t(stack_ - size)));
    add(branch(Cond::Ge, 64, kAX, kAX2, ok));
    add(ir::label(not_stack));
    range_check(offsetof(RunBlock, mem_lo), offsetof(RunBlock, mem_last), size, ok);
    range_check(offsetof(RunBlock, cache_lo), offsetof(RunBlock, cache_last), size, ok);
    // Slow path: the helper searches the host ranges (and refills the cache).
    save_args();
    add(alu(Op::Mov, 64, 1, kAX));
    add(alu_imm(Op::Mov, 64, 2, size));
    add(alu_imm(Op::Mov, 64, 3, int64_t(access.origin)));
    add(entry_frame(4));
    add(alu_imm(Op::Add, 64, 4, block_));
    add(call_helper(kCheckAccessHelper));
    add(alu(Op::Mov, 64, kAX, 0));
    restore_args();
    add(branch_imm(Cond::Ne, 64, kAX, 0, ok));
    add(trap(TrapCode::OutOfBounds));
    add(ir::label(ok));
  }

  void time_poll() {
    const uint32_t go_on = new_label();
    add(entry_frame(kAX2));
    add(load(8, false, kAX2, kAX2, field(offsetof(RunBlock, stop_ptr))));
    add(load(8, false, kAX2, kAX2, 0));
    add(branch_imm(Cond::Eq, 64, kAX2, 0, go_on));
    add(trap(TrapCode::TimeLimit));
    add(ir::label(go_on));
  }

  std::vector<Inst>& out() { return out_; }

 private:
  Function& fn_;
  const int32_t block_;   // the run block's offset from the entry frame
  const uint32_t stack_;  // bytes of the BPF stack region
  std::vector<Inst> out_;
  uint32_t origin_ = kNoOrigin;
};

// An access at [r10 + off, r10 + off + size) inside the function's own
// frame: r10 is never written, so it needs no check.
bool in_own_frame(const Function& fn, uint8_t base, int32_t off, uint8_t size) {
  return base == kFP && off >= -int64_t(fn.frame_size) && int64_t(off) + size <= 0;
}

void check_and_poll(Module& m, size_t f, const HardenOptions& opts) {
  Function& fn = m.functions[f];
  Rewriter w(m, fn);
  if (f == 0) {
    w.set_origin(fn.code.empty() ? kNoOrigin : fn.code.front().origin);
    w.run_init();
  }
  std::vector<bool> seen(fn.num_labels, false);  // labels defined so far: a branch to one goes back
  for (const Inst& i : fn.code) {
    w.set_origin(i.origin);
    if (i.op == Op::Label) seen[i.target] = true;
    const Form form = op_form(i.op);
    if (opts.time_polls && (form == Form::Jump || form == Form::Branch) && seen[i.target]) w.time_poll();
    if (opts.bounds_check && (form == Form::Load || form == Form::Store || form == Form::Atomic)) {
      const uint8_t base = form == Form::Load ? i.src : i.dst;
      const bool proven = opts.proven && i.origin < opts.proven->size() && (*opts.proven)[i.origin];
      if (!proven && !in_own_frame(fn, base, i.off, i.size)) w.bounds_check(i, base);
    }
    w.out().push_back(i);
  }
  fn.code = std::move(w.out());
}

// The immediate of `i` as the 64-bit value the operation uses, when the
// instruction has one the program chose.
bool blindable(const Inst& i) {
  if (i.dst == kAX || i.dst == kAX2) return false;  // the passes' own constants
  switch (op_form(i.op)) {
    case Form::Alu: case Form::Store: case Form::Branch: return i.k;
    case Form::Imm64: return true;
    default: return false;
  }
}

void blind(Function& fn, std::mt19937_64& rng) {
  std::vector<Inst> out;
  out.reserve(fn.code.size() * 3);
  for (Inst i : fn.code) {
    if (!blindable(i)) {
      out.push_back(i);
      continue;
    }
    auto add = [&](Inst n) {
      n.origin = i.origin;
      out.push_back(n);
    };
    if (i.op == Op::LoadImm) {  // dst = (v ^ R) ^ R with a 64-bit R
      const int64_t r = int64_t(rng());
      Inst masked = i;
      masked.imm = i.imm ^ r;
      out.push_back(masked);
      Inst key = i;
      key.dst = kAX, key.imm = r;
      out.push_back(key);
      add(alu(Op::Xor, 64, i.dst, kAX));
      continue;
    }
    // ax = (imm ^ R) ^ R with R a sign-extended 32-bit value, so both
    // halves fit the backends' 32-bit immediate forms as imm does.
    const int64_t r = int64_t(int32_t(uint32_t(rng())));
    add(alu_imm(Op::Mov, 64, kAX, i.imm ^ r));
    add(alu_imm(Op::Xor, 64, kAX, r));
    i.k = false, i.src = kAX, i.imm = 0;
    out.push_back(i);
  }
  fn.code = std::move(out);
}

}  // namespace

void harden(Module& m, const HardenOptions& opts) {
  if (opts.bounds_check || opts.time_polls)
    for (size_t f = 0; f < m.functions.size(); ++f) check_and_poll(m, f, opts);
  if (opts.blind_constants) {
    std::mt19937_64 rng(opts.blind_seed ? opts.blind_seed : std::random_device{}());
    for (Function& fn : m.functions) blind(fn, rng);
  }
}

}  // namespace sb::ir
