// Verify time (issue 13): Springboard's verifier against the Linux kernel's
// on the same bytecode, in one run, beside the compile time.
//
//   verify/<program>/xdp          frontend/verifier on the `xdp` entry of a
//                                 benchmark program (test/bench/programs: the
//                                 bytecode the kernel runs in sb_jit_bench, a
//                                 body subprogram looping over an array map
//                                 value); counters: insns (slots),
//                                 processed ("processed N insns"),
//                                 ns_per_insn (per slot), kernel_us (the
//                                 kernel's own "verification time" of the
//                                 same entry, BPF_LOG_STATS, median of 7
//                                 loads) and kernel_processed
//   verify/<program>/xdp/kernel   the kernel's verification time alone
//                                 (manual time: BPF_LOG_STATS of each load;
//                                 libbpf loads the object, with its BTF, as
//                                 sb_jit_bench does)
//   verify/<program>/socket       the `socket` entry, the one Springboard's
//                                 engines run (r1 = memory of r2 bytes)
//   verify/<program>/socket+proofs  the same with VerifyOptions::raw_length_in_r2,
//                                 as a bounds-checked compile verifies
//   compile/<program>/socket      Springboard's x86-64 compile of that entry
//                                 (validation, lowering, passes, selection,
//                                 encoding; no verifier), as sb_jit_bench's
//                                 compile rows
//   verify/branchy, .../kernel, compile/branchy
//                                 generated: 600 diamonds on a random
//                                 number, each with stack traffic, 3,607
//                                 slots, that a verifier without state
//                                 pruning explores 2^600 ways (the kernel
//                                 loads it with BPF_PROG_LOAD as XDP)
//   verify/synthetic100, compile/synthetic100
//                                 the compile benchmarks' 100 slots (raw):
//                                 what verifying costs a small program
//
// The kernel rows need root (CAP_BPF, CAP_SYS_ADMIN); without it they are
// skipped with the reason.
//   build/test/bench/sb_verify_bench --benchmark_min_time=0.2
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#ifdef SB_HAVE_LIBBPF
#include <bpf/libbpf.h>
#endif
#include <cstdlib>
#include <cstring>

#include "backends/compile.h"
#include "frontend/assembler.h"
#include "frontend/validator.h"
#include "frontend/verifier/verifier.h"
#include "ir/diag.h"
#include "runtime/helpers/std_helpers.h"
#include "test/kernel_oracle.h"
#include "test/bench/synthetic.h"
#include "test/kernel_prog_types.h"

