// Typed programs against the Linux kernel: each case loads one clang object
// into the kernel with libbpf and into Springboard, runs the same packets
// (and contexts) through BPF_PROG_TEST_RUN and through rt::test_run on
// every engine, and requires the same retval, output packet, output
// context, the same refusal of bad input, and the same maps afterwards
// (per-CPU maps compared by their totals over CPUs, since the CPU a run
// lands on differs). The programs: Springboard's own (test/progtypes/), the
// kernel's XDP selftests unpacked from the kernel source at build time with
// the selftests' packets pkt_v4 / pkt_v6, and random valid and truncated
// frames through a parser. Skipped, with the reason, when the process may
// not load programs (not root).
#include <cstring>
#include <functional>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>
#ifdef SB_HAVE_LIBBPF
#include <bpf/bpf.h>
#endif
#include <unistd.h>
#include <gtest/gtest.h>

#include "frontend/elf_loader.h"
#include "frontend/verifier/verifier.h"
#include "ir/diag.h"
#include "runtime/helpers/std_helpers.h"
#include "runtime/maps/map_of_maps.h"
#include "runtime/maps/maps.h"
#include "runtime/maps/perf_event_array.h"
#include "runtime/progtypes/test_run.h"
#include "test/engines.h"
#include "test/kernel_oracle.h"

