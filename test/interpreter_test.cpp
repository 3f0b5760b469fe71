// Tests of the reference interpreter (runtime/exec/interpreter.cpp): one test per
// semantic corner of RFC 9669 / ../shared/DESIGN.md "Semantics worth
// knowing", with programs built from raw instruction words (no assembler),
// then the bpf_conformance corpus.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "frontend/bpf.h"
#include "frontend/conformance_file.h"
#include "ir/diag.h"
#include "runtime/helpers/helpers.h"
#include "runtime/exec/interpreter.h"

namespace {

namespace bpf = sb::bpf;
using bpf::Insn;
using sb::rt::HelperTable;

// --- encoders: one raw slot each (fields assigned, so they work whatever
// the layout of Insn's register fields) ---
Insn ins(int opcode, int dst = 0, int src = 0, int off = 0, int32_t imm = 0) {
  Insn i;
  i.opcode = uint8_t(opcode);
  i.dst = uint8_t(dst);
  i.src = uint8_t(src);
  i.off = int16_t(off);
  i.imm = imm;
  return i;
}
Insn alu64i(int op, int dst, int32_t imm, int off = 0) { return ins(int(bpf::ALU64) | int(bpf::K) | op, dst, 0, off, imm); }
Insn alu64r(int op, int dst, int src, int off = 0) { return ins(int(bpf::ALU64) | int(bpf::X) | op, dst, src, off); }
Insn alu32i(int op, int dst, int32_t imm, int off = 0) { return ins(int(bpf::ALU) | int(bpf::K) | op, dst, 0, off, imm); }
Insn alu32r(int op, int dst, int src, int off = 0) { return ins(int(bpf::ALU) | int(bpf::X) | op, dst, src, off); }
Insn mov(int dst, int32_t imm) { return alu64i(bpf::MOV, dst, imm); }
Insn movr(int dst, int src) { return alu64r(bpf::MOV, dst, src); }
// LDDW takes two slots: lddw_lo(...) then lddw_hi(...).
Insn lddw_lo(int dst, uint64_t v, int src = 0) { return ins(bpf::LDDW, dst, src, 0, int32_t(uint32_t(v))); }
Insn lddw_hi(uint64_t v) { return ins(0, 0, 0, 0, int32_t(uint32_t(v >> 32))); }
Insn jmpi(int op, int dst, int32_t imm, int off) { return ins(int(bpf::JMP) | int(bpf::K) | op, dst, 0, off, imm); }
Insn jmpr(int op, int dst, int src, int off) { return ins(int(bpf::JMP) | int(bpf::X) | op, dst, src, off); }
Insn jmp32i(int op, int dst, int32_t imm, int off) { return ins(int(bpf::JMP32) | int(bpf::K) | op, dst, 0, off, imm); }
Insn jmp32r(int op, int dst, int src, int off) { return ins(int(bpf::JMP32) | int(bpf::X) | op, dst, src, off); }
Insn ja(int off) { return ins(int(bpf::JMP) | bpf::JA, 0, 0, off); }
Insn gotol(int32_t imm) { return ins(int(bpf::JMP32) | bpf::JA, 0, 0, 0, imm); }
Insn ldx(int size, int dst, int src, int off) { return ins(int(bpf::LDX) | int(bpf::MEM) | size, dst, src, off); }
Insn ldxsx(int size, int dst, int src, int off) { return ins(int(bpf::LDX) | int(bpf::MEMSX) | size, dst, src, off); }
Insn st(int size, int dst, int off, int32_t imm) { return ins(int(bpf::ST) | int(bpf::MEM) | size, dst, 0, off, imm); }
Insn stx(int size, int dst, int src, int off) { return ins(int(bpf::STX) | int(bpf::MEM) | size, dst, src, off); }
Insn atomic(int size, int32_t op, int dst, int src, int off = 0) {
  return ins(int(bpf::STX) | int(bpf::ATOMIC) | size, dst, src, off, op);
}
Insn call(int32_t helper) { return ins(int(bpf::JMP) | bpf::CALL, 0, bpf::CALL_HELPER, 0, helper); }
Insn call_local(int32_t rel) { return ins(int(bpf::JMP) | bpf::CALL, 0, bpf::CALL_LOCAL, 0, rel); }
Insn callx(int reg) { return ins(int(bpf::JMP) | int(bpf::X) | bpf::CALL, reg); }
Insn exit_insn() { return ins(int(bpf::JMP) | bpf::EXIT); }

bpf::Program program(std::vector<Insn> code) { return bpf::Program{"t", std::move(code), {}}; }

uint64_t run(std::vector<Insn> code, void* mem = nullptr, size_t len = 0, uint64_t budget = 0,
             const HelperTable& helpers = HelperTable::conformance()) {
  sb::rt::InterpOptions opts;
  opts.insn_budget = budget;
  return sb::rt::interpret(program(std::move(code)), helpers, mem, len, opts);
}

// The full message ("t: instruction N: what") of the sb::Error a run throws.
std::string run_error(std::vector<Insn> code, void* mem = nullptr, size_t len = 0,
                      uint64_t budget = 0, const HelperTable& helpers = HelperTable::conformance()) {
  try {
    uint64_t r = run(std::move(code), mem, len, budget, helpers);
    return "<no error, r0 = " + std::to_string(r) + ">";
  } catch (const sb::Error& e) {
    return e.what();
  }
}

// r0 = a; r1 = b; `op` (dst r0, src r1 or imm); exit.
uint64_t binop(uint64_t a, Insn op, uint64_t b = 0) {
  return run({lddw_lo(0, a), lddw_hi(a), lddw_lo(1, b), lddw_hi(b), op, exit_insn()});
}

// r1 = a; r2 = b; r0 = `jump` (dst r1, src r2 or imm, off +1) taken ? 1 : 0.
bool taken(Insn jump, uint64_t a, uint64_t b = 0) {
  jump.off = 2;
  return run({lddw_lo(1, a), lddw_hi(a), lddw_lo(2, b), lddw_hi(b), jump, mov(0, 0), exit_insn(),
              mov(0, 1), exit_insn()}) == 1;
}

constexpr uint64_t kIntMin64 = 0x8000000000000000ull;

// --- ALU ---

TEST(Interpreter, DivModByZero64) {
  const uint64_t a = 0xffffffff00000005ull;
  EXPECT_EQ(binop(a, alu64r(bpf::DIV, 0, 1), 0), 0u);
  EXPECT_EQ(binop(a, alu64i(bpf::DIV, 0, 0)), 0u);
  EXPECT_EQ(binop(a, alu64r(bpf::MOD, 0, 1), 0), a);  // dst unchanged
  EXPECT_EQ(binop(a, alu64i(bpf::MOD, 0, 0)), a);
  EXPECT_EQ(binop(uint64_t(-7), alu64r(bpf::DIV, 0, 1, 1), 0), 0u);  // sdiv
  EXPECT_EQ(binop(uint64_t(-7), alu64r(bpf::MOD, 0, 1, 1), 0), uint64_t(-7));  // smod
  EXPECT_EQ(binop(uint64_t(-7), alu64i(bpf::MOD, 0, 0, 1)), uint64_t(-7));
}

TEST(Interpreter, DivModByZero32ZeroExtends) {
  const uint64_t a = 0xffffffff00000005ull;
  EXPECT_EQ(binop(a, alu32r(bpf::DIV, 0, 1), 0), 0u);
  EXPECT_EQ(binop(a, alu32i(bpf::DIV, 0, 0)), 0u);
  EXPECT_EQ(binop(a, alu32r(bpf::MOD, 0, 1), 0), 5u);  // low half, zero-extended
  EXPECT_EQ(binop(a, alu32i(bpf::MOD, 0, 0)), 5u);
  // Only the low 32 bits of the divisor count: 0x1_00000000 is zero.
  EXPECT_EQ(binop(a, alu32r(bpf::DIV, 0, 1), 0x100000000ull), 0u);
  EXPECT_EQ(binop(a, alu32r(bpf::MOD, 0, 1), 0x100000000ull), 5u);
  EXPECT_EQ(binop(uint64_t(-7), alu32r(bpf::DIV, 0, 1, 1), 0), 0u);
  EXPECT_EQ(binop(uint64_t(-7), alu32r(bpf::MOD, 0, 1, 1), 0), 0xfffffff9u);
}

TEST(Interpreter, SignedDivIntMinByMinusOne) {
  EXPECT_EQ(binop(kIntMin64, alu64r(bpf::DIV, 0, 1, 1), uint64_t(-1)), kIntMin64);
  EXPECT_EQ(binop(kIntMin64, alu64i(bpf::DIV, 0, -1, 1)), kIntMin64);
  EXPECT_EQ(binop(kIntMin64, alu64r(bpf::MOD, 0, 1, 1), uint64_t(-1)), 0u);
  EXPECT_EQ(binop(kIntMin64, alu64i(bpf::MOD, 0, -1, 1)), 0u);
  // 32-bit: upper halves of both operands are ignored, the result zero-extends.
  EXPECT_EQ(binop(0xffffffff80000000ull, alu32r(bpf::DIV, 0, 1, 1), 0x12345678ffffffffull), 0x80000000u);
  EXPECT_EQ(binop(0x80000000u, alu32i(bpf::DIV, 0, -1, 1)), 0x80000000u);
  EXPECT_EQ(binop(0x80000000u, alu32r(bpf::MOD, 0, 1, 1), 0xffffffffu), 0u);
  EXPECT_EQ(binop(0x80000000u, alu32i(bpf::MOD, 0, -1, 1)), 0u);
}

TEST(Interpreter, SignedDivModTruncateTowardZero) {
  EXPECT_EQ(binop(uint64_t(-7), alu64i(bpf::DIV, 0, 2, 1)), uint64_t(-3));
  EXPECT_EQ(binop(uint64_t(-7), alu64i(bpf::MOD, 0, 2, 1)), uint64_t(-1));
  EXPECT_EQ(binop(7, alu64i(bpf::MOD, 0, -2, 1)), 1u);
  EXPECT_EQ(binop(uint64_t(-7), alu32i(bpf::DIV, 0, 2, 1)), 0xfffffffdu);
  EXPECT_EQ(binop(uint64_t(-7), alu32i(bpf::MOD, 0, -2, 1)), 0xffffffffu);
  // Unsigned div of a negative number is not signed div.
  EXPECT_EQ(binop(uint64_t(-8), alu64i(bpf::DIV, 0, 2)), 0x7ffffffffffffffcull);
}

TEST(Interpreter, UnsignedDivModSignExtendImmediate) {
  // imm -1 is 0xffff_ffff_ffff_ffff as an unsigned 64-bit divisor.
  EXPECT_EQ(binop(~0ull, alu64i(bpf::DIV, 0, -1)), 1u);
  EXPECT_EQ(binop(10, alu64i(bpf::DIV, 0, -1)), 0u);
  EXPECT_EQ(binop(10, alu64i(bpf::MOD, 0, -1)), 10u);
  EXPECT_EQ(binop(0xffffffffu, alu64i(bpf::DIV, 0, -1)), 0u);  // not 0xffffffff / 0xffffffff
  EXPECT_EQ(binop(0xffffffffu, alu32i(bpf::DIV, 0, -1)), 1u);
  EXPECT_EQ(binop(~0ull, alu64i(bpf::MOD, 0, int32_t(0x80000000))), 0x7fffffffu);
}

TEST(Interpreter, Alu32ZeroExtendsAndIgnoresUpperHalves) {
  EXPECT_EQ(binop(0xffffffffffffffffull, alu32i(bpf::ADD, 0, 1)), 0u);
  EXPECT_EQ(binop(0x1234567800000002ull, alu32r(bpf::MUL, 0, 1), 0xabcdef0000000003ull), 6u);
  EXPECT_EQ(binop(0xffffffff00000000ull, alu32i(bpf::SUB, 0, 1)), 0xffffffffu);
  EXPECT_EQ(binop(0xffffffff0000000full, alu32r(bpf::OR, 0, 1), 0xf0), 0xffu);
  EXPECT_EQ(binop(0, alu64i(bpf::SUB, 0, 1)), ~0ull);
  EXPECT_EQ(binop(0xf0f0, alu64i(bpf::AND, 0, -1)), 0xf0f0u);  // imm sign-extended
  EXPECT_EQ(binop(0, alu64i(bpf::XOR, 0, int32_t(0x80000000))), 0xffffffff80000000ull);
  EXPECT_EQ(binop(0, alu32i(bpf::XOR, 0, int32_t(0x80000000))), 0x80000000u);
}

TEST(Interpreter, ShiftCountsAreMasked) {
  EXPECT_EQ(binop(3, alu64r(bpf::LSH, 0, 1), 65), 6u);
  EXPECT_EQ(binop(0x100, alu64r(bpf::RSH, 0, 1), 64 + 4), 0x10u);
  EXPECT_EQ(binop(kIntMin64, alu64r(bpf::ARSH, 0, 1), 0x7f), ~0ull);
  EXPECT_EQ(binop(1, alu64r(bpf::LSH, 0, 1), 0x100000001ull), 2u);
  EXPECT_EQ(binop(0x80000001u, alu32r(bpf::LSH, 0, 1), 33), 2u);
  EXPECT_EQ(binop(0xffffffff80000000ull, alu32r(bpf::RSH, 0, 1), 32), 0x80000000u);
  EXPECT_EQ(binop(0x80000000u, alu32r(bpf::ARSH, 0, 1), 36), 0xf8000000u);  // zero-extended
  EXPECT_EQ(binop(0xffffffffu, alu32r(bpf::RSH, 0, 1), uint64_t(-24)), 0x00ffffffu);
  // Immediate counts likewise.
  EXPECT_EQ(binop(1, alu64i(bpf::LSH, 0, -60)), 0x10u);
  EXPECT_EQ(binop(0x11, alu32i(bpf::LSH, 0, 60)), 0x10000000u);
  EXPECT_EQ(binop(0x80000000u, alu32i(bpf::ARSH, 0, 33)), 0xc0000000u);
  EXPECT_EQ(binop(0x8000000000000000ull, alu64i(bpf::ARSH, 0, 63 + 64)), ~0ull);
}

TEST(Interpreter, Neg) {
  EXPECT_EQ(binop(5, alu64i(bpf::NEG, 0, 0)), uint64_t(-5));
  EXPECT_EQ(binop(5, alu32i(bpf::NEG, 0, 0)), 0xfffffffbu);
  EXPECT_EQ(binop(0xffffffff80000000ull, alu32i(bpf::NEG, 0, 0)), 0x80000000u);
  EXPECT_EQ(binop(kIntMin64, alu64i(bpf::NEG, 0, 0)), kIntMin64);
}

TEST(Interpreter, MovAndMovsx) {
  EXPECT_EQ(binop(0, mov(0, -1)), ~0ull);
  EXPECT_EQ(binop(0, alu32i(bpf::MOV, 0, -1)), 0xffffffffu);
  EXPECT_EQ(binop(0, alu32r(bpf::MOV, 0, 1), 0xaaaaaaaabbbbbbbbull), 0xbbbbbbbbu);
  // ALU64 movsx 8/16/32.
  EXPECT_EQ(binop(0, alu64r(bpf::MOV, 0, 1, 8), 0x180), 0xffffffffffffff80ull);
  EXPECT_EQ(binop(0, alu64r(bpf::MOV, 0, 1, 8), 0x17f), 0x7fu);
  EXPECT_EQ(binop(0, alu64r(bpf::MOV, 0, 1, 16), 0x18000), 0xffffffffffff8000ull);
  EXPECT_EQ(binop(0, alu64r(bpf::MOV, 0, 1, 32), 0x180000000ull), 0xffffffff80000000ull);
  EXPECT_EQ(binop(0, alu64r(bpf::MOV, 0, 1, 32), 0x7fffffffull), 0x7fffffffu);
  // ALU movsx 8/16: sign-extends to 32 bits, then zero-extends.
  EXPECT_EQ(binop(~0ull, alu32r(bpf::MOV, 0, 1, 8), 0x0123456789abcdefull), 0xffffffefu);
  EXPECT_EQ(binop(~0ull, alu32r(bpf::MOV, 0, 1, 16), 0x8000), 0xffff8000u);
  EXPECT_EQ(binop(~0ull, alu32r(bpf::MOV, 0, 1, 8), 0x7f), 0x7fu);
}

TEST(Interpreter, ByteSwaps) {
  const uint64_t v = 0x1122334455667788ull;
  const int le = int(bpf::ALU) | int(bpf::END) | bpf::TO_LE, be = int(bpf::ALU) | int(bpf::END) | bpf::TO_BE;
  const int bswap = int(bpf::ALU64) | int(bpf::END) | bpf::TO_LE;
  EXPECT_EQ(binop(v, ins(le, 0, 0, 0, 16)), 0x7788u);
  EXPECT_EQ(binop(v, ins(le, 0, 0, 0, 32)), 0x55667788u);
  EXPECT_EQ(binop(v, ins(le, 0, 0, 0, 64)), v);
  EXPECT_EQ(binop(v, ins(be, 0, 0, 0, 16)), 0x8877u);
  EXPECT_EQ(binop(v, ins(be, 0, 0, 0, 32)), 0x88776655u);
  EXPECT_EQ(binop(v, ins(be, 0, 0, 0, 64)), 0x8877665544332211ull);
  EXPECT_EQ(binop(v, ins(bswap, 0, 0, 0, 16)), 0x8877u);
  EXPECT_EQ(binop(v, ins(bswap, 0, 0, 0, 32)), 0x88776655u);
  EXPECT_EQ(binop(v, ins(bswap, 0, 0, 0, 64)), 0x8877665544332211ull);
  EXPECT_NE(run_error({mov(0, 1), ins(be, 0, 0, 0, 8), exit_insn()}).find("t: instruction 1: invalid byte swap width 8"),
            std::string::npos);
}

// --- memory ---

TEST(Interpreter, LoadsZeroOrSignExtend) {
  uint8_t mem[16] = {0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88};
  auto load = [&](Insn in) { return run({in, exit_insn()}, mem, sizeof mem); };
  EXPECT_EQ(load(ldx(bpf::B, 0, 1, 0)), 0x81u);
  EXPECT_EQ(load(ldx(bpf::H, 0, 1, 0)), 0x8281u);
  EXPECT_EQ(load(ldx(bpf::W, 0, 1, 0)), 0x84838281u);
  EXPECT_EQ(load(ldx(bpf::DW, 0, 1, 0)), 0x8887868584838281ull);
  EXPECT_EQ(load(ldx(bpf::H, 0, 1, 3)), 0x8584u);  // unaligned
  EXPECT_EQ(load(ldxsx(bpf::B, 0, 1, 0)), 0xffffffffffffff81ull);
  EXPECT_EQ(load(ldxsx(bpf::H, 0, 1, 0)), 0xffffffffffff8281ull);
  EXPECT_EQ(load(ldxsx(bpf::W, 0, 1, 0)), 0xffffffff84838281ull);
  EXPECT_EQ(load(ldxsx(bpf::B, 0, 1, 8)), 0u);
  // Negative offset from a register.
  EXPECT_EQ(run({alu64i(bpf::ADD, 1, 8), ldx(bpf::B, 0, 1, -7), exit_insn()}, mem, sizeof mem), 0x82u);
}

TEST(Interpreter, StoresOfEachSize) {
  uint8_t mem[16];
  auto store = [&](std::vector<Insn> code) {
    std::memset(mem, 0xee, sizeof mem);
    code.push_back(exit_insn());
    run(code, mem, sizeof mem);
    uint64_t lo;
    std::memcpy(&lo, mem, 8);
    EXPECT_EQ(mem[8], 0xee);
    return lo;
  };
  EXPECT_EQ(store({st(bpf::B, 1, 0, -2)}), 0xeeeeeeeeeeeeeefeull);
  EXPECT_EQ(store({st(bpf::H, 1, 0, -2)}), 0xeeeeeeeeeeeefffeull);
  EXPECT_EQ(store({st(bpf::W, 1, 0, -2)}), 0xeeeeeeeefffffffeull);
  EXPECT_EQ(store({st(bpf::DW, 1, 0, -2)}), 0xfffffffffffffffeull);  // imm sign-extended
  EXPECT_EQ(store({st(bpf::DW, 1, 0, 0x7fffffff)}), 0x7fffffffull);
  const uint64_t v = 0x1122334455667788ull;
  EXPECT_EQ(store({lddw_lo(2, v), lddw_hi(v), stx(bpf::B, 1, 2, 0)}), 0xeeeeeeeeeeeeee88ull);
  EXPECT_EQ(store({lddw_lo(2, v), lddw_hi(v), stx(bpf::H, 1, 2, 0)}), 0xeeeeeeeeeeee7788ull);
  EXPECT_EQ(store({lddw_lo(2, v), lddw_hi(v), stx(bpf::W, 1, 2, 0)}), 0xeeeeeeee55667788ull);
  EXPECT_EQ(store({lddw_lo(2, v), lddw_hi(v), stx(bpf::DW, 1, 2, 0)}), v);
}

TEST(Interpreter, StackAndEntryRegisters) {
  // r10 is the top of a 512-byte stack; both ends are usable.
  EXPECT_EQ(run({st(bpf::DW, 10, -8, 42), st(bpf::B, 10, -512, 7), ldx(bpf::DW, 0, 10, -8),
                 ldx(bpf::B, 2, 10, -512), alu64r(bpf::ADD, 0, 2), exit_insn()}),
            49u);
  uint8_t mem[8] = {};
  EXPECT_EQ(run({movr(0, 2), exit_insn()}, mem, sizeof mem), 8u);
  EXPECT_EQ(run({movr(0, 1), exit_insn()}, mem, sizeof mem), uint64_t(uintptr_t(mem)));
  EXPECT_EQ(run({movr(0, 1), exit_insn()}), 0u);
  EXPECT_EQ(run({mov(0, 7), exit_insn()}), 7u);
  const uint64_t v = 0x1122334455667788ull;
  EXPECT_EQ(run({lddw_lo(0, v), lddw_hi(v), exit_insn()}), v);
}

// --- atomics ---

// mem[0..8) = init; r0 = r0_in; r2 = src; `op` [r1+0], r2; then
// mem[8] = r2 and mem[16] = r0. Returns {memory word, r2, r0}.
struct AtomicOut {
  uint64_t mem, src, r0;
};
AtomicOut run_atomic(int size, int32_t op, uint64_t init, uint64_t src, uint64_t r0_in = 0) {
  uint64_t mem[3] = {init, 0, 0};
  run({lddw_lo(2, src), lddw_hi(src), lddw_lo(0, r0_in), lddw_hi(r0_in), atomic(size, op, 1, 2),
       stx(bpf::DW, 1, 2, 8), stx(bpf::DW, 1, 0, 16), exit_insn()},
      mem, sizeof mem);
  return {mem[0], mem[1], mem[2]};
}

TEST(Interpreter, AtomicArithmetic64) {
  struct Case { int32_t op; uint64_t expect; } cases[] = {
      {bpf::ATOMIC_ADD, 22}, {bpf::ATOMIC_OR, 14}, {bpf::ATOMIC_AND, 8}, {bpf::ATOMIC_XOR, 6}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.op);
    AtomicOut plain = run_atomic(bpf::DW, c.op, 12, 10);
    EXPECT_EQ(plain.mem, c.expect);
    EXPECT_EQ(plain.src, 10u);  // no FETCH: src unchanged
    AtomicOut fetch = run_atomic(bpf::DW, c.op | bpf::FETCH, 12, 10);
    EXPECT_EQ(fetch.mem, c.expect);
    EXPECT_EQ(fetch.src, 12u);  // FETCH: old value
  }
  EXPECT_EQ(run_atomic(bpf::DW, bpf::ATOMIC_ADD, 0xffffffffull, 1).mem, 0x100000000ull);
}

