// Real programs: the BPF C sources in test/programs, compiled at build time
// by `clang -O2 -g -target bpf -c`, loaded from their ELF objects and run on
// every engine (runtime/exec/engines.h). Per program and engine: r0, memory,
// every map's contents, the ring buffer records and the trace output equal
// the interpreter's, and match values computed here.
//
// Also: the loader's selection and errors on malformed objects (each
// asserting the file and the section/symbol/field it names), and the maps
// and standard helpers on their own.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <elf.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/utsname.h>

#include "frontend/elf_loader.h"
#include "frontend/kconfig.h"
#include "frontend/loop_helper.h"
#include "frontend/trampoline.h"
#include "frontend/validator.h"
#include "ir/diag.h"
#include "runtime/maps/maps.h"
#include "runtime/helpers/std_helpers.h"
#include "runtime/helpers/tail_call.h"
#include "runtime/trace/usdt.h"
#include "test/engines.h"

namespace sb::test {
namespace {

#define SB_REQUIRE_PROGRAMS() \
  if (!SB_BPF_HAVE_CLANG) GTEST_SKIP() << "no BPF clang found at configure time: test/programs were not built"

std::string object_path(const std::string& name) { return std::string(SB_BPF_PROGRAMS) + "/" + name + ".o"; }

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string hex(std::span<const uint8_t> bytes) {
  std::string s;
  for (uint8_t b : bytes) s += fmt::format("{:02x}", b);
  return s;
}

template <typename T>
T read_as(std::span<const uint8_t> bytes) {
  T v{};
  std::memcpy(&v, bytes.data(), std::min(sizeof v, bytes.size()));
  return v;
}

// Every engine gets the same reproducible environment.
rt::EnvironmentOptions fixed_options() {
  rt::EnvironmentOptions o;
  o.num_cpus = 4;
  o.current_cpu = [] { return 2u; };
  o.clock = [t = std::make_shared<std::atomic<uint64_t>>(1000)] { return t->fetch_add(250) + 250; };
  o.prandom_seed = 42;
  return o;
}

// ---------------------------------------------------------------------------
// Programs on every engine.

struct Step {
  std::vector<uint8_t> mem;
  bool consume = false;  // consume the ring buffers after this run
};

struct Outcome {
  std::vector<std::string> results;   // r0 as hex, or "error: ..."
  std::vector<std::string> memories;  // memory after each run
  std::vector<std::string> records;   // ring buffer records, in consumption order
  std::string maps;                   // every map's final contents
  std::string trace;
  bool operator==(const Outcome&) const = default;
};

void consume_rings(rt::Environment& env, std::vector<std::string>& records) {
  for (rt::Map* m : env.maps())
    if (auto* ring = dynamic_cast<rt::RingBufMap*>(m))
      ring->consume([&](std::span<const uint8_t> r) { records.push_back(m->name() + ":" + hex(r)); });
}

std::string dump_maps(rt::Environment& env) {
  std::string out;
  for (rt::Map* m : env.maps()) {
    out += fmt::format("{} ({})\n", m->name(), rt::map_type_name(m->spec().type));
    if (auto* a = dynamic_cast<rt::ArrayMap*>(m)) {
      for (uint32_t i = 0; i < m->spec().max_entries; ++i) out += fmt::format("  [{}] {}\n", i, hex(a->value(i)));
    } else if (auto* pc = dynamic_cast<rt::PerCpuArrayMap*>(m)) {
      for (unsigned cpu = 0; cpu < pc->num_cpus(); ++cpu)
        for (uint32_t i = 0; i < m->spec().max_entries; ++i)
          out += fmt::format("  cpu {} [{}] {}\n", cpu, i, hex(pc->value(i, cpu)));
    } else if (auto* h = dynamic_cast<rt::HashMap*>(m)) {
      std::vector<std::string> lines;
      h->for_each([&](auto k, auto v) { lines.push_back(fmt::format("  {} -> {}\n", hex(k), hex(v))); });
      std::sort(lines.begin(), lines.end());
      for (const std::string& l : lines) out += l;
    }
  }
  return out;
}

struct ProgramCase {
  const char* name;
  const char* object;
  bpf::ElfSelection which;
  std::vector<Step> (*steps)();
  // Expectations computed here, on every engine's outcome and environment.
  void (*check)(const std::vector<Step>& steps, const Outcome& out, rt::Environment& env);
  // Before the runs: e.g. register readable memory.
  void (*setup)(rt::Environment& env, std::vector<Step>& steps) = nullptr;
};

Outcome run_case(const ProgramCase& c, const Engine& e, rt::Environment& env) {
  bpf::ElfProgram prog = env.load_elf(object_path(c.object), c.which);
  rt::HelperTable helpers = rt::standard_helpers(env);
  std::vector<Step> steps = c.steps();
  if (c.setup) c.setup(env, steps);
  Outcome out;
  for (Step& s : steps) {
    std::vector<uint8_t> mem = s.mem;
    try {
      out.results.push_back(fmt::format("{:#x}", e.run(prog.program, helpers, mem)));
    } catch (const Error& err) {
      out.results.push_back(std::string("error: ") + err.what());
    }
    out.memories.push_back(hex(mem));
    if (s.consume) consume_rings(env, out.records);
  }
  consume_rings(env, out.records);
  out.maps = dump_maps(env);
  out.trace = env.take_trace();
  return out;
}

uint64_t result(const Outcome& out, size_t i) { return std::stoull(out.results.at(i), nullptr, 16); }

// --- packet.c ---

std::vector<uint8_t> udp_packet(uint32_t saddr, uint16_t sport, uint16_t dport, uint8_t ttl, int options = 0,
                                uint16_t ethertype = 0x0800, uint8_t version = 4, uint8_t proto = 17) {
  std::vector<uint8_t> p = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, uint8_t(ethertype >> 8), uint8_t(ethertype)};
  const uint8_t ihl = uint8_t(5 + options);
  std::vector<uint8_t> ip = {uint8_t(version << 4 | ihl), 0, 0, 28, 0, 0, 0, 0, ttl, proto, 0, 0};
  for (int i = 0; i < 4; ++i) ip.push_back(uint8_t(saddr >> (24 - 8 * i)));
  for (int i = 0; i < 4; ++i) ip.push_back(uint8_t(10 + i));
  for (int i = 0; i < 4 * options; ++i) ip.push_back(1);  // NOP options
  p.insert(p.end(), ip.begin(), ip.end());
  std::vector<uint8_t> udp = {uint8_t(sport >> 8), uint8_t(sport), uint8_t(dport >> 8), uint8_t(dport), 0, 8, 0, 0};
  p.insert(p.end(), udp.begin(), udp.end());
  return p;
}

std::vector<Step> packet_steps() {
  std::vector<uint8_t> truncated_udp = udp_packet(0xc0a80001, 1, 2, 3);
  truncated_udp.resize(truncated_udp.size() - 4);
  return {
      {udp_packet(0xc0a80001, 1234, 53, 64)},
      {udp_packet(0xc0a80001, 5353, 5353, 255, 2)},   // IPv4 options: the UDP header moves
      {udp_packet(0x0a000001, 40000, 443, 1)},
      {udp_packet(0x0a000001, 1, 2, 3, 0, 0x0800, 4, 6)},  // TCP
      {udp_packet(0x0a000001, 1, 2, 3, 0, 0x0806)},        // ARP
      {udp_packet(0x0a000001, 1, 2, 3, 0, 0x0800, 6)},     // version 6 in an IPv4 frame
      {truncated_udp},
      {std::vector<uint8_t>(10, 0xff)},
      {{}},
  };
}

// The reference parser: what packet.c returns, and its verdict.
uint64_t parse_reference(const std::vector<uint8_t>& p, uint32_t& verdict, uint32_t& saddr) {
  auto fail = [&](uint32_t v) { return verdict = v, uint64_t(0xffff0000u | v); };
  if (p.size() < 14) return fail(1);
  if (p[12] != 0x08 || p[13] != 0x00) return fail(2);
  if (p.size() < 34) return fail(1);
  if ((p[14] >> 4) != 4) return fail(2);
  const size_t ihl = (p[14] & 0xf) * 4u;
  if (ihl < 20) return fail(1);
  if (p[23] != 17) return fail(3);
  const size_t udp = 14 + ihl;
  if (p.size() < udp + 8) return fail(1);
  verdict = 0;
  std::memcpy(&saddr, &p[26], 4);
  return uint64_t(p[22]) << 32 | uint64_t(p[udp] << 8 | p[udp + 1]) << 16 | uint64_t(p[udp + 2] << 8 | p[udp + 3]);
}

void packet_check(const std::vector<Step>& steps, const Outcome& out, rt::Environment& env) {
  uint64_t verdicts[4] = {};
  std::map<uint32_t, uint64_t> by_source;
  for (size_t i = 0; i < steps.size(); ++i) {
    uint32_t verdict = 0, saddr = 0;
    EXPECT_EQ(result(out, i), parse_reference(steps[i].mem, verdict, saddr)) << "packet " << i;
    ++verdicts[verdict];
    if (verdict == 0) ++by_source[saddr];
  }
  auto* v = env.find<rt::ArrayMap>("verdicts");
  ASSERT_NE(v, nullptr);
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(read_as<uint64_t>(v->value(i)), verdicts[i]) << "verdict " << i;
  std::map<uint32_t, uint64_t> got;
  env.find<rt::HashMap>("udp_by_source")->for_each([&](auto k, auto val) {
    got[read_as<uint32_t>(k)] = read_as<uint64_t>(val);
  });
  EXPECT_EQ(got, by_source);
}

// --- fnv.c ---

std::vector<Step> fnv_steps() {
  std::vector<uint8_t> big(5000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 7 + 1);
  return {{{}}, {{'a'}}, {{'f', 'o', 'o', 'b', 'a', 'r'}}, {big}};
}

template <typename T>
T fnv_reference(const std::vector<uint8_t>& p, T basis, T prime) {
  T h = basis;
  for (size_t i = 0; i < p.size() && i < 4096; ++i) h = T((h ^ p[i]) * prime);
  return h;
}

void fnv64_check(const std::vector<Step>& steps, const Outcome& out, rt::Environment&) {
  for (size_t i = 0; i < steps.size(); ++i)
    EXPECT_EQ(result(out, i), fnv_reference<uint64_t>(steps[i].mem, 0xcbf29ce484222325ull, 0x100000001b3ull));
  EXPECT_EQ(result(out, 2), 0x85944171f73967e8ull);  // FNV-1a 64 of "foobar" (published test vector)
}

void fnv32_check(const std::vector<Step>& steps, const Outcome& out, rt::Environment&) {
  for (size_t i = 0; i < steps.size(); ++i)
    EXPECT_EQ(result(out, i), fnv_reference<uint32_t>(steps[i].mem, 0x811c9dc5u, 0x01000193u));
  EXPECT_EQ(result(out, 2), 0xbf9cf968u);  // FNV-1a 32 of "foobar"
}

// --- counters.c ---

std::vector<Step> counters_steps() {
  std::vector<uint8_t> long_input(100);
  for (size_t i = 0; i < long_input.size(); ++i) long_input[i] = uint8_t(i % 7);
  return {{{1, 2, 2, 3}}, {{0, 1, 5}}, {{}}, {{0}}, {long_input}, {{1, 1, 1}}};
}

void counters_check(const std::vector<Step>& steps, const Outcome& out, rt::Environment& env) {
  enum { RUNS, BYTES, NEW_KEYS, DELETED, ERR_EXIST, ERR_NOEXIST, OUT_OF_RANGE, ERR_FULL, NUM };
  std::map<uint32_t, uint64_t> counts;
  int64_t totals[NUM] = {};
  uint64_t cpu_runs = 0, cpu_bytes = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::vector<uint8_t>& p = steps[i].mem;
    uint64_t fresh = 0;
    for (size_t j = 0; j < p.size() && j < 64; ++j)
      if (counts[p[j]]++ == 0) ++fresh;
    EXPECT_EQ(result(out, i), fresh) << "run " << i;
    totals[RUNS] += 1;
    totals[BYTES] += int64_t(p.size());
    totals[NEW_KEYS] += int64_t(fresh);
    if (!p.empty() && p[0] == 0) totals[DELETED] += counts.erase(1) ? 0 : -ENOENT;
    if (!p.empty()) totals[ERR_EXIST] += -EEXIST;
    totals[ERR_NOEXIST] += -ENOENT;
    totals[OUT_OF_RANGE] += 1;
    totals[ERR_FULL] += 2 * -E2BIG;
    cpu_runs += 1;
    cpu_bytes += p.size();
  }
  std::map<uint32_t, uint64_t> got;
  env.find<rt::HashMap>("byte_counts")->for_each([&](auto k, auto v) { got[read_as<uint32_t>(k)] = read_as<uint64_t>(v); });
  EXPECT_EQ(got, counts);
  auto* t = env.find<rt::ArrayMap>("totals");
  for (uint32_t i = 0; i < NUM; ++i) EXPECT_EQ(read_as<int64_t>(t->value(i)), totals[i]) << "totals[" << i << "]";
  auto* pc = env.find<rt::PerCpuArrayMap>("per_cpu");
  for (unsigned cpu = 0; cpu < pc->num_cpus(); ++cpu) {
    EXPECT_EQ(read_as<uint64_t>(pc->value(0, cpu)), cpu == 2 ? cpu_runs : 0) << "cpu " << cpu;
    EXPECT_EQ(read_as<uint64_t>(pc->value(1, cpu)), cpu == 2 ? cpu_bytes : 0) << "cpu " << cpu;
  }
  EXPECT_EQ(env.find<rt::HashMap>("small")->size(), 0u);
}

