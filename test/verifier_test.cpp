// The BPF verifier (frontend/verifier/): every program the project runs
// verifies (the conformance corpus, the C test programs, the benchmark
// programs), and one focused refusal per rule, asserting the message.
#include <deque>
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "frontend/assembler.h"
#include "frontend/conformance_file.h"
#include "frontend/elf_loader.h"
#include "frontend/progtypes/program_type.h"
#include "frontend/progtypes/xdp.h"
#include "frontend/validator.h"
#include "frontend/verifier/verifier.h"
#include "ir/diag.h"
#include "runtime/exec/engines.h"
#include "runtime/exec/interpreter.h"
#include "runtime/helpers/std_helpers.h"
#include "runtime/maps/maps.h"
#include "test/corpus.h"

namespace sb::test {
namespace {

namespace fs = std::filesystem;
using bpf::verifier::VerifyOptions;
using bpf::verifier::VerifyResult;

// The conformance suite's helper table: helper 5 "unwind".
VerifyOptions conformance_options() {
  VerifyOptions o;
  o.helper = [](uint32_t id) -> bpf::verifier::HelperInfo {
    if (id == 5) return {true, &bpf::verifier::unwind_helper_proto()};
    return {};
  };
  return o;
}

// ELF objects: maps get distinct fake addresses (the verifier reads the
// program's MapUse records, not the addresses).
bpf::ElfProgram load(const std::string& path, const bpf::ElfSelection& which) {
  uint64_t next = 0x10000;
  return bpf::read_elf_file(path, which, [&](const bpf::MapDef&) {
    next += 0x1000;
    return bpf::MapAddress{next, next + 0x800};
  });
}

// The verbose log's last lines for a program that fails (to read the
// state that led to the refusal).
std::string log_tail(const bpf::Program& p, VerifyOptions o, size_t lines = 40) {
  std::deque<std::string> tail;
  o.log = [&](const std::string& line) {
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  };
  try {
    bpf::verifier::verify(p, o);
  } catch (const Error&) {
  }
  std::string out;
  for (const std::string& l : tail) out += l + "\n";
  return out;
}

TEST(VerifierCorpus, ConformanceProgramsVerify) {
  const std::vector<std::string> files = conformance_files();
  if (files.empty()) GTEST_SKIP() << "no conformance corpus at " << SB_CONFORMANCE_DIR;
  size_t verified = 0;
  for (const std::string& f : files) {
    bpf::ConformanceTest t = bpf::read_conformance_file(f);
    if (t.skipped) continue;
    bpf::validate(t.program);
    try {
      bpf::verifier::verify(t.program, conformance_options());
      ++verified;
    } catch (const Error& e) {
      ADD_FAILURE() << e.what();
    }
  }
  EXPECT_GT(verified, 100u);
}

struct ElfCase {
  const char* dir;  // "programs" (test/programs) or "bench"
  const char* object;
  bpf::ElfSelection which;
};

const ElfCase kElfCases[] = {
    {"programs", "packet", {"xdp", ""}},          {"programs", "fnv", {"socket/fnv64", ""}},
    {"programs", "fnv", {"", "fnv1a32"}},         {"programs", "counters", {}},
    {"programs", "ringbuf", {}},                  {"programs", "subprog", {"xdp", "chain"}},
    {"programs", "globals", {}},                  {"programs", "legacy", {}},
    {"programs", "multi", {"xdp", "read_pointer"}}, {"programs", "multi", {"", "random_pair"}},
    {"programs", "multi", {"tc", ""}},            /* multi.o twice: a pointer shifted, refused (VerifierRejects.PointerShift) */
    {"programs", "tailcall", {"xdp", ""}},        {"bench", "sum", {"socket", ""}},
    {"bench", "fnv", {"socket", ""}},             {"bench", "crc32", {"socket", ""}},
    {"bench", "collatz", {"socket", ""}},         {"bench", "sort", {"socket", ""}},
    {"bench", "bits", {"socket", ""}},            {"bench", "parser", {"socket", ""}},
    {"bench", "copy", {"socket", ""}},            {"bench", "sum", {"xdp", ""}},
    {"bench", "parser", {"xdp", ""}},             {"bench", "copy", {"xdp", ""}},
};

TEST(VerifierCorpus, ElfProgramsVerify) {
  if (!SB_BPF_HAVE_CLANG) GTEST_SKIP() << "no BPF clang found";
  for (const ElfCase& c : kElfCases) {
    // SB_VERIFIER_ONLY=NAME: only the objects called NAME (with SB_VERIFIER_TRACE).
    if (getenv("SB_VERIFIER_ONLY") && std::string(getenv("SB_VERIFIER_ONLY")) != c.object) continue;
    const bool bench = std::string(c.dir) == "bench";
    if (bench && !SB_HAVE_BENCHMARKS) continue;  // SPRINGBOARD_BENCHMARKS=OFF: no objects
    const std::string dir = bench ? SB_BENCH_PROGRAMS : SB_BPF_PROGRAMS;
    const std::string path = dir + "/" + c.object + ".o";
    SCOPED_TRACE(path + " " + c.which.section + " " + c.which.function);
    bpf::ElfProgram p = load(path, c.which);
    bpf::validate(p.program);
    try {
      VerifyOptions o;
      // SB_VERIFIER_TRACE=FILE: the verbose log of every program, appended to FILE.
      FILE* trace = getenv("SB_VERIFIER_TRACE") ? fopen(getenv("SB_VERIFIER_TRACE"), "a") : nullptr;
      if (trace) o.log = [trace](const std::string& l) { fprintf(trace, "%s\n", l.c_str()); };
      VerifyResult r = bpf::verifier::verify(p.program, o);
      if (trace) fclose(trace);
      EXPECT_GT(r.insns_processed, 0u);
      printf("%s %s%s: %zu insns, %llu processed, %llu states\n", c.object, c.which.section.c_str(),
             c.which.function.c_str(), p.program.insns.size(), (unsigned long long)r.insns_processed,
             (unsigned long long)r.states_stored);
    } catch (const Error& e) {
      ADD_FAILURE() << e.what() << "\n" << log_tail(p.program, {});
    }
  }
}

// --- one refusal per rule ------------------------------------------------

// A test program type with a context like xdp_md: packet pointers at 0, 4
// and 8, two read-only numbers, a writable one; return values [0, 4].
constexpr bpf::CtxField kTestFields[] = {
    {.name = "data", .offset = 0, .size = 4, .narrow = false, .value = bpf::CtxValue::PacketData},
    {.name = "data_end", .offset = 4, .size = 4, .narrow = false, .value = bpf::CtxValue::PacketEnd},
    {.name = "data_meta", .offset = 8, .size = 4, .narrow = false, .value = bpf::CtxValue::PacketMeta},
    {.name = "ingress_ifindex", .offset = 12, .size = 4},
    {.name = "mark", .offset = 16, .size = 4, .write = true},
};
constexpr bpf::ProgramType kTestXdp{.name = "testxdp",
                                    .kernel_type = 6,
                                    .ctx = {.size = 20, .fields = kTestFields, .btf_name = "test_md"},
                                    .direct_packet_access = true,
                                    .ret_range = std::pair<int64_t, int64_t>{0, 4}};

// Map uses for hand-written programs: `lddw %rN, 0` at the given
// instructions names these maps.
bpf::MapUse array_map(size_t insn, uint32_t value_size = 8) { return {insn, "arr", 2, 4, value_size, 4, false, 0}; }
bpf::MapUse ringbuf_map(size_t insn) { return {insn, "rb", 27, 0, 0, 4096, false, 0}; }
bpf::MapUse prog_array(size_t insn) { return {insn, "progs", 3, 4, 4, 4, false, 0}; }

bpf::Program program(std::string_view src, std::vector<bpf::MapUse> maps = {}) {
  bpf::Program p = bpf::assemble(src, "t.s");
  p.maps = std::move(maps);
  bpf::validate(p);
  return p;
}

// The verifier's refusal of `src`: where and what, or "accepted".
std::string refusal(const bpf::Program& p, const bpf::ProgramType* type = nullptr, uint64_t limit = 0) {
  VerifyOptions o;
  o.type = type;
  if (limit) o.complexity_limit = limit;
  try {
    bpf::verifier::verify(p, o);
    return "accepted";
  } catch (const Error& e) {
    return e.where() + ": " + e.message();
  }
}
std::string refusal(std::string_view src, std::vector<bpf::MapUse> maps = {}, const bpf::ProgramType* type = nullptr) {
  return refusal(program(src, std::move(maps)), type);
}

// A lookup in array map `arr` with key 0 from fp-4, r0 = the nullable value.
constexpr const char* kLookup =
    "stw [%r10-4], 0\n"
    "mov %r2, %r10\n"
    "add %r2, -4\n"
    "lddw %r1, 0\n"
    "call 1\n";  // lookup at 5, next instruction 6

TEST(VerifierRejects, UnsetRegister) {
  EXPECT_EQ(refusal("mov %r0, %r3\nexit"), "t.s: raw: instruction 0: R3 !read_ok");
  EXPECT_EQ(refusal("exit"), "t.s: raw: instruction 0: R0 !read_ok");
}

// A pointer moved by INT64_MIN or INT64_MAX: the new offset is computed
// without signed overflow (UBSan found 0 - INT64_MIN in fuzz_verifier), and
// a move that large is refused on a checked pointer, as by the kernel.
TEST(VerifierRejects, PointerMovedByTheExtremes) {
  for (const char* op : {"sub", "add"})
    for (const char* c : {"0x8000000000000000", "0x7fffffffffffffff"}) {
      SCOPED_TRACE(std::string(op) + " " + c);
      const std::string raw = fmt::format("lddw %r2, {}\n{} %r1, %r2\nmov %r0, 0\nexit", c, op);
      EXPECT_EQ(refusal(raw), "accepted") << "raw memory pointers are not bounded until used";
      const std::string stack = fmt::format("mov %r1, %r10\nlddw %r2, {}\n{} %r1, %r2\nmov %r0, 0\nexit", c, op);
      EXPECT_NE(refusal(stack), "accepted");
    }
}

TEST(VerifierRejects, UnwrittenStack) {
  EXPECT_EQ(refusal("ldxdw %r0, [%r10-8]\nexit"),
            "t.s: raw: instruction 0: invalid read from stack R10 off -8+0 size 8 (stack byte fp-8 not written)");
  // A spill keeps the register: a pointer comes back as a pointer.
  EXPECT_EQ(refusal("stxdw [%r10-8], %r1\nldxdw %r3, [%r10-8]\nldxb %r0, [%r3]\nexit"), "accepted");
  // Part of a slot written: the rest is still unwritten.
  EXPECT_EQ(refusal("stw [%r10-8], 1\nldxdw %r0, [%r10-8]\nexit"),
            "t.s: raw: instruction 1: invalid read from stack R10 off -8+4 size 8 (stack byte fp-4 not written)");
}

TEST(VerifierRejects, StackBoundsAndAlignment) {
  EXPECT_EQ(refusal("stdw [%r10-520], 1\nmov %r0, 0\nexit"),
            "t.s: raw: instruction 0: invalid write to stack R10 off=-520 size=8");
  EXPECT_EQ(refusal("stdw [%r10+0], 1\nmov %r0, 0\nexit"),
            "t.s: raw: instruction 0: invalid write to stack R10 off=0 size=8");
  EXPECT_EQ(refusal("stw [%r10-6], 1\nmov %r0, 0\nexit"),
            "t.s: raw: instruction 0: misaligned stack access off (0x0; 0x0)+0+-6 size 4");
}

TEST(VerifierRejects, VariableStackOffset) {
  // r2 in [0, 8]: fp-16 + r2 reads bytes [-16, -0) of which [-16, -8) written.
  const char* src =
      "stdw [%r10-16], 0\n"
      "and %r2, 8\n"
      "mov %r3, %r10\n"
      "add %r3, -16\n"
      "add %r3, %r2\n"
      "ldxdw %r0, [%r3]\n"
      "exit";
  EXPECT_EQ(refusal(src),
            "t.s: raw: instruction 5: invalid read from stack R3 off -16+8 size 8 (stack byte fp-8 not written)");
  EXPECT_EQ(refusal(std::string("stdw [%r10-8], 0\n") + src), "accepted");
}

TEST(VerifierRejects, FramePointerIsReadOnly) {
  // The validator refuses the write before the verifier runs.
  EXPECT_THROW(program("mov %r10, 0\nexit"), Error);
}

TEST(VerifierRejects, ScalarDereference) {
  EXPECT_EQ(refusal("mov %r1, 0\nldxdw %r0, [%r1]\nexit"), "t.s: raw: instruction 1: R1 invalid mem access 'scalar'");
}

TEST(VerifierRejects, PointerArithmetic) {
  EXPECT_EQ(refusal("lddw %r1, 0\nadd %r1, 8\nmov %r0, 0\nexit", {array_map(0)}),
            "t.s: raw: instruction 2: R1 pointer arithmetic on map_ptr prohibited");
  EXPECT_EQ(refusal("mov %r0, %r10\nand %r0, 7\nexit"),
            "t.s: raw: instruction 1: R0 bitwise operator &= on pointer prohibited");
  EXPECT_EQ(refusal("mov %r0, %r10\nadd32 %r0, 1\nexit"),
            "t.s: raw: instruction 1: R0 32-bit pointer arithmetic prohibited");
  EXPECT_EQ(refusal("mov %r0, 1\nsub %r0, %r10\nexit"),
            "t.s: raw: instruction 1: R0 tried to subtract pointer from scalar");
  // multi.o's `twice` run as an entry doubles its memory pointer (test/programs/multi.c).
  EXPECT_EQ(refusal("mov %r0, %r1\nlsh %r0, 1\nexit"),
            "t.s: raw: instruction 1: R0 pointer arithmetic with <<= operator prohibited");
  // The difference of two pointers is a number (allowed to a privileged program, as in the kernel).
  EXPECT_EQ(refusal("mov %r0, %r10\nsub %r0, %r1\nexit"), "accepted");
}

TEST(VerifierRejects, NullCheckFirst) {
  const std::string lookup = kLookup;
  EXPECT_EQ(refusal(lookup + "ldxdw %r0, [%r0]\nexit", {array_map(3)}),
            "t.s: raw: instruction 6: R0 invalid mem access 'map_value_or_null'");
  EXPECT_EQ(refusal(lookup + "add %r0, 8\nexit", {array_map(3)}),
            "t.s: raw: instruction 6: R0 pointer arithmetic on map_value_or_null prohibited, null-check it first");
  // The null branch has r0 = 0: a number.
  EXPECT_EQ(refusal(lookup + "jne %r0, 0, +1\nldxdw %r0, [%r0]\nmov %r0, 0\nexit", {array_map(3)}),
            "t.s: raw: instruction 7: R0 invalid mem access 'scalar'");
  // A copy shares the check (ids shared by copies), on the other edge too.
  EXPECT_EQ(refusal(lookup + "mov %r6, %r0\njeq %r6, 0, +1\nldxdw %r0, [%r0]\nmov %r0, 0\nexit", {array_map(3)}),
            "accepted");
}

TEST(VerifierRejects, MapValueBounds) {
  const std::string lookup = std::string(kLookup) + "jeq %r0, 0, +1\n";
  EXPECT_EQ(refusal(lookup + "ldxdw %r0, [%r0+8]\nmov %r0, 0\nexit", {array_map(3)}),
            "t.s: raw: instruction 7: invalid access to map value, value_size=8 off=8 size=8");
  EXPECT_EQ(refusal(lookup + "ldxw %r0, [%r0+4]\nmov %r0, 0\nexit", {array_map(3)}), "accepted");
  // An index the program never bounded, and one that may be negative.
  EXPECT_EQ(refusal("mov %r6, %r2\n" + lookup + "add %r0, %r6\nldxb %r0, [%r0]\nmov %r0, 0\nexit", {array_map(4)}),
            "t.s: raw: instruction 8: math between map_value pointer and register with unbounded min value is not "
            "allowed");
  EXPECT_EQ(refusal("mov %r6, %r2\nand %r6, 7\nsub %r6, 4\n" + lookup + "add %r0, %r6\nldxb %r0, [%r0]\nmov %r0, 0\nexit",
                    {array_map(6)}),
            "t.s: raw: instruction 11: R0 min value is negative, either use unsigned index or do a if (index >=0) check.");
}

TEST(VerifierRejects, SignedBranchRefinement) {
  // r6 s<= 7 alone leaves it unbounded below; with r6 s>= 0 too it indexes an 8-byte value.
  const std::string lookup = std::string(kLookup) + "jeq %r0, 0, out\n";
  const std::string use = "add %r0, %r6\nldxb %r0, [%r0]\nout:\nmov %r0, 0\nexit";
  EXPECT_EQ(refusal("mov %r6, %r2\njsgt %r6, 7, out\n" + lookup + use, {array_map(5)}),
            "t.s: raw: instruction 9: math between map_value pointer and register with unbounded min value is not "
            "allowed");
  EXPECT_EQ(refusal("mov %r6, %r2\njsgt %r6, 7, out\njslt %r6, 0, out\n" + lookup + use, {array_map(6)}), "accepted");
  // The other edges: r6 s> 7 is out of the value.
  EXPECT_EQ(refusal("mov %r6, %r2\njsle %r6, 7, out\njsgt %r6, 100, out\n" + lookup + use, {array_map(6)}),
            "t.s: raw: instruction 11: invalid access to map value, value_size=8 off=100 size=1 (R0 var_off=(0x0; "
            "0x7f), smin=8, umax=100)");
  // The same bound on the low 32 bits (jmp32) of a zero-extended mov32.
  EXPECT_EQ(refusal("mov32 %r6, %r2\njgt32 %r6, 7, out\n" + lookup + use, {array_map(5)}), "accepted");
}

// Pruning: a state whose bound came from a linked copy (r1 = r6, then a
// branch on r1 bounds r6 too) does not stand for one where the copy was
// unlinked (r1 += 0): the second path reaches the access unbounded.
TEST(VerifierRejects, LinkedScalarsStayLinkedForPruning) {
  const char* src =
      "stw [%r10-4], 0\nmov %r6, %r2\nand %r6, 255\njeq %r2, 0, b\nmov %r1, %r6\nja p\n"
      "b:\nmov %r1, %r6\nadd %r1, 0\n"
      "p:\njgt %r1, 7, out\nmov %r2, %r10\nadd %r2, -4\nlddw %r1, 0\ncall 1\njeq %r0, 0, out\n"
      "add %r0, %r6\nldxb %r0, [%r0]\nout:\nmov %r0, 0\nexit";
  const std::string r = refusal(src, {array_map(11)});
  EXPECT_EQ(r.substr(0, r.find(',')), "t.s: raw: instruction 16: invalid access to map value") << r;
}

TEST(VerifierRejects, PacketRange) {
  // r2 = data, r3 = data_end; reading 2 bytes at data + 14.
  const char* load = "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\n";
  EXPECT_EQ(refusal(std::string(load) + "ldxh %r0, [%r2+14]\nmov %r0, 0\nexit", {}, &kTestXdp),
            "t.s: testxdp: instruction 2: R2 invalid access to packet, off=14 size=2, R2 range=0 (compare with "
            "data_end first)");
  const std::string checked = std::string(load) + "mov %r0, 0\nmov %r4, %r2\nadd %r4, 16\n";  // r4 = data + 16
  // data + 16 > data_end: the fall-through edge has 16 bytes, the taken one none.
  EXPECT_EQ(refusal(checked + "jgt %r4, %r3, out\nldxh %r0, [%r2+14]\nmov %r0, 0\nout:\nexit", {}, &kTestXdp),
            "accepted");
  EXPECT_EQ(refusal(checked + "jgt %r4, %r3, bad\nexit\nbad:\nldxh %r0, [%r2+14]\nmov %r0, 0\nexit", {}, &kTestXdp),
            "t.s: testxdp: instruction 7: R2 invalid access to packet, off=14 size=2, R2 range=0 (compare with "
            "data_end first)");
  EXPECT_EQ(refusal(checked + "jle %r4, %r3, ok\nexit\nok:\nldxh %r0, [%r2+14]\nmov %r0, 0\nexit", {}, &kTestXdp),
            "accepted");
  // data_end >= data + 16, operands swapped: 16 bytes on the taken edge, not 17.
  EXPECT_EQ(refusal(checked + "jge %r3, %r4, ok\nexit\nok:\nldxh %r0, [%r2+15]\nmov %r0, 0\nexit", {}, &kTestXdp),
            "t.s: testxdp: instruction 7: R2 invalid access to packet, off=15 size=2, R2 range=16 (compare with "
            "data_end first)");
  EXPECT_EQ(refusal("ldxw %r3, [%r1+4]\nadd %r3, 1\nmov %r0, 0\nexit", {}, &kTestXdp),
            "t.s: testxdp: instruction 1: R3 pointer arithmetic on pkt_end prohibited");
}

TEST(VerifierRejects, ContextFields) {
  EXPECT_EQ(refusal("ldxw %r0, [%r1+20]\nexit", {}, &kTestXdp),
            "t.s: testxdp: instruction 0: invalid bpf_context access off=20 size=4");
  EXPECT_EQ(refusal("stw [%r1+12], 1\nmov %r0, 0\nexit", {}, &kTestXdp),
            "t.s: testxdp: instruction 0: invalid bpf_context access off=12 size=4 (field ingress_ifindex may not be "
            "written by testxdp programs)");
  EXPECT_EQ(refusal("ldxh %r0, [%r1+0]\nmov %r0, 0\nexit", {}, &kTestXdp),
            "t.s: testxdp: instruction 0: invalid bpf_context access off=0 size=2 (data is read as 4 bytes)");
  EXPECT_EQ(refusal("stw [%r1+16], 1\nldxb %r0, [%r1+13]\nmov %r0, 0\nexit", {}, &kTestXdp), "accepted");
  EXPECT_EQ(refusal("add %r1, 4\nldxw %r0, [%r1+0]\nexit", {}, &kTestXdp),
            "t.s: testxdp: instruction 1: dereference of modified ctx ptr R1 off=4 disallowed");
  EXPECT_EQ(refusal("mov %r2, 1\nlock add [%r1+16], %r2\nmov %r0, 0\nexit", {}, &kTestXdp),
            "t.s: testxdp: instruction 1: BPF_ATOMIC stores into R1 ctx is not allowed");
}

TEST(VerifierRejects, ReturnRange) {
  EXPECT_EQ(refusal("mov %r0, 7\nexit", {}, &kTestXdp),
            "t.s: testxdp: instruction 1: At program exit the register R0 has 7 should have been in [0, 4]");
  EXPECT_EQ(refusal("mov %r0, %r10\nexit", {}, &kTestXdp),
            "t.s: testxdp: instruction 1: At program exit the register R0 is not a known value (fp)");
  EXPECT_EQ(refusal("ldxw %r0, [%r1+12]\nand %r0, 3\nexit", {}, &kTestXdp), "accepted");
}

TEST(VerifierRejects, HelperArguments) {
  EXPECT_EQ(refusal("mov %r1, 0\nmov %r2, %r10\ncall 1\nexit"),
            "t.s: raw: instruction 2: R1 type=scalar expected=map_ptr (argument 1 of map_lookup_elem#1)");
  // The key is 4 unwritten bytes of stack.
  EXPECT_EQ(refusal("mov %r2, %r10\nadd %r2, -4\nlddw %r1, 0\ncall 1\nmov %r0, 0\nexit", {array_map(2)}),
            "t.s: raw: instruction 4: invalid indirect read from stack R2 off -4+0 size 4");
  EXPECT_EQ(refusal("lddw %r1, 0\nmov %r2, 8\nmov %r3, 0\ncall 1\nmov %r0, 0\nexit", {ringbuf_map(0)}),
            "t.s: raw: instruction 4: cannot pass map_type 27 into func map_lookup_elem#1");
  // probe_read's size must be bounded and fit the buffer.
  EXPECT_EQ(refusal("mov %r1, %r10\nadd %r1, -8\nmov %r3, 0\ncall 4\nmov %r0, 0\nexit"),
            "t.s: raw: instruction 3: R2 min value is negative, either use unsigned or 'var &= const'");
  EXPECT_EQ(refusal("mov %r1, %r10\nadd %r1, -8\nrsh %r2, 1\nmov %r3, 0\ncall 4\nmov %r0, 0\nexit"),
            "t.s: raw: instruction 4: R2 unbounded memory access, use 'var &= const' or 'if (var < const)'");
  EXPECT_EQ(refusal("mov %r1, %r10\nadd %r1, -8\nand %r2, 15\nmov %r3, 0\ncall 4\nmov %r0, 0\nexit"),
            "t.s: raw: instruction 4: invalid indirect access to stack R1 off=-8 size=15");
  EXPECT_EQ(refusal("mov %r1, %r10\nadd %r1, -8\nand %r2, 8\nmov %r3, 0\ncall 4\nldxdw %r0, [%r10-8]\nexit"),
            "accepted");
  VerifyOptions o;
  o.helper = [](uint32_t) { return bpf::verifier::HelperInfo{}; };
  EXPECT_THROW(bpf::verifier::verify(program("call 99\nexit"), o), Error);
  // callx takes the whole register: high bits are not a helper id (found
  // by fuzz_verifier: the low half was checked, and the run faulted).
  EXPECT_EQ(refusal("mov %r1, 1\nlddw %r5, 0xffffffff00000005\ncall %r5\nexit"),
            "t.s: raw: instruction 3: R5 callx target 0xffffffff00000005 is not a helper id");
  EXPECT_EQ(refusal("mov %r1, 1\nmov %r5, 5\ncall %r5\nexit"), "accepted");
}

TEST(VerifierRejects, RingbufRecordReleasedOnEveryPath) {
  const char* reserve = "lddw %r1, 0\nmov %r2, 16\nmov %r3, 0\ncall 131\n";
  EXPECT_EQ(refusal(std::string(reserve) + "mov %r0, 0\nexit", {ringbuf_map(0)}),
            "t.s: raw: instruction 6: Unreleased reference id=1 alloc_insn=4 (a ring-buffer record must be "
            "submitted or discarded on every path)");
  EXPECT_EQ(refusal(std::string(reserve) + "mov %r1, %r0\nmov %r2, 0\ncall 132\nmov %r0, 0\nexit", {ringbuf_map(0)}),
            "t.s: raw: instruction 7: R1 type=mem_or_null expected=ringbuf_mem (argument 1 of ringbuf_submit#132)");
  EXPECT_EQ(refusal(std::string(reserve) +
                        "jeq %r0, 0, +4\nstdw [%r0+8], 1\nmov %r1, %r0\nmov %r2, 0\ncall 132\nmov %r0, 0\nexit",
                    {ringbuf_map(0)}),
            "accepted");
  // Past the record's 16 bytes; and after submit the pointer is gone.
  EXPECT_EQ(refusal(std::string(reserve) +
                        "jeq %r0, 0, +4\nstdw [%r0+16], 1\nmov %r1, %r0\nmov %r2, 0\ncall 132\nmov %r0, 0\nexit",
                    {ringbuf_map(0)}),
            "t.s: raw: instruction 6: invalid access to memory, mem_size=16 off=16 size=8");
  EXPECT_EQ(refusal(std::string(reserve) +
                        "jeq %r0, 0, +4\nmov %r6, %r0\nmov %r1, %r0\nmov %r2, 0\ncall 133\nstdw [%r6+0], 1\n"
                        "mov %r0, 0\nexit",
                    {ringbuf_map(0)}),
            "t.s: raw: instruction 10: R6 invalid mem access 'scalar'");
}

TEST(VerifierRejects, TailCallWithReference) {
  EXPECT_EQ(refusal("mov %r6, %r1\nlddw %r1, 0\nmov %r2, 8\nmov %r3, 0\ncall 131\njeq %r0, 0, +9\nmov %r7, %r0\n"
                    "mov %r1, %r6\nlddw %r2, 0\nmov %r3, 0\ncall 12\nmov %r1, %r7\nmov %r2, 0\ncall 133\n"
                    "mov %r0, 0\nexit",
                    {ringbuf_map(1), prog_array(9)}),
            "t.s: raw: instruction 12: tail_call would lead to reference leak (reference id=1 acquired at insn 5)");
}

TEST(VerifierRejects, UnreachableInstruction) {
  EXPECT_EQ(refusal("mov %r0, 0\nexit\nmov %r0, 1\nexit"), "t.s: raw: instruction 2: unreachable insn 2");
}

TEST(VerifierRejects, Loops) {
  // Bounded: explored to the end.
  EXPECT_EQ(refusal("mov %r1, 0\nadd %r1, 1\njlt %r1, 100, -2\nmov %r0, %r1\nexit"), "accepted");
  // Back to the same state: no way out.
  EXPECT_EQ(refusal("mov %r0, 0\nl:\njeq %r0, 1, out\nja l\nout:\nexit"),
            "t.s: raw: instruction 1: infinite loop detected at insn 1");
  // A bound the verifier cannot see ends at the complexity limit.
  EXPECT_EQ(refusal(program("mov %r1, 0\nadd %r1, 1\njgt %r2, %r1, -2\nmov %r0, 0\nexit"), nullptr, 10000),
            "t.s: raw: instruction 2: BPF program is too large. Processed 10001 insn (the complexity limit is 10000)");
}

TEST(VerifierRejects, DivisionByConstantZero) {
  // The validator refuses an immediate zero divisor before the verifier runs.
  EXPECT_THROW(program("mov %r0, 1\ndiv %r0, 0\nexit"), Error);
}

TEST(VerifierRejects, LocalCalls) {
  // r1-r5 are clobbered by the call, r6-r9 kept; r0 is the result.
  EXPECT_EQ(refusal("mov %r6, 1\ncall local f\nadd %r0, %r6\nexit\nf:\nmov %r0, 2\nexit"), "accepted");
  EXPECT_EQ(refusal("mov %r3, 1\ncall local f\nmov %r0, %r3\nexit\nf:\nmov %r0, 2\nexit"),
            "t.s: raw: instruction 2: R3 !read_ok");
  EXPECT_EQ(refusal("call local f\nexit\nf:\nmov %r0, %r10\nexit"),
            "t.s: raw: instruction 3: cannot return stack pointer to the caller frame");
  // A pointer to the caller's stack may be passed down and written through.
  EXPECT_EQ(refusal("mov %r1, %r10\nadd %r1, -8\ncall local f\nldxdw %r0, [%r10-8]\nexit\nf:\nstdw [%r1+0], 3\n"
                    "mov %r0, 0\nexit"),
            "accepted");
  // 512 bytes in the caller and 8 in the callee: over the combined limit.
  EXPECT_EQ(refusal("stdw [%r10-512], 0\ncall local f\nexit\nf:\nstdw [%r10-8], 0\nmov %r0, 0\nexit"),
            "t.s: raw: instruction 1: combined stack size of the calls is 544. Too large (the limit is 512)");
}

// A global function (bpf::GlobalFunc; from BTF in an ELF object, by hand
// here): checked once on its own from its prototype, its calls checked
// against the prototype and not followed (test/progtypes/xdp_global.c has
// the same against the kernel).
bpf::Program with_global(std::string_view src, std::vector<bpf::GlobalFuncParam> params, bool scalar_result = true) {
  bpf::Program p = program(src);
  const std::vector<size_t> starts = bpf::function_starts(p);
  p.globals.push_back({starts.at(1), "g", std::move(params), scalar_result});
  return p;
}
const bpf::GlobalFuncParam kNumber{};
bpf::GlobalFuncParam pointer_to(uint32_t size, std::string pointee = "pair") {
  return {bpf::GlobalFuncParam::Kind::Pointer, std::move(pointee), size, "struct"};
}

TEST(VerifierGlobalFunctions, CheckedFromThePrototype) {
  // The caller learns nothing of the result: 2 here, some number there.
  const char* kResult = "call local g\njgt %r0, 4, +1\nexit\nmov %r0, 9\nexit\ng:\nmov %r0, 2\nexit";
  EXPECT_EQ(refusal(program(kResult), &kTestXdp), "accepted");  // followed: r0 is 2
  EXPECT_EQ(refusal(with_global(kResult, {}), &kTestXdp),
            "t.s: testxdp: instruction 4: At program exit the register R0 has 9 should have been in [0, 4]");
  // r1-r5 beyond the prototype's are unset in the function.
  EXPECT_EQ(refusal(with_global("mov %r1, 1\nmov %r2, 2\ncall local g\nexit\ng:\nmov %r0, %r2\nexit", {kNumber})),
            "t.s: raw: global function g(): instruction 4: R2 !read_ok");
  // A pointer argument may be null: checked before use.
  const std::string kDeref = "mov %r1, %r10\nadd %r1, -8\nstdw [%r10-8], 1\ncall local g\nexit\ng:\n";
  EXPECT_EQ(refusal(with_global(kDeref + "ldxdw %r0, [%r1]\nexit", {pointer_to(8)})),
            "t.s: raw: global function g(): instruction 5: R1 invalid mem access 'mem_or_null'");
  EXPECT_EQ(refusal(with_global(kDeref + "mov %r0, 0\njeq %r1, 0, +1\nldxdw %r0, [%r1]\nexit", {pointer_to(8)})),
            "accepted");
  // ... and inside the pointee's size.
  EXPECT_EQ(refusal(with_global(kDeref + "mov %r0, 0\njeq %r1, 0, +1\nldxdw %r0, [%r1+4]\nexit", {pointer_to(8)})),
            "t.s: raw: global function g(): instruction 7: invalid access to memory, mem_size=8 off=4 size=8");
  // The caller must pass that many written bytes: 16 here, 8 written.
  EXPECT_EQ(refusal(with_global(kDeref + "mov %r0, 0\nexit", {pointer_to(16)})),
            "t.s: raw: instruction 3: invalid indirect access to stack R1 off=-8 size=16; caller passes invalid "
            "args into func#1 (g)");
  // What the function may have written there is some number after.
  EXPECT_EQ(refusal(with_global("stdw [%r10-8], 1\nmov %r1, %r10\nadd %r1, -8\ncall local g\nldxdw %r0, [%r10-8]\n"
                                "jgt %r0, 4, +1\nexit\nmov %r0, 0\nexit\ng:\nmov %r0, 0\nexit",
                                {pointer_to(8)}),
                    &kTestXdp),
            "accepted");
  // A number where the prototype says a number; anything else refused at the call.
  EXPECT_EQ(refusal(with_global("mov %r1, %r10\ncall local g\nexit\ng:\nmov %r0, 0\nexit", {kNumber})),
            "t.s: raw: instruction 1: R1 is not a scalar; caller passes invalid args into func#1 (g)");
  // Prototypes the kernel does not take.
  EXPECT_EQ(refusal(with_global("call local g\nexit\ng:\nmov %r0, 0\nexit", {}, false)),
            "t.s: raw: global function g(): instruction 2: Global function g() doesn't return scalar. Only those "
            "are supported.");
  EXPECT_EQ(refusal(with_global("mov %r1, 0\ncall local g\nexit\ng:\nmov %r0, 0\nexit",
                                {{bpf::GlobalFuncParam::Kind::Pointer, "", std::nullopt, "void"}})),
            "t.s: raw: global function g(): instruction 3: arg#0 reference type('void ') size cannot be determined");
  EXPECT_EQ(refusal(with_global("mov %r1, 0\ncall local g\nexit\ng:\nmov %r0, 0\nexit",
                                {{bpf::GlobalFuncParam::Kind::Unsupported, "", std::nullopt, "float"}})),
            "t.s: raw: global function g(): instruction 3: Arg#0 type float in g() is not supported yet.");
  // A pointer to the type's context struct is the context, unmoved.
  const std::vector<bpf::GlobalFuncParam> ctx = {pointer_to(20, "test_md")};
  const char* kCtxCallee = "mov %r0, 0\nexit\ng:\nldxw %r0, [%r1+12]\nexit";
  EXPECT_EQ(refusal(with_global(std::string("call local g\n") + kCtxCallee, ctx), &kTestXdp), "accepted");
  EXPECT_EQ(refusal(with_global(std::string("add %r1, 4\ncall local g\n") + kCtxCallee, ctx), &kTestXdp),
            "t.s: testxdp: instruction 1: dereference of modified ctx ptr R1 off=4 disallowed; caller passes "
            "invalid args into func#1 (g)");
  EXPECT_EQ(refusal(with_global(std::string("mov %r1, %r10\ncall local g\n") + kCtxCallee, ctx), &kTestXdp),
            "t.s: testxdp: instruction 1: arg#0 expected pointer to ctx, but got fp; caller passes invalid args "
            "into func#1 (g)");
  // In a type whose context is another struct, the same pointer is memory.
  EXPECT_EQ(refusal(with_global(std::string("call local g\n") + kCtxCallee, ctx), &bpf::xdp_program_type()),
            "t.s: xdp: global function g(): instruction 3: R1 invalid mem access 'mem_or_null'");
}

TEST(VerifierRejects, RawMemoryIsCheckedAtRunTime) {
  // The raw type's r1: any offset, constant or variable, is left to the runtime.
  EXPECT_EQ(refusal("ldxdw %r0, [%r1+4096]\nadd %r1, %r2\nstxdw [%r1-8], %r0\nexit"), "accepted");
}

TEST(VerifierLog, PrintsStateBeforeEachInstruction) {
  std::vector<std::string> lines;
  VerifyOptions o;
  o.log = [&](const std::string& l) { lines.push_back(l); };
  VerifyResult r = bpf::verifier::verify(program("mov %r0, 1\nexit"), o);
  EXPECT_EQ(r.insns_processed, 2u);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "0: R1=raw_mem(off=0) R2=scalar() R10=fp0");
  EXPECT_EQ(lines[1], "0: (b7) mov %r0, 1");
  EXPECT_EQ(lines[2], "1: R0=1 R1=raw_mem(off=0) R2=scalar() R10=fp0");
}

// --- rules the kernel's selftests found (test/kernel_verifier_test.cpp) -------

TEST(VerifierKernelRules, NoSubtractionFromTheStackPointer) {
  EXPECT_EQ(refusal("mov %r1, %r10\nsub %r1, 8\nmov %r0, 0\nexit"),
            "t.s: raw: instruction 1: R1 subtraction from stack pointer prohibited");
  EXPECT_EQ(refusal("mov %r1, %r10\nadd %r1, -8\nmov %r0, 0\nexit"), "accepted");
}

TEST(VerifierKernelRules, MapHandlePlusZero) {
  EXPECT_EQ(refusal("lddw %r1, 0\nmov %r2, 0\nadd %r1, %r2\nmov %r0, 0\nexit", {array_map(0)}), "accepted");
  EXPECT_EQ(refusal("lddw %r1, 0\nmov %r2, 8\nadd %r1, %r2\nmov %r0, 0\nexit", {array_map(0)}),
            "t.s: raw: instruction 3: R1 pointer arithmetic on map_ptr prohibited");
}

// As the kernel's reg_not_null: only map values, helper memory and map
// handles are known non-null; a stack (or context, packet) pointer against 0
// is explored both ways.
TEST(VerifierKernelRules, OnlySomePointersAreKnownNonNull) {
  EXPECT_EQ(refusal("mov %r2, %r10\njne %r2, 0, +1\nexit\nmov %r0, 0\nexit"),
            "t.s: raw: instruction 2: R0 !read_ok");
  const std::string lookup = kLookup;
  EXPECT_EQ(refusal(lookup + "jeq %r0, 0, +3\nmov %r1, %r0\njne %r1, 0, +1\nexit\nmov %r0, 0\nexit", {array_map(3)}),
            "accepted");
}

TEST(VerifierKernelRules, MetadataIsBoundedByTheStartOfThePacketOnly) {
  // data + 8 is not the end of the metadata: nothing proven.
  const char* src =
      "ldxw %r2, [%r1+8]\n"  // meta
      "ldxw %r3, [%r1+0]\n"  // data
      "mov %r0, %r3\n"
      "add %r0, 8\n"
      "mov %r4, %r2\n"
      "add %r4, 8\n"
      "jgt %r4, %r0, +1\n"
      "ldxb %r0, [%r2+0]\n"
      "mov %r0, 0\n"
      "exit";
  EXPECT_EQ(refusal(src, {}, &kTestXdp),
            "t.s: testxdp: instruction 7: R2 invalid access to packet metadata, off=0 size=1, R2 range=0 (compare "
            "with data first)");
  std::string against_data = src;
  against_data.replace(against_data.find("jgt %r4, %r0"), 12, "jgt %r4, %r3");
  EXPECT_EQ(refusal(against_data, {}, &kTestXdp), "accepted");
}

TEST(VerifierKernelRules, StrictCompareProvesOneByteMore) {
  // end > data + 7: data + 7 < end, so 8 bytes from data.
  auto src = [](int n) {
    return fmt::format(
        "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r1, %r2\nadd %r1, {}\njgt %r3, %r1, +1\nja +1\n"
        "ldxdw %r0, [%r1-{}]\nmov %r0, 0\nexit",
        n, n);
  };
  EXPECT_EQ(refusal(src(7), {}, &kTestXdp), "accepted");
  EXPECT_EQ(refusal(src(6), {}, &kTestXdp),
            "t.s: testxdp: instruction 6: R1 invalid access to packet, off=0 size=8, R1 range=7 (compare with "
            "data_end first)");
}

// --- bpf_loop callbacks ---

// `src` with the `lddw %r2, 0` at slot `at` turned into an lddw of the
// address of the function at slot `target` (clang's `r2 = callback ll`).
bpf::Program with_callback(std::string_view src, size_t at, size_t target) {
  bpf::Program p = bpf::assemble(src, "t.s");
  p.insns[at].src = bpf::LDDW_CODE_ADDR;
  p.insns[at].imm = int32_t(int64_t(target) - int64_t(at) - 1);
  bpf::validate(p);
  return p;
}

// The caller: fp-8 = `init`, bpf_loop(10, callback at 10, fp-8, 0), r0 = 0.
std::string loop_caller(const char* init) {
  return fmt::format(
      "stdw [%r10-8], {}\n"  // 0
      "mov %r1, 10\n"        // 1
      "lddw %r2, 0\n"        // 2, 3
      "mov %r3, %r10\n"      // 4
      "add %r3, -8\n"        // 5
      "mov %r4, 0\n"         // 6
      "call 181\n"           // 7
      "mov %r0, 0\n"         // 8
      "exit\n",              // 9
      init);
}

TEST(VerifierCallbacks, ACounterInTheCallersStackConverges) {
  const std::string src = loop_caller("0") +
                          "ldxdw %r0, [%r2]\nadd %r0, 1\nstxdw [%r2], %r0\n"
                          "mov %r0, 0\nexit\n";
  EXPECT_EQ(refusal(with_callback(src, 2, 10)), "accepted");
}

TEST(VerifierCallbacks, ReturnsZeroOrOne) {
  const std::string src = loop_caller("0") + "mov %r0, 2\nexit\n";
  EXPECT_EQ(refusal(with_callback(src, 2, 10)),
            "t.s: raw: instruction 11: At callback return the register R0 has 2 should have been in [0, 1]");
}

// The first iteration finds a pointer in fp-8 and replaces it by a number:
// the second would dereference the number. (6.1's verifier walked a
// callback once and accepted this; every iteration is checked here.)
TEST(VerifierCallbacks, EveryIterationIsChecked) {
  const std::string src =
      "mov %r1, %r10\n"       // 0
      "add %r1, -16\n"        // 1
      "stdw [%r10-16], 0\n"   // 2
      "stxdw [%r10-8], %r1\n" // 3: fp-8 = fp-16
      "mov %r1, 10\n"         // 4
      "lddw %r2, 0\n"         // 5, 6
      "mov %r3, %r10\n"       // 7
      "add %r3, -8\n"         // 8
      "mov %r4, 0\n"          // 9
      "call 181\n"            // 10
      "mov %r0, 0\n"          // 11
      "exit\n"                // 12
      "ldxdw %r1, [%r2]\n"    // 13: the pointer, then the number
      "ldxdw %r0, [%r1]\n"    // 14
      "stdw [%r2], 0\n"       // 15
      "mov %r0, 0\n"
      "exit\n";
  EXPECT_EQ(refusal(with_callback(src, 5, 13)), "t.s: raw: instruction 14: R1 invalid mem access 'scalar'");
}

// Zero bytes a check needs become a precise spilled 0 in the stored state
// (mark_demanded); the next iteration's zero bytes are the same value, so
// it meets that state. Before, the exact comparison missed it and every
// iteration was walked again until the complexity limit (found by the
// fuzzer's generated callbacks).
TEST(VerifierCallbacks, ZeroBytesMeetTheirPreciseSpill) {
  const std::string src = loop_caller("0") +
                          "ldxw %r0, [%r2]\n"  // 10: the caller's zero bytes, narrow
                          "jeq %r0, 0, +1\n"   // 11: the value decides: fp-8 is precise
                          "mov %r0, 1\n"       // 12
                          "exit\n";            // 13
  const bpf::Program p = with_callback(src, 2, 10);
  EXPECT_EQ(refusal(p), "accepted");
  EXPECT_LT(bpf::verifier::verify(p, {}).insns_processed, 100u);
}

// A run is bounded by what the verifier processed but for bpf_loop's
// iterations: loop_depth says how many levels of them, and the
// interpreter's max_loops (BPF_MAX_LOOPS, lowered by the fuzzer to bound
// its runs) answers -E2BIG above it, as the kernel's inlined loop does.
TEST(VerifierCallbacks, LoopDepthAndTheLoopLimit) {
  const std::string src =
      "mov %r1, 10\n"  // 0
      "lddw %r2, 0\n"  // 1, 2
      "mov %r3, 0\n"   // 3
      "mov %r4, 0\n"   // 4
      "call 181\n"     // 5
      "exit\n"         // 6
      "mov %r0, 0\n"   // 7: the callback
      "exit\n";
  const bpf::Program p = with_callback(src, 1, 7);
  EXPECT_EQ(bpf::verifier::verify(p, {}).loop_depth, 1u);
  EXPECT_EQ(bpf::verifier::verify(bpf::assemble("mov %r0, 0\nexit", "t.s"), {}).loop_depth, 0u);
  const rt::HelperTable helpers = rt::HelperTable::conformance();
  EXPECT_EQ(rt::interpret(p, helpers, nullptr, 0), 10u);
  rt::InterpOptions io;
  io.max_loops = 10;
  EXPECT_EQ(rt::interpret(p, helpers, nullptr, 0, io), 10u);
  io.max_loops = 9;
  EXPECT_EQ(rt::interpret(p, helpers, nullptr, 0, io), uint32_t(-7));  // -E2BIG, a 32-bit move
}

// Iterations may meet a state seen in an earlier one (the helper bounds
// them), but a loop inside one run of the callback is still a loop.
TEST(VerifierCallbacks, ALoopInsideTheCallbackIsStillInfinite) {
  const std::string src = loop_caller("0") + "mov %r0, 0\nl:\njeq %r0, 1, out\nja l\nout:\nexit\n";
  EXPECT_EQ(refusal(with_callback(src, 2, 10)), "t.s: raw: instruction 11: infinite loop detected at insn 11");
}

// bpf_for_each_map_elem: r1 the map, r2 its key (read-only size), r3 the
// value, r4 the context; maps it cannot walk are refused.
TEST(VerifierCallbacks, ForEachMapElemTypesTheCallbacksArguments) {
  const std::string caller =
      "lddw %r1, 0\n"     // 0, 1: the map
      "lddw %r2, 0\n"     // 2, 3: the callback
      "mov %r3, 0\n"      // 4
      "mov %r4, 0\n"      // 5
      "call 164\n"        // 6
      "mov %r0, 0\n"      // 7
      "exit\n";           // 8
  auto with = [&](const std::string& body, bpf::MapUse map) {
    bpf::Program p = with_callback(caller + body, 2, 9);
    p.maps = {map};
    return refusal(p);
  };
  const bpf::MapUse hash{0, "h", 1, 4, 16, 8};
  // Reads the key's 4 bytes and writes the value's 16.
  const std::string ok = "ldxw %r0, [%r2]\nstxdw [%r3+8], %r0\nmov %r0, 0\nexit\n";
  EXPECT_EQ(with(ok, hash), "accepted");
  EXPECT_EQ(with("ldxw %r0, [%r2+4]\nmov %r0, 0\nexit\n", hash),
            "t.s: raw: instruction 9: invalid access to memory, mem_size=4 off=4 size=4");
  EXPECT_EQ(with("ldxdw %r0, [%r3+16]\nmov %r0, 0\nexit\n", hash),
            "t.s: raw: instruction 9: invalid access to map value, value_size=16 off=16 size=8");
  EXPECT_EQ(with(ok, {0, "q", 22, 0, 16, 8}), "t.s: raw: instruction 6: cannot pass map_type 22 into func bpf_for_each_map_elem#164");
  EXPECT_EQ(with(ok, {0, "big", 1, 600, 16, 8}),
            "t.s: raw: instruction 6: bpf_for_each_map_elem over 'big': a key of 600 bytes (Springboard walks keys of at most 504)");
}

TEST(VerifierCallbacks, ArgumentsAreChecked) {
  // r2 a number, not a function.
  bpf::Program p = bpf::assemble(loop_caller("0"), "t.s");
  EXPECT_EQ(refusal(p), "t.s: raw: instruction 7: R2 type=scalar expected=func (bpf_loop's callback_fn)");
  // The context a map value, not the stack.
  std::string src = loop_caller("0");
  src.replace(src.find("mov %r3, %r10"), 13, "mov %r3, %r1 ");
  EXPECT_EQ(refusal(with_callback(src + "mov %r0, 0\nexit\n", 2, 10)),
            "t.s: raw: instruction 7: R3 type=scalar expected=fp or 0 (bpf_loop's callback_ctx)");
  // No arithmetic on a function's address.
  src = loop_caller("0");
  src.replace(src.find("mov %r3, %r10"), 13, "add %r2, 8   ");
  EXPECT_EQ(refusal(with_callback(src + "mov %r0, 0\nexit\n", 2, 10)),
            "t.s: raw: instruction 4: R2 pointer arithmetic on func prohibited");
}

TEST(VerifierKernelRules, MapLddwNeedsAMap) {
  bpf::Program p = program("lddw %r1, 5\nmov %r0, 0\nexit");
  p.insns[0].src = bpf::LDDW_MAP_FD;
  EXPECT_EQ(refusal(p), "t.s: raw: instruction 0: fd 5 is not pointing to valid bpf_map (no map at this lddw)");
  // Found by fuzz_verifier: the other lddw kinds were taken as numbers.
  p.insns[0].src = bpf::LDDW_MAP_IDX;
  EXPECT_EQ(refusal(p), "t.s: raw: instruction 0: map index 5 names no map (no map at this lddw)");
  // A map value's offset inside the value.
  bpf::Program v = program("lddw %r1, 0\nmov %r0, 0\nexit", {{0, "arr", 2, 4, 8, 4, true, 8}});
  EXPECT_EQ(refusal(v), "t.s: raw: instruction 0: direct value offset of 8 is not allowed");
  v.maps[0].offset = 7;
  EXPECT_EQ(refusal(v), "accepted");
}

// One instruction may not access the context on one path and other memory
// on another: context accesses are rewritten.
TEST(VerifierKernelRules, SameInstructionSamePointerKind) {
  const char* src =
      "ldxw %r4, [%r1+12]\n"
      "stdw [%r10-8], 0\n"
      "mov %r3, %r1\n"
      "jeq %r4, 0, +2\n"
      "mov %r3, %r10\n"
      "add %r3, -8\n"
      "ldxw %r0, [%r3+0]\n"
      "mov %r0, 0\n"
      "exit";
  EXPECT_EQ(refusal(src, {}, &kTestXdp), "t.s: testxdp: instruction 6: same insn cannot be used with different pointers");
}

TEST(VerifierKernelRules, PointerSpills) {
  EXPECT_EQ(refusal("stxw [%r10-8], %r10\nmov %r0, 0\nexit"), "t.s: raw: instruction 0: invalid size of register spill");
  // A callee's frame pointer in its caller's frame.
  const char* into_caller =
      "mov %r1, %r10\n"
      "add %r1, -8\n"
      "call local +2\n"
      "mov %r0, 0\n"
      "exit\n"
      "stxdw [%r1+0], %r10\n"
      "mov %r0, 0\n"
      "exit";
  EXPECT_EQ(refusal(into_caller),
            "t.s: raw: instruction 5: cannot spill pointers to stack into stack frame of the caller");
}

TEST(VerifierKernelRules, AtomicFetchReadsTheSpilledValue) {
  // r0 = cmpxchg(fp-8, r0 = fp, 0): the old value, fp itself.
  EXPECT_EQ(refusal("mov %r0, %r10\nstxdw [%r10-8], %r0\nmov %r1, 0\nlock cmpxchg [%r10-8], %r1\n"
                    "ldxdw %r1, [%r0-8]\nmov %r0, 0\nexit"),
            "accepted");
  // b = fetch_add(&a = 0, 1) is 0: the endless loop behind `if b` is dead.
  EXPECT_EQ(refusal("mov %r0, 0\nstxdw [%r10-8], %r0\nmov %r1, 1\nlock fetch add [%r10-8], %r1\n"
                    "jne %r1, 0, -1\nexit"),
            "accepted");
}

TEST(VerifierKernelRules, NarrowScalarSpills) {
  // A u32 spill of 16 read back as u16 is 16: fp-32 + 16 is fp-16, written.
  const char* src =
      "stdw [%r10-16], 0\n"
      "mov32 %r7, 16\n"
      "stxw [%r10-8], %r7\n"
      "ldxh %r4, [%r10-8]\n"
      "mov %r3, %r10\n"
      "add %r3, -32\n"
      "add %r3, %r4\n"
      "ldxdw %r0, [%r3+0]\n"
      "exit";
  EXPECT_EQ(refusal(src), "accepted");
  // The slot's other half was never written.
  EXPECT_EQ(refusal("mov32 %r7, 16\nstxw [%r10-8], %r7\nldxdw %r0, [%r10-8]\nexit"),
            "t.s: raw: instruction 2: invalid read from stack R10 off -8+4 size 8 (stack byte fp-4 not written)");
  // A value wider than the fill is any number of its size (here its low
  // half is 0, so the edge to the unwritten read is taken).
  EXPECT_EQ(refusal("mov32 %r7, 0x10000\nstxw [%r10-8], %r7\nldxh %r0, [%r10-8]\njeq %r0, 0, +1\nexit\n"
                    "ldxdw %r0, [%r10-16]\nexit"),
            "t.s: raw: instruction 5: invalid read from stack R10 off -16+0 size 8 (stack byte fp-16 not written)");
}

// A subprogram whose summary fails (a loop bounded only by its argument's
// value) costs nothing of the complexity budget: it is explored inline.
TEST(VerifierKernelRules, FailedSummaryCostsNoBudget) {
  const char* src =
      "mov %r1, 10\n"
      "mov %r2, 0\n"
      "call local +1\n"
      "exit\n"
      "add %r2, %r1\n"
      "sub %r1, 1\n"
      "jne %r1, 0, -3\n"
      "mov %r0, %r2\n"
      "exit";
  EXPECT_EQ(refusal(program(src), nullptr, 100'000), "accepted");
}

// Raw memory: a compare of the entry's r2 (its length) proves the bytes
// below it, and accesses inside need no runtime check.
TEST(VerifierProofs, RawLengthComparedProvesAccesses) {
  auto proven = [](std::string_view src, bool length_in_r2 = true) {
    VerifyOptions o;
    o.raw_length_in_r2 = length_in_r2;
    return bpf::verifier::verify(program(src), o).proven;
  };
  const char* src = "mov %r3, %r2\njlt %r3, 16, +2\nldxdw %r0, [%r1+8]\nexit\nmov %r0, 0\nexit";
  EXPECT_EQ(proven(src)[2], 1);
  EXPECT_EQ(proven(src, false)[2], 0);  // a tail-call target: r2 is its caller's
  EXPECT_EQ(proven("mov %r3, %r2\njlt %r3, 16, +2\nldxdw %r0, [%r1+9]\nexit\nmov %r0, 0\nexit")[2], 0);
  EXPECT_EQ(proven("ldxdw %r0, [%r1+8]\nexit")[0], 0);  // no compare
  // A copy changed by arithmetic is not the length any more.
  EXPECT_EQ(proven("mov %r3, %r2\nadd %r3, 8\njlt %r3, 16, +2\nldxdw %r0, [%r1+0]\nexit\nmov %r0, 0\nexit")[3], 0);
  // Through a subprogram summarised for the pointer it was called with.
  const char* call =
      "jlt %r2, 64, +2\n"
      "call local +3\n"
      "exit\n"
      "mov %r0, 0\n"
      "exit\n"
      "ldxdw %r0, [%r1+56]\n"
      "exit";
  EXPECT_EQ(proven(call)[5], 1);
  // Pruning: a path that proved less does not inherit a proof.
  const char* join =
      "mov %r0, 0\n"
      "jlt %r2, 64, +1\n"
      "ja +1\n"
      "jlt %r2, 8, +1\n"
      "ldxdw %r0, [%r1+0]\n"
      "ldxdw %r0, [%r1+56]\n"
      "exit";
  const std::vector<uint8_t> j = proven(join);
  EXPECT_EQ(j[4], 1);  // every path to it proved at least 8 bytes
  EXPECT_EQ(j[5], 0);  // reached with r2 < 8, and with 8 <= r2 < 64
}

// Runs `p` verified and bounds-checked over `mem` on `e`, which must stop it
// at an 8-byte access past the memory.
void expect_trapped_past(const rt::Engine& e, const bpf::Program& p, const rt::HelperTable& helpers,
                         std::vector<uint8_t>& mem) {
  rt::RunOptions o;
  o.safety.verify = true;
  o.safety.bounds_check = true;
  try {
    e.run(p, helpers, mem, o);
    ADD_FAILURE() << e.name << ": the access past the memory ran unchecked";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("out-of-bounds access of 8 bytes"), std::string::npos)
        << e.name << ": " << err.what();
  }
}

// A tail-call target's r2 is its caller's, not the memory's length: its
// compares prove nothing, and a hardened run still checks its accesses.
TEST(VerifierEngines, TailCallTargetsProveNoLength) {
  rt::Environment env;
  auto& progs = static_cast<rt::ProgArrayMap&>(env.create_map({"progs", 3, 4, 4, 1, 0, 0}));
  // r2 here is the program array's handle, far above 30000 (every backend
  // keeps r2 across bpf_tail_call, as the kernel's JITs do).
  // The access is far past the 8 bytes (as far as an offset reaches): just
  // past them, an ASan build's heap can hold a map's storage, which a
  // hardened run may read.
  progs.set(0, std::make_shared<bpf::Program>(
                   program("jlt %r2, 30000, +2\nldxdw %r0, [%r1+29000]\nexit\nmov %r0, 0\nexit")));
  const rt::HelperTable helpers = rt::standard_helpers(env);
  const bpf::Program main =
      program(fmt::format("lddw %r2, {:#x}\nmov %r3, 0\ncall 12\nmov %r0, 1\nexit", progs.handle()));
  for (const rt::Engine& e : rt::engines()) {
    std::vector<uint8_t> mem(8);
    expect_trapped_past(e, main, helpers, mem);
  }
}

// A raw program passing its memory to a global function: the function is
// checked once more with that argument raw memory, so a hardened run keeps
// the check of its access (as memory of the pointee's 16 bytes, it would
// be proven and run unchecked past the 8 there are).
TEST(VerifierEngines, GlobalFunctionsKeepChecksOnRawMemory) {
  rt::Environment env;
  const rt::HelperTable helpers = rt::standard_helpers(env);
  const bpf::Program p =
      with_global("call local g\nexit\ng:\nmov %r0, 0\njeq %r1, 0, +1\nldxdw %r0, [%r1+8]\nexit", {pointer_to(16)});
  for (const rt::Engine& e : rt::engines()) {
    rt::RunOptions o;
    o.safety.verify = true;
    o.safety.bounds_check = true;
    std::vector<uint8_t> mem(16, 0);
    mem[8] = 42;
    EXPECT_EQ(e.run(p, helpers, mem, o), 42u) << e.name;
    mem.resize(8);
    expect_trapped_past(e, p, helpers, mem);
  }
}

// Tail-call targets are verified as the program that jumps to them.
TEST(VerifierEngines, TailCallTargetsAreVerified) {
  rt::Environment env;
  auto& progs = static_cast<rt::ProgArrayMap&>(env.create_map({"progs", 3, 4, 4, 2, 0, 0}));
  progs.set(0, std::make_shared<bpf::Program>(program("ldxdw %r0, [%r10-8]\nexit")));  // unwritten stack
  progs.set(1, std::make_shared<bpf::Program>(program("mov %r0, 7\nexit")));
  const rt::HelperTable helpers = rt::standard_helpers(env);
  for (uint32_t slot : {0u, 1u}) {
    const bpf::Program main = program(fmt::format("lddw %r2, {:#x}\nmov %r3, {}\ncall 12\nmov %r0, 1\nexit",
                                                  progs.handle(), slot));
    for (const rt::Engine& e : rt::engines()) {
      rt::RunOptions o;
      o.safety.verify = true;
      std::vector<uint8_t> mem(8);
      if (slot == 1) {
        EXPECT_EQ(e.run(main, helpers, mem, o), 7u) << e.name;
        continue;
      }
      try {
        e.run(main, helpers, mem, o);
        ADD_FAILURE() << e.name << ": the unsafe target ran";
      } catch (const Error& err) {
        EXPECT_NE(std::string(err.what()).find("invalid read from stack R10 off -8+0 size 8"), std::string::npos)
            << e.name << ": " << err.what();
      }
    }
  }
}

}  // namespace
}  // namespace sb::test
