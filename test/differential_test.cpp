// Differential testing: seeded random programs (test/random_program.h) run
// on every engine of runtime/exec/engines.cpp and compared with the reference
// interpreter: r0 (or the fact of an error) and the final input buffer,
// each engine on its own copy of the buffer. One test per engine, so
// `ctest -L differential` runs them in parallel and a failure names the
// engine; native code runs in a child process, so that a crash or a hang
// is reported with its seed too. Then the Linux kernel as a second oracle
// (KernelOracle.*, test/kernel_oracle.h), and checks of the generator
// itself (RandomProgram.*).
//
//   SB_DIFF_SEED     first seed (default 1)
//   SB_DIFF_SEEDS    number of seeds per engine (default 3000)
//   SB_KERNEL_SEEDS  number of seeds for the kernel (default 1000)
//
// A disagreement prints the seed, the engine, both results and the
// program's disassembly; replay it with
//   SB_DIFF_SEED=1234 SB_DIFF_SEEDS=1 ./test/sb_differential_tests --gtest_filter='*Differential*'
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "frontend/disassembler.h"
#include "frontend/validator.h"
#include "ir/diag.h"
#include "frontend/assembler.h"
#include "runtime/exec/interpreter.h"
#include "runtime/helpers/std_helpers.h"
#include "runtime/helpers/tail_call.h"
#include "test/engines.h"
#include "test/kernel_oracle.h"
#include "test/random_program.h"

namespace sb::test {
namespace {

// What one engine did with one program.
struct Outcome {
  uint64_t r0 = 0;
  std::optional<std::string> error;  // the fault's message, if it faulted
  std::vector<uint8_t> memory;       // the input buffer afterwards
};

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, 0);
  return end != nullptr && *end == '\0' ? uint64_t(v) : fallback;
}

Outcome run_on(const Engine& e, const bpf::Program& p, const rt::HelperTable& helpers,
               const std::vector<uint8_t>& memory, const rt::RunOptions& opts = {}) {
  Outcome o;
  o.memory = memory;  // each engine gets its own copy
  try {
    o.r0 = e.run(p, helpers, o.memory, opts);
  } catch (const Error& err) {
    o.error = std::string(err.what()).empty() ? "error" : err.what();
  } catch (const std::exception& err) {
    o.error = std::string("exception: ") + err.what();
  }
  return o;
}

// Native code runs in this process, where a miscompiled program could crash
// or hang the test before it reports the seed. So a child process runs the
// engine over consecutive seeds (10 s alarm per seed) and sends each
// Outcome back through a pipe; if it dies, the seed it was running gets
// the signal as its error, and the next seed starts a new child. One fork
// per run, not per seed: forking this process (LLVM loaded) is slow.
class ChildRunner {
 public:
  ChildRunner(const Engine& e, const rt::HelperTable& h, uint64_t end) : engine_(e), helpers_(h), end_(end) {}
  ~ChildRunner() { stop(SIGKILL); }
  ChildRunner(const ChildRunner&) = delete;
  ChildRunner& operator=(const ChildRunner&) = delete;

  // Seeds must come in increasing order; `memory` is the seed's input.
  Outcome run(uint64_t seed, const std::vector<uint8_t>& memory) {
    if (pid_ < 0 || seed != next_) {
      stop(SIGKILL);
      if (!start(seed)) return run_on(engine_, random_program(seed).program, helpers_, memory);
    }
    Outcome o;
    if (read_outcome(o)) {
      next_ = seed + 1;
      return o;
    }
    const int status = stop(0);
    o = Outcome{};
    o.memory = memory;
    if (WIFSIGNALED(status))
      o.error = std::string("the test's child process died: ") + strsignal(WTERMSIG(status)) +
                (WTERMSIG(status) == SIGALRM ? " (no exit within 10 s)" : "");
    else  // e.g. a sanitizer caught the crash and exited: see its report above
      o.error = "the test's child process died: it exited with status " + std::to_string(WEXITSTATUS(status)) +
                " without a result";
    return o;
  }