namespace sb::test {
namespace {

using Bytes = std::vector<uint8_t>;

std::string object(const std::string& name) { return std::string(SB_PROGTYPES_OBJECTS) + "/" + name + ".o"; }

struct Step {
  Bytes data;
  std::optional<Bytes> ctx;
  uint32_t repeat = 1;
  std::optional<uint32_t> retval;  // what the selftest itself expects of the kernel, where it says
};
struct MapSetup {
  std::string map;
  Bytes key, value;
};
struct Case {
  std::string object;
  std::string function;  // empty: the object's first program
  std::vector<MapSetup> setup;
  std::vector<Step> steps;
  std::string perf_events = {};  // a perf event array whose records are compared too
};


std::string hex(const Bytes& b) {
  std::string s;
  for (uint8_t x : b) s += fmt::format("{:02x}", x);
  return s;
}

// "" when equal, else the sizes and the first difference.
std::string difference(const Bytes& got, const Bytes& want) {
  if (got == want) return "";
  size_t at = 0;
  while (at < got.size() && at < want.size() && got[at] == want[at]) ++at;
  auto around = [&](const Bytes& b) { return hex(Bytes(b.begin() + long(std::min(at, b.size())), b.begin() + long(std::min(at + 16, b.size())))); };
  return fmt::format("{} bytes here, {} in the kernel; first difference at {}: {} here, {} there", got.size(),
                     want.size(), at, around(got), around(want));
}

// The kernel pads a perf record's raw data to 4 bytes short of a multiple
// of 8 (with its 4-byte size in front); Springboard keeps the bytes written.
std::string perf_difference(const std::vector<Bytes>& got, const std::vector<Bytes>& want) {
  if (got.size() != want.size()) return fmt::format("{} records here, {} in the kernel", got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const size_t padded = (got[i].size() + 4 + 7) / 8 * 8 - 4;
    if (want[i].size() != padded || !std::equal(got[i].begin(), got[i].end(), want[i].begin()))
      return fmt::format("record {}: {} here, {} in the kernel", i, hex(got[i]), hex(want[i]));
  }
  return "";
}

// A map's elements with per-CPU values summed into one (rt::map_entry_total).
std::map<Bytes, Bytes> normalized(const std::vector<rt::MapEntry>& entries) {
  std::map<Bytes, Bytes> out;
  for (const rt::MapEntry& e : entries) out[e.key] = rt::map_entry_total(e);
  return out;
}

void compare(const Case& c) {
  if (std::optional<std::string> why = kernel_unavailable()) GTEST_SKIP() << *why;
  std::string why;
  std::unique_ptr<KernelObject> k = KernelObject::load(object(c.object), c.function, &why);
  // Some kernels (this machine's 6.18 build among them) refuse
  // bpf_xdp_adjust_meta in XDP programs, which upstream allows.
  if (!k && why.find("cannot use helper bpf_xdp_adjust_meta#54") != std::string::npos)
    GTEST_SKIP() << "this kernel refuses bpf_xdp_adjust_meta in XDP programs: " << c.object;
  ASSERT_TRUE(k) << why;
  for (const MapSetup& m : c.setup) ASSERT_TRUE(k->update(m.map, m.key, m.value)) << m.map << ": " << strerror(errno);
  if (!c.perf_events.empty()) {
    ASSERT_TRUE(k->open_perf_buffer(c.perf_events)) << strerror(errno);
  }
  // The kernel's result of each step, and its maps after it.
  using Maps = std::map<std::string, std::map<Bytes, Bytes>>;
  std::vector<KernelObject::Run> want;
  std::vector<Maps> want_maps;
  std::vector<std::vector<Bytes>> want_records;
  for (const Step& s : c.steps) {
    want.push_back(k->test_run(s.data, s.ctx, s.repeat));
    want_records.push_back(k->perf_records());
    if (s.retval)
      EXPECT_EQ(want.back().retval, *s.retval) << "the kernel's retval, as the test expects it, step " << want.size() - 1;
    Maps& maps = want_maps.emplace_back();
    for (const std::string& name : k->map_names()) maps[name] = normalized(k->entries(name));
  }

  for (const Engine& engine : engines()) {
    SCOPED_TRACE(engine.name);
    rt::Environment env;
    bpf::ElfProgram elf = env.load_elf(object(c.object), {"", c.function});
    elf.program.type = elf.type;
    const rt::HelperTable helpers = rt::standard_helpers(env);
    for (const MapSetup& m : c.setup) ASSERT_EQ(env.find_map(m.map)->update(m.key.data(), m.value.data(), 0), 0);
    rt::Engine::Runner runner;
    ASSERT_NO_THROW(runner = engine.prepare(elf.program, helpers, {}));
    for (size_t i = 0; i < c.steps.size(); ++i) {
      SCOPED_TRACE(fmt::format("step {}: {} bytes {}", i, c.steps[i].data.size(),
                               hex(Bytes(c.steps[i].data.begin(),
                                         c.steps[i].data.begin() + long(std::min<size_t>(64, c.steps[i].data.size()))))));
      rt::TestRunInput in;
      in.data = c.steps[i].data;
      in.ctx = c.steps[i].ctx;
      in.repeat = c.steps[i].repeat;
      try {
        const rt::TestRunOutput got = rt::test_run(elf.program, in, runner);
        EXPECT_EQ(want[i].error, 0) << "the kernel refused this input: " << strerror(want[i].error);
        EXPECT_EQ(got.retval, want[i].retval);
        EXPECT_EQ(difference(got.data, want[i].data), "") << "data_out";
        if (in.ctx) EXPECT_EQ(difference(got.ctx, want[i].ctx), "") << "ctx_out";
      } catch (const Error& e) {
        EXPECT_NE(want[i].error, 0) << "refused here only: " << e.what();
      }
      if (!c.perf_events.empty()) {
        std::vector<Bytes> got;
        for (rt::PerfEventArrayMap::Record& r : env.find<rt::PerfEventArrayMap>(c.perf_events)->take_records())
          got.push_back(std::move(r.bytes));
        EXPECT_EQ(perf_difference(got, want_records[i]), "") << "perf event records";
      }
      for (const auto& [name, entries] : want_maps[i]) {
        const rt::Map* m = env.find_map(name);
        ASSERT_TRUE(m) << name;
        if (m->type() == rt::MapType::ArrayOfMaps || m->type() == rt::MapType::HashOfMaps) continue;
        const std::map<Bytes, Bytes> got = normalized(rt::map_entries(*m));
        for (const auto& [key, value] : entries) {
          auto it = got.find(key);
          EXPECT_TRUE(it != got.end() && it->second == value)
              << "map " << name << " key " << hex(key) << ": " << (it == got.end() ? "absent" : hex(it->second))
              << " here, " << hex(value) << " in the kernel";
        }
        EXPECT_EQ(got.size(), entries.size()) << "map " << name;
      }
      if (::testing::Test::HasFailure()) return;  // the first step that differs says enough
    }
  }
}

// The selftests' packets (network_helpers.c): Ethernet, a 20-byte IPv4 or
// 40-byte IPv6 header with tot_len / payload_len 123 (MAGIC_BYTES), TCP
// with doff 5 and urg_ptr 123 (host order).
Bytes tcp_header() {
  Bytes t(20, 0);
  t[12] = 0x50;
  t[18] = 123;
  return t;
}
Bytes pkt_v4() {
  Bytes p(12, 0);
  p.insert(p.end(), {0x08, 0x00, 0x05, 0, 0, 123, 0, 0, 0, 0, 0, 6, 0, 0});
  p.resize(14 + 20, 0);
  Bytes t = tcp_header();
  p.insert(p.end(), t.begin(), t.end());
  return p;
}
Bytes pkt_v6() {
  Bytes p(12, 0);
  p.insert(p.end(), {0x86, 0xdd, 0, 0, 0, 0, 0, 123, 6, 0});
  p.resize(14 + 40, 0);
  Bytes t = tcp_header();
  p.insert(p.end(), t.begin(), t.end());
  return p;
}
Bytes frame(uint16_t proto, Bytes payload) {
  Bytes f(12, 0x11);
  f.push_back(uint8_t(proto >> 8));
  f.push_back(uint8_t(proto));
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}
Bytes xdp_md(uint32_t data, uint32_t data_end, uint32_t ingress = 0, uint32_t rxq = 0) {
  const uint32_t md[6] = {data, data_end, 0, ingress, rxq, 0};
  Bytes b(sizeof md);
  std::memcpy(b.data(), md, sizeof md);
  return b;
}

TEST(KernelXdp, IssueExample) {
  compare({"xdp_eth", "", {}, {{frame(0x0800, {0, 0})}, {frame(0x86dd, {0, 0})}, {frame(0x0806, {})},
                               {Bytes(13, 0)}, {pkt_v4()}, {pkt_v4(), xdp_md(0, 54)}, {pkt_v4(), Bytes(24, 0)}}});
}

TEST(KernelXdp, AdjustHelpers) {
  std::vector<Step> steps;
  for (uint8_t sel = 0; sel <= 7; ++sel) steps.push_back({frame(0x0800, {sel, 1, 2, 3, 4, 5, 6, 7, 8})});
  steps.push_back({frame(0x0800, {1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}), {}, 3});  // the context is kept
  Bytes meta_in = {0xaa, 0xbb, 0xcc, 0xdd};
  Bytes f = frame(0x0800, {6, 1, 2});
  meta_in.insert(meta_in.end(), f.begin(), f.end());
  steps.push_back({meta_in, xdp_md(4, uint32_t(meta_in.size()))});  // metadata in, 8 more pushed
  steps.push_back({frame(0x0800, {3}), xdp_md(0, 15)});
  Bytes long_frame = frame(0x0800, {3});
  long_frame.resize(3520 - 16, 0x5a);  // grows to exactly the linear maximum
  steps.push_back({long_frame});
  long_frame.resize(3520 - 15, 0x5a);  // one byte more: -EINVAL
  steps.push_back({long_frame});
  long_frame.resize(6000, 0x5a);  // fragments: adjust_tail grows the last one
  steps.push_back({long_frame});
  steps.push_back({frame(0x0800, {3, 1, 2, 3}), xdp_md(0, 15)});  // a fragment of 3 bytes
  compare({"xdp_adjust_nometa", "", {}, steps});
}

// With adjust_meta too, where the kernel has it.
TEST(KernelXdp, AdjustMeta) {
  std::vector<Step> steps;
  for (uint8_t sel : {0, 5, 6}) steps.push_back({frame(0x0800, {sel, 1, 2, 3, 4, 5, 6, 7, 8})});
  Bytes meta_in = {0xaa, 0xbb, 0xcc, 0xdd};
  Bytes f = frame(0x0800, {6, 1, 2});
  meta_in.insert(meta_in.end(), f.begin(), f.end());
  steps.push_back({meta_in, xdp_md(4, uint32_t(meta_in.size()))});
  compare({"xdp_adjust", "", {}, steps});
}

// Input the kernel refuses is refused here too.
TEST(KernelXdp, BadInput) {
  const Bytes f = frame(0x0800, {7, 0});
  Bytes big = xdp_md(0, 16);
  big.resize(40, 0);
  Bytes big_bad = big;
  big_bad[39] = 1;
  compare({"xdp_adjust_nometa",
           "",
           {},
           {{Bytes(0)}, {Bytes(13, 1)}, {f, xdp_md(0, 17)}, {f, xdp_md(8, 4)}, {f, xdp_md(3, 16)}, {f, xdp_md(36, 16)},
            {f, big}, {f, big_bad}, {f, xdp_md(0, 16, 0, 1)}, {Bytes(3521, 0)}, {f, xdp_md(0, 16)}}});
}

#if SB_HAVE_SELFTESTS
// tools/testing/selftests/bpf/prog_tests/xdp.c: IPv4 and IPv6 encapsulated
// (adjust_head grows the front), with the tunnel map entries it sets.
std::vector<MapSetup> vip2tnl() {
  auto vip = [](uint16_t family) {
    Bytes k(24, 0);
    k[18] = uint8_t(family);
    k[20] = 6;  // IPPROTO_TCP
    return k;
  };
  auto tnl = [](uint16_t family) {
    Bytes v(40, 0);
    v[32] = uint8_t(family);
    for (int i = 0; i < 6; ++i) v[size_t(34 + i)] = uint8_t(0x10 + i);
    v[0] = 10, v[16] = 192;  // saddr, daddr
    return v;
  };
  return {{"vip2tnl", vip(2), tnl(2)}, {"vip2tnl", vip(10), tnl(10)}};
}

TEST(KernelSelftests, TestXdp) {
  const Bytes v4 = pkt_v4();
  Bytes v4_udp = v4;
  v4_udp[23] = 17;  // not in the map: XDP_PASS
  compare({"test_xdp", "", vip2tnl(), {{v4}, {pkt_v6()}, {v4_udp}, {Bytes(v4.begin(), v4.end() - 1)}}});
}

TEST(KernelSelftests, TestXdpLoop) {
  compare({"test_xdp_loop", "", vip2tnl(), {{pkt_v4()}, {pkt_v6()}}});
}

// prog_tests/xdp_adjust_tail.c: 54 bytes shrink too far, others by 20.
TEST(KernelSelftests, AdjustTailShrink) {
  // 9000 bytes: fragments, shrunk by 10, 4100 or 8200 by the first byte.
  Bytes f0(9000, 0), f1(9000, 1), f2(9000, 2);
  compare({"test_xdp_adjust_tail_shrink", "", {}, {{pkt_v4()}, {pkt_v6()}, {Bytes(100, 3)}, {f0}, {f1}, {f2}}});
}

// ... and the grow cases up to the frame's last byte (4096 - 256 - 320).
TEST(KernelSelftests, AdjustTailGrow) {
  Bytes v4 = pkt_v4();
  compare({"test_xdp_adjust_tail_grow",
           "",
           {},
           {{v4}, {Bytes(v4.begin(), v4.end() - 1)}, {pkt_v6()}, {Bytes(64, 1)}, {Bytes(128, 2)}, {Bytes(200, 3)},
            {Bytes(9000, 4)}, {Bytes(9001, 5)}}});
}

// prog_tests/l4lb_all.c and xdp_noinline.c: the load balancers with the
// selftests' map entries (VIP 5 for TCP, consistent-hash ring slot 11 to
// real 3 whose address is MAGIC_VAL), pkt_v4 and pkt_v6 each run a few
// times (the selftests run 100000; the stats map counts every run).
std::vector<MapSetup> l4lb_maps() {
  Bytes vip(24, 0);
  vip[20] = 6;  // struct vip / vip_definition: protocol after the 16-byte address, port and family
  Bytes meta = {0, 0, 0, 0, 5, 0, 0, 0};  // vip_meta {flags 0, vip_num VIP_NUM}
  Bytes ring_key = {11, 0, 0, 0}, real_num = {3, 0, 0, 0};
  Bytes real(20, 0);
  real[0] = 0x34, real[1] = 0x12;  // real_definition.dst = MAGIC_VAL
  return {{"vip_map", vip, meta}, {"ch_rings", ring_key, real_num}, {"reals", real_num, real}};
}

TEST(KernelSelftests, L4lb) {
  constexpr uint32_t kTcActRedirect = 7;
  compare({"test_l4lb", "", l4lb_maps(),
           {{pkt_v4(), {}, 3, kTcActRedirect}, {pkt_v6(), {}, 3, kTcActRedirect}, {pkt_v4(), {}, 1, {}}}});
}

TEST(KernelSelftests, L4lbNoinline) {
  compare({"test_l4lb_noinline", "", l4lb_maps(), {{pkt_v4(), {}, 3, 7}, {pkt_v6(), {}, 3, 7}}});
}

// XDP_DROP (1): the selftest's expected verdict once encapsulated.
TEST(KernelSelftests, XdpNoinlineV4) {
  compare({"test_xdp_noinline", "balancer_ingress_v4", l4lb_maps(), {{pkt_v4(), {}, 3, 1}, {pkt_v6(), {}, 1, {}}}});
}

TEST(KernelSelftests, XdpNoinlineV6) {
  compare({"test_xdp_noinline", "balancer_ingress_v6", l4lb_maps(), {{pkt_v6(), {}, 3, 1}, {pkt_v4(), {}, 1, {}}}});
}

// prog_tests/xdp_context_test_run.c: the metadata's first word is the retval.
TEST(KernelSelftests, ContextTestRun) {
  Bytes in = {2, 0, 0, 0};
  Bytes v4 = pkt_v4();
  in.insert(in.end(), v4.begin(), v4.end());
  Bytes in8 = {3, 0, 0, 0, 9, 9, 9, 9};
  in8.insert(in8.end(), v4.begin(), v4.end());
  compare({"test_xdp_context_test_run",
           "",
           {},
           {{in, xdp_md(4, uint32_t(in.size()))}, {in8, xdp_md(8, uint32_t(in8.size()))}, {v4, xdp_md(0, 54)},
            {v4}, {in, xdp_md(4, uint32_t(in.size()), 1, 0)}}});
}
#endif

// Random frames: Ethernet (any MACs: host, broadcast, multicast, other),
// VLAN tags, IPv4 (any ihl) or IPv6 or neither, TCP/UDP/ICMP/other, UDP
// port 7 sometimes, then cut short a third of the time (shorter than an
// Ethernet header too).
std::vector<Step> random_frames(uint32_t seed, int count) {
  std::mt19937 rng(seed);
  auto byte = [&] { return uint8_t(rng()); };
  std::vector<Step> steps;
  for (int n = 0; n < count; ++n) {
    Bytes f;
    const int mac = int(rng() % 4);
    for (int i = 0; i < 6; ++i) f.push_back(mac == 0 ? 0 : mac == 1 ? 0xff : byte());
    for (int i = 0; i < 6; ++i) f.push_back(byte());
    const int tags = int(rng() % 4 == 0) + int(rng() % 8 == 0);
    for (int t = 0; t < tags; ++t) f.insert(f.end(), {uint8_t(t ? 0x81 : 0x88), uint8_t(t ? 0x00 : 0xa8), byte(), byte()});
    const int l3 = int(rng() % 4);  // 0, 1 ipv4, 2 ipv6, 3 other
    const uint8_t l4 = std::array<uint8_t, 5>{6, 17, 1, 58, 99}[rng() % 5];
    if (l3 <= 1) {
      f.insert(f.end(), {0x08, 0x00});
      const uint8_t ihl = rng() % 6 == 0 ? uint8_t(rng() % 16) : 5;
      Bytes ip(std::max<size_t>(20, ihl * 4u), 0);
      for (uint8_t& b : ip) b = byte();
      ip[0] = uint8_t(0x40 | ihl);
      ip[9] = l4;
      f.insert(f.end(), ip.begin(), ip.end());
    } else if (l3 == 2) {
      f.insert(f.end(), {0x86, 0xdd});
      Bytes ip(40);
      for (uint8_t& b : ip) b = byte();
      ip[6] = l4;
      f.insert(f.end(), ip.begin(), ip.end());
    } else {
      f.insert(f.end(), {byte(), byte()});
    }
    Bytes l4h(20);
    for (uint8_t& b : l4h) b = byte();
    if (rng() % 3 == 0) l4h[2] = 0, l4h[3] = 7;  // UDP echo
    f.insert(f.end(), l4h.begin(), l4h.end());
    for (int i = int(rng() % 8); i > 0; --i) f.push_back(byte());
    if (rng() % 3 == 0) f.resize(rng() % (f.size() + 1));
    steps.push_back({f});
  }
  return steps;
}

// The map types beyond array and hash (test/progtypes/xdp_maps.c): every
// operation's result, the maps afterwards (per-CPU ones by their totals),
// and the redirects' verdicts.
TEST(KernelXdp, MapTypes) {
  auto part = [](uint8_t sel, Bytes addr = {10, 1, 2, 3}, uint8_t key = 1) {
    Bytes payload = {sel};
    payload.insert(payload.end(), addr.begin(), addr.end());
    payload.push_back(key);
    return Step{frame(0x0800, payload)};
  };
  std::vector<Step> steps;
  for (Bytes addr : {Bytes{10, 1, 2, 3}, Bytes{10, 1, 9, 9}, Bytes{10, 200, 0, 1}, Bytes{11, 0, 0, 1}})
    steps.push_back(part(0, addr));
  for (uint8_t sel = 1; sel <= 6; ++sel) steps.push_back(part(sel));
  steps.push_back(part(8));
  steps.push_back(part(1));  // the queue holds what the first run left
  steps.push_back(part(6));
  for (uint8_t key : {0, 1, 2, 7, 200}) {
    steps.push_back(part(7, {0, 0, 0, 0}, key));
    steps.back().retval = key == 1 ? 4 : 2;  // XDP_REDIRECT through devmap slot 1, else the fallback XDP_PASS
  }
  compare({"xdp_maps",
           "",
           {{"devs", {1, 0, 0, 0}, {1, 0, 0, 0}}, {"devs_hash", {7, 0, 0, 0}, {1, 0, 0, 0}},
            {"cpus", {0, 0, 0, 0}, {192, 0, 0, 0}}},
           steps});
}

// bpf_perf_event_output's records and refusals (test/progtypes/xdp_events.c),
// read from the kernel through libbpf's perf_buffer.
TEST(KernelXdp, PerfEventOutput) {
  Case c{"xdp_events", "", {}, {{frame(0x0800, {1, 2, 3, 4})}, {frame(0x86dd, {9, 8})}, {pkt_v4(), {}, 2, {}}}};
  c.perf_events = "events";
  compare(c);
}

// bpf_spin_lock around counters in an array's and a hash's values (test/progtypes/xdp_spin.c).
TEST(KernelXdp, SpinLock) {
  compare({"xdp_spin", "", {}, {{frame(0x0800, {1, 2})}, {frame(0x0800, {1, 2, 3}), {}, 5, {}}, {pkt_v4(), {}, 2, {}}}});
}

// bpf_loop: a callback walking the packet, early stops, the helper's error
// codes (test/progtypes/xdp_loop.c).
TEST(KernelXdp, BpfLoop) {
  Bytes zeros = frame(0x0800, Bytes(9, 0));
  Bytes stop = frame(0x0800, {1, 2, 3, 0xff, 4, 5});
  compare({"xdp_loop", "", {}, {{frame(0x0800, {1, 2})}, {zeros}, {stop}, {pkt_v4()}, {pkt_v6(), {}, 3, {}}}});
}

// bpf_for_each_map_elem over an array (values written, an early stop) and a
// hash (keys and values summed: the walk's order differs from the kernel's
// buckets, so only order-free results), test/progtypes/xdp_for_each.c.
TEST(KernelXdp, ForEachMapElem) {
  std::vector<Step> steps;
  for (uint8_t n : {1, 9, 30, 17, 2, 60}) steps.push_back({frame(0x0800, Bytes(n, n))});
  compare({"xdp_for_each", "", {}, steps});
}

// An array and a hash of maps (test/progtypes/xdp_map_in_map.c): lookups of the outer
// map, empty slots, counts in the inner maps (compared; the outer map holds
// map ids in the kernel and maps here, so it is not).
TEST(KernelXdp, ArrayAndHashOfMaps) {
  std::vector<Step> steps;
  for (uint8_t n : {14, 15, 16, 17, 18, 20, 21, 25, 29, 33}) steps.push_back({frame(0x0800, Bytes(n - 14, n))});
  compare({"xdp_map_in_map", "", {}, steps});
}

// Filling an array's and a hash's slots from user space (the kernel's
// BPF_MAP_UPDATE_ELEM / DELETE_ELEM with an inner map's descriptor; here
// MapOfMaps::set / remove, what sb_map_set_inner calls): each step's errno
// the kernel's, flags, indexes, a full hash and an unlike map included.
TEST(KernelMaps, MapOfMapsSlotsFromUserSpace) {
#ifndef SB_HAVE_LIBBPF
  GTEST_SKIP() << "built without libbpf";
#else
  if (std::optional<std::string> why = kernel_unavailable()) GTEST_SKIP() << *why;
  struct Inner {
    uint32_t type, key, value, max;
  };
  const std::vector<Inner> inners = {{BPF_MAP_TYPE_ARRAY, 4, 8, 4}, {BPF_MAP_TYPE_ARRAY, 4, 8, 4},
                                     {BPF_MAP_TYPE_ARRAY, 4, 8, 5}, {BPF_MAP_TYPE_HASH, 4, 8, 4},
                                     {BPF_MAP_TYPE_ARRAY, 4, 4, 4}};
  std::vector<int> kfd;
  rt::Environment env;
  std::vector<rt::Map*> ours;
  for (size_t i = 0; i < inners.size(); ++i) {
    const Inner& in = inners[i];
    kfd.push_back(bpf_map_create(bpf_map_type(in.type), "sb_inner", in.key, in.value, in.max, nullptr));
    ASSERT_GE(kfd.back(), 0) << "inner map " << i << ": " << std::strerror(errno);
    ours.push_back(&env.create_map({fmt::format("inner{}", i), in.type, in.key, in.value, in.max, 0, 0}));
  }
  struct Outer {
    uint32_t type, key_size, max;
  };
  for (const Outer& o : {Outer{BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 3}, Outer{BPF_MAP_TYPE_HASH_OF_MAPS, 4, 2},
                         Outer{BPF_MAP_TYPE_HASH_OF_MAPS, 8, 3}}) {
    SCOPED_TRACE(fmt::format("outer type {} key {} max {}", o.type, o.key_size, o.max));
    LIBBPF_OPTS(bpf_map_create_opts, opts, .inner_map_fd = uint32_t(kfd[0]));
    const int outer = bpf_map_create(bpf_map_type(o.type), "sb_outer", o.key_size, 4, o.max, &opts);
    ASSERT_GE(outer, 0) << std::strerror(errno);
    rt::MapSpec spec{fmt::format("outer{}_{}", o.type, o.key_size), o.type, o.key_size, 4, o.max, 0, 0};
    spec.inner = std::make_shared<const rt::MapSpec>(ours[0]->spec());
    auto* mine = dynamic_cast<rt::MapOfMaps*>(&env.create_map(spec));
    ASSERT_NE(mine, nullptr);
    // (op, key, inner map, flags): set = 0, delete = 1.
    struct Op {
      int op;
      uint64_t key;
      size_t inner;
      uint64_t flags;
    };
    const std::vector<Op> ops = {
        {0, 0, 0, BPF_ANY},     {0, 0, 1, BPF_ANY},   {0, 1, 1, BPF_NOEXIST}, {0, 1, 1, BPF_EXIST},
        {0, 2, 1, BPF_NOEXIST}, {0, 0, 1, BPF_NOEXIST}, {0, 5, 0, BPF_ANY},  {0, 1, 2, BPF_ANY},
        {0, 1, 3, BPF_ANY},     {0, 1, 4, BPF_ANY},   {0, 1, 0, 7},           {0, 3, 0, BPF_ANY},
        {1, 2, 0, 0},           {1, 2, 0, 0},         {1, 9, 0, 0},           {0, 2, 0, BPF_EXIST},
        {0, 4, 1, BPF_ANY},     {1, 0, 0, 0},         {0, 0, 0, BPF_EXIST},   {1, 1, 0, 0}};
    for (size_t i = 0; i < ops.size(); ++i) {
      const Op& op = ops[i];
      const uint32_t fd = uint32_t(kfd[op.inner]);
      int kernel = op.op == 0 ? bpf_map_update_elem(outer, &op.key, &fd, op.flags) : bpf_map_delete_elem(outer, &op.key);
      kernel = kernel < 0 ? -errno : 0;
      const int64_t here = op.op == 0 ? mine->set(&op.key, ours[op.inner], op.flags) : mine->remove(&op.key);
      EXPECT_EQ(here, kernel) << "step " << i << (op.op ? ": delete key " : ": set key ") << op.key << " inner "
                              << op.inner << " flags " << op.flags << " (kernel " << std::strerror(-kernel) << ")";
    }
    // What each slot holds afterwards: the same inner maps by key.
    for (uint64_t key = 0; key < 6; ++key) {
      uint32_t id = 0;
      const bool in_kernel = bpf_map_lookup_elem(outer, &key, &id) == 0;
      EXPECT_EQ(mine->get(&key) != nullptr, in_kernel) << "key " << key;
    }
    close(outer);
  }
  for (int fd : kfd) close(fd);
#endif
}

// The bloom filter's bits as the kernel sets them (BPF_F_ZERO_SEED, so the
// kernel's seed is known): after the same values are added, every absent
// value the kernel calls "maybe present" (a false positive) is one here
// too, for jhash2 (sizes in whole words) and jhash, several hash counts
// and bit array sizes.
TEST(KernelMaps, BloomFilterAsTheKernel) {
#ifndef SB_HAVE_LIBBPF
  GTEST_SKIP() << "built without libbpf";
#else
  if (std::optional<std::string> why = kernel_unavailable()) GTEST_SKIP() << *why;
  constexpr uint32_t kZeroSeed = 1u << 6;  // BPF_F_ZERO_SEED
  struct Config {
    uint32_t value_size, hashes, max_entries;
  };
  size_t false_positives = 0;
  for (const Config& c : {Config{4, 1, 1}, Config{4, 3, 10}, Config{3, 2, 4}, Config{6, 5, 8}, Config{16, 5, 20},
                          Config{13, 4, 3}, Config{8, 0, 30}, Config{12, 2, 200}}) {
    SCOPED_TRACE(fmt::format("value_size {} hashes {} max_entries {}", c.value_size, c.hashes, c.max_entries));
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = kZeroSeed, .map_extra = c.hashes);
    const int fd = bpf_map_create(BPF_MAP_TYPE_BLOOM_FILTER, "sb_bloom", 0, c.value_size, c.max_entries, &opts);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    rt::Environment env;
    rt::MapSpec spec{"bloom", uint32_t(BPF_MAP_TYPE_BLOOM_FILTER), 0, c.value_size, c.max_entries, kZeroSeed, 0};
    spec.map_extra = c.hashes;
    rt::Map& mine = env.create_map(spec);
    std::mt19937 rng(c.value_size * 131 + c.hashes * 7 + c.max_entries);
    auto value = [&] {
      Bytes v(c.value_size);
      for (uint8_t& b : v) b = uint8_t(rng());
      return v;
    };
    for (uint32_t i = 0; i < c.max_entries; ++i) {
      const Bytes v = value();
      ASSERT_EQ(bpf_map_update_elem(fd, nullptr, v.data(), BPF_ANY), 0) << std::strerror(errno);
      ASSERT_EQ(mine.push(v.data(), 0), 0);
    }
    size_t differ = 0;
    for (int i = 0; i < 3000; ++i) {
      Bytes v = value();
      const bool kernel = bpf_map_lookup_elem(fd, nullptr, v.data()) == 0;
      const bool here = mine.peek(v.data()) == 0;
      false_positives += kernel;
      if (kernel != here && ++differ <= 5) ADD_FAILURE() << "value " << fmt::format("{:02x}", fmt::join(v, "")) << ": kernel "
                                                         << (kernel ? "maybe present" : "absent") << ", here the other";
    }
    EXPECT_EQ(differ, 0u);
    close(fd);
  }
  EXPECT_GT(false_positives, 100u);  // enough collisions for the comparison to mean something
#endif
}

// Global functions (test/progtypes/xdp_global.c): the same verdict as the
// kernel's on each program, Springboard's refusal naming what the kernel's
// log names, and where both accept, the same results.
TEST(KernelXdp, GlobalFunctions) {
  const std::optional<std::string> no_kernel = kernel_unavailable();
  struct {
    const char* function;
    const char* refusal;  // part of Springboard's message; empty: accepted
    bool stricter = false;  // reads unwritten stack: refused here always (kernel_verifier_known.inc)
  } const cases[] = {
      {"accepted", ""},
      {"unchecked_argument", "global function first_unchecked(): instruction"},  // R1 invalid mem access 'mem_or_null'
      {"uninitialized_stack", "invalid indirect read from stack R1 off -8+4 size 8", true},
      {"unchecked_packet", "invalid access to packet"},
      {"unknown_result", "variable-offset"},
      {"void_pointer", "arg#0 reference type('void ') size cannot be determined"},
      {"not_the_context", "arg#0 expected pointer to ctx, but got fp"},
  };
  for (const auto& [function, refusal, stricter] : cases) {
    SCOPED_TRACE(function);
    rt::Environment env;
    bpf::ElfProgram elf = env.load_elf(object("xdp_global"), {"", function});
    std::string message;
    try {
      bpf::verifier::verify(elf.program, {.type = elf.type, .program = function});
    } catch (const Error& e) {
      message = e.what();
    }
    EXPECT_EQ(message.empty(), !*refusal) << message;
    if (*refusal) EXPECT_NE(message.find(refusal), std::string::npos) << message;
    if (no_kernel || stricter) continue;
    std::string why;
    const bool kernel = KernelObject::load(object("xdp_global"), function, &why) != nullptr;
    EXPECT_EQ(message.empty(), kernel) << "kernel: " << why << "\nSpringboard: " << message;
  }
  if (no_kernel) GTEST_SKIP() << "Springboard's verdicts checked, not the kernel's: " << *no_kernel;
  compare({"xdp_global", "accepted", {}, {{frame(0x0800, {1, 2})}, {frame(0x86dd, Bytes(40, 6))}, {Bytes(10, 1)}}});
}

// A filter in the manner of xdp-tools' xdp-filter (test/progtypes/xdp_filter.c):
// MAC, IPv4 / IPv6 and port rules by direction and protocol, through VLAN
// tags and IPv4 options, per-CPU verdict counters; frames that match each
// rule and frames that just miss it, truncated ones, then random frames,
// through both the deny and the allow program.
std::vector<MapSetup> filter_rules() {
  const uint32_t src = 1, dst = 2, tcp = 4, udp = 8;
  auto value = [](uint32_t v) { return Bytes{uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)}; };
  auto v6 = [](uint8_t last) {
    Bytes a{0x20, 0x01, 0x0d, 0xb8};
    a.resize(16, 0);
    a[15] = last;
    return a;
  };
  return {
      {"filter_ethernet", {2, 0, 0, 0, 0, 1}, value(src)},
      {"filter_ethernet", {2, 0, 0, 0, 0, 2}, value(dst)},
      {"filter_ipv4", {10, 0, 0, 1}, value(src)},
      {"filter_ipv4", {10, 0, 0, 2}, value(dst)},
      {"filter_ipv4", {10, 0, 0, 3}, value(src | dst)},
      {"filter_ipv6", v6(1), value(src)},
      {"filter_ipv6", v6(2), value(dst)},
      {"filter_ports", {22, 0}, value(dst | tcp)},
      {"filter_ports", {53, 0}, value(src | dst | udp)},
      {"filter_ports", {80, 0}, value(src | udp)},
  };
}

