// bpf_loop as bytecode (see loop_helper.h).
#include "frontend/loop_helper.h"

#include <algorithm>
#include <cerrno>

#include "frontend/validator.h"

namespace sb::bpf {

namespace {

bool is_loop_call(const Insn& in) {
  return in.opcode == make_opcode(JMP, CALL, K) && in.src == CALL_HELPER && uint32_t(in.imm) == HELPER_LOOP;
}

// A few instructions with forward jumps to labels, resolved at the end.
class Emitter {
 public:
  explicit Emitter(std::vector<Insn>& out) : out_(out) {}
  using Label = size_t;

  Label label() {
    at_.push_back(SIZE_MAX);
    return at_.size() - 1;
  }
  void bind(Label l) { at_[l] = out_.size(); }

  void alu(uint8_t cls, uint8_t op, uint8_t dst, uint8_t src) { out_.push_back({make_opcode(cls, op, X), dst, src, 0, 0}); }
  void alu_imm(uint8_t cls, uint8_t op, uint8_t dst, int32_t imm) {
    out_.push_back({make_opcode(cls, op, K), dst, 0, 0, imm});
  }
  void jump(uint8_t op, uint8_t dst, int32_t imm, Label to) {
    fix_.push_back({out_.size(), to});
    out_.push_back({make_opcode(JMP, op, K), dst, 0, 0, imm});
  }
  void jump_reg(uint8_t op, uint8_t dst, uint8_t src, Label to) {
    fix_.push_back({out_.size(), to});
    out_.push_back({make_opcode(JMP, op, X), dst, src, 0, 0});
  }
  void call_local(size_t target) {
    out_.push_back({make_opcode(JMP, CALL, K), 0, CALL_LOCAL, 0, int32_t(int64_t(target) - int64_t(out_.size()) - 1)});
  }
  void exit() { out_.push_back({make_opcode(JMP, EXIT, K), 0, 0, 0, 0}); }

  void finish() {
    for (const Fix& f : fix_) out_[f.at].off = int16_t(int64_t(at_[f.to]) - int64_t(f.at) - 1);
  }

 private:
  struct Fix {
    size_t at;
    Label to;
  };
  std::vector<Insn>& out_;
  std::vector<size_t> at_;
  std::vector<Fix> fix_;
};

}  // namespace

bool needs_loop_rewrite(const Program& p) {
  for (size_t i = 0; i < p.insns.size(); i += slot_count(p.insns[i]))
    if (is_loop_call(p.insns[i]) || is_func_ref(p.insns[i])) return true;
  return false;
}

Program rewrite_loop_helper(const Program& p) {
  Program out = p;
  if (!needs_loop_rewrite(p)) return out;
  std::vector<Insn>& code = out.insns;
  const size_t loop = code.size();  // the appended function's first slot
  std::vector<size_t> callbacks;
  for (size_t i = 0; i < p.insns.size(); i += slot_count(p.insns[i])) {
    Insn& in = code[i];
    if (is_loop_call(in)) {
      in.src = CALL_LOCAL;
      in.imm = int32_t(int64_t(loop) - int64_t(i) - 1);
    } else if (is_func_ref(in)) {
      const size_t target = size_t(func_ref_target(in, i));
      callbacks.push_back(target);
      in.src = LDDW_IMM64;
      in.imm = int32_t(target);
      code[i + 1].imm = 0;
    }
  }
  std::sort(callbacks.begin(), callbacks.end());
  callbacks.erase(std::unique(callbacks.begin(), callbacks.end()), callbacks.end());

  // r1 = nr_loops, r2 = the callback (its first slot), r3 = its context, r4 = flags.
  Emitter e(code);
  const auto einval = e.label(), e2big = e.label(), next = e.label(), after = e.label(), done = e.label();
  e.jump(JNE, 4, 0, einval);
  e.jump(JGT, 1, int32_t(kMaxLoops), e2big);
  e.alu(ALU64, MOV, 6, 1);      // r6: the bound
  e.alu_imm(ALU64, MOV, 7, 0);  // r7: calls made
  e.alu(ALU64, MOV, 8, 3);      // r8: the context
  e.alu(ALU64, MOV, 9, 2);      // r9: the callback
  e.bind(next);
  e.jump_reg(JGE, 7, 6, done);
  e.alu(ALU64, MOV, 1, 7);
  e.alu(ALU64, MOV, 2, 8);
  for (size_t cb : callbacks) {
    const auto other = e.label();
    e.jump(JNE, 9, int32_t(cb), other);
    e.call_local(cb);
    e.jump(JA, 0, 0, after);
    e.bind(other);
  }
  e.jump(JA, 0, 0, einval);  // not one of the program's functions (an unverified program)
  e.bind(after);
  e.alu_imm(ALU64, ADD, 7, 1);
  e.jump(JEQ, 0, 0, next);  // non-zero: stop, having made r7 calls
  e.bind(done);
  e.alu(ALU64, MOV, 0, 7);
  e.exit();
  e.bind(einval);
  e.alu_imm(ALU64, MOV, 0, -EINVAL);
  e.exit();
  e.bind(e2big);
  e.alu_imm(ALU, MOV, 0, -E2BIG);  // 32 bits, as the kernel's inlined loop: 0xfffffff9
  e.exit();
  e.finish();
  return out;
}

}  // namespace sb::bpf