TEST(Interpreter, AtomicArithmetic32TouchesLowWordAndZeroExtends) {
  struct Case { int32_t op; uint64_t expect; } cases[] = {
      {bpf::ATOMIC_ADD, 22}, {bpf::ATOMIC_OR, 14}, {bpf::ATOMIC_AND, 8}, {bpf::ATOMIC_XOR, 6}};
  const uint64_t init = 0xaaaaaaaa0000000cull, src = 0xffffffff0000000aull;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.op);
    AtomicOut plain = run_atomic(bpf::W, c.op, init, src);
    EXPECT_EQ(plain.mem, 0xaaaaaaaa00000000ull | c.expect);
    EXPECT_EQ(plain.src, src);
    AtomicOut fetch = run_atomic(bpf::W, c.op | bpf::FETCH, init, src);
    EXPECT_EQ(fetch.mem, 0xaaaaaaaa00000000ull | c.expect);
    EXPECT_EQ(fetch.src, 12u);  // old low word, zero-extended
  }
  EXPECT_EQ(run_atomic(bpf::W, bpf::ATOMIC_ADD, 0x00000001ffffffffull, 1).mem, 0x0000000100000000ull);
}

TEST(Interpreter, AtomicXchg) {
  AtomicOut r = run_atomic(bpf::DW, bpf::ATOMIC_XCHG, 0x1122334455667788ull, 7);
  EXPECT_EQ(r.mem, 7u);
  EXPECT_EQ(r.src, 0x1122334455667788ull);
  r = run_atomic(bpf::W, bpf::ATOMIC_XCHG, 0x1122334455667788ull, 0xffffffff00000007ull);
  EXPECT_EQ(r.mem, 0x1122334400000007ull);
  EXPECT_EQ(r.src, 0x55667788u);
}