std::vector<Step> filter_frames(bool deny) {
  auto eth = [](Bytes dmac, Bytes smac, std::vector<uint16_t> vlans, uint16_t proto) {
    Bytes f = dmac;
    f.insert(f.end(), smac.begin(), smac.end());
    for (size_t i = 0; i < vlans.size(); ++i)
      f.insert(f.end(), {uint8_t(i ? 0x81 : 0x88), uint8_t(i ? 0x00 : 0xa8), uint8_t(vlans[i] >> 8), uint8_t(vlans[i])});
    f.insert(f.end(), {uint8_t(proto >> 8), uint8_t(proto)});
    return f;
  };
  const Bytes host{0x0a, 0xbb, 0xcc, 0xdd, 0xee, 0xff}, mac1{2, 0, 0, 0, 0, 1}, mac2{2, 0, 0, 0, 0, 2};
  auto ports = [](uint16_t sport, uint16_t dport, bool tcp) {
    Bytes l4(tcp ? 20 : 8, 0);
    l4[0] = uint8_t(sport >> 8), l4[1] = uint8_t(sport), l4[2] = uint8_t(dport >> 8), l4[3] = uint8_t(dport);
    if (tcp) l4[12] = 0x50;
    return l4;
  };
  auto v4 = [&](Bytes saddr, Bytes daddr, uint8_t proto, Bytes l4, std::vector<uint16_t> vlans = {}, int options = 0) {
    Bytes f = eth(host, host, vlans, 0x0800);
    Bytes ip{uint8_t(0x45 + options), 0, 0, 0, 0, 1, 0, 0, 64, proto, 0, 0};
    ip.insert(ip.end(), saddr.begin(), saddr.end());
    ip.insert(ip.end(), daddr.begin(), daddr.end());
    ip.resize(ip.size() + 4 * size_t(options), 1);  // NOPs
    f.insert(f.end(), ip.begin(), ip.end());
    f.insert(f.end(), l4.begin(), l4.end());
    return Step{f};
  };
  auto v6 = [&](uint8_t slast, uint8_t dlast, uint8_t next, Bytes l4) {
    Bytes f = eth(host, host, {}, 0x86dd);
    Bytes ip{0x60, 0, 0, 0, 0, uint8_t(l4.size()), next, 64};
    for (uint8_t last : {slast, dlast}) {
      Bytes a{0x20, 0x01, 0x0d, 0xb8};
      a.resize(16, 0);
      a[15] = last;
      ip.insert(ip.end(), a.begin(), a.end());
    }
    f.insert(f.end(), ip.begin(), ip.end());
    f.insert(f.end(), l4.begin(), l4.end());
    return Step{f};
  };
  const Bytes other{192, 168, 1, 9}, a1{10, 0, 0, 1}, a2{10, 0, 0, 2}, a3{10, 0, 0, 3};
  std::vector<Step> steps = {
      {eth(host, mac1, {}, 0x0800)},   // source MAC: a match (before any IP header)
      {eth(mac2, host, {}, 0x0806)},   // destination MAC
      {eth(mac1, host, {}, 0x0806)},   // mac1 only matches as the source: ARP, no rule
      v4(a1, other, 6, ports(1000, 2000, true)),  // source address
      v4(other, a1, 6, ports(1000, 2000, true)),  // a1 as the destination: no rule
      v4(other, a2, 17, ports(1000, 2000, false)),
      v4(other, a3, 1, Bytes(8, 0)),              // both directions
      v4(other, other, 6, ports(1000, 22, true)),   // TCP port 22
      v4(other, other, 17, ports(1000, 22, false)), // UDP port 22: no rule
      v4(other, other, 6, ports(22, 1000, true)),   // 22 as the source: no rule
      v4(other, other, 17, ports(53, 1000, false)), // UDP 53 either way
      v4(other, other, 6, ports(53, 1000, true)),   // TCP 53: no rule
      v4(other, other, 17, ports(1000, 80, false)), // UDP 80 as the source only: no rule
      v4(a3, other, 6, ports(1, 2, true), {7, 9}),  // behind two VLAN tags
      v4(other, other, 6, ports(1000, 22, true), {5}),
      v4(other, other, 6, ports(1000, 22, true), {}, 2),  // IPv4 options
      v6(1, 9, 6, ports(1, 2, true)),
      v6(9, 2, 17, ports(1, 2, false)),
      v6(9, 9, 17, ports(53, 9, false)),
      v6(9, 9, 58, Bytes(8, 0)),
  };
  const size_t crafted = steps.size();
  // Which crafted frames match a rule: the verdict the kernel must give too.
  const bool hit[] = {1, 1, 0, 1, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0};
  static_assert(sizeof hit == 20);
  for (size_t i = 0; i < crafted && i < sizeof hit; ++i) steps[i].retval = hit[i] == deny ? 1u : 2u;  // XDP_DROP, XDP_PASS
  for (size_t i = 3; i < crafted; ++i) {  // each cut short: inside the L4, L3 and VLAN headers
    for (size_t cut : {size_t(4), size_t(18), size_t(30)})
      if (steps[i].data.size() > cut && steps[i].data.size() - cut >= 14)
        steps.push_back({Bytes(steps[i].data.begin(), steps[i].data.end() - long(cut))});
  }
  Bytes bad_ihl = v4(other, other, 6, ports(1, 22, true)).data;
  bad_ihl[14] = 0x44;  // ihl 4: shorter than an IPv4 header
  steps.push_back({bad_ihl, std::nullopt, 1, 0u});  // XDP_ABORTED
  bad_ihl[14] = 0x4f;  // ihl 15: past the frame
  steps.push_back({bad_ihl, std::nullopt, 1, 0u});
  for (Step& s : random_frames(20261207, 150)) steps.push_back(std::move(s));
  return steps;
}

