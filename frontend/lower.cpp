// Bytecode -> IR. Mostly one-to-one; the BPF encodings that say two things
// at once are split here, once, so no backend sees them:
//   DIV/MOD with off=1 -> SDiv/SMod; MOV with off -> MovSx; END -> Bswap or
//   a zero-extension; immediate shift counts masked to the width; an
//   unwinding helper call -> Call + "if r0 == 0 unwind"; the tail-call
//   helper -> TailCall; callx -> a compare chain over the registered helpers
//   ending in a Trap; bpf_loop -> a loop of local calls (frontend/loop_helper.h,
//   on a copy of the program); a load or store of a rewritten context (XDP's xdp_md)
//   -> the same access of the native context the runtime builds.
#include "frontend/lower.h"

#include <algorithm>

#include "frontend/loop_helper.h"
#include "frontend/validator.h"
#include "ir/diag.h"

namespace sb::bpf {

using ir::Inst;
using ir::Op;

namespace {

Op alu_op(uint8_t op, int16_t off) {
  switch (op) {
    case ADD: return Op::Add;
    case SUB: return Op::Sub;
    case MUL: return Op::Mul;
    case DIV: return off ? Op::SDiv : Op::UDiv;
    case OR: return Op::Or;
    case AND: return Op::And;
    case LSH: return Op::Shl;
    case RSH: return Op::LShr;
    case MOD: return off ? Op::SMod : Op::UMod;
    case XOR: return Op::Xor;
    case ARSH: return Op::AShr;
    default: return Op::Mov;
  }
}

ir::Cond jmp_cond(uint8_t op) {
  switch (op) {
    case JEQ: return ir::Cond::Eq;
    case JGT: return ir::Cond::Gt;
    case JGE: return ir::Cond::Ge;
    case JSET: return ir::Cond::Set;
    case JNE: return ir::Cond::Ne;
    case JSGT: return ir::Cond::SGt;
    case JSGE: return ir::Cond::SGe;
    case JLT: return ir::Cond::Lt;
    case JLE: return ir::Cond::Le;
    case JSLT: return ir::Cond::SLt;
    default: return ir::Cond::SLe;
  }
}

ir::AtomicOp atomic_op(int32_t imm) {
  switch (imm & ~FETCH) {
    case ATOMIC_ADD: return ir::AtomicOp::Add;
    case ATOMIC_OR: return ir::AtomicOp::Or;
    case ATOMIC_AND: return ir::AtomicOp::And;
    case ATOMIC_XOR: return ir::AtomicOp::Xor;
    case ATOMIC_XCHG & ~FETCH: return ir::AtomicOp::Xchg;
    default: return ir::AtomicOp::CmpXchg;
  }
}

class Lowerer {
 public:
  Lowerer(const Program& p, const LowerOptions& opts) : p_(p), opts_(opts) {}

  ir::Module run() {
    starts_ = function_starts(p_);
    ir::Module m;
    m.functions.reserve(starts_.size());
    for (size_t f = 0; f < starts_.size(); ++f) {
      size_t end = f + 1 < starts_.size() ? starts_[f + 1] : p_.insns.size();
      m.functions.push_back(lower_function(f, starts_[f], end));
    }
    return m;
  }

 private:
  ir::Function lower_function(size_t index, size_t begin, size_t end) {
    ir::Function fn;
    fn.name = index == 0 ? std::string("main") : std::string("f").append(std::to_string(begin));
    fn_ = &fn;
    begin_ = begin;
    labels_.assign(end - begin, kNoLabel);
    fn.code.reserve(end - begin + 8);
    for (size_t pc = begin; pc < end; ++pc) {
      const Insn& in = p_.insns[pc];
      if (is_lddw(in)) { ++pc; continue; }
      const Class c = class_of(in.opcode);
      pc_ = uint32_t(pc);
      if ((c == JMP || c == JMP32) && op_of(in) != CALL && op_of(in) != EXIT) label_at(jump_target(pc));
    }
    for (size_t pc = begin; pc < end; ++pc) {
      if (labels_[pc - begin] != kNoLabel) fn.code.push_back(ir::label(labels_[pc - begin]));
      pc_ = uint32_t(pc);
      lower_insn(p_.insns[pc]);
      if (is_lddw(p_.insns[pc])) ++pc;
    }
    return fn;
  }

