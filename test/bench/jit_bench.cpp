// The performance suite (issue 6): one Google Benchmark binary whose rows
// are all measured in the same run, so their ratios are comparable.
//
//   compile/<arch>/<program>  bytes -> machine code, end to end: decode,
//                             validate, lower, check, select, LLVM MC encode
//                             (x86-64, arm64, riscv64; compile only). The
//                             programs below, `synthetic100`, a generated
//                             program of exactly 100 instruction slots, and
//                             `empty` (mov r0, 0; exit: the fixed cost).
//   frontend/<program>        the target-independent part of that: bytes ->
//                             verified IR (decode, validate, lower, check)
//   exec/<program>/<engine>   one run of a program over its input:
//                               jit     Springboard's x86-64 code, natively
//                               kernel  the Linux kernel's JIT, via
//                                       BPF_PROG_TEST_RUN with repeat
//                               native  the same C built by gcc -O2
//                                       -fno-tree-vectorize (no BPF at all)
//                               interp  Springboard's reference interpreter
//                               jit_bounds  the JIT in bounds-check mode
//                                       (ir/harden.h): the mode's cost
//
// The programs are test/bench/programs/*.c (see bench.h there): clang
// -O2 -g -target bpf builds each into an object with two entries around one
// body subprogram; jit and interp run the `socket` entry over the memory in
// r1/r2, the kernel runs the `xdp` entry over an array map value holding the
// same bytes. Every engine must return the interpreter's checksum, or its
// row is skipped with the values it gave.
//
// Time: every row reports the CPU time of one run (Google Benchmark's manual
// time). Springboard's rows time batches of runs with the thread's CPU
// clock, so time spent preempted on a busy machine is left out; the kernel
// rows take the kernel's own figure (BPF_PROG_TEST_RUN's `duration`, the
// mean over `repeat` runs, which leaves out rescheduling too). Kernel rows
// are skipped with a message when the kernel will not load the programs
// (not root, no BPF, built without libbpf).
//
// Counters: compile rows: `insns` (bytecode slots), `ns_per_insn`,
// `code_bytes` (machine code). exec rows: `insns` (slots) of the program the
// row runs and `code_bytes` of its machine code (jit: the socket entry;
// kernel: jited_prog_len of the xdp entry, subprograms included, and
// `xlated_insns` after the kernel's rewrites), and on jit rows
// `xdp_code_bytes`: Springboard's x86-64 code for the kernel's very
// bytecode, the like-for-like size comparison.
//
//   tools/bench.sh                       builds, runs this and
//                                        sb_trampoline_bench, charts the results
//   build/test/bench/sb_jit_bench --benchmark_filter=exec/fnv
#include <benchmark/benchmark.h>
#include <sys/utsname.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "backends/compile.h"
#include "frontend/assembler.h"
#include "frontend/decoder.h"
#include "ir/diag.h"
#include "runtime/exec/interpreter.h"
#include "runtime/maps/maps.h"
#include "runtime/exec/native.h"
#include "runtime/helpers/std_helpers.h"
#include "test/bench/synthetic.h"

#ifdef SB_HAVE_LIBBPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#endif

// The native builds of test/bench/programs/*.c (bench.h, SB_NATIVE).
extern "C" {
uint64_t sb_native_sum(void* mem, uint64_t len);
uint64_t sb_native_fnv(void* mem, uint64_t len);
uint64_t sb_native_crc32(void* mem, uint64_t len);
uint64_t sb_native_collatz(void* mem, uint64_t len);
uint64_t sb_native_sort(void* mem, uint64_t len);
uint64_t sb_native_bits(void* mem, uint64_t len);
uint64_t sb_native_parser(void* mem, uint64_t len);
uint64_t sb_native_copy(void* mem, uint64_t len);
}

namespace {

using namespace sb;

// ---------------------------------------------------------------------------
// Inputs: deterministic, the same bytes for every engine.

struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint32_t below(uint32_t n) { return uint32_t(next() % n); }
};

void fill_random(std::span<uint8_t> mem) {
  SplitMix64 rng{0x5b0a7d};
  for (size_t i = 0; i < mem.size(); i += 8) {
    const uint64_t v = rng.next();
    std::memcpy(mem.data() + i, &v, std::min<size_t>(8, mem.size() - i));
  }
}

// sort and copy: random first half; the second half is theirs to write.
void fill_first_half(std::span<uint8_t> mem) { fill_random(mem.first(mem.size() / 2)); }

