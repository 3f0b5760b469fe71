// The IR: printer text, well-formedness rejections, and lowering of the bytecode
// encodings that carry two meanings.
#include <gtest/gtest.h>

#include "backends/compile.h"
#include "frontend/assembler.h"
#include "ir/diag.h"
#include "ir/ir.h"
#include "ir/passes.h"

namespace sb::test {
namespace {

ir::Module lowered(const char* source) {
  return to_ir(bpf::assemble(source), rt::HelperTable::conformance(), /*optimize=*/false);
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
  m.functions.push_back({"t", std::move(code), labels, 512, {}, {}});
  return m;
}
ir::Inst exit_inst() {
  ir::Inst i;
  i.op = ir::Op::Exit;
  return i;
}

void expect_rejected(const ir::Module& m, const std::string& what) {
  try {
    ir::check(m);
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
  ir::check(one_function({ir::alu_imm(ir::Op::Mov, 64, ir::kAX, 1), exit_inst()}));  // r11 is ax, a pass's scratch
  ir::Inst call;
  call.op = ir::Op::CallLocal, call.target = 4;
  expect_rejected(one_function({call, exit_inst()}), "no function 4");
  EXPECT_NO_THROW(ir::check(one_function({ir::label(0), ir::jump(0)}, 1)));
}

// IR passes (ir/passes.h): the entry function of `source`, as lowered,
// after `pass`, one instruction per line; the result must verify.
// The entry function of `m`, which must verify, one instruction per line.
std::string entry_code(const ir::Module& m) {
  ir::check(m);
  std::string out;
  for (const ir::Inst& i : m.functions[0].code) out += ir::print(i) + "\n";
  return out;
}

std::string after(void (*pass)(ir::Function&), const char* source) {
  ir::Module m = lowered(source);
  pass(m.functions[0]);
  return entry_code(m);
}
// The entry's code as lowered, no pass run: what a pass that must leave
// `source` alone gives.
std::string as_lowered(const char* source) {
  return after([](ir::Function&) {}, source);
}

TEST(IrPasses, PropagateConstantsMakesImmediatesAndFoldsArithmetic) {
  EXPECT_EQ(after(ir::propagate_constants,
                  "mov %r2, 126\n"
                  "add %r1, %r2\nmov32 %r3, -1\nand32 %r1, %r3\n"
                  "mov %r4, 3\nlsh %r4, 4\nadd %r4, -1\n"  // evaluated: 47
                  "lsh %r4, 31\n"                           // past int32: ldimm
                  "lsh %r1, %r2\n"                          // a count is taken mod 64
                  "div %r1, %r5\nmov %r5, 0\ndiv %r1, %r5\n" // a zero divisor stays a register
                  "stxw [%r10-4], %r2\n"
                  "jgt %r2, %r1, +1\n"                       // c > x is x < c
                  "add %r1, %r2\n"                          // a label: nothing is known
                  "mov %r0, %r1\nexit"),
            "r2 = mov.64 r2, 126\n"
            "r1 = add.64 r1, 126\nr3 = mov.32 r3, -1\nr1 = and.32 r1, -1\n"
            "r4 = mov.64 r4, 3\nr4 = mov.64 r4, 48\nr4 = mov.64 r4, 47\nr4 = ldimm 0x1780000000\n"
            "r1 = shl.64 r1, 62\n"
            "r1 = udiv.64 r1, r5\nr5 = mov.64 r5, 0\nr1 = udiv.64 r1, r5\n"
            "store.32 [r10-4], 126\n"
            "br.64 lt r1, 126 -> L0\n"
            "r1 = add.64 r1, 126\nL0:\n"
            "r0 = mov.64 r0, r1\nexit\n");
}

TEST(IrPasses, ReduceStrengthTurnsPowersOfTwoIntoShiftsAndMasks) {
  EXPECT_EQ(after(ir::reduce_strength,
                  "mul %r1, 8\nmul32 %r2, 1\ndiv %r3, 16\nmod32 %r4, 0x80000000\nmod %r5, 4\n"
                  "mul %r6, 6\ndiv %r7, -2\nsdiv %r8, 4\nmul32 %r9, -2147483648\nmov %r0, 0\nexit"),
            "r1 = shl.64 r1, 3\n"
            "r2 = shl.32 r2, 0\n"
            "r3 = lshr.64 r3, 4\n"
            "r4 = and.32 r4, 2147483647\n"
            "r5 = and.64 r5, 3\n"
            "r6 = mul.64 r6, 6\n"     // not a power of two
            "r7 = udiv.64 r7, -2\n"   // 2^64 - 2 unsigned
            "r8 = sdiv.64 r8, 4\n"    // signed: rounds toward zero, not a shift
            "r9 = shl.32 r9, 31\n"    // 2^31 at 32 bits
            "r0 = mov.64 r0, 0\n"
            "exit\n");
}

// Whether remove_redundant_masks drops the one `and` (or mov32 x, x) of `source`.
bool mask_dropped(const char* source) {
  const std::string before = as_lowered(source);
  const std::string now = after(ir::remove_redundant_masks, source);
  auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  auto masks = [&](const std::string& text) { return count(text, " = and.") + count(text, "= mov.32 r1, r1"); };
  EXPECT_EQ(masks(before), 1u) << before;
  return masks(now) == 0;
}

TEST(IrPasses, RemoveRedundantMasksDropsWhatAnEarlierCheckBounded) {
  // After a check, on every path: the masks a verifier needed.
  EXPECT_TRUE(mask_dropped("jgt %r1, 255, out\nand %r1, 255\nmov %r0, %r1\nout:\nexit"));
  EXPECT_TRUE(mask_dropped("jlt %r1, 256, in\nexit\nin:\nand %r1, 0x1ff\nmov %r0, %r1\nexit"));
  EXPECT_TRUE(mask_dropped("jgt %r1, 0xffff, out\nmov32 %r1, %r1\nmov %r0, %r1\nout:\nexit"));
  EXPECT_TRUE(mask_dropped("jgt %r1, 100, out\nand32 %r1, 127\nmov %r0, %r1\nout:\nexit"));
  EXPECT_TRUE(mask_dropped("ldxb %r1, [%r1+0]\nand %r1, 255\nmov %r0, %r1\nexit"));
  // Signed compares of registers known not to be negative read as unsigned.
  EXPECT_TRUE(mask_dropped("jgt %r1, 1000, out\njsgt %r1, 255, out\nand %r1, 255\nmov %r0, %r1\nout:\nexit"));
  // A count down from a checked n (sort's insertion loop), and a count up
  // to a compared bound, which widening stops at the bound.
  EXPECT_TRUE(mask_dropped("jgt %r2, 255, out\njeq %r2, 0, out\nloop:\nadd %r2, -1\nmov %r3, %r2\n"
                           "and %r3, 255\nadd %r0, %r3\njne %r2, 0, loop\nout:\nexit"));
  EXPECT_TRUE(mask_dropped("mov %r2, 0\nloop:\nmov %r3, %r2\nand %r3, 255\nadd %r0, %r3\nadd %r2, 1\n"
                           "jlt %r2, 256, loop\nexit"));
  // The dropped mask leaves the code otherwise as it was.
  EXPECT_EQ(after(ir::remove_redundant_masks, "jgt %r1, 255, out\nand %r1, 255\nmov %r0, %r1\nout:\nexit"),
            "br.64 gt r1, 255 -> L0\nr0 = mov.64 r0, r1\nL0:\nexit\n");
}

TEST(IrPasses, RemoveRedundantMasksKeepsWhatItCannotProve) {
  EXPECT_FALSE(mask_dropped("jgt %r1, 256, out\nand %r1, 255\nmov %r0, %r1\nout:\nexit"));   // 256 & 255
  EXPECT_FALSE(mask_dropped("jgt %r1, 255, out\nand %r1, 0xf0\nmov %r0, %r1\nout:\nexit"));  // not the low bits
  EXPECT_FALSE(mask_dropped("jsgt %r1, 255, out\nand %r1, 255\nmov %r0, %r1\nout:\nexit"));  // r1 may be negative
  EXPECT_FALSE(mask_dropped("jgt %r1, 255, out\ncall 5\nand %r1, 255\nmov %r0, %r1\nout:\nexit"));  // clobbered
  EXPECT_FALSE(mask_dropped("jgt %r1, 255, skip\nmov %r2, 1\nskip:\nand %r1, 255\nmov %r0, %r1\nexit"));  // one path
  EXPECT_FALSE(mask_dropped("jgt %r1, 255, out\nadd %r1, 1\nand %r1, 255\nmov %r0, %r1\nout:\nexit"));  // 256 again
  EXPECT_FALSE(mask_dropped("jgt %r1, 255, out\nadd %r1, -1\nand %r1, 255\nmov %r0, %r1\nout:\nexit"));  // 0 - 1 wraps
  EXPECT_FALSE(mask_dropped("jgt32 %r1, 255, out\nand %r1, 255\nmov %r0, %r1\nout:\nexit"));  // the low half only
  // A count up without a bound below the mask's.
  EXPECT_FALSE(mask_dropped("mov %r2, 0\nloop:\nmov %r3, %r2\nand %r3, 255\nadd %r0, %r3\nadd %r2, 1\n"
                            "jlt %r2, 257, loop\nexit"));
}

TEST(IrPasses, FoldZeroExtensionMergesTheShiftPairAndDropsRedundantOnes) {
  EXPECT_EQ(after(ir::fold_zero_extension,
                  "mov %r1, %r2\nlsh %r1, 32\nrsh %r1, 32\n"  // clang's zero-extension of a u32
                  "add32 %r3, 1\nmov32 %r3, %r3\n"              // already zero-extended
                  "ldxh %r4, [%r1+0]\nle32 %r4\n"               // so is a 16-bit load
                  "mov %r6, -1\nmov32 %r6, %r6\n"               // a constant, then zero-extended
                  "lsh %r5, 32\narsh %r5, 32\n"                 // sign-extension: kept
                  "mov32 %r7, %r7\n"                             // nothing known about r7: kept
                  "mov %r0, 0\nexit"),
            "r1 = mov.32 r1, r2\n"
            "r3 = add.32 r3, 1\n"
            "r4 = load.u16 [r1+0]\n"
            "r6 = mov.32 r6, -1\n"
            "r5 = shl.64 r5, 32\n"
            "r5 = ashr.64 r5, 32\n"
            "r7 = mov.32 r7, r7\n"
            "r0 = mov.64 r0, 0\n"
            "exit\n");
  // A label between them: another path reaches the zero-extension.
  EXPECT_EQ(after(ir::fold_zero_extension, "jeq %r1, 0, +1\nadd32 %r3, 1\nmov32 %r3, %r3\nexit"),
            "br.64 eq r1, 0 -> L0\n"
            "r3 = add.32 r3, 1\n"
            "L0:\n"
            "r3 = mov.32 r3, r3\n"
            "exit\n");
}

TEST(IrPasses, InvertBranchOverJumpSavesATakenJumpPerIteration) {
  EXPECT_EQ(after(ir::invert_branch_over_jump,
                  "mov %r0, 0\nloop:\nadd %r0, 1\njgt %r0, 9, done\nja loop\ndone:\nexit"),
            "r0 = mov.64 r0, 0\n"
            "L1:\n"
            "r0 = add.64 r0, 1\n"
            "br.64 le r0, 9 -> L1\n"
            "L0:\n"
            "exit\n");
  // jset's inverse is clear; a jump to the next instruction goes.
  EXPECT_EQ(after(ir::invert_branch_over_jump,
                  "loop:\nadd %r0, 1\njset %r0, 8, done\nja loop\ndone:\nja +0\nexit"),
            "L1:\n"
            "r0 = add.64 r0, 1\n"
            "br.64 clear r0, 8 -> L1\n"
            "L0:\n"
            "L2:\n"
            "exit\n");
  // Every signed and unsigned condition has its inverse.
  EXPECT_EQ(after(ir::invert_branch_over_jump,
                  "l:\njslt32 %r1, %r2, a\nja l\na:\njsge %r1, -1, b\nja l\nb:\njne %r1, 0, c\nja l\nc:\nexit"),
            "L1:\n"
            "br.32 sge r1, r2 -> L1\n"
            "L0:\n"
            "br.64 slt r1, -1 -> L1\n"
            "L2:\n"
            "br.64 eq r1, 0 -> L1\n"
            "L3:\n"
            "exit\n");
}

// The targets' addressing modes (backends/*/abi.cpp TargetDesc::addressing).
std::string folded(Arch arch, const char* source) {
  const ir::AddressModes modes = backend::target_for(arch).addressing;
  ir::Module m = lowered(source);
  ir::fold_addresses(m.functions[0], modes);
  return entry_code(m);
}

TEST(IrPasses, FoldAddressesPutsAddressArithmeticIntoTheAccess) {
  const char* source =
      "mov %r3, %r1\nadd %r3, %r2\nldxw %r0, [%r3+4]\n"              // base + index + off
      "mov %r4, %r2\nlsh %r4, 2\nadd %r4, %r1\nstxw [%r4+0], %r0\n"  // base + index*4
      "mov %r5, %r1\nadd %r5, 16\nsub %r5, 4\nldxdw %r5, [%r5+8]\n"  // base + off
      "exit";
  EXPECT_EQ(folded(Arch::X86_64, source),
            "r3 = mov.64 r3, r1\nr3 = add.64 r3, r2\nr0 = load.u32 [r1+r2*1+4]\n"
            "r4 = mov.64 r4, r2\nr4 = shl.64 r4, 2\nr4 = add.64 r4, r1\nstore.32 [r1+r2*4+0], r0\n"
            "r5 = mov.64 r5, r1\nr5 = add.64 r5, 16\nr5 = sub.64 r5, 4\nr5 = load.u64 [r1+20]\n"
            "exit\n");
  // arm64: [Xn, Xm] has no offset and shifts by the access size only.
  EXPECT_EQ(folded(Arch::Arm64, source),
            "r3 = mov.64 r3, r1\nr3 = add.64 r3, r2\nr0 = load.u32 [r3+4]\n"
            "r4 = mov.64 r4, r2\nr4 = shl.64 r4, 2\nr4 = add.64 r4, r1\nstore.32 [r1+r2*4+0], r0\n"
            "r5 = mov.64 r5, r1\nr5 = add.64 r5, 16\nr5 = sub.64 r5, 4\nr5 = load.u64 [r1+20]\n"
            "exit\n");
  EXPECT_EQ(folded(Arch::Arm64, "mov %r4, %r2\nlsh %r4, 2\nadd %r4, %r1\nstxdw [%r4+0], %r0\nexit"),
            "r4 = mov.64 r4, r2\nr4 = shl.64 r4, 2\nr4 = add.64 r4, r1\nstore.64 [r4+0], r0\nexit\n");
  // riscv64: base + a 12-bit offset only.
  EXPECT_EQ(folded(Arch::Riscv64, "mov %r5, %r1\nadd %r5, 2040\nldxdw %r0, [%r5+8]\n"
                                  "mov %r5, %r1\nadd %r5, 2000\nldxdw %r0, [%r5+8]\nexit"),
            "r5 = mov.64 r5, r1\nr5 = add.64 r5, 2040\nr0 = load.u64 [r5+8]\n"
            "r5 = mov.64 r5, r1\nr5 = add.64 r5, 2000\nr0 = load.u64 [r1+2008]\nexit\n");
}

TEST(IrPasses, FoldAddressesOnlyTrustsStraightLineValues) {
  // A label (another path may arrive), a rewritten base, a call (r1-r5 are
  // clobbered) and 32-bit arithmetic (it wraps) all stop the fold.
  EXPECT_EQ(folded(Arch::X86_64,
                   "mov %r3, %r1\nadd %r3, 8\nl:\nldxdw %r0, [%r3+0]\n"
                   "mov %r3, %r1\nadd %r3, 8\nmov %r1, 0\nldxdw %r0, [%r3+0]\n"
                   "mov %r3, %r6\nadd %r3, 8\ncall 5\nldxdw %r0, [%r3+0]\n"
                   "mov %r3, %r1\nadd32 %r3, 8\nldxdw %r0, [%r3+0]\n"
                   "jeq %r0, 0, l\nexit"),
            "r3 = mov.64 r3, r1\nr3 = add.64 r3, 8\nL0:\nr0 = load.u64 [r3+0]\n"
            "r3 = mov.64 r3, r1\nr3 = add.64 r3, 8\nr1 = mov.64 r1, 0\nr0 = load.u64 [r3+0]\n"
            "r3 = mov.64 r3, r6\nr3 = add.64 r3, 8\ncall helper 5\nbr.64 ne r0, 0 -> L1\nunwind\nL1:\n"
            "r0 = load.u64 [r3+0]\n"
            "r3 = mov.64 r3, r1\nr3 = add.32 r3, 8\nr0 = load.u64 [r3+0]\n"
            "br.64 eq r0, 0 -> L0\nexit\n");
}

// The entry function after the target passes of `arch`.
std::string for_target(Arch arch, const char* source) {
  ir::Module m = lowered(source);
  ir::optimize_for_target(m, backend::target_for(arch).addressing);
  return entry_code(m);
}

TEST(IrPasses, RemoveDeadCodeDropsWhatNobodyReads) {
  EXPECT_EQ(for_target(Arch::Riscv64,
                       "mov %r2, 1\nmov %r2, 2\n"           // the first r2 is overwritten unread
                       "mov %r7, 7\nmov %r5, %r2\ncall 5\n"  // r7 is never read; a call reads r1-r5
                       "mov %r3, 7\nadd %r0, 1\n"            // the call clobbered r3; exit reads r0
                       "ldxdw %r4, [%r1+0]\n"                 // unread, but it may fault
                       "l:\nadd %r6, 1\njlt %r6, 10, l\n"    // read around the loop
                       "mov %r8, 1\nexit"),                   // r6-r9 are dead at exit
            "r2 = mov.64 r2, 2\nr5 = mov.64 r5, r2\ncall helper 5\nbr.64 ne r0, 0 -> L1\nunwind\nL1:\n"
            "r0 = add.64 r0, 1\nr4 = load.u64 [r1+0]\n"
            "L0:\nr6 = add.64 r6, 1\nbr.64 lt r6, 10 -> L0\n"
            "exit\n");
  // With the fold, the address arithmetic goes too.
  EXPECT_EQ(for_target(Arch::X86_64, "mov %r4, %r2\nlsh %r4, 2\nadd %r4, %r1\nldxw %r0, [%r4+0]\nexit"),
            "r0 = load.u32 [r1+r2*4+0]\nexit\n");
}

TEST(IrPasses, FoldIndexShiftMakesTheShiftTheScale) {
  const char* source = "and %r5, 255\nlsh %r5, 2\nmov %r3, %r1\nadd %r3, %r5\nldxw %r0, [%r3+0]\nexit";
  EXPECT_EQ(for_target(Arch::X86_64, source), "r5 = and.64 r5, 255\nr0 = load.u32 [r1+r5*4+0]\nexit\n");
  EXPECT_EQ(for_target(Arch::Arm64, source), "r5 = and.64 r5, 255\nr0 = load.u32 [r1+r5*4+0]\nexit\n");
  // arm64 scales by the access size only; x read after the access keeps its shift.
  EXPECT_EQ(for_target(Arch::Arm64, "lsh %r5, 2\nmov %r3, %r1\nadd %r3, %r5\nldxdw %r0, [%r3+0]\nexit"),
            "r5 = shl.64 r5, 2\nr0 = load.u64 [r1+r5*1+0]\nexit\n");
  EXPECT_EQ(for_target(Arch::X86_64, "lsh %r5, 2\nmov %r3, %r1\nadd %r3, %r5\nldxw %r0, [%r3+0]\nadd %r0, %r5\nexit"),
            "r5 = shl.64 r5, 2\nr0 = load.u32 [r1+r5*1+0]\nr0 = add.64 r0, r5\nexit\n");
}

TEST(IrPasses, FoldBitTestBranchesOnTheBitsInsteadOfMaskingThem) {
  // if (!(n & 1)): a copy, an and and a compare with zero become one test.
  EXPECT_EQ(after(ir::fold_bit_test, "mov %r0, %r1\nand %r0, 1\njeq %r0, 0, even\nmov %r0, 1\nexit\neven:\nmov %r0, 2\nexit"),
            "br.64 clear r1, 1 -> L0\nr0 = mov.64 r0, 1\nexit\nL0:\nr0 = mov.64 r0, 2\nexit\n");
  // A 32-bit and tests the low half; ne is set; a register mask.
  EXPECT_EQ(after(ir::fold_bit_test, "and32 %r2, %r3\njne %r2, 0, l\nl:\nmov %r0, 0\nexit"),
            "br.32 set r2, r3 -> L0\nL0:\nr0 = mov.64 r0, 0\nexit\n");
  // x read afterwards keeps its and; a compare with another value stays.
  const char* keep = "and %r0, 1\njeq %r0, 0, l\nl:\nexit";
  EXPECT_EQ(after(ir::fold_bit_test, keep), "r0 = and.64 r0, 1\nbr.64 eq r0, 0 -> L0\nL0:\nexit\n");
  EXPECT_EQ(after(ir::fold_bit_test, "and %r2, 1\njeq %r2, 1, l\nl:\nexit"),
            "r2 = and.64 r2, 1\nbr.64 eq r2, 1 -> L0\nL0:\nexit\n");
}

TEST(IrPasses, FoldBitTestComparesTheSourceOfACopy) {
  // clang's loop counter: w6 = w3; (other work); if w6 != 0. The branch
  // compares w3 at 32 bits; the copy, read by nothing else, is dead code.
  EXPECT_EQ(after(ir::fold_bit_test, "loop:\nadd %r3, -1\nmov32 %r6, %r3\nmov %r5, %r0\njne %r6, 0, loop\nexit"),
            "L0:\nr3 = add.64 r3, -1\nr6 = mov.32 r6, r3\nr5 = mov.64 r5, r0\nbr.32 ne r3, 0 -> L0\nexit\n");
  EXPECT_EQ(after(
                [](ir::Function& f) {
                  ir::fold_bit_test(f);
                  ir::remove_dead_code(f);
                },
                "loop:\nadd %r3, -1\nmov32 %r6, %r3\nmov %r0, %r3\njne %r6, 0, loop\nexit"),
            "L0:\nr3 = add.64 r3, -1\nr0 = mov.64 r0, r3\nbr.32 ne r3, 0 -> L0\nexit\n");
  // A 64-bit copy serves any compare.
  EXPECT_EQ(after(ir::fold_bit_test, "mov %r6, %r3\njsgt %r6, %r2, l\nl:\nmov %r0, %r6\nexit"),
            "r6 = mov.64 r6, r3\nbr.64 sgt r3, r2 -> L0\nL0:\nr0 = mov.64 r0, r6\nexit\n");
  // Not when the source changes in between, nor a 32-bit copy under a
  // 64-bit signed compare or a constant the low half cannot hold.
  const char* kept =
      "mov %r6, %r3\nadd %r3, 1\njne %r6, 0, a\na:\nmov32 %r7, %r3\njsgt %r7, 5, b\nb:\n"
      "mov32 %r8, %r3\njeq %r8, -1, c\nc:\nmov %r0, 0\nexit";
  EXPECT_EQ(after(ir::fold_bit_test, kept), as_lowered(kept));
}

TEST(IrPasses, RemoveRedundantCopiesDropsACopyBackOfWhatIsThere) {
  // The copy back at `join` is redundant on both paths into it, the one
  // around the loop included; a copy after the source changed is not.
  EXPECT_EQ(after(ir::remove_redundant_copies,
                  "loop:\nmov %r5, %r0\njeq %r1, 0, join\nadd %r1, 1\njoin:\nmov %r0, %r5\nadd %r0, 1\n"
                  "jlt %r0, 9, loop\nmov %r5, %r0\nexit"),
            "L1:\nr5 = mov.64 r5, r0\nbr.64 eq r1, 0 -> L0\nr1 = add.64 r1, 1\nL0:\n"
            "r0 = add.64 r0, 1\nbr.64 lt r0, 9 -> L1\nr5 = mov.64 r5, r0\nexit\n");
  // The same constant again, on every path.
  EXPECT_EQ(after(ir::remove_redundant_copies,
                  "mov %r0, 0\njlt %r1, 2, out\nmov %r0, 0\nmov32 %r3, -1\nlddw %r2, 0xffffffff\n"
                  "mov %r2, %r3\nout:\nmov %r0, 0\nexit"),
            "r0 = mov.64 r0, 0\nbr.64 lt r1, 2 -> L0\nr3 = mov.32 r3, -1\nr2 = ldimm 0xffffffff\nL0:\nexit\n");
  // Not when one path changed it, nor a copy a call clobbered, nor a 32-bit copy.
  const char* kept = "mov %r5, %r0\njeq %r1, 0, join\nmov %r0, 1\njoin:\nmov %r0, %r5\n"
                     "mov %r2, %r6\ncall 5\nmov %r2, %r6\nmov32 %r7, %r6\nmov32 %r7, %r6\nexit";
  EXPECT_EQ(after(ir::remove_redundant_copies, kept), as_lowered(kept));
}

TEST(IrPasses, ComputeIntoCopiesPutsTheCopyFirst) {
  // r1 = 3 * r1 + 1 then r4 = r1, r1 dead after: computed in r4 from a copy.
  EXPECT_EQ(after(ir::compute_into_copies, "mul %r1, 3\nadd %r1, 1\nneg %r1\nmov %r4, %r1\nadd %r0, %r4\nexit"),
            "r4 = mov.64 r4, r1\nr4 = mul.64 r4, 3\nr4 = add.64 r4, 1\nr4 = neg.64 r4\nr0 = add.64 r0, r4\nexit\n");
  // It repeats down a chain of copies: the updates end in the last one.
  EXPECT_EQ(after(ir::compute_into_copies, "add %r1, 1\nmov %r4, %r1\nmov %r0, %r4\nexit"),
            "r4 = mov.64 r4, r1\nr0 = mov.64 r0, r4\nr0 = add.64 r0, 1\nexit\n");
  // Only the updates right before the copy that read nothing else: not
  // r1 += r2 (it reads r2).
  EXPECT_EQ(after(ir::compute_into_copies, "add %r1, %r2\nadd %r1, 1\nmov %r4, %r1\nadd %r0, %r4\nexit"),
            "r1 = add.64 r1, r2\nr4 = mov.64 r4, r1\nr4 = add.64 r4, 1\nr0 = add.64 r0, r4\nexit\n");
  // Not when the source is read after the copy, nor a 32-bit copy (it
  // zero-extends what the updates left), nor a copy with nothing before
  // it, nor across a label.
  const char* kept =
      "add %r1, 1\nmov %r4, %r1\nadd %r0, %r1\nadd %r2, 1\nmov32 %r5, %r2\nmov %r6, %r3\nadd %r0, %r4\n"
      "add %r0, %r5\nadd %r0, %r6\nadd %r7, 1\nl:\nmov %r8, %r7\nadd %r0, %r8\njlt %r0, 9, l\nexit";
  EXPECT_EQ(after(ir::compute_into_copies, kept), as_lowered(kept));
}

TEST(IrPasses, HoistLoopInvariantsMovesWhatEveryTurnRecomputes) {
  // r6 = u32(r3) and the constant r7 are the same every turn; r5 = r4 is
  // not (r4 changes), and r8 is live into the loop (read before written).
  EXPECT_EQ(after(ir::hoist_loop_invariants,
                  "mov %r4, 9\nloop:\nmov32 %r6, %r3\nmov %r7, 100\nmov %r5, %r4\nadd %r0, %r8\nmov %r8, 1\n"
                  "add %r0, %r6\nadd %r0, %r7\nadd %r4, -1\njne %r4, 0, loop\nexit"),
            "r4 = mov.64 r4, 9\nr6 = mov.32 r6, r3\nr7 = mov.64 r7, 100\nL0:\nr5 = mov.64 r5, r4\n"
            "r0 = add.64 r0, r8\nr8 = mov.64 r8, 1\nr0 = add.64 r0, r6\nr0 = add.64 r0, r7\n"
            "r4 = add.64 r4, -1\nbr.64 ne r4, 0 -> L0\nexit\n");
  // Not from a loop entered in the middle, nor past a call that clobbers y.
  const char* entered = "ja mid\nloop:\nmov32 %r6, %r3\nmid:\nadd %r0, 1\njne %r0, 9, loop\nexit";
  EXPECT_EQ(after(ir::hoist_loop_invariants, entered), as_lowered(entered));
  const char* clobbered = "mov %r6, 0\nloop:\nmov %r7, %r1\ncall 5\nadd %r6, 1\njne %r6, 9, loop\nexit";
  EXPECT_EQ(after(ir::hoist_loop_invariants, clobbered), as_lowered(clobbered));
}

TEST(IrPasses, SinkPastBranchesRunsWhatOneSideReadsOnlyThere) {
  // r0 = 0 only matters once the loop ends: after the back edge. r0 = r2
  // only matters where the loop is left early: on that edge.
  EXPECT_EQ(after(ir::sink_past_branches,
                  "loop:\nadd %r2, 1\nmov %r0, %r2\njgt %r2, %r3, out\nldxw %r0, [%r1+0]\nadd %r3, %r0\n"
                  "mov %r0, 0\njne %r3, 7, loop\nout:\nexit"),
            "L1:\nr2 = add.64 r2, 1\nbr.64 gt r2, r3 -> L2\nr0 = load.u32 [r1+0]\nr3 = add.64 r3, r0\n"
            "br.64 ne r3, 7 -> L1\nr0 = mov.64 r0, 0\nL0:\nexit\nL2:\nr0 = mov.64 r0, r2\njmp -> L0\n");
  // Read by the branch, or by both sides: stays.
  const char* both = "loop:\nadd %r2, 1\nmov %r0, %r2\njgt %r0, 5, out\nmov %r4, %r2\njne %r4, 7, loop\nout:\nadd %r0, %r4\nexit";
  EXPECT_EQ(after(ir::sink_past_branches, both), as_lowered(both));
}

TEST(IrPasses, CombineLoadsMakesOneLoadOfBytesPutTogether) {
  // A big-endian 16-bit field as C writes it: p[12] << 8 | p[13].
  const char* be16 = "ldxb %r0, [%r1+12]\nldxb %r3, [%r1+13]\nlsh %r0, 8\nor %r0, %r3\nexit";
  EXPECT_EQ(for_target(Arch::X86_64, be16), "r0 = load.u16 [r1+12]\nr0 = bswap16.64 r0\nexit\n");
  EXPECT_EQ(for_target(Arch::Arm64, be16), "r0 = load.u16 [r1+12]\nr0 = bswap16.64 r0\nexit\n");
  // Little-endian, in 32-bit arithmetic: the 16-bit load made half-way
  // is itself covered by the 32-bit one and goes.
  EXPECT_EQ(for_target(Arch::X86_64,
                       "ldxb %r0, [%r1+4]\nldxb %r2, [%r1+5]\nlsh32 %r2, 8\nor32 %r0, %r2\n"
                       "ldxb %r2, [%r1+6]\nlsh32 %r2, 16\nor32 %r0, %r2\n"
                       "ldxb %r2, [%r1+7]\nlsh32 %r2, 24\nor32 %r0, %r2\nexit"),
            "r0 = load.u32 [r1+4]\nexit\n");
  // Big-endian 32-bit, most significant byte first, then 64 bits of two
  // such halves (16-bit loads join too).
  EXPECT_EQ(for_target(Arch::X86_64,
                       "ldxb %r2, [%r1+0]\nlsh %r2, 24\nldxb %r0, [%r1+1]\nlsh %r0, 16\nor %r0, %r2\n"
                       "ldxb %r2, [%r1+2]\nlsh %r2, 8\nor %r0, %r2\nldxb %r2, [%r1+3]\nor %r0, %r2\nexit"),
            "r0 = load.u32 [r1+0]\nr0 = bswap32.64 r0\nexit\n");
  EXPECT_EQ(for_target(Arch::X86_64,
                       "ldxh %r0, [%r1+0]\nldxh %r2, [%r1+2]\nlsh %r2, 16\nor %r0, %r2\n"
                       "ldxw %r2, [%r1+4]\nlsh %r2, 32\nor %r0, %r2\nexit"),
            "r0 = load.u64 [r1+0]\nexit\n");
}

TEST(IrPasses, CombineLoadsLeavesAloneWhatItCannotProve) {
  auto unchanged = [](Arch arch, const char* source) {
    ir::Module m = lowered(source);
    const std::string before = entry_code(m);
    ir::optimize_for_target(m, backend::target_for(arch).addressing);
    EXPECT_EQ(entry_code(m), before) << source;
  };
  // riscv64 loads may not be unaligned.
  unchanged(Arch::Riscv64, "ldxb %r0, [%r1+12]\nldxb %r3, [%r1+13]\nlsh %r0, 8\nor %r0, %r3\nexit");
  // A gap, an overlap, two bases, a base changed in between, a store or a
  // branch in between, a byte shifted out of 32 bits.
  unchanged(Arch::X86_64, "ldxb %r0, [%r1+12]\nldxb %r3, [%r1+14]\nlsh %r0, 8\nor %r0, %r3\nexit");
  unchanged(Arch::X86_64, "ldxh %r0, [%r1+12]\nldxb %r3, [%r1+13]\nlsh %r3, 8\nor %r0, %r3\nexit");
  unchanged(Arch::X86_64, "ldxb %r0, [%r1+12]\nldxb %r3, [%r2+13]\nlsh %r0, 8\nor %r0, %r3\nexit");
  unchanged(Arch::X86_64, "ldxb %r0, [%r1+12]\nadd %r1, 1\nldxb %r3, [%r1+12]\nlsh %r3, 8\nor %r0, %r3\nexit");
  unchanged(Arch::X86_64, "ldxb %r0, [%r1+12]\nstxb [%r1+13], %r2\nldxb %r3, [%r1+13]\nlsh %r3, 8\nor %r0, %r3\nexit");
  unchanged(Arch::X86_64, "ldxb %r0, [%r1+12]\njeq %r2, 0, l\nl:\nldxb %r3, [%r1+13]\nlsh %r3, 8\nor %r0, %r3\nexit");
  unchanged(Arch::X86_64, "ldxb %r0, [%r1+0]\nldxb %r3, [%r1+1]\nlsh32 %r3, 32\nor %r0, %r3\nexit");
  // The base itself overwritten by the bytes put together so far.
  unchanged(Arch::X86_64, "ldxb %r0, [%r1+12]\nldxb %r3, [%r1+13]\nlsh %r0, 8\nmov %r1, %r0\nor %r1, %r3\nmov %r0, %r1\nexit");
  // A byte read again afterwards keeps its load.
  EXPECT_EQ(for_target(Arch::X86_64, "ldxb %r0, [%r1+12]\nldxb %r3, [%r1+13]\nlsh %r0, 8\nor %r0, %r3\nadd %r0, %r3\nexit"),
            "r3 = load.u8 [r1+13]\nr0 = load.u16 [r1+12]\nr0 = bswap16.64 r0\nr0 = add.64 r0, r3\nexit\n");
}

TEST(IrPasses, OptimizeRunsInThePipeline) {
  const ir::Module m = to_ir(bpf::assemble("mul %r0, 4\nexit"), rt::HelperTable::conformance());
  EXPECT_EQ(ir::print(m.functions[0].code[0]), "r0 = shl.64 r0, 2");
}

}  // namespace
}  // namespace sb::test