 private:
  bool start(uint64_t seed) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0) {
      close(fds[0]);
      close(fds[1]);
      return false;
    }
    if (pid == 0) {  // the child: run, report, never return into the test
      close(fds[0]);
      for (uint64_t s = seed; s < end_; ++s) {
        alarm(10);
        const RandomProgram rp = random_program(s);
        if (!write_outcome(fds[1], run_on(engine_, rp.program, helpers_, rp.memory))) _exit(2);
      }
      _exit(0);
    }
    close(fds[1]);
    pid_ = pid;
    fd_ = fds[0];
    next_ = seed;
    return true;
  }

  // Closes the pipe and reaps the child (after `sig`, if not 0); returns
  // its wait status.
  int stop(int sig) {
    int status = 0;
    if (pid_ < 0) return status;
    close(fd_);
    if (sig != 0) kill(pid_, sig);
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    fd_ = -1;
    return status;
  }

  // Record: error flag, r0, memory size, memory, error size, error text.
  static bool write_outcome(int fd, const Outcome& o) {
    std::string out(1, o.error ? '\1' : '\0');
    auto put = [&out](uint64_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
    put(o.r0);
    put(o.memory.size());
    out.append(o.memory.begin(), o.memory.end());
    put(o.error ? o.error->size() : 0);
    out += o.error.value_or("");
    for (size_t at = 0; at < out.size();) {
      const ssize_t n = write(fd, out.data() + at, out.size() - at);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      at += size_t(n);
    }
    return true;
  }

  bool read_exact(void* dst, size_t size) {
    for (size_t at = 0; at < size;) {
      const ssize_t n = read(fd_, static_cast<char*>(dst) + at, size - at);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      at += size_t(n);
    }
    return true;
  }

  bool read_outcome(Outcome& o) {
    char flag = 0;
    uint64_t size = 0;
    if (!read_exact(&flag, 1) || !read_exact(&o.r0, sizeof o.r0) || !read_exact(&size, sizeof size)) return false;
    o.memory.resize(size);
    if (size && !read_exact(o.memory.data(), size)) return false;
    if (!read_exact(&size, sizeof size)) return false;
    std::string error(size, '\0');
    if (size && !read_exact(error.data(), size)) return false;
    if (flag) o.error = error;
    return true;
  }

  const Engine& engine_;
  const rt::HelperTable& helpers_;
  const uint64_t end_;
  pid_t pid_ = -1;
  int fd_ = -1;
  uint64_t next_ = 0;  // the seed whose outcome the child sends next
};

std::string hex_bytes(const std::vector<uint8_t>& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i != 0 && i % 8 == 0) s += ' ';
    s += digits[bytes[i] >> 4];
    s += digits[bytes[i] & 0xf];
  }
  return s;
}

std::string describe(const Outcome& o) {
  std::ostringstream s;
  if (o.error)
    s << "error: " << *o.error;
  else
    s << "r0 = 0x" << std::hex << o.r0 << std::dec << " (" << int64_t(o.r0) << ")";
  s << "\n    memory: " << hex_bytes(o.memory);
  return s.str();
}

// Both failed (the messages may differ), or both returned the same r0; and
// the same memory either way.
bool same(const Outcome& a, const Outcome& b) {
  if (a.error.has_value() != b.error.has_value()) return false;
  if (!a.error && a.r0 != b.r0) return false;
  return a.memory == b.memory;
}

// ---------------------------------------------------------------------------
// The generator itself.

rt::HelperTable helpers() { return rt::HelperTable::conformance(); }

bpf::ValidateOptions validate_options(const rt::HelperTable& h) {
  bpf::ValidateOptions v;
  v.helper_exists = [&h](uint32_t id) { return h.find(id) != nullptr; };
  return v;
}

TEST(RandomProgram, ValidAndTerminatingInBothModes) {
  const rt::HelperTable h = helpers();
  for (const auto [kernel, callbacks] : {std::pair{false, false}, std::pair{true, false}, std::pair{false, true}}) {
    RandomProgramOptions opts;
    opts.kernel_compatible = kernel;
    opts.callbacks = callbacks;
    size_t loops = 0;
    for (uint64_t seed = 0; seed < 1000; ++seed) {
      RandomProgram rp = random_program(seed, opts);
      for (const bpf::Insn& in : rp.program.insns) loops += in.opcode == bpf::make_opcode(bpf::JMP, bpf::CALL) &&
                                                           in.src == bpf::CALL_HELPER && in.imm == int32_t(bpf::HELPER_LOOP);
      SCOPED_TRACE(testing::Message() << "seed " << seed << (kernel ? " (kernel)" : "") << (callbacks ? " (callbacks)" : "") << "\n"
                                      << bpf::disassemble(rp.program));
      ASSERT_NO_THROW(bpf::validate(rp.program, validate_options(h)));
      // Kernel-compatible programs are proven safe. The other mode uses
      // three things Springboard runs safely but the kernel's rules (and so
      // the verifier) refuse: misaligned stack accesses, more than 512
      // bytes of stack across a call chain (each frame has its own 512
      // here), and subtracting from a stack pointer.
      const bpf::verifier::VerifyOptions vo = h.verify_options();
      try {
        bpf::verifier::verify(rp.program, vo);
      } catch (const Error& e) {
        const std::string m = e.message();
        const bool kernel_only_rule = m.starts_with("misaligned stack access") || m.starts_with("combined stack size") ||
                                      m.ends_with("subtraction from stack pointer prohibited");
        if (kernel || !kernel_only_rule) ADD_FAILURE() << e.what();
      }
      rt::InterpOptions budget;
      budget.insn_budget = 1'000'000;
      ASSERT_NO_THROW(rt::interpret(rp.program, h, rp.memory.data(), rp.memory.size(), budget));
    }
    if (callbacks) EXPECT_GT(loops, 300u);  // bpf_loop calls, each with its callback
  }
}

