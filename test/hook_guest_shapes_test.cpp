// Entry hooks of real guest functions: the shapes of test/hook_shapes/shapes.c
// cross-compiled for arm64 and riscv64 by gcc and clang at -O2 and -Os
// (linked by the cross gcc at a fixed address, loaded into Unicorn), each
// hooked with a trampoline (runtime/hook/hook_guest.h) given its size from
// the symbol table, near (the shortest patch) and far (the longest). Each
// is either hooked, and then it returns what the native build returns
// while fentry runs once per call (never once per loop iteration) and fexit
// sees the result, and unhooking restores its bytes; or it is refused for
// a reason the header names, and still runs. The shapes with no loop near
// the entry must be hooked in every build unless smaller than the patch.
// Skipped without the cross compilers (tools/install-deps.sh installs them).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <llvm/Object/ELFObjectFile.h>
#include <llvm/Object/ObjectFile.h>

#include <bit>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "backends/compile.h"
#include "frontend/assembler.h"
#include "frontend/trampoline.h"
#include "ir/diag.h"
#include "runtime/exec/guest.h"
#include "runtime/hook/hook_guest.h"
#include "runtime/hook/tramp_runtime.h"
#include "test/hook_shapes/shapes.h"

extern "C" const struct sb_shape_table sb_ref_table;  // the native build: the expected values

