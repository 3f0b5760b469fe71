// The hardening modes (ir/harden.h, runtime/exec/hardening.h) on every engine:
// bounds checks let valid accesses through and end invalid ones with the
// same error everywhere; constant blinding keeps results and hides every
// immediate from the machine code; a time budget stops a program that
// does not end.
#include <cerrno>
#include <set>
#include <regex>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "backends/compile.h"
#include "frontend/assembler.h"
#include "ir/diag.h"
#include "ir/harden.h"
#include "runtime/helpers/std_helpers.h"
#include "test/engines.h"

namespace sb::test {
namespace {

rt::RunOptions bounds() {
  rt::RunOptions o;
  o.safety.bounds_check = true;
  return o;
}

// Runs `source` on every engine with `opts` over a copy of `mem`; returns
// each engine's r0 or error text.
std::vector<std::pair<std::string, std::string>> run_all(const std::string& source, const rt::HelperTable& h,
                                                         std::vector<uint8_t>& mem, const rt::RunOptions& opts) {
  std::vector<std::pair<std::string, std::string>> out;
  const bpf::Program p = bpf::assemble(source, "prog");
  for (const Engine& e : engines()) {
    std::vector<uint8_t> m = mem;  // the same contents; addresses differ per copy
    try {
      out.emplace_back(e.name, fmt::format("{:#x}", e.run(p, h, m, opts)));
    } catch (const Error& err) {
      out.emplace_back(e.name, err.what());
    }
  }
  return out;
}

// Every engine must give `expected` (r0 in hex or an error text).
void expect_everywhere(const std::string& source, const std::string& expected, const rt::RunOptions& opts,
                       std::vector<uint8_t> mem = std::vector<uint8_t>(16, 0x11),
                       const rt::HelperTable& h = rt::HelperTable::conformance()) {
  for (const auto& [engine, got] : run_all(source, h, mem, opts)) EXPECT_EQ(got, expected) << engine << "\n" << source;
}

TEST(BoundsCheck, ValidAccessesPassOnEveryEngine) {
  // Memory at both ends, every size, and the stack: of the entry's frame
  // through r10 and through a copied pointer, and of a callee's frame
  // written through a pointer the callee got from its caller.
  const char* source =
      "ldxb %r0, [%r1]\n"
      "ldxdw %r3, [%r1+8]\n"
      "add %r0, %r3\n"
      "stxw [%r1+12], %r0\n"
      "ldxh %r3, [%r1+14]\n"
      "add %r0, %r3\n"
      "mov %r6, %r10\n"
      "add %r6, -512\n"
      "stdw [%r6], 5\n"
      "ldxdw %r3, [%r6]\n"
      "add %r0, %r3\n"
      "mov %r7, %r0\n"
      "mov %r1, %r10\n"
      "add %r1, -16\n"
      "call local f\n"
      "add %r0, %r7\n"
      "ldxdw %r3, [%r10-16]\n"
      "add %r0, %r3\n"
      "exit\n"
      "f:\n"
      "stdw [%r1], 100\n"
      "mov %r2, %r10\n"
      "add %r2, -8\n"
      "stdw [%r2], 1\n"
      "ldxdw %r0, [%r2]\n"
      "exit\n";
  // r0 = 0x11 + 0x1111111111111111, its low half stored at mem+12, whose
  // upper 16 bits are loaded back, + 5 (entry frame) + 1 (callee's result)
  // + 100 (written by the callee into the caller's frame).
  const uint64_t sum = 0x11 + 0x1111111111111111ull;
  const std::string expected = fmt::format("{:#x}", sum + (uint32_t(sum) >> 16) + 5 + 1 + 100);
  expect_everywhere(source, expected, rt::RunOptions{});
  expect_everywhere(source, expected, bounds());
}

struct Fault {
  const char* name;
  const char* source;
  int insn;        // the faulting instruction
  int64_t offset;  // address relative to the base named by `from`
  const char* from;
  int size;
};

// Accesses a step outside each region, named with the address.
const Fault kFaults[] = {
    {"past_memory_end", "ldxb %r0, [%r1+16]\nexit", 0, 16, "mem", 1},
    {"straddles_memory_end", "ldxdw %r0, [%r1+12]\nexit", 0, 12, "mem", 8},
    {"before_memory", "mov %r0, 0\nstxw [%r1-4], %r0\nexit", 1, -4, "mem", 4},
    {"null", "mov %r2, 0\nldxw %r0, [%r2+8]\nexit", 1, 8, "zero", 4},
    {"above_the_stack", "mov %r2, %r10\nldxdw %r0, [%r2+8]\nexit", 1, 8, "fp", 8},
    {"below_the_stack", "mov %r2, %r10\nstdw [%r2-520], 1\nmov %r0, 0\nexit", 1, -520, "fp", 8},
    {"atomic_past_end", "mov %r2, 1\nlock add32 [%r1+16], %r2\nmov %r0, 0\nexit", 1, 16, "mem", 4},
    {"wild_pointer", "lddw %r2, 0x123456789a\nldxb %r0, [%r2]\nexit", 2, 0x123456789a, "zero", 1},
};

class BoundsFaults : public testing::TestWithParam<Fault> {};

TEST_P(BoundsFaults, EndTheProgramNamingInstructionAndAddress) {
  const Fault& f = GetParam();
  const bpf::Program p = bpf::assemble(f.source, "prog");
  const rt::HelperTable h = rt::HelperTable::conformance();
  for (const Engine& e : engines()) {
    std::vector<uint8_t> mem(16, 0);
    const uint64_t base = std::string(f.from) == "mem" ? uint64_t(uintptr_t(mem.data())) : 0;
    try {
      e.run(p, h, mem, bounds());
      ADD_FAILURE() << e.name << ": no fault";
    } catch (const Error& err) {
      const std::string text = err.what();
      if (std::string(f.from) == "fp") {  // r10 differs per engine: check the shape
        EXPECT_TRUE(std::regex_match(text, std::regex(fmt::format(
                        "prog: instruction {}: out-of-bounds access of {} bytes at 0x[0-9a-f]+", f.insn, f.size))))
            << e.name << ": " << text;
      } else {
        EXPECT_EQ(text, fmt::format("prog: instruction {}: out-of-bounds access of {} bytes at {:#x}", f.insn, f.size,
                                    base + uint64_t(f.offset)))
            << e.name;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Accesses, BoundsFaults, testing::ValuesIn(kFaults),
                         [](const testing::TestParamInfo<Fault>& i) { return std::string(i.param.name); });

// Map values are reachable through the helper context's host ranges; past
// the map's storage is not.
TEST(BoundsCheck, MapValuesAreReachableAndTheirEndIsNot) {
  rt::Environment env;
  rt::Map& map = env.create_map({"a", uint32_t(rt::MapType::Array), 4, 8, 4, 0, 0});
  rt::HelperTable h = rt::standard_helpers(env);
  auto program = [&](int64_t off) {
    return fmt::format(
        "lddw %r1, {:#x}\n"
        "mov %r2, %r10\nadd %r2, -8\nstdw [%r2], 2\n"
        "call 1\n"
        "jeq %r0, 0, +5\n"
        "stdw [%r0], 40\n"
        "ldxdw %r3, [%r0]\n"
        "ldxdw %r4, [%r0+{}]\n"  // the second access of the same range hits the cache
        "mov %r0, %r3\n"
        "add %r0, 2\n"
        "exit\n",
        map.handle(), off);
  };
  std::vector<uint8_t> mem;
  expect_everywhere(program(0), "0x2a", bounds(), mem, h);
  // Storage is whole pages: a page past the value is outside every range.
  const uint64_t value = uint64_t(uintptr_t(map.lookup(std::array<uint8_t, 4>{2, 0, 0, 0}.data())));
  expect_everywhere(program(4096), fmt::format("prog: instruction 9: out-of-bounds access of 8 bytes at {:#x}", value + 4096),
                    bounds(), mem, h);
}

// A verified program keeps runtime checks only where the proof does not
// cover an access: raw memory (r1) is checked, the stack through a copy of
// r10 and the map value are not; the results are the same everywhere.
TEST(BoundsCheck, ProvenAccessesKeepNoCheck) {
  rt::Environment env;
  rt::Map& map = env.create_map({"a", uint32_t(rt::MapType::Array), 4, 8, 4, 0, 0});
  const rt::HelperTable h = rt::with_hardening_helpers(rt::standard_helpers(env));
  const std::string src = fmt::format(
      "ldxb %r6, [%r1+0]\n"
      "lddw %r1, {:#x}\n"
      "mov %r2, %r10\nadd %r2, -8\nstdw [%r2], 2\n"
      "call 1\n"
      "jeq %r0, 0, +4\n"
      "stdw [%r0], 40\n"
      "ldxdw %r3, [%r0]\n"
      "mov %r0, %r3\n"
      "add %r0, 2\n"
      "exit\n",
      map.handle());
  auto checks = [&](bool verify) {
    CompileOptions o;
    o.harden.bounds_check = true;
    o.verify = verify;
    const Compilation c = compile(bpf::assemble(src, "prog"), h, o);
    size_t n = 0;
    for (const ir::Function& f : c.ir.functions)
      for (const ir::Inst& i : f.code) n += i.op == ir::Op::Call && i.target == ir::kCheckAccessHelper;
    return n;
  };
  EXPECT_EQ(checks(false), 4u);  // r1, the stack through r2, the map value twice
  EXPECT_EQ(checks(true), 1u);   // r1
  rt::RunOptions verified = bounds();
  verified.safety.verify = true;
  std::vector<uint8_t> mem(8);
  expect_everywhere(src, "0x2a", verified, mem, rt::standard_helpers(env));
}

// Helpers check their pointer arguments as the program's own accesses are
// checked: a wild key, value or destination is refused, never followed.
TEST(BoundsCheck, HelpersRefuseWildPointerArguments) {
  rt::Environment env;
  rt::Map& map = env.create_map({"a", uint32_t(rt::MapType::Array), 4, 8, 4, 0, 0});
  rt::HelperTable h = rt::standard_helpers(env);
  auto with = [&](const char* call) {
    return fmt::format("lddw %r1, {:#x}\nlddw %r2, 0x123456789000\nmov %r3, %r2\n{}\nexit\n", map.handle(), call);
  };
  std::vector<uint8_t> mem(8, 0);
  expect_everywhere(with("call 1"), "0x0", bounds(), mem, h);                               // lookup: null
  expect_everywhere(with("call 2"), fmt::format("{:#x}", uint64_t(-EFAULT)), bounds(), mem, h);  // update
  expect_everywhere(with("call 3"), fmt::format("{:#x}", uint64_t(-EFAULT)), bounds(), mem, h);  // delete
  // probe_read(dst = wild, 8, src = the map handle's own bytes)
  expect_everywhere("lddw %r1, 0x123456789000\nmov %r2, 8\nmov %r3, %r10\nadd %r3, -8\ncall 4\nexit\n",
                    fmt::format("{:#x}", uint64_t(-EFAULT)), bounds(), mem, h);
  // A valid key on the stack still works.
  expect_everywhere(fmt::format("lddw %r1, {:#x}\nmov %r2, %r10\nadd %r2, -8\nstdw [%r2], 1\ncall 1\n"
                                "jeq %r0, 0, +1\nmov %r0, 7\nexit\n",
                                map.handle()),
                    "0x7", bounds(), mem, h);
}

// --- constant blinding ---

const char* kImmediates =
    "mov %r0, 0x3c9a5e17\n"
    "ldxw %r4, [%r1]\n"
    "add %r0, %r4\n"  // r0 is no longer a known constant: the passes fold no immediates
    "add %r0, 0x2b4d6f81\n"
    "xor32 %r0, 0x1f2e3d4c\n"
    "stw [%r1], 0x4a5b6c7d\n"
    "ldxw %r2, [%r1]\n"
    "add %r0, %r2\n"
    "jgt %r0, 0x51627384, +1\n"
    "add %r0, 1\n"
    "lddw %r3, 0x0a1b2c3d4e5f6a7b\n"
    "add %r0, %r3\n"
    "exit\n";

std::string with_other_immediates(std::string s) {
  for (auto [from, to] : std::initializer_list<std::pair<const char*, const char*>>{
           {"0x3c9a5e17", "0x1"}, {"0x2b4d6f81", "0x2"}, {"0x1f2e3d4c", "0x3"},
           {"0x4a5b6c7d", "0x4"}, {"0x51627384", "0x5"}, {"0x0a1b2c3d4e5f6a7b", "0x6"}})
    s.replace(s.find(from), std::string(from).size(), to);
  return s;
}

// The immediate operands of a disassembly (numbers in any base, not the
// digits of register names) of magnitude 256 or more: smaller ones (shift
// amounts, 8-bit chunks) carry no payload worth hiding, and occur in any
// constant's materialization.
std::set<std::string> tokens(const std::string& text) {
  std::set<std::string> out;
  static const std::regex number("(?:^|[\\s,(#$])(-?(0x[0-9a-f]+|[0-9]+))\\b");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), number); it != std::sregex_iterator(); ++it) {
    const std::string t = (*it)[1];
    const bool neg = t[0] == '-';
    const uint64_t v = std::stoull(t.substr(neg ? 1 : 0), nullptr, 0);
    if (v >= 256) out.insert(t);
  }
  return out;
}

std::string disassembly(const bpf::Program& p, Arch arch, bool blind) {
  CompileOptions o;
  o.arch = arch;
  o.output = mc::OutputKind::Asm;
  o.harden.blind_constants = blind;
  o.harden.blind_seed = 42;
  o.helper_address = [](uint32_t) { return uint64_t(0x1000); };
  return compile(p, rt::HelperTable::conformance(), o).image.asm_text;
}

class Blinding : public testing::TestWithParam<const backend::TargetDesc*> {};

// What the user's immediates put into the code: the tokens of the program's
// disassembly that change when only the immediates change. Each backend
// materializes constants its own way (x86 imm32, arm64 movz/movk halves,
// riscv lui/addi parts); this finds them all without knowing how.
TEST_P(Blinding, NoImmediateAppearsInTheCode) {
  const Arch arch = GetParam()->arch;
  const bpf::Program p = bpf::assemble(kImmediates, "imm");
  const bpf::Program other = bpf::assemble(with_other_immediates(kImmediates), "imm");
  std::set<std::string> derived;
  const std::set<std::string> baseline = tokens(disassembly(other, arch, false));
  for (const std::string& t : tokens(disassembly(p, arch, false)))
    if (!baseline.count(t)) derived.insert(t);
  ASSERT_GE(derived.size(), 6u) << "the test's immediates should show in plain code";
  const std::string blinded = disassembly(p, arch, true);
  const std::set<std::string> blinded_tokens = tokens(blinded);
  for (const std::string& t : derived) EXPECT_FALSE(blinded_tokens.count(t)) << t << " in\n" << blinded;

  if (arch == Arch::X86_64) {  // and no immediate's bytes anywhere in the machine code
    CompileOptions o;
    o.harden.blind_constants = true;
    const std::vector<uint8_t> code = compile(p, rt::HelperTable::conformance(), o).image.text;
    for (uint32_t imm : {0x3c9a5e17u, 0x2b4d6f81u, 0x1f2e3d4cu, 0x4a5b6c7du, 0x51627384u, 0x4e5f6a7bu, 0x0a1b2c3du}) {
      const uint8_t le[4] = {uint8_t(imm), uint8_t(imm >> 8), uint8_t(imm >> 16), uint8_t(imm >> 24)};
      EXPECT_EQ(std::search(code.begin(), code.end(), le, le + 4), code.end()) << std::hex << imm;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, Blinding, testing::ValuesIn(backend::targets()),
                         [](const testing::TestParamInfo<const backend::TargetDesc*>& i) {
                           std::string n = i.param->name;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(Blinding, KeepsResultsAndDiffersPerCompile) {
  rt::RunOptions blind;
  blind.safety.blind_constants = true;
  std::vector<uint8_t> mem(8, 0);
  std::set<std::string> results;
  for (const auto& [engine, got] : run_all(kImmediates, rt::HelperTable::conformance(), mem, blind))
    results.insert(got);
  mem.assign(8, 0);
  for (const auto& [engine, got] : run_all(kImmediates, rt::HelperTable::conformance(), mem, {}))
    results.insert(got);
  EXPECT_EQ(results.size(), 1u) << *results.begin();
  // A fresh seed per compile: two compiles differ.
  const bpf::Program p = bpf::assemble(kImmediates, "imm");
  CompileOptions o;
  o.harden.blind_constants = true;
  EXPECT_NE(compile(p, rt::HelperTable::conformance(), o).image.text,
            compile(p, rt::HelperTable::conformance(), o).image.text);
}

// --- time budget ---

TEST(TimeBudget, StopsAnEndlessLoopOnEveryEngine) {
  rt::RunOptions o;
  o.safety.time_budget_ns = 20'000'000;  // 20 ms
  o.insn_budget = ~0ull;                 // the emulator's instruction budget must not end it first
  expect_everywhere("mov %r0, 0\nadd %r0, 1\nja -2\nexit", "prog: instruction 2: time budget of 20000 us exhausted", o);
}

TEST(TimeBudget, LetsAProgramThatEndsInTimeFinish) {
  rt::RunOptions o;
  o.safety.time_budget_ns = 5'000'000'000;
  o.safety.bounds_check = true;
  expect_everywhere("mov %r0, 0\nmov %r1, 1000\nadd %r0, 3\nsub %r1, 1\njne %r1, 0, -3\nexit", "0xbb8", o);
}

TEST(Hardening, ReservedHelpersAreNotCallableFromBytecode) {
  const bpf::Program p = bpf::assemble(fmt::format("call {}\nexit", ir::kCheckAccessHelper), "prog");
  for (const Engine& e : engines()) {
    std::vector<uint8_t> mem;
    EXPECT_THROW(e.run(p, rt::HelperTable::conformance(), mem, bounds()), Error) << e.name;
  }
}

}  // namespace
}  // namespace sb::test
