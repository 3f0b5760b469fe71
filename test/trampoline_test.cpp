// Trampolines for every architecture, run in Unicorn (runtime/exec/guest.h)
// around target functions that the architecture's C compiler built from
// test/trampoline/targets.c at test time: argument passing in registers and
// on the stack (integers of every width, pointers, floats, structs), results
// of every kind, fentry / fmod_ret / fexit as the kernel's, cookies,
// statistics and the recursion guard. The same file compiled into this
// binary gives the expected values.
//
// Guest layout of a test (Harness):
//   kTargetsBase   targets.c's .text, as the cross compiler built it
//   kTrampBase     the trampoline
//   kProgBase+64K*i  attached program i, compiled for the arch
//   kDataBase      memory the programs and targets write: program i records
//                  at kDataBase + 0x100*i (record(i)), cells from kCells
//   host slots     prog_enter / prog_exit (sb_tramp_prog_enter/exit on the
//                  host, with the host ProgState pointers passed through the
//                  guest as opaque values) and the programs' helpers
//
// CTest runs one entry per architecture (label "trampoline;<arch>").
#include <unistd.h>

#include <bit>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <llvm/Object/ObjectFile.h>

#include "backends/compile.h"
#include "frontend/assembler.h"
#include "frontend/trampoline.h"
#include "ir/diag.h"
#include "runtime/exec/guest.h"
#include "guest_prog_runtime.h"
#include "runtime/hook/tramp_runtime.h"
#include "trampoline/targets.h"

namespace sb::test {
namespace {

namespace fs = std::filesystem;
using ir::Type;
using tramp::Kind;

// The architectures whose trampolines run here, and the C compiler that
// builds targets.c for each. Adding one is one row.
struct ArchCase {
  Arch arch;
  const char* name;      // test name suffix and CTest filter: "x86_64"
  const char* compiler;  // run with the flags below
  const char* flags;     // its own extra flags
};
const ArchCase kArchCases[] = {
#ifdef SPRINGBOARD_HAVE_X86_64
    {Arch::X86_64, "x86_64", "gcc", "-fcf-protection=none"},
#endif
#ifdef SPRINGBOARD_HAVE_RISCV64
    {Arch::Riscv64, "riscv64", "riscv64-linux-gnu-gcc", ""},
#endif
#ifdef SPRINGBOARD_HAVE_ARM64
    {Arch::Arm64, "arm64", "aarch64-linux-gnu-gcc", ""},
#endif
};
// Leaf functions without relocations: no PIC, no unwind tables, no fused
// multiply-add (the native build of targets.c computes the expected values
// without it; see CMakeLists.txt), no libc headers.
constexpr const char* kCommonFlags =
    "-O2 -c -ffreestanding -fno-pic -fno-asynchronous-unwind-tables -ffp-contract=off";

// ---- the targets, cross-compiled --------------------------------------

struct TargetCode {
  std::vector<uint8_t> text;
  std::map<std::string, uint64_t> symbols;  // offset in text
};

std::string cross_compile_error(const ArchCase& a) {
  if (std::system(fmt::format("command -v {} >/dev/null 2>&1", a.compiler).c_str()) != 0)
    return fmt::format("no cross compiler {} (tools/install-deps.sh installs it)", a.compiler);
  return "";
}

TargetCode cross_compile(const ArchCase& a) {
  const fs::path dir = fs::path(SB_TRAMPOLINE_WORK_DIR);
  fs::create_directories(dir);
  const fs::path obj = dir / fmt::format("targets-{}-{}.o", a.name, getpid());
  const fs::path log = dir / fmt::format("targets-{}-{}.log", a.name, getpid());
  const std::string cmd = fmt::format("{} {} {} -I{} {}/targets.c -o {} >{} 2>&1", a.compiler, kCommonFlags, a.flags,
                                      SB_TRAMPOLINE_DIR, SB_TRAMPOLINE_DIR, obj.string(), log.string());
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream in(log);
    throw Error(cmd, std::string(std::istreambuf_iterator<char>(in), {}));
  }
  fs::remove(log);