// --- ringbuf.c ---

std::vector<Step> ringbuf_steps() {
  std::vector<Step> steps;
  for (int i = 0; i < 30; ++i) steps.push_back({{uint8_t(i), 1, 2, 3, 4}});
  steps.back().consume = true;
  for (int i = 0; i < 60; ++i) steps.push_back({{uint8_t(100 + i), 9, 8, 7, 6, 5}});
  return steps;
}

void ringbuf_check(const std::vector<Step>& steps, const Outcome& out, rt::Environment& env) {
  // The kernel's accounting: a record takes 8 + size rounded up to 8 bytes
  // and the buffer holds at most size - 1 bytes not yet consumed.
  const uint64_t capacity = 4096 - 1;
  uint64_t pending = 0, seq = 0;
  std::vector<std::string> records;
  auto fits = [&](uint64_t size) {
    const uint64_t len = (size + 8 + 7) / 8 * 8;
    if (pending + len > capacity) return false;
    pending += len;
    return true;
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::vector<uint8_t>& p = steps[i].mem;
    uint64_t failed = 0;
    if (fits(16)) {
      std::vector<uint8_t> ev(16, 0);
      std::memcpy(&ev[0], &seq, 4);
      const uint32_t len = uint32_t(p.size());
      std::memcpy(&ev[4], &len, 4);
      std::copy(p.begin(), p.begin() + long(std::min<size_t>(8, p.size())), ev.begin() + 8);
      records.push_back("events:" + hex(ev));
      ++seq;
    } else {
      failed |= 1;
    }
    if (!fits(32)) failed |= 2;
    if (p.size() >= 4) {
      if (fits(4)) records.push_back("events:" + hex(std::span(p).first(4)));
      else failed |= 4;
    }
    EXPECT_EQ(result(out, i), failed) << "run " << i;
    if (steps[i].consume) pending = 0;
  }
  EXPECT_EQ(out.records, records);
  EXPECT_EQ(read_as<uint32_t>(env.find<rt::ArrayMap>(".bss")->value(0)), seq);
  auto* ring = env.find<rt::RingBufMap>("events");
  EXPECT_GT(ring->producer_pos(), 4096u);  // the second phase wrapped around
  EXPECT_EQ(ring->consumer_pos(), ring->producer_pos());
}

// --- subprog.c: the same functions in C++ ---

uint64_t mix(uint64_t a, uint64_t b) { return (a ^ b) * 0x9e3779b97f4a7c15ull; }
uint64_t step3(uint64_t x) { return mix(x, 3) + 1; }
uint64_t step2(uint64_t acc, uint64_t byte) { return step3(acc) ^ mix(byte, acc); }
uint64_t frame_user(uint64_t seed) {
  uint64_t s = 0;
  for (int i = 0; i < 64; ++i) s += uint8_t(seed + uint64_t(i));
  return s;
}
uint64_t depth4(uint64_t x) { return (frame_user(((x ^ 0x55) + 5) * 3) + 1 + 2 + 3) + 4; }
uint64_t chain_reference(const std::vector<uint8_t>& p) {
  uint64_t acc = 0;
  for (size_t i = 0; i < p.size() && i < 32; ++i) acc = step2(acc, p[i]);
  return acc + depth4(p.size()) + 5 + p.size();
}

std::vector<Step> subprog_steps() {
  std::vector<uint8_t> forty(40);
  for (size_t i = 0; i < forty.size(); ++i) forty[i] = uint8_t(0xa0 + i);
  return {{{}}, {{1, 2, 3, 4, 5}}, {forty}};
}