TEST(Interpreter, AtomicCmpxchg64) {
  AtomicOut hit = run_atomic(bpf::DW, bpf::ATOMIC_CMPXCHG, 5, 9, /*r0=*/5);
  EXPECT_EQ(hit.mem, 9u);
  EXPECT_EQ(hit.r0, 5u);
  EXPECT_EQ(hit.src, 9u);
  AtomicOut miss = run_atomic(bpf::DW, bpf::ATOMIC_CMPXCHG, 5, 9, /*r0=*/0x100000005ull);
  EXPECT_EQ(miss.mem, 5u);
  EXPECT_EQ(miss.r0, 5u);
}

TEST(Interpreter, AtomicCmpxchg32ComparesLowHalfAndZeroExtends) {
  const uint64_t init = 0x1234567800000005ull;
  // r0's upper half is ignored by the comparison.
  AtomicOut hit = run_atomic(bpf::W, bpf::ATOMIC_CMPXCHG, init, 0xffffffff00000009ull, 0xaaaaaaaa00000005ull);
  EXPECT_EQ(hit.mem, 0x1234567800000009ull);
  EXPECT_EQ(hit.r0, 5u);
  AtomicOut miss = run_atomic(bpf::W, bpf::ATOMIC_CMPXCHG, init, 9, 0xaaaaaaaa00000004ull);
  EXPECT_EQ(miss.mem, init);
  EXPECT_EQ(miss.r0, 5u);
  // The old value is zero-extended even when its top bit is set.
  AtomicOut neg = run_atomic(bpf::W, bpf::ATOMIC_CMPXCHG, 0x9abcdef0u, 1, 0);
  EXPECT_EQ(neg.r0, 0x9abcdef0u);
}

