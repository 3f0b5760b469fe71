// riscv64 backend: the constant materializer against LLVM's own `li`
// expansion and against arithmetic, and differential runs in Unicorn
// against the interpreter over the corners the backend handles itself
// (32-bit zero extension, the division fix-up, shifted and swapped bytes,
// 12-bit displacements, branch relaxation).
#ifdef SPRINGBOARD_HAVE_RISCV64

#include <cstring>
#include <random>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unicorn/unicorn.h>

#include "backends/compile.h"
#include "backends/riscv64/riscv64.h"
#include "frontend/assembler.h"
#include "runtime/exec/emulator.h"
#include "ir/diag.h"
#include "runtime/exec/interpreter.h"
#include "test/compare.h"

namespace sb::test {
namespace {

using riscv64::MatSeq;
using riscv64::MatStep;

// "lui 1097; addiw -1843; slli 14": the sequence as llvm-mc prints `li`.
std::string text(const MatSeq& seq) {
  std::string out;
  bool first = true;
  for (const MatStep& s : seq) {
    if (!out.empty()) out += "; ";
    std::string name = first && s.op == riscv64::ADDI ? "li" : riscv64::opcode_name(s.op);
    for (char& c : name) c = char(tolower(c));
    out += fmt::format("{} {}", name, s.imm);
    first = false;
  }
  return out;
}

// Executes a sequence as RV64 would.
int64_t simulate(const MatSeq& seq) {
  uint64_t r = 0;
  for (const MatStep& s : seq) {
    const uint64_t imm = uint64_t(s.imm);
    switch (s.op) {
      case riscv64::LUI: r = uint64_t(int64_t(int32_t(uint32_t(imm) << 12))); break;
      case riscv64::ADDI: r += imm; break;
      case riscv64::ADDIW: r = uint64_t(int64_t(int32_t(uint32_t(r + imm)))); break;
      case riscv64::SLLI: r <<= imm; break;
      case riscv64::SRLI: r >>= imm; break;
      case riscv64::XORI: r ^= imm; break;
      default: ADD_FAILURE() << "unexpected opcode " << riscv64::opcode_name(s.op);
    }
  }
  return int64_t(r);
}

// {value, instructions, the expansion of `li a0, value` by llvm-mc 19
// -triple=riscv64 -mattr=+m,+a}. (3000 random values of these shapes were
// checked the same way when the materializer was written: all equal.)
struct MatCase {
  int64_t value;
  size_t length;
  const char* llvm;
};
const MatCase kMatCases[] = {
    {0, 1, "li 0"},
    {1, 1, "li 1"},
    {-1, 1, "li -1"},
    {2047, 1, "li 2047"},
    {-2048, 1, "li -2048"},
    {2048, 2, "li 1; slli 11"},
    {-2049, 2, "lui 1048575; addiw 2047"},
    {4096, 1, "lui 1"},
    {0x12345, 2, "lui 18; addiw 837"},
    {0x10500, 2, "lui 16; addiw 1280"},
    {0x40000000, 1, "lui 262144"},
    {0x7ffff800, 2, "lui 524288; addiw -2048"},
    {0x7fffffff, 2, "lui 524288; addiw -1"},
    {-0x80000000ll, 1, "lui 524288"},
    {0x80000000, 2, "li 1; slli 31"},
    {0xffffffff, 2, "li -1; srli 32"},
    {0xfffff7ff, 3, "lui 1046527; slli 20; srli 32"},
    {0x100000000, 2, "li 1; slli 32"},
    {0xfffffffff, 2, "li -1; srli 28"},
    {0x3fffffffffff, 2, "li -1; srli 18"},
    {0x00000fffffffffff, 2, "li -1; srli 20"},
    {0x7fffffffffffffff, 2, "li -1; srli 1"},
    {int64_t(0x8000000000000000), 2, "li -1; slli 63"},
    {int64_t(0xffffffff00000000), 2, "li -1; slli 32"},
    {int64_t(0xfffffffffffff000), 1, "lui 1048575"},
    {int64_t(0x8000000000000001), 3, "li -1; slli 63; addi 1"},
    {0x1000000001, 3, "li 1; slli 36; addi 1"},
    {0x123456780, 3, "lui 9321; addiw -1329; slli 7"},
    {0x17ff00000000, 2, "lui 6143; slli 20"},
    {-0x123456789, 4, "lui 1048430; addiw 1493; slli 13; addi -1929"},
    {0x0000ffff0000ffff, 4, "lui 983041; slli 20; addi -1; srli 16"},
    {0x7ff00000000017ff, 5, "li 2047; slli 40; addi 1; slli 12; addi 2047"},
    {0x00ff00ff00ff00ff, 6, "lui 4080; addiw 255; slli 16; addi 255; slli 16; addi 255"},
    {int64_t(0x8000000900280009), 5, "lui 974843; slli 8; addi -19; srli 1; xori -1"},  // llvm-mc prints `not`
    {0x1122334455667788, 8,
     "lui 1097; addiw -1843; slli 14; addi 1109; slli 12; addi 1639; slli 12; addi 1928"},
    {int64_t(0x8877665544332211), 8,
     "lui 1040926; addiw -615; slli 12; addi 1361; slli 13; addi 409; slli 13; addi 529"},
    {int64_t(0xdeadbeefcafebabe), 8,
     "lui 1048043; addiw -577; slli 14; addi -1037; slli 12; addi -1029; slli 14; addi -1346"},
};

TEST(Riscv64MatInt, MatchesLlvmLiExpansion) {
  for (const MatCase& c : kMatCases) {
    const MatSeq seq = riscv64::materialize(c.value);
    EXPECT_EQ(seq.size(), c.length) << fmt::format("{:#x}", c.value);
    EXPECT_EQ(text(seq), c.llvm) << fmt::format("{:#x}", c.value);
    EXPECT_EQ(simulate(seq), c.value) << fmt::format("{:#x}", c.value);
  }
}

// Values of every shape: random, sparse, runs of ones anywhere, and their
// neighbours, negations and complements.
std::vector<int64_t> interesting_values() {
  std::vector<int64_t> base;
  std::mt19937_64 rng(20240601);
  for (int i = 0; i < 2000; ++i) base.push_back(int64_t(rng()));
  for (int i = 0; i < 2000; ++i) base.push_back(int64_t(rng() & rng() & rng()));
  for (int i = 0; i < 1000; ++i) base.push_back(int64_t(rng() >> (rng() % 64)));
  for (int lo = 0; lo < 64; ++lo)
    for (int len = 1; lo + len <= 64; ++len) base.push_back(int64_t(llvm::maskTrailingOnes<uint64_t>(len) << lo));
  std::vector<int64_t> all;
  for (int64_t v : base)
    for (int64_t d : {-1, 0, 1, 0x800, -0x800, 0x7ff})
      for (int64_t x : {int64_t(uint64_t(v) + uint64_t(d)), int64_t(-uint64_t(v)), int64_t(~uint64_t(v))}) all.push_back(x);
  return all;
}

TEST(Riscv64MatInt, EverySequenceComputesItsValue) {
  size_t worst = 0;
  for (int64_t v : interesting_values()) {
    const MatSeq seq = riscv64::materialize(v);
    ASSERT_EQ(simulate(seq), v) << fmt::format("{:#x}: {}", v, text(seq));
    ASSERT_LE(seq.size(), 8u) << fmt::format("{:#x}: {}", v, text(seq));
    ASSERT_TRUE(seq[0].op == riscv64::LUI || seq[0].op == riscv64::ADDI) << fmt::format("{:#x}", v);
    worst = std::max(worst, seq.size());
    if (llvm::isInt<32>(v)) {
      ASSERT_LE(seq.size(), 2u) << fmt::format("{:#x}: {}", v, text(seq));
    }
  }
  EXPECT_EQ(worst, 8u);
}

// ---- differential runs: Unicorn riscv64 vs the interpreter --------------



// Runs `source` in Unicorn and on the interpreter; compares r0 and memory.
void same_as_interpreter(const std::string& source, size_t mem_size = 0, const std::string& what = "") {
  test::expect_same_as_interpreter(source, mem_size, what, test::emulated(Arch::Riscv64));
}

// Displacements beyond 12 bits in loads, stores and atomics, both signs.
TEST(Riscv64Exec, LargeDisplacements) {
  std::string src = "mov %r0, 0\nmov %r9, %r1\nadd %r9, 16384\n";
  for (int off : {-16376, -2049, -2048, 2047, 2048, 4095, 4096, 16376}) {
    src += fmt::format("lddw %r2, {:#x}\n", 0x1122334455667788ull + uint64_t(off));
    src += fmt::format("stxdw [%r9{:+}], %r2\nldxw %r3, [%r9{:+}]\nstxw [%r9{:+}], %r3\n", off, off, off - 4);
    src += fmt::format("sth [%r9{:+}], -2\nstb [%r9{:+}], 0x7f\n", off + 2, off + 7);
    // AMOs must be aligned (a misaligned one faults, as on hardware).
    src += fmt::format("mov %r4, 3\nlock fetch add [%r9{:+}], %r4\nadd %r0, %r4\n", off & ~7);
    src += fmt::format("ldxsh %r4, [%r9{:+}]\nadd %r0, %r4\n", off + 2);
  }
  src += "exit\n";
  same_as_interpreter(src, 32768, "displacements");
}

// A conditional branch across more than 4 KiB (its +-4 KiB range): the
// assembler must relax it into an inverted branch over a jal.
TEST(Riscv64Exec, LongBranchIsRelaxed) {
  for (int taken : {0, 1}) {
    std::string src = fmt::format("mov %r0, 0\nmov %r1, {}\njeq %r1, 1, far\n", taken);
    for (int k = 0; k < 1500; ++k) src += "add %r0, 1\n";
    src += "far:\nadd %r0, 100000\nexit\n";
    same_as_interpreter(src, 0, fmt::format("long branch, taken {}", taken));
  }
}

// Frames larger than a 12-bit immediate, and unwinding from two calls deep.
TEST(Riscv64Exec, CallsAndFrames) {
  same_as_interpreter(
      "mov %r6, 1\nmov %r7, 2\nmov %r8, 3\nmov %r9, 4\nstdw [%r10-512], 77\n"
      "call local f\nldxdw %r1, [%r10-512]\nadd %r0, %r1\nadd %r0, %r6\nadd %r0, %r7\nadd %r0, %r8\nadd %r0, %r9\nexit\n"
      "f:\nmov %r6, 100\nmov %r7, 100\nstdw [%r10-8], 5\ncall local g\nldxdw %r1, [%r10-8]\nadd %r0, %r1\nexit\n"
      "g:\nmov %r8, 1000\nmov %r9, 1000\nstdw [%r10-512], 9\nmov %r0, 40\nexit\n",
      0, "nested calls");
  same_as_interpreter("call local f\nmov %r0, 2\nexit\nf:\ncall local g\nmov %r0, 3\nexit\ng:\nmov %r1, 0\ncall 5\nmov %r0, 4\nexit\n",
                      0, "unwind two deep");
}

TEST(Riscv64Exec, ConstantsRoundTrip) {
  for (const MatCase& c : kMatCases) {
    same_as_interpreter(fmt::format("lddw %r0, {:#x}\nexit\n", uint64_t(c.value)), 0, fmt::format("{:#x}", c.value));
  }
}

// An entry frame from the IR (bytecode always gets 512 bytes) larger than a
// 12-bit immediate: 5000, plus the callee frames' region (sp adjusted
// through t0); the callee's frame lies below it and it must keep r6. Run directly in Unicorn, as the entry contract says:
// a0 = r0 and a1 = status on return to ra.
TEST(Riscv64Exec, LargeFramesFromIr) {
  using namespace ir;
  Module m;
  Function main_fn;
  main_fn.frame_size = 5000;
  main_fn.code = {store_imm(8, kFP, -5000, 11), alu_imm(Op::Mov, 64, 6, 5), Inst{}, load(8, false, 1, kFP, -5000),
                  alu(Op::Add, 64, 0, 1), alu(Op::Add, 64, 0, 6), Inst{}};
  main_fn.code[2].op = Op::CallLocal, main_fn.code[2].target = 1;
  main_fn.code[6].op = Op::Exit;
  Function callee;
  callee.name = "f";
  callee.code = {store_imm(8, kFP, -512, 100), load(8, false, 0, kFP, -512), alu_imm(Op::Mov, 64, 6, 77), Inst{}};
  callee.code[3].op = Op::Exit;
  m.functions = {main_fn, callee};
  check(m);
  CompileOptions opts;
  opts.arch = Arch::Riscv64;
  const mc::CodeImage image = generate(m, opts);

  constexpr uint64_t kCode = 0x10000000, kStack = 0x20000000, kStackSize = 0x10000, kExit = 0x50000000;
  uc_engine* uc = nullptr;
  ASSERT_EQ(uc_open(UC_ARCH_RISCV, UC_MODE_RISCV64, &uc), UC_ERR_OK);
  const uint64_t code_size = (image.text.size() + 0xfff) & ~uint64_t(0xfff);
  ASSERT_EQ(uc_mem_map(uc, kCode, code_size, UC_PROT_READ | UC_PROT_EXEC), UC_ERR_OK);
  ASSERT_EQ(uc_mem_write(uc, kCode, image.text.data(), image.text.size()), UC_ERR_OK);
  ASSERT_EQ(uc_mem_map(uc, kStack, kStackSize, UC_PROT_READ | UC_PROT_WRITE), UC_ERR_OK);
  ASSERT_EQ(uc_mem_map(uc, kExit, 0x1000, UC_PROT_READ | UC_PROT_EXEC), UC_ERR_OK);
  uint64_t sp = kStack + kStackSize, ra = kExit;
  uc_reg_write(uc, UC_RISCV_REG_SP, &sp);
  uc_reg_write(uc, UC_RISCV_REG_RA, &ra);
  EXPECT_EQ(uc_emu_start(uc, kCode, kExit, 0, 100000), UC_ERR_OK);
  uint64_t pc = 0, a0 = 0, a1 = 0, sp_after = 0;
  uc_reg_read(uc, UC_RISCV_REG_PC, &pc);
  uc_reg_read(uc, UC_RISCV_REG_A0, &a0);
  uc_reg_read(uc, UC_RISCV_REG_A1, &a1);
  uc_reg_read(uc, UC_RISCV_REG_SP, &sp_after);
  uc_close(uc);
  EXPECT_EQ(pc, kExit);
  EXPECT_EQ(a0, 116u);  // 100 from the callee's frame + 11 from the entry's + r6 = 5
  EXPECT_EQ(a1, 0u);
  EXPECT_EQ(sp_after, sp);
}

}  // namespace
}  // namespace sb::test