void subprog_check(const std::vector<Step>& steps, const Outcome& out, rt::Environment&) {
  for (size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(result(out, i), chain_reference(steps[i].mem)) << "run " << i;
}

// --- globals.c ---

std::vector<Step> globals_steps() { return {{{1, 2, 3}}, {{1, 2, 3, 4}}, {{1, 2, 3, 4, 5}}}; }

void globals_check(const std::vector<Step>& steps, const Outcome& out, rt::Environment& env) {
  const uint64_t table[4] = {1, 10, 100, 1000};
  uint64_t total = 100, hidden = 0;
  std::string trace;
  for (size_t i = 0; i < steps.size(); ++i) {
    const uint64_t len = steps[i].mem.size();
    total += len * 3;
    hidden += table[len & 3];
    EXPECT_EQ(result(out, i), total * 1000000 + hidden);
    trace += fmt::format("call {} len {} total {}\nhello x 0ff\n", i + 1, len, total);
  }
  EXPECT_EQ(out.trace, trace);
  // .data holds `total` and `greeting`; .bss `calls` and `hidden`; .rodata is unchanged.
  auto* data = env.find<rt::ArrayMap>(".data");
  ASSERT_NE(data, nullptr);
  EXPECT_NE(hex(data->value(0)).find(hex(std::span(reinterpret_cast<const uint8_t*>(&total), 8))), std::string::npos);
  auto* rodata = env.find<rt::ArrayMap>(".rodata");
  ASSERT_NE(rodata, nullptr);
  EXPECT_EQ(rodata->spec().flags & 0x80, 0x80u);  // BPF_F_RDONLY_PROG
  auto* bss = env.find<rt::ArrayMap>(".bss");
  ASSERT_NE(bss, nullptr);
  uint64_t words[2];
  std::memcpy(words, bss->value(0).data(), 16);
  EXPECT_TRUE((words[0] == steps.size() && words[1] == hidden) || (words[1] == steps.size() && words[0] == hidden));
}

// --- kconfig.c ---

void kconfig_check(const std::vector<Step>& steps, const Outcome& out, rt::Environment& env) {
  utsname u{};
  ASSERT_EQ(uname(&u), 0);
  unsigned a = 0, b = 0, c = 0;
  std::sscanf(u.release, "%u.%u.%u", &a, &b, &c);
  const uint64_t version = (a << 16) + (b << 8) + std::min(c, 255u);
  for (size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(result(out, i), version << 32 | 1u << 16) << u.release;
  auto* kconfig = env.find<rt::ArrayMap>(".kconfig");  // one read-only map, as libbpf's
  ASSERT_NE(kconfig, nullptr);
  EXPECT_EQ(kconfig->spec().flags & 0x80, 0x80u);  // BPF_F_RDONLY_PROG
}

// --- legacy.c ---

std::vector<Step> legacy_steps() { return {{{1}}, {{1, 2}}, {{1, 2, 3, 4, 5}}, {{5, 4, 3, 2, 1}}}; }

void legacy_check(const std::vector<Step>& steps, const Outcome& out, rt::Environment& env) {
  uint64_t slots[4] = {};
  std::map<uint32_t, uint64_t> seen;
  for (size_t i = 0; i < steps.size(); ++i) {
    const uint64_t len = steps[i].mem.size();
    slots[len & 3] += len;
    ++seen[uint32_t(len)];
    EXPECT_EQ(result(out, i), slots[len & 3]);
  }
  auto* a = env.find<rt::ArrayMap>("legacy_array");
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(read_as<uint64_t>(a->value(i)), slots[i]);
  std::map<uint32_t, uint64_t> got;
  env.find<rt::HashMap>("legacy_hash")->for_each([&](auto k, auto v) { got[read_as<uint32_t>(k)] = read_as<uint64_t>(v); });
  EXPECT_EQ(got, seen);
}

// --- multi.c ---

constexpr uint64_t kReadable[2] = {0x0123456789abcdef, 0x1111};  // registered for probe_read
constexpr uint64_t kUnreadable[1] = {0x4444};                     // not registered

std::vector<uint8_t> address_input(const void* p) {
  const uint64_t a = uint64_t(uintptr_t(p));
  std::vector<uint8_t> mem(8);
  std::memcpy(mem.data(), &a, 8);
  return mem;
}

std::vector<Step> read_pointer_steps() {
  return {{address_input(&kReadable[0])}, {address_input(&kReadable[1])}, {address_input(&kUnreadable[0])}, {{1, 2}}};
}

void read_pointer_setup(rt::Environment& env, std::vector<Step>&) { env.add_readable(kReadable, sizeof kReadable); }

void read_pointer_check(const std::vector<Step>&, const Outcome& out, rt::Environment&) {
  EXPECT_EQ(result(out, 0), 2 * kReadable[0]);
  EXPECT_EQ(result(out, 1), 2 * kReadable[1]);
  EXPECT_EQ(result(out, 2), uint64_t(-EFAULT));
  EXPECT_EQ(result(out, 3), 1u);
}

std::vector<Step> two_runs() { return {{{}}, {{}}}; }

// --- loop.c ---

void walk_check(const std::vector<Step>& steps, const Outcome& out, rt::Environment& env) {
  for (size_t s = 0; s < steps.size(); ++s) EXPECT_EQ(result(out, s), 3ull << 32 | 2 * (s + 1)) << "run " << s;
  auto* cells = env.find<rt::ArrayMap>("cells");
  ASSERT_NE(cells, nullptr);
  const uint64_t runs = steps.size();
  for (uint32_t k = 0; k < 4; ++k) {
    uint64_t v;
    std::memcpy(&v, cells->value(k).data(), 8);
    EXPECT_EQ(v, k < 3 ? runs * (k + 1) : 0) << "key " << k;
  }
}

std::vector<Step> loop_steps() {
  std::vector<uint8_t> big(100);
  for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 5 + 3);
  return {{{}}, {{'a'}}, {{1, 2, 3, 4, 5, 6, 7}}, {big}};
}

void loop_check(const std::vector<Step>& steps, const Outcome& out, rt::Environment&) {
  for (size_t s = 0; s < steps.size(); ++s) {
    const std::vector<uint8_t>& m = steps[s].mem;
    uint64_t hash = 7, inner = 0, calls = 0;
    for (uint32_t i = 0; i < 64; ++i) {
      ++calls;
      if (i >= m.size()) break;  // the callback returned 1: i + 1 calls
      hash = hash * 31 + m[i];
      for (uint32_t j = 0; j < (i & 3); ++j) inner += j + 1;
    }
    const uint64_t einval = uint8_t(-22);
    EXPECT_EQ(result(out, s), (hash & 0xffff) | (inner & 0xff) << 16 | (calls & 0xff) << 24 | einval << 32)
        << m.size() << " bytes";
  }
}

void random_pair_check(const std::vector<Step>&, const Outcome& out, rt::Environment&) {
  rt::Environment same(fixed_options());
  for (size_t i = 0; i < 2; ++i) {
    const uint64_t a = same.prandom_u32(), b = same.prandom_u32();
    EXPECT_EQ(result(out, i), a << 32 | b);
  }
  EXPECT_NE(result(out, 0), result(out, 1));
}

void elapsed_check(const std::vector<Step>&, const Outcome& out, rt::Environment&) {
  EXPECT_EQ(result(out, 0), 250u);  // the fixed clock advances 250 ns per reading
  EXPECT_EQ(result(out, 1), 250u);
}

void twice_check(const std::vector<Step>&, const Outcome& out, rt::Environment&) {
  EXPECT_EQ(result(out, 0), 0u);  // a .text function as the entry: twice(r1 = 0)
}

// --- tailcall.c: the pipeline in C++ ---

// struct pkt: len, trail, sum, loops, pad, then 32 bytes of data.
std::vector<uint8_t> pkt(uint32_t len, std::vector<uint8_t> data) {
  std::vector<uint8_t> m(24 + 32, 0);
  std::memcpy(m.data(), &len, 4);
  std::copy(data.begin(), data.end(), m.begin() + 24);
  return m;
}

std::vector<Step> tailcall_steps() {
  std::vector<uint8_t> long_data(32);
  for (size_t i = 0; i < 32; ++i) long_data[i] = uint8_t(0x41 + 3 * i);
  long_data[0] = 1;
  return {{pkt(5, {1, 9, 8, 7, 6})},  // parse -> sum -> verdict
          {pkt(99, long_data)},       // the same, len clamped to 32
          {pkt(3, {2, 1, 1})},        // parse -> verdict (sum stays 0)
          {pkt(3, {4, 1, 1})},        // slot 0 is empty: parse goes on
          {pkt(1, {3})}};             // parse -> loop, 33 times
}

void tailcall_check(const std::vector<Step>& steps, const Outcome& out, rt::Environment& env) {
  auto sum_of = [](const std::vector<uint8_t>& m) {
    uint32_t len;
    std::memcpy(&len, m.data(), 4);
    uint64_t s = 0;
    for (uint32_t i = 0; i < std::min<uint32_t>(len, 32); ++i) s = s * 31 + m[24 + i];
    return s;
  };
  EXPECT_EQ(result(out, 0), (sum_of(steps[0].mem) & 0xffff) | 7u << 16);
  EXPECT_EQ(result(out, 1), (sum_of(steps[1].mem) & 0xffff) | 7u << 16);
  EXPECT_EQ(result(out, 2), 5u << 16);
  EXPECT_EQ(result(out, 3), 1000u);
  EXPECT_EQ(result(out, 4), rt::kMaxTailCalls | 9u << 16);  // as the kernel's selftest tailcall_count
  auto* table = env.find<rt::ProgArrayMap>("jmp_table");
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->get(0), nullptr);
  for (uint32_t i = 1; i < 4; ++i) EXPECT_NE(table->get(i), nullptr) << "slot " << i;
}

const ProgramCase kCases[] = {
    {"packet", "packet", {"xdp", ""}, packet_steps, packet_check},
    {"fnv64", "fnv", {"socket/fnv64", ""}, fnv_steps, fnv64_check},
    {"fnv32", "fnv", {"", "fnv1a32"}, fnv_steps, fnv32_check},
    {"counters", "counters", {}, counters_steps, counters_check},
    {"ringbuf", "ringbuf", {}, ringbuf_steps, ringbuf_check},
    {"subprog", "subprog", {"xdp", "chain"}, subprog_steps, subprog_check},
    {"globals", "globals", {}, globals_steps, globals_check},
    {"legacy", "legacy", {}, legacy_steps, legacy_check},
    {"probe_read", "multi", {"xdp", "read_pointer"}, read_pointer_steps, read_pointer_check, read_pointer_setup},
    {"prandom", "multi", {"", "random_pair"}, two_runs, random_pair_check},
    {"ktime", "multi", {"tc", ""}, two_runs, elapsed_check},
    {"text_entry", "multi", {"", "twice"}, [] { return std::vector<Step>{{{}}}; }, twice_check},
    {"tailcall", "tailcall", {"xdp", ""}, tailcall_steps, tailcall_check},
    {"kconfig", "kconfig", {}, two_runs, kconfig_check},
    {"loop", "loop", {"", "loop"}, loop_steps, loop_check},
    {"for_each", "loop", {"", "walk"}, loop_steps, walk_check},
};

class ElfPrograms : public testing::TestWithParam<std::tuple<size_t, size_t>> {};