TEST(Interpreter, AtomicsAreAtomicAcrossThreads) {
  uint64_t counter = 0;
  const std::vector<Insn> code = {mov(0, 0), mov(2, 1), atomic(bpf::DW, bpf::ATOMIC_ADD, 1, 2),
                                  alu64i(bpf::ADD, 0, 1), jmpi(bpf::JLT, 0, 10000, -3), exit_insn()};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&] { run(code, &counter, 8); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 40000u);
}

// --- jumps ---

TEST(Interpreter, AllConditionsBothWidths) {
  struct Case { int op; uint64_t a, b; bool t64, t32; } cases[] = {
      {bpf::JEQ, 1, 1, true, true},         {bpf::JEQ, 1, 2, false, false},
      {bpf::JNE, 1, 2, true, true},         {bpf::JNE, 3, 3, false, false},
      {bpf::JGT, 2, 1, true, true},         {bpf::JGT, 1, 1, false, false},
      {bpf::JGE, 1, 1, true, true},         {bpf::JGE, 0, 1, false, false},
      {bpf::JLT, 1, 2, true, true},         {bpf::JLT, 2, 2, false, false},
      {bpf::JLE, 2, 2, true, true},         {bpf::JLE, 3, 2, false, false},
      {bpf::JSET, 6, 3, true, true},        {bpf::JSET, 4, 3, false, false},
      {bpf::JSGT, 1, ~0ull, true, true},    {bpf::JSGT, ~0ull, 1, false, false},
      {bpf::JSGE, ~0ull, ~0ull, true, true}, {bpf::JSGE, ~1ull, ~0ull, false, false},
      {bpf::JSLT, ~0ull, 1, true, true},    {bpf::JSLT, 1, ~0ull, false, false},
      {bpf::JSLE, ~0ull, ~0ull, true, true}, {bpf::JSLE, 0, ~0ull, false, false},
      // Unsigned vs signed on the same bits.
      {bpf::JGT, ~0ull, 1, true, true},     {bpf::JSGT, ~0ull, 1, false, false},
      // Only the low halves matter for JMP32.
      {bpf::JEQ, 0x100000000ull, 0, false, true},
      {bpf::JGT, 2, 0xffffffff00000001ull, false, true},
      {bpf::JSLT, 0xffffffffull, 0, false, true},
      {bpf::JSET, 0x100000000ull, 0x100000000ull, true, false},
      {bpf::JNE, 0xaaaaaaaa00000007ull, 0xbbbbbbbb00000007ull, true, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "op " << c.op << " a " << c.a << " b " << c.b);
    EXPECT_EQ(taken(jmpr(c.op, 1, 2, 0), c.a, c.b), c.t64);
    EXPECT_EQ(taken(jmp32r(c.op, 1, 2, 0), c.a, c.b), c.t32);
  }
}

