// One probe program on every architecture: probes/regs.bpf.c, compiled by
// clang -target bpf for __TARGET_ARCH_x86, _arm64 and _riscv, as a uprobe
// and a uretprobe on mix(a, b, c, d, e) = a - b + c * d - e. On x86-64 the
// function is this process's own and the probe native
// (runtime/hook/trampoline.h); on arm64 and riscv64 it is built with MC
// in a Unicorn guest, hooked by runtime/hook/hook_guest.h with the probe
// (frontend/trampoline.h, lower_probe) and its return probe
// (lower_return_probe, GuestReturnStack). Each must see the five
// arguments (PT_REGS_PARM1..5), PT_REGS_IP = the function, the result
// (PT_REGS_RC) and, at the return, the return address as PT_REGS_IP and
// the stack pointer as the architecture leaves it.
//
//
// ProbeLoop: the same object's probe_site program at an instruction in the
// middle of probes/loop.c's loop, built by gcc -O2 for this process and
// cross-compiled for the guests: the registers the loop keeps live there
// (its counter, sum and both arguments, named by the compiler) read
// right on every iteration, the probe fires once per iteration at the
// loop's head and at every other instruction of the loop, the function's
// result is unchanged, and an offset inside an instruction is refused.
// ProbeGuest.InsideAFunctionEveryRegisterIsSeenAndKept: a probe between
// code that gives every register its own value and code that stores them
// all sees each in its pt_regs and leaves each as it was (x16 / t1, which
// the probe's jump uses, included).
//
// Guest layout: kFunc the function, kProbe / kReturnProbe the probes
// (within reach of arm64 b and riscv64 jal), kStub the displaced
// instructions, kProg + 64K*i the programs, kRec the record (also mapped
// at the same address in this process for the native run); for the loop
// kSiteProbe / kSiteStub + 8K*j the j-th probe and its stub, kSiteProg
// the program.
#include <sys/mman.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <llvm/Object/ELFObjectFile.h>
#include <llvm/Object/ObjectFile.h>

#include "backends/compile.h"
#include "backends/mc/disasm.h"
#include "backends/mc/emitter.h"
#include "backends/mc/inst.h"
#include "backends/mc/mc_target.h"
#include "frontend/elf_loader.h"
#include "frontend/trampoline.h"
#include "ir/diag.h"
#include "runtime/exec/guest.h"
#include "runtime/hook/hook_guest.h"
#include "runtime/hook/trampoline.h"
#include "runtime/hook/tramp_runtime.h"
#include "guest_prog_runtime.h"
#ifdef SPRINGBOARD_HAVE_ARM64
#include "backends/arm64/arm64.h"
#endif
#ifdef SPRINGBOARD_HAVE_RISCV64
#include "backends/riscv64/riscv64.h"
#endif

extern "C" long sb_probe_loop(long n, long k);         // probes/loop.c
extern "C" const uint8_t __start_sb_probe_sites[];  // its SB_SITE record
extern "C" const uint8_t __stop_sb_probe_sites[];

extern "C" __attribute__((noinline, used)) long sb_probe_arch_mix(long a, long b, long c, long d, long e) {
  long r = a - b + c * d - e;
  __asm__ volatile("" : "+r"(r));
  return r;
}