TEST_P(ElfPrograms, SameAsInterpreterAndReference) {
  SB_REQUIRE_PROGRAMS();
  const ProgramCase& c = kCases[std::get<0>(GetParam())];
  const Engine& e = engines()[std::get<1>(GetParam())];
  rt::Environment env(fixed_options());
  const Outcome out = run_case(c, e, env);
  std::vector<Step> steps = c.steps();
  c.check(steps, out, env);
  if (&e != &engines().front()) {
    rt::Environment oracle_env(fixed_options());
    const Outcome oracle = run_case(c, engines().front(), oracle_env);
    EXPECT_EQ(out.results, oracle.results);
    EXPECT_EQ(out.memories, oracle.memories);
    EXPECT_EQ(out.records, oracle.records);
    EXPECT_EQ(out.maps, oracle.maps);
    EXPECT_EQ(out.trace, oracle.trace);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Programs, ElfPrograms,
    testing::Combine(testing::Range<size_t>(0, std::size(kCases)), testing::Range<size_t>(0, engines().size())),
    [](const testing::TestParamInfo<std::tuple<size_t, size_t>>& i) {
      return engines()[std::get<1>(i.param)].name + "_" + kCases[std::get<0>(i.param)].name;
    });

// Maps and their values stay usable from several threads running the same
// native program (atomic counters in values, the hash map's lock).
TEST(ElfPrograms, ConcurrentRunsShareMaps) {
  SB_REQUIRE_PROGRAMS();
  const Engine* native = rt::find_engine(rt::EngineKind::Native, Arch::X86_64);
  if (!native) GTEST_SKIP() << "no native engine on this host";
  rt::Environment env(fixed_options());
  bpf::ElfProgram prog = env.load_elf(object_path("packet"), {"xdp", ""});
  rt::HelperTable helpers = rt::standard_helpers(env);
  constexpr int kThreads = 4, kRuns = 250;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRuns; ++i) {
        std::vector<uint8_t> mem = udp_packet(uint32_t(0x0a000000 + t), uint16_t(i), 53, 9);
        if (native->run(prog.program, helpers, mem) != (uint64_t(9) << 32 | uint64_t(i) << 16 | 53)) ++wrong;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(read_as<uint64_t>(env.find<rt::ArrayMap>("verdicts")->value(0)), uint64_t(kThreads * kRuns));
  EXPECT_EQ(env.find<rt::HashMap>("udp_by_source")->size(), size_t(kThreads));
}

// ---------------------------------------------------------------------------
// The loader: selection, what it produces.

bpf::MapAddress fake_map(const bpf::MapDef&) { return {0x1000, 0x2000}; }

std::string load_error(std::span<const uint8_t> bytes, const std::string& name, const bpf::ElfSelection& which = {}) {
  try {
    rt::Environment env;
    env.load_elf(bytes, name, which);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// fentry/fexit sections take their target's signature from the object's
// BTF: a FUNC of that name and its FUNC_PROTO, typedefs and const seen
// through, integers by size and sign, structs by value as their fields.
TEST(ElfLoader, ReadsFunctionPrototypesFromBtf) {
  SB_REQUIRE_PROGRAMS();
  const std::vector<uint8_t> o = bpf::read_file(object_path("prototypes"));
  EXPECT_EQ(bpf::btf_signature(o, "prototypes.o", "two_args"), "i64, i32 -> i64");
  EXPECT_EQ(bpf::btf_signature(o, "prototypes.o", "mixed"), "ptr, u16, f64, u8 -> void");
  EXPECT_EQ(bpf::btf_signature(o, "prototypes.o", "by_value"), "{i32, i64}, f32 -> i32");
  EXPECT_EQ(bpf::btf_signature(o, "prototypes.o", "no_such_function"), std::nullopt);
  try {
    bpf::btf_signature(o, "prototypes.o", "nests");
    ADD_FAILURE() << "a nested struct was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "prototypes.o: .BTF: function 'nests' parameter 0: nested structs are not supported");
  }
  // Every prototype it gives is one the trampolines take.
  for (const char* f : {"two_args", "mixed", "by_value"})
    EXPECT_NO_THROW(tramp::parse_signature(*bpf::btf_signature(o, "prototypes.o", f), f));
}

TEST(ElfLoader, ChoosesProgramsBySectionOrFunction) {
  SB_REQUIRE_PROGRAMS();
  const std::vector<uint8_t> multi = read_bytes(object_path("multi"));
  EXPECT_EQ(load_error(multi, "multi.o"),
            "multi.o: 3 programs (read_pointer in 'xdp', random_pair in 'xdp', elapsed in 'tc'); choose one by "
            "section or function name");
  EXPECT_EQ(load_error(multi, "multi.o", {"xdp", ""}),
            "multi.o: section 'xdp' holds 2 programs (read_pointer in 'xdp', random_pair in 'xdp', elapsed in 'tc'); "
            "choose one by function name");
  EXPECT_EQ(load_error(multi, "multi.o", {"nope", ""}),
            "multi.o: no program section 'nope' (programs: read_pointer in 'xdp', random_pair in 'xdp', elapsed in 'tc')");
  EXPECT_EQ(load_error(multi, "multi.o", {"", "nope"}),
            "multi.o: no function 'nope' (programs: read_pointer in 'xdp', random_pair in 'xdp', elapsed in 'tc')");
  EXPECT_EQ(load_error(multi, "multi.o", {"tc", "random_pair"}),
            "multi.o: function 'random_pair' is in section 'xdp', not 'tc'");
  bpf::ElfProgram p = bpf::load_elf(multi, "multi.o", {"", "elapsed"}, fake_map);
  EXPECT_EQ(p.section, "tc");
  EXPECT_EQ(p.function, "elapsed");
}

TEST(ElfLoader, AppendsCalledSubprogramsAndResolvesEveryLddw) {
  SB_REQUIRE_PROGRAMS();
  rt::Environment env;
  bpf::ElfProgram p = env.load_elf(object_path("subprog"), {"xdp", ""});
  EXPECT_NO_THROW(bpf::validate(p.program));
  // chain, fold, step2, step3, mix, depth5..depth1, frame_user
  EXPECT_EQ(bpf::function_starts(p.program).size(), 11u);
  bpf::ElfProgram g = env.load_elf(object_path("globals"));
  for (size_t i = 0; i < g.program.insns.size(); ++i)
    if (bpf::is_lddw(g.program.insns[i])) {
      EXPECT_EQ(g.program.insns[i].src, bpf::LDDW_IMM64) << "instruction " << i;
    }
}

// libbpf's static program array: slots from .rel.maps, each program loaded
// by the Environment with the object's maps (created once).
TEST(ElfLoader, ReadsProgramArrayInitialisers) {
  SB_REQUIRE_PROGRAMS();
  rt::Environment env;
  bpf::ElfProgram p = env.load_elf(object_path("tailcall"), {"xdp", ""});
  const bpf::MapDef* table = nullptr;
  for (const bpf::MapDef& d : p.maps)
    if (d.name == "jmp_table") table = &d;
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->type, uint32_t(rt::MapType::ProgArray));
  ASSERT_EQ(table->programs.size(), 3u);
  const std::pair<uint32_t, const char*> slots[] = {{1, "sum"}, {2, "verdict"}, {3, "loop"}};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(table->programs[i].index, slots[i].first);
    EXPECT_EQ(table->programs[i].program.function, slots[i].second);
    EXPECT_EQ(table->programs[i].program.section, std::string("xdp/") + slots[i].second);
  }
  EXPECT_EQ(env.maps().size(), 1u);  // jmp_table only, though four programs were loaded
  auto* array = env.find<rt::ProgArrayMap>("jmp_table");
  ASSERT_NE(array, nullptr);
  ASSERT_NE(array->get(2), nullptr);
  EXPECT_NO_THROW(bpf::validate(*array->get(2)));
  EXPECT_EQ(array->get(0), nullptr);
}

TEST(ElfLoader, ReadsBtfLegacyAndGlobalDataMaps) {
  SB_REQUIRE_PROGRAMS();
  auto defs = [](const std::string& object) {
    std::map<std::string, bpf::MapDef> out;
    for (bpf::MapDef& d : bpf::load_elf(read_bytes(object_path(object)), object, {}, fake_map).maps)
      out[d.name] = d;
    return out;
  };
  auto counters = defs("counters");
  auto spec = [](const bpf::MapDef& d) {
    return fmt::format("{} {} {} {}", d.type, d.key_size, d.value_size, d.max_entries);
  };
  EXPECT_EQ(spec(counters.at("byte_counts")), "1 4 8 256");
  EXPECT_EQ(spec(counters.at("totals")), "2 4 8 8");
  EXPECT_EQ(spec(counters.at("per_cpu")), "6 4 8 2");
  EXPECT_EQ(spec(counters.at("small")), "1 8 4 4");
  auto ringbuf = defs("ringbuf");
  EXPECT_EQ(spec(ringbuf.at("events")), "27 0 0 4096");
  auto legacy = defs("legacy");
  EXPECT_EQ(spec(legacy.at("legacy_array")), "2 4 8 4");
  EXPECT_EQ(spec(legacy.at("legacy_hash")), "1 4 8 16");
  auto globals = defs("globals");
  ASSERT_TRUE(globals.count(".data") && globals.count(".rodata") && globals.count(".bss"));
  EXPECT_TRUE(globals.at(".data").global_data);
  EXPECT_EQ(globals.at(".bss").value_size, 16u);
  EXPECT_TRUE(globals.at(".bss").initial.empty());
  EXPECT_EQ(spec(globals.at(".data")), "2 4 16 1");
}

// ---------------------------------------------------------------------------
// Malformed objects: each error names the file and what is wrong where.

// A mutable view of an object's ELF structures, to corrupt one field.
struct ElfEdit {
  std::vector<uint8_t> bytes;
  Elf64_Ehdr* ehdr() { return reinterpret_cast<Elf64_Ehdr*>(bytes.data()); }
  Elf64_Shdr* shdr(size_t i) { return reinterpret_cast<Elf64_Shdr*>(bytes.data() + ehdr()->e_shoff) + i; }
  const char* name(size_t i) {
    return reinterpret_cast<const char*>(bytes.data() + shdr(ehdr()->e_shstrndx)->sh_offset + shdr(i)->sh_name);
  }
  Elf64_Shdr* section(const std::string& n) {
    for (size_t i = 0; i < ehdr()->e_shnum; ++i)
      if (n == name(i)) return shdr(i);
    ADD_FAILURE() << "no section " << n;
    return shdr(0);
  }
  template <typename T>
  T* at(Elf64_Shdr* s, size_t offset = 0) { return reinterpret_cast<T*>(bytes.data() + s->sh_offset + offset); }
};

ElfEdit edit(const std::string& object) {
  ElfEdit e{read_bytes(object_path(object))};
  if (e.bytes.size() < sizeof(Elf64_Ehdr)) ADD_FAILURE() << "cannot read " << object;
  return e;
}

TEST(ElfErrors, NotElfAndTruncatedHeader) {
  SB_REQUIRE_PROGRAMS();
  const std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
  EXPECT_EQ(load_error(text, "bad.o"), "bad.o: not an ELF file (no \\x7fELF magic)");
  ElfEdit e = edit("packet");
  e.bytes.resize(40);
  EXPECT_EQ(load_error(e.bytes, "short.o"), "short.o: ELF header: truncated: 40 bytes, need 64");
}

TEST(ElfErrors, TruncatedFile) {
  SB_REQUIRE_PROGRAMS();
  ElfEdit e = edit("packet");
  e.bytes.resize(e.bytes.size() / 2);  // the section headers are at the end
  const std::string err = load_error(e.bytes, "half.o");
  EXPECT_EQ(err.rfind("half.o: section headers: ", 0), 0u) << err;
  EXPECT_NE(err.find("goes past the end of the file"), std::string::npos) << err;
}

TEST(ElfErrors, WrongClassMachineAndType) {
  SB_REQUIRE_PROGRAMS();
  ElfEdit e = edit("packet");
  e.ehdr()->e_machine = EM_X86_64;
  EXPECT_EQ(load_error(e.bytes, "x86.o"), "x86.o: ELF header: e_machine 62 is not EM_BPF (247)");
  e = edit("packet");
  e.ehdr()->e_ident[EI_CLASS] = ELFCLASS32;
  EXPECT_EQ(load_error(e.bytes, "c32.o"), "c32.o: ELF header: EI_CLASS 1 is not ELFCLASS64");
  e = edit("packet");
  e.ehdr()->e_ident[EI_DATA] = ELFDATA2MSB;
  EXPECT_EQ(load_error(e.bytes, "be.o"),
            "be.o: ELF header: EI_DATA 2 is not little-endian (big-endian BPF is not supported)");
  e = edit("packet");
  e.ehdr()->e_type = ET_EXEC;
  EXPECT_EQ(load_error(e.bytes, "exec.o"),
            "exec.o: ELF header: e_type 2 is not ET_REL (a relocatable object from clang -c)");
}

TEST(ElfErrors, CorruptedSectionHeader) {
  SB_REQUIRE_PROGRAMS();
  ElfEdit e = edit("packet");
  e.section("xdp")->sh_offset = 0x7fffffff;
  std::string err = load_error(e.bytes, "shdr.o");
  EXPECT_EQ(err.rfind("shdr.o: section 'xdp': ", 0), 0u) << err;
  EXPECT_NE(err.find("greater than the file size"), std::string::npos) << err;

  e = edit("packet");
  e.section("xdp")->sh_size -= 4;  // not whole instructions
  EXPECT_EQ(load_error(e.bytes, "size.o"), fmt::format("size.o: section 'xdp': size {} is not a multiple of 8 (an instruction)",
                                                       e.section("xdp")->sh_size));

  e = edit("packet");
  e.ehdr()->e_shstrndx = 0x7000;
  err = load_error(e.bytes, "names.o");
  EXPECT_EQ(err.rfind("names.o: section ", 0), 0u) << err;
}

TEST(ElfErrors, BadRelocations) {
  SB_REQUIRE_PROGRAMS();
  ElfEdit e = edit("packet");
  auto* rel = e.at<Elf64_Rel>(e.section(".relxdp"));
  const uint64_t size = e.section("xdp")->sh_size;
  rel->r_offset = size + 8;
  EXPECT_EQ(load_error(e.bytes, "rel.o"),
            fmt::format("rel.o: section '.relxdp': relocation 0: offset {:#x} is outside section 'xdp' (size {:#x}) or "
                        "not on an instruction",
                        size + 8, size));

  e = edit("packet");
  rel = e.at<Elf64_Rel>(e.section(".relxdp"));
  rel->r_info = ELF64_R_INFO(9999, ELF64_R_TYPE(rel->r_info));
  std::string err = load_error(e.bytes, "sym.o");
  EXPECT_EQ(err.rfind("sym.o: section '.relxdp': relocation 0: symbol index 9999 out of range", 0), 0u) << err;

  e = edit("packet");
  rel = e.at<Elf64_Rel>(e.section(".relxdp"));
  rel->r_info = ELF64_R_INFO(ELF64_R_SYM(rel->r_info), 2);  // R_BPF_64_ABS64 in code
  EXPECT_EQ(load_error(e.bytes, "type.o"),
            "type.o: section '.relxdp': relocation 0: unsupported relocation type 2 in code");

  // A map relocation moved onto an instruction that is not an lddw.
  e = edit("packet");
  rel = e.at<Elf64_Rel>(e.section(".relxdp"));
  const uint64_t lddw_at = rel->r_offset;
  rel->r_offset = 0;
  err = load_error(e.bytes, "onalu.o", {"xdp", ""});
  if (lddw_at != 0) {
    EXPECT_EQ(err.rfind("onalu.o: section 'xdp': instruction 0: relocation 0: relocation type 1 on an instruction "
                        "that is neither lddw nor a local call",
                        0),
              0u)
        << err;
  }
}

// A program array's initialiser (.rel.maps), corrupted one field at a time.
TEST(ElfErrors, BadProgramArrayInitialisers) {
  SB_REQUIRE_PROGRAMS();
  const std::string rel_at = "tc.o: section '.rel.maps': relocation 0: ";
  auto with_rel = [](const std::function<void(ElfEdit&, Elf64_Rel&)>& corrupt) {
    ElfEdit e = edit("tailcall");
    corrupt(e, *e.at<Elf64_Rel>(e.section(".rel.maps")));
    return load_error(e.bytes, "tc.o", {"xdp", ""});
  };
  EXPECT_EQ(with_rel([](ElfEdit&, Elf64_Rel& r) { r.r_info = ELF64_R_INFO(ELF64_R_SYM(r.r_info), 1); }),
            rel_at + "relocation type 1 in a map's `values` initialiser");
  EXPECT_EQ(with_rel([](ElfEdit&, Elf64_Rel& r) { r.r_offset = 0x24; }),
            rel_at + "offset 0x24 in map 'jmp_table' is not a slot of its `values`");
  EXPECT_EQ(with_rel([](ElfEdit&, Elf64_Rel& r) { r.r_offset = 0x10; }),
            rel_at + "offset 0x10 in map 'jmp_table' is not a slot of its `values`");
  EXPECT_EQ(with_rel([](ElfEdit&, Elf64_Rel& r) { r.r_offset = 0x100; }),
            rel_at + "offset 0x100 is not inside a map definition of '.maps'");
  EXPECT_EQ(with_rel([](ElfEdit&, Elf64_Rel& r) { r.r_info = ELF64_R_INFO(9999, ELF64_R_TYPE(r.r_info)); }),
            rel_at + "symbol index 9999 out of range [1, " +
                std::to_string(edit("tailcall").section(".symtab")->sh_size / sizeof(Elf64_Sym)) + ")");
  EXPECT_EQ(with_rel([](ElfEdit& e, Elf64_Rel& r) {
              auto* symtab = e.section(".symtab");
              const char* strtab = reinterpret_cast<const char*>(e.bytes.data() + e.shdr(symtab->sh_link)->sh_offset);
              for (size_t i = 0; i < symtab->sh_size / sizeof(Elf64_Sym); ++i)
                if (std::string(strtab + e.at<Elf64_Sym>(symtab)[i].st_name) == "jmp_table")
                  r.r_info = ELF64_R_INFO(i, ELF64_R_TYPE(r.r_info));
            }),
            rel_at + "slot 1 of 'jmp_table' names 'jmp_table', which is not a program");
}

TEST(ElfErrors, CallRelocationOutsideText) {
  SB_REQUIRE_PROGRAMS();
  // Point subprog's call relocations at a symbol of the program section.
  ElfEdit e = edit("subprog");
  auto* symtab = e.section(".symtab");
  const size_t nsyms = symtab->sh_size / sizeof(Elf64_Sym);
  size_t chain = 0;
  const char* strtab = reinterpret_cast<const char*>(e.bytes.data() + e.shdr(symtab->sh_link)->sh_offset);
  for (size_t i = 0; i < nsyms; ++i)
    if (std::string(strtab + e.at<Elf64_Sym>(symtab)[i].st_name) == "chain") chain = i;
  ASSERT_NE(chain, 0u);
  auto* rels = e.at<Elf64_Rel>(e.section(".relxdp"));
  const size_t nrels = e.section(".relxdp")->sh_size / sizeof(Elf64_Rel);
  for (size_t i = 0; i < nrels; ++i) rels[i].r_info = ELF64_R_INFO(chain, ELF64_R_TYPE(rels[i].r_info));
  const std::string err = load_error(e.bytes, "call.o");
  EXPECT_NE(err.find("call to 'chain' in section 'xdp': only .text subprograms can be called"), std::string::npos) << err;
  EXPECT_EQ(err.rfind("call.o: section 'xdp': instruction ", 0), 0u) << err;
}

TEST(ElfErrors, BadBtf) {
  SB_REQUIRE_PROGRAMS();
  ElfEdit e = edit("counters");
  *e.at<uint16_t>(e.section(".BTF")) = 0x1234;
  EXPECT_EQ(load_error(e.bytes, "magic.o"), "magic.o: .BTF: bad magic 0x1234 (expected 0xeb9f)");

  e = edit("counters");
  *e.at<uint32_t>(e.section(".BTF"), 12) = 0x7fffffff;  // type_len
  std::string err = load_error(e.bytes, "types.o");
  EXPECT_EQ(err.rfind("types.o: .BTF: type section [0, +2147483647) goes past the end", 0), 0u) << err;

  e = edit("counters");
  *e.at<uint32_t>(e.section(".BTF"), 20) = 0x7fffffff;  // str_len
  err = load_error(e.bytes, "strs.o");
  EXPECT_NE(err.find("string section"), std::string::npos) << err;

  // Every type's kind set to 31 (unknown): the first one is named.
  e = edit("counters");
  auto* btf = e.section(".BTF");
  const uint32_t hdr_len = *e.at<uint32_t>(btf, 4), type_off = *e.at<uint32_t>(btf, 8);
  *e.at<uint32_t>(btf, hdr_len + type_off + 4) |= 0x1f000000;
  EXPECT_EQ(load_error(e.bytes, "kind.o"), "kind.o: .BTF: type 1: unknown kind 31");

  const std::vector<uint8_t> nobtf = read_bytes(object_path("nobtf"));
  EXPECT_EQ(load_error(nobtf, "nobtf.o"),
            "nobtf.o: section '.maps': BTF-defined maps need a .BTF section (compile with -g)");
}

// A BTF type may claim more bytes than the object holds: a 1 GiB char array
// is refused by its size, before the .kconfig value is allocated.
TEST(ElfErrors, KconfigExternTooLarge) {
  SB_REQUIRE_PROGRAMS();
  const std::string err = load_error(read_bytes(object_path("kconfig_huge")), "huge.o");
  EXPECT_NE(err.find("huge.o: extern 'CONFIG_SB_HUGE'"), std::string::npos) << err;
  EXPECT_NE(err.find("char arrays of at most 4194304 bytes"), std::string::npos) << err;
}

TEST(ElfErrors, BadMapDefinitions) {
  SB_REQUIRE_PROGRAMS();
  ElfEdit e = edit("legacy");
  *e.at<uint32_t>(e.section("maps")) = 99;  // legacy_array's type
  EXPECT_EQ(load_error(e.bytes, "type.o"), "type.o: map 'legacy_array': unsupported map type 99");
  e = edit("legacy");
  *e.at<uint32_t>(e.section("maps"), 4) = 8;  // legacy_array's key_size
  EXPECT_EQ(load_error(e.bytes, "key.o"), "key.o: map 'legacy_array': key_size 8 must be 4 for a array map");
  e = edit("legacy");
  e.section("maps")->sh_size = 30;  // two definitions in 30 bytes
  EXPECT_EQ(load_error(e.bytes, "short.o"),
            "short.o: section 'maps': 2 maps in 30 bytes: shorter than struct bpf_map_def (20 bytes)");
}

// ---------------------------------------------------------------------------
// Maps and helpers on their own.

TEST(Maps, ArraySemantics) {
  rt::ArrayMap a({"a", 2, 4, 12, 3, 0, 0});
  const uint32_t k0 = 0, k3 = 3;
  const uint8_t v[12] = {1, 2, 3};
  EXPECT_EQ(uintptr_t(a.lookup(&k0)) % rt::page_size(), 0u);  // storage is page-aligned
  EXPECT_EQ(a.lookup(&k3), nullptr);
  EXPECT_EQ(a.stride(), 16u);
  EXPECT_EQ(a.update(&k0, v, rt::kUpdateAny), 0);
  EXPECT_EQ(a.update(&k0, v, rt::kUpdateExist), 0);
  EXPECT_EQ(a.update(&k0, v, rt::kUpdateNoExist), -EEXIST);
  EXPECT_EQ(a.update(&k3, v, rt::kUpdateAny), -E2BIG);
  EXPECT_EQ(a.update(&k0, v, 3), -EINVAL);
  EXPECT_EQ(a.remove(&k0), -EINVAL);
  EXPECT_EQ(hex(a.value(0)), "010203000000000000000000");
  EXPECT_THROW(a.value(3), Error);
}

TEST(Maps, HashSemantics) {
  rt::HashMap h({"h", 1, 4, 8, 2, 0, 0});
  const uint32_t k1 = 1, k2 = 2, k3 = 3;
  const uint64_t v = 42;
  EXPECT_EQ(h.lookup(&k1), nullptr);
  EXPECT_EQ(h.update(&k1, &v, rt::kUpdateExist), -ENOENT);
  EXPECT_EQ(h.update(&k1, &v, rt::kUpdateNoExist), 0);
  EXPECT_EQ(h.update(&k1, &v, rt::kUpdateNoExist), -EEXIST);
  EXPECT_EQ(h.update(&k2, &v, rt::kUpdateAny), 0);
  EXPECT_EQ(h.update(&k3, &v, rt::kUpdateAny), -E2BIG);
  void* p1 = h.lookup(&k1);
  ASSERT_NE(p1, nullptr);
  EXPECT_EQ(*static_cast<uint64_t*>(p1), 42u);
  EXPECT_EQ(h.remove(&k1), 0);
  EXPECT_EQ(h.remove(&k1), -ENOENT);
  EXPECT_EQ(h.update(&k3, &v, rt::kUpdateAny), 0);  // the freed slot is reused
  EXPECT_EQ(h.lookup(&k3), p1);
  EXPECT_EQ(h.size(), 2u);
}

TEST(Maps, PerCpuCopies) {
  unsigned cpu = 0;
  rt::PerCpuArrayMap m({"p", 6, 4, 8, 2, 0, 0}, 3, [&] { return cpu; });
  const uint32_t k = 1;
  const uint64_t v = 7;
  cpu = 1;
  EXPECT_EQ(m.update(&k, &v, rt::kUpdateAny), 0);
  cpu = 5;  // modulo the number of copies: copy 2
  *static_cast<uint64_t*>(m.lookup(&k)) = 9;
  EXPECT_EQ(read_as<uint64_t>(m.value(1, 0)), 0u);
  EXPECT_EQ(read_as<uint64_t>(m.value(1, 1)), 7u);
  EXPECT_EQ(read_as<uint64_t>(m.value(1, 2)), 9u);
}

TEST(Maps, RingBufferRecordsWrapAround) {
  const uint32_t size = uint32_t(rt::page_size());
  rt::RingBufMap r({"r", 27, 0, 0, size, 0, 0});
  std::vector<std::string> got;
  auto consume = [&] { return r.consume([&](std::span<const uint8_t> rec) { got.push_back(hex(rec)); }); };
  // Fill most of the buffer, consume, then write records that straddle the end.
  for (int i = 0; i < int(size / 64) - 1; ++i) ASSERT_NE(r.reserve(56, 0), nullptr) << i;  // 64 bytes each, not submitted
  EXPECT_EQ(consume(), 0u);  // the first record is still busy
  for (uint64_t pos = 0; pos < r.producer_pos(); pos += 64) {
    // Submit every reserved record (found through the ring's data layout).
    r.commit(reinterpret_cast<uint8_t*>(r.ranges()[0].addr) + 2 * rt::page_size() + pos + 8, pos % 128 != 0);
  }
  EXPECT_EQ(consume(), size_t(size / 64) / 2);  // every other record was discarded
  got.clear();
  const uint8_t data[100] = {0xab, 0xcd};
  EXPECT_EQ(r.output(data, sizeof data, 0), 0);  // wraps past the end of the data pages
  EXPECT_EQ(r.output(data, 3, rt::kRingbufForceWakeup), 0);
  EXPECT_EQ(r.output(data, 3, 4), -EINVAL);
  EXPECT_EQ(r.reserve(8, 1), nullptr);
  EXPECT_EQ(r.reserve(size, 0), nullptr);  // larger than the buffer
  EXPECT_EQ(consume(), 2u);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], hex(data));
  EXPECT_EQ(got[1], "abcd00");
  EXPECT_GT(r.producer_pos() % size, 0u);
  EXPECT_LT(r.producer_pos() % size, 100u);  // the 100-byte record wrapped
}

