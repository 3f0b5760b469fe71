// bpf_loop as bytecode (see loop_helper.h).
#include "frontend/loop_helper.h"

#include <algorithm>
#include <cerrno>

#include "frontend/validator.h"

namespace sb::bpf {

namespace {

// The helper id of a call to bpf_loop or bpf_for_each_map_elem, else 0.
uint32_t callback_helper(const Insn& in) {
  if (in.opcode != make_opcode(JMP, CALL, K) || in.src != CALL_HELPER) return 0;
  const uint32_t id = uint32_t(in.imm);
  return id == HELPER_LOOP || id == HELPER_FOR_EACH_MAP_ELEM ? id : 0;
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
  void call_helper(uint32_t id) { out_.push_back({make_opcode(JMP, CALL, K), 0, CALL_HELPER, 0, int32_t(id)}); }
  void store_imm(uint8_t base, int16_t off, int32_t imm) { out_.push_back({make_opcode(ST, MEM, DW), base, 0, off, imm}); }
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

// The callback in r9 called with r1-r4 as they are: a compare per callback
// of the program; an address that is none of them ends the loop with -EINVAL
// (only an unverified program gets there).
void dispatch(Emitter& e, const std::vector<size_t>& callbacks, Emitter::Label after, Emitter::Label einval) {
  for (size_t cb : callbacks) {
    const auto other = e.label();
    e.jump(JNE, 9, int32_t(cb), other);
    e.call_local(cb);
    e.jump(JA, 0, 0, after);
    e.bind(other);
  }
  e.jump(JA, 0, 0, einval);
}

// Both loops keep r6 = r1 (the bound or the map), r7 = the count (0 to
// start), r8 = r3 (the context) and r9 = r2 (the callback): their own
// callee-saved registers, which the callback keeps.
void keep_arguments(Emitter& e) {
  e.alu(ALU64, MOV, 6, 1);
  e.alu_imm(ALU64, MOV, 7, 0);
  e.alu(ALU64, MOV, 8, 3);
  e.alu(ALU64, MOV, 9, 2);
}

// At `done` the count is the result; at `einval`, -EINVAL.
void returns(Emitter& e, Emitter::Label done, Emitter::Label einval) {
  e.bind(done);
  e.alu(ALU64, MOV, 0, 7);
  e.exit();
  e.bind(einval);
  e.alu_imm(ALU64, MOV, 0, -EINVAL);
  e.exit();
}

// bpf_loop: r1 = nr_loops, r2 = the callback (its first slot), r3 = its
// context, r4 = flags.
void emit_loop(Emitter& e, const std::vector<size_t>& callbacks, uint32_t max_loops) {
  const auto einval = e.label(), e2big = e.label(), next = e.label(), after = e.label(), done = e.label();
  e.jump(JNE, 4, 0, einval);
  e.jump(JGT, 1, int32_t(max_loops), e2big);
  keep_arguments(e);
  e.bind(next);
  e.jump_reg(JGE, 7, 6, done);
  e.alu(ALU64, MOV, 1, 7);
  e.alu(ALU64, MOV, 2, 8);
  dispatch(e, callbacks, after, einval);
  e.bind(after);
  e.alu_imm(ALU64, ADD, 7, 1);
  e.jump(JEQ, 0, 0, next);  // non-zero: stop, having made r7 calls
  returns(e, done, einval);
  e.bind(e2big);
  e.alu_imm(ALU, MOV, 0, -E2BIG);  // 32 bits, as the kernel's inlined loop: 0xfffffff9
  e.exit();
}

// bpf_for_each_map_elem: r1 = the map, r2 = the callback, r3 = its
// context, r4 = flags. Its frame holds the walk's cursor at fp-8 and the
// element's key at fp-kForEachKeyBytes-8 (the verifier refuses larger keys).
void emit_for_each(Emitter& e, const std::vector<size_t>& callbacks) {
  const int32_t key = -int32_t(kForEachKeyBytes) - 8;
  const auto einval = e.label(), next = e.label(), after = e.label(), done = e.label();
  e.jump(JNE, 4, 0, einval);
  keep_arguments(e);
  e.store_imm(kFramePointer, -8, 0);
  e.bind(next);
  e.alu(ALU64, MOV, 1, 6);
  e.alu(ALU64, MOV, 2, kFramePointer);
  e.alu_imm(ALU64, ADD, 2, -8);
  e.alu(ALU64, MOV, 3, kFramePointer);
  e.alu_imm(ALU64, ADD, 3, key);
  e.call_helper(kMapNextElemHelper);
  e.jump(JEQ, 0, 0, done);
  e.alu_imm(ALU64, ADD, 7, 1);  // counted before the call, as the kernel's num_elems
  e.alu(ALU64, MOV, 1, 6);
  e.alu(ALU64, MOV, 2, kFramePointer);
  e.alu_imm(ALU64, ADD, 2, key);
  e.alu(ALU64, MOV, 3, 0);
  e.alu(ALU64, MOV, 4, 8);
  dispatch(e, callbacks, after, einval);
  e.bind(after);
  e.jump(JEQ, 0, 0, next);
  returns(e, done, einval);
}

}  // namespace

std::optional<Program> rewrite_loop_helper(const Program& p, uint32_t max_loops) {
  bool needed = false;
  for (size_t i = 0; i < p.insns.size() && !needed; i += slot_count(p.insns[i]))
    needed = callback_helper(p.insns[i]) || is_func_ref(p.insns[i]);
  if (!needed) return std::nullopt;
  Program out = p;
  std::vector<Insn>& code = out.insns;
  std::vector<size_t> callbacks;
  bool loops = false, walks = false;
  for (size_t i = 0; i < p.insns.size(); i += slot_count(p.insns[i])) {
    Insn& in = code[i];
    loops |= callback_helper(in) == HELPER_LOOP;
    walks |= callback_helper(in) == HELPER_FOR_EACH_MAP_ELEM;
    if (is_func_ref(in)) {
      const size_t target = size_t(func_ref_target(in, i));
      callbacks.push_back(target);
      in.src = LDDW_IMM64;
      in.imm = int32_t(target);
      code[i + 1].imm = 0;
    }
  }
  std::sort(callbacks.begin(), callbacks.end());
  callbacks.erase(std::unique(callbacks.begin(), callbacks.end()), callbacks.end());
  // The appended functions, then the calls aimed at them.
  Emitter e(code);
  const size_t loop = code.size();
  if (loops) emit_loop(e, callbacks, std::min(max_loops, kMaxLoops));  // only lowered: a 32-bit immediate
  const size_t walk = code.size();
  if (walks) emit_for_each(e, callbacks);
  e.finish();
  for (size_t i = 0; i < p.insns.size(); i += slot_count(p.insns[i])) {
    const uint32_t id = callback_helper(code[i]);
    if (!id) continue;
    code[i].src = CALL_LOCAL;
    code[i].imm = int32_t(int64_t(id == HELPER_LOOP ? loop : walk) - int64_t(i) - 1);
  }
  return out;
}

}  // namespace sb::bpf