  auto file = llvm::object::ObjectFile::createObjectFile(obj.string());
  if (!file) throw Error(obj.string(), llvm::toString(file.takeError()));
  const llvm::object::ObjectFile& o = *file->getBinary();
  TargetCode code;
  std::optional<llvm::object::SectionRef> text;
  for (const llvm::object::SectionRef& s : o.sections()) {
    auto name = s.getName();
    if (name && *name == ".text") text = s;
  }
  if (!text) throw Error(obj.string(), "no .text");
  for (const llvm::object::SectionRef& s : o.sections()) {
    auto target = s.getRelocatedSection();
    if (target && *target == *text && s.relocation_begin() != s.relocation_end())
      throw Error(obj.string(), ".text has relocations: targets.c must stay free of globals and constants");
  }
  llvm::Expected<llvm::StringRef> contents = text->getContents();
  if (!contents) throw Error(obj.string(), llvm::toString(contents.takeError()));
  code.text.assign(contents->bytes_begin(), contents->bytes_end());
  for (const llvm::object::SymbolRef& sym : o.symbols()) {
    auto section = sym.getSection();
    auto name = sym.getName();
    auto value = sym.getValue();
    if (!section || !name || !value) {
      llvm::consumeError(section.takeError());
      llvm::consumeError(name.takeError());
      llvm::consumeError(value.takeError());
      continue;
    }
    if (*section != o.section_end() && **section == *text && name->starts_with("sb_tt_"))
      code.symbols[name->str()] = *value;
  }
  fs::remove(obj);
  return code;
}

// ---- signatures and words ---------------------------------------------

ir::NativeValue T(Type t) {
  static constexpr uint8_t kSizes[] = {
#define SB_TYPE_SIZE(n, text, size) size,
      SB_IR_TYPES(SB_TYPE_SIZE)
#undef SB_TYPE_SIZE
  };
  return {t, kSizes[size_t(t)]};
}
ir::NativeValue S(uint8_t size) { return {Type::Struct, size}; }
ir::Signature sig(std::vector<ir::NativeValue> args, ir::NativeValue ret) {
  ir::Signature s;
  s.args = std::move(args);
  s.ret = ret;
  return s;
}

uint64_t w(int64_t v) { return uint64_t(v); }
uint64_t f64w(double d) { return std::bit_cast<uint64_t>(d); }
uint64_t f32w(float f) { return std::bit_cast<uint32_t>(f); }

// ---- one guest with targets, a trampoline and its programs -------------

struct Prog {
  Kind kind;
  std::string source;  // conformance assembler; {rec} is this program's record address
  uint64_t cookie = 0;
};

struct Flags {
  bool call_original = true;
  bool ip_arg = false;
  bool stats = true;
  bool recursion_guard = true;
};

// A helper the programs may call (id 7): proves helper calls from programs
// inside a trampoline reach the host and return.
uint64_t mix_helper(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  return a * 3 + b * 5 + c * 7 + d * 11 + e * 13;
}

class Harness {
 public:
  static constexpr uint64_t kTargetsBase = 0x100000;
  static constexpr uint64_t kTrampBase = 0x200000;
  static constexpr uint64_t kProgBase = 0x400000;
  static constexpr uint64_t kProgStride = 0x10000;
  static constexpr uint64_t kDataBase = 0x800000;
  static constexpr uint64_t kDataSize = 0x10000;
  static constexpr uint64_t kCells = kDataBase + 0x8000;

  Harness(Arch arch, const TargetCode& code) : guest_(arch), code_(code) {
    guest_.map_code(kTargetsBase, code.text);
    guest_.map_data(kDataBase, kDataSize);
    helpers_.add(7, "mix", mix_helper);
    for (const rt::Helper& h : helpers_.all()) {
      rt::HelperFn fn = h.fn;
      helper_slots_[h.id] = guest_.add_host_function(
          [fn](const std::array<uint64_t, 5>& a) { return fn(a[0], a[1], a[2], a[3], a[4]); });
    }
  }