// collatz: N = 1000 (the program's maximum).
void fill_collatz(std::span<uint8_t> mem) {
  const uint64_t n = 1000;
  std::memcpy(mem.data(), &n, sizeof n);
}

// parser: 128-byte slots {u16 length; packet}, as parser.c reads them: a
// random mix of Ethernet (some VLAN-tagged) frames carrying IPv4 (some with
// options, some fragments, some malformed), IPv6 (some with an extension
// header), ARP or LLDP, over TCP (various flags), UDP (some DNS), ICMP,
// ICMPv6 or GRE; about one in eight cut short.
class PacketWriter {
 public:
  explicit PacketWriter(uint8_t* p) : p_(p) {}
  void u8(uint32_t v) { p_[n_++] = uint8_t(v); }
  void be16(uint32_t v) { u8(v >> 8), u8(v); }
  void be32(uint32_t v) { be16(v >> 16), be16(v); }
  void fill(size_t count, SplitMix64& rng) {
    for (size_t i = 0; i < count; ++i) u8(uint32_t(rng.next()));
  }
  size_t size() const { return n_; }

 private:
  uint8_t* p_;
  size_t n_ = 0;
};

void write_l4(PacketWriter& w, uint32_t proto, SplitMix64& rng) {
  if (proto == 6) {  // TCP
    constexpr uint8_t kFlags[] = {0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x10, 0x18};
    w.be16(1024 + rng.below(60000)), w.be16(rng.below(4) == 0 ? 443 : 80);
    w.fill(8, rng);  // seq, ack
    w.u8(0x50), w.u8(kFlags[rng.below(8)]);
    w.fill(6, rng);  // window, checksum, urgent pointer
  } else if (proto == 17) {  // UDP
    const bool dns = rng.below(3) == 0;
    w.be16(1024 + rng.below(60000)), w.be16(dns ? 53 : 4789 + rng.below(100));
    w.be16(8 + 16), w.be16(0);
    w.fill(16, rng);
  } else if (proto == 1 || proto == 58) {  // ICMP, ICMPv6
    constexpr uint8_t kTypes[] = {0, 8, 3, 11, 128, 129, 135, 136};
    w.u8(kTypes[rng.below(8)]), w.u8(0), w.be16(0), w.fill(4, rng);
  } else {  // GRE and others: a few bytes
    w.fill(8, rng);
  }
}

uint32_t random_l4(SplitMix64& rng, bool v6) {
  constexpr uint32_t kV4[] = {6, 6, 6, 17, 17, 1, 47};
  constexpr uint32_t kV6[] = {6, 6, 17, 17, 58, 47, 17};
  return (v6 ? kV6 : kV4)[rng.below(7)];
}

void write_packet(uint8_t* slot, SplitMix64& rng) {
  uint8_t* pkt = slot + 2;
  PacketWriter w(pkt);
  w.fill(12, rng);  // destination and source MAC
  if (rng.below(5) == 0) w.be16(0x8100), w.be16(rng.below(4096));
  const uint32_t kind = rng.below(16);
  if (kind < 9) {  // IPv4
    const uint32_t options = rng.below(4) == 0 ? 1 + rng.below(10) : 0;
    const uint32_t proto = random_l4(rng, false);
    const uint32_t broken = rng.below(24);
    w.be16(0x0800);
    w.u8(broken == 0 ? 0x65 : broken == 1 ? 0x44 : 0x45 + options);  // bad version, bad IHL, or good
    w.u8(0), w.be16(0);
    w.be16(rng.below(65536));
    w.be16(broken == 2 ? 0x2000 : broken == 3 ? 0x00b9 : 0x4000);  // MF, a fragment offset, or DF
    w.u8(1 + rng.below(128)), w.u8(proto), w.be16(0);
    w.be32(0x0a000000 | rng.below(1 << 16)), w.be32(0xc0a80000 | rng.below(1 << 16));
    w.fill(options * 4, rng);
    write_l4(w, proto, rng);
  } else if (kind < 13) {  // IPv6
    const uint32_t proto = rng.below(10) == 0 ? 43 : random_l4(rng, true);
    w.be16(0x86dd);
    w.be32(0x60000000 | rng.below(1 << 20)), w.be16(32), w.u8(proto), w.u8(64);
    w.fill(32, rng);  // source and destination addresses
    write_l4(w, proto, rng);
  } else if (kind < 15) {  // ARP
    w.be16(0x0806);
    w.fill(28, rng);
  } else {  // LLDP
    w.be16(0x88cc);
    w.fill(20, rng);
  }
  size_t len = w.size();
  if (rng.below(8) == 0) len = rng.below(uint32_t(len));  // cut short
  slot[0] = uint8_t(len), slot[1] = uint8_t(len >> 8);
}