// An independent check of the generator's register bookkeeping: a
// forward data-flow over the control-flow graph (meet = intersection) of
// which registers are certainly written, with calls clobbering r1-r5, a
// subprogram entered with r10 and whichever of r1-r5 every call site
// defines. Returns "" or the first read of an undefined register.
std::string undefined_read(const bpf::Program& p) {
  using namespace bpf;
  const size_t n = p.insns.size();
  const std::vector<size_t> starts = function_starts(p);
  auto function_end = [&](size_t start) {
    auto it = std::upper_bound(starts.begin(), starts.end(), start);
    return it == starts.end() ? n : *it;
  };
  constexpr uint32_t kAll = (1u << kNumRegs) - 1, kArgs = 0x3e;  // r1..r5
  std::map<size_t, uint32_t> entry;  // function start -> registers defined at entry
  for (size_t f : starts) entry[f] = f == 0 ? (1u << 1 | 1u << 2 | 1u << kFramePointer) : kAll;
  std::string error;
  // Analyses one function from its entry state; records what its call
  // sites pass. With `check`, reports the first undefined read.
  auto analyse = [&](size_t begin, std::map<size_t, uint32_t>& passed, bool check) {
    const size_t end = function_end(begin);
    std::vector<uint32_t> in(n, kAll);
    std::vector<bool> reached(n, false);
    std::vector<size_t> work{begin};
    in[begin] = entry[begin];
    reached[begin] = true;
    auto flow = [&](size_t to, uint32_t state) {
      if (to >= end) return;
      const uint32_t merged = reached[to] ? in[to] & state : state;
      if (reached[to] && merged == in[to]) return;
      in[to] = merged;
      reached[to] = true;
      work.push_back(to);
    };
    while (!work.empty()) {
      const size_t i = work.back();
      work.pop_back();
      const Insn& x = p.insns[i];
      uint32_t d = in[i], reads = 0;
      const uint8_t cls = class_of(x.opcode), op = op_of(x);
      const uint32_t dst = 1u << x.dst, src = 1u << x.src;
      bool falls = true;
      std::optional<size_t> jump;
      switch (cls) {
        case ALU:
        case ALU64:
          reads = op == MOV ? 0 : dst;
          if (op != END && op != NEG && is_reg_source(x)) reads |= src;
          d |= dst;
          break;
        case LD: d |= dst; break;
        case LDX: reads = src; d |= dst; break;
        case ST: reads = dst; break;
        case STX:
          reads = dst | src;
          if (mode_of(x.opcode) == ATOMIC && x.imm == ATOMIC_CMPXCHG) reads |= 1u, d |= 1u;
          else if (mode_of(x.opcode) == ATOMIC && (x.imm & FETCH)) d |= src;
          break;
        default:  // JMP, JMP32
          if (op == EXIT) {
            reads = 1u;
            falls = false;
          } else if (op == CALL) {
            if (is_reg_source(x)) reads = dst | 1u << 1;  // callx; helper 5 reads r1
            else if (x.src == CALL_HELPER) reads = 1u << 1;
            else passed[size_t(*branch_target(x, i))] &= d & kArgs;
            d = (d & ~kArgs) | 1u;
          } else if (op == JA) {
            jump = size_t(*branch_target(x, i));
            falls = false;
          } else {
            reads = is_reg_source(x) ? dst | src : dst;
            jump = size_t(*branch_target(x, i));
          }
      }
      if (check && error.empty() && (reads & ~in[i]))
        error = "instruction " + std::to_string(i) + " (" + disassemble(x, i + 1 < n ? &p.insns[i + 1] : nullptr) +
                ") reads an undefined register, defined: " + std::to_string(in[i]);
      if (falls) flow(i + slot_count(x), d);
      if (jump) flow(*jump, d);
    }
  };
  for (bool changed = true; changed;) {  // entry states of subprograms to a fixed point
    changed = false;
    std::map<size_t, uint32_t> passed;
    for (size_t f : starts) passed[f] = kAll;
    for (size_t f : starts) analyse(f, passed, false);
    for (size_t f : starts) {
      const uint32_t e = f == 0 ? entry[f] : (passed[f] | 1u << kFramePointer);
      changed |= e != entry[f];
      entry[f] = e;
    }
  }
  std::map<size_t, uint32_t> ignored;
  for (size_t f : starts) analyse(f, ignored, true);
  return error;
}

