// Per-call overhead of a hooked function (issue 4): a direct call against
// calls through a trampoline with one empty fentry program, with fentry and
// fexit, each with and without statistics and the recursion guard (issue 17:
// the defaults are the guard without statistics); and the cost of a probe
// hit (issue 15): an empty uprobe program at the function's entry, with an
// empty uretprobe program too, statistics off, the guard on.
//
//   build/test/bench/sb_trampoline_bench
//   tools/bench.sh     (runs it with sb_jit_bench and charts both)
#include <benchmark/benchmark.h>

#include "frontend/assembler.h"
#include "runtime/hook/trampoline.h"

extern "C" __attribute__((noinline, noipa)) int64_t sb_bench_target(int64_t a, int64_t b) { return a ^ (b + 1); }

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

BENCHMARK(BM_Direct);
BENCHMARK(BM_Probe)->ArgName("progs")->Arg(1)->Arg(2);
BENCHMARK(BM_Hooked)->ArgNames({"progs", "stats", "guard"})->ArgsProduct({{1, 2}, {0, 1}, {0, 1}});

}  // namespace

BENCHMARK_MAIN();
