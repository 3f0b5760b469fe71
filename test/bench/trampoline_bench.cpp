// Per-call overhead of a hooked function (issue 4): a direct call against
// calls through a trampoline with one empty fentry program, with fentry and
// fexit, each with and without statistics and the recursion guard (issue 17:
// the defaults are the guard without statistics); and the cost of a probe
// hit (issue 15): an empty uprobe program at the function's entry, with an
// empty uretprobe program too, statistics off, the guard on; beside it,
// where this process may (root, libbpf at build time), the same function
// with a kernel uprobe running an empty BPF_PROG_TYPE_KPROBE program
// (BM_KernelUprobe: a trap into the kernel per call); and a probe that
// has no room for its jump and takes a breakpoint (BM_ProbeBreakpoint: a
// trap and a signal per hit, sb_bench_tight being shorter than the jump).
//
//   build/test/bench/sb_trampoline_bench
//   tools/bench.sh     (runs it with sb_jit_bench and charts both)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#ifdef SB_HAVE_LIBBPF
#include <bpf/bpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "frontend/assembler.h"
#include "runtime/hook/trampoline.h"

extern "C" __attribute__((noinline, noipa)) int64_t sb_bench_target(int64_t a, int64_t b) { return a ^ (b + 1); }

// xor %eax,%eax; ret, and the next symbol 4 bytes on: no room for a jump.
extern "C" int64_t sb_bench_tight();
asm(R"(
  .text
  .globl sb_bench_tight
  .type sb_bench_tight, @function
  .p2align 4
sb_bench_tight:
  .byte 0x31, 0xc0, 0xc3
  .size sb_bench_tight, .-sb_bench_tight
  .byte 0xcc
  .globl sb_bench_tight_next
  .type sb_bench_tight_next, @function
sb_bench_tight_next:
  .byte 0xc3
  .size sb_bench_tight_next, .-sb_bench_tight_next
)");

namespace {

using namespace sb;

ir::Signature signature() {
  ir::Signature s;
  s.args = {{ir::Type::I64, 8}, {ir::Type::I64, 8}};
  s.ret = {ir::Type::I64, 8};
  return s;
}

void run_calls(benchmark::State& state) {
  int64_t (*volatile fn)(int64_t, int64_t) = &sb_bench_target;
  int64_t x = 0;
  for (auto _ : state) {
    x = fn(x, 3);
    benchmark::DoNotOptimize(x);
  }
}

void BM_Direct(benchmark::State& state) { run_calls(state); }

// range(0): 1 = fentry, 2 = fentry + fexit; range(1): statistics on;
// range(2): the recursion guard on. The defaults: stats 0, guard 1.
void BM_Hooked(benchmark::State& state) {
  rt::TrampolineOptions opts;
  opts.stats = state.range(1) != 0;
  opts.recursion_guard = state.range(2) != 0;
  rt::TrampolineTable table;
  rt::Trampoline& t = table.get(reinterpret_cast<void*>(&sb_bench_target), signature(), opts);
  rt::HelperTable helpers;
  const bpf::Program empty = bpf::assemble("mov %r0, 0\nexit");
  t.link(tramp::Kind::Fentry, empty, 0, helpers);
  if (state.range(0) == 2) t.link(tramp::Kind::Fexit, empty, 0, helpers);
  run_calls(state);
  table.put(reinterpret_cast<void*>(&sb_bench_target));
}

// range(0): 1 = a uprobe, 2 = a uprobe and a uretprobe.
void BM_Probe(benchmark::State& state) {
  rt::TrampolineOptions opts;
  opts.probe = true;
  rt::TrampolineTable table;
  rt::Trampoline& t = table.get(reinterpret_cast<void*>(&sb_bench_target), {}, opts);
  rt::HelperTable helpers;
  const bpf::Program empty = bpf::assemble("mov %r0, 0\nexit");
  t.link(tramp::Kind::Uprobe, empty, 0, helpers);
  if (state.range(0) == 2) t.link(tramp::Kind::Uretprobe, empty, 0, helpers);
  run_calls(state);
  table.put(reinterpret_cast<void*>(&sb_bench_target));
}

void BM_ProbeBreakpoint(benchmark::State& state) {
  rt::TrampolineOptions opts;
  opts.probe = true;
  rt::TrampolineTable table;
  void* target = reinterpret_cast<void*>(&sb_bench_tight);
  rt::Trampoline& t = table.get(target, {}, opts);
  rt::HelperTable helpers;
  t.link(tramp::Kind::Uprobe, bpf::assemble("mov %r0, 0\nexit"), 0, helpers);
  if (!t.breakpoint()) state.SkipWithError("the probe did not take a breakpoint");
  int64_t (*volatile fn)() = &sb_bench_tight;
  for (auto _ : state) benchmark::DoNotOptimize(fn());
  table.put(target);
}

#ifdef SB_HAVE_LIBBPF
// The file offset of `fn` in its mapped object (what a uprobe names), and
// that object's path, from /proc/self/maps.
bool file_offset_of(const void* fn, std::string& path, uint64_t& offset) {
  std::ifstream maps("/proc/self/maps");
  const uint64_t a = reinterpret_cast<uint64_t>(fn);
  for (std::string line; std::getline(maps, line);) {
    unsigned long long lo, hi, off;
    char perms[8], file[4096] = "";
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %*s %*s %4095s", &lo, &hi, perms, &off, file) < 4) continue;
    if (a < lo || a >= hi || !file[0]) continue;
    path = file;
    offset = a - lo + off;
    return true;
  }
  return false;
}

// An empty kprobe program on a kernel uprobe at sb_bench_target (perf_event_open
// of the uprobe PMU, BPF_LINK_CREATE): the published 1-3 us per hit.
void BM_KernelUprobe(benchmark::State& state) {
  const bpf_insn insns[] = {{0xb7, 0, 0, 0, 0}, {0x95, 0, 0, 0, 0}};  // mov r0, 0; exit
  const int prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "empty", "GPL", insns, 2, nullptr);
  std::string path;
  uint64_t offset = 0;
  int type = -1;
  if (FILE* f = std::fopen("/sys/bus/event_source/devices/uprobe/type", "r")) {
    if (std::fscanf(f, "%d", &type) != 1) type = -1;
    std::fclose(f);
  }
  if (prog < 0 || type < 0 || !file_offset_of(reinterpret_cast<const void*>(&sb_bench_target), path, offset)) {
    state.SkipWithError("kernel uprobes unavailable (needs root and the uprobe PMU)");
    if (prog >= 0) close(prog);
    return;
  }
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = uint32_t(type);
  attr.config1 = uint64_t(uintptr_t(path.c_str()));
  attr.config2 = offset;
  const int pfd = int(syscall(SYS_perf_event_open, &attr, 0 /* this process */, -1, -1, PERF_FLAG_FD_CLOEXEC));
  const int link = pfd < 0 ? -1 : bpf_link_create(prog, pfd, BPF_PERF_EVENT, nullptr);
  if (link < 0) {
    state.SkipWithError("kernel uprobe attach failed");
  } else {
    run_calls(state);
    close(link);
  }
  if (pfd >= 0) close(pfd);
  close(prog);
}
BENCHMARK(BM_KernelUprobe);
#endif

BENCHMARK(BM_Direct);
BENCHMARK(BM_Probe)->ArgName("progs")->Arg(1)->Arg(2);
BENCHMARK(BM_ProbeBreakpoint);
BENCHMARK(BM_Hooked)->ArgNames({"progs", "stats", "guard"})->ArgsProduct({{1, 2}, {0, 1}, {0, 1}});

}  // namespace

BENCHMARK_MAIN();
