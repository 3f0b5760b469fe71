// A fluent MCInst builder so selection code reads like the instruction:
//   out.emit(I(op.ADD64rr).r(dst).r(dst).r(src));
#pragma once

#include <llvm/MC/MCExpr.h>
#include <llvm/MC/MCInst.h>

namespace sb::mc {

class I {
 public:
  explicit I(unsigned opcode) { inst_.setOpcode(opcode); }
  I& r(unsigned reg) { inst_.addOperand(llvm::MCOperand::createReg(reg)); return *this; }
  I& i(int64_t imm) { inst_.addOperand(llvm::MCOperand::createImm(imm)); return *this; }
  I& e(const llvm::MCExpr* expr) { inst_.addOperand(llvm::MCOperand::createExpr(expr)); return *this; }
  operator const llvm::MCInst&() const { return inst_; }

 private:
  llvm::MCInst inst_;
};

}  // namespace sb::mc
