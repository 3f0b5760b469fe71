#include "backends/isel.h"

#include <llvm/MC/MCContext.h>

#include "ir/diag.h"

namespace sb::backend {

void ISel::run(const ir::Module& m, const std::string& entry_symbol) {
  module_ = &m;
  functions_.clear();
  for (size_t f = 0; f < m.functions.size(); ++f)
    functions_.push_back(f == 0 ? out_.named_symbol(entry_symbol) : out_.new_label());
  exit_ = out_.new_label();
  trap_ = out_.new_label();
  for (fn_index_ = 0; fn_index_ < m.functions.size(); ++fn_index_) {
    fn_ = &m.functions[fn_index_];
    labels_.clear();
    for (uint32_t l = 0; l < fn_->num_labels; ++l) labels_.push_back(out_.new_label());
    out_.begin_function(functions_[fn_index_], fn_index_ == 0);
    out_.mark_origin(mc::kOriginPrologue);
    prologue();
    uint32_t last_origin = ir::kNoOrigin;
    std::vector<bool> loop_head;  // only for a target that aligns loops
    const LoopAlignment loops = loop_alignment();
    if (loops.align) {
      loop_head.assign(fn_->num_labels, false);
      std::vector<bool> bound(fn_->num_labels, false);
      for (const ir::Inst& inst : fn_->code) {
        if (inst.op == ir::Op::Label) bound[inst.target] = true;
        if ((inst.op == ir::Op::Jmp || inst.op == ir::Op::Br) && bound[inst.target]) loop_head[inst.target] = true;
      }
    }
    for (at_ = 0; at_ < fn_->code.size(); ++at_) {
      const ir::Inst& inst = fn_->code[at_];
      if (inst.op == ir::Op::Label) {
        if (!loop_head.empty() && loop_head[inst.target]) out_.align_code(loops.align, loops.max_skip);
        out_.bind(labels_[inst.target]);
        continue;
      }
      if (inst.origin != last_origin && inst.origin != ir::kNoOrigin) {
        out_.mark_origin(inst.origin);
        last_origin = inst.origin;
      }
      select(inst);
    }
    if (fn_index_ == 0) {
      out_.mark_origin(mc::kOriginExitStub);
      program_exit_stub();
    }
  }
}

ISel::ConstantAdds ISel::constant_adds(size_t from, uint8_t reg, int width, int64_t lo, int64_t hi) const {
  ConstantAdds out{0, 0};
  for (const ir::Inst* a = next_inst(from); a && a->k && a->dst == reg && a->width == width &&
                                            (a->op == ir::Op::Add || a->op == ir::Op::Sub);
       a = next_inst(from + out.count)) {
    const int64_t c = imm_at(*a);
    if (c < -(int64_t(1) << 32) || c > (int64_t(1) << 32)) break;
    int64_t sum = out.sum + (a->op == ir::Op::Add ? c : -c);
    if (width == 32) sum = int32_t(uint32_t(uint64_t(sum)));
    if (sum < lo || sum > hi) break;
    out.sum = sum, ++out.count;
  }
  return out;
}

std::optional<ISel::ConstantAdds> ISel::copy_plus_constant(const ir::Inst& copy, int64_t lo, int64_t hi) const {
  if (copy.op != ir::Op::Mov || copy.k || copy.width != 64 || copy.dst == copy.src) return std::nullopt;
  const ConstantAdds adds = constant_adds(1, copy.dst, 64, lo, hi);
  if (adds.count == 0) return std::nullopt;
  return adds;
}

uint64_t ISel::helper_address(uint32_t id) const {
  if (!opts_.helper_address) throw Error("codegen", "no helper resolver for helper " + std::to_string(id));
  return opts_.helper_address(id);
}

const llvm::MCExpr* ISel::symbol_ref(uint32_t index, int64_t addend) {
  const llvm::MCExpr* e = ref(symbol(index));
  if (!addend) return e;
  return llvm::MCBinaryExpr::createAdd(e, llvm::MCConstantExpr::create(addend, out_.ctx()), out_.ctx());
}

}  // namespace sb::backend