#endif  // SPRINGBOARD_HAVE_RISCV64

namespace sb {
namespace {

// jal reaches +-1 MiB and has no longer form here (abi.cpp): a jump beyond
// it must fail the compile, never produce code that jumps elsewhere.
TEST(Riscv64Compile, OutOfRangeJumpIsAnErrorNotWrongCode) {
  bpf::Program p;
  p.name = "far.bin";
  bpf::Insn ja32{};
  ja32.opcode = bpf::make_opcode(bpf::JMP32, bpf::JA);
  ja32.imm = 300000;
  p.insns.push_back(ja32);
  bpf::Insn mov{};
  mov.opcode = bpf::make_opcode(bpf::ALU64, bpf::ADD);  // add r0, 0 (K form): live, so no pass drops it
  p.insns.insert(p.insns.end(), 300000, mov);
  bpf::Insn exit{};
  exit.opcode = bpf::make_opcode(bpf::JMP, bpf::EXIT);
  p.insns.push_back(exit);
  CompileOptions opts;
  opts.arch = Arch::Riscv64;
  opts.helper_address = [](uint32_t) { return uint64_t(0x1000); };
  EXPECT_THROW(compile(p, rt::HelperTable::conformance(), opts), Error);
}

}  // namespace
}  // namespace sb
