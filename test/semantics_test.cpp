// The corners of BPF semantics, each one program run on every engine and
// checked against the expected r0 (DESIGN.md "Semantics"; RFC 9669 section
// numbers in the comments). A new engine in test/engines.cpp is covered
// here without a new line.
#include <gtest/gtest.h>

#include "frontend/assembler.h"
#include "ir/diag.h"
#include "test/engines.h"

namespace sb::test {
namespace {

struct Case {
  const char* name;
  const char* source;
  uint64_t expected;
};

const Case kCases[] = {
    // 4.1: division by zero gives 0; modulo by zero leaves dst.
    {"div64_by_zero", "mov %r0, 7\nmov %r1, 0\ndiv %r0, %r1\nexit", 0},
    {"mod64_by_zero", "mov %r0, 7\nmov %r1, 0\nmod %r0, %r1\nexit", 7},
    {"mod32_by_zero_zero_extends", "lddw %r0, 0x1111111122222222\nmov %r1, 0\nmod32 %r0, %r1\nexit", 0x22222222},
    {"sdiv64_min_by_minus_one", "lddw %r0, 0x8000000000000000\nmov %r1, -1\nsdiv %r0, %r1\nexit", 0x8000000000000000},
    {"smod64_min_by_minus_one", "lddw %r0, 0x8000000000000000\nmov %r1, -1\nsmod %r0, %r1\nexit", 0},
    {"sdiv32_min_by_minus_one_imm", "mov32 %r0, 0x80000000\nsdiv32 %r0, -1\nexit", 0x80000000},
    {"smod32_negative", "mov32 %r0, -7\nsmod32 %r0, 3\nexit", 0xffffffff},
    {"sdiv64_negative", "mov %r0, -7\nsdiv %r0, 2\nexit", uint64_t(-3)},
    {"udiv_imm_sign_extended", "mov %r0, -1\ndiv %r0, -1\nexit", 1},
    {"udiv32_reg", "mov32 %r0, -1\nmov32 %r1, 2\ndiv32 %r0, %r1\nexit", 0x7fffffff},
    {"div_dst_is_r3", "mov %r3, 100\nmov %r0, 9\ndiv %r3, 7\nadd %r0, %r3\nexit", 23},
    {"mod_dst_is_r0_src_r3", "mov %r0, 100\nmov %r3, 7\nmod %r0, %r3\nexit", 2},
    {"div_preserves_r0_r3", "mov %r0, 5\nmov %r3, 6\nmov %r4, 50\nmov %r5, 7\ndiv %r4, %r5\nadd %r0, %r3\nadd %r0, %r4\nexit", 18},
    // 4.1: shift counts are masked to the width.
    {"lsh64_reg_masked", "mov %r0, 1\nmov %r1, 65\nlsh %r0, %r1\nexit", 2},
    {"rsh32_reg_masked", "mov32 %r0, 0x80000000\nmov %r1, 33\nrsh32 %r0, %r1\nexit", 0x40000000},
    {"arsh64_reg", "mov %r0, -16\nmov %r1, 2\narsh %r0, %r1\nexit", uint64_t(-4)},
    {"shift_r4_by_itself", "mov %r4, 3\nlsh %r4, %r4\nmov %r0, %r4\nexit", 24},
    {"shift_by_r4_keeps_r4", "mov %r0, 1\nmov %r4, 4\nlsh %r0, %r4\nadd %r0, %r4\nexit", 20},
    // 32-bit results zero-extend.
    {"alu32_zero_extends", "mov %r0, -1\nadd32 %r0, 1\nexit", 0},
    {"mov32_zero_extends", "mov %r0, -1\nmov32 %r0, %r0\nexit", 0xffffffff},
    {"neg32", "mov %r0, 1\nneg32 %r0\nexit", 0xffffffff},
    // 4.1 (cpu v4): sign-extending moves.
    {"movsx8_64", "mov %r1, 0x80\nmovsx864 %r0, %r1\nexit", uint64_t(-128)},
    {"movsx16_32", "mov %r1, 0x8000\nmovsx1632 %r0, %r1\nexit", 0xffff8000},
    {"movsx32_64", "mov32 %r1, 0x80000000\nmovsx3264 %r0, %r1\nexit", 0xffffffff80000000},
    // 4.2: byte swaps.
    {"be16_truncates", "lddw %r0, 0x1122334455667788\nbe16 %r0\nexit", 0x8877},
    {"be32", "lddw %r0, 0x1122334455667788\nbe32 %r0\nexit", 0x88776655},
    {"le16_truncates", "lddw %r0, 0x1122334455667788\nle16 %r0\nexit", 0x7788},
    {"bswap64", "lddw %r0, 0x1122334455667788\nbswap64 %r0\nexit", 0x8877665544332211},
    // 4.3: JMP32 compares low halves; immediates are sign-extended.
    {"jmp32_low_half", "lddw %r1, 0x100000001\nmov %r0, 0\njeq32 %r1, 1, +1\nexit\nmov %r0, 1\nexit", 1},
    {"jgt_imm_sign_extended", "mov %r1, -1\nmov %r0, 0\njgt %r1, -2, +1\nexit\nmov %r0, 1\nexit", 1},
    {"jslt_signed", "mov %r1, -5\nmov %r0, 0\njslt %r1, 3, +1\nexit\nmov %r0, 1\nexit", 1},
    {"jset", "mov %r1, 6\nmov %r0, 0\njset %r1, 2, +1\nexit\nmov %r0, 1\nexit", 1},
    // 5: loads zero-extend, ldsx sign-extends, 64-bit store of imm sign-extends.
    {"stdw_imm_sign_extends", "stdw [%r10-8], -1\nldxdw %r0, [%r10-8]\nexit", ~uint64_t(0)},
    {"ldxsb", "stb [%r10-1], 0x80\nldxsb %r0, [%r10-1]\nexit", uint64_t(-128)},
    {"ldxb_zero_extends", "stb [%r10-1], 0x80\nldxb %r0, [%r10-1]\nexit", 0x80},
    // 5.3: atomics.
    {"atomic_fetch_add", "stdw [%r10-8], 5\nmov %r1, 3\nlock fetch add [%r10-8], %r1\nldxdw %r0, [%r10-8]\nlsh %r0, 8\nor %r0, %r1\nexit", 0x805},
    {"atomic_fetch_or32", "stw [%r10-8], 5\nmov %r1, 3\nlock fetch or32 [%r10-8], %r1\nldxw %r0, [%r10-8]\nlsh %r0, 8\nor %r0, %r1\nexit", 0x705},
    {"atomic_fetch_xor_src_r0", "stdw [%r10-8], 12\nmov %r0, 10\nlock fetch xor [%r10-8], %r0\nldxdw %r1, [%r10-8]\nlsh %r1, 8\nor %r0, %r1\nexit", 0x60c},
    {"atomic_cmpxchg32_zero_extends", "stw [%r10-8], 7\nlddw %r0, 0xffffffff00000001\nmov %r1, 9\nlock cmpxchg32 [%r10-8], %r1\nexit", 7},
    {"atomic_cmpxchg_success", "stdw [%r10-8], 7\nmov %r0, 7\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\nldxdw %r2, [%r10-8]\nlsh %r2, 8\nor %r0, %r2\nexit", 0x907},
    {"atomic_xchg", "stdw [%r10-8], 7\nmov %r1, 9\nlock xchg [%r10-8], %r1\nldxdw %r0, [%r10-8]\nlsh %r0, 8\nor %r0, %r1\nexit", 0x907},
    // 4.3.1: local calls preserve r6-r9 and get their own frame.
    {"local_call_preserves_r6", "mov %r6, 3\nstdw [%r10-8], 11\ncall local f\nldxdw %r1, [%r10-8]\nadd %r0, %r6\nadd %r0, %r1\nexit\nf:\nmov %r6, 100\nstdw [%r10-8], 99\nmov %r0, 1\nexit", 15},
    // The unwind helper (conformance helper 5) ends the program on 0.
    {"unwind_on_zero", "mov %r1, 0\ncall 5\nmov %r0, 2\nexit", 0},
    {"unwind_from_local_call", "call local f\nmov %r0, 2\nexit\nf:\nmov %r6, 1\nmov %r1, 0\ncall 5\nmov %r0, 3\nexit", 0},
    // Only a callee writes r6-r9: the entry still restores the caller's
    // registers when the callee unwinds (x86-64 saves them by need).
    {"unwind_from_callee_writing_r6_to_r9", "call local f\nmov %r0, 2\nexit\nf:\nmov %r6, 1\nmov %r7, 2\nmov %r8, 3\nmov %r9, 4\nmov %r1, 0\ncall 5\nexit", 0},
    {"callee_saves_what_it_writes", "mov %r6, 5\nmov %r9, 7\ncall local f\nadd %r0, %r6\nadd %r0, %r9\nexit\nf:\nmov %r9, 100\nmov %r0, %r9\nexit", 112},
    // What the IR passes (ir/passes.h) rewrite, at the edges of their rules.
    {"mul32_by_2_pow_31", "mov %r0, 3\nmul32 %r0, 0x80000000\nexit", 0x80000000},
    {"udiv32_by_power_of_two_high_bits", "lddw %r0, 0xffffffff80000000\ndiv32 %r0, 0x80000000\nexit", 1},
    {"umod_by_power_of_two_negative", "mov %r0, -1\nmod %r0, 16\nexit", 15},
    {"udiv_by_one", "mov %r0, -5\ndiv %r0, 1\nexit", uint64_t(-5)},
    {"shift_pair_zero_extends", "lddw %r1, 0xaaaaaaaa55555555\nmov %r0, %r1\nlsh %r0, 32\nrsh %r0, 32\nexit", 0x55555555},
    {"zero_extend_of_constant", "mov %r0, -2\nmov32 %r0, %r0\nexit", 0xfffffffe},
    {"zero_extend_after_sign_extending_load", "stb [%r10-1], 0x80\nldxsb %r0, [%r10-1]\nmov32 %r0, %r0\nexit", 0xffffff80},
    // x86-64 multiplies by 3, 5 and 9 with lea (backends/x86_64/isel.cpp).
    {"mul_by_9_wraps", "lddw %r0, 0x2000000000000001\nmul %r0, 9\nexit", 0x2000000000000009},
    {"mul32_by_5_zero_extends", "lddw %r0, 0xffffffff40000001\nmul32 %r0, 5\nexit", 0x40000005},
    {"mul_by_3_dst_r3", "mov %r3, 7\nmul %r3, 3\nmov %r0, %r3\nexit", 21},
    {"inverted_loop_exit", "mov %r0, 0\nmov %r1, -3\nl:\nadd %r0, 1\nadd %r1, 1\njsgt %r1, 2, out\nja l\nout:\nexit", 6},
};

class Semantics : public testing::TestWithParam<std::tuple<size_t, size_t>> {};

// Each case with the IR passes (what a JIT compile does) and without them:
// most cases are constants, which the passes fold before instruction
// selection would see them.
TEST_P(Semantics, SameResultOnEveryEngine) {
  const Case& c = kCases[std::get<0>(GetParam())];
  const Engine& e = engines()[std::get<1>(GetParam())];
  rt::HelperTable helpers = rt::HelperTable::conformance();
  for (const bool optimize : {true, false}) {
    std::vector<uint8_t> mem;
    rt::RunOptions o;
    o.optimize = optimize;
    EXPECT_EQ(e.run(bpf::assemble(c.source, c.name), helpers, mem, o), c.expected)
        << c.source << (optimize ? "" : "\n(without the IR passes)");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, Semantics,
    testing::Combine(testing::Range<size_t>(0, std::size(kCases)), testing::Range<size_t>(0, engines().size())),
    [](const testing::TestParamInfo<std::tuple<size_t, size_t>>& i) {
      return engines()[std::get<1>(i.param)].name + "_" + kCases[std::get<0>(i.param)].name;
    });

// callx to an id with no helper is a fault naming the instruction.
TEST(Semantics, CallxToUnknownHelperNamesTheInstruction) {
  rt::HelperTable helpers = rt::HelperTable::conformance();
  for (const Engine& e : engines()) {
    std::vector<uint8_t> mem;
    try {
      e.run(bpf::assemble("mov %r0, 1\nmov %r2, 77\ncall %r2\nexit", "callx"), helpers, mem);
      ADD_FAILURE() << e.name << ": no error";
    } catch (const Error& err) {
      EXPECT_EQ(err.where(), "callx: instruction 2") << e.name;
    }
  }
}

}  // namespace
}  // namespace sb::test
