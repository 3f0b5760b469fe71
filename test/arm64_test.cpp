// arm64 backend: the logical-immediate encoder against LLVM's and against
// its own decoder over every encoding, the constant materializer by table
// and by simulation, and differential runs in Unicorn against the
// interpreter over the corners the backend handles itself (immediate
// forms, W-register zero extension, division, exclusive-access atomics,
// addressing modes, frames, and conditional branches beyond +-1 MiB).
#ifdef SPRINGBOARD_HAVE_ARM64

#include <cstring>
#include <random>
#include <set>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unicorn/unicorn.h>

#include "backends/arm64/arm64.h"
#include "backends/compile.h"
#include "backends/mc/disasm.h"
#include "frontend/assembler.h"
#include "ir/diag.h"
#include "runtime/exec/emulator.h"
#include "runtime/exec/interpreter.h"
#include "test/compare.h"

namespace sb::test {
namespace {

using arm64::MatSeq;
using arm64::MatStep;

// ---- logical immediates -------------------------------------------------

// {value, width, the N:immr:imms field llvm-mc 19 encodes for
// `and x0, x0, #value` (w0 for width 32), or -1: not encodable}.
struct LogicalCase {
  uint64_t value;
  unsigned width;
  int32_t field;
};
const LogicalCase kLogicalCases[] = {
    {0xff, 64, 4103},
    {0x1, 64, 4096},
    {0x8000000000000000, 64, 4160},
    {0x7fffffffffffffff, 64, 4158},
    {0xfffffffffffffffe, 64, 8190},
    {0x5555555555555555, 64, 60},
    {0xaaaaaaaaaaaaaaaa, 64, 124},
    {0x0000ffff0000ffff, 64, 15},
    {0xff00ff00ff00ff00, 64, 551},
    {0x0f0f0f0f0f0f0f0f, 64, 51},
    {0x00000001ffffffff, 64, 4128},
    {0xffffffff80000000, 64, 6240},
    {0x8000000000000001, 64, 4161},
    {0x1111111111111111, 64, 56},
    {0x00ff000000ff0000, 64, 1031},
    {0xff, 32, 7},
    {0x80000001, 32, 65},
    {0xfffffffe, 32, 2014},
    {0x55555555, 32, 60},
    {0xffff0000, 32, 1039},
    {0x3c3c3c3c, 32, 435},
    {0x1fffffffe, 32, 2014},  // only the low 32 bits count at width 32
    // Not encodable: zero, all ones, no single rotated run, no repetition.
    {0, 64, -1},
    {~uint64_t(0), 64, -1},
    {0, 32, -1},
    {0xffffffff, 32, -1},
    {0x12345, 64, -1},
    {0x5, 64, -1},
    {0x0000ffff0000fffe, 64, -1},
    {0x00000000ffff0001, 64, -1},
    {0x1234, 32, -1},
    {0x80000003fffffff, 64, -1},
};

TEST(Arm64LogicalImm, MatchesLlvmEncoding) {
  for (const LogicalCase& c : kLogicalCases) {
    const auto field = arm64::encode_logical_imm(c.value, c.width);
    const std::string what = fmt::format("{:#x} at {} bits", c.value, c.width);
    if (c.field < 0) {
      EXPECT_FALSE(field.has_value()) << what;
      continue;
    }
    ASSERT_TRUE(field.has_value()) << what;
    EXPECT_EQ(*field, uint32_t(c.field)) << what;
    const uint64_t mask = c.width == 32 ? 0xffffffff : ~uint64_t(0);
    EXPECT_EQ(arm64::decode_logical_imm(*field, c.width), c.value & mask) << what;
  }
}

// Every field decodes to a value that encodes back to the same field (when
// its immr is canonical, below the element size); 5334 distinct 64-bit
// values and 1302 32-bit ones, as the architecture says; and random values
// encode exactly when they are among them.
TEST(Arm64LogicalImm, EveryEncodingRoundTrips) {
  for (unsigned width : {32u, 64u}) {
    std::set<uint64_t> values;
    for (uint32_t field = 0; field < (1u << 13); ++field) {
      if (width == 32 && (field >> 12)) continue;
      const uint64_t v = arm64::decode_logical_imm(field, width);
      if (v == 0) continue;  // reserved
      values.insert(v);
      const auto back = arm64::encode_logical_imm(v, width);
      ASSERT_TRUE(back.has_value()) << fmt::format("field {:#x}", field);
      ASSERT_EQ(arm64::decode_logical_imm(*back, width), v) << fmt::format("field {:#x}", field);
      const unsigned imms = field & 0x3f, n = field >> 12;
      const unsigned size = n ? 64 : 1u << (31 - __builtin_clz(~imms & 0x3f));
      if (((field >> 6) & 0x3f) < size) {
        ASSERT_EQ(*back, field) << fmt::format("field {:#x}", field);
      }
    }
    EXPECT_EQ(values.size(), width == 64 ? 5334u : 1302u);
    const std::vector<uint64_t> list(values.begin(), values.end());
    std::mt19937_64 rng(7);
    for (int k = 0; k < 200000; ++k) {
      uint64_t v = rng();
      if (k % 2) v = list[rng() % list.size()] ^ (uint64_t(1) << (rng() % width));
      if (width == 32) v &= 0xffffffff;
      ASSERT_EQ(arm64::encode_logical_imm(v, width).has_value(), values.count(v) == 1) << fmt::format("{:#x}", v);
    }
  }
}

// ---- constant materialization -------------------------------------------

bool is_w(arm64::Opc op) {
  return op == arm64::MOVZWi || op == arm64::MOVNWi || op == arm64::MOVKWi || op == arm64::ORRWri;
}

// "movz x, #0x1234, lsl #16; movk x, #0x5678, lsl #32": the sequence in
// assembly syntax without the destination register's number.
std::string text(const MatSeq& seq) {
  std::string out;
  for (const MatStep& s : seq) {
    if (!out.empty()) out += "; ";
    const char* reg = is_w(s.op) ? "w" : "x";
    switch (s.op) {
      case arm64::ORRXri: case arm64::ORRWri:
        out += fmt::format("orr {}, #{:#x}", reg, arm64::decode_logical_imm(s.imm, is_w(s.op) ? 32 : 64));
        continue;
      case arm64::MOVZXi: case arm64::MOVZWi: out += "movz "; break;
      case arm64::MOVNXi: case arm64::MOVNWi: out += "movn "; break;
      default: out += "movk "; break;
    }
    out += fmt::format("{}, #{:#x}", reg, s.imm);
    if (s.shift) out += fmt::format(", lsl #{}", s.shift);
  }
  return out;
}

// Executes a sequence as arm64 would.
uint64_t simulate(const MatSeq& seq) {
  uint64_t r = 0xdeadbeefdeadbeef;
  for (const MatStep& s : seq) {
    const uint64_t chunk = uint64_t(s.imm) << s.shift;
    switch (s.op) {
      case arm64::MOVZXi: case arm64::MOVZWi: r = chunk; break;
      case arm64::MOVNXi: r = ~chunk; break;
      case arm64::MOVNWi: r = ~chunk & 0xffffffff; break;
      case arm64::MOVKXi: r = (r & ~(uint64_t(0xffff) << s.shift)) | chunk; break;
      case arm64::MOVKWi: r = ((r & ~(uint64_t(0xffff) << s.shift)) | chunk) & 0xffffffff; break;
      case arm64::ORRXri: r = arm64::decode_logical_imm(s.imm, 64); break;
      case arm64::ORRWri: r = arm64::decode_logical_imm(s.imm, 32); break;
      default: ADD_FAILURE() << "unexpected opcode " << arm64::opcode_name(s.op);
    }
  }
  return r;
}

struct MatCase {
  uint64_t value;
  const char* expected;
};
const MatCase kMatCases[] = {
    {0, "movz w, #0x0"},
    {1, "movz w, #0x1"},
    {0xffff, "movz w, #0xffff"},
    {0x10000, "movz w, #0x1, lsl #16"},
    {0x12345, "movz w, #0x2345; movk w, #0x1, lsl #16"},
    {0xffffffff, "movn w, #0x0"},
    {0xfffffffe, "movn w, #0x1"},
    {0xfffe1234, "movz w, #0x1234; movk w, #0xfffe, lsl #16"},
    {0x1234ffff, "movn w, #0xedcb, lsl #16"},
    {0x80000000, "movz w, #0x8000, lsl #16"},
    {0x55555555, "orr w, #0x55555555"},
    {0x00ff00ff, "orr w, #0xff00ff"},
    {0x100000000, "movz x, #0x1, lsl #32"},
    {0x123400000000, "movz x, #0x1234, lsl #32"},
    {~uint64_t(0), "movn x, #0x0"},
    {uint64_t(-2), "movn x, #0x1"},
    {uint64_t(-65536), "movn x, #0xffff"},
    {uint64_t(-0x10001), "movn x, #0x1, lsl #16"},
    {0xffffffff00001234, "movn x, #0xedcb; movk x, #0x0, lsl #16"},
    {0x1234ffffffffffff, "movn x, #0xedcb, lsl #48"},
    {0xffff1234ffffffff, "movn x, #0xedcb, lsl #32"},
    {0x0000ffff0000ffff, "orr x, #0xffff0000ffff"},
    {0x5555555555555555, "orr x, #0x5555555555555555"},
    {0x00000001ffffffff, "orr x, #0x1ffffffff"},
    {0x8000000000000001, "orr x, #0x8000000000000001"},
    {0xffffffff80000000, "orr x, #0xffffffff80000000"},
    {0x5555123455555555, "orr x, #0x5555555555555555; movk x, #0x1234, lsl #32"},
    {0x1234567812345678, "movz x, #0x5678; movk x, #0x1234, lsl #16; movk x, #0x5678, lsl #32; movk x, #0x1234, lsl #48"},
    {0x00ff00ff12ff00ff, "orr x, #0xff00ff00ff00ff; movk x, #0x12ff, lsl #16"},
    {0x1234000000005678, "movz x, #0x5678; movk x, #0x1234, lsl #48"},
    {0x1122334455667788, "movz x, #0x7788; movk x, #0x5566, lsl #16; movk x, #0x3344, lsl #32; movk x, #0x1122, lsl #48"},
    {0xdeadbeefcafebabe, "movz x, #0xbabe; movk x, #0xcafe, lsl #16; movk x, #0xbeef, lsl #32; movk x, #0xdead, lsl #48"},
    {0xfedcba98ffff3210, "movn x, #0xcdef; movk x, #0xba98, lsl #32; movk x, #0xfedc, lsl #48"},
};

TEST(Arm64MatImm, ChoosesTheExpectedSequence) {
  for (const MatCase& c : kMatCases) {
    const MatSeq seq = arm64::materialize(c.value);
    EXPECT_EQ(text(seq), c.expected) << fmt::format("{:#x}", c.value);
    EXPECT_EQ(simulate(seq), c.value) << fmt::format("{:#x}", c.value);
  }
}

// Values of every shape: random, sparse, runs of ones anywhere, single
// chunks, and their neighbours, negations and complements.
std::vector<uint64_t> interesting_values() {
  std::vector<uint64_t> base;
  std::mt19937_64 rng(20240601);
  for (int i = 0; i < 2000; ++i) base.push_back(rng());
  for (int i = 0; i < 2000; ++i) base.push_back(rng() & rng() & rng());
  for (int i = 0; i < 1000; ++i) base.push_back(rng() >> (rng() % 64));
  for (int i = 0; i < 1000; ++i) base.push_back((rng() & 0xffff) << (16 * (rng() % 4)));
  for (int lo = 0; lo < 64; ++lo)
    for (int len = 1; lo + len <= 64; ++len) base.push_back(llvm::maskTrailingOnes<uint64_t>(len) << lo);
  std::vector<uint64_t> all;
  for (uint64_t v : base)
    for (uint64_t d : {uint64_t(0), uint64_t(1), uint64_t(-1), uint64_t(0x10000)})
      for (uint64_t x : {v + d, 0 - v, ~v, v & 0xffffffff}) all.push_back(x);
  return all;
}

// Every sequence computes its value in at most 4 instructions; a value of
// one chunk, one inverted chunk or a logical immediate takes one; no
// sequence is longer than plain MOVZ + MOVKs or MOVN + MOVKs.
TEST(Arm64MatImm, EverySequenceComputesItsValue) {
  for (uint64_t v : interesting_values()) {
    const MatSeq seq = arm64::materialize(v);
    ASSERT_EQ(simulate(seq), v) << fmt::format("{:#x}: {}", v, text(seq));
    ASSERT_LE(seq.size(), 4u) << fmt::format("{:#x}: {}", v, text(seq));
    const bool w = (v >> 32) == 0;
    size_t not_zero = 0, not_ones = 0;
    for (unsigned k = 0; k < (w ? 2 : 4); ++k) {
      not_zero += ((v >> (16 * k)) & 0xffff) != 0;
      not_ones += ((v >> (16 * k)) & 0xffff) != 0xffff;
    }
    ASSERT_LE(seq.size(), std::max<size_t>(1, std::min(not_zero, not_ones))) << fmt::format("{:#x}: {}", v, text(seq));
    if (arm64::encode_logical_imm(v, w ? 32 : 64)) {
      ASSERT_EQ(seq.size(), 1u) << fmt::format("{:#x}: {}", v, text(seq));
    }
  }
}

// ---- differential runs: Unicorn arm64 vs the interpreter ----------------



// Runs `source` in Unicorn and on the interpreter; compares r0 and memory.
void same_as_interpreter(const std::string& source, size_t mem_size = 0, const std::string& what = "") {
  test::expect_same_as_interpreter(source, mem_size, what, test::emulated(Arch::Arm64));
}

// Every addressing form: scaled, unscaled (LDUR/STUR), register offset;
// both signs, every size, loads sign- and zero-extending, stored constants.
TEST(Arm64Exec, DisplacementsMatchInterpreter) {
  std::string src = "mov %r0, 0\nmov %r9, %r1\nadd %r9, 16400\n";
  for (int off : {-16376, -4096, -257, -256, -255, -8, -1, 0, 1, 7, 255, 256, 4095, 4096, 8190, 16376}) {
    src += fmt::format("lddw %r2, {:#x}\n", 0x1122334455667788ull + uint64_t(off));
    src += fmt::format("stxdw [%r9{:+}], %r2\nldxw %r3, [%r9{:+}]\nstxw [%r9{:+}], %r3\n", off, off, off - 4);
    src += fmt::format("sth [%r9{:+}], -2\nstb [%r9{:+}], 0x7f\nstw [%r9{:+}], 0\n", off + 2, off + 7, off - 8);
    src += fmt::format("stdw [%r9{:+}], -0x12345\n", off - 16);
    src += fmt::format("ldxsh %r4, [%r9{:+}]\nadd %r0, %r4\n", off + 2);
    src += fmt::format("ldxsb %r4, [%r9{:+}]\nadd %r0, %r4\n", off + 7);
    src += fmt::format("ldxsw %r4, [%r9{:+}]\nadd %r0, %r4\n", off - 16);
    src += fmt::format("ldxh %r4, [%r9{:+}]\nadd %r0, %r4\n", off + 1);
    src += fmt::format("ldxb %r4, [%r9{:+}]\nadd %r0, %r4\n", off + 3);
    // Exclusive accesses must be aligned (a misaligned one faults, as on hardware).
    src += fmt::format("mov %r4, 3\nlock fetch add [%r9{:+}], %r4\nadd %r0, %r4\n", off & ~7);
  }
  src += "exit\n";
  same_as_interpreter(src, 32800, "displacements");
}

// Nested calls keep r6-r9 and each frame; unwinding from two calls deep.
TEST(Arm64Exec, CallsAndFrames) {
  same_as_interpreter(
      "mov %r6, 1\nmov %r7, 2\nmov %r8, 3\nmov %r9, 4\nstdw [%r10-512], 77\n"
      "call local f\nldxdw %r1, [%r10-512]\nadd %r0, %r1\nadd %r0, %r6\nadd %r0, %r7\nadd %r0, %r8\nadd %r0, %r9\nexit\n"
      "f:\nmov %r6, 100\nmov %r7, 100\nstdw [%r10-8], 5\ncall local g\nldxdw %r1, [%r10-8]\nadd %r0, %r1\nexit\n"
      "g:\nmov %r8, 1000\nmov %r9, 1000\nstdw [%r10-512], 9\nmov %r0, 40\nexit\n",
      0, "nested calls");
  same_as_interpreter("call local f\nmov %r0, 2\nexit\nf:\ncall local g\nmov %r0, 3\nexit\ng:\nmov %r1, 0\ncall 5\nmov %r0, 4\nexit\n",
                      0, "unwind two deep");
}

TEST(Arm64Exec, ConstantsRoundTrip) {
  for (const MatCase& c : kMatCases) {
    same_as_interpreter(fmt::format("lddw %r0, {:#x}\nexit\n", c.value), 0, fmt::format("{:#x}", c.value));
  }
}

// The disassembly of a program's code, one instruction per line.
std::string arm64_text(const std::string& source) {
  const bpf::Program p = bpf::assemble(source, "<arm64 test>");
  const rt::HelperTable helpers = rt::HelperTable::conformance();
  rt::EmulatedProgram emu(p, helpers, Arch::Arm64);
  return mc::disassemble_text(Arch::Arm64, emu.image().text);
}

// A conditional branch over more IR than kMaxInstsPerOp instructions each
// could keep within +-1 MiB takes the long form (B.!cc over a B); a short
// one stays a single B.cc. Both run right, taken or not.
TEST(Arm64Exec, BranchesBeyondTheEstimateTakeTheLongForm) {
  constexpr int kLong = int(arm64::kCondBranchReach / (4 * arm64::kMaxInstsPerOp)) + 10;
  for (int n : {100, kLong}) {
    for (int taken : {0, 1}) {
      // neg: r0 is no longer a known constant, so the adds stay adds
      std::string src = fmt::format("mov %r0, 0\nneg %r0\nmov %r1, {}\njeq %r1, 1, far\n", taken);
      for (int k = 0; k < n; ++k) src += "add %r0, 1\n";
      src += "far:\nadd %r0, 100000\nexit\n";
      same_as_interpreter(src, 0, fmt::format("branch over {}, taken {}", n, taken));
      if (taken) continue;
      std::vector<std::string> lines;
      std::istringstream in(arm64_text(src));
      for (std::string line; std::getline(in, line);) lines.push_back(line);
      const auto cmp = std::find(lines.begin(), lines.end(), "cmp x0, #1");
      ASSERT_LT(cmp + 2, lines.end());
      const bool long_form = cmp[1].rfind("b.ne ", 0) == 0 && cmp[2].rfind("b #", 0) == 0;
      EXPECT_EQ(cmp[1].rfind("b.eq ", 0) == 0, n != kLong) << "over " << n;
      EXPECT_EQ(long_form, n == kLong) << "over " << n;
    }
  }
}

// A conditional branch whose target really is more than 1 MiB away (each
// `call %r6` dispatches over the helpers, ~50 bytes): without the long form
// LLVM's assembler would reject the fixup.
TEST(Arm64Exec, BranchBeyondOneMebibyte) {
  for (int taken : {0, 1}) {
    std::string src = fmt::format("mov %r0, 0\nmov %r6, 5\nmov %r1, 1\nmov %r7, {}\njeq %r7, 1, far\n", taken);
    for (int k = 0; k < 24000; ++k) src += "call %r6\n";
    src += "far:\nadd %r0, 100\nexit\n";
    if (!taken) {
      const rt::HelperTable helpers = rt::HelperTable::conformance();
      const rt::EmulatedProgram emu(bpf::assemble(src, "<far>"), helpers, Arch::Arm64);
      ASSERT_GT(emu.image().text.size(), size_t(1) << 20);
    }
    same_as_interpreter(src, 0, fmt::format("branch beyond 1 MiB, taken {}", taken));
  }
}

// Frames from the IR (bytecode always gets 512 bytes) beyond an immediate:
// 5000 (sub #1, lsl #12 + sub #0x390) and 16 MiB + 16 (through x9); the
// callee must keep r6. Run directly in Unicorn, as the entry contract says:
// x0 = r0 and x1 = status on return to lr, sp restored.
TEST(Arm64Exec, LargeFramesFromIr) {
  using namespace ir;
  Module m;
  Function main_fn;
  // The entry's frame is too large for one immediate; a callee's frame
  // lies inside the entry's stack region, below the entry's own frame.
  main_fn.frame_size = (1u << 24) + 16;
  const int32_t deep = -int32_t(main_fn.frame_size);
  main_fn.code = {store_imm(8, kFP, deep, 11), alu_imm(Op::Mov, 64, 6, 5), Inst{}, load(8, false, 1, kFP, deep),
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
  opts.arch = Arch::Arm64;
  const mc::CodeImage image = generate(m, opts);

  constexpr uint64_t kCode = 0x10000000, kStack = 0x20000000, kStackSize = 0x2000000, kExit = 0x50000000;
  uc_engine* uc = nullptr;
  ASSERT_EQ(uc_open(UC_ARCH_ARM64, UC_MODE_ARM, &uc), UC_ERR_OK);
  const uint64_t code_size = (image.text.size() + 0xfff) & ~uint64_t(0xfff);
  ASSERT_EQ(uc_mem_map(uc, kCode, code_size, UC_PROT_READ | UC_PROT_EXEC), UC_ERR_OK);
  ASSERT_EQ(uc_mem_write(uc, kCode, image.text.data(), image.text.size()), UC_ERR_OK);
  ASSERT_EQ(uc_mem_map(uc, kStack, kStackSize, UC_PROT_READ | UC_PROT_WRITE), UC_ERR_OK);
  ASSERT_EQ(uc_mem_map(uc, kExit, 0x1000, UC_PROT_READ | UC_PROT_EXEC), UC_ERR_OK);
  uint64_t sp = kStack + kStackSize, lr = kExit, x19 = 0x1919, x26 = 0x2626;
  uc_reg_write(uc, UC_ARM64_REG_SP, &sp);
  uc_reg_write(uc, UC_ARM64_REG_LR, &lr);
  uc_reg_write(uc, UC_ARM64_REG_X19, &x19);
  uc_reg_write(uc, UC_ARM64_REG_X26, &x26);
  EXPECT_EQ(uc_emu_start(uc, kCode, kExit, 0, 100000), UC_ERR_OK);
  uint64_t pc = 0, x0 = 0, x1 = 0, sp_after = 0, x19_after = 0, x26_after = 0;
  uc_reg_read(uc, UC_ARM64_REG_PC, &pc);
  uc_reg_read(uc, UC_ARM64_REG_X0, &x0);
  uc_reg_read(uc, UC_ARM64_REG_X1, &x1);
  uc_reg_read(uc, UC_ARM64_REG_SP, &sp_after);
  uc_reg_read(uc, UC_ARM64_REG_X19, &x19_after);
  uc_reg_read(uc, UC_ARM64_REG_X26, &x26_after);
  uc_close(uc);
  EXPECT_EQ(pc, kExit);
  EXPECT_EQ(x0, 116u);  // 100 from the callee's frame + 11 from the entry's + r6 = 5
  EXPECT_EQ(x1, 0u);
  EXPECT_EQ(sp_after, sp);
  EXPECT_EQ(x19_after, x19);  // callee-saved registers survive the entry call
  EXPECT_EQ(x26_after, x26);
}

// Native signatures (trampolines): a function A with 21 argument words in
// x0-x6, d0-d7 and 6 stack slots (a 16-byte struct that no longer fits
// the registers goes to the stack and closes them, as AAPCS64 says; f32
// stack words have garbage above their low half) spills them, checksums
// its spill into memory, and passes them on with CallSig to B (compiled
// separately at another address), which checksums its own spill and
// returns it as an f64 (d0), which A returns as is.
TEST(Arm64Exec, NativeSignatureSpillAndCallSig) {
  using namespace ir;
  Signature sig;
  auto value = [](Type t, uint8_t size) { NativeValue v; v.type = t; v.size = size; return v; };
  for (int k = 0; k < 7; ++k) sig.args.push_back(value(Type::I64, 8));
  sig.args.push_back(value(Type::Struct, 16));
  sig.args.push_back(value(Type::I64, 8));
  for (int k = 0; k < 9; ++k) sig.args.push_back(value(Type::F64, 8));
  sig.args.push_back(value(Type::F32, 4));
  sig.args.push_back(value(Type::F32, 4));
  sig.ret = value(Type::F64, 8);
  const uint32_t words = sig.words();
  ASSERT_EQ(words, 21u);
  sig.spill_off = -8 * int32_t(words) - 8;

  constexpr uint64_t kCodeA = 0x10000000, kCodeB = 0x11000000, kData = 0x30000000;
  // r0 (or r6) = sum of (w + 1) * word[w] over the spill.
  auto checksum = [&](uint8_t into) {
    std::vector<Inst> code = {alu_imm(Op::Mov, 64, into, 0)};
    for (uint32_t w = 0; w < words; ++w) {
      code.push_back(load(8, false, 1, kFP, sig.spill_off + int32_t(8 * w)));
      code.push_back(alu_imm(Op::Mul, 64, 1, w + 1));
      code.push_back(alu(Op::Add, 64, into, 1));
    }
    return code;
  };
  auto op = [](Op o) { Inst i; i.op = o; return i; };
  Module b;
  b.functions.emplace_back();
  b.functions[0].native = sig;
  b.functions[0].code = checksum(0);
  b.functions[0].code.push_back(op(Op::Exit));
  Module a;
  a.functions.emplace_back();
  a.functions[0].native = sig;
  a.functions[0].code = checksum(6);
  Inst imm = alu_imm(Op::Mov, 64, 2, 0);
  imm.op = Op::LoadImm, imm.imm = int64_t(kData);
  a.functions[0].code.push_back(imm);
  a.functions[0].code.push_back(store(8, 2, 0, 6));
  Inst call = op(Op::CallSig);
  call.imm = int64_t(kCodeB);
  call.off = sig.spill_off;
  a.functions[0].code.push_back(call);
  a.functions[0].code.push_back(op(Op::Exit));
  check(a);
  check(b);
  CompileOptions opts;
  opts.arch = Arch::Arm64;
  const mc::CodeImage image_a = generate(a, opts), image_b = generate(b, opts);

  // The words as the callee should see them, and the registers and stack
  // slots a caller fills.
  std::vector<uint64_t> word(words);
  for (uint32_t w = 0; w < words; ++w) word[w] = 0x0123456789abcdefull * (w + 3) + w;
  word[19] &= 0xffffffff, word[20] &= 0xffffffff;  // the f32s
  const uint32_t in_x[] = {0, 1, 2, 3, 4, 5, 6};
  const uint32_t in_d[] = {10, 11, 12, 13, 14, 15, 16, 17};
  const uint32_t on_stack[] = {7, 8, 9, 18, 19, 20};
  uint64_t expected = 0;
  for (uint32_t w = 0; w < words; ++w) expected += (w + 1) * word[w];

  constexpr uint64_t kStack = 0x20000000, kStackSize = 0x10000, kExit = 0x50000000;
  uc_engine* uc = nullptr;
  ASSERT_EQ(uc_open(UC_ARCH_ARM64, UC_MODE_ARM, &uc), UC_ERR_OK);
  for (auto [base, image] : {std::pair{kCodeA, &image_a}, std::pair{kCodeB, &image_b}}) {
    ASSERT_EQ(uc_mem_map(uc, base, (image->text.size() + 0xfff) & ~uint64_t(0xfff), UC_PROT_READ | UC_PROT_EXEC), UC_ERR_OK);
    ASSERT_EQ(uc_mem_write(uc, base, image->text.data(), image->text.size()), UC_ERR_OK);
  }
  ASSERT_EQ(uc_mem_map(uc, kStack, kStackSize, UC_PROT_READ | UC_PROT_WRITE), UC_ERR_OK);
  ASSERT_EQ(uc_mem_map(uc, kData, 0x1000, UC_PROT_READ | UC_PROT_WRITE), UC_ERR_OK);
  ASSERT_EQ(uc_mem_map(uc, kExit, 0x1000, UC_PROT_READ | UC_PROT_EXEC), UC_ERR_OK);
  uint64_t sp = kStack + kStackSize - 64, lr = kExit;
  for (size_t k = 0; k < std::size(on_stack); ++k) {
    uint64_t v = word[on_stack[k]];
    if (on_stack[k] >= 19) v |= 0xdead000000000000;  // above an f32: anything
    ASSERT_EQ(uc_mem_write(uc, sp + 8 * k, &v, 8), UC_ERR_OK);
  }
  for (size_t k = 0; k < std::size(in_x); ++k) uc_reg_write(uc, UC_ARM64_REG_X0 + int(k), &word[in_x[k]]);
  for (size_t k = 0; k < std::size(in_d); ++k) uc_reg_write(uc, UC_ARM64_REG_D0 + int(k), &word[in_d[k]]);
  uc_reg_write(uc, UC_ARM64_REG_SP, &sp);
  uc_reg_write(uc, UC_ARM64_REG_LR, &lr);
  EXPECT_EQ(uc_emu_start(uc, kCodeA, kExit, 0, 100000), UC_ERR_OK);
  uint64_t pc = 0, d0 = 0, spilled = 0, sp_after = 0;
  uc_reg_read(uc, UC_ARM64_REG_PC, &pc);
  uc_reg_read(uc, UC_ARM64_REG_D0, &d0);
  uc_reg_read(uc, UC_ARM64_REG_SP, &sp_after);
  uc_mem_read(uc, kData, &spilled, 8);
  uc_close(uc);
  EXPECT_EQ(pc, kExit);
  EXPECT_EQ(spilled, expected) << "A's own spill";
  EXPECT_EQ(d0, expected) << "B's spill of what A passed, returned in d0 and back";
  EXPECT_EQ(sp_after, sp);
}

}  // namespace
}  // namespace sb::test

#endif  // SPRINGBOARD_HAVE_ARM64
