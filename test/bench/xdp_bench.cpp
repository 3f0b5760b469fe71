// XDP programs on a real context, per packet: Springboard's test run
// (rt::test_run, the program's x86-64 code natively, or the interpreter)
// against the kernel's BPF_PROG_TEST_RUN with `repeat`, the same object,
// the same maps and the same packet (issue 14's performance item).
//
//   xdp/<program>/jit      Springboard's x86-64 JIT: test_run's mean time per run
//   xdp/<program>/interp   Springboard's interpreter, the same way
//   xdp/<program>/kernel   the kernel's JIT: BPF_PROG_TEST_RUN's `duration`
//
// Both sides time only their loop over the runs (the kernel's duration,
// test_run's duration_ns): an iteration is one test run of kRepeat packets,
// and the counter ns_per_packet is the program's cost per packet plus the
// loop's, not the set-up of a test run. Programs: the kernel
// selftests' balancer test_xdp_noinline (balancer_ingress_v4, with the map
// entries the selftest writes, on pkt_v4: it encapsulates the packet with
// bpf_xdp_adjust_head) and Springboard's parser xdp_parse (Ethernet, VLAN,
// IPv4/IPv6, TCP/UDP, on an IPv4/UDP frame). Kernel rows are skipped with a
// message when the kernel will not load the object (not root, no libbpf).
//
//   build/test/bench/sb_xdp_bench --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "frontend/elf_loader.h"
#include "runtime/exec/engines.h"
#include "runtime/helpers/std_helpers.h"
#include "runtime/progtypes/kernel_test_run.h"
#include "runtime/progtypes/test_run.h"

namespace {

using namespace sb;
using Bytes = std::vector<uint8_t>;

constexpr uint32_t kRepeat = 10000;  // runs per test run, on both sides

struct MapEntryIn {
  std::string map;
  Bytes key, value;
};
struct XdpCase {
  std::string object, function;
  std::vector<MapEntryIn> maps;
  Bytes packet;
};

Bytes pkt_v4() {  // the selftests' pkt_v4 (network_helpers.c)
  Bytes p(12, 0);
  p.insert(p.end(), {0x08, 0x00, 0x45, 0, 0, 123, 0, 0, 0, 0, 0, 6, 0, 0});
  p.resize(34, 0);
  Bytes tcp(20, 0);
  tcp[12] = 0x50, tcp[18] = 123;
  p.insert(p.end(), tcp.begin(), tcp.end());
  return p;
}

Bytes udp_frame() {
  Bytes f(12, 0x22);
  f.insert(f.end(), {0x08, 0x00, 0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
                     0x30, 0x39, 0, 53, 0, 8, 0, 0});
  return f;
}

std::vector<XdpCase> cases() {
  Bytes vip(24, 0);
  vip[20] = 6;
  Bytes real(20, 0);
  real[0] = 0x34, real[1] = 0x12;
  const std::vector<MapEntryIn> lb = {{"vip_map", vip, {0, 0, 0, 0, 5, 0, 0, 0}},
                                      {"ch_rings", {11, 0, 0, 0}, {3, 0, 0, 0}},
                                      {"reals", {3, 0, 0, 0}, real}};
  return {{"test_xdp_noinline", "balancer_ingress_v4", lb, pkt_v4()}, {"xdp_parse", "", {}, udp_frame()}};
}

std::string path(const XdpCase& c) { return std::string(SB_XDP_BENCH_OBJECTS) + "/" + c.object + ".o"; }

// An iteration is one test run of kRepeat packets; ns_per_packet is the
// mean of the runs' own per-run figures.
void report(benchmark::State& state, uint32_t retval, double ns_sum) {
  state.counters["retval"] = retval;
  state.counters["ns_per_packet"] = state.iterations() ? ns_sum / double(state.iterations()) : 0;
  state.SetItemsProcessed(int64_t(state.iterations()) * kRepeat);
}

void springboard_row(benchmark::State& state, const XdpCase& c, const char* engine_name) {
  const rt::Engine* engine = nullptr;
  for (const rt::Engine& e : rt::engines())
    if (e.name == engine_name) engine = &e;
  rt::Environment env;
  bpf::ElfProgram elf;
  try {
    elf = env.load_elf(path(c), {"", c.function});
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  elf.program.type = elf.type;
  for (const MapEntryIn& m : c.maps) env.find_map(m.map)->update(m.key.data(), m.value.data(), 0);
  const rt::HelperTable helpers = rt::standard_helpers(env);
  const rt::Engine::Runner runner = engine->prepare(elf.program, helpers, {});
  rt::TestRunInput in;
  in.data = c.packet;
  in.repeat = kRepeat;
  uint32_t retval = 0;
  double ns = 0;
  for (auto _ : state) {
    const rt::TestRunOutput out = rt::test_run(elf.program, in, runner);
    retval = out.retval;
    ns += double(out.duration_ns);
    state.SetIterationTime(double(out.duration_ns) * kRepeat * 1e-9);
  }
  report(state, retval, ns);
}

void kernel_row(benchmark::State& state, const XdpCase& c) {
  std::string why;
  std::unique_ptr<rt::KernelObject> k = rt::KernelObject::load(path(c), c.function, &why);
  if (!k) {
    state.SkipWithError(("the kernel would not load it: " + why.substr(0, why.find('\n'))).c_str());
    return;
  }
  for (const MapEntryIn& m : c.maps) k->update(m.map, m.key, m.value);
  uint32_t retval = 0;
  double ns = 0;
  for (auto _ : state) {
    const rt::KernelObject::Run r = k->test_run(c.packet, std::nullopt, kRepeat);
    if (r.error) {
      state.SkipWithError("BPF_PROG_TEST_RUN failed");
      return;
    }
    retval = r.retval;
    ns += double(r.duration_ns);
    state.SetIterationTime(double(r.duration_ns) * kRepeat * 1e-9);
  }
  report(state, retval, ns);
}

int register_rows() {
  for (const XdpCase& c : cases()) {
    const std::string name = "xdp/" + c.object + (c.function.empty() ? "" : ":" + c.function);
    benchmark::RegisterBenchmark((name + "/jit").c_str(), [c](benchmark::State& s) { springboard_row(s, c, "x86_64_native"); })
        ->UseManualTime();
    benchmark::RegisterBenchmark((name + "/interp").c_str(), [c](benchmark::State& s) { springboard_row(s, c, "interp"); })
        ->UseManualTime();
    benchmark::RegisterBenchmark((name + "/kernel").c_str(), [c](benchmark::State& s) { kernel_row(s, c); })
        ->UseManualTime();
  }
  return 0;
}
const int registered = register_rows();

}  // namespace

BENCHMARK_MAIN();