void fill_packets(std::span<uint8_t> mem) {
  constexpr size_t kSlot = 128;
  SplitMix64 rng{0x9ac4e7};
  for (size_t at = 0; at + kSlot <= mem.size(); at += kSlot) write_packet(mem.data() + at, rng);
}

// ---------------------------------------------------------------------------
// The programs. Input sizes come from each object's `input` map.

struct BenchProgram {
  const char* name;
  void (*fill)(std::span<uint8_t>);
  uint64_t (*native)(void* mem, uint64_t len);
};

constexpr BenchProgram kPrograms[] = {
    {"sum", fill_random, sb_native_sum},        {"fnv", fill_random, sb_native_fnv},
    {"crc32", fill_random, sb_native_crc32},    {"collatz", fill_collatz, sb_native_collatz},
    {"sort", fill_first_half, sb_native_sort},  {"bits", fill_random, sb_native_bits},
    {"parser", fill_packets, sb_native_parser}, {"copy", fill_first_half, sb_native_copy},
};

std::string hex(uint64_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}

uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// How many runs of `run` take about `target_ns` (after a warm-up run: the
// first compile for an architecture also sets up LLVM's target). Decided
// once per row, before the benchmarks run: Google Benchmark needs every
// repetition of a row to count the same iterations.
template <typename Fn>
uint64_t batch_size(Fn&& run, uint64_t target_ns = 2000000) {
  run();
  const uint64_t t0 = thread_cpu_ns();
  run();
  const uint64_t once = std::max<uint64_t>(thread_cpu_ns() - t0, 1);
  return std::clamp<uint64_t>(target_ns / once, 1, 1u << 20);
}

// Batches of `batch` runs timed with the thread's CPU clock; returns the
// total nanoseconds measured.
template <typename Fn>
uint64_t run_timed(benchmark::State& state, uint64_t batch, Fn&& run) {
  uint64_t total = 0;
  while (state.KeepRunningBatch(benchmark::IterationCount(batch))) {
    const uint64_t t0 = thread_cpu_ns();
    for (uint64_t i = 0; i < batch; ++i) run();
    const uint64_t spent = thread_cpu_ns() - t0;
    state.SetIterationTime(double(spent) * 1e-9);
    total += spent;
  }
  return total;
}

// ---------------------------------------------------------------------------
// The Linux kernel's JIT: the object's xdp entry, loaded by libbpf.

#ifdef SB_HAVE_LIBBPF
class KernelProgram {
 public:
  // Loads the xdp entry of `path` with `input` as the `input` map's value;
  // null and `error` set when the kernel refuses.
  static std::unique_ptr<KernelProgram> load(const std::string& path, std::span<const uint8_t> input,
                                             std::string& error) {
    std::unique_ptr<KernelProgram> k(new KernelProgram);
    k->obj_ = bpf_object__open_file(path.c_str(), nullptr);
    if (!k->obj_) {
      error = path + ": libbpf cannot open it: " + std::strerror(errno);
      return nullptr;
    }
    bpf_program* xdp = nullptr;
    bpf_program* p;
    bpf_object__for_each_program(p, k->obj_) {
      const bool is_xdp = std::strcmp(bpf_program__section_name(p), "xdp") == 0;
      bpf_program__set_autoload(p, is_xdp);
      if (is_xdp) xdp = p;
    }
    if (!xdp) {
      error = path + ": no xdp program";
      return nullptr;
    }
    if (const int err = bpf_object__load(k->obj_); err != 0) {
      error = std::string("BPF_PROG_LOAD of ") + path + ": " + std::strerror(-err) +
              (err == -EPERM ? " (the kernel rows need root: CAP_BPF and CAP_SYS_ADMIN)" : "");
      return nullptr;
    }
    k->prog_fd_ = bpf_program__fd(xdp);
    bpf_map* in = bpf_object__find_map_by_name(k->obj_, "input");
    bpf_map* out = bpf_object__find_map_by_name(k->obj_, "result");
    if (!in || !out || bpf_map__value_size(in) != input.size()) {
      error = path + ": no `input` map of " + std::to_string(input.size()) + " bytes or no `result` map";
      return nullptr;
    }
    k->result_fd_ = bpf_map__fd(out);
    const uint32_t zero = 0;
    if (bpf_map_update_elem(bpf_map__fd(in), &zero, input.data(), BPF_ANY) != 0) {
      error = path + ": filling the input map: " + std::strerror(errno);
      return nullptr;
    }
    bpf_prog_info info{};
    uint32_t info_len = sizeof info;
    if (bpf_obj_get_info_by_fd(k->prog_fd_, &info, &info_len) != 0) {
      error = path + ": BPF_OBJ_GET_INFO_BY_FD: " + std::strerror(errno);
      return nullptr;
    }
    k->code_bytes_ = info.jited_prog_len;
    k->insns_ = info.xlated_prog_len / 8;
    return k;
  }