TEST(KernelXdp, FilterDeny) { compare({"xdp_filter", "xdp_filter_deny", filter_rules(), filter_frames(true)}); }
TEST(KernelXdp, FilterAllow) { compare({"xdp_filter", "xdp_filter_allow", filter_rules(), filter_frames(false)}); }

TEST(KernelXdp, RandomFramesThroughAParser) { compare({"xdp_parse", "", {}, random_frames(20261206, 300)}); }

// --- TC and socket filters: struct __sk_buff as the kernel's test run builds it

Bytes ipv4_udp(uint8_t ttl = 64) {
  Bytes f(6, 0);
  f.insert(f.end(), 6, 0x22);
  f.insert(f.end(), {0x08, 0x00, 0x45, 0, 0, 28, 0, 1, 0, 0, ttl, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
                     0x30, 0x39, 0, 53, 0, 8, 0, 0});
  return f;
}

Bytes sk_buff_md(std::function<void(uint32_t*)> set) {
  Bytes b(192, 0);
  std::vector<uint32_t> w(48, 0);
  set(w.data());
  std::memcpy(b.data(), w.data(), 192);
  return b;
}

std::vector<Step> skb_steps() {
  std::vector<Step> steps;
  Bytes v4 = ipv4_udp();
  steps.push_back({v4});
  Bytes bcast = v4, mcast = v4, other = v4;
  std::fill(bcast.begin(), bcast.begin() + 6, 0xff);
  mcast[0] = 0x01, mcast[5] = 0x5e;
  other[0] = 0x02;
  steps.push_back({bcast});
  steps.push_back({mcast});
  steps.push_back({other});
  steps.push_back({pkt_v4()});
  steps.push_back({pkt_v6()});
  steps.push_back({frame(0x0806, Bytes(28, 1))});        // ARP
  steps.push_back({frame(0x0010, {0xff, 0xff, 1, 2})});  // 802.3 raw
  steps.push_back({frame(0x0010, {0xaa, 0xaa, 3, 0})});  // 802.2
  steps.push_back({Bytes(v4.begin(), v4.begin() + 30)});  // IPv4 without its header: EINVAL
  steps.push_back({frame(0x86dd, Bytes(30, 0))});        // IPv6 likewise
  steps.push_back({Bytes(13, 0)});
  steps.push_back({Bytes(3713, 0)});  // past bpf_test_init's linear limit
  steps.push_back({Bytes(3712, 0)});
  // ctx_in: what a test run may set, and what it may not.
  steps.push_back({v4, sk_buff_md([](uint32_t* w) {
                     w[2] = 41;              // mark
                     w[8] = 3;               // priority
                     w[9] = 2;               // ingress_ifindex
                     w[12] = 7, w[16] = 9;   // cb[0], cb[4]
                     w[38] = 5000;           // tstamp (low half)
                     w[40] = 100;            // wire_len
                     w[41] = 4;              // gso_segs
                     w[44] = 1400;           // gso_size
                     w[46] = 77;             // hwtstamp (low half)
                   })});
  steps.push_back({v4, sk_buff_md([](uint32_t* w) { w[10] = 1; }), 3});  // ifindex 1: loopback; three runs
  steps.push_back({v4, sk_buff_md([](uint32_t* w) { w[0] = 1; })});      // len: EINVAL
  steps.push_back({v4, sk_buff_md([](uint32_t* w) { w[4] = 8; })});      // protocol: EINVAL
  steps.push_back({v4, sk_buff_md([](uint32_t* w) { w[17] = 1; })});     // hash: EINVAL
  steps.push_back({v4, sk_buff_md([](uint32_t* w) { w[40] = 10; })});    // wire_len < len: EINVAL
  steps.push_back({v4, sk_buff_md([](uint32_t* w) { w[41] = 70000; })}); // gso_segs: EINVAL
  steps.push_back({v4, Bytes(200, 0)});                                  // zeros past the struct
  return steps;
}

