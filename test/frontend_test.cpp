// Frontend tests: decoder, validator (one test per fault), disassembler,
// assembler (round trips and errors) and the conformance file parser, plus
// the whole bpf_conformance corpus through all of them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "frontend/assembler.h"
#include "frontend/conformance_file.h"
#include "frontend/decoder.h"
#include "frontend/disassembler.h"
#include "frontend/mnemonics.h"
#include "frontend/validator.h"
#include "ir/diag.h"

namespace sb::bpf {
namespace {

namespace fs = std::filesystem;

Insn I(uint8_t opcode, uint8_t dst = 0, uint8_t src = 0, int16_t off = 0, int32_t imm = 0) {
  Insn insn;
  insn.opcode = opcode;
  insn.dst = dst & 0xf;
  insn.src = src & 0xf;
  insn.off = off;
  insn.imm = imm;
  return insn;
}

constexpr uint8_t kExit = 0x95;

Program raw(std::vector<Insn> insns) { return Program{"t.bin", std::move(insns)}; }
Program assembled(std::string_view source) { return assemble(source, "t.bin"); }

// `f()` throws sb::Error with exactly this `where` and `message`.
template <typename F>
testing::AssertionResult Throws(F f, std::string_view where, std::string_view message) {
  try {
    f();
  } catch (const Error& e) {
    if (e.where() == where && e.message() == message) return testing::AssertionSuccess();
    return testing::AssertionFailure() << "got \"" << e.what() << "\", want \"" << where << ": " << message << "\"";
  }
  return testing::AssertionFailure() << "no error, want \"" << where << ": " << message << "\"";
}

// validate() throws at instruction `index` with exactly `message`.
testing::AssertionResult Rejects(const Program& p, size_t index, std::string_view message,
                                 const ValidateOptions& opts = {}) {
  return Throws([&] { validate(p, opts); }, insn_location(p.name, index), message);
}

testing::AssertionResult Accepts(const Program& p, const ValidateOptions& opts = {}) {
  try {
    validate(p, opts);
  } catch (const Error& e) {
    return testing::AssertionFailure() << e.what() << "\n" << disassemble(p);
  }
  return testing::AssertionSuccess();
}

// assemble() throws at "t.s: line N" with exactly `message`.
testing::AssertionResult AsmRejects(std::string_view source, size_t line, std::string_view message) {
  return Throws([&] { assemble(source, "t.s"); }, "t.s: line " + std::to_string(line), message);
}

std::vector<fs::path> corpus_files() {
  std::vector<fs::path> files;
  if (!fs::is_directory(SB_CONFORMANCE_DIR)) return files;
  for (const auto& entry : fs::directory_iterator(SB_CONFORMANCE_DIR))
    if (entry.path().extension() == ".data") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

#define SKIP_WITHOUT_CORPUS()                                                         \
  if (!fs::is_directory(SB_CONFORMANCE_DIR))                                          \
  GTEST_SKIP() << "conformance corpus not found at " SB_CONFORMANCE_DIR

// ---------------------------------------------------------------- decoder

TEST(Decoder, FieldLayoutIsLittleEndianWithDstInLowNibble) {
  const uint8_t bytes[] = {0xb7, 0x21, 0x34, 0x12, 0x78, 0x56, 0x34, 0x12};
  Program p = decode(bytes, "x.bin");
  ASSERT_EQ(p.insns.size(), 1u);
  EXPECT_EQ(p.name, "x.bin");
  EXPECT_EQ(p.insns[0], I(0xb7, 1, 2, 0x1234, 0x12345678));
  EXPECT_EQ(encode(p), std::vector<uint8_t>(std::begin(bytes), std::end(bytes)));
  EXPECT_EQ(to_word(p.insns[0]), 0x12345678123421b7u);
  EXPECT_EQ(from_word(0x12345678123421b7u), p.insns[0]);
}

TEST(Decoder, NegativeFieldsRoundTrip) {
  Program p = raw({I(0x07, 1, 0, -2, -3), I(kExit)});
  std::vector<uint8_t> bytes = encode(p);
  ASSERT_EQ(bytes.size(), 16u);
  EXPECT_EQ(decode(bytes, "t.bin").insns, p.insns);
}

TEST(Decoder, RejectsEmptyProgram) {
  EXPECT_TRUE(Throws([] { decode({}, "empty.bin"); }, "empty.bin", "empty program"));
}

TEST(Decoder, RejectsLengthNotMultipleOf8) {
  std::vector<uint8_t> bytes(12);
  EXPECT_TRUE(Throws([&] { decode(bytes, "odd.bin"); }, "odd.bin",
                     "program length 12 is not a multiple of 8 bytes"));
}

TEST(Decoder, ReadsFileAndNamesMissingFile) {
  fs::path path = fs::path(testing::TempDir()) / "sb_frontend_test_read.bin";
  {
    std::vector<uint8_t> bytes = encode(raw({I(0xb7, 0, 0, 0, 7), I(kExit)}));
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  Program p = read_program_file(path.string());
  fs::remove(path);
  EXPECT_EQ(p.name, path.string());
  EXPECT_EQ(p.insns, raw({I(0xb7, 0, 0, 0, 7), I(kExit)}).insns);

  EXPECT_TRUE(Throws([&] { read_program_file(path.string()); }, path.string(),
                     "cannot open: No such file or directory"));
}

// -------------------------------------------------------------- validator

TEST(Validator, AcceptsMinimalProgram) { EXPECT_TRUE(Accepts(assembled("mov %r0, 0\nexit"))); }

TEST(Validator, RejectsEmptyProgram) {
  EXPECT_TRUE(Throws([] { validate(raw({})); }, "t.bin", "empty program"));
}

TEST(Validator, UnknownOpcode) {
  EXPECT_TRUE(Rejects(raw({I(0xb7), I(0xff), I(kExit)}), 1, "unknown opcode 0xff"));
}

TEST(Validator, OpcodesRfc9669LeavesUndefinedAreUnknown) {
  const uint8_t undefined[] = {
      0x00,        // LD|IMM|W: only the DW form (lddw) exists
      0x8c, 0x8f,  // NEG with the X bit
      0xdf,        // ALU64|END|X: reserved
      0xe4, 0xf7,  // ALU operations 0xe and 0xf
      0x0d, 0x0e,  // JA with the X bit
      0x86, 0x96,  // CALL and EXIT in JMP32
      0x9d,        // EXIT with the X bit
      0xe5, 0xf6,  // jump operations 0xe and 0xf
      0x99,        // LDX|MEMSX|DW: no sign-extending 64-bit load
      0xd3, 0xcb,  // STX|ATOMIC|B and H: atomics are W and DW only
      0xc2, 0x82,  // ST with ATOMIC or MEMSX mode
      0xa1, 0xe3,  // undefined modes
  };
  for (uint8_t opcode : undefined) {
    char message[32];
    std::snprintf(message, sizeof message, "unknown opcode 0x%02x", opcode);
    EXPECT_TRUE(Rejects(raw({I(opcode), I(kExit)}), 0, message));
  }
}

TEST(Validator, LegacyPacketAccessIsUnsupported) {
  EXPECT_TRUE(Rejects(raw({I(0x20), I(kExit)}), 0, "unsupported legacy packet access opcode 0x20"));
  EXPECT_TRUE(Rejects(raw({I(0x50), I(kExit)}), 0, "unsupported legacy packet access opcode 0x50"));
}

TEST(Validator, InvalidDestinationRegister) {
  EXPECT_TRUE(Rejects(assembled("mov %r0, 0\nmov %r12, 1\nexit"), 1, "invalid destination register r12"));
  EXPECT_TRUE(Rejects(assembled("jeq %r11, 0, +0\nexit"), 0, "invalid destination register r11"));
  EXPECT_TRUE(Rejects(assembled("stxdw [%r15-8], %r1\nexit"), 0, "invalid destination register r15"));
  EXPECT_TRUE(Rejects(assembled("call %r11\nexit"), 0, "invalid destination register r11"));
}

TEST(Validator, InvalidSourceRegister) {
  EXPECT_TRUE(Rejects(assembled("add %r1, %r11\nexit"), 0, "invalid source register r11"));
  EXPECT_TRUE(Rejects(assembled("ldxw %r0, [%r13+0]\nexit"), 0, "invalid source register r13"));
}

TEST(Validator, WriteToReadOnlyR10) {
  EXPECT_TRUE(Rejects(assembled("mov %r10, 1\nexit"), 0, "write to read-only register r10"));
  EXPECT_TRUE(Rejects(assembled("ldxdw %r10, [%r1]\nexit"), 0, "write to read-only register r10"));
  EXPECT_TRUE(Rejects(assembled("lddw %r10, 5\nexit"), 0, "write to read-only register r10"));
  EXPECT_TRUE(Rejects(assembled("be16 %r10\nexit"), 0, "write to read-only register r10"));
  // An atomic fetch writes the old value back to src.
  EXPECT_TRUE(Rejects(assembled("lock fetch add [%r1], %r10\nexit"), 0, "write to read-only register r10"));
  EXPECT_TRUE(Rejects(assembled("lock xchg [%r1], %r10\nexit"), 0, "write to read-only register r10"));
  // r10 as a base or a value is fine.
  EXPECT_TRUE(Accepts(assembled("stxdw [%r10-8], %r10\nlock add [%r10-8], %r10\nldxdw %r0, [%r10-8]\nexit")));
}

TEST(Validator, JumpTargetOutOfRange) {
  Program p = assembled("ja +16\nmov %r0, 0\nmov %r0, 0\nmov %r0, 0\nmov %r0, 0\nmov %r0, 0\nmov %r0, 0\n"
                        "mov %r0, 0\nexit");
  ASSERT_EQ(p.insns.size(), 9u);
  EXPECT_TRUE(Rejects(p, 0, "jump target 17 out of range [0, 9)"));
  EXPECT_TRUE(Rejects(assembled("exit\njeq %r1, 0, -3\nexit"), 1, "jump target -1 out of range [0, 3)"));
  EXPECT_TRUE(Rejects(assembled("ja32 +5\nexit"), 0, "jump target 6 out of range [0, 2)"));
}

TEST(Validator, JumpIntoMiddleOfLddw) {
  Program p = assembled("mov %r0, 0\nja +4\nmov %r0, 1\nmov %r0, 2\nmov %r0, 3\nlddw %r1, 1\nexit");
  EXPECT_TRUE(Rejects(p, 1, "jump into the middle of lddw at 5"));
  EXPECT_TRUE(Rejects(assembled("ja32 +1\nlddw %r1, 1\nexit"), 0, "jump into the middle of lddw at 1"));
}

TEST(Validator, TruncatedLddw) {
  EXPECT_TRUE(Rejects(raw({I(kExit), I(LDDW, 1)}), 1, "truncated lddw"));
}

TEST(Validator, LddwSecondSlotMustBeEmpty) {
  const char* message = "second slot of lddw must have opcode, registers and offset 0";
  EXPECT_TRUE(Rejects(raw({I(LDDW, 1), I(kExit), I(kExit)}), 0, message));
  EXPECT_TRUE(Rejects(raw({I(LDDW, 1), I(0, 1), I(kExit)}), 0, message));
  EXPECT_TRUE(Rejects(raw({I(LDDW, 1), I(0, 0, 2), I(kExit)}), 0, message));
  EXPECT_TRUE(Rejects(raw({I(LDDW, 1), I(0, 0, 0, 1), I(kExit)}), 0, message));
  EXPECT_TRUE(Accepts(raw({I(LDDW, 1, 0, 0, 1), I(0, 0, 0, 0, -1), I(kExit)})));
}

TEST(Validator, LddwPseudoSourcesAreAcceptedStructurally) {
  for (uint8_t src = LDDW_MAP_FD; src <= LDDW_MAP_IDX_VALUE; ++src)
    if (src != LDDW_CODE_ADDR)
      EXPECT_TRUE(Accepts(raw({I(LDDW, 1, src, 0, 3), I(0), I(kExit)}))) << "src " << int(src);
  EXPECT_TRUE(Rejects(raw({I(LDDW, 1, 7), I(0), I(kExit)}), 0, "invalid lddw source src_reg 7"));
}

// An lddw of a function's address (a bpf_loop callback) names a function:
// its target starts one, inside the program, and counts two frames deeper
// (bpf_loop calls it from a frame of its own, frontend/loop_helper.h).
TEST(Validator, FunctionAddressesNameFunctions) {
  const Insn mov0 = I(0xb7, 0, 0, 0, 0);
  EXPECT_TRUE(Accepts(raw({I(LDDW, 2, LDDW_CODE_ADDR, 0, 2), I(0), I(kExit), mov0, I(kExit)})));
  EXPECT_EQ(function_starts(raw({I(LDDW, 2, LDDW_CODE_ADDR, 0, 2), I(0), I(kExit), mov0, I(kExit)})),
            (std::vector<size_t>{0, 3}));
  EXPECT_TRUE(Rejects(raw({I(LDDW, 1, LDDW_CODE_ADDR, 0, 3), I(0), I(kExit)}), 0,
                      "function address target 4 out of range [0, 3)"));
  EXPECT_TRUE(Rejects(raw({I(LDDW, 1, LDDW_CODE_ADDR, 0, 0), I(0), I(kExit)}), 0,
                      "function address into the middle of lddw at 0"));
  EXPECT_TRUE(Rejects(raw({I(LDDW, 1, LDDW_CODE_ADDR, 0, -1), I(0), I(kExit)}), 0,
                      "recursive call to the function at 0"));
  EXPECT_TRUE(Rejects(raw({I(LDDW, 2, LDDW_CODE_ADDR, 0, 2), I(0, 0, 0, 0, 1), I(kExit), mov0, I(kExit)}), 0,
                      "lddw of a function's address: its second slot's imm must be 0"));
  // Seven frames of local calls, then a callback: 7 + 2 frames.
  std::vector<Insn> deep;
  for (int f = 0; f < 7; ++f) deep.insert(deep.end(), {I(0x85, 0, CALL_LOCAL, 0, 1), I(kExit)});
  deep.insert(deep.end(), {I(LDDW, 2, LDDW_CODE_ADDR, 0, 2), I(0), I(kExit), mov0, I(kExit)});
  EXPECT_TRUE(Rejects(raw(deep), 2, "call depth exceeds 8 frames"));
}

TEST(Validator, NoExitInstruction) {
  EXPECT_TRUE(Rejects(assembled("mov %r0, 0\nja -2"), 1, "program has no exit instruction"));
}

TEST(Validator, FallsOffTheEnd) {
  EXPECT_TRUE(Rejects(assembled("exit\nmov %r0, 0"), 1, "falls off the end of the program"));
  EXPECT_TRUE(Rejects(assembled("exit\njeq %r0, 0, -2"), 1, "falls off the end of the program"));
  EXPECT_TRUE(Rejects(assembled("exit\nlddw %r0, 1"), 1, "falls off the end of the program"));
  // An unconditional jump may end the program (exit-not-last.data).
  EXPECT_TRUE(Accepts(assembled("ja +1\nexit\nja -2")));
  EXPECT_TRUE(Accepts(assembled("ja32 +1\nexit\nja32 -2")));
}

TEST(Validator, ReservedSrcReg) {
  EXPECT_TRUE(Rejects(raw({I(0x07, 1, 1, 0, 5), I(kExit)}), 0, "reserved field src_reg must be 0"));  // add K
  EXPECT_TRUE(Rejects(raw({I(0x87, 1, 1), I(kExit)}), 0, "reserved field src_reg must be 0"));       // neg
  EXPECT_TRUE(Rejects(raw({I(0x62, 1, 2, 0, 1), I(kExit)}), 0, "reserved field src_reg must be 0"));  // stw
  EXPECT_TRUE(Rejects(raw({I(0x15, 1, 2, 0, 0), I(kExit)}), 0, "reserved field src_reg must be 0"));  // jeq K
  EXPECT_TRUE(Rejects(raw({I(0xd4, 1, 1, 0, 16), I(kExit)}), 0, "reserved field src_reg must be 0")); // le16
}

TEST(Validator, ReservedOffset) {
  EXPECT_TRUE(Rejects(raw({I(0x07, 1, 0, 1, 5), I(kExit)}), 0, "reserved field offset must be 0"));  // add
  EXPECT_TRUE(Rejects(raw({I(0xb7, 1, 0, 8, 5), I(kExit)}), 0, "reserved field offset must be 0"));  // mov K
  EXPECT_TRUE(Rejects(raw({I(0x06, 0, 0, 1, 0), I(kExit)}), 0, "reserved field offset must be 0"));  // ja32
  EXPECT_TRUE(Rejects(raw({I(0x85, 0, 0, 1, 1), I(kExit)}), 0, "reserved field offset must be 0"));  // call
}

TEST(Validator, ReservedImm) {
  EXPECT_TRUE(Rejects(raw({I(0x0f, 1, 2, 0, 1), I(kExit)}), 0, "reserved field imm must be 0"));  // add X
  EXPECT_TRUE(Rejects(raw({I(0x84, 1, 0, 0, 1), I(kExit)}), 0, "reserved field imm must be 0"));  // neg32
  EXPECT_TRUE(Rejects(raw({I(0x61, 1, 2, 0, 1), I(kExit)}), 0, "reserved field imm must be 0"));  // ldxw
  EXPECT_TRUE(Rejects(raw({I(0x7b, 1, 2, 0, 1), I(kExit)}), 0, "reserved field imm must be 0"));  // stxdw
  EXPECT_TRUE(Rejects(raw({I(0x05, 0, 0, 0, 1), I(kExit)}), 0, "reserved field imm must be 0"));  // ja
  EXPECT_TRUE(Rejects(raw({I(0x8d, 1, 0, 0, 1), I(kExit)}), 0, "reserved field imm must be 0"));  // callx
}

TEST(Validator, ReservedDstReg) {
  EXPECT_TRUE(Rejects(raw({I(0x05, 1), I(kExit)}), 0, "reserved field dst_reg must be 0"));  // ja
  EXPECT_TRUE(Rejects(raw({I(0x85, 1, 0, 0, 1), I(kExit)}), 0, "reserved field dst_reg must be 0"));  // call
}

TEST(Validator, ExitHasNoOperands) {
  EXPECT_TRUE(Rejects(raw({I(kExit, 1)}), 0, "reserved field dst_reg must be 0"));
  EXPECT_TRUE(Rejects(raw({I(kExit, 0, 1)}), 0, "reserved field src_reg must be 0"));
  EXPECT_TRUE(Rejects(raw({I(kExit, 0, 0, 1)}), 0, "reserved field offset must be 0"));
  EXPECT_TRUE(Rejects(raw({I(kExit, 0, 0, 0, 1)}), 0, "reserved field imm must be 0"));
}

TEST(Validator, DivisionByZeroImmediate) {
  EXPECT_TRUE(Rejects(assembled("mov %r0, 1\ndiv %r0, 0\nexit"), 1, "division by zero immediate"));
  EXPECT_TRUE(Rejects(assembled("div32 %r0, 0\nexit"), 0, "division by zero immediate"));
  EXPECT_TRUE(Rejects(assembled("sdiv %r0, 0\nexit"), 0, "division by zero immediate"));
  EXPECT_TRUE(Rejects(assembled("mod %r0, 0\nexit"), 0, "modulo by zero immediate"));
  EXPECT_TRUE(Rejects(assembled("smod32 %r0, 0\nexit"), 0, "modulo by zero immediate"));
  // By a register it is defined (section 4.1): 0 for div, dst for mod.
  EXPECT_TRUE(Accepts(assembled("mov %r1, 0\ndiv %r0, %r1\nmod32 %r0, %r1\nexit")));
}

TEST(Validator, DivModOffsetIsSignedness) {
  EXPECT_TRUE(Rejects(raw({I(0x37, 1, 0, 2, 1), I(kExit)}), 0,
                      "invalid offset 2 for div/mod (0 unsigned, 1 signed)"));
  EXPECT_TRUE(Rejects(raw({I(0x9c, 1, 2, -1), I(kExit)}), 0,
                      "invalid offset -1 for div/mod (0 unsigned, 1 signed)"));
}

TEST(Validator, MovsxWidths) {
  EXPECT_TRUE(Rejects(raw({I(0xbc, 1, 2, 32), I(kExit)}), 0, "invalid movsx offset 32 for mov32 (8 or 16)"));
  EXPECT_TRUE(Rejects(raw({I(0xbf, 1, 2, 7), I(kExit)}), 0, "invalid movsx offset 7 for mov (8, 16 or 32)"));
  EXPECT_TRUE(Accepts(assembled("movsx832 %r1, %r2\nmovsx1632 %r1, %r2\nmovsx864 %r1, %r2\n"
                                "movsx1664 %r1, %r2\nmovsx3264 %r1, %r2\nexit")));
}

TEST(Validator, UnknownHelper) {
  ValidateOptions opts;
  opts.helper_exists = [](uint32_t id) { return id == 5; };
  EXPECT_TRUE(Rejects(assembled("call 5\ncall 7\nexit"), 1, "unknown helper 7", opts));
  EXPECT_TRUE(Accepts(assembled("call 5\nexit"), opts));
  EXPECT_TRUE(Accepts(assembled("call 7\nexit")));  // no helper table: any id
}

// Helper ids from ir::kFirstReservedHelper up belong to Springboard's own
// code (hardening, bpf_for_each_map_elem's walk): no bytecode may call them,
// whatever the helper table holds.
TEST(Validator, ReservedHelperIdsAreNotCallable) {
  ValidateOptions all;
  all.helper_exists = [](uint32_t) { return true; };
  Program p = raw({I(0x85, 0, 0, 0, int32_t(0xffff0010u)), I(kExit)});
  try {
    validate(p, all);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "t.bin: instruction 0: unknown helper 4294901776 (an id Springboard keeps for its own code)");
  }
}

TEST(Validator, CallKinds) {
  EXPECT_TRUE(Rejects(raw({I(0x85, 0, 2, 0, 1), I(kExit)}), 0,
                      "unsupported call kind: helper by BTF ID (src_reg 2)"));
  EXPECT_TRUE(Rejects(raw({I(0x85, 0, 3, 0, 1), I(kExit)}), 0, "invalid call kind src_reg 3"));
  EXPECT_TRUE(Accepts(assembled("mov %r2, 5\ncall %r2\nexit")));  // callx
}

TEST(Validator, ByteSwapWidth) {
  EXPECT_TRUE(Rejects(raw({I(0xdc, 1, 0, 0, 24), I(kExit)}), 0, "invalid byte swap width 24"));
  EXPECT_TRUE(Rejects(raw({I(0xd7, 1, 0, 0, 8), I(kExit)}), 0, "invalid byte swap width 8"));
}

TEST(Validator, AtomicOperation) {
  EXPECT_TRUE(Rejects(raw({I(0xdb, 1, 2, 0, 0x10), I(kExit)}), 0, "invalid atomic operation 0x10"));
  EXPECT_TRUE(Rejects(raw({I(0xc3, 1, 2, 0, 0xe0), I(kExit)}), 0, "invalid atomic operation 0xe0"));  // xchg w/o fetch
}

TEST(Validator, CallTargetMustBeAnInstruction) {
  EXPECT_TRUE(Rejects(assembled("call local +5\nexit"), 0, "call target 6 out of range [0, 2)"));
  EXPECT_TRUE(Rejects(assembled("call local +2\nexit\nlddw %r0, 1\nexit"), 0, "call into the middle of lddw at 2"));
}

TEST(Validator, FunctionMayNotFallThroughIntoTheNext) {
  EXPECT_TRUE(Rejects(assembled("call local f\nmov %r0, 0\nf:\nexit"), 1, "falls through into the function at 2"));
}

TEST(Validator, RecursionIsRejected) {
  EXPECT_TRUE(Rejects(assembled("call local f\nexit\nf:\ncall local f\nexit"), 2,
                      "recursive call to the function at 2"));
  EXPECT_TRUE(Rejects(assembled("call local f\nexit\nf:\ncall local g\nexit\ng:\ncall local f\nexit"), 4,
                      "recursive call to the function at 2"));
}

TEST(Validator, CallDepthIsLimitedTo8Frames) {
  auto chain = [](int frames) {  // main calls f1, f1 calls f2, ...: `frames` frames deep
    std::string src;
    for (int f = 0; f < frames; ++f) {
      if (f) src += "f" + std::to_string(f) + ":\n";
      if (f + 1 < frames) src += "call local f" + std::to_string(f + 1) + "\n";
      src += "exit\n";
    }
    return assembled(src);
  };
  EXPECT_TRUE(Accepts(chain(8)));
  EXPECT_TRUE(Rejects(chain(9), 0, "call depth exceeds 8 frames"));
}

TEST(Validator, JumpMayNotLeaveItsFunction) {
  EXPECT_TRUE(Rejects(assembled("call local f\nja g\nf:\nmov %r0, 0\ng:\nexit"), 1,
                      "jump target 3 is outside its function [0, 2)"));
}

TEST(Validator, AcceptsWhatTheCorpusNeeds) {
  // Shift counts are masked at run time (section 4.1), so large and negative
  // immediates are valid, unlike in the kernel's verifier (lsh32-imm-high).
  EXPECT_TRUE(Accepts(assembled("lsh32 %r0, 60\nrsh %r0, -4\narsh32 %r0, 32\nexit")));
  EXPECT_TRUE(Accepts(assembled("call local f\nexit\nf:\nmov %r0, 1\nexit")));
  EXPECT_TRUE(Accepts(assembled("ja32 +0\nexit")));
}

// Every row of the shared mnemonic table yields a valid instruction, and
// every opcode no row covers is rejected as unknown: the validator's opcode
// map and the assembler's table describe the same ISA.
TEST(Validator, AgreesWithTheMnemonicTable) {
  bool covered[256] = {};
  for (const Mnemonic& m : kMnemonics) {
    std::vector<OperandValues> variants(1);
    for (size_t k = 0; k < m.arity(); ++k) {
      OperandValue v;
      switch (m.operands[k]) {
        case Operand::Dst: v = {true, 1, 0}; break;
        case Operand::Src: v = {true, 2, 0}; break;
        case Operand::SrcOrImm: v = {false, 0, 3}; break;
        case Operand::Imm: v = {false, 0, 1}; break;
        case Operand::Imm64: v = {false, 0, 0x1122334455667788}; break;
        case Operand::DstMem:
        case Operand::SrcMem: v = {true, 10, -8}; break;
        case Operand::OffTarget:
        case Operand::ImmTarget: v = {false, 0, 1}; break;  // skip one exit
        case Operand::None: break;
      }
      variants[0][k] = v;
      if (m.operands[k] == Operand::SrcOrImm) {
        variants.push_back(variants[0]);
        variants.back()[k] = {true, 2, 0};
      }
    }
    for (const OperandValues& ops : variants) {
      Encoding e = encode_row(m, ops);
      Program p = raw(std::vector<Insn>(e.slots.begin(), e.slots.begin() + e.count));
      p.insns.push_back(I(kExit));
      p.insns.push_back(I(kExit));
      EXPECT_TRUE(Accepts(p)) << m.name;
      covered[e.slots[0].opcode] = true;
    }
  }
  for (int opcode = 0; opcode < 256; ++opcode) {
    if (covered[opcode]) continue;
    try {
      validate(raw({I(uint8_t(opcode)), I(kExit)}));
      ADD_FAILURE() << "opcode " << opcode << " has no mnemonic but validates";
    } catch (const Error& e) {
      EXPECT_TRUE(e.message().starts_with("unknown opcode") ||
                  e.message().starts_with("unsupported legacy packet access"))
          << e.message();
    }
  }
}

TEST(Validator, FunctionStartsAndBranchTargets) {
  Program p = assembled("call local f\ncall local g\nexit\ng:\nexit\nf:\nja +0\nexit");
  EXPECT_EQ(function_starts(p), (std::vector<size_t>{0, 3, 4}));
  EXPECT_EQ(branch_target(p.insns[0], 0), 4);
  EXPECT_EQ(branch_target(p.insns[4], 4), 5);
  EXPECT_EQ(branch_target(p.insns[2], 2), std::nullopt);  // exit
  EXPECT_EQ(branch_target(I(0x85, 0, 0, 0, 5), 0), std::nullopt);  // helper call
  EXPECT_EQ(branch_target(I(0x06, 0, 0, 0, -1), 7), 7);  // gotol
  EXPECT_EQ(function_starts(assembled("exit")), (std::vector<size_t>{0}));
}

// ----------------------------------------------------------- disassembler

struct DisasmCase {
  std::vector<Insn> slots;
  const char* text;
};

TEST(Disassembler, PrintsConformanceSyntax) {
  const DisasmCase cases[] = {
      {{I(0xb7, 1, 0, 0, -1)}, "mov %r1, -1"},
      {{I(0xbf, 1, 2)}, "mov %r1, %r2"},
      {{I(0x34, 1, 0, 1, 3)}, "sdiv32 %r1, 3"},
      {{I(0x9f, 1, 2, 1)}, "smod %r1, %r2"},
      {{I(0xbf, 1, 2, 16)}, "movsx1664 %r1, %r2"},
      {{I(0x87, 3)}, "neg %r3"},
      {{I(0xdc, 1, 0, 0, 16)}, "be16 %r1"},
      {{I(0xd4, 1, 0, 0, 64)}, "le64 %r1"},
      {{I(0xd7, 3, 0, 0, 64)}, "bswap64 %r3"},
      {{I(0x15, 1, 0, 2, 5)}, "jeq %r1, 5, +2"},
      {{I(0x5e, 1, 2, -3)}, "jne32 %r1, %r2, -3"},
      {{I(0x05)}, "ja +0"},
      {{I(0x06, 0, 0, 0, 70000)}, "ja32 +70000"},
      {{I(0x85, 0, 0, 0, 5)}, "call 5"},
      {{I(0x85, 0, 1, 0, -4)}, "call local -4"},
      {{I(0x8d, 2)}, "call %r2"},
      {{I(kExit)}, "exit"},
      {{I(0x91, 0, 10, -1)}, "ldxsb %r0, [%r10-1]"},
      {{I(0x61, 0, 1)}, "ldxw %r0, [%r1]"},
      {{I(0x62, 1, 0, 2, 5)}, "stw [%r1+2], 5"},
      {{I(0x7b, 10, 1, -8)}, "stxdw [%r10-8], %r1"},
      {{I(0xc3, 1, 2, 4, 0x01)}, "lock fetch add32 [%r1+4], %r2"},
      {{I(0xdb, 10, 1, -8, 0xf1)}, "lock cmpxchg [%r10-8], %r1"},
      {{I(0xc3, 1, 2, 0, 0xe1)}, "lock xchg32 [%r1], %r2"},
      {{I(0xdb, 1, 2, 0, 0xa0)}, "lock xor [%r1], %r2"},
      {{I(LDDW, 1, 0, 0, 0x55667788), I(0, 0, 0, 0, 0x11223344)}, "lddw %r1, 0x1122334455667788"},
      {{I(0xff)}, ".raw 0x00000000000000ff"},
      {{I(0x07, 1, 1, 0, 5)}, ".raw 0x0000000500001107"},  // add K with a src register
      {{I(LDDW, 1, 1, 0, 3), I(0)}, ".raw 0x0000000300001118"},  // lddw map_fd
      {{I(LDDW, 1)}, ".raw 0x0000000000000118"},  // lddw without its second slot
  };
  for (const DisasmCase& c : cases) {
    const Insn* next = c.slots.size() > 1 ? &c.slots[1] : nullptr;
    EXPECT_EQ(disassemble(c.slots[0], next), c.text);
    // And the assembler reads it back to the same slots.
    Program back = assemble(c.text, "case");
    EXPECT_EQ(back.insns[0], c.slots[0]) << c.text;
  }
}

TEST(Disassembler, ListingSkipsLddwSecondSlot) {
  Program p = raw({I(LDDW, 0, 0, 0, 1), I(0, 0, 0, 0, 2), I(kExit)});
  EXPECT_EQ(disassemble(p), "lddw %r0, 0x200000001\nexit\n");
  Program pseudo = raw({I(LDDW, 1, 1, 0, 3), I(0), I(kExit)});
  EXPECT_EQ(disassemble(pseudo), ".raw 0x0000000300001118\n.raw 0x0000000000000000\nexit\n");
}

// Any slot sequence survives disassemble -> assemble, valid or not.
TEST(Disassembler, RandomProgramsRoundTrip) {
  std::mt19937_64 rng(9669);
  std::vector<uint8_t> opcodes;  // bias towards real opcodes
  for (const Mnemonic& m : kMnemonics) opcodes.push_back(m.opcode);
  for (int program = 0; program < 2000; ++program) {
    std::vector<Insn> insns;
    size_t n = 1 + rng() % 12;
    for (size_t i = 0; i < n; ++i) {
      Insn insn = from_word(rng());
      if (rng() % 4 != 0) {  // mostly plausible fields
        insn.opcode = opcodes[rng() % opcodes.size()] | ((rng() % 2) ? X : 0);
        if (rng() % 2) insn.src = insn.src % 11;
        if (rng() % 2) insn.off = int16_t(insn.off % 64);
        if (rng() % 2) insn.imm = insn.imm % 70;
      }
      insns.push_back(insn);
      if (is_lddw(insn) && rng() % 2) insns.push_back(I(0, 0, 0, 0, int32_t(rng())));
    }
    Program p = raw(insns);
    std::string text = disassemble(p);
    EXPECT_EQ(assemble(text, "rt").insns, p.insns) << text;
  }
}

// -------------------------------------------------------------- assembler

TEST(Assembler, LabelsAndRelativeTargets) {
  Program p = assembled(R"(
    # comment line
    start: mov %r0, 0   # trailing comment
    jeq %r0, 0, done
    ja -2
    done:
    call local f
    exit
    f:
    ja32 start
  )");
  ASSERT_EQ(p.insns.size(), 6u);
  EXPECT_EQ(p.insns[1].off, 1);    // done = 3
  EXPECT_EQ(p.insns[2].off, -2);
  EXPECT_EQ(p.insns[3].imm, 1);    // f = 5
  EXPECT_EQ(p.insns[3].src, CALL_LOCAL);
  EXPECT_EQ(p.insns[5].opcode, 0x06);
  EXPECT_EQ(p.insns[5].imm, -6);   // start = 0
}

TEST(Assembler, ExitNamesTheFirstExitUnlessDefined) {
  Program implicit = assembled("jeq %r1, 0, exit\nmov %r0, 1\nexit\nmov %r0, 2\nexit");
  EXPECT_EQ(implicit.insns[0].off, 1);
  Program backwards = assembled("exit\nja exit");
  EXPECT_EQ(backwards.insns[1].off, -2);
  Program explicit_label = assembled("ja exit\nexit\nexit:\nexit");
  EXPECT_EQ(explicit_label.insns[0].off, 1);
}

TEST(Assembler, Immediates) {
  EXPECT_EQ(assembled("mov %r0, 0xfffffffd").insns[0].imm, -3);
  EXPECT_EQ(assembled("mov %r0, -2147483648").insns[0].imm, INT32_MIN);
  EXPECT_EQ(assembled("mov %r0, 4294967295").insns[0].imm, -1);
  EXPECT_EQ(assembled("jne %r0, 0xFFFF, +0").insns[0].imm, 0xffff);
  EXPECT_EQ(assembled("stw [%r1 + 0x10], -0x10").insns[0], I(0x62, 1, 0, 16, -16));
  EXPECT_EQ(assembled("ldxb %r0, [ %r1 - 2 ]").insns[0], I(0x71, 0, 1, -2));
  Program lddw = assembled("lddw %r1, -1");
  EXPECT_EQ(lddw.insns[0].imm, -1);
  EXPECT_EQ(lddw.insns[1].imm, -1);
  EXPECT_EQ(assembled("lddw %r1, 0xffffffffffffffff").insns, lddw.insns);
  EXPECT_EQ(assembled(".raw 0x0000000500001107").insns[0], I(0x07, 1, 1, 0, 5));
  EXPECT_EQ(assembled("swap16 %r0").insns, assembled("bswap16 %r0").insns);
}

TEST(Assembler, ErrorsNameTheLineAndToken) {
  EXPECT_TRUE(AsmRejects("mov %r0, 1\nfoo %r0", 2, "unknown mnemonic 'foo'"));
  EXPECT_TRUE(AsmRejects("lock fetch nand [%r1], %r2", 1, "unknown mnemonic 'lock fetch nand'"));
  EXPECT_TRUE(AsmRejects("mov %r16, 1", 1, "invalid register '%r16'"));
  EXPECT_TRUE(AsmRejects("mov %rx, 1", 1, "invalid register '%rx'"));
  EXPECT_TRUE(AsmRejects("exit\n\nja nowhere", 3, "undefined label 'nowhere'"));
  EXPECT_TRUE(AsmRejects("a:\nexit\na:\nexit", 3, "duplicate label 'a' (first defined at line 1)"));
  EXPECT_TRUE(AsmRejects("add %r0", 1, "'add' takes 2 operands, got 1"));
  EXPECT_TRUE(AsmRejects("exit %r0", 1, "'exit' takes 0 operands, got 1"));
  EXPECT_TRUE(AsmRejects("neg 5", 1, "expected a register, got '5'"));
  EXPECT_TRUE(AsmRejects("add %r0, x", 1, "expected a register or an immediate, got 'x'"));
  EXPECT_TRUE(AsmRejects("ldxw %r0, %r1", 1, "expected a memory operand [%rN+offset], got '%r1'"));
  EXPECT_TRUE(AsmRejects("ja %r1", 1, "expected a label or +N/-N offset, got '%r1'"));
  EXPECT_TRUE(AsmRejects("mov %r0, 0xzz", 1, "invalid number '0xzz'"));
  EXPECT_TRUE(AsmRejects("mov %r0, 0x100000000", 1, "immediate '0x100000000' does not fit in 32 bits"));
  EXPECT_TRUE(AsmRejects("mov %r0, -2147483649", 1, "immediate '-2147483649' does not fit in 32 bits"));
  EXPECT_TRUE(AsmRejects("lddw %r0, 0x10000000000000000", 1, "number '0x10000000000000000' out of range"));
  EXPECT_TRUE(AsmRejects("ldxw %r0, [%r1+40000]", 1, "offset in '[%r1+40000]' does not fit in 16 bits"));
  EXPECT_TRUE(AsmRejects("ja +32768", 1, "jump offset '+32768' does not fit in 16 bits"));
  EXPECT_TRUE(AsmRejects("mov $r0, 1", 1, "unexpected character '$'"));
  EXPECT_TRUE(AsmRejects("add %r0,", 1, "missing operand after ',' for 'add'"));
  EXPECT_TRUE(AsmRejects("ldxw %r0, [%r1+]", 1, "invalid operand '[%r1+]'"));
  EXPECT_TRUE(AsmRejects("call foo", 1, "expected an immediate, got 'foo'"));

  std::string far = "ja end\n";
  for (int i = 0; i < 40000; ++i) far += "mov %r0, 0\n";
  far += "end:\nexit\n";
  EXPECT_TRUE(AsmRejects(far, 1, "label 'end' is out of range of a 16-bit jump offset"));
  EXPECT_EQ(assemble("ja32 end\n" + far.substr(7), "t.s").insns[0].imm, 40000);
}

TEST(Assembler, FirstLineOffsetsErrorLines) {
  EXPECT_TRUE(Throws([] { assemble("exit\nbogus", "f.data", 10); }, "f.data: line 11", "unknown mnemonic 'bogus'"));
}

// ------------------------------------------------------ conformance files

TEST(ConformanceFile, ParsesSections) {
  ConformanceTest t = parse_conformance(
      "# header\n"
      "-- asm\n"
      "mov %r0, 1   # one\n"
      "exit\n"
      "-- mem\n"
      "00 01 02\n"
      "0a0b\n"
      "-- result\n"
      "0x10\n"
      "-- c\n"
      "int main() { return 16; }\n"
      "-- no register offset\n"
      "call instruction\n",
      "dir/sample.data");
  EXPECT_FALSE(t.skipped);
  EXPECT_EQ(t.name, "sample");
  EXPECT_EQ(t.program.name, "dir/sample.data");
  EXPECT_EQ(t.program.insns, assembled("mov %r0, 1\nexit").insns);
  EXPECT_TRUE(t.has_memory);
  EXPECT_EQ(t.memory, (std::vector<uint8_t>{0, 1, 2, 10, 11}));
  EXPECT_EQ(t.result, 16u);
  EXPECT_FALSE(t.error);
}

TEST(ConformanceFile, ErrorSectionAndDecimalResult) {
  ConformanceTest t = parse_conformance("-- raw\n0x95\n-- error\nFailed to load # verbatim\n", "e.data");
  EXPECT_EQ(t.program.insns, raw({I(kExit)}).insns);
  EXPECT_EQ(t.error, "Failed to load # verbatim");
  EXPECT_FALSE(t.has_memory);
  EXPECT_EQ(parse_conformance("-- asm\nexit\n-- result\n42\n", "r.data").result, 42u);
}

TEST(ConformanceFile, UnknownSectionSkipsTheFile) {
  ConformanceTest t = parse_conformance("-- asm\nexit\n-- elf\n00\n-- result\n0\n", "u.data");
  EXPECT_TRUE(t.skipped);
  EXPECT_EQ(t.skip_reason, "unknown section '-- elf' at line 3");
}

TEST(ConformanceFile, ErrorsNameFileAndLine) {
  auto expect_error = [](std::string_view text, const char* where, const char* message) {
    EXPECT_TRUE(Throws([&] { parse_conformance(text, "bad.data"); }, where, message)) << text;
  };
  expect_error("# x\n-- asm\nexit\nmov %r0, %r99\n-- result\n0\n", "bad.data: line 4", "invalid register '%r99'");
  expect_error("-- raw\n0x95 zz\n-- result\n0\n", "bad.data: line 2", "invalid instruction word 'zz'");
  expect_error("-- asm\nexit\n-- result\nabc\n", "bad.data: line 4", "invalid result 'abc'");
  expect_error("-- asm\nexit\n-- result\n1 2\n", "bad.data: line 4", "extra result '2'");
  expect_error("-- asm\nexit\n-- asm\nexit\n", "bad.data: line 3", "duplicate section '-- asm'");
  expect_error("-- asm\nexit\n-- mem\n0g\n-- result\n0\n", "bad.data: line 3", "invalid hex byte '0g'");
  expect_error("stray\n-- asm\nexit\n", "bad.data: line 1", "text before the first '--' section");
}

TEST(ConformanceFile, HexBytes) {
  EXPECT_EQ(parse_hex_bytes("0a 1b", "w"), (std::vector<uint8_t>{0x0a, 0x1b}));
  EXPECT_EQ(parse_hex_bytes("0a1b", "w"), (std::vector<uint8_t>{0x0a, 0x1b}));
  EXPECT_EQ(parse_hex_bytes("  0A  ff  \n", "w"), (std::vector<uint8_t>{0x0a, 0xff}));
  EXPECT_TRUE(Throws([] { parse_hex_bytes("abc", "plugin stdin"); }, "plugin stdin",
                     "odd number of hex digits in 'abc'"));
}

// ------------------------------------------------------------ the corpus

TEST(Corpus, EveryFileParsesAndValidates) {
  SKIP_WITHOUT_CORPUS();
  std::vector<fs::path> files = corpus_files();
  EXPECT_EQ(files.size(), 313u);
  size_t validated = 0;
  for (const fs::path& path : files) {
    SCOPED_TRACE(path.string());
    ConformanceTest t;
    try {
      t = read_conformance_file(path.string());
    } catch (const Error& e) {
      ADD_FAILURE() << e.what();
      continue;
    }
    EXPECT_FALSE(t.skipped) << t.skip_reason;
    EXPECT_TRUE(t.result || t.error);
    if (t.error) {
      EXPECT_ANY_THROW(validate(t.program)) << "expects: " << *t.error;
      continue;
    }
    EXPECT_TRUE(Accepts(t.program));
    ++validated;
  }
  EXPECT_EQ(validated, 313u);
}

TEST(Corpus, AssembleDisassembleAssembleIsIdentity) {
  SKIP_WITHOUT_CORPUS();
  size_t round_tripped = 0;
  for (const fs::path& path : corpus_files()) {
    SCOPED_TRACE(path.string());
    ConformanceTest t = read_conformance_file(path.string());
    ASSERT_TRUE(t.asm_program);
    std::string text = disassemble(*t.asm_program);
    Program again = assemble(text, path.string() + " (disassembled)");
    EXPECT_EQ(encode(again), encode(*t.asm_program)) << text;
    EXPECT_EQ(disassemble(again), text);
    ++round_tripped;
  }
  EXPECT_EQ(round_tripped, 313u);
}

TEST(Corpus, LddwRawSectionEqualsItsAsm) {
  SKIP_WITHOUT_CORPUS();
  ConformanceTest t = read_conformance_file(SB_CONFORMANCE_DIR "/lddw.data");
  ASSERT_TRUE(t.asm_program);
  ASSERT_EQ(t.program.insns.size(), 3u);
  EXPECT_EQ(t.program.insns, t.asm_program->insns);
  EXPECT_EQ(to_word(t.program.insns[0]), 0x5566778800000018u);
  EXPECT_EQ(t.result, 0x1122334455667788u);
}

TEST(Corpus, CallxAndLocalCallsEncodeAsExpected) {
  SKIP_WITHOUT_CORPUS();
  Program callx = read_conformance_file(SB_CONFORMANCE_DIR "/callx.data").program;
  EXPECT_EQ(callx.insns[2], I(0x8d, 2));  // register in dst, imm 0
  Program local = read_conformance_file(SB_CONFORMANCE_DIR "/call_local.data").program;
  EXPECT_EQ(function_starts(local), (std::vector<size_t>{0, 20}));
}

}  // namespace
}  // namespace sb::bpf