  ~KernelProgram() { bpf_object__close(obj_); }
  KernelProgram(const KernelProgram&) = delete;
  KernelProgram& operator=(const KernelProgram&) = delete;

  // BPF_PROG_TEST_RUN with `repeat`: the kernel's mean nanoseconds per run,
  // or 0 with `error` set.
  uint32_t run(uint32_t repeat, std::string& error) const {
    uint8_t frame[64] = {};  // the XDP packet, which the programs ignore
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof frame, .repeat = int(repeat));
    if (bpf_prog_test_run_opts(prog_fd_, &opts) != 0) {
      error = std::string("BPF_PROG_TEST_RUN: ") + std::strerror(errno);
      return 0;
    }
    if (opts.retval != 2) {
      error = "the xdp entry returned " + std::to_string(opts.retval) + ", not XDP_PASS";
      return 0;
    }
    return std::max<uint32_t>(opts.duration, 1);
  }

  uint64_t result() const {
    const uint32_t zero = 0;
    uint64_t v = 0;
    bpf_map_lookup_elem(result_fd_, &zero, &v);
    return v;
  }
  uint32_t code_bytes() const { return code_bytes_; }
  uint32_t insns() const { return insns_; }  // as the kernel rewrote them (xlated)

 private:
  KernelProgram() = default;
  bpf_object* obj_ = nullptr;
  int prog_fd_ = -1, result_fd_ = -1;
  uint32_t code_bytes_ = 0, insns_ = 0;
};
#else
class KernelProgram {
 public:
  static std::unique_ptr<KernelProgram> load(const std::string&, std::span<const uint8_t>, std::string& error) {
    error = "built without libbpf (apt-get install libbpf-dev, then reconfigure)";
    return nullptr;
  }
  uint32_t run(uint32_t, std::string&) const { return 0; }
  uint64_t result() const { return 0; }
  uint32_t code_bytes() const { return 0; }
  uint32_t insns() const { return 0; }
};
#endif

// ---------------------------------------------------------------------------
// One program, loaded for every engine and checked against the interpreter.

struct Subject {
  const BenchProgram* spec = nullptr;
  std::string path;
  rt::Environment env;      // the object's maps (the socket entry uses none)
  rt::HelperTable helpers;  // standard helpers on env
  bpf::Program program;     // the socket entry and the subprograms it calls
  std::vector<uint8_t> bytecode;
  std::vector<uint8_t> input;
  uint64_t expected = 0;    // the interpreter's checksum
  std::unique_ptr<rt::NativeProgram> jit;
  std::unique_ptr<rt::NativeProgram> jit_bounds;  // the same in bounds-check mode (issue 7)
  size_t xdp_insns = 0;       // the xdp entry (with its subprograms), as clang wrote it
  size_t xdp_code_bytes = 0;  // Springboard's x86-64 code for it
  std::unique_ptr<KernelProgram> kernel;
  uint32_t kernel_repeat = 1;  // runs per BPF_PROG_TEST_RUN
  uint64_t batch[5] = {1, 1, 1, 1, 1};  // runs per timed batch, by Engine
  // Why an engine's row is skipped (empty: it runs); xdp_error only loses
  // the xdp_code_bytes counter.
  std::string error, jit_error, native_error, kernel_error, xdp_error, bounds_error;

  rt::PageMemory fresh_memory() const {
    rt::PageMemory m(input.size());
    std::memcpy(m.data(), input.data(), input.size());
    return m;
  }
};

