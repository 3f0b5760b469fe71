// The IR: printer text, verifier rejections, and lowering of the bytecode
// encodings that carry two meanings.
#include <gtest/gtest.h>

#include "backends/compile.h"
#include "frontend/assembler.h"
#include "ir/diag.h"
#include "ir/ir.h"

namespace sb::test {
namespace {

ir::Module lowered(const char* source) {
  return to_ir(bpf::assemble(source), rt::HelperTable::conformance());
}

TEST(IrPrinter, PrintsEachForm) {
  EXPECT_EQ(ir::print(ir::alu_imm(ir::Op::Add, 32, 0, 5)), "r0 = add.32 r0, 5");
  EXPECT_EQ(ir::print(ir::load(2, true, 3, 1, 2)), "r3 = load.s16 [r1+2]");
  EXPECT_EQ(ir::print(ir::store(8, 10, -8, 1)), "store.64 [r10-8], r1");
  EXPECT_EQ(ir::print(ir::branch_imm(ir::Cond::SGt, 64, 1, -3, 3)), "br.64 sgt r1, -3 -> L3");
  EXPECT_EQ(ir::print(ir::label(3)), "L3:");
}

TEST(IrLowering, SplitsDoubleMeaningEncodings) {
  std::string text = ir::print(lowered("sdiv %r0, 3\nmovsx864 %r1, %r2\nbe16 %r3\nle32 %r4\nlsh32 %r5, 33\nexit"));
  EXPECT_NE(text.find("r0 = sdiv.64 r0, 3"), std::string::npos) << text;
  EXPECT_NE(text.find("r1 = movsx8.64 r2"), std::string::npos) << text;
  EXPECT_NE(text.find("r3 = bswap16.64 r3"), std::string::npos) << text;
  EXPECT_NE(text.find("r4 = mov.32 r4, r4"), std::string::npos) << text;
  EXPECT_NE(text.find("r5 = shl.32 r5, 1"), std::string::npos) << text;
}

TEST(IrLowering, UnwindingHelperGetsAnExplicitCheck) {
  std::string text = ir::print(lowered("call 5\nexit"));
  EXPECT_NE(text.find("call helper 5\n  br.64 ne r0, 0 -> L0\n  unwind\nL0:"), std::string::npos) << text;
}

TEST(IrLowering, LocalCallsBecomeFunctions) {
  ir::Module m = lowered("call local f\nexit\nf:\nmov %r0, 1\nexit");
  ASSERT_EQ(m.functions.size(), 2u);
  EXPECT_EQ(ir::print(m.functions[0].code[0]), "call func 1");
}

TEST(IrLowering, TagsInstructionsWithTheirOrigin) {
  ir::Module m = lowered("mov %r0, 1\nlddw %r1, 0x100000000\nexit");
  ASSERT_EQ(m.functions[0].code.size(), 3u);
  EXPECT_EQ(m.functions[0].code[2].origin, 3u);  // lddw takes two slots
}

ir::Module one_function(std::vector<ir::Inst> code, uint32_t labels = 0) {
  ir::Module m;
  m.functions.push_back({"t", std::move(code), labels, 512});
  return m;
}
ir::Inst exit_inst() {
  ir::Inst i;
  i.op = ir::Op::Exit;
  return i;
}

void expect_rejected(const ir::Module& m, const std::string& what) {
  try {
    ir::verify(m);
    ADD_FAILURE() << "accepted; expected: " << what;
  } catch (const Error& e) {
    EXPECT_EQ(e.message(), what);
  }
}

TEST(IrVerifier, RejectsMalformedModules) {
  expect_rejected(one_function({ir::alu_imm(ir::Op::Mov, 64, 10, 1), exit_inst()}), "writes the frame pointer r10");
  expect_rejected(one_function({ir::alu_imm(ir::Op::Mov, 64, 0, 1)}), "function does not end in a terminator");
  expect_rejected(one_function({ir::jump(0), exit_inst()}, 1), "target L0 is not defined exactly once");
  expect_rejected(one_function({ir::alu_imm(ir::Op::Add, 16, 0, 1), exit_inst()}), "width must be 32 or 64");
  expect_rejected(one_function({ir::alu_imm(ir::Op::Mov, 64, 13, 1), exit_inst()}), "register out of range");
  ir::verify(one_function({ir::alu_imm(ir::Op::Mov, 64, ir::kAX, 1), exit_inst()}));  // r11 is ax, a pass's scratch
  ir::Inst call;
  call.op = ir::Op::CallLocal, call.target = 4;
  expect_rejected(one_function({call, exit_inst()}), "no function 4");
  EXPECT_NO_THROW(ir::verify(one_function({ir::label(0), ir::jump(0)}, 1)));
}

}  // namespace
}  // namespace sb::test