  uint64_t target(const std::string& name) const {
    auto it = code_.symbols.find(name);
    if (it == code_.symbols.end()) throw Error(name, "not in the cross-compiled targets");
    return kTargetsBase + it->second;
  }
  static uint64_t record(size_t prog) { return kDataBase + 0x100 * prog; }
  uint64_t seen(size_t prog, size_t word) const { return guest_.read_u64(record(prog) + 8 * word); }
  rt::Guest& guest() { return guest_; }
  rt::ProgState& state(size_t prog) { return *states_.at(prog); }

  // Lowers a trampoline around `name` and maps it with its programs.
  void build(const std::string& name, const ir::Signature& s, const std::vector<Prog>& progs, Flags f = {}) {
    sig_ = s;
    target_ = target(name);
    tramp::Description d;
    d.file = name;
    d.target = name;
    d.signature = s;
    d.call_original = f.call_original;
    d.ip_arg = f.ip_arg;
    d.stats = f.stats;
    d.recursion_guard = f.recursion_guard;
    tramp::Bindings b;
    b.ip = target_;
    b.original = target_;
    b.prog_enter = runtime_.enter;
    b.prog_exit = runtime_.exit;
    CompileOptions opts;
    opts.arch = guest_.arch();
    opts.helper_address = [&](uint32_t id) { return helper_slots_.at(id); };
    for (size_t i = 0; i < progs.size(); ++i) {
      std::string src = progs[i].source;
      for (size_t at; (at = src.find("{rec}")) != std::string::npos;)
        src.replace(at, 5, fmt::format("{:#x}", record(i)));
      tramp::AttachedProgram p{progs[i].kind, bpf::assemble(src, fmt::format("{} program {}", name, i)),
                               progs[i].cookie};
      const uint64_t at = kProgBase + kProgStride * i;
      guest_.map_code(at, compile(p.program, helpers_, opts).image.text);
      auto& st = states_.emplace_back(std::make_unique<rt::ProgState>());
      st->stats = f.stats;
      st->recursion_guard = f.recursion_guard;
      b.entries.push_back(at);
      b.states.push_back(uint64_t(reinterpret_cast<uintptr_t>(st.get())));
      d.programs.push_back(std::move(p));
    }
    ir::Module m = tramp::lower(d, b);
    ir::check(m);
    guest_.map_code(kTrampBase, generate(m, opts).text);
  }

  uint64_t call(std::vector<uint64_t> args) { return guest_.call(kTrampBase, sig_, args); }
  uint64_t call_original(std::vector<uint64_t> args) { return guest_.call(target_, sig_, args); }

 private:
  rt::Guest guest_;
  const TargetCode& code_;
  GuestProgRuntime runtime_{guest_};
  rt::HelperTable helpers_;
  std::map<uint32_t, uint64_t> helper_slots_;
  std::vector<std::unique_ptr<rt::ProgState>> states_;
  ir::Signature sig_;
  uint64_t target_ = 0;
};

// Program sources. {rec} is replaced by the program's record address.
std::string record_ctx(int from, int n) {  // record[k] = ctx[from + k]
  std::string src = "lddw %r3, {rec}\n";
  for (int k = 0; k < n; ++k) src += fmt::format("ldxdw %r2, [%r1{:+}]\nstxdw [%r3+{}], %r2\n", 8 * (from + k), 8 * k);
  return src + "mov %r0, 0\nexit";
}
std::string returns(uint64_t v) { return fmt::format("lddw %r0, {:#x}\nexit", v); }
const char* const kRecordCookie = "ldxdw %r2, [%r1-48]\nlddw %r3, {rec}\nstxdw [%r3+0], %r2\nmov %r0, 0\nexit";
const char* const kMarkRan = "lddw %r3, {rec}\nmov %r2, 1\nstxdw [%r3+0], %r2\nmov %r0, 0\nexit";

void PrintTo(const ArchCase& a, std::ostream* os) { *os << a.name; }

class TrampolineRun : public testing::TestWithParam<ArchCase> {
 protected:
  void SetUp() override {
    if (std::string why = cross_compile_error(GetParam()); !why.empty()) GTEST_SKIP() << why;
    code_ = cross_compile(GetParam());
    h_ = std::make_unique<Harness>(GetParam().arch, code_);
  }
  Harness& h() { return *h_; }
  Arch arch() const { return GetParam().arch; }

