// Operand grids on every engine: each binary ALU operation, division
// corner, unary operation, branch condition and atomic at both widths, by
// register and by immediate, over operands at every immediate boundary a
// backend's selector knows (x86 imm8/imm32, arm64 imm12 and logical
// immediates, riscv imm12 and LUI). Every result is stored to memory, so a
// mismatch names its pair. Runs on each engine of runtime/exec/engines.h against
// the interpreter, so a new backend is covered without a line here.
#include <cstring>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "frontend/assembler.h"
#include "ir/diag.h"
#include "runtime/exec/engines.h"
#include "runtime/exec/interpreter.h"
#include "test/compare.h"

namespace sb::test {
namespace {

void same_on_every_engine(const std::string& source, size_t mem_size = 0, const std::string& what = "") {
  expect_same_as_interpreter(source, mem_size, what, [](const rt::Engine&) { return true; });
}


const int64_t kOperands[] = {0, 1, 2, 3, -1, -2, 7, -7, 8, 31, 32, 33, 63, 64, 65, 127, 128, -128, -129,
                             2047, 2048, -2049, 4094, 4095, 4096, -4095, -4096, 4097, 0xfff, 0x7000, 0xfff000,
                             0x7fffff, 0x1000000, 0xffff, 0x10000, 0x55555555, 0x7fffffff, int64_t(0x80000000),
                             int64_t(0xffffffff), 0x100000000, int64_t(0xffffffff80000000), 0x7fffffffffffffff,
                             int64_t(0x8000000000000000), 0x123456789abcdef0, int64_t(0xfedcba9876543210),
                             0x0000ffff0000ffff, 0x100000003, int64_t(0xffffffff00000005)};

// Every binary ALU operation at both widths, by register and by immediate,
// over kOperands x kOperands; each result is stored to memory, so a
// mismatch names its pair.
TEST(OperandGrid, AluMatchesInterpreter) {
  const char* ops[] = {"add", "sub", "mul", "div", "sdiv", "mod", "smod", "or", "and", "xor", "lsh", "rsh", "arsh", "mov"};
  const size_t n = std::size(kOperands);
  for (const char* op : ops) {
    const bool divides = std::string(op).find("div") != std::string::npos || std::string(op).find("mod") != std::string::npos;
    for (const char* suffix : {"", "32"}) {
      for (bool imm : {false, true}) {
        std::string src = "mov %r9, %r1\n";
        size_t k = 0;
        for (int64_t a : kOperands) {
          for (int64_t b : kOperands) {
            if (imm && divides && int32_t(b) == 0) continue;  // rejected by the validator
            src += fmt::format("lddw %r0, {:#x}\n", uint64_t(a));
            if (imm) src += fmt::format("{}{} %r0, {}\n", op, suffix, int32_t(b));
            else src += fmt::format("lddw %r4, {:#x}\n{}{} %r0, %r4\n", uint64_t(b), op, suffix);
            src += fmt::format("stxdw [%r9+{}], %r0\n", 8 * k++);
          }
        }
        src += "mov %r0, 0\nexit\n";
        same_on_every_engine(src, 8 * n * n, fmt::format("{}{} by {}", op, suffix, imm ? "imm" : "reg"));
      }
    }
  }
}

// Division by powers of two (shifts and masks) and by -1, both widths.
TEST(OperandGrid, DivisionCornersMatchInterpreter) {
  std::string src = "mov %r9, %r1\n";
  size_t k = 0;
  for (int64_t a : kOperands) {
    for (int32_t b : {1, 2, 4096, 0x40000000, int32_t(0x80000000), -1, -2, 3}) {
      for (const char* op : {"div", "mod", "sdiv", "smod", "div32", "mod32", "sdiv32", "smod32"}) {
        src += fmt::format("lddw %r0, {:#x}\n{} %r0, {}\nstxdw [%r9+{}], %r0\n", uint64_t(a), op, b, 8 * k++);
      }
    }
  }
  src += "mov %r0, 0\nexit\n";
  same_on_every_engine(src, 8 * k, "division corners");
}

TEST(OperandGrid, UnaryMatchesInterpreter) {
  const char* ops[] = {"neg", "neg32", "be16", "be32", "be64", "le16", "le32", "le64", "bswap16", "bswap32", "bswap64"};
  const char* movs[] = {"movsx864", "movsx1664", "movsx3264", "movsx832", "movsx1632", "mov32"};
  std::string src = "mov %r9, %r1\n";
  size_t k = 0;
  for (int64_t a : kOperands) {
    for (const char* op : ops) {
      src += fmt::format("lddw %r0, {:#x}\n{} %r0\nstxdw [%r9+{}], %r0\n", uint64_t(a), op, 8 * k++);
    }
    for (const char* op : movs) {
      src += fmt::format("lddw %r3, {:#x}\n{} %r0, %r3\nstxdw [%r9+{}], %r0\n", uint64_t(a), op, 8 * k++);
    }
  }
  src += "mov %r0, 0\nexit\n";
  same_on_every_engine(src, 8 * k, "unary");
}

// Every condition at both widths, by register and by immediate: r3 = taken.
TEST(OperandGrid, BranchesMatchInterpreter) {
  const char* conds[] = {"jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jsle", "jset"};
  for (const char* cc : conds) {
    for (const char* suffix : {"", "32"}) {
      std::string src = "mov %r9, %r1\n";
      size_t k = 0;
      for (int64_t a : kOperands) {
        for (int64_t b : kOperands) {
          src += fmt::format("lddw %r0, {:#x}\nlddw %r4, {:#x}\n", uint64_t(a), uint64_t(b));
          // The base advances: the grid outgrows a 16-bit offset.
          src += fmt::format("mov %r3, 1\n{}{} %r0, %r4, +1\nmov %r3, 0\nstxdw [%r9+0], %r3\nadd %r9, 8\n", cc, suffix);
          src += fmt::format("mov %r3, 1\n{}{} %r0, {}, +1\nmov %r3, 0\nstxdw [%r9+0], %r3\nadd %r9, 8\n", cc, suffix,
                             int32_t(b));
          k += 2;
        }
      }
      src += "mov %r0, 0\nexit\n";
      same_on_every_engine(src, 8 * k, fmt::format("{}{}", cc, suffix));
    }
  }
}

// Atomics of both sizes: the old value, the new memory and r0 after each;
// also with r0 as the source (cmpxchg then stores the comparand).
TEST(OperandGrid, AtomicsMatchInterpreter) {
  const char* ops[] = {"lock add", "lock fetch add", "lock or", "lock fetch or", "lock and", "lock fetch and",
                       "lock xor", "lock fetch xor", "lock xchg", "lock cmpxchg"};
  for (const char* op : ops) {
    for (const char* suffix : {"", "32"}) {
      for (const char* src_reg : {"%r4", "%r0"}) {
        std::string src = "mov %r9, %r1\n";
        size_t k = 0;
        for (int64_t a : kOperands) {
          for (int64_t b : {int64_t(5), int64_t(0xffffffff), int64_t(0x8000000000000007), a}) {
            // Memory starts at a; r0 (the cmpxchg comparand) is a or b.
            src += fmt::format("lddw %r2, {:#x}\nstxdw [%r9+{}], %r2\n", uint64_t(a), 8 * k);
            src += fmt::format("lddw %r0, {:#x}\nlddw %r4, {:#x}\n", uint64_t(b), uint64_t(b ^ 0x0101010101010101));
            src += fmt::format("{}{} [%r9+{}], {}\n", op, suffix, 8 * k, src_reg);
            src += fmt::format("stxdw [%r9+{}], %r4\nstxdw [%r9+{}], %r0\n", 8 * (k + 1), 8 * (k + 2));
            k += 3;
          }
        }
        src += "mov %r0, 0\nexit\n";
        same_on_every_engine(src, 8 * k, fmt::format("{}{} {}", op, suffix, src_reg));
      }
    }
  }
}

}  // namespace
}  // namespace sb::test