TEST(RandomProgram, ReadsOnlyDefinedRegisters) {
  for (bool kernel : {false, true}) {
    RandomProgramOptions opts;
    opts.kernel_compatible = kernel;
    for (uint64_t seed = 0; seed < 1000; ++seed) {
      const RandomProgram rp = random_program(seed, opts);
      const std::string error = undefined_read(rp.program);
      ASSERT_EQ(error, "") << "seed " << seed << (kernel ? " (kernel)" : "") << "\n" << bpf::disassemble(rp.program);
    }
  }
  // The check itself finds a read of r3 after a call clobbered it.
  const bpf::Program bad{"bad", {{0xb7, 3, 0, 0, 1},   // mov r3, 1
                                 {0xb7, 1, 0, 0, 1},   // mov r1, 1
                                 {0x85, 0, 0, 0, 5},   // call 5
                                 {0xbf, 0, 3, 0, 0},   // mov r0, r3
                                 {0x95, 0, 0, 0, 0}}, {}};
  EXPECT_NE(undefined_read(bad), "");
}

TEST(RandomProgram, SameSeedSameProgram) {
  for (uint64_t seed : {0ull, 1ull, 99ull, 123456789ull}) {
    RandomProgram a = random_program(seed), b = random_program(seed);
    EXPECT_EQ(a.program.insns, b.program.insns);
    EXPECT_EQ(a.memory, b.memory);
    EXPECT_NE(random_program(seed + 1).program.insns, a.program.insns);
  }
}

// The bounded draws are fixed by the C++ standard (std::mt19937_64's output
// is specified), so these values hold on every platform. If the generator
// changes on purpose, update them from the failure message.
TEST(RandomProgram, StableAcrossPlatforms) {
  Rng rng(42);
  EXPECT_EQ(rng.next(), 13930160852258120406ull);  // std::mt19937_64(42)'s first output
  uint64_t sum = 0;
  for (int i = 0; i < 1000; ++i) {
    sum = sum * 31 + rng.below(uint64_t(i) + 1);  // one draw per statement: operands of + are unsequenced
    sum += uint64_t(rng.range(-5, 5) + 5);
  }
  EXPECT_EQ(sum, 3867848895906031931ull);
  uint64_t h = 14695981039346656037ull;  // FNV-1a over the fields of seed 7's slots
  auto mix = [&h](uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) h = (h ^ uint8_t(v >> (8 * i))) * 1099511628211ull;
  };
  for (const bpf::Insn& in : random_program(7).program.insns) {
    mix(in.opcode, 1);
    mix(uint64_t(in.dst) | uint64_t(in.src) << 4, 1);
    mix(uint16_t(in.off), 2);
    mix(uint32_t(in.imm), 4);
  }
  EXPECT_EQ(h, 10818673987373891649ull) << "the generator changed: update this hash (and note it in the commit)";
}