TEST(Interpreter, CompareImmediatesAreSignExtended) {
  EXPECT_TRUE(taken(jmpi(bpf::JEQ, 1, -1, 0), ~0ull));
  EXPECT_FALSE(taken(jmpi(bpf::JEQ, 1, -1, 0), 0xffffffffull));
  EXPECT_TRUE(taken(jmp32i(bpf::JEQ, 1, -1, 0), 0xffffffffull));
  EXPECT_TRUE(taken(jmpi(bpf::JLT, 1, -1, 0), 5));   // 5 < 0xffff_ffff_ffff_ffff
  EXPECT_FALSE(taken(jmpi(bpf::JSLT, 1, -1, 0), 5));  // 5 > -1
  EXPECT_FALSE(taken(jmpi(bpf::JGT, 1, -1, 0), 5));
  EXPECT_TRUE(taken(jmpi(bpf::JSGT, 1, -1, 0), 5));
  EXPECT_TRUE(taken(jmpi(bpf::JGE, 1, int32_t(0x80000000), 0), 0xffffffff80000000ull));
  EXPECT_FALSE(taken(jmpi(bpf::JGE, 1, int32_t(0x80000000), 0), 0xffffffffull));
  EXPECT_TRUE(taken(jmpi(bpf::JSET, 1, int32_t(0x80000000), 0), 0x100000000ull));
  EXPECT_FALSE(taken(jmp32i(bpf::JSET, 1, int32_t(0x80000000), 0), 0x100000000ull));
  EXPECT_TRUE(taken(jmp32i(bpf::JSGT, 1, -2, 0), 0xffffffffull));  // -1 > -2
  EXPECT_TRUE(taken(jmp32i(bpf::JGT, 1, -2, 0), 0xffffffffull));  // unsigned 32-bit
}