namespace sb::test {
namespace {

constexpr uint64_t kFunc = 0x100000, kProbe = 0x140000, kReturnProbe = 0x150000, kStub = 0x160000,
                   kProg = 0x170000;
constexpr uint64_t kRec = 0x10000000;  // REC in probes/regs.bpf.c

struct Record {  // struct record in probes/regs.bpf.c
  uint64_t entries, returns;
  int64_t a, b, c, d, e;
  uint64_t ip, sp, ret_ip, ret_sp;
  int64_t ret;
};

constexpr int64_t kArgs[5] = {100, 7, 6, 5, 4};
constexpr int64_t kModel = 100 - 7 + 6 * 5 - 4;

bpf::Program program(const char* arch, const char* section, const char* function) {
  const std::string path = fmt::format("{}/regs.{}.bpf.o", SB_PROBES_DIR, arch);
  return bpf::read_elf_file(path, {section, function}, [](const bpf::MapDef& d) -> bpf::MapAddress {
           throw Error(d.name, "probes/regs.bpf.c has no maps");
         }).program;
}

ir::Signature five_longs() {
  ir::Signature s;
  for (int i = 0; i < 5; ++i) s.args.push_back({ir::Type::I64, 8});
  s.ret = {ir::Type::I64, 8};
  return s;
}

#if defined(__x86_64__)
TEST(ProbeArch, X86_64Native) {
  void* rec = mmap(reinterpret_cast<void*>(kRec), 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_EQ(rec, reinterpret_cast<void*>(kRec)) << "the record's address is taken in this process";
  rt::TrampolineTable table;
  rt::TrampolineOptions opts;
  opts.probe = true;
  void* target = reinterpret_cast<void*>(&sb_probe_arch_mix);
  rt::Trampoline& t = table.get(target, {}, opts, "sb_probe_arch_mix");
  rt::HelperTable helpers;
  t.link(tramp::Kind::Uprobe, program("x86", "uprobe", "probe_mix"), 0, helpers);
  t.link(tramp::Kind::Uretprobe, program("x86", "uretprobe", "retprobe_mix"), 0, helpers);
  long (*volatile fn)(long, long, long, long, long) = &sb_probe_arch_mix;
  EXPECT_EQ(fn(kArgs[0], kArgs[1], kArgs[2], kArgs[3], kArgs[4]), kModel);
  table.put(target);
  Record r;
  std::memcpy(&r, rec, sizeof r);
  EXPECT_EQ(r.entries, 1u);
  EXPECT_EQ(r.returns, 1u);
  EXPECT_EQ(r.a, kArgs[0]);
  EXPECT_EQ(r.b, kArgs[1]);
  EXPECT_EQ(r.c, kArgs[2]);
  EXPECT_EQ(r.d, kArgs[3]);
  EXPECT_EQ(r.e, kArgs[4]);
  EXPECT_EQ(r.ip, reinterpret_cast<uint64_t>(target));
  EXPECT_EQ(r.ret, kModel);
  EXPECT_EQ(r.ret_sp, r.sp + 8);  // the return popped its address
  EXPECT_NE(r.ret_ip, 0u);
  munmap(rec, 4096);
}
#endif

// Guest code built with MC for `arch` (its backend's target):
// body(e, t, x) emits it, x(n) naming register n. Empty without the backend.
template <class Body>
std::vector<uint8_t> guest_code(Arch arch, Body body) {
  const mc::TargetSpec* spec = nullptr;
#ifdef SPRINGBOARD_HAVE_ARM64
  if (arch == Arch::Arm64) spec = &arm64::kSpec;
#endif
#ifdef SPRINGBOARD_HAVE_RISCV64
  if (arch == Arch::Riscv64) spec = &riscv64::kSpec;
#endif
  if (!spec) return {};
  const mc::McTarget& t = mc::McTarget::get(*spec);
  mc::Emitter e(t, mc::OutputKind::Bytes);
  e.begin_function(e.new_label(), false, 4);
  auto x = [&](int n) {
    const std::string name = arch == Arch::Arm64 && n == 29 ? std::string("FP") : fmt::format("X{}", n);
    return t.reg(name.c_str());
  };
  body(e, t, x);
  return e.finish().text;
}

// The function in a guest.
std::vector<uint8_t> guest_mix(Arch arch) {
  return guest_code(arch, [&](mc::Emitter& e, const mc::McTarget& t, auto x) {
    if (arch == Arch::Arm64) {
      e.emit(mc::I(t.opcode("SUBXrs")).r(x(0)).r(x(0)).r(x(1)).i(0));
      e.emit(mc::I(t.opcode("MADDXrrr")).r(x(0)).r(x(2)).r(x(3)).r(x(0)));
      e.emit(mc::I(t.opcode("SUBXrs")).r(x(0)).r(x(0)).r(x(4)).i(0));
      e.emit(mc::I(t.opcode("RET")).r(t.reg("LR")));
      return;
    }
    e.emit(mc::I(t.opcode("SUB")).r(x(10)).r(x(10)).r(x(11)));  // a0 -= a1
    e.emit(mc::I(t.opcode("MUL")).r(x(5)).r(x(12)).r(x(13)));   // t0 = a2 * a3
    e.emit(mc::I(t.opcode("ADD")).r(x(10)).r(x(10)).r(x(5)));
    e.emit(mc::I(t.opcode("SUB")).r(x(10)).r(x(10)).r(x(14)));  // a0 -= a4
    e.emit(mc::I(t.opcode("JALR")).r(x(0)).r(x(1)).i(0));
  });
}

class ProbeGuest : public testing::TestWithParam<Arch> {};


TEST_P(ProbeGuest, SameProgramSeesArgumentsAndResult) {
  const Arch arch = GetParam();
  const char* name = arch == Arch::Arm64 ? "arm64" : "riscv";
  rt::Guest g(arch);
  const std::vector<uint8_t> code = guest_mix(arch);
  ASSERT_FALSE(code.empty());
  g.map_code(kFunc, code);
  g.map_data(kRec, 0x1000);
  const ir::Signature sig = five_longs();
  ASSERT_EQ(g.call(kFunc, sig, {100, 7, 6, 5, 4}), uint64_t(kModel)) << "unhooked";

  rt::ProgState states[2];
  const GuestProgRuntime runtime(g);
  rt::GuestReturnStack returns(g, arch);
  tramp::Description d;
  d.file = d.target = "mix";
  d.no_vector_use = true;  // a guest's helpers are host functions: they leave its registers alone
  tramp::Bindings b;
  b.ip = kFunc;
  b.original = kStub;
  b.prog_enter = runtime.enter;
  b.prog_exit = runtime.exit;
  b.ret_enter = returns.enter();
  b.ret_landing = kReturnProbe;
  b.ret_pop = returns.pop();
  CompileOptions opts;
  opts.arch = arch;
  rt::HelperTable helpers;
  const char* sections[2][2] = {{"uprobe", "probe_mix"}, {"uretprobe", "retprobe_mix"}};
  for (size_t i = 0; i < 2; ++i) {
    tramp::AttachedProgram p{i == 0 ? tramp::Kind::Uprobe : tramp::Kind::Uretprobe,
                             program(name, sections[i][0], sections[i][1]), 0};
    const uint64_t at = kProg + 0x10000 * i;
    g.map_code(at, compile(p.program, helpers, opts).image.text);
    b.entries.push_back(at);
    b.states.push_back(reinterpret_cast<uint64_t>(&states[i]));
    d.programs.push_back(std::move(p));
  }
  const ir::Module probe = tramp::lower_probe(d, b), ret = tramp::lower_return_probe(d, b);
  ir::check(probe);
  ir::check(ret);
  g.map_code(kProbe, generate(probe, opts).text);
  g.map_code(kReturnProbe, generate(ret, opts).text);
  const rt::GuestHook hook = rt::build_guest_hook({arch, kFunc, code, code.size(), kProbe, kStub, true});
  rt::install(g, hook);

  EXPECT_EQ(g.call(kFunc, sig, {100, 7, 6, 5, 4}), uint64_t(kModel));
  EXPECT_EQ(g.call(kFunc, sig, {1, 2, 3, 4, 5}), uint64_t(1 - 2 + 12 - 5));
  EXPECT_EQ(returns.depth(), 0u);
  Record r{};
  for (size_t w = 0; w < sizeof r / 8; ++w) reinterpret_cast<uint64_t*>(&r)[w] = g.read_u64(kRec + 8 * w);
  EXPECT_EQ(r.entries, 2u);
  EXPECT_EQ(r.returns, 2u);
  EXPECT_EQ(r.a, 1);
  EXPECT_EQ(r.b, 2);
  EXPECT_EQ(r.c, 3);
  EXPECT_EQ(r.d, 4);
  EXPECT_EQ(r.e, 5);
  EXPECT_EQ(r.ip, kFunc);
  EXPECT_EQ(r.ret, 1 - 2 + 12 - 5);
  EXPECT_EQ(r.ret_ip, rt::Guest::kReturnAddr);  // where call() returns to
  EXPECT_EQ(r.ret_sp, r.sp);                    // a link register: the stack is as at the entry
  EXPECT_EQ(r.sp % 16, 0u);
  rt::uninstall(g, hook);
  EXPECT_EQ(g.call(kFunc, sig, {1, 2, 3, 4, 5}), uint64_t(1 - 2 + 12 - 5));
  EXPECT_EQ(g.read_u64(kRec), 2u) << "unhooked, the probe still ran";
}

std::vector<Arch> guest_archs() {
  std::vector<Arch> v;
#ifdef SPRINGBOARD_HAVE_ARM64
  v.push_back(Arch::Arm64);
#endif
#ifdef SPRINGBOARD_HAVE_RISCV64
  v.push_back(Arch::Riscv64);
#endif
  return v;
}

INSTANTIATE_TEST_SUITE_P(Archs, ProbeGuest, testing::ValuesIn(guest_archs()),
                         [](const testing::TestParamInfo<Arch>& i) {
                           return std::string(i.param == Arch::Arm64 ? "arm64" : "riscv64");
                         });

// ---- a probe inside a function: probes/loop.c ------------------------------

constexpr uint64_t kSiteProbe = 0x1a0000, kSiteStub = 0x1c0000, kSiteStep = 0x2000, kSiteProg = 0x1e0000;
constexpr int64_t kLoopN = 5, kLoopK = 7;
constexpr size_t kSiteHits = 8;
// every_register's stores, below the sp call() starts with
uint64_t saved_at(const rt::Guest& g) { return g.stack_base() + rt::Guest::kStackSize - 64 - 256; }

struct SiteRecord {  // struct site_record in probes/regs.bpf.c, at kRec + 0x100
  uint64_t hits;
  uint64_t ip[kSiteHits], sp[kSiteHits];
  uint64_t regs[kSiteHits][34];
};

// The loop's state at its head on each iteration, and its result.
struct LoopModel {
  std::vector<std::array<int64_t, 4>> heads;  // i, s, n, k
  int64_t result = 0;
};
LoopModel model_loop(int64_t n, int64_t k) {
  LoopModel m;
  for (int64_t i = 0; i < n; ++i) {
    m.heads.push_back({i, m.result, n, k});
    m.result += i * k ^ (m.result >> 3);
  }
  return m;
}

// The function as built for one architecture: its code from its entry and
// the SB_SITE record (the site's offset, the registers of i, s, n, k).
struct Loop {
  uint64_t address = 0;
  std::vector<uint8_t> code;
  uint64_t site = 0;  // offset
  std::array<std::string, 4> regs;
};

void parse_site(Loop& l, const uint8_t* data, size_t size) {
  ASSERT_GE(size, 16u);
  uint64_t at = 0;
  std::memcpy(&at, data, 8);
  l.site = at - l.address;
  std::istringstream names(std::string(reinterpret_cast<const char*>(data + 8)));
  for (std::string& r : l.regs) names >> r;
  ASSERT_LE((8 + std::strlen(reinterpret_cast<const char*>(data + 8)) + 1 + 7) / 8 * 8, size);
  ASSERT_EQ((8 + std::strlen(reinterpret_cast<const char*>(data + 8)) + 1 + 7) / 8 * 8, size)
      << "one SB_SITE: the compiler did not duplicate the loop";
}

// The cross-compiled ELF (test/CMakeLists.txt), or nullopt without it.
std::optional<Loop> guest_loop(Arch arch) {
  const std::string path = fmt::format("{}/loop.{}", SB_PROBES_DIR, arch == Arch::Arm64 ? "arm64" : "riscv64");
  if (!std::filesystem::exists(path)) return std::nullopt;
  auto file = llvm::object::ObjectFile::createObjectFile(path);
  if (!file) throw Error(path, llvm::toString(file.takeError()));
  Loop l;
  uint64_t size = 0;
  for (const llvm::object::SymbolRef& sym : file->getBinary()->symbols()) {
    auto name = sym.getName();
    auto value = sym.getValue();
    if (name && value && *name == "sb_probe_loop") {
      l.address = *value;
      size = llvm::object::ELFSymbolRef(sym).getSize();
    }
    if (!name) llvm::consumeError(name.takeError());
    if (!value) llvm::consumeError(value.takeError());
  }
  std::vector<uint8_t> sites;
  for (const llvm::object::SectionRef& sec : file->getBinary()->sections()) {
    auto name = sec.getName();
    auto contents = sec.getContents();
    if (!name || !contents) throw Error(path, "a section does not read");
    if (*name == ".text" && sec.getAddress() <= l.address && l.address + size <= sec.getAddress() + sec.getSize())
      l.code.assign(contents->bytes_begin() + (l.address - sec.getAddress()),
                    contents->bytes_begin() + (l.address - sec.getAddress() + size));
    if (*name == "sb_probe_sites") sites.assign(contents->bytes_begin(), contents->bytes_end());
  }
  if (l.code.empty() || sites.empty()) throw Error(path, "no sb_probe_loop with an SB_SITE record");
  parse_site(l, sites.data(), sites.size());
  return l;
}

Loop native_loop() {
  Loop l;
  l.address = reinterpret_cast<uint64_t>(&sb_probe_loop);
  parse_site(l, __start_sb_probe_sites, size_t(__stop_sb_probe_sites - __start_sb_probe_sites));
  // Its bytes up to the loop's end (a return) and a little beyond, for decoding.
  const auto* p = reinterpret_cast<const uint8_t*>(l.address);
  l.code.assign(p, p + l.site + 128);
  return l;
}

// The word of the arch's pt_regs (as probes/regs.bpf.c copies it) holding
// the register the asm operand names.
size_t reg_word(Arch arch, const std::string& name) {
  if (arch == Arch::Arm64 && name.size() > 1 && name[0] == 'x') return std::stoul(name.substr(1));
  static const char* const kX86[] = {"%r15", "%r14", "%r13", "%r12", "%rbp", "%rbx", "%r11", "%r10", "%r9",
                                     "%r8",  "%rax", "%rcx", "%rdx", "%rsi", "%rdi"};
  static const char* const kRiscv[] = {"pc", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0",
                                       "a1", "a2", "a3", "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5",
                                       "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"};
  if (arch == Arch::X86_64)
    for (size_t w = 0; w < std::size(kX86); ++w)
      if (name == kX86[w]) return w;
  if (arch == Arch::Riscv64)
    for (size_t w = 1; w < std::size(kRiscv); ++w)
      if (name == kRiscv[w]) return w;
  throw Error(name, "not a general register of " + std::string(backend::arch_name(arch)));
}

// The instruction at +off: the shortest window that decodes holds just it
// (a longer one could end inside the next and not decode).
mc::DisasmLine first_instruction(Arch arch, const Loop& l, uint64_t off) {
  for (size_t n = 1; n <= 15 && off + n <= l.code.size(); ++n) {
    try {
      return mc::disassemble(arch, std::span(l.code.data() + off, n), off).at(0);
    } catch (const Error&) {
    }
  }
  throw Error("sb_probe_loop", fmt::format("the bytes at +{:#x} do not decode", off));
}

// The loop's instructions from its head to its end (the back-edge, before
// the return that follows it), as offsets and sizes.
std::vector<mc::DisasmLine> loop_body(Arch arch, const Loop& l) {
  std::vector<mc::DisasmLine> out;
  // What comes after the back-edge before the return (an epilogue's pop
  // where the function keeps a frame) runs once, not per iteration.
  auto branch = [](const std::string& t) {
    return t.starts_with("j") || t.starts_with("b") || t.starts_with("cb") || t.starts_with("tb");
  };
  for (uint64_t off = l.site; off < l.code.size();) {
    mc::DisasmLine in = first_instruction(arch, l, off);
    if (in.text.starts_with("ret")) {
      while (!out.empty() && !branch(out.back().text)) out.pop_back();
      return out;
    }
    off += in.size;
    out.push_back(std::move(in));
  }
  throw Error("sb_probe_loop", "no return after the loop");
}

struct SiteRun {
  int64_t result;
  SiteRecord rec;
  uint64_t saved[32];  // guests: the words at saved_at() after the call
  uint64_t call_sp = 0;  // guests: the sp call() starts with
};

// One probe at +offset running probe_site, one call of the loop.
class SiteProbes {
 public:
  explicit SiteProbes(Arch arch) : arch_(arch) {}
  SiteProbes(Arch arch, Loop code) : arch_(arch), loop_(std::optional<Loop>(std::move(code))) {}
  // Empty without the cross compiler.
  const std::optional<Loop>& loop() {
    if (!loop_) loop_ = arch_ == Arch::X86_64 ? std::optional<Loop>(native_loop()) : guest_loop(arch_);
    return *loop_;
  }
  SiteRun run(uint64_t offset) { return arch_ == Arch::X86_64 ? run_native(offset) : run_guest(offset); }

 private:
  const char* bpf_arch() const { return arch_ == Arch::X86_64 ? "x86" : arch_ == Arch::Arm64 ? "arm64" : "riscv"; }

  SiteRun run_native(uint64_t offset) {
    void* rec = mmap(reinterpret_cast<void*>(kRec), 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (rec != reinterpret_cast<void*>(kRec)) throw Error("the record", "its address is taken in this process");
    SiteRun out{};
    try {
      rt::TrampolineTable table;
      rt::TrampolineOptions opts;
      opts.probe = true;
      void* target = reinterpret_cast<uint8_t*>(&sb_probe_loop) + offset;
      rt::Trampoline& t = table.get(target, {}, opts, fmt::format("sb_probe_loop+{:#x}", offset));
      rt::HelperTable helpers;
      t.link(tramp::Kind::Uprobe, program(bpf_arch(), "uprobe", "probe_site"), 0, helpers);
      long (*volatile fn)(long, long) = &sb_probe_loop;
      out.result = fn(kLoopN, kLoopK);
      table.put(target);
    } catch (...) {
      munmap(rec, 4096);
      throw;
    }
    std::memcpy(&out.rec, reinterpret_cast<uint8_t*>(rec) + 0x100, sizeof out.rec);
    munmap(rec, 4096);
    return out;
  }

  SiteRun run_guest(uint64_t offset) {
    const Loop& l = *loop();
    rt::Guest g(arch_);
    g.map_code(l.address, l.code);
    g.map_data(kRec, 0x1000);
    const GuestProgRuntime runtime(g);
    rt::ProgState state;
    CompileOptions opts;
    opts.arch = arch_;
    rt::HelperTable helpers;
    tramp::Description d;
    d.file = d.target = "loop";
    d.no_vector_use = true;
    d.programs.push_back({tramp::Kind::Uprobe, program(bpf_arch(), "uprobe", "probe_site"), 0});
    g.map_code(kSiteProg, compile(d.programs[0].program, helpers, opts).image.text);
    const uint64_t probe = kSiteProbe + kSiteStep * runs_, stub = kSiteStub + kSiteStep * runs_;
    ++runs_;
    tramp::Bindings b;
    b.ip = l.address + offset;
    b.original = stub;
    b.prog_enter = runtime.enter;
    b.prog_exit = runtime.exit;
    b.entries.push_back(kSiteProg);
    b.states.push_back(reinterpret_cast<uint64_t>(&state));
    const ir::Module m = tramp::lower_probe(d, b);
    ir::check(m);
    g.map_code(probe, generate(m, opts).text);
    rt::GuestHookRequest req{arch_, l.address, l.code, l.code.size(), probe, stub, true, offset};
    const rt::GuestHook hook = rt::build_guest_hook(req);
    rt::install(g, hook);
    ir::Signature sig;
    sig.args = {{ir::Type::I64, 8}, {ir::Type::I64, 8}};
    sig.ret = {ir::Type::I64, 8};
    SiteRun out{};
    out.result = int64_t(g.call(l.address, sig, {uint64_t(kLoopN), uint64_t(kLoopK)}));
    for (size_t w = 0; w < sizeof out.rec / 8; ++w)
      reinterpret_cast<uint64_t*>(&out.rec)[w] = g.read_u64(kRec + 0x100 + 8 * w);
    for (size_t w = 0; w < 32; ++w) out.saved[w] = g.read_u64(saved_at(g) + 8 * w);
    out.call_sp = g.stack_base() + rt::Guest::kStackSize - 64;
    return out;
  }

  Arch arch_;
  std::optional<std::optional<Loop>> loop_;
  uint64_t runs_ = 0;
};

std::string error_of(SiteProbes& p, uint64_t offset) {
  try {
    p.run(offset);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

class ProbeLoop : public testing::TestWithParam<Arch> {
 protected:
  void SetUp() override {
    if (!probes_.loop())
      GTEST_SKIP() << "no cross compiler for " << backend::arch_name(GetParam()) << " (tools/install-deps.sh)";
  }
  SiteProbes probes_{GetParam()};
};

TEST_P(ProbeLoop, LiveRegistersAtTheLoopHeadReadRight) {
  const Arch arch = GetParam();
  const Loop& l = *probes_.loop();
  const LoopModel m = model_loop(kLoopN, kLoopK);
  const SiteRun r = probes_.run(l.site);
  EXPECT_EQ(r.result, m.result) << "the probe changed what the function computes";
  ASSERT_EQ(r.rec.hits, uint64_t(kLoopN)) << "once per iteration at the head of the loop, +" << l.site;
  for (size_t j = 0; j < size_t(kLoopN); ++j) {
    EXPECT_EQ(r.rec.ip[j], l.address + l.site) << "PT_REGS_IP, hit " << j;
    EXPECT_EQ(r.rec.sp[j], r.rec.sp[0]) << "PT_REGS_SP, hit " << j;
    for (size_t v = 0; v < 4; ++v)
      EXPECT_EQ(int64_t(r.rec.regs[j][reg_word(arch, l.regs[v])]), m.heads[j][v])
          << "hit " << j << ": " << "isnk"[v] << " in " << l.regs[v];
  }
  if (arch == Arch::X86_64) {
#if !defined(__SANITIZE_ADDRESS__)  // instrumented, the native loop is no longer a leaf
    EXPECT_EQ(r.rec.sp[0] % 16, 8u) << "a leaf function's sp: its return address pushed";
#endif
  } else {
    EXPECT_EQ(r.rec.sp[0], r.call_sp) << "a leaf's sp, as call() set it";
  }
}

TEST_P(ProbeLoop, EveryInstructionOfTheLoopFiresOncePerIteration) {
  const Loop& l = *probes_.loop();
  const LoopModel m = model_loop(kLoopN, kLoopK);
  const std::vector<mc::DisasmLine> body = loop_body(GetParam(), l);
  ASSERT_GE(body.size(), 3u);
  // On x86-64 the last instructions, where the 5-byte jump would cover
  // the return and what follows, take a breakpoint instead; the same.
  for (const mc::DisasmLine& in : body) {
    SCOPED_TRACE(fmt::format("+{:#x}: {}", in.address, in.text));
    const SiteRun r = probes_.run(in.address);
    EXPECT_EQ(r.result, m.result);
    EXPECT_EQ(r.rec.hits, uint64_t(kLoopN));
    EXPECT_EQ(r.rec.ip[0], l.address + in.address);
  }
}

TEST_P(ProbeLoop, AnOffsetInsideAnInstructionIsRefused) {
  const Arch arch = GetParam();
  const Loop& l = *probes_.loop();
  // Inside a 4-byte instruction (riscv64: one after a compressed one);
  // x86-64, inside the loop's first instruction longer than a byte.
  std::optional<uint64_t> inside;
  uint32_t previous = 4;
  for (const mc::DisasmLine& in : loop_body(arch, l)) {
    if (!inside && in.size > 1 && (arch != Arch::Riscv64 || (in.size == 4 && previous == 2)))
      inside = in.address + (arch == Arch::X86_64 ? 1 : 2);
    previous = in.size;
  }
  ASSERT_TRUE(inside) << "no instruction to probe inside of";
  const std::string e = error_of(probes_, *inside);
  EXPECT_NE(e.find(fmt::format("+{:#x}", *inside)), std::string::npos) << e;
  EXPECT_NE(e.find("is not the start of an instruction"), std::string::npos) << e;
  EXPECT_NE(e.find(arch == Arch::X86_64 ? "sb_probe_loop" : fmt::format("{:#x}", l.address)), std::string::npos)
      << "names the function: " << e;
  if (arch == Arch::Riscv64) {
    // A compressed instruction just before the loop's head: the 4-byte
    // jal would cover the head, which the back-edge branches to.
    const mc::DisasmLine before = first_instruction(arch, l, l.site - 2);
    ASSERT_EQ(before.size, 2u);
    const std::string b = error_of(probes_, l.site - 2);
    EXPECT_NE(b.find("branches into the displaced bytes"), std::string::npos) << b;
  }
}


// A guest function that gives every general register but sp (and the
// return address) its own value, 0x100 + its number, runs the probed
// instruction (x1 / a1 += 1) and stores them all below sp, at saved_at().
Loop every_register(Arch arch) {
  Loop l;
  l.address = kFunc;
  l.site = arch == Arch::Arm64 ? 30 * 4 : 29 * 4;
  l.code = guest_code(arch, [&](mc::Emitter& e, const mc::McTarget& t, auto x) {
    if (arch == Arch::Arm64) {
      for (int r = 0; r < 30; ++r) e.emit(mc::I(t.opcode("MOVZXi")).r(x(r)).i(0x100 + r).i(0));
      e.emit(mc::I(t.opcode("ADDXri")).r(x(1)).r(x(1)).i(1).i(0));  // the site
      e.emit(mc::I(t.opcode("SUBXri")).r(t.reg("SP")).r(t.reg("SP")).i(256).i(0));
      for (int r = 0; r < 30; r += 2) e.emit(mc::I(t.opcode("STPXi")).r(x(r)).r(x(r + 1)).r(t.reg("SP")).i(r));
      e.emit(mc::I(t.opcode("ADDXri")).r(t.reg("SP")).r(t.reg("SP")).i(256).i(0));
      e.emit(mc::I(t.opcode("RET")).r(t.reg("LR")));
      return;
    }
    for (int r = 3; r < 32; ++r) e.emit(mc::I(t.opcode("ADDI")).r(x(r)).r(x(0)).i(0x100 + r));  // not ra, sp
    e.emit(mc::I(t.opcode("ADDI")).r(x(11)).r(x(11)).i(1));  // the site
    e.emit(mc::I(t.opcode("ADDI")).r(x(2)).r(x(2)).i(-256));
    for (int r = 3; r < 32; ++r) e.emit(mc::I(t.opcode("SD")).r(x(r)).r(x(2)).i(8 * r));
    e.emit(mc::I(t.opcode("ADDI")).r(x(2)).r(x(2)).i(256));
    e.emit(mc::I(t.opcode("JALR")).r(x(0)).r(x(1)).i(0));
  });
  return l;
}

TEST_P(ProbeGuest, InsideAFunctionEveryRegisterIsSeenAndKept) {
  const Arch arch = GetParam();
  const Loop l = every_register(arch);
  ASSERT_FALSE(l.code.empty());
  const int first = arch == Arch::Arm64 ? 0 : 3, last = arch == Arch::Arm64 ? 30 : 32;
  const int bumped = arch == Arch::Arm64 ? 1 : 11;  // x1 / a1, the probed instruction's
  SiteProbes probes(arch, l);
  const SiteRun r = probes.run(l.site);
  ASSERT_EQ(r.rec.hits, 1u);
  EXPECT_EQ(r.rec.ip[0], kFunc + l.site);
  EXPECT_EQ(r.rec.sp[0], r.call_sp);
  for (int reg = first; reg < last; ++reg) {  // x<n> is word n of both structs
    EXPECT_EQ(r.rec.regs[0][reg], uint64_t(0x100 + reg)) << "pt_regs of x" << reg;
    EXPECT_EQ(r.saved[size_t(reg)], uint64_t(0x100 + reg + (reg == bumped))) << "x" << reg << " after the probe";
  }
}

std::vector<Arch> loop_archs() {
  std::vector<Arch> v;
#if defined(__x86_64__)
  v.push_back(Arch::X86_64);
#endif
  for (Arch a : guest_archs()) v.push_back(a);
  return v;
}

INSTANTIATE_TEST_SUITE_P(Archs, ProbeLoop, testing::ValuesIn(loop_archs()),
                         [](const testing::TestParamInfo<Arch>& i) {
                           return std::string(i.param == Arch::X86_64  ? "x86_64"
                                              : i.param == Arch::Arm64 ? "arm64"
                                                                       : "riscv64");
                         });

}  // namespace
}  // namespace sb::test