namespace {

using namespace sb;

const char* const kPrograms[] = {"sum", "fnv", "crc32", "collatz", "sort", "bits", "parser", "copy"};

// 600 diamonds on r6 (a random number shifted right each time), each
// branch adding to or mixing into r7 and spilling it, then r0 = XDP_PASS.
std::string branchy_source(int diamonds) {
  std::string s =
      "mov %r7, 0\n"
      "stdw [%r10-8], 0\n"
      "call 7\n"
      "mov %r6, %r0\n";
  for (int k = 0; k < diamonds; ++k) {
    s += fmt::format("jgt %r6, {}, +3\n", (k * 37) % 251);
    s += fmt::format("add %r7, {}\n", k + 1);
    s += "stxdw [%r10-8], %r7\n";
    s += "ja +1\n";
    s += fmt::format("xor %r7, {}\n", k * 3 + 1);
    s += "rsh %r6, 1\n";
  }
  s +=
      "ldxdw %r0, [%r10-8]\n"
      "mov %r0, 2\n"
      "exit\n";
  return s;
}

// The kernel's verification time of the `xdp` entry of the object at
// `path` loaded by libbpf (BTF and all, so global functions are verified
// once each, as in sb_jit_bench), in microseconds; 0 and `error` set when
// it cannot.
double kernel_object_verify_us(const std::string& path, uint64_t& processed, std::string& error) {
#ifdef SB_HAVE_LIBBPF
  bpf_object* obj = bpf_object__open_file(path.c_str(), nullptr);
  if (!obj) {
    error = path + ": libbpf cannot open it";
    return 0;
  }
  static char log[1 << 16];
  log[0] = 0;
  bpf_program* p;
  bool found = false;
  bpf_object__for_each_program(p, obj) {
    const bool xdp = std::strcmp(bpf_program__section_name(p), "xdp") == 0;
    bpf_program__set_autoload(p, xdp);
    if (!xdp) continue;
    found = true;
    bpf_program__set_log_level(p, 4);  // BPF_LOG_STATS
    bpf_program__set_log_buf(p, log, sizeof log);
  }
  const int err = found ? bpf_object__load(obj) : -ENOENT;
  bpf_object__close(obj);
  if (err != 0) {
    error = "the kernel does not load " + path + "'s xdp entry: " + std::strerror(-err);
    return 0;
  }
  auto stat = [](const char* key) {
    const char* at = std::strstr(log, key);
    return at ? std::strtod(at + std::strlen(key), nullptr) : 0.0;
  };
  processed = uint64_t(stat("processed "));
  return stat("verification time ");
#else
  (void)path, (void)processed;
  error = "built without libbpf";
  return 0;
#endif
}

struct Subject {
  std::string name;  // "sum/xdp", "sum/socket", "branchy"
  std::string path;  // the object, for the kernel's load; empty: load the bytecode
  rt::Environment env;
  bpf::Program program;
  rt::HelperTable helpers;
  bpf::verifier::VerifyOptions options;
  bool kernel = true;         // has kernel rows
  bool proofs = false;        // VerifyOptions::raw_length_in_r2, as a bounds-checked compile verifies
  std::string error;          // why the Springboard rows cannot run
  std::string kernel_error;   // why the kernel rows cannot run
  double kernel_us = 0;       // median "verification time" of the kernel
  uint64_t kernel_processed = 0;
  uint64_t processed = 0;