TEST(Interpreter, JaAndGotol) {
  EXPECT_EQ(run({mov(0, 1), ja(1), mov(0, 2), exit_insn()}), 1u);
  // JMP|JA uses off and ignores imm; JMP32|JA (gotol) uses imm.
  EXPECT_EQ(run({mov(0, 1), ins(int(bpf::JMP) | bpf::JA, 0, 0, 1, 5), mov(0, 2), exit_insn()}), 1u);
  EXPECT_EQ(run({mov(0, 1), gotol(1), mov(0, 2), exit_insn()}), 1u);
  EXPECT_EQ(run({mov(0, 1), ins(int(bpf::JMP32) | bpf::JA, 0, 0, 5, 1), mov(0, 2), exit_insn()}), 1u);
  // Backwards: ja32.data.
  EXPECT_EQ(run({mov(1, 0), gotol(2), mov(2, 0), exit_insn(), mov(0, 0), gotol(-4)}), 0u);
  // A loop: r0 counts to 5.
  EXPECT_EQ(run({mov(0, 0), alu64i(bpf::ADD, 0, 1), jmpi(bpf::JNE, 0, 5, -2), exit_insn()}), 5u);
}

// --- calls ---

TEST(Interpreter, LocalCallPreservesR6ToR9AndGetsAFreshFrame) {
  uint64_t out[8] = {};
  std::vector<Insn> code = {
      movr(6, 1),  // r6 = out
      mov(7, 7), mov(8, 8), mov(9, 9), st(bpf::DW, 10, -8, 111), stx(bpf::DW, 6, 10, 40),
      mov(2, 2),
      call_local(0),  // patched below
      stx(bpf::DW, 6, 7, 0), stx(bpf::DW, 6, 8, 8), stx(bpf::DW, 6, 9, 16),
      ldx(bpf::DW, 2, 10, -8), stx(bpf::DW, 6, 2, 24),
      stx(bpf::DW, 6, 0, 32),   // callee's r10
      stx(bpf::DW, 6, 10, 48),  // caller's r10 after the call
      exit_insn(),
  };
  const size_t call_at = 7, func = code.size();
  code[call_at].imm = int32_t(func - call_at - 1);
  for (Insn i : {st(bpf::DW, 10, -8, 222), mov(6, 0), mov(7, 0), mov(8, 0), mov(9, 0),
                 ldx(bpf::DW, 0, 10, -8), stx(bpf::DW, 1, 0, 56),  // callee sees r1 = out
                 movr(0, 10), exit_insn()})
    code.push_back(i);
  run(code, out, sizeof out);
  EXPECT_EQ(out[0], 7u);
  EXPECT_EQ(out[1], 8u);
  EXPECT_EQ(out[2], 9u);
  EXPECT_EQ(out[3], 111u);  // the callee's store went to its own frame
  EXPECT_EQ(out[7], 222u);
  EXPECT_EQ(out[6], out[5]);  // r10 restored
  EXPECT_GE(out[5] - out[4], uint64_t(bpf::kStackSize));  // callee frame lies below
}

TEST(Interpreter, LocalCallArgumentsAndResult) {
  // rfc9669_call_local: r0 = r1 + ... + r5 in the callee.
  std::vector<Insn> code = {mov(1, 1), mov(2, 2), mov(3, 3), mov(4, 4), mov(5, 5), call_local(1),
                            exit_insn(), mov(0, 0)};
  for (int r = 1; r <= 5; ++r) code.push_back(alu64r(bpf::ADD, 0, r));
  code.push_back(exit_insn());
  EXPECT_EQ(run(code), 15u);
}