// Over a few hundred seeds the generator emits every opcode RFC 9669
// defines except the legacy packet loads (and, in kernel mode, helper calls).
TEST(RandomProgram, CoversTheInstructionSet) {
  std::set<std::pair<uint8_t, int32_t>> seen;  // (opcode, imm for atomics and byte swaps; else 0)
  std::set<std::pair<uint8_t, int16_t>> seen_off;  // (opcode, off) for movsx, sdiv/smod
  for (uint64_t seed = 0; seed < 500; ++seed) {
    for (const bpf::Insn& in : random_program(seed).program.insns) {
      const uint8_t cls = bpf::class_of(in.opcode);
      const bool imm_matters = (cls == bpf::STX && bpf::mode_of(in.opcode) == bpf::ATOMIC) ||
                               ((cls == bpf::ALU || cls == bpf::ALU64) && bpf::op_of(in) == bpf::END);
      seen.insert({in.opcode, imm_matters ? in.imm : 0});
      seen_off.insert({in.opcode, in.off == 0 ? int16_t(0) : in.off});
    }
  }
  using namespace bpf;
  std::vector<std::string> missing;
  auto want = [&](uint8_t opcode, int32_t imm = 0) {
    if (!seen.count({opcode, imm}))
      missing.push_back(disassemble(Insn{opcode, 0, 0, 0, imm}) + " (opcode " + std::to_string(opcode) + ")");
  };
  for (uint8_t cls : {uint8_t(ALU), uint8_t(ALU64)}) {
    for (uint8_t op : {ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, MOD, XOR, MOV, ARSH}) {
      want(make_opcode(cls, op, K));
      want(make_opcode(cls, op, X));
      if (op == DIV || op == MOD) {
        if (!seen_off.count({make_opcode(cls, op, K), 1})) missing.push_back("signed K div/mod");
        if (!seen_off.count({make_opcode(cls, op, X), 1})) missing.push_back("signed X div/mod");
      }
    }
    want(make_opcode(cls, NEG, K));
    for (int32_t w : {16, 32, 64}) want(make_opcode(cls, END, TO_LE), w);
  }
  for (int32_t w : {16, 32, 64}) want(make_opcode(ALU, END, TO_BE), w);
  for (int16_t off : {8, 16})
    if (!seen_off.count({make_opcode(ALU, MOV, X), off})) missing.push_back("movsx32 " + std::to_string(off));
  for (int16_t off : {8, 16, 32})
    if (!seen_off.count({make_opcode(ALU64, MOV, X), off})) missing.push_back("movsx64 " + std::to_string(off));
  for (uint8_t cls : {uint8_t(JMP), uint8_t(JMP32)}) {
    for (uint8_t op : {JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE, JLT, JLE, JSLT, JSLE}) {
      want(make_opcode(cls, op, K));
      want(make_opcode(cls, op, X));
    }
    want(make_opcode(cls, JA));
  }
  want(make_opcode(JMP, CALL));  // helper and local calls share the opcode
  want(make_opcode(JMP, CALL, X));
  want(make_opcode(JMP, EXIT));
  want(LDDW);
  for (uint8_t size : {B, H, W, DW}) {
    want(make_opcode(LDX, MEM, size));
    want(make_opcode(ST, MEM, size));
    want(make_opcode(STX, MEM, size));
    if (size != DW) want(make_opcode(LDX, MEMSX, size));
  }
  for (uint8_t size : {W, DW})
    for (int32_t op : std::initializer_list<int32_t>{ATOMIC_ADD, ATOMIC_ADD | FETCH, ATOMIC_OR, ATOMIC_OR | FETCH,
                                                     ATOMIC_AND, ATOMIC_AND | FETCH, ATOMIC_XOR, ATOMIC_XOR | FETCH,
                                                     ATOMIC_XCHG, ATOMIC_CMPXCHG})
      want(make_opcode(STX, ATOMIC, size), op);
  EXPECT_TRUE(missing.empty()) << "never generated: " << testing::PrintToString(missing);
}

// Prints the program and buffer of SB_DIFF_SEED (SB_DIFF_KERNEL=1: the
// kernel-compatible one), with the interpreter's result:
//   ./test/sb_differential_tests --gtest_also_run_disabled_tests --gtest_filter='*DISABLED_Print'
TEST(RandomProgram, DISABLED_Print) {
  RandomProgramOptions opts;
  opts.kernel_compatible = env_u64("SB_DIFF_KERNEL", 0) != 0;
  const uint64_t seed = env_u64("SB_DIFF_SEED", 1);
  const RandomProgram rp = random_program(seed, opts);
  const rt::HelperTable h = helpers();
  const Outcome o = run_on(*rt::find_engine(rt::EngineKind::Interp, Arch::X86_64), rp.program, h, rp.memory);
  std::printf("%s\n%zu slots\ninput:  %s\ninterp: %s\n", bpf::disassemble(rp.program).c_str(),
              rp.program.insns.size(), hex_bytes(rp.memory).c_str(), describe(o).c_str());
}

// ---------------------------------------------------------------------------
// Every engine against the interpreter.

class Differential : public testing::TestWithParam<size_t> {};

TEST_P(Differential, MatchesInterpreter) {
  const Engine& engine = engines()[GetParam()];
  const Engine* interp = rt::find_engine(rt::EngineKind::Interp, Arch::X86_64);
  ASSERT_NE(interp, nullptr);
  const rt::HelperTable h = helpers();
  const uint64_t first = env_u64("SB_DIFF_SEED", 1);
  const uint64_t count = env_u64("SB_DIFF_SEEDS", 3000);
  size_t failures = 0, unwound = 0;
  const auto start = std::chrono::steady_clock::now();
  std::optional<ChildRunner> child;  // native code runs in a child process
  if (engine.kind == rt::EngineKind::Native) child.emplace(engine, h, first + count);
  for (uint64_t seed = first; seed < first + count; ++seed) {
    const RandomProgram rp = random_program(seed);
    const Outcome want = run_on(*interp, rp.program, h, rp.memory);
    const Outcome got = child ? child->run(seed, rp.memory) : run_on(engine, rp.program, h, rp.memory);
    unwound += !want.error && want.r0 == 0;
    if (same(want, got)) continue;
    ADD_FAILURE() << engine.name << " disagrees with the interpreter on seed " << seed << "\n"
                  << "  interp:  " << describe(want) << "\n"
                  << "  " << engine.name << ": " << describe(got) << "\n"
                  << "  input:   " << hex_bytes(rp.memory) << "\n"
                  << "replay: SB_DIFF_SEED=" << seed
                  << " SB_DIFF_SEEDS=1 ./test/sb_differential_tests --gtest_filter='*Differential*" << engine.name
                  << "*'\n"
                  << bpf::disassemble(rp.program);
    if (++failures == 5) {
      ADD_FAILURE() << "stopping after 5 disagreements";
      break;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ differential ] %s: seeds %llu..%llu, %zu disagreements, %zu returned 0, %.1f s\n",
              engine.name.c_str(), (unsigned long long)first, (unsigned long long)(first + count - 1), failures,
              unwound, seconds);
}