namespace sb::test {
namespace {

namespace fs = std::filesystem;
using ir::Type;

constexpr uint64_t kText = 0x100000;   // the shapes' code and constants
constexpr uint64_t kData = 0x200000;   // their writable data
constexpr uint64_t kNear = 0x180000;   // the trampoline: in reach of arm64 b / riscv64 jal
constexpr uint64_t kFar = 0x40000000;  // beyond: arm64 ldr+br, riscv64
                                       // auipc+jalr (more bytes displaced)
constexpr uint64_t kStub = 0x300000;
constexpr uint64_t kProg = 0x400000;  // + 0x10000 * i: the programs
constexpr uint64_t kRec = 0x600000;   // what the programs record; the arguments' memory
constexpr uint64_t kCount = kRec, kResult = kRec + 8, kArgMem = kRec + 0x100;

struct Build {
  Arch arch;
  const char* gcc;    // the cross gcc: compiles, or only links what clang compiled
  const char* clang;  // clang's --target, or null: gcc compiles
  const char* flags;
};

struct Loaded {
  std::vector<uint8_t> text;                                    // from kText: code and constants
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> data;  // address, bytes
  uint64_t data_size = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> symbols;  // name -> address, size
};

// Compiles and links shapes.c at kText / kData; throws sb::Error with the
// compiler's output. riscv64: without linker relaxation, which would make
// globals gp-relative (no start-up code sets gp here), and without small
// data sections (clang's would stay below kData).
Loaded cross_build(const Build& b) {
  const fs::path dir = fs::path(SB_GUEST_SHAPES_WORK_DIR);
  fs::create_directories(dir);
  const std::string tag =
      fmt::format("{}-{}-{}-{}", backend::arch_name(b.arch), b.clang ? "clang" : "gcc", b.flags + 1, getpid());
  const fs::path obj = dir / ("shapes-" + tag + ".o"), exe = dir / ("shapes-" + tag),
                 log = dir / ("shapes-" + tag + ".log");
  const std::string relax = b.arch == Arch::Riscv64 ? " -mno-relax" : "";
  const std::string small = b.arch == Arch::Riscv64 ? " -msmall-data-limit=0" : "";  // no .sdata below -Tdata
  const std::string cc = b.clang ? fmt::format("clang --target={}", b.clang) : std::string(b.gcc);
  const std::string cmd = fmt::format(
      "{} {}{}{} -ffreestanding -fno-pic -fno-asynchronous-unwind-tables -ffp-contract=off -DSB_SHAPE_PREFIX=sb_g_ "
      "-I{} -c {} -o {} >{} 2>&1 && {} -nostdlib -static -no-pie{} "
      "-Wl,-Ttext={:#x},-Tdata={:#x},--entry=sb_g_tiny,--build-id=none {} -o {} >>{} 2>&1",
      cc, b.flags, relax, small, SB_SOURCE_DIR, SB_SOURCE_DIR "/test/hook_shapes/shapes.c", obj.string(), log.string(), b.gcc,
      relax, kText, kData, obj.string(), exe.string(), log.string());
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream in(log);
    throw Error(cmd, std::string(std::istreambuf_iterator<char>(in), {}));
  }
  fs::remove(obj);
  fs::remove(log);
  auto file = llvm::object::ObjectFile::createObjectFile(exe.string());
  if (!file) throw Error(exe.string(), llvm::toString(file.takeError()));
  const auto* elf = llvm::dyn_cast<llvm::object::ELFObjectFileBase>(file->getBinary());
  if (!elf) throw Error(exe.string(), "not ELF");
  Loaded out;
  for (const llvm::object::ELFSectionRef s : elf->sections()) {
    if (!(s.getFlags() & llvm::ELF::SHF_ALLOC) || s.getSize() == 0) continue;
    const uint64_t at = s.getAddress();
    std::vector<uint8_t> bytes(s.getSize(), 0);
    if (s.getType() != llvm::ELF::SHT_NOBITS) {
      llvm::Expected<llvm::StringRef> c = s.getContents();
      if (!c) throw Error(exe.string(), llvm::toString(c.takeError()));
      bytes.assign(c->bytes_begin(), c->bytes_end());
    }
    if (s.getFlags() & llvm::ELF::SHF_WRITE) {
      if (at < kData) throw Error(exe.string(), fmt::format("writable section at {:#x}, below the data", at));
      out.data_size = std::max(out.data_size, at + bytes.size() - kData);
      out.data.push_back({at, std::move(bytes)});
    } else {
      if (at < kText || at + bytes.size() > kData) throw Error(exe.string(), fmt::format("section at {:#x}", at));
      if (out.text.size() < at + bytes.size() - kText) out.text.resize(at + bytes.size() - kText);
      std::copy(bytes.begin(), bytes.end(), out.text.begin() + ptrdiff_t(at - kText));
    }
  }
  for (const llvm::object::ELFSymbolRef sym : elf->symbols()) {
    auto name = sym.getName();
    auto value = sym.getValue();
    if (!name || !value) {
      llvm::consumeError(name.takeError());
      llvm::consumeError(value.takeError());
      continue;
    }
    if (name->starts_with("sb_g_")) out.symbols[name->substr(5).str()] = {*value, sym.getSize()};
  }
  fs::remove(exe);
  return out;
}

ir::NativeValue V(Type t, uint8_t size) { return {t, size}; }
const ir::NativeValue kI32 = V(Type::I32, 4), kU32 = V(Type::U32, 4), kI64 = V(Type::I64, 8), kPtr = V(Type::Ptr, 8),
                      kF64 = V(Type::F64, 8), kF32 = V(Type::F32, 4), kVoid = V(Type::Void, 0);
uint64_t s32(int32_t v) { return uint64_t(int64_t(v)); }
uint64_t bits(double d) { return std::bit_cast<uint64_t>(d); }
uint64_t bits(float f) { return std::bit_cast<uint32_t>(f); }

struct Shape {
  const char* name;
  std::vector<ir::NativeValue> args;
  ir::NativeValue ret;
  std::vector<uint64_t> words;  // one call's argument words (pointers into kArgMem)
  uint64_t expect;              // its result, from the native build, as Guest::call gives it
  uint64_t entries;             // calls of the entry it makes
  bool must_hook;
};

// The memory at kArgMem the pointer arguments read: a long, an int, four ints.
constexpr long kLong = 12;
constexpr int kSpinWord = 9;
constexpr int kInts[4] = {3, -4, 10, 8};

std::vector<Shape> shapes() {
  const sb_shape_table& r = sb_ref_table;
  long l = kLong;
  volatile int w = kSpinWord;
  *r.self = r.recurse;
  const uint64_t p_long = kArgMem, p_int = kArgMem + 8, p_ints = kArgMem + 16;
  return {
      {"tiny", {kI32}, kI32, {s32(41)}, s32(r.tiny(41)), 1, false},
      {"zero", {}, kI32, {}, s32(r.zero()), 1, false},
      {"empty", {}, kVoid, {}, 0, 1, false},
      {"rip_first", {kI32}, kI32, {s32(-6)}, s32(r.rip_first(-6)), 1, true},
      {"early_branch", {kPtr, kI64}, kI64, {p_long, 5}, uint64_t(r.early_branch(&l, 5)), 1, true},
      {"jump_table", {kU32, kI64, kI64}, kI64, {7, 100, 3}, uint64_t(r.jump_table(7, 100, 3)), 1, true},
      {"spin", {kPtr}, kI32, {p_int}, s32(r.spin(&w)), 1, false},
      {"count_down", {kU32, kU32}, kU32, {50, 7}, uint64_t(r.count_down(50, 7)), 1, false},
      {"sumto", {kPtr, kI32}, kI32, {p_ints, 4}, s32(r.sumto(kInts, 4)), 1, false},
      {"long_loop", {kU32, kU32}, kU32, {9, 1}, uint64_t(r.long_loop(9, 1)), 1, false},
      {"recurse", {kI32}, kI32, {5}, s32(r.recurse(5)), 6, true},
      {"many",
       {kI64, kI32, V(Type::I16, 2), V(Type::I8, 1), kI64, kI64, kI64, kU32, kI64, kI64, kI64, kI64},
       kI64,
       {1, s32(-2), uint64_t(int64_t(3)), uint64_t(int64_t(-4)), 5, 6, 7, 8, 9, 10, 11, 12},
       uint64_t(r.many(1, -2, 3, -4, 5, 6, 7, 8, 9, 10, 11, 12)),
       1,
       true},
      {"floats",
       {kF64, kF32, kF64, kI32},
       kF64,
       {bits(1.5), bits(2.25f), bits(7.0), 3},
       bits(r.floats(1.5, 2.25f, 7.0, 3)),
       1,
       true},
      {"pair", {V(Type::Struct, 16), kI64}, kI64, {10, uint64_t(-3), 4}, uint64_t(r.pair({10, -3}, 4)), 1, true},
  };
}

// Why a guest hook may be refused (hook_guest.h); anything else is a failure.
bool known_refusal(const std::string& m) {
  return m.find("too short to hook") != std::string::npos ||
         m.find("branches into the displaced bytes") != std::string::npos ||
         m.find("jumps back to the entry") != std::string::npos;
}

class GuestShapes : public testing::TestWithParam<Build> {};

TEST_P(GuestShapes, EveryShapeIsHookedCorrectlyOrRefused) {
  const Build& b = GetParam();
  for (const char* tool : {b.gcc, b.clang ? "clang" : b.gcc})
    if (std::system(fmt::format("command -v {} >/dev/null 2>&1", tool).c_str()) != 0)
      GTEST_SKIP() << "no cross compiler " << tool;
  const Loaded img = cross_build(b);
  const rt::HelperTable helpers;
  CompileOptions copts;
  copts.arch = b.arch;
  // fentry counts its runs at kCount; fexit writes the result word (ctx[n]) at
  // kResult.
  const std::vector<uint8_t> fentry = compile(bpf::assemble(fmt::format("lddw %r2, {:#x}\nldxdw %r3, [%r2+0]\nadd "
                                                                        "%r3, 1\nstxdw [%r2+0], %r3\n"
                                                                        "mov %r0, 0\nexit",
                                                                        kCount)),
                                              helpers, copts)
                                          .image.text;
  std::string summary;
  size_t hooked = 0, refused = 0;
  for (const uint64_t kTramp : {kNear, kFar})
    for (const Shape& sh : shapes()) {
      SCOPED_TRACE(
          fmt::format("{} {} {}: {}", backend::arch_name(b.arch), b.flags, kTramp == kFar ? "far" : "near", sh.name));
      if (sh.name == std::string("tiny")) summary += kTramp == kFar ? "\n  far:" : "\n  near:";
      auto sym = img.symbols.find(sh.name);
      ASSERT_NE(sym, img.symbols.end());
      const auto [address, size] = sym->second;
      ASSERT_GT(size, 0u);
      rt::Guest g(b.arch);
      g.map_code(kText, img.text);
      g.map_data(kData, std::max<uint64_t>(img.data_size, 1));
      for (const auto& [at, bytes] : img.data) g.write(at, bytes.data(), bytes.size());
      g.write_u64(img.symbols.at("self").first, img.symbols.at("recurse").first);
      g.map_data(kRec, 0x1000);
      const long lv = kLong;
      const int iv = kSpinWord;
      g.write(kArgMem, &lv, 8);
      g.write(kArgMem + 8, &iv, 4);
      g.write(kArgMem + 16, kInts, sizeof kInts);
      ir::Signature sig;
      sig.args = sh.args;
      sig.ret = sh.ret;
      auto code_of = [&] {
        std::vector<uint8_t> c(size);
        g.read(address, c.data(), c.size());
        return c;
      };
      const std::vector<uint8_t> before = code_of();
      ASSERT_EQ(g.call(address, sig, sh.words), sh.expect) << "unhooked";

      // The trampoline: fentry, and fexit when there is a result.
      uint64_t enter = g.add_host_function([](const std::array<uint64_t, 5>& a) {
        return rt::sb_tramp_prog_enter(reinterpret_cast<rt::ProgState*>(a[0]), nullptr);
      });
      uint64_t exit = g.add_host_function([](const std::array<uint64_t, 5>& a) -> uint64_t {
        rt::sb_tramp_prog_exit(reinterpret_cast<rt::ProgState*>(a[0]), a[1], nullptr);
        return 0;
      });
      rt::ProgState states[2];
      tramp::Description d;
      d.file = d.target = sh.name;
      d.signature = sig;
      tramp::Bindings tb;
      tb.ip = address;
      tb.original = kStub;
      tb.prog_enter = enter;
      tb.prog_exit = exit;
      const bool returns = sh.ret.type != Type::Void;
      g.map_code(kProg, fentry);
      d.programs.push_back({tramp::Kind::Fentry, bpf::assemble("mov %r0, 0\nexit"), 0});
      tb.entries.push_back(kProg);
      tb.states.push_back(reinterpret_cast<uintptr_t>(&states[0]));
      if (returns) {
        const std::vector<uint8_t> fexit =
            compile(bpf::assemble(fmt::format("lddw %r3, {:#x}\nldxdw %r2, [%r1+{}]\nstxdw [%r3+0], "
                                              "%r2\nmov %r0, 0\nexit",
                                              kResult, 8 * sig.words())),
                    helpers, copts)
                .image.text;
        g.map_code(kProg + 0x10000, fexit);
        d.programs.push_back({tramp::Kind::Fexit, bpf::assemble("mov %r0, 0\nexit"), 0});
        tb.entries.push_back(kProg + 0x10000);
        tb.states.push_back(reinterpret_cast<uintptr_t>(&states[1]));
      }
      ir::Module m = tramp::lower(d, tb);
      ir::check(m);
      g.map_code(kTramp, generate(m, copts).text);

      rt::GuestHookRequest req;
      req.arch = b.arch;
      req.address = address;
      req.code = before;
      req.size = size;
      req.destination = kTramp;
      req.stub_address = kStub;
      rt::GuestHook hook;
      try {
        hook = rt::build_guest_hook(req);
      } catch (const Error& e) {
        EXPECT_TRUE(known_refusal(e.message())) << e.what();
        if (sh.must_hook)  // only a function smaller than the patch may be
                           // refused
          EXPECT_NE(e.message().find("too short to hook"), std::string::npos) << e.what();
        EXPECT_EQ(g.call(address, sig, sh.words), sh.expect) << "after the refusal";
        summary += fmt::format(" {} refused ({})", sh.name, e.message().substr(0, 40));
        ++refused;
        continue;
      }
      rt::install(g, hook);
      EXPECT_EQ(g.call(address, sig, sh.words), sh.expect) << "hooked";
      EXPECT_EQ(g.read_u64(kCount), sh.entries) << "fentry runs once per call of the entry";
      if (returns)
        EXPECT_EQ(g.read_u64(kResult) & (sh.ret.size < 8 ? (uint64_t(1) << (8 * sh.ret.size)) - 1 : ~0ull),
                  sh.expect & (sh.ret.size < 8 ? (uint64_t(1) << (8 * sh.ret.size)) - 1 : ~0ull))
            << "fexit saw the result";
      rt::uninstall(g, hook);
      EXPECT_EQ(code_of(), before) << "unhooking restored the function";
      EXPECT_EQ(g.call(address, sig, sh.words), sh.expect) << "after unhooking";
      EXPECT_EQ(g.read_u64(kCount), sh.entries) << "no fentry after unhooking";
      summary += fmt::format(" {} ok", sh.name);
      ++hooked;
    }
  std::printf("%s %s %s:%s\n%zu hooked, %zu refused\n", backend::arch_name(b.arch), b.clang ? "clang" : "gcc", b.flags,
              summary.c_str(), hooked, refused);
}

std::vector<Build> builds() {
  std::vector<Build> v;
  for (const char* clang : {static_cast<const char*>(nullptr), "aarch64-linux-gnu", "riscv64-linux-gnu"})
    for (const char* flags : {"-O2", "-Os"}) {
#ifdef SPRINGBOARD_HAVE_ARM64
      if (!clang || clang[0] == 'a') v.push_back({Arch::Arm64, "aarch64-linux-gnu-gcc", clang, flags});
#endif
#ifdef SPRINGBOARD_HAVE_RISCV64
      if (!clang || clang[0] == 'r') v.push_back({Arch::Riscv64, "riscv64-linux-gnu-gcc", clang, flags});
#endif
    }
  return v;
}
std::string build_name(const testing::TestParamInfo<Build>& info) {
  return fmt::format("{}_{}_{}", backend::arch_name(info.param.arch), info.param.clang ? "clang" : "gcc",
                     info.param.flags + 1);
}
INSTANTIATE_TEST_SUITE_P(Builds, GuestShapes, testing::ValuesIn(builds()), build_name);

}  // namespace
}  // namespace sb::test