enum class Engine { Jit, Kernel, Native, Interp, JitBounds };
constexpr const char* kEngineNames[] = {"jit", "kernel", "native", "interp", "jit_bounds"};

// Calls `fn` with a callable that runs `s` once on `engine` (not the
// kernel's) over `mem` and returns r0.
template <typename Fn>
void with_runner(const Subject& s, Engine engine, uint8_t* mem, Fn&& fn) {
  const size_t len = s.input.size();
  switch (engine) {
    case Engine::Jit:
      fn([&] { return s.jit->run(mem, len); });
      break;
    case Engine::Native:
      fn([&] { return s.spec->native(mem, len); });
      break;
    case Engine::JitBounds:
      fn([&] { return s.jit_bounds->run(mem, len); });
      break;
    case Engine::Interp:
      fn([&] { return rt::interpret(s.program, s.helpers, mem, len); });
      break;
    case Engine::Kernel:
      break;
  }
}

std::string mismatch(const char* engine, uint64_t got, uint64_t want) {
  return std::string(engine) + " returned " + hex(got) + ", the interpreter " + hex(want);
}

void load_subject(Subject& s, const std::string& dir) {
  s.path = dir + "/" + s.spec->name + ".o";
  try {
    s.program = s.env.load_elf(s.path, {"socket", ""}).program;
    for (rt::Map* m : s.env.maps())
      if (m->name() == "input") s.input.resize(m->spec().value_size);
    if (s.input.empty()) throw Error(s.path, "no `input` map");
    s.spec->fill(s.input);
    s.helpers = rt::standard_helpers(s.env);
    s.bytecode = bpf::encode(s.program);

    rt::PageMemory mem = s.fresh_memory();
    s.expected = rt::interpret(s.program, s.helpers, mem.data(), s.input.size());
  } catch (const std::exception& e) {
    s.error = e.what();
    return;
  }
  try {
    s.jit = std::make_unique<rt::NativeProgram>(s.program, s.helpers);
    rt::PageMemory mem = s.fresh_memory();
    if (const uint64_t r = s.jit->run(mem.data(), s.input.size()); r != s.expected)
      s.jit_error = mismatch("the JIT", r, s.expected);
  } catch (const std::exception& e) {
    s.jit_error = e.what();
  }
  try {
    rt::Safety bounds;
    bounds.bounds_check = true;
    bounds.verify = true;  // verified: accesses the proof covers keep no check
    s.jit_bounds = std::make_unique<rt::NativeProgram>(s.program, s.helpers, bounds);
    rt::PageMemory mem = s.fresh_memory();
    if (const uint64_t r = s.jit_bounds->run(mem.data(), s.input.size()); r != s.expected)
      s.bounds_error = mismatch("the bounds-checked JIT", r, s.expected);
  } catch (const std::exception& e) {
    s.bounds_error = e.what();
  }
  {
    rt::PageMemory mem = s.fresh_memory();
    if (const uint64_t r = s.spec->native(mem.data(), s.input.size()); r != s.expected)
      s.native_error = mismatch("native C", r, s.expected);
  }
  try {  // the kernel's exact bytecode through Springboard's x86-64 backend
    rt::Environment env;
    rt::HelperTable helpers = rt::standard_helpers(env);
    const bpf::Program xdp = env.load_elf(s.path, {"xdp", ""}).program;
    s.xdp_insns = xdp.insns.size();
    s.xdp_code_bytes = compile(xdp, helpers, CompileOptions{}).image.text.size();
  } catch (const std::exception& e) {
    s.xdp_error = std::string("the xdp entry on Springboard's JIT: ") + e.what();
  }
  for (Engine e : {Engine::Jit, Engine::Native, Engine::Interp, Engine::JitBounds}) {
    if ((e == Engine::Jit && !s.jit_error.empty()) || (e == Engine::Native && !s.native_error.empty()) ||
        (e == Engine::JitBounds && !s.bounds_error.empty()))
      continue;
    rt::PageMemory mem = s.fresh_memory();
    with_runner(s, e, mem.data(), [&](auto run) {
      s.batch[int(e)] = batch_size([&] { benchmark::DoNotOptimize(run()); });
    });
  }
  s.kernel = KernelProgram::load(s.path, s.input, s.kernel_error);
  if (s.kernel) {
    const uint32_t once = s.kernel->run(1, s.kernel_error);
    if (once == 0) {
      s.kernel.reset();
    } else if (const uint64_t r = s.kernel->result(); r != s.expected) {
      s.kernel_error = mismatch("the kernel", r, s.expected);
      s.kernel.reset();
    } else {
      s.kernel_repeat = std::clamp<uint32_t>(2000000 / once, 1, 1u << 20);  // ~2 ms per syscall
    }
  }
}

