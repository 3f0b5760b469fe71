// Memory under churn (issue 16): RSS and the number of mappings after N
// link/unlink cycles on one attached trampoline. Each cycle compiles a
// program and an image, so the replaced ones must be freed for both
// figures to stay flat. Run: build/test/bench/sb_churn_bench
// (--benchmark_filter=.../1000 etc.; 10^5 cycles take minutes).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>

#include "frontend/assembler.h"
#include "runtime/hook/trampoline.h"

extern "C" __attribute__((noinline, noipa)) int64_t sb_churn_target(int64_t a, int64_t b) { return a * 3 + b; }

namespace {

size_t mappings() {
  FILE* f = std::fopen("/proc/self/maps", "r");
  size_t n = 0;
  for (int c; (c = std::fgetc(f)) != EOF;) n += c == '\n';
  std::fclose(f);
  return n;
}

size_t rss_kb() {
  FILE* f = std::fopen("/proc/self/status", "r");
  char line[256];
  size_t kb = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, "VmRSS:", 6) == 0) kb = size_t(std::atol(line + 6));
  std::fclose(f);
  return kb;
}

void LinkUnlink(benchmark::State& state) {
  using namespace sb;
  const rt::HelperTable helpers;
  ir::Signature sig;
  sig.args = {{ir::Type::I64, 8}, {ir::Type::I64, 8}};
  sig.ret = {ir::Type::I64, 8};
  const bpf::Program prog = bpf::assemble("mov %r0, 0\nexit");
  for (auto _ : state) {
    rt::TrampolineTable table;
    rt::Trampoline& t = table.get(reinterpret_cast<void*>(&sb_churn_target), sig);
    t.link(tramp::Kind::Fentry, prog, 0, helpers);  // keeps it attached
    const size_t rss0 = rss_kb(), maps0 = mappings();
    uint64_t failed = 0;
    for (int64_t k = 0; k < state.range(0); ++k) {
      try {
        t.unlink(t.link(tramp::Kind::Fexit, prog, 0, helpers));
      } catch (const std::exception&) {
        ++failed;
      }
    }
    state.counters["rss_growth_kb"] = double(rss_kb()) - double(rss0);
    state.counters["mappings_growth"] = double(mappings()) - double(maps0);
    state.counters["failed"] = double(failed);
    table.put(reinterpret_cast<void*>(&sb_churn_target));
  }
}
BENCHMARK(LinkUnlink)->Arg(1000)->Arg(10000)->Arg(100000)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