TEST(Maps, CreationChecksTypesAndSizes) {
  auto error = [](const rt::MapSpec& s) {
    try {
      rt::create_map(s);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error({"x", 99, 4, 4, 1, 0}), "map 'x': unsupported map type 99");
  EXPECT_EQ(error({"x", 2, 4, 4, 0, 0}), "map 'x': max_entries must not be 0");
  EXPECT_EQ(error({"x", 2, 8, 4, 1, 0}), "map 'x': key_size 8 must be 4 for a array map");
  EXPECT_EQ(error({"x", 1, 0, 4, 1, 0}), "map 'x': key_size 0 is not in [1, 512]");
  EXPECT_EQ(error({"x", 27, 0, 0, 5000, 0}),
            fmt::format("map 'x': max_entries 5000 must be a power of two and a multiple of the page size {}",
                        rt::page_size()));
  EXPECT_EQ(error({"x", 2, 4, 1 << 20, 1 << 20, 0}), "map 'x': needs more than the 1073741824 bytes a map may use");
  EXPECT_EQ(error({"x", 3, 4, 4, 8, 0}), "no error");
}

// Helpers called directly (as a program would) with an Environment current.
struct HelperCall {
  rt::Environment env{fixed_options()};
  rt::HelperTable table = rt::standard_helpers(env);
  uint64_t operator()(uint32_t id, uint64_t a = 0, uint64_t b = 0, uint64_t c = 0, uint64_t d = 0, uint64_t e = 0) {
    rt::ContextScope scope(table.context());
    return table.find(id)->fn(a, b, c, d, e);
  }
  static uint64_t addr(const void* p) { return uint64_t(uintptr_t(p)); }
};

TEST(StdHelpers, KernelIdsAndNames) {
  HelperCall call;
  const std::pair<uint32_t, const char*> expected[] = {
      {1, "map_lookup_elem"}, {2, "map_update_elem"}, {3, "map_delete_elem"}, {4, "probe_read"},
      {5, "ktime_get_ns"},    {6, "trace_printk"},    {7, "get_prandom_u32"}, {12, "tail_call"},
      {130, "ringbuf_output"}, {131, "ringbuf_reserve"}, {132, "ringbuf_submit"}, {133, "ringbuf_discard"},
      // XDP's (runtime/progtypes/xdp_helpers.h), callable from XDP programs only.
      {44, "xdp_adjust_head"}, {54, "xdp_adjust_meta"}, {65, "xdp_adjust_tail"}, {188, "xdp_get_buff_len"},
      // The socket buffers' (runtime/progtypes/skb_helpers.h), for TC and socket filters.
      {9, "skb_store_bytes"}, {26, "skb_load_bytes"}, {18, "skb_vlan_push"}, {19, "skb_vlan_pop"},
      {21, "skb_set_tunnel_key"}, {34, "get_hash_recalc"},
      // The base set's others, checksums, redirects and events.
      {42, "get_numa_node_id"}, {87, "map_push_elem"}, {88, "map_pop_elem"},
      {89, "map_peek_elem"}, {125, "ktime_get_boot_ns"}, {10, "l3_csum_replace"}, {11, "l4_csum_replace"},
      {28, "csum_diff"}, {23, "redirect"}, {25, "perf_event_output"}, {51, "redirect_map"},
      {38, "skb_change_tail"}, {43, "skb_change_head"}, {69, "fib_lookup"}, {93, "spin_lock"}, {94, "spin_unlock"},
      {13, "clone_redirect"},
      // The tracing helpers (runtime/helpers/tracing_helpers.h).
      {8, "get_smp_processor_id"}, {14, "get_current_pid_tgid"}, {15, "get_current_uid_gid"},
      {16, "get_current_comm"}, {112, "probe_read_user"}, {113, "probe_read_kernel"},
      {114, "probe_read_user_str"}, {115, "probe_read_kernel_str"}, {27, "get_stackid"}, {67, "get_stack"},
      {58, "override_return"}, {109, "send_signal"}, {117, "send_signal_thread"}, {173, "get_func_ip"},
      {174, "get_attach_cookie"},
  };
  // And bpf_for_each_map_elem's walk, under an id no bytecode may call
  // (frontend/loop_helper.h), so without a prototype.
  ASSERT_NE(call.table.find(bpf::kMapNextElemHelper), nullptr);
  EXPECT_EQ(call.table.find(bpf::kMapNextElemHelper)->name, "sb_map_next_elem");
  EXPECT_EQ(call.table.find(bpf::kMapNextElemHelper)->proto, nullptr);
  ASSERT_EQ(call.table.all().size(), std::size(expected) + 1);
  for (auto [id, name] : expected) {
    ASSERT_NE(call.table.find(id), nullptr) << name;
    EXPECT_EQ(call.table.find(id)->name, name);
    EXPECT_EQ(call.table.find(id)->tail_call, id == 12) << name;
    ASSERT_NE(call.table.find(id)->proto, nullptr) << name;
    EXPECT_EQ(call.table.find(id)->proto->name, name);
  }
  // Outside a run (no engine's TailCallRun), the tail-call helper falls through.
  EXPECT_EQ(call.table.find(12)->fn(0, 0, 0, 0, 0), 0u);
  EXPECT_EQ(rt::HelperTable::conformance().find(5)->name, "unwind");
}

// The tracing helpers' corners, as the kernel's: probe_read_user_str
// returns the length with its NUL or, cut, the buffer's size with its last
// byte NUL; a read that meets an unmapped page is -EFAULT with the
// destination zeroed, even a string that would have ended past the page.
TEST(TracingHelpers, ReadsAsTheKernelDoes) {
  HelperCall call;
  const int64_t efault = -EFAULT;
  char buf[8];
  EXPECT_EQ(int64_t(call(114, call.addr(buf), 8, call.addr("abc"))), 4);
  EXPECT_STREQ(buf, "abc");
  EXPECT_EQ(int64_t(call(114, call.addr(buf), 8, call.addr("abcdefghij"))), 8);
  EXPECT_STREQ(buf, "abcdefg");
  EXPECT_EQ(int64_t(call(114, call.addr(buf), 1, call.addr("abc"))), 1);
  EXPECT_EQ(buf[0], '\0');
  EXPECT_EQ(int64_t(call(114, call.addr(buf), 8, call.addr(""))), 1);
  EXPECT_EQ(call(114, call.addr(buf), 0, 8), 0u);  // size 0: nothing read, not even the address
  const long page = sysconf(_SC_PAGESIZE);
  auto* two = static_cast<char*>(mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(two, MAP_FAILED);
  ASSERT_EQ(munmap(two + page, page), 0);
  char* end = two + page;
  std::memcpy(end - 3, "xy", 3);  // ends at the last byte of the mapped page
  EXPECT_EQ(int64_t(call(115, call.addr(buf), 8, call.addr(end - 3))), 3);
  EXPECT_STREQ(buf, "xy");
  std::memcpy(end - 2, "zw", 2);  // no NUL before the unmapped page
  std::memset(buf, 'q', sizeof buf);
  EXPECT_EQ(int64_t(call(114, call.addr(buf), 8, call.addr(end - 2))), efault);
  EXPECT_EQ(std::string(buf, 8), std::string(8, '\0'));
  uint64_t word = 0x5555;
  EXPECT_EQ(int64_t(call(112, call.addr(&word), 8, call.addr(end - 4))), efault);  // straddles the hole
  EXPECT_EQ(word, 0u);
  EXPECT_EQ(int64_t(call(113, call.addr(&word), 8, call.addr(&page))), 0);
  EXPECT_EQ(word, uint64_t(page));
  EXPECT_EQ(call(112, call.addr(&word), 0, 0), 0u);
  munmap(two, page);
  // comm: strscpy into the buffer; pid and tid; the cookie outside a trampoline.
  char comm[16];
  EXPECT_EQ(call(16, call.addr(comm), 1), 0u);
  EXPECT_EQ(comm[0], '\0');
  EXPECT_EQ(call(14), uint64_t(getpid()) << 32 | uint32_t(gettid()));
  EXPECT_EQ(call(174), 0u);
  EXPECT_EQ(call(173), 0u);
}

TEST(StdHelpers, MapHelpersAcceptOnlyTheirEnvironmentsMaps) {
  HelperCall call;
  rt::Map& m = call.env.create_map({"m", 1, 4, 8, 4, 0, 0});
  rt::Environment other;
  rt::Map& foreign = other.create_map({"f", 1, 4, 8, 4, 0, 0});
  const uint32_t k = 5;
  const uint64_t v = 77;
  EXPECT_EQ(call(2, m.handle(), call.addr(&k), call.addr(&v), 0), 0u);
  EXPECT_EQ(*reinterpret_cast<uint64_t*>(call(1, m.handle(), call.addr(&k))), 77u);
  EXPECT_EQ(call(2, foreign.handle(), call.addr(&k), call.addr(&v), 0), uint64_t(-EINVAL));
  EXPECT_EQ(call(1, 0x1234, call.addr(&k)), 0u);
  EXPECT_EQ(call(3, m.handle(), call.addr(&k)), 0u);
  EXPECT_EQ(call(3, m.handle(), call.addr(&k)), uint64_t(-ENOENT));
  EXPECT_EQ(call.table.find(1)->fn(m.handle(), call.addr(&k), 0, 0, 0), 0u);  // no environment current
}

TEST(StdHelpers, TracePrintkFormats) {
  HelperCall call;
  rt::ArrayMap& s = static_cast<rt::ArrayMap&>(call.env.create_map({"strings", 2, 4, 16, 1, 0, 0}));
  std::memcpy(s.value(0).data(), "map string", 11);
  const char unregistered[] = "stack string";
  auto printk = [&](const std::string& fmt, uint64_t a = 0, uint64_t b = 0, uint64_t c = 0) {
    uint64_t n = call(6, call.addr(fmt.c_str()), fmt.size() + 1, a, b, c);
    std::string text = call.env.take_trace();
    return n == uint64_t(-EINVAL) ? std::string("EINVAL") : text;
  };
  EXPECT_EQ(printk("%d %u %x", 0xffffffff, 0xffffffff, 0xabc), "-1 4294967295 abc\n");
  EXPECT_EQ(printk("%lld %llu %lx", uint64_t(-2), uint64_t(-2), 0x1234567890), "-2 18446744073709551614 1234567890\n");
  EXPECT_EQ(printk("[%5d|%-4d|%05x]", 42, 7, 0xbeef), "[   42|7   |0beef]\n");
  EXPECT_EQ(printk("%X %#x %.2s", 0xbeef, 0xbeef, call.addr(s.value(0).data())), "BEEF 0xbeef ma\n");
  EXPECT_EQ(printk("%c%c%% %hhd", 'o', 'k', 5), "ok% 5\n");
  // %s reads without faulting anywhere a run may read, as the kernel's
  // strncpy_from_kernel_nofault: memory the environment knows and the rest
  // of the process (a string on a stack); an unmapped address prints "".
  EXPECT_EQ(printk("%s/%s", call.addr(s.value(0).data()), call.addr(unregistered)), "map string/stack string\n");
  EXPECT_EQ(printk("[%s]", 16), "[]\n");
  EXPECT_EQ(printk("%p", 0x1000), "0x1000\n");
  EXPECT_EQ(printk("line\n"), "line\n");
  EXPECT_EQ(printk("%d %d %d %d", 1, 2, 3), "EINVAL");  // four conversions
  EXPECT_EQ(printk("%q", 1), "EINVAL");
  EXPECT_EQ(printk("%lllld", 1), "EINVAL");
  EXPECT_EQ(printk("trailing %"), "EINVAL");
  const char no_nul[4] = {'a', 'b', 'c', 'd'};
  EXPECT_EQ(call(6, call.addr(no_nul), sizeof no_nul), uint64_t(-EINVAL));
  std::string sunk;
  call.env.set_trace_sink([&](std::string_view t) { sunk += t; });
  EXPECT_EQ(printk("to the sink %d", 1), "to the sink 1\n");
  EXPECT_EQ(sunk, "to the sink 1\n");
}

TEST(StdHelpers, ProbeReadOnlyFromReadableRanges) {
  HelperCall call;
  const uint64_t registered[2] = {11, 22};
  const uint64_t other = 33;
  call.env.add_readable(registered, sizeof registered);
  uint64_t dst = 99;
  EXPECT_EQ(call(4, call.addr(&dst), 8, call.addr(&registered[1])), 0u);
  EXPECT_EQ(dst, 22u);
  uint64_t two[2];
  EXPECT_EQ(call(4, call.addr(two), 16, call.addr(&registered[1])), uint64_t(-EFAULT));  // runs past the range
  dst = 99;
  EXPECT_EQ(call(4, call.addr(&dst), 8, call.addr(&other)), uint64_t(-EFAULT));
  EXPECT_EQ(dst, 0u);  // zero-filled on a fault
  rt::Map& m = call.env.create_map({"m", 2, 4, 8, 1, 0, 0});
  const uint32_t k = 0;
  EXPECT_EQ(call(4, call.addr(&dst), 8, call(1, m.handle(), call.addr(&k))), 0u);  // map memory is readable
}

TEST(StdHelpers, RingbufHelpers) {
  HelperCall call;
  auto& ring = static_cast<rt::RingBufMap&>(call.env.create_map({"ring", 27, 0, 0, uint32_t(rt::page_size()), 0, 0}));
  uint64_t sample = call(131, ring.handle(), 16, 0);
  ASSERT_NE(sample, 0u);
  EXPECT_TRUE(ring.holds_sample(sample));
  std::memcpy(reinterpret_cast<void*>(uintptr_t(sample)), "0123456789abcdef", 16);
  EXPECT_EQ(call(132, sample, 0), 0u);
  EXPECT_FALSE(ring.holds_sample(sample));  // submitted
  uint64_t dropped = call(131, ring.handle(), 8, 0);
  EXPECT_EQ(call(133, dropped, 0), 0u);
  const char out[] = "xyz";
  EXPECT_EQ(call(130, ring.handle(), call.addr(out), 3, 0), 0u);
  EXPECT_EQ(call(131, ring.handle(), 16, 1), 0u);  // flags must be 0
  EXPECT_EQ(call(132, 0x1234, 0), 0u);             // not a sample: ignored
  std::vector<std::string> got;
  ring.consume([&](std::span<const uint8_t> r) { got.emplace_back(r.begin(), r.end()); });
  EXPECT_EQ(got, (std::vector<std::string>{"0123456789abcdef", "xyz"}));
}

}  // namespace
}  // namespace sb::test