  // One kernel verification: microseconds, 0 with kernel_error set.
  double kernel_once() {
    if (!path.empty()) return kernel_object_verify_us(path, kernel_processed, kernel_error);
    test::KernelLoad how;
    how.prog_type = BPF_PROG_TYPE_XDP;
    const test::KernelVerdict v = test::kernel_verify(program, how);
    if (v.status != test::KernelVerdict::Status::Accepted) {
      kernel_error = "the kernel refuses it: " + v.message;
      return 0;
    }
    kernel_processed = v.insns_processed;
    return double(v.verification_usec);
  }
};

void prepare(Subject& s, uint32_t type) {
  s.helpers = rt::standard_helpers(s.env);
  s.options = s.helpers.verify_options();
  s.options.type = type ? test::kernel_program_type(type) : nullptr;
  s.options.program = s.name;
  s.options.raw_length_in_r2 = s.proofs;
  try {
    bpf::validate(s.program);
    s.processed = bpf::verifier::verify(s.program, s.options).insns_processed;
  } catch (const Error& e) {
    s.error = e.what();
  }
  if (!s.kernel) return;
  if (std::optional<std::string> why = test::kernel_unavailable()) {
    s.kernel_error = "no kernel: " + *why;
    return;
  }
  std::vector<double> times;
  for (int i = 0; i < 7; ++i) {
    const double us = s.kernel_once();
    if (us <= 0) return;
    times.push_back(us);
  }
  std::sort(times.begin(), times.end());
  s.kernel_us = times[times.size() / 2];
}

void bench_verify(benchmark::State& state, Subject& s) {
  if (!s.error.empty()) return state.SkipWithError(s.error.c_str());
  for (auto _ : state) {
    bpf::verifier::VerifyResult r = bpf::verifier::verify(s.program, s.options);
    benchmark::DoNotOptimize(r.insns_processed);
  }
  state.counters["insns"] = double(s.program.insns.size());
  state.counters["processed"] = double(s.processed);
  state.counters["ns_per_insn"] = benchmark::Counter(double(s.program.insns.size()),
                                                     benchmark::Counter::kIsIterationInvariantRate |
                                                         benchmark::Counter::kInvert);
  if (s.kernel_us > 0) {
    state.counters["kernel_us"] = s.kernel_us;
    state.counters["kernel_processed"] = double(s.kernel_processed);
  }
}

void bench_kernel(benchmark::State& state, Subject& s) {
  if (!s.kernel_error.empty()) return state.SkipWithError(s.kernel_error.c_str());
  for (auto _ : state) {
    const double us = s.kernel_once();
    if (us <= 0) return state.SkipWithError(s.kernel_error.c_str());
    state.SetIterationTime(us * 1e-6);
  }
  state.counters["insns"] = double(s.program.insns.size());
  state.counters["processed"] = double(s.kernel_processed);
}

void bench_compile(benchmark::State& state, Subject& s) {
  CompileOptions opts;
  try {
    (void)compile(s.program, s.helpers, opts);
  } catch (const Error& e) {
    return state.SkipWithError(e.what());
  }
  for (auto _ : state) {
    const Compilation c = compile(s.program, s.helpers, opts);
    benchmark::DoNotOptimize(c.image.text.data());
  }
  state.counters["insns"] = double(s.program.insns.size());
  state.counters["ns_per_insn"] = benchmark::Counter(double(s.program.insns.size()),
                                                     benchmark::Counter::kIsIterationInvariantRate |
                                                         benchmark::Counter::kInvert);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::vector<std::unique_ptr<Subject>> subjects;
  auto add = [&](std::unique_ptr<Subject> s, uint32_t type) {
    if (s->error.empty()) prepare(*s, type);
    Subject& ref = *s;
    benchmark::RegisterBenchmark(("verify/" + s->name).c_str(), [&ref](benchmark::State& st) { bench_verify(st, ref); })
        ->Unit(benchmark::kMicrosecond);
    if (s->kernel)
      benchmark::RegisterBenchmark(("verify/" + s->name + "/kernel").c_str(),
                                   [&ref](benchmark::State& st) { bench_kernel(st, ref); })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    if ((!s->kernel || s->path.empty()) && !s->proofs)
      benchmark::RegisterBenchmark(("compile/" + s->name).c_str(),
                                   [&ref](benchmark::State& st) { bench_compile(st, ref); })
          ->Unit(benchmark::kMicrosecond);
    subjects.push_back(std::move(s));
  };
  for (const char* name : kPrograms) {
    const std::string path = std::string(SB_BENCH_PROGRAMS) + "/" + name + ".o";
    for (const char* section : {"xdp", "socket", "socket+proofs"}) {
      auto s = std::make_unique<Subject>();
      s->name = std::string(name) + "/" + section;
      const bool xdp = std::string(section) == "xdp";
      s->proofs = std::string(section) == "socket+proofs";
      if (s->proofs) section = "socket";
      s->kernel = xdp;
      if (xdp) s->path = path;
      try {
        s->program = s->env.load_elf(path, {section, ""}).program;
      } catch (const Error& e) {
        s->error = e.what();
      }
      add(std::move(s), xdp ? BPF_PROG_TYPE_XDP : 0);
    }
  }
  auto branchy = std::make_unique<Subject>();
  branchy->name = "branchy";
  branchy->program = bpf::assemble(branchy_source(600), "branchy");
  add(std::move(branchy), BPF_PROG_TYPE_XDP);
  // The compile benchmarks' 100 slots, raw (r1 = memory), as sb_api_bench's
  // runnable rows verify it: the verifier's fixed cost beside a compile's.
  auto synthetic = std::make_unique<Subject>();
  synthetic->name = "synthetic100";
  synthetic->kernel = false;
  synthetic->program = bpf::assemble(synthetic_source(), "synthetic100");
  add(std::move(synthetic), 0);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