  size_t jump_target(size_t pc) const {
    const Insn& in = p_.insns[pc];
    int64_t rel = class_of(in.opcode) == JMP32 && op_of(in) == JA ? in.imm : in.off;
    return size_t(int64_t(pc) + 1 + rel);
  }
  uint32_t label_at(size_t pc) {
    if (pc < begin_ || pc - begin_ >= labels_.size())  // the validator rejects these
      throw Error(insn_location(p_.name, pc_), "jump target " + std::to_string(pc) + " is outside its function");
    uint32_t& l = labels_[pc - begin_];
    if (l == kNoLabel) l = fn_->new_label();
    return l;
  }
  void add(Inst i) {
    i.origin = pc_;
    fn_->code.push_back(i);
  }

  void lower_insn(const Insn& in) {
    const Class c = class_of(in.opcode);
    switch (c) {
      case ALU: case ALU64: return lower_alu(in, c == ALU64 ? 64 : 32);
      case JMP: case JMP32: return lower_jmp(in, c == JMP ? 64 : 32);
      case LD: {
        if (in.src != LDDW_IMM64)
          throw Error(insn_location(p_.name, pc_), "lddw source " + std::to_string(in.src) + " is not supported yet");
        Inst i;
        i.op = Op::LoadImm, i.dst = in.dst;
        i.imm = int64_t(uint64_t(uint32_t(in.imm)) | uint64_t(uint32_t(p_.insns[pc_ + 1].imm)) << 32);
        return add(i);
      }
      case LDX: {
        const Access a = access(in);
        return add(ir::load(a.size, (in.opcode & 0xe0) == MEMSX, in.dst, in.src, a.offset));
      }
      case ST: {
        const Access a = access(in);
        return add(ir::store_imm(a.size, in.dst, a.offset, in.imm));
      }
      case STX:
        if ((in.opcode & 0xe0) == ATOMIC) {
          Inst i;
          i.op = Op::Atomic, i.dst = in.dst, i.src = in.src, i.off = in.off;
          i.size = uint8_t(size_bytes(in.opcode)), i.width = uint8_t(i.size * 8);
          i.aop = atomic_op(in.imm);
          i.fetch = (in.imm & FETCH) != 0;
          return add(i);
        }
        {
          const Access a = access(in);
          return add(ir::store(a.size, in.dst, a.offset, in.src));
        }
    }
  }

  // Where a load or store goes: as written, or, for a context field, its
  // place in the native context.
  struct Access {
    int size;
    int32_t offset;
  };
  Access access(const Insn& in) const {
    const unsigned size = size_bytes(in.opcode);
    if (pc_ < opts_.ctx_fields.size() && opts_.ctx_fields[pc_]) {
      const bool store = class_of(in.opcode) != LDX;
      const NativeAccess a = native_access(*opts_.ctx_fields[pc_], uint32_t(in.off), size, store);
      return {a.size, a.offset};
    }
    return {int(size), in.off};
  }