// f(r1): r1 == 0 ? 42 : f(r1 - 1), entered with r1 = n: n + 1 nested calls.
std::vector<Insn> recursion(int32_t n) {
  return {mov(1, n), call_local(1), exit_insn(),
          jmpi(bpf::JEQ, 1, 0, 3), alu64i(bpf::SUB, 1, 1), call_local(-3), exit_insn(),
          mov(0, 42), exit_insn()};
}

TEST(Interpreter, CallDepthLimit) {
  // 8 frames in all: the entry frame and 7 nested calls.
  EXPECT_EQ(run(recursion(bpf::kMaxCallDepth - 2)), 42u);
  EXPECT_EQ(run_error(recursion(bpf::kMaxCallDepth - 1)), "t: instruction 5: call depth exceeded");
}

uint64_t sum5(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) { return a + b + c + d + e; }

TEST(Interpreter, HelperCallsAndUnwind) {
  // call_unwind_fail: a non-zero argument is returned, the program goes on.
  EXPECT_EQ(run({mov(1, -1), call(5), mov(0, 2), exit_insn()}), 2u);
  EXPECT_EQ(run({mov(1, 7), call(5), exit_insn()}), 7u);
  // A zero argument ends the whole program with r0 = 0, even from a local call.
  EXPECT_EQ(run({mov(1, 0), call(5), mov(0, 2), exit_insn()}), 0u);
  EXPECT_EQ(run({mov(0, 9), call_local(2), mov(0, 3), exit_insn(), mov(1, 0), call(5), mov(0, 4), exit_insn()}),
            0u);
  EXPECT_EQ(run_error({call(99), exit_insn()}), "t: instruction 0: unknown helper 99");

  HelperTable t = HelperTable::conformance();
  t.add(1, "sum5", sum5);
  EXPECT_EQ(run({mov(1, 1), mov(2, 20), mov(3, 300), mov(4, 4000), mov(5, 50000), call(1), exit_insn()}, nullptr, 0,
                0, t),
            54321u);
}

TEST(Interpreter, Callx) {
  // callx.data: the helper id is in the dst register.
  EXPECT_EQ(run({mov(1, -1), mov(2, 5), callx(2), mov(0, 2), exit_insn()}), 2u);
  EXPECT_EQ(run({mov(1, 0), mov(2, 5), callx(2), mov(0, 2), exit_insn()}), 0u);
  HelperTable t;
  t.add(77, "sum5", sum5);
  EXPECT_EQ(run({mov(1, 1), mov(2, 2), mov(3, 3), mov(4, 4), mov(5, 5), mov(6, 77), callx(6), exit_insn()}, nullptr,
                0, 0, t),
            15u);
  EXPECT_EQ(run_error({mov(3, 6), callx(3), exit_insn()}), "t: instruction 1: unknown helper 6");
  EXPECT_EQ(run_error({mov(3, -1), callx(3), exit_insn()}), "t: instruction 1: unknown helper 18446744073709551615");
}

TEST(Interpreter, HelperTableKeepsIdsSortedAndReplaces) {
  HelperTable t;
  t.add(9, "nine", sum5);
  t.add(2, "two", sum5);
  t.add(5, "five", sum5, true);
  t.add(2, "two again", sum5);
  ASSERT_EQ(t.all().size(), 3u);
  EXPECT_EQ(t.all()[0].id, 2u);
  EXPECT_EQ(t.all()[0].name, "two again");
  EXPECT_EQ(t.all()[1].id, 5u);
  EXPECT_EQ(t.all()[2].id, 9u);
  EXPECT_EQ(t.find(3), nullptr);
  ASSERT_NE(t.find(5), nullptr);
  EXPECT_TRUE(t.find(5)->unwind_on_zero);
  HelperTable c = HelperTable::conformance();
  ASSERT_NE(c.find(5), nullptr);
  EXPECT_EQ(c.find(5)->name, "unwind");
  EXPECT_TRUE(c.find(5)->unwind_on_zero);
  EXPECT_EQ(c.find(5)->fn(123, 0, 0, 0, 0), 123u);
}

// --- budget and faults ---

TEST(Interpreter, InstructionBudget) {
  EXPECT_EQ(run_error({ja(-1)}, nullptr, 0, 1000), "t: instruction 0: instruction budget of 1000 exhausted");
  const std::vector<Insn> three = {mov(0, 1), alu64i(bpf::ADD, 0, 1), exit_insn()};
  EXPECT_EQ(run(three, nullptr, 0, 3), 2u);
  EXPECT_EQ(run_error(three, nullptr, 0, 2), "t: instruction 2: instruction budget of 2 exhausted");
  EXPECT_EQ(run(three), 2u);  // 0: unlimited
}