// ---------------------------------------------------------------------------
// Rows.

void set_code_counters(benchmark::State& state, size_t insns, size_t code_bytes) {
  state.counters["insns"] = double(insns);
  state.counters["code_bytes"] = double(code_bytes);
}

// compile/<arch>/<name>: bytes -> machine code.
struct CompileRow {
  CompileRow(Arch a, const std::vector<uint8_t>& b, std::string n, const rt::HelperTable& h, bool front = false)
      : arch(a), front_end_only(front), bytes(&b), name(std::move(n)), helpers(&h) {}

  Arch arch;
  bool front_end_only;  // bytes -> checked IR, no target
  const std::vector<uint8_t>* bytes;
  std::string name;
  const rt::HelperTable* helpers;
  uint64_t batch = 1;
  std::string error;
  size_t insns = 0, code_bytes = 0;

  void once() {
    const bpf::Program p = bpf::decode(*bytes, name);
    if (front_end_only) {
      const ir::Module m = to_ir(p, *helpers);
      insns = p.insns.size();
      benchmark::DoNotOptimize(&m);
      return;
    }
    CompileOptions opts;
    opts.arch = arch;
    const Compilation c = compile(p, *helpers, opts);
    insns = p.insns.size();
    code_bytes = c.image.text.size();
    benchmark::DoNotOptimize(c.image.text.data());
  }
};

void bench_compile(benchmark::State& state, CompileRow& row) {
  if (!row.error.empty()) {
    state.SkipWithError(row.error.c_str());
    return;
  }
  const uint64_t ns = run_timed(state, row.batch, [&] { row.once(); });
  if (row.front_end_only)
    state.counters["insns"] = double(row.insns);
  else
    set_code_counters(state, row.insns, row.code_bytes);
  state.counters["ns_per_insn"] = double(ns) / double(state.iterations()) / double(row.insns);
}

void bench_exec(benchmark::State& state, const Subject& s, Engine engine) {
  std::string why = s.error;
  if (why.empty() && engine == Engine::Jit) why = s.jit_error;
  if (why.empty() && engine == Engine::Native) why = s.native_error;
  if (why.empty() && engine == Engine::JitBounds) why = s.bounds_error;
  if (why.empty() && engine == Engine::Kernel) why = s.kernel ? "" : s.kernel_error;
  if (!why.empty()) {
    state.SkipWithError(why.c_str());
    return;
  }
  rt::PageMemory mem = s.fresh_memory();
  uint64_t r = 0;
  if (engine == Engine::Kernel) {
    std::string error;
    while (state.KeepRunningBatch(s.kernel_repeat)) {
      const uint32_t ns = s.kernel->run(s.kernel_repeat, error);
      if (ns == 0) {
        state.SkipWithError(error.c_str());
        break;
      }
      state.SetIterationTime(double(ns) * s.kernel_repeat * 1e-9);
    }
    r = s.kernel->result();
    set_code_counters(state, s.xdp_insns, s.kernel->code_bytes());
    state.counters["xlated_insns"] = double(s.kernel->insns());
  } else {
    with_runner(s, engine, mem.data(), [&](auto run) {
      run_timed(state, s.batch[int(engine)], [&] { benchmark::DoNotOptimize(r = run()); });
    });
    if (engine == Engine::JitBounds) {
      set_code_counters(state, s.program.insns.size(), s.jit_bounds->image().text.size());
    } else if (engine == Engine::Jit) {
      set_code_counters(state, s.program.insns.size(), s.jit->image().text.size());
      state.counters["xdp_code_bytes"] = double(s.xdp_code_bytes);
    } else if (engine == Engine::Interp) {
      state.counters["insns"] = double(s.program.insns.size());
    }
  }
  if (r != s.expected && !state.error_occurred())
    state.SkipWithError(mismatch(kEngineNames[int(engine)], r, s.expected).c_str());
}

std::string read_first_line(const char* path, const std::string& prefix = "") {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) return prefix.empty() ? line : line.substr(line.find(':') + 2);
  return "?";
}