  void lower_alu(const Insn& in, int w) {
    const uint8_t op = op_of(in);
    if (op == END) {
      // ALU64|END is bswap; ALU|END converts to the named byte order. All
      // targets are little-endian, so "to little endian" only truncates.
      const bool swap = w == 64 || (in.opcode & X) == TO_BE;
      if (swap) {
        Inst i = ir::alu(Op::Bswap, 64, in.dst, in.dst);
        i.ext = uint8_t(in.imm);
        return add(i);
      }
      if (in.imm == 16) return add(ir::alu_imm(Op::And, 64, in.dst, 0xffff));
      if (in.imm == 32) return add(ir::alu(Op::Mov, 32, in.dst, in.dst));
      return;  // le64: nothing to do
    }
    if (op == NEG) return add(ir::alu(Op::Neg, w, in.dst, in.dst));
    if (op == MOV && in.off != 0) {
      Inst i = ir::alu(Op::MovSx, w, in.dst, in.src);
      i.ext = uint8_t(in.off);
      return add(i);
    }
    const Op o = alu_op(op, in.off);
    if (is_reg_source(in)) return add(ir::alu(o, w, in.dst, in.src));
    int64_t imm = in.imm;  // sign-extended (RFC 9669 section 4.1)
    if (o == Op::Shl || o == Op::LShr || o == Op::AShr) imm &= w - 1;
    add(ir::alu_imm(o, w, in.dst, imm));
  }

  void lower_jmp(const Insn& in, int w) {
    const uint8_t op = op_of(in);
    switch (op) {
      case JA:
        return add(ir::jump(label_at(jump_target(pc_))));
      case EXIT: {
        Inst i;
        i.op = Op::Exit;
        return add(i);
      }
      case CALL:
        if (is_reg_source(in)) return lower_callx(in.dst);
        if (in.src == CALL_LOCAL) {
          Inst i;
          i.op = Op::CallLocal;
          const size_t start = size_t(int64_t(pc_) + 1 + in.imm);
          const auto it = std::lower_bound(starts_.begin(), starts_.end(), start);
          if (it == starts_.end() || *it != start)
            throw Error(insn_location(p_.name, pc_), "call target is not a function start");
          i.target = uint32_t(it - starts_.begin());
          return add(i);
        }
        return lower_helper_call(uint32_t(in.imm));
      default: {
        const uint32_t target = label_at(jump_target(pc_));
        if (is_reg_source(in)) return add(ir::branch(jmp_cond(op), w, in.dst, in.src, target));
        return add(ir::branch_imm(jmp_cond(op), w, in.dst, in.imm, target));
      }
    }
  }

  const HelperInfo* helper(uint32_t id) const {
    for (const HelperInfo& h : opts_.helpers)
      if (h.id == id) return &h;
    return nullptr;
  }

  void lower_helper_call(uint32_t id) {
    const HelperInfo* h = helper(id);
    Inst call;
    call.op = h && h->tail_call ? Op::TailCall : Op::Call, call.target = id;
    add(call);
    if (h && h->unwind_on_zero) {
      uint32_t go_on = fn_->new_label();
      add(ir::branch_imm(ir::Cond::Ne, 64, 0, 0, go_on));
      Inst unwind;
      unwind.op = Op::Unwind;
      add(unwind);
      add(ir::label(go_on));
    }
  }

  // callx: the register holds a helper id (as in the conformance suite);
  // dispatch among the registered helpers, trap on any other value.
  void lower_callx(uint8_t reg) {
    uint32_t done = fn_->new_label();
    for (const HelperInfo& h : opts_.helpers) {
      uint32_t next = fn_->new_label();
      add(ir::branch_imm(ir::Cond::Ne, 64, reg, h.id, next));
      lower_helper_call(h.id);
      add(ir::jump(done));
      add(ir::label(next));
    }
    add(ir::trap(ir::TrapCode::BadCallx));
    add(ir::label(done));
  }

  const Program& p_;
  const LowerOptions& opts_;
  static constexpr uint32_t kNoLabel = ~0u;
  std::vector<size_t> starts_;          // sorted: function f begins at starts_[f]
  std::vector<uint32_t> labels_;        // label of slot begin_ + i, or kNoLabel
  size_t begin_ = 0;
  ir::Function* fn_ = nullptr;
  uint32_t pc_ = 0;
};

}  // namespace

ir::Module lower(const Program& p, const LowerOptions& opts) {
  if (const std::optional<Program> rewritten = rewrite_loop_helper(p)) return Lowerer(*rewritten, opts).run();
  return Lowerer(p, opts).run();
}

}  // namespace sb::bpf