  TargetCode code_;
  std::unique_ptr<Harness> h_;
};

const ir::Signature kAddSig = sig({T(Type::I64), T(Type::I64)}, T(Type::I64));

TEST_P(TrampolineRun, GuestCallsTheTargetsDirectly) {
  // The harness itself: cross-compiled code agrees with the native build.
  rt::Guest& g = h().guest();
  EXPECT_EQ(int64_t(g.call(h().target("sb_tt_add"), kAddSig, {w(20), w(-3)})), sb_tt_add(20, -3));
  const ir::Signature fm = sig({T(Type::F32), T(Type::F32)}, T(Type::F32));
  EXPECT_EQ(g.call(h().target("sb_tt_fmul"), fm, {f32w(1.5f), f32w(-2.25f)}), f32w(sb_tt_fmul(1.5f, -2.25f)));
}

TEST_P(TrampolineRun, WithoutProgramsItOnlyCallsTheOriginal) {
  h().build("sb_tt_add", kAddSig, {});
  EXPECT_EQ(int64_t(h().call({w(20), w(3)})), sb_tt_add(20, 3));
  EXPECT_EQ(int64_t(h().call({w(-7), w(1) << 40})), sb_tt_add(-7, int64_t(1) << 40));
}

TEST_P(TrampolineRun, FentryAndFexitSeeArgumentsAndResult) {
  h().build("sb_tt_add", kAddSig,
            {{Kind::Fentry, record_ctx(-1, 3)},    // nr_args, a, b
             {Kind::Fexit, record_ctx(0, 3)}});    // a, b, ret
  EXPECT_EQ(int64_t(h().call({w(20), w(-3)})), sb_tt_add(20, -3));
  EXPECT_EQ(h().seen(0, 0), 2u);
  EXPECT_EQ(h().seen(0, 1), 20u);
  EXPECT_EQ(h().seen(0, 2), w(-3));
  EXPECT_EQ(h().seen(1, 0), 20u);
  EXPECT_EQ(h().seen(1, 1), w(-3));
  EXPECT_EQ(int64_t(h().seen(1, 2)), sb_tt_add(20, -3));
}

TEST_P(TrampolineRun, TwelveIntegerArgumentsSomeOnTheStack) {
  const ir::Signature s = sig({T(Type::I8), T(Type::U16), T(Type::I32), T(Type::U64), T(Type::I64), T(Type::I8),
                               T(Type::I16), T(Type::U32), T(Type::I64), T(Type::Ptr), T(Type::I32), T(Type::U8)},
                              T(Type::I64));
  h().build("sb_tt_many", s, {{Kind::Fentry, record_ctx(0, 12)}, {Kind::Fexit, record_ctx(12, 1)}});
  const uint64_t cell = Harness::kCells;
  const int64_t pointee = -123456789;
  h().guest().write_u64(cell, w(pointee));
  const std::vector<uint64_t> args = {w(-5), 65535, w(-7), uint64_t(1) << 40, w(-9), 100, w(-300), 4000000000u,
                                      11, cell, w(-13), 250};
  const int64_t expect = sb_tt_many(-5, 65535, -7, uint64_t(1) << 40, -9, 100, -300, 4000000000u, 11, &pointee, -13, 250);
  EXPECT_EQ(int64_t(h().call_original(args)), expect);
  EXPECT_EQ(int64_t(h().call(args)), expect);
  for (size_t k = 0; k < args.size(); ++k) EXPECT_EQ(h().seen(0, k), args[k]) << "argument " << k;
  EXPECT_EQ(int64_t(h().seen(1, 0)), expect);
}

TEST_P(TrampolineRun, FloatArgumentsBeyondTheRegisters) {
  const ir::Signature s = sig({T(Type::F32), T(Type::I32), T(Type::F64), T(Type::F32), T(Type::F64), T(Type::F32),
                               T(Type::F64), T(Type::F32), T(Type::F64), T(Type::F32), T(Type::F64), T(Type::I64)},
                              T(Type::F64));
  h().build("sb_tt_fmix", s, {{Kind::Fentry, record_ctx(0, 12)}, {Kind::Fexit, record_ctx(12, 1)}});
  const std::vector<uint64_t> args = {f32w(1.5f),  w(-3),       f64w(2.25),  f32w(-0.5f), f64w(3.125),
                                      f32w(4.75f), f64w(-1.0 / 3), f32w(0.1f), f64w(7.5),   f32w(-8.25f),
                                      f64w(1e10),  w(int64_t(1) << 35)};
  const double expect = sb_tt_fmix(1.5f, -3, 2.25, -0.5f, 3.125, 4.75f, -1.0 / 3, 0.1f, 7.5, -8.25f, 1e10,
                                   int64_t(1) << 35);
  EXPECT_EQ(h().call_original(args), f64w(expect));
  EXPECT_EQ(h().call(args), f64w(expect));
  for (size_t k = 0; k < args.size(); ++k)
    EXPECT_EQ(h().seen(0, k), args[k]) << "argument " << k << " (floats are their bits, zero-extended)";
  EXPECT_EQ(h().seen(1, 0), f64w(expect));
}

TEST_P(TrampolineRun, FloatResults) {
  const ir::Signature fm = sig({T(Type::F32), T(Type::F32)}, T(Type::F32));
  h().build("sb_tt_fmul", fm, {{Kind::Fexit, record_ctx(0, 3)}});
  EXPECT_EQ(h().call({f32w(3.0f), f32w(-2.5f)}), f32w(sb_tt_fmul(3.0f, -2.5f)));
  EXPECT_EQ(h().seen(0, 0), f32w(3.0f));
  EXPECT_EQ(h().seen(0, 1), f32w(-2.5f));
  EXPECT_EQ(h().seen(0, 2), f32w(sb_tt_fmul(3.0f, -2.5f))) << "an f32 result is its bits, zero-extended";
}

TEST_P(TrampolineRun, DoubleResultAndItsOverride) {
  const ir::Signature fd = sig({T(Type::F64), T(Type::F64)}, T(Type::F64));
  h().build("sb_tt_fdiv", fd, {{Kind::FmodRet, "ldxdw %r0, [%r1+8]\nexit"}});  // returns b's bits
  EXPECT_EQ(h().call({f64w(1.0), f64w(0.0)}), f64w(sb_tt_fdiv(1.0, 0.0))) << "zero bits: the original runs";
  EXPECT_EQ(h().call({f64w(7.0), f64w(-2.5)}), f64w(-2.5)) << "the program's value is the double's bits";
}

TEST_P(TrampolineRun, FloatOverride) {
  const ir::Signature fm = sig({T(Type::F32), T(Type::F32)}, T(Type::F32));
  h().build("sb_tt_fmul", fm, {{Kind::FmodRet, returns(f32w(2.25f))}});
  EXPECT_EQ(h().call({f32w(3.0f), f32w(2.0f)}), f32w(2.25f));
}

TEST_P(TrampolineRun, StructsPassedByValue) {
  const ir::Signature s = sig({S(16), S(12), T(Type::I64)}, T(Type::I64));
  h().build("sb_tt_structs", s, {{Kind::Fentry, record_ctx(0, 5)}});
  const sb_tt_s16 x = {-40, 1ll << 50};
  const sb_tt_s12 y = {-3, 7, 1 << 30};
  uint64_t yw[2] = {};
  std::memcpy(yw, &y, sizeof y);
  const std::vector<uint64_t> args = {w(x.a), w(x.b), yw[0], yw[1], 9};
  EXPECT_EQ(int64_t(h().call(args)), sb_tt_structs(x, y, 9));
  for (size_t k = 0; k < args.size(); ++k)
    if (k != 3) {
      EXPECT_EQ(h().seen(0, k), args[k]) << "word " << k;
    }
  EXPECT_EQ(uint32_t(h().seen(0, 3)), uint32_t(yw[1])) << "the 12-byte struct's last field";
}

TEST_P(TrampolineRun, StructAfterTheIntegerRegisters) {
  const ir::Signature s = sig({T(Type::I64), T(Type::I64), T(Type::I64), T(Type::I64), T(Type::I64), T(Type::I64),
                               T(Type::I64), S(16), T(Type::I64)},
                              T(Type::I64));
  h().build("sb_tt_split", s, {{Kind::Fentry, record_ctx(0, 10)}});
  const std::vector<uint64_t> args = {1, 2, 3, 4, 5, 6, 7, w(-8), uint64_t(9) << 40, 10};
  const int64_t expect = sb_tt_split(1, 2, 3, 4, 5, 6, 7, {-8, int64_t(9) << 40}, 10);
  EXPECT_EQ(int64_t(h().call(args)), expect);
  for (size_t k = 0; k < args.size(); ++k) EXPECT_EQ(h().seen(0, k), args[k]) << "word " << k;
}

TEST_P(TrampolineRun, IntegerAfterAStructThatWentToTheStack) {
  const ir::Signature s = sig({T(Type::I64), T(Type::I64), T(Type::I64), T(Type::I64), T(Type::I64), S(16),
                               T(Type::I64), S(8)},
                              T(Type::I64));
  h().build("sb_tt_backfill", s, {{Kind::Fentry, record_ctx(0, 9)}});
  const sb_tt_s8 t = {-6, 300};
  uint64_t tw = 0;
  std::memcpy(&tw, &t, sizeof t);
  const std::vector<uint64_t> args = {1, 2, 3, 4, 5, w(-6), 7, uint64_t(1) << 33, tw};
  const int64_t expect = sb_tt_backfill(1, 2, 3, 4, 5, {-6, 7}, int64_t(1) << 33, t);
  EXPECT_EQ(int64_t(h().call_original(args)), expect);
  EXPECT_EQ(int64_t(h().call(args)), expect);
  for (size_t k = 0; k < 8; ++k) EXPECT_EQ(h().seen(0, k), args[k]) << "word " << k;
  EXPECT_EQ(h().seen(0, 8) & 0xffffffffffff, tw & 0xffffffffffff) << "the 6-byte struct";
}

TEST_P(TrampolineRun, VoidFunction) {
  const ir::Signature s = sig({T(Type::Ptr), T(Type::I64)}, T(Type::Void));
  h().build("sb_tt_store", s, {{Kind::Fentry, record_ctx(0, 2)}, {Kind::Fexit, kMarkRan}});
  h().call({Harness::kCells, w(-77)});
  EXPECT_EQ(h().guest().read_u64(Harness::kCells), w(-77));
  EXPECT_EQ(h().seen(0, 0), Harness::kCells);
  EXPECT_EQ(h().seen(1, 0), 1u) << "fexit ran";
}

TEST_P(TrampolineRun, FmodRetNonZeroSkipsTheOriginalAndLaterFmodRet) {
  const ir::Signature s = sig({T(Type::Ptr), T(Type::I64)}, T(Type::I64));
  h().build("sb_tt_side", s,
            {{Kind::FmodRet, "ldxdw %r0, [%r1+8]\nand %r0, 0x100\nexit"},  // v & 0x100: override when set
             {Kind::FmodRet, kMarkRan},
             {Kind::Fexit, record_ctx(0, 3)}});
  const uint64_t cell = Harness::kCells;
  EXPECT_EQ(h().call({cell, 5}), 6u) << "0: the original runs";
  EXPECT_EQ(h().guest().read_u64(cell), 5u);
  EXPECT_EQ(h().seen(1, 0), 1u) << "the next fmod_ret program ran";
  EXPECT_EQ(h().seen(2, 2), 6u);
  h().guest().write_u64(Harness::record(1), 0);
  EXPECT_EQ(h().call({cell, 0x105}), 0x100u) << "non-zero: the program's value";
  EXPECT_EQ(h().guest().read_u64(cell), 5u) << "the original ran";
  EXPECT_EQ(h().seen(1, 0), 0u) << "a later fmod_ret program ran";
  EXPECT_EQ(h().seen(2, 2), 0x100u) << "fexit sees the overriding value";
}

TEST_P(TrampolineRun, NoCallOriginal) {
  h().build("sb_tt_side", sig({T(Type::Ptr), T(Type::I64)}, T(Type::I64)), {{Kind::Fentry, kMarkRan}},
            {.call_original = false});
  EXPECT_EQ(h().call({Harness::kCells, 5}), 0u);
  EXPECT_EQ(h().guest().read_u64(Harness::kCells), 0u);
  EXPECT_EQ(h().seen(0, 0), 1u);
}

TEST_P(TrampolineRun, CookiesAndIpArgument) {
  h().build("sb_tt_add", kAddSig,
            {{Kind::Fentry, kRecordCookie, 7},
             {Kind::Fexit, kRecordCookie, 0x1122334455667788},
             {Kind::Fentry, record_ctx(-2, 1)}},  // the ip slot
            {.ip_arg = true});
  EXPECT_EQ(int64_t(h().call({1, 2})), sb_tt_add(1, 2));
  EXPECT_EQ(h().seen(0, 0), 7u);
  EXPECT_EQ(h().seen(1, 0), 0x1122334455667788u);
  EXPECT_EQ(h().seen(2, 0), h().target("sb_tt_add"));
}

TEST_P(TrampolineRun, Statistics) {
  h().build("sb_tt_add", kAddSig, {{Kind::Fentry, returns(0)}, {Kind::Fexit, returns(0)}});
  for (int i = 0; i < 5; ++i) EXPECT_EQ(int64_t(h().call({w(i), 1})), sb_tt_add(i, 1));
  for (size_t p = 0; p < 2; ++p) {
    const rt::ProgStats st = rt::stats_of(h().state(p));
    EXPECT_EQ(st.run_count, 5u) << "program " << p;
    EXPECT_GT(st.run_time_ns, 0u) << "program " << p;
    EXPECT_EQ(st.misses, 0u) << "program " << p;
  }
}

TEST_P(TrampolineRun, RecursionGuardSkipsAProgramAlreadyRunning) {
  h().build("sb_tt_side", sig({T(Type::Ptr), T(Type::I64)}, T(Type::I64)),
            {{Kind::Fentry, kMarkRan}, {Kind::FmodRet, returns(99)}});
  // The guest runs on this thread: a program entered here is "running".
  rt::ProgState& fentry = h().state(0);
  rt::ProgState& fmod = h().state(1);
  const uint64_t s0 = rt::sb_tramp_prog_enter(&fentry, nullptr), s1 = rt::sb_tramp_prog_enter(&fmod, nullptr);
  ASSERT_NE(s0, 0u);
  EXPECT_EQ(h().call({Harness::kCells, 3}), 4u) << "the skipped fmod_ret program returns nothing";
  EXPECT_EQ(h().seen(0, 0), 0u) << "the guarded fentry program ran";
  EXPECT_EQ(rt::stats_of(fentry).misses, 1u);
  EXPECT_EQ(rt::stats_of(fmod).misses, 1u);
  rt::sb_tramp_prog_exit(&fentry, s0, nullptr);
  rt::sb_tramp_prog_exit(&fmod, s1, nullptr);
  EXPECT_EQ(h().call({Harness::kCells, 3}), 99u) << "once left, the program runs again";
  EXPECT_EQ(h().seen(0, 0), 1u);
  EXPECT_EQ(rt::stats_of(fentry).misses, 1u);
}

TEST_P(TrampolineRun, ProgramsCallHelpersOnTheHost) {
  h().build("sb_tt_add", kAddSig,
            {{Kind::Fentry,
              "ldxdw %r6, [%r1+0]\nldxdw %r2, [%r1+8]\nmov %r1, %r6\nmov %r3, 1\nmov %r4, 2\nmov %r5, 3\ncall 7\n"
              "lddw %r3, {rec}\nstxdw [%r3+0], %r0\nmov %r0, 0\nexit"}});
  EXPECT_EQ(int64_t(h().call({10, 20})), sb_tt_add(10, 20));
  EXPECT_EQ(h().seen(0, 0), mix_helper(10, 20, 1, 2, 3));
}

TEST_P(TrampolineRun, NarrowIntegersAreExtendedByType) {
  const ir::Signature s = sig({T(Type::U32), T(Type::I8)}, T(Type::U32));
  h().build("sb_tt_u32", s, {{Kind::Fentry, record_ctx(0, 2)}, {Kind::Fexit, record_ctx(2, 1)}});
  EXPECT_EQ(h().call({0x7fffffff, w(-1)}), uint64_t(sb_tt_u32(0x7fffffff, -1)));
  EXPECT_EQ(h().call({0x80000000u, 5}), uint64_t(sb_tt_u32(0x80000000u, 5)));
  EXPECT_EQ(h().seen(0, 0), 0x80000000u) << "u32: zero-extended in ctx";
  EXPECT_EQ(h().seen(0, 1), 5u);
  EXPECT_EQ(h().seen(1, 0), 0x80000005u) << "u32 result: zero-extended in ctx";
  if (arch() == Arch::Riscv64) {
    EXPECT_EQ(h().guest().raw_return(), 0xffffffff80000005u) << "LP64 sign-extends";
  }

  Harness other(arch(), code_);
  other.build("sb_tt_i16", sig({T(Type::I16), T(Type::U8)}, T(Type::I16)), {{Kind::Fexit, record_ctx(0, 3)}});
  EXPECT_EQ(other.call({w(-300), 200}), w(sb_tt_i16(-300, 200)));
  EXPECT_EQ(other.seen(0, 0), w(-300));
  EXPECT_EQ(other.seen(0, 1), 200u);
  EXPECT_EQ(other.seen(0, 2), w(sb_tt_i16(-300, 200)));
}

TEST_P(TrampolineRun, NarrowOverridesAreReturnedAsTheType) {
  h().build("sb_tt_u32", sig({T(Type::U32), T(Type::I8)}, T(Type::U32)), {{Kind::FmodRet, returns(0x80000000u)}});
  EXPECT_EQ(h().call({1, 1}), 0x80000000u);
  if (arch() == Arch::Riscv64) {
    EXPECT_EQ(h().guest().raw_return(), 0xffffffff80000000u) << "LP64 sign-extends";
  }
}

TEST_P(TrampolineRun, UnsignedArgumentsPassedAsTheAbiWants) {
  // On riscv64 the target compares with a sign-extended constant: it relies
  // on the trampoline passing a u32 sign-extended.
  h().build("sb_tt_below", sig({T(Type::U32)}, T(Type::I32)), {{Kind::Fentry, returns(0)}});
  for (uint32_t a : {0u, 0x7fffffffu, 0x80000001u, 0x80000004u, 0x80000005u, 0x80000009u, 0xffffffffu})
    EXPECT_EQ(h().call({a}), uint64_t(sb_tt_below(a))) << fmt::format("{:#x}", a);
}

INSTANTIATE_TEST_SUITE_P(Archs, TrampolineRun, testing::ValuesIn(kArchCases),
                         [](const testing::TestParamInfo<ArchCase>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace sb::test