// The child process reports a crash as that seed's error and carries on
// with the next seed in a new child.
TEST(ChildRunner, SurvivesACrash) {
  const Engine crashing{"crashing", rt::EngineKind::Native, Arch::X86_64,
                        [](const bpf::Program& p, const rt::HelperTable&, const rt::RunOptions&) -> Engine::Runner {
                          return [&p](std::vector<uint8_t>& mem) -> uint64_t {
                            if (p.name == "seed 2") raise(SIGSEGV);
                            mem[0] ^= 1;
                            return p.insns.size();
                          };
                        }};
  const rt::HelperTable h = helpers();
  ChildRunner child(crashing, h, 5);
  for (uint64_t seed = 1; seed < 5; ++seed) {
    const RandomProgram rp = random_program(seed);
    const Outcome o = child.run(seed, rp.memory);
    if (seed == 2) {
      ASSERT_TRUE(o.error);
      EXPECT_NE(o.error->find("died"), std::string::npos) << *o.error;
      continue;
    }
    EXPECT_FALSE(o.error) << *o.error;
    EXPECT_EQ(o.r0, rp.program.insns.size());
    ASSERT_EQ(o.memory.size(), rp.memory.size());
    EXPECT_EQ(o.memory[0], rp.memory[0] ^ 1);
  }
}

std::vector<size_t> compared_engines() {
  std::vector<size_t> list;
  for (size_t i = 0; i < engines().size(); ++i)
    if (engines()[i].kind != rt::EngineKind::Interp) list.push_back(i);
  return list;
}