TEST(KernelTc, Classifier) {
  std::vector<Step> steps = skb_steps();
  steps.push_back({ipv4_udp(1)});
  compare({"tc_classify", "", {}, steps});
}

TEST(KernelTc, RandomFrames) { compare({"tc_classify", "", {}, random_frames(7, 200)}); }

// Checksums, VLAN tags, the tunnel key and redirects (test/progtypes/tc_helpers.c),
// on IPv4/UDP frames (one with a VLAN tag already) whose last byte picks the part.
TEST(KernelTc, Helpers) {
  auto with = [](Bytes f, uint8_t sel) {
    f.insert(f.end(), {0xde, 0xad, sel});
    return f;
  };
  Bytes v4 = ipv4_udp();
  v4[24] = 0x12, v4[25] = 0x34;  // some IP checksum to update
  Bytes udp_sum = v4;
  udp_sum[40] = 0xab, udp_sum[41] = 0xcd;
  Bytes tagged(v4.begin(), v4.begin() + 12);
  tagged.insert(tagged.end(), {0x81, 0x00, 0x20, 0x05});
  tagged.insert(tagged.end(), v4.begin() + 12, v4.end());
  std::vector<Step> steps = {{with(v4, 0)}, {with(udp_sum, 0)}, {with(v4, 1)}, {with(tagged, 1)},
                             {with(v4, 2), {}, 1, 7}, {with(v4, 3)}, {with(v4, 4)}, {with(v4, 5)}};
  compare({"tc_helpers", "", {}, steps});
}

TEST(KernelSocket, Filter) { compare({"socket_filter", "", {}, skb_steps()}); }

TEST(KernelSocket, RandomFrames) { compare({"socket_filter", "", {}, random_frames(11, 200)}); }

}  // namespace
}  // namespace sb::test
