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
// Guest layout: kFunc the function, kProbe / kReturnProbe the probes
// (within reach of arm64 b and riscv64 jal), kStub the displaced
// instructions, kProg + 64K*i the programs, kRec the record (also mapped
// at the same address in this process for the native run).
#include <sys/mman.h>

#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "backends/compile.h"
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
#ifdef SPRINGBOARD_HAVE_ARM64
#include "backends/arm64/arm64.h"
#endif
#ifdef SPRINGBOARD_HAVE_RISCV64
#include "backends/riscv64/riscv64.h"
#endif

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

// The function in a guest, built with MC.
std::vector<uint8_t> guest_mix(Arch arch) {
  std::vector<uint8_t> out;
#ifdef SPRINGBOARD_HAVE_ARM64
  if (arch == Arch::Arm64) {
    const mc::McTarget& t = mc::McTarget::get(arm64::kSpec);
    mc::Emitter e(t, mc::OutputKind::Bytes);
    e.begin_function(e.new_label(), false, 4);
    auto x = [&](int n) { return t.reg(fmt::format("X{}", n).c_str()); };
    e.emit(mc::I(t.opcode("SUBXrs")).r(x(0)).r(x(0)).r(x(1)).i(0));
    e.emit(mc::I(t.opcode("MADDXrrr")).r(x(0)).r(x(2)).r(x(3)).r(x(0)));
    e.emit(mc::I(t.opcode("SUBXrs")).r(x(0)).r(x(0)).r(x(4)).i(0));
    e.emit(mc::I(t.opcode("RET")).r(t.reg("LR")));
    out = e.finish().text;
  }
#endif
#ifdef SPRINGBOARD_HAVE_RISCV64
  if (arch == Arch::Riscv64) {
    const mc::McTarget& t = mc::McTarget::get(riscv64::kSpec);
    mc::Emitter e(t, mc::OutputKind::Bytes);
    e.begin_function(e.new_label(), false, 4);
    auto x = [&](int n) { return t.reg(fmt::format("X{}", n).c_str()); };
    e.emit(mc::I(t.opcode("SUB")).r(x(10)).r(x(10)).r(x(11)));  // a0 -= a1
    e.emit(mc::I(t.opcode("MUL")).r(x(5)).r(x(12)).r(x(13)));   // t0 = a2 * a3
    e.emit(mc::I(t.opcode("ADD")).r(x(10)).r(x(10)).r(x(5)));
    e.emit(mc::I(t.opcode("SUB")).r(x(10)).r(x(10)).r(x(14)));  // a0 -= a4
    e.emit(mc::I(t.opcode("JALR")).r(x(0)).r(x(1)).i(0));
    out = e.finish().text;
  }
#endif
  return out;
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
  const uint64_t enter = g.add_host_function([](const std::array<uint64_t, 5>& a) {
    return rt::sb_tramp_prog_enter(reinterpret_cast<rt::ProgState*>(a[0]), nullptr);
  });
  const uint64_t exit = g.add_host_function([](const std::array<uint64_t, 5>& a) -> uint64_t {
    rt::sb_tramp_prog_exit(reinterpret_cast<rt::ProgState*>(a[0]), a[1], nullptr);
    return 0;
  });
  rt::GuestReturnStack returns(g, arch);
  tramp::Description d;
  d.file = d.target = "mix";
  d.no_vector_use = true;  // a guest's helpers are host functions: they leave its registers alone
  tramp::Bindings b;
  b.ip = kFunc;
  b.original = kStub;
  b.prog_enter = enter;
  b.prog_exit = exit;
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

}  // namespace
}  // namespace sb::test