INSTANTIATE_TEST_SUITE_P(Engines, Differential, testing::ValuesIn(compared_engines()),
                         [](const testing::TestParamInfo<size_t>& i) { return engines()[i.param].name; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Differential);

// Hardened (bounds checks, constant blinding) against the plain
// interpreter: on valid programs the modes change nothing. The programs'
// accesses are all to their memory and stack, so every one takes a fast
// path of the check; SB_HARDENED_SEEDS seeds per engine (default 400).
class HardenedDifferential : public testing::TestWithParam<size_t> {};

// Seeds [first, first + count) of `gen` on the interpreter and on `engine`
// with `run`: the same r0 and memory, or up to 5 failures naming the seed.
void expect_matches_interpreter(const Engine& engine, const RandomProgramOptions& gen, const rt::RunOptions& run,
                                uint64_t first, uint64_t count, const char* what) {
  const Engine* interp = rt::find_engine(rt::EngineKind::Interp, Arch::X86_64);
  const rt::HelperTable h = helpers();
  size_t failures = 0;
  for (uint64_t seed = first; seed < first + count && failures < 5; ++seed) {
    const RandomProgram rp = random_program(seed, gen);
    const Outcome want = run_on(*interp, rp.program, h, rp.memory);
    const Outcome got = run_on(engine, rp.program, h, rp.memory, run);
    if (same(want, got)) continue;
    ++failures;
    ADD_FAILURE() << engine.name << " " << what << " disagrees with the interpreter on seed " << seed << "\n"
                  << "  interp:  " << describe(want) << "\n"
                  << "  " << engine.name << ": " << describe(got) << "\n"
                  << bpf::disassemble(rp.program);
  }
}

TEST_P(HardenedDifferential, MatchesInterpreter) {
  rt::RunOptions hardened;
  hardened.safety.bounds_check = hardened.safety.blind_constants = true;
  expect_matches_interpreter(engines()[GetParam()], {}, hardened, env_u64("SB_DIFF_SEED", 1),
                             env_u64("SB_HARDENED_SEEDS", 400), "hardened");
}

INSTANTIATE_TEST_SUITE_P(Engines, HardenedDifferential, testing::ValuesIn(compared_engines()),
                         [](const testing::TestParamInfo<size_t>& i) { return engines()[i.param].name; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(HardenedDifferential);

// Programs that call bpf_loop with generated callbacks
// (RandomProgramOptions::callbacks) give every engine the interpreter's r0
// and memory: the rewrite to bytecode (frontend/loop_helper.h) and the
// callback frames it adds, compiled. SB_CALLBACK_SEEDS seeds per engine
// (default 150).
class CallbackDifferential : public testing::TestWithParam<size_t> {};

TEST_P(CallbackDifferential, MatchesInterpreter) {
  RandomProgramOptions opts;
  opts.callbacks = true;
  expect_matches_interpreter(engines()[GetParam()], opts, {}, env_u64("SB_DIFF_SEED", 1),
                             env_u64("SB_CALLBACK_SEEDS", 150), "with callbacks");
}

INSTANTIATE_TEST_SUITE_P(Engines, CallbackDifferential, testing::ValuesIn(compared_engines()),
                         [](const testing::TestParamInfo<size_t>& i) { return engines()[i.param].name; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(CallbackDifferential);

// ---------------------------------------------------------------------------
// The Linux kernel against the interpreter (test/kernel_oracle.h), on the
// kernel-compatible subset of programs (RandomProgramOptions::
// kernel_compatible). The kernel returns only the low 32 bits of r0, so
// those are compared (the programs fold r0's high half into its low half
// before exiting); the buffer is compared in full. Programs the verifier
// rejects are skipped and counted (SB_KERNEL_VERBOSE=1 prints why).
// SB_KERNEL_SEEDS seeds (default 1000) from SB_DIFF_SEED.
TEST(KernelOracle, MatchesInterpreterLow32) {
  if (std::optional<std::string> why = kernel_unavailable()) GTEST_SKIP() << *why;
  const Engine* interp = rt::find_engine(rt::EngineKind::Interp, Arch::X86_64);
  ASSERT_NE(interp, nullptr);
  const rt::HelperTable h = helpers();
  RandomProgramOptions opts;
  opts.kernel_compatible = true;
  const uint64_t first = env_u64("SB_DIFF_SEED", 1);
  const uint64_t count = env_u64("SB_KERNEL_SEEDS", 1000);
  const bool verbose = env_u64("SB_KERNEL_VERBOSE", 0) != 0;  // print every rejection
  size_t compared = 0, rejected = 0, failures = 0;
  std::string first_rejection;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    const RandomProgram rp = random_program(seed, opts);
    const Outcome want = run_on(*interp, rp.program, h, rp.memory);
    ASSERT_FALSE(want.error) << "seed " << seed << ": " << *want.error;
    Outcome got;
    got.memory = rp.memory;
    const KernelRun k = kernel_run(rp.program, got.memory);
    if (k.status == KernelRun::Status::Failed) GTEST_SKIP() << "seed " << seed << ": " << k.message;
    if (k.status == KernelRun::Status::Rejected) {
      if (rejected++ == 0) first_rejection = "seed " + std::to_string(seed) + ": " + k.message;
      if (verbose) std::printf("[ kernel ] seed %llu rejected: %s\n", (unsigned long long)seed, k.message.c_str());
      continue;
    }
    ++compared;
    got.r0 = k.retval;
    Outcome want32 = want;
    want32.r0 = uint32_t(want.r0);
    if (same(want32, got)) continue;
    ADD_FAILURE() << "the kernel disagrees with the interpreter on seed " << seed << " (low 32 bits of r0)\n"
                  << "  interp: " << describe(want32) << "\n"
                  << "  kernel: " << describe(got) << "\n"
                  << "  input:  " << hex_bytes(rp.memory) << "\n"
                  << "replay: SB_DIFF_SEED=" << seed
                  << " SB_KERNEL_SEEDS=1 ./test/sb_differential_tests --gtest_filter='KernelOracle.*'\n"
                  << bpf::disassemble(rp.program);
    if (++failures == 5) break;
  }
  std::printf("[ kernel ] seeds %llu..%llu: %zu compared, %zu rejected by the verifier (%.1f%%), %zu disagreements\n",
              (unsigned long long)first, (unsigned long long)(first + count - 1), compared, rejected,
              count ? 100.0 * double(rejected) / double(count) : 0.0, failures);
  if (rejected) std::printf("[ kernel ] first rejection: %s\n", first_rejection.c_str());
  // The subset is meant to pass the verifier; many rejections mean the
  // generator's kernel rules (or the kernel) changed.
  EXPECT_LE(rejected * 10, count) << first_rejection;
}

// The tail-call limit, against the kernel: one program, counting its runs
// in an array map and tail-calling itself, runs as often on every engine
// as in the kernel: 1 + 33 times (MAX_TAIL_CALL_CNT, runtime/helpers/tail_call.h).
TEST(KernelOracle, SelfTailCallRunsAsOftenAsInTheKernel) {
  if (std::optional<std::string> why = kernel_unavailable()) GTEST_SKIP() << *why;
  const char* source = R"(
mov %r6, %r1
stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, {counter}
call 1
jeq %r0, 0, +2
mov %r1, 1
lock add [%r0], %r1
mov %r1, %r6
lddw %r2, {array}
mov %r3, 0
call 12
mov %r0, 0
exit
)";
  auto assemble = [&](uint64_t array, uint64_t counter) {
    return bpf::assemble(fmt::format(fmt::runtime(source), fmt::arg("array", array), fmt::arg("counter", counter)),
                         "self");
  };
  const KernelRun k = kernel_run_self_tail_call(assemble(0x5eb5eb5eb, 0x6eb6eb6eb), 0x5eb5eb5eb, 0x6eb6eb6eb);
  if (k.status == KernelRun::Status::Failed) GTEST_SKIP() << k.message;
  ASSERT_EQ(k.status, KernelRun::Status::Ran) << k.message;
  EXPECT_EQ(k.retval, 1 + rt::kMaxTailCalls);
  for (const Engine& e : engines()) {
    rt::Environment env;
    const rt::HelperTable h = rt::standard_helpers(env);
    auto& array = dynamic_cast<rt::ProgArrayMap&>(env.create_map({"self", 3, 4, 4, 1, 0, 0}));
    auto& counter = dynamic_cast<rt::ArrayMap&>(env.create_map({"count", 2, 4, 8, 1, 0, 0}));
    auto self = std::make_shared<const bpf::Program>(assemble(array.handle(), counter.handle()));
    array.set(0, self);
    std::vector<uint8_t> packet(64, 0);
    e.run(*self, h, packet);
    uint64_t runs;
    std::memcpy(&runs, counter.value(0).data(), 8);
    EXPECT_EQ(runs, k.retval) << e.name;
  }
}

// Where the kernel and RFC 9669 disagree we follow the RFC (DESIGN.md). The
// random programs found no difference in results (every accepted program
// agrees on r0's low half and the buffer); the differences are programs
// the RFC defines but the kernel's verifier refuses, which is why the
// kernel-compatible subset leaves them out:
//   - immediate shift counts >= the operand width: RFC 9669 section 4.1
//     masks every count (to 6 bits, 5 for 32-bit), the verifier rejects an
//     immediate count out of range with "invalid shift";
//   - misaligned stack accesses: RFC 9669 puts no alignment rule on loads
//     and stores, the verifier rejects them ("misaligned stack access").
// Each case runs on every engine (which must give the RFC's result) and on
// the kernel, which must reject it or agree.
TEST(KernelOracle, RfcDefinesWhatTheVerifierRejects) {
  struct Case {
    const char* name;
    std::vector<bpf::Insn> insns;
    uint64_t rfc_r0;
  };
  using namespace bpf;
  const Case cases[] = {
      {"lsh_imm_65",  // mov r0, 3; lsh r0, 65; exit  -> 3 << (65 & 63)
       {{make_opcode(ALU64, MOV, K), 0, 0, 0, 3}, {make_opcode(ALU64, LSH, K), 0, 0, 0, 65}, {make_opcode(JMP, EXIT)}},
       6},
      {"rsh32_imm_33",  // mov32 r0, 0x80; rsh32 r0, 33; exit  -> 0x80 >> (33 & 31)
       {{make_opcode(ALU, MOV, K), 0, 0, 0, 0x80}, {make_opcode(ALU, RSH, K), 0, 0, 0, 33}, {make_opcode(JMP, EXIT)}},
       0x40},
      {"misaligned_stack_load",  // stdw [r10-16], 0x11223344; ldxw r0, [r10-15]; exit
       {{make_opcode(ST, MEM, DW), kFramePointer, 0, -16, 0x11223344},
        {make_opcode(ST, MEM, DW), kFramePointer, 0, -8, 0x55},
        {make_opcode(LDX, MEM, W), 0, kFramePointer, -15, 0},
        {make_opcode(JMP, EXIT)}},
       0x112233},
  };
  const rt::HelperTable h = helpers();
  const std::optional<std::string> no_kernel = kernel_unavailable();
  for (const Case& c : cases) {
    const bpf::Program p{c.name, c.insns, {}};
    for (const Engine& e : engines()) {
      const Outcome o = run_on(e, p, h, {});
      EXPECT_FALSE(o.error) << c.name << " on " << e.name << ": " << o.error.value_or("");
      EXPECT_EQ(o.r0, c.rfc_r0) << c.name << " on " << e.name;
    }
    if (no_kernel) continue;
    std::vector<uint8_t> mem(8);
    const KernelRun k = kernel_run(p, mem);
    if (k.status == KernelRun::Status::Rejected)
      std::printf("[ kernel ] %s: rejected as expected (%s)\n", c.name, k.message.c_str());
    else
      EXPECT_EQ(k.retval, uint32_t(c.rfc_r0)) << c.name << ": " << k.message;
  }
  if (no_kernel) GTEST_SKIP() << "engines checked; kernel part skipped: " << *no_kernel;
}

}  // namespace
}  // namespace sb::test
