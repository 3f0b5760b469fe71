// The public API's own costs (issue 17), through libspringboard.so as an
// embedder links it:
//
//   run/direct                     the compiled function of `empty` (mov r0, 0;
//                                  exit) called through sb_code_function's
//                                  pointer: the baseline
//   run/sb_code_run/<stats>        the same code through sb_code_run, with
//                                  statistics timed (the default), count
//                                  (SB_VM_NO_TIMING) or off (SB_VM_NO_STATS)
//   run/cpp/<stats>                the same through springboard::code::run
//   clock/two_reads                two reads of the cycle counter timed
//                                  statistics take per run (rdtsc on
//                                  x86-64): the floor under run/.../timed
//   runnable/<arch>/<program>      bytes in, callable code out: load the
//                                  bytecode, compile it for <arch> ("x86-64":
//                                  native, in executable memory; arm64 and
//                                  riscv64: loaded into Unicorn), destroy both
//                                  (so freed code memory is reused, as a
//                                  long-running embedder's would be); the
//                                  default verifies, /trusted is
//                                  SB_VM_NO_VERIFY (the compile alone)
//
// The first compile in a fresh process is not here (a benchmark warms up):
// sb_first_compile measures it, one process per run.
//
//   build/test/bench/sb_api_bench
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "frontend/assembler.h"
#include "frontend/decoder.h"
#include "runtime/api/springboard.hpp"
#include "test/bench/synthetic.h"

namespace {

constexpr const char* kStatsNames[] = {"timed", "count", "off"};
constexpr uint32_t kStatsFlags[] = {0, SB_VM_NO_TIMING, SB_VM_NO_STATS};

std::vector<uint8_t> bytecode(const std::string& source) { return sb::bpf::encode(sb::bpf::assemble(source)); }

struct Empty {
  explicit Empty(uint32_t flags) : vm(options(flags)) {
    const std::vector<uint8_t> bytes = bytecode("mov %r0, 0\nexit");
    prog.emplace(vm.load_bytecode(bytes.data(), bytes.size(), "empty"));
    code.emplace(prog->compile("x86-64"));
  }
  static sb_vm_options options(uint32_t flags) {
    sb_vm_options o{};
    o.flags = flags;
    return o;
  }
  springboard::vm vm;
  std::optional<springboard::program> prog;
  std::optional<springboard::code> code;
};

void BM_Direct(benchmark::State& state) {
  Empty e(SB_VM_NO_STATS);
  sb_native_fn volatile fn = e.code->function();
  uint64_t mem = 0;
  for (auto _ : state) {
    sb_native_result r = fn(&mem, sizeof mem);
    benchmark::DoNotOptimize(r);
  }
}

void BM_CodeRun(benchmark::State& state) {
  Empty e(kStatsFlags[state.range(0)]);
  sb_code* volatile c = e.code->get();
  uint64_t mem = 0, r0 = 0;
  for (auto _ : state) {
    sb_code_run(c, &mem, sizeof mem, &r0);
    benchmark::DoNotOptimize(r0);
  }
  state.SetLabel(kStatsNames[state.range(0)]);
}

void BM_CppRun(benchmark::State& state) {
  Empty e(kStatsFlags[state.range(0)]);
  uint64_t mem = 0;
  for (auto _ : state) benchmark::DoNotOptimize(e.code->run(&mem, sizeof mem));
  state.SetLabel(kStatsNames[state.range(0)]);
}

void BM_TwoClockReads(benchmark::State& state) {
  for (auto _ : state) {
#if defined(__x86_64__)
    const uint64_t start = __rdtsc();
    benchmark::DoNotOptimize(__rdtsc() - start);
#else
    state.SkipWithError("the x86-64 cycle counter only");
    break;
#endif
  }
}

void BM_Runnable(benchmark::State& state, const char* arch, const std::vector<uint8_t>* bytes, bool trusted) {
  sb_vm_options o{};
  if (trusted) o.flags = SB_VM_NO_VERIFY;
  springboard::vm vm(o);
  for (auto _ : state) {
    springboard::program p = vm.load_bytecode(bytes->data(), bytes->size(), "bench");
    springboard::code c = p.compile(arch);
    benchmark::DoNotOptimize(c.get());
  }
  state.counters["insns"] = double(bytes->size() / 8);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RegisterBenchmark("run/direct", BM_Direct);
  for (int64_t s = 0; s < 3; ++s) {
    benchmark::RegisterBenchmark((std::string("run/sb_code_run/") + kStatsNames[s]).c_str(), BM_CodeRun)->Arg(s);
    benchmark::RegisterBenchmark((std::string("run/cpp/") + kStatsNames[s]).c_str(), BM_CppRun)->Arg(s);
  }
  benchmark::RegisterBenchmark("clock/two_reads", BM_TwoClockReads);
  static const std::vector<uint8_t> empty = bytecode("mov %r0, 0\nexit");
  static const std::vector<uint8_t> synthetic = bytecode(sb::synthetic_source());
  for (const char* arch : {"x86-64", "arm64", "riscv64"})
    for (auto [name, bytes] : {std::pair{"empty", &empty}, std::pair{"synthetic100", &synthetic}})
      for (bool trusted : {false, true})
        benchmark::RegisterBenchmark(
            (std::string("runnable/") + arch + "/" + name + (trusted ? "/trusted" : "")).c_str(), BM_Runnable, arch,
            bytes, trusted)
            ->Unit(benchmark::kMicrosecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
