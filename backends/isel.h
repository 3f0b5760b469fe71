// The instruction selection driver shared by every backend: it walks the
// IR module and calls the architecture's hooks. An architecture implements
// only the hooks (its isel.cpp selects one IR instruction; its abi.cpp
// writes prologues, calls, returns and the program exit stub).
#pragma once

#include <optional>
#include <vector>

#include <llvm/MC/MCSymbol.h>

#include "backends/mc/emitter.h"
#include "backends/target.h"
#include "ir/ir.h"

namespace sb::backend {

// An instruction's immediate as its operation uses it: a 32-bit operation
// the low half, sign-extended.
inline int64_t imm_at(const ir::Inst& i) { return i.width == 32 ? int64_t(int32_t(i.imm)) : i.imm; }

class ISel {
 public:
  ISel(mc::Emitter& out, const CodegenOptions& opts) : out_(out), opts_(opts) {}
  virtual ~ISel() = default;

  // Emits every function of `m`; function 0 is the C-callable entry
  //   struct { uint64_t r0, status; } entry(void *mem, uint64_t len)
  // where status is 0 or a TrapCode (then r0 is the faulting instruction).
  void run(const ir::Module& m, const std::string& entry_symbol = "bpf_entry");

 protected:
  virtual void prologue() = 0;          // at a function's start
  virtual void select(const ir::Inst& inst) = 0;
  virtual void program_exit_stub() = 0; // after the entry function: binds exit/trap labels
  // The boundary a loop's head (a label a later jump goes back to) starts
  // at, with at most `max_skip` bytes of nops before it; 0: none.
  struct LoopAlignment {
    unsigned align = 0, max_skip = 0;
  };
  virtual LoopAlignment loop_alignment() const { return {}; }

  const ir::Module& module() const { return *module_; }
  const ir::Function& fn() const { return *fn_; }
  bool in_entry() const { return fn_index_ == 0; }
  bool is_last(const ir::Inst& inst) const { return &inst == &fn_->code.back(); }
  // The k-th instruction after the one being selected when no label lies
  // between (nothing can jump into the pair), else null: a backend may
  // select them together (one x86 lea for a copy and an add) and take
  // them, so that the driver skips them.
  const ir::Inst* next_inst(size_t k = 1) const {
    for (size_t n = at_ + 1; n < fn_->code.size() && n <= at_ + k; ++n)
      if (fn_->code[n].op == ir::Op::Label) return nullptr;
    return at_ + k < fn_->code.size() ? &fn_->code[at_ + k] : nullptr;
  }
  void take_next(size_t k = 1) { at_ += k; }
  // The constant adds and subtracts on `reg` at `width` that directly
  // follow, from next_inst(from) on: their sum (wrapped to 32 bits at
  // width 32) as long as it stays within [lo, hi], and how many they are.
  struct ConstantAdds {
    int64_t sum;
    size_t count;
  };
  ConstantAdds constant_adds(size_t from, uint8_t reg, int width, int64_t lo, int64_t hi) const;
  // For a 64-bit copy d = s directly followed by constant adds on d whose
  // sum is within [lo, hi]: that sum and their count (for take_next); a
  // backend with a three-operand add selects the lot as d = s + sum.
  std::optional<ConstantAdds> copy_plus_constant(const ir::Inst& copy, int64_t lo, int64_t hi) const;
  llvm::MCSymbol* label(uint32_t id) const { return labels_[id]; }
  llvm::MCSymbol* function(uint32_t index) const { return functions_[index]; }
  llvm::MCSymbol* exit_label() const { return exit_; }  // status 0, r0 as is
  llvm::MCSymbol* trap_label() const { return trap_; }  // status and r0 already set
  const llvm::MCExpr* ref(const llvm::MCSymbol* s) { return out_.ref(s); }
  uint64_t helper_address(uint32_t id) const;
  // LoadSym / CallSym: module().symbols[index] (+ addend), for the linker.
  llvm::MCSymbol* symbol(uint32_t index) { return out_.named_symbol(module_->symbols.at(index)); }
  const llvm::MCExpr* symbol_ref(uint32_t index, int64_t addend = 0);

  mc::Emitter& out_;
  const CodegenOptions& opts_;

 private:
  const ir::Module* module_ = nullptr;
  const ir::Function* fn_ = nullptr;
  size_t fn_index_ = 0;
  size_t at_ = 0;  // the instruction being selected, in fn_->code
  std::vector<llvm::MCSymbol*> labels_;
  std::vector<llvm::MCSymbol*> functions_;
  llvm::MCSymbol* exit_ = nullptr;
  llvm::MCSymbol* trap_ = nullptr;
};

}  // namespace sb::backend