void add_context() {
  benchmark::AddCustomContext("cpu_model", read_first_line("/proc/cpuinfo", "model name"));
  utsname u{};
  uname(&u);
  benchmark::AddCustomContext("kernel", std::string(u.sysname) + " " + u.release + " " + u.machine);
  benchmark::AddCustomContext("bpf_jit_enable", read_first_line("/proc/sys/net/core/bpf_jit_enable"));
  benchmark::AddCustomContext("loadavg_at_start", read_first_line("/proc/loadavg"));
  benchmark::AddCustomContext("bpf_compiler", SB_BENCH_BPF_CLANG);
  benchmark::AddCustomContext("native_compiler", SB_BENCH_NATIVE_CC);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  add_context();

  // Everything the rows use lives here, for the whole run.
  std::vector<std::unique_ptr<Subject>> subjects;
  for (const BenchProgram& p : kPrograms) {
    auto s = std::make_unique<Subject>();
    s->spec = &p;
    load_subject(*s, SB_BENCH_PROGRAMS);
    for (const std::string* e : {&s->error, &s->jit_error, &s->native_error, &s->kernel_error, &s->xdp_error})
      if (!e->empty()) fprintf(stderr, "sb_jit_bench: %s: %s\n", p.name, e->c_str());
    subjects.push_back(std::move(s));
  }
  const rt::HelperTable no_helpers;
  const bpf::Program synthetic = bpf::assemble(synthetic_source(), "synthetic100");
  const std::vector<uint8_t> synthetic_bytes = bpf::encode(synthetic);
  const std::vector<uint8_t> empty_bytes = bpf::encode(bpf::assemble("mov %r0, 0\nexit", "empty"));
  if (synthetic.insns.size() != 100) {
    fprintf(stderr, "sb_jit_bench: synthetic100 has %zu slots\n", synthetic.insns.size());
    return 1;
  }
  try {  // the synthetic program must mean the same on the JIT as in the interpreter
    uint8_t mem[32];
    fill_random(mem);
    const uint64_t want = rt::interpret(synthetic, no_helpers, mem, sizeof mem);
    const uint64_t got = rt::NativeProgram(synthetic, no_helpers).run(mem, sizeof mem);
    if (got != want) fprintf(stderr, "sb_jit_bench: synthetic100: %s\n", mismatch("the JIT", got, want).c_str());
  } catch (const std::exception& e) {
    fprintf(stderr, "sb_jit_bench: synthetic100: %s\n", e.what());
  }

  std::vector<std::unique_ptr<CompileRow>> compile_rows;
  for (const backend::TargetDesc* t : backend::targets()) {
    for (const auto& s : subjects)
      if (s->error.empty())
        compile_rows.push_back(std::make_unique<CompileRow>(t->arch, s->bytecode, s->spec->name, s->helpers));
    compile_rows.push_back(std::make_unique<CompileRow>(t->arch, synthetic_bytes, "synthetic100", no_helpers));
    compile_rows.push_back(std::make_unique<CompileRow>(t->arch, empty_bytes, "empty", no_helpers));
  }
  for (const auto& s : subjects)
    if (s->error.empty())
      compile_rows.push_back(std::make_unique<CompileRow>(Arch::X86_64, s->bytecode, s->spec->name, s->helpers, true));
  compile_rows.push_back(std::make_unique<CompileRow>(Arch::X86_64, synthetic_bytes, "synthetic100", no_helpers, true));
  compile_rows.push_back(std::make_unique<CompileRow>(Arch::X86_64, empty_bytes, "empty", no_helpers, true));
  for (const auto& row : compile_rows) {
    try {
      row->batch = batch_size([&] { row->once(); });
    } catch (const std::exception& e) {
      row->error = e.what();
    }
    const std::string name = row->front_end_only
                                 ? "frontend/" + row->name
                                 : std::string("compile/") + backend::arch_name(row->arch) + "/" + row->name;
    benchmark::RegisterBenchmark(name.c_str(), [&row = *row](benchmark::State& st) { bench_compile(st, row); })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
  for (const auto& s : subjects) {
    for (Engine e : {Engine::Jit, Engine::Kernel, Engine::Native, Engine::Interp, Engine::JitBounds}) {
      const std::string name = std::string("exec/") + s->spec->name + "/" + kEngineNames[int(e)];
      benchmark::RegisterBenchmark(name.c_str(), [&s = *s, e](benchmark::State& st) { bench_exec(st, s, e); })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