TEST(Interpreter, FaultsAreErrorsNotCrashes) {
  EXPECT_EQ(run_error({mov(0, 0), ins(0xff), exit_insn()}), "t: instruction 1: unknown opcode 0xff");
  EXPECT_EQ(run_error({ins(int(bpf::ALU64) | 0xe0), exit_insn()}), "t: instruction 0: unknown opcode 0xe7");
  EXPECT_EQ(run_error({ins(int(bpf::JMP32) | bpf::EXIT)}), "t: instruction 0: unknown opcode 0x96");
  EXPECT_EQ(run_error({ins(int(bpf::JMP) | 0xe0, 0, 0, 0)}), "t: instruction 0: unknown opcode 0xe5");
  EXPECT_EQ(run_error({ins(int(bpf::LD) | int(bpf::ABS) | bpf::W), exit_insn()}), "t: instruction 0: unknown opcode 0x20");
  EXPECT_EQ(run_error({lddw_lo(0, 0, 1), lddw_hi(0), exit_insn()}), "t: instruction 0: unsupported lddw source 1");
  EXPECT_EQ(run_error({mov(0, 0), lddw_lo(0, 0)}), "t: instruction 1: lddw is missing its second slot");
  EXPECT_EQ(run_error({mov(0, 0)}), "t: instruction 0: execution ran past the last instruction");
  EXPECT_EQ(run_error({}), "t: instruction 0: empty program");
  EXPECT_EQ(run_error({ja(5), exit_insn()}), "t: instruction 0: jump target 6 out of range");
  EXPECT_EQ(run_error({ja(-2), exit_insn()}), "t: instruction 0: jump target -1 out of range");
  EXPECT_EQ(run_error({call_local(5), exit_insn()}), "t: instruction 0: call target 6 out of range");
  EXPECT_EQ(run_error({mov(10, 0), exit_insn()}), "t: instruction 0: r10 is read-only");
  EXPECT_EQ(run_error({mov(11, 0), exit_insn()}), "t: instruction 0: invalid register r11");
  EXPECT_EQ(run_error({movr(0, 12), exit_insn()}), "t: instruction 0: invalid register r12");
  EXPECT_EQ(run_error({alu64i(bpf::DIV, 0, 1, 2), exit_insn()}), "t: instruction 0: invalid offset 2 for div/mod");
  EXPECT_EQ(run_error({alu64r(bpf::MOV, 0, 1, 4), exit_insn()}), "t: instruction 0: invalid offset 4 for mov");
  EXPECT_EQ(run_error({atomic(bpf::DW, 0x10, 10, 1, -8), exit_insn()}),
            "t: instruction 0: invalid atomic operation 0x10");
  EXPECT_EQ(run_error({atomic(bpf::DW, 0xe0, 10, 1, -8), exit_insn()}),  // xchg without FETCH
            "t: instruction 0: invalid atomic operation 0xe0");
  EXPECT_EQ(run_error({atomic(bpf::B, bpf::ATOMIC_ADD, 10, 1, -8), exit_insn()}),
            "t: instruction 0: unknown opcode 0xd3");
  EXPECT_EQ(run_error({ins(int(bpf::JMP) | bpf::CALL, 0, bpf::CALL_HELPER_BTF, 0, 1), exit_insn()}),
            "t: instruction 0: unsupported call source 2");
}

// --- the bpf_conformance corpus ---

std::vector<std::filesystem::path> conformance_files() {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(SB_CONFORMANCE_DIR, ec))
    if (e.path().extension() == ".data") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Every .data file through frontend/conformance_file.h (which assembles the
// `-- asm` section, or decodes `-- raw`) and the interpreter.
TEST(InterpreterConformance, Corpus) {
  const auto files = conformance_files();
  if (files.empty()) GTEST_SKIP() << "no .data files in " << SB_CONFORMANCE_DIR;
  const HelperTable helpers = HelperTable::conformance();
  int passed = 0, skipped = 0;
  for (const auto& path : files) {
    SCOPED_TRACE(path.filename().string());
    bpf::ConformanceTest t;
    try {
      t = bpf::read_conformance_file(path.string());
    } catch (const sb::Error& e) {
      ADD_FAILURE() << "parse: " << e.what();
      continue;
    }
    if (t.skipped) {
      ++skipped;
      continue;
    }
    std::vector<uint8_t> mem = t.memory;
    void* mem_ptr = t.has_memory ? mem.data() : nullptr;
    try {
      sb::rt::InterpOptions opts;
      opts.insn_budget = 10'000'000;  // no corpus program comes close
      const uint64_t r0 = sb::rt::interpret(t.program, helpers, mem_ptr, mem.size(), opts);
      if (t.error) {
        ADD_FAILURE() << "expected error \"" << *t.error << "\", got r0 = 0x" << std::hex << r0;
      } else if (!t.result) {
        ADD_FAILURE() << "no -- result section";
      } else if (r0 != *t.result) {
        ADD_FAILURE() << "r0 = 0x" << std::hex << r0 << ", expected 0x" << *t.result;
      } else {
        ++passed;
      }
    } catch (const sb::Error& e) {
      if (t.error && e.message() == *t.error)
        ++passed;
      else
        ADD_FAILURE() << "error: " << e.what();
    }
  }
  std::cout << "[ corpus   ] " << passed << " of " << files.size() << " passed, " << skipped
            << " skipped\n";
  EXPECT_EQ(passed + skipped, int(files.size()));
}

}  // namespace

// InterpOptions::check_uninit: a read of a register nothing wrote faults,
// with the verifier's rules for what a call leaves (fuzz_verifier's check).
TEST(Interpreter, CheckUninitFaultsOnUnwrittenRegisters) {
  auto error = [](std::vector<Insn> code) -> std::string {
    sb::rt::InterpOptions opts;
    opts.check_uninit = true;
    try {
      return "r0 = " + std::to_string(sb::rt::interpret(program(std::move(code)), HelperTable::conformance(), nullptr, 0, opts));
    } catch (const sb::Error& e) {
      return e.what();
    }
  };
  EXPECT_EQ(error({movr(0, 3), exit_insn()}), "t: instruction 0: R3 read before it was written");
  EXPECT_EQ(error({exit_insn()}), "t: instruction 0: R0 read before it was written");
  EXPECT_EQ(error({movr(0, 2), exit_insn()}), "r0 = 0");  // r1, r2 and r10 are set at the entry
  // A helper call clobbers r1-r5 and sets r0.
  EXPECT_EQ(error({mov(1, 3), call(5), movr(0, 1), exit_insn()}), "t: instruction 2: R1 read before it was written");
  EXPECT_EQ(error({mov(1, 3), call(5), exit_insn()}), "r0 = 3");
  // A callee has r1-r5 and r10; its caller gets r6-r9 back and the callee's r0.
  EXPECT_EQ(error({mov(6, 1), call_local(1), exit_insn(), movr(0, 6), exit_insn()}),
            "t: instruction 3: R6 read before it was written");
  EXPECT_EQ(error({mov(6, 1), mov(1, 2), call_local(2), alu64r(bpf::ADD, 0, 6), exit_insn(), movr(0, 1), exit_insn()}),
            "r0 = 3");
  // Off by default.
  EXPECT_EQ(run({movr(0, 3), exit_insn()}), 0u);
}
