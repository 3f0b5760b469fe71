// Memory under churn (issue 16): RSS and the number of mappings after N
// link/unlink cycles on one attached trampoline (each compiles a program
// and an image, so the replaced ones must be freed), and after N
// attach/detach cycles of one function through the table (get, the link
// that patches the entry, the unlink that restores it, put: each builds a
// thunk and a stub near the function, which must be freed or reused).
// Both figures must stay flat and every cycle succeed.
// Run: build/test/bench/sb_churn_bench (--benchmark_filter='LinkUnlink/1000$' etc.).
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

// What each cycle needs: a program, the target's signature, no helpers.
struct Churn {
  sb::rt::HelperTable helpers;
  sb::ir::Signature sig{{{sb::ir::Type::I64, 8}, {sb::ir::Type::I64, 8}}, {sb::ir::Type::I64, 8}};
  sb::bpf::Program prog = sb::bpf::assemble("mov %r0, 0\nexit");
  void* target = reinterpret_cast<void*>(&sb_churn_target);

  // Runs `cycle` state.range(0) times and reports the growth from before.
  template <typename F>
  void measure(benchmark::State& state, F cycle) {
    const size_t rss0 = rss_kb(), maps0 = mappings();
    uint64_t failed = 0;
    for (int64_t k = 0; k < state.range(0); ++k) {
      try {
        cycle();
      } catch (const std::exception&) {
        ++failed;
      }
    }
    state.counters["rss_growth_kb"] = double(rss_kb()) - double(rss0);
    state.counters["mappings_growth"] = double(mappings()) - double(maps0);
    state.counters["failed"] = double(failed);
  }
};

void LinkUnlink(benchmark::State& state) {
  using namespace sb;
  Churn c;
  for (auto _ : state) {
    rt::TrampolineTable table;
    rt::Trampoline& t = table.get(c.target, c.sig);
    t.link(tramp::Kind::Fentry, c.prog, 0, c.helpers);  // keeps it attached
    c.measure(state, [&] { t.unlink(t.link(tramp::Kind::Fexit, c.prog, 0, c.helpers)); });
    table.put(c.target);
  }
}
BENCHMARK(LinkUnlink)->Arg(1000)->Arg(10000)->Arg(100000)->Arg(1000000)->Iterations(1)->Unit(benchmark::kMillisecond);

void AttachDetach(benchmark::State& state) {
  using namespace sb;
  Churn c;
  for (auto _ : state) {
    rt::TrampolineTable table;
    auto cycle = [&] {
      rt::Trampoline& t = table.get(c.target, c.sig);
      try {
        t.link(tramp::Kind::Fentry, c.prog, 0, c.helpers);  // attaches
      } catch (...) {
        table.put(c.target);
        throw;
      }
      table.put(c.target);  // the last reference: unlinks and detaches
    };
    cycle();  // the first attach maps what stays (the patched page, the handler)
    c.measure(state, cycle);
  }
}
BENCHMARK(AttachDetach)->Arg(1000)->Arg(10000)->Arg(100000)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