namespace sb::test {
namespace {

// The values libbpf gives each __kconfig type (frontend/kconfig.h).
TEST(Kconfig, ValuesByTypeAsLibbpf) {
  const bpf::KernelConfig config = {{"CONFIG_Y", "y"}, {"CONFIG_M", "m"}, {"CONFIG_N", "n"},
                                    {"CONFIG_HZ", "250"}, {"CONFIG_NAME", "\"debian\""}, {"CONFIG_BIG", "70000"}};
  auto value = [&](const char* name, bpf::KconfigType t, uint32_t size, bool weak = false, bool is_signed = false) {
    return bpf::kconfig_value({name, t, size, is_signed, weak}, config, "k.o: extern");
  };
  using T = bpf::KconfigType;
  EXPECT_EQ(value("CONFIG_Y", T::Bool, 1), std::vector<uint8_t>{1});
  EXPECT_EQ(value("CONFIG_N", T::Bool, 1), std::vector<uint8_t>{0});
  EXPECT_EQ(value("CONFIG_M", T::Tristate, 4), (std::vector<uint8_t>{2, 0, 0, 0}));  // TRI_MODULE
  EXPECT_EQ(value("CONFIG_M", T::Char, 1), std::vector<uint8_t>{'m'});
  EXPECT_EQ(value("CONFIG_HZ", T::Int, 4), (std::vector<uint8_t>{250, 0, 0, 0}));
  EXPECT_EQ(value("CONFIG_NAME", T::CharArray, 8), (std::vector<uint8_t>{'d', 'e', 'b', 'i', 'a', 'n', 0, 0}));
  EXPECT_EQ(value("CONFIG_ABSENT", T::Int, 8, /*weak=*/true), std::vector<uint8_t>(8, 0));
  EXPECT_EQ(value("LINUX_HAS_BPF_COOKIE", T::Bool, 1), std::vector<uint8_t>{1});
  auto error = [&](const char* name, T t, uint32_t size) {
    try {
      value(name, t, size);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error("CONFIG_ABSENT", T::Int, 4).find("extern (kcfg) 'CONFIG_ABSENT': value not found"), std::string::npos);
  EXPECT_NE(error("CONFIG_M", T::Bool, 1).find("module"), std::string::npos);
  EXPECT_NE(error("CONFIG_BIG", T::Int, 2).find("2-byte"), std::string::npos);
  EXPECT_NE(error("CONFIG_NAME", T::CharArray, 4).find("char[4]"), std::string::npos);
  EXPECT_NE(error("CONFIG_HZ", T::Tristate, 4).find("tristate"), std::string::npos);
}

// USDT argument strings as gcc and clang write them for x86-64, and what
// libbpf refuses (runtime/trace/usdt.h).
TEST(UsdtArgs, EveryFormAndTheRefusals) {
  const std::vector<rt::UsdtArg> a = rt::parse_usdt_args("-4@%edi 8@-8(%rbp) -1@%sil 2@(%rax) -4@$-5 8@%r15 1@0x10(%rsp)", "t");
  ASSERT_EQ(a.size(), 7u);
  EXPECT_EQ(a[0].kind, rt::UsdtArgKind::Reg);
  EXPECT_EQ(a[0].reg_off, 112);  // rdi in pt_regs
  EXPECT_EQ(a[0].size, 4);
  EXPECT_TRUE(a[0].is_signed);
  EXPECT_EQ(a[1].kind, rt::UsdtArgKind::RegDeref);
  EXPECT_EQ(a[1].reg_off, 32);  // rbp
  EXPECT_EQ(a[1].value, -8);
  EXPECT_FALSE(a[1].is_signed);
  EXPECT_EQ(a[2].reg_off, 104);  // rsi
  EXPECT_EQ(a[3].kind, rt::UsdtArgKind::RegDeref);
  EXPECT_EQ(a[3].value, 0);
  EXPECT_EQ(a[4].kind, rt::UsdtArgKind::Const);
  EXPECT_EQ(a[4].value, -5);
  EXPECT_EQ(a[5].reg_off, 0);  // r15
  EXPECT_EQ(a[6].reg_off, 152);  // rsp
  EXPECT_EQ(a[6].value, 16);
  // The spec libbpf's usdt.bpf.h reads: arg 0 {val_off 0, REG, reg_off 112, signed, shift 32}.
  const std::vector<uint8_t> spec = rt::usdt_spec(a, 0x1234);
  ASSERT_EQ(spec.size(), rt::kUsdtSpecSize);
  EXPECT_EQ(spec[8], 1);
  EXPECT_EQ(spec[12] | spec[13] << 8, 112);
  EXPECT_EQ(spec[14], 1);
  EXPECT_EQ(spec[15], 32);
  EXPECT_EQ(spec[192] | spec[193] << 8, 0x1234);
  EXPECT_EQ(spec[200], 7);
  EXPECT_TRUE(rt::parse_usdt_args("", "t").empty());
  auto error = [](const char* text) {
    try {
      rt::parse_usdt_args(text, "demo: USDT p:n");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // gcc's static variables: the symbol, resolved against the object once the site is known.
  const std::vector<rt::UsdtArg> rip = rt::parse_usdt_args("-8@counter(%rip) 4@table.0+8(%rip)", "t");
  ASSERT_EQ(rip.size(), 2u);
  EXPECT_EQ(rip[0].kind, rt::UsdtArgKind::RegDeref);
  EXPECT_EQ(rip[0].reg_off, 128);  // ip: the site
  EXPECT_EQ(rip[0].symbol, "counter");
  EXPECT_EQ(rip[1].symbol, "table.0");
  EXPECT_EQ(rip[1].value, 8);
  EXPECT_NE(error("4@%eax 8@16(%rip)").find("argument 2: '8@16(%rip)'"), std::string::npos) << error("4@%eax 8@16(%rip)");
  EXPECT_NE(error("8@sym+x(%rip)").find("not a number"), std::string::npos);
  EXPECT_NE(error("3@%eax").find("size '3'"), std::string::npos);
  EXPECT_NE(error("%eax").find("SIZE@LOCATION"), std::string::npos);
  EXPECT_NE(error("8@%xmm0").find("unknown x86-64 register '%xmm0'"), std::string::npos);
  EXPECT_NE(error("8@(%rax,%rbx,8)").find("index register"), std::string::npos);
  EXPECT_NE(error("8@$x").find("not an integer"), std::string::npos);
  EXPECT_NE(error("1@$1 1@$1 1@$1 1@$1 1@$1 1@$1 1@$1 1@$1 1@$1 1@$1 1@$1 1@$1 1@$1").find("more than 12"),
            std::string::npos);
}

// The same for arm64 and riscv64, as gcc and clang write them (gcc -O0
// "[sp, 12]" and "-36(s0)", -O2 "[x0, 64]" and "64(a5)", clang "[x13]"),
// at their offsets in user_pt_regs and user_regs_struct.
TEST(UsdtArgs, Arm64AndRiscv64Forms) {
  using K = rt::UsdtArgKind;
  struct Want {
    K kind;
    int16_t reg_off;
    int64_t value;
    uint8_t size;
    bool is_signed;
  };
  auto expect = [](Arch arch, const char* text, const std::vector<Want>& want) {
    const std::vector<rt::UsdtArg> a = rt::parse_usdt_args(text, "t", arch);
    ASSERT_EQ(a.size(), want.size()) << text;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].kind, want[i].kind) << text << " #" << i;
      EXPECT_EQ(a[i].reg_off, want[i].reg_off) << text << " #" << i;
      EXPECT_EQ(a[i].value, want[i].value) << text << " #" << i;
      EXPECT_EQ(a[i].size, want[i].size) << text << " #" << i;
      EXPECT_EQ(a[i].is_signed, want[i].is_signed) << text << " #" << i;
    }
  };
  expect(Arch::Arm64, "-4@[sp, 12] -8@x1 -4@-5 8@x30 -8@[x0, 64] 4@[x13] 2@w7 8@sp 8@[sp, #-16]",
         {{K::RegDeref, 248, 12, 4, true},
          {K::Reg, 8, 0, 8, true},
          {K::Const, 0, -5, 4, true},
          {K::Reg, 240, 0, 8, false},
          {K::RegDeref, 0, 64, 8, true},
          {K::RegDeref, 104, 0, 4, false},
          {K::Reg, 56, 0, 2, false},
          {K::Reg, 248, 0, 8, false},
          {K::RegDeref, 248, -16, 8, false}});
  expect(Arch::Riscv64, "-4@-36(s0) -8@a5 -4@-5 -8@64(a5) 8@a0 1@(sp) 8@ra 8@x31 4@8(fp)",
         {{K::RegDeref, 64, -36, 4, true},
          {K::Reg, 120, 0, 8, true},
          {K::Const, 0, -5, 4, true},
          {K::RegDeref, 120, 64, 8, true},
          {K::Reg, 80, 0, 8, false},
          {K::RegDeref, 16, 0, 1, false},
          {K::Reg, 8, 0, 8, false},
          {K::Reg, 248, 0, 8, false},
          {K::RegDeref, 64, 8, 4, false}});
  auto error = [](Arch arch, const char* text) {
    try {
      rt::parse_usdt_args(text, "demo: USDT p:n", arch);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error(Arch::Arm64, "8@x31").find("expected an arm64 register, a constant, [REG] or [REG, OFFSET]"),
            std::string::npos);
  EXPECT_NE(error(Arch::Arm64, "8@[x99, 8]").find("argument 1: '8@[x99, 8]': unknown arm64 register 'x99'"),
            std::string::npos)
      << error(Arch::Arm64, "8@[x99, 8]");
  EXPECT_NE(error(Arch::Arm64, "8@[x1, y]").find("offset 'y' is not a number"), std::string::npos);
  EXPECT_NE(error(Arch::Arm64, "8@[x1").find("expected [REG] or [REG, OFFSET]"), std::string::npos);
  EXPECT_NE(error(Arch::Arm64, "8@%rax").find("arm64"), std::string::npos);
  EXPECT_NE(error(Arch::Riscv64, "8@zero").find("OFFSET(REG)"), std::string::npos);
  EXPECT_NE(error(Arch::Riscv64, "8@8(q9)").find("unknown riscv64 register 'q9'"), std::string::npos);
  EXPECT_NE(error(Arch::Riscv64, "8@x(a0)").find("offset 'x' is not a number"), std::string::npos);
  EXPECT_NE(error(Arch::Riscv64, "3@a0").find("size '3'"), std::string::npos);
  // Non-PIC riscv64 code reaches a static variable by lui + %lo(): the symbol, resolved with the object.
  const std::vector<rt::UsdtArg> lo = rt::parse_usdt_args("-8@%lo(counter)(a5) 4@%lo(table+8)(s1)", "t", Arch::Riscv64);
  ASSERT_EQ(lo.size(), 2u);
  EXPECT_EQ(lo[0].kind, rt::UsdtArgKind::RegDeref);
  EXPECT_EQ(lo[0].reg_off, 120);
  EXPECT_EQ(lo[0].symbol, "counter");
  EXPECT_EQ(lo[0].symbol_use, rt::UsdtArg::SymbolUse::Lo12);
  EXPECT_EQ(lo[1].symbol, "table");
  EXPECT_EQ(lo[1].value, 8);
  EXPECT_EQ(lo[1].reg_off, 72);
  EXPECT_NE(error(Arch::Riscv64, "8@%lo(x)").find("expected %lo(SYMBOL)(REG)"), std::string::npos);
  EXPECT_NE(error(Arch::Riscv64, "8@%lo(1)(a0)").find("not a symbol"), std::string::npos);
}

}  // namespace
}  // namespace sb::test
