// The map types beyond array and hash (runtime/maps/): what the kernel
// comparison (test/progtypes_kernel_test.cpp) cannot show because the
// kernel's own behaviour there is approximate or per-CPU (LRU eviction,
// every CPU's copy of a per-CPU hash), the errors create_map gives for
// definitions the kernel refuses, the verifier's map/helper compatibility
// (both directions of check_map_func_compatibility), and what a test run
// records (redirect targets, the tunnel key, perf event records).
#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "frontend/assembler.h"
#include "frontend/progtypes/probe.h"
#include "frontend/progtypes/skb.h"
#include "frontend/progtypes/xdp.h"
#include "frontend/verifier/verifier.h"
#include "ir/diag.h"
#include "runtime/helpers/csum_helpers.h"
#include "runtime/helpers/std_helpers.h"
#include "runtime/maps/bloom_filter.h"
#include "runtime/maps/lpm_trie.h"
#include "runtime/maps/perf_event_array.h"
#include "runtime/maps/queue_stack.h"
#include "runtime/maps/redirect_maps.h"
#include "runtime/maps/stack_trace.h"
#include "runtime/progtypes/test_run.h"
#include "test/engines.h"
#include "test/verdict.h"

namespace sb::test {
namespace {

using Bytes = std::vector<uint8_t>;

std::string object(const std::string& name) { return std::string(SB_PROGTYPES_OBJECTS) + "/" + name + ".o"; }

std::string creation_error(const rt::MapSpec& s) {
  try {
    rt::create_map(s);
    return "created";
  } catch (const Error& e) {
    return e.what();
  }
}

uint64_t u64(const void* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

TEST(MapTypes, LruEvictsTheLeastRecentlyUsed) {
  rt::HashMap m({"lru", uint32_t(rt::MapType::LruHash), 4, 8, 3, 0, 0});
  EXPECT_TRUE(m.lru());
  const uint64_t v = 7;
  for (uint32_t k = 1; k <= 3; ++k) ASSERT_EQ(m.update(&k, &v, rt::kUpdateAny), 0);
  uint32_t k = 1;
  ASSERT_NE(m.lookup(&k), nullptr);  // 1 is now the most recently used; 2 the least
  k = 4;
  EXPECT_EQ(m.update(&k, &v, rt::kUpdateNoExist), 0);  // full: never -E2BIG, 2 goes
  EXPECT_EQ(m.size(), 3u);
  k = 2;
  EXPECT_EQ(m.lookup(&k), nullptr);
  k = 3;
  EXPECT_EQ(m.update(&k, &v, rt::kUpdateExist), 0);  // an update is a use too: 1 is now the oldest
  k = 5;
  EXPECT_EQ(m.update(&k, &v, rt::kUpdateAny), 0);
  for (uint32_t present : {3u, 4u, 5u}) EXPECT_NE(m.lookup(&present), nullptr) << present;
  k = 1;
  EXPECT_EQ(m.lookup(&k), nullptr);
  EXPECT_EQ(m.update(&k, &v, rt::kUpdateExist), -ENOENT);  // the flags' errors stay
  EXPECT_EQ(m.update(&k, &v, 3), -EINVAL);
  // BPF_F_NO_PREALLOC is refused for LRU maps, as the kernel does.
  EXPECT_EQ(creation_error({"l", uint32_t(rt::MapType::LruHash), 4, 8, 3, rt::kMapNoPrealloc, 0}),
            "map 'l': an LRU hash is always preallocated: BPF_F_NO_PREALLOC is not allowed");
}

TEST(MapTypes, PerCpuHashKeepsACopyPerCpu) {
  unsigned cpu = 1;
  rt::HashMap m({"p", uint32_t(rt::MapType::PerCpuHash), 4, 8, 4, 0, 0}, 3, [&] { return cpu; });
  const uint32_t k = 9;
  const uint64_t v = 5;
  ASSERT_EQ(m.update(&k, &v, rt::kUpdateAny), 0);  // created by a program: the other copies are zero
  cpu = 2;
  *static_cast<uint64_t*>(m.lookup(&k)) += 3;     // copy 2
  cpu = 4;                                        // modulo the copies: copy 1
  EXPECT_EQ(u64(m.lookup(&k)), 5u);
  std::vector<rt::MapEntry> e = m.entries();
  ASSERT_EQ(e.size(), 1u);
  ASSERT_EQ(e[0].values.size(), 3u);
  EXPECT_EQ(u64(e[0].values[0].data()), 0u);
  EXPECT_EQ(u64(e[0].values[1].data()), 5u);
  EXPECT_EQ(u64(e[0].values[2].data()), 3u);
  EXPECT_EQ(u64(rt::map_entry_total(e[0]).data()), 8u);
  // User space writes every copy.
  const uint64_t all[3] = {10, 20, 30};
  EXPECT_EQ(m.update_cpus(&k, all, rt::kUpdateExist), 0);
  EXPECT_EQ(u64(m.entries()[0].values[2].data()), 30u);
  EXPECT_EQ(m.update_cpus(&k, all, rt::kUpdateNoExist), -EEXIST);
}

TEST(MapTypes, LpmTrieRules) {
  rt::LpmTrieMap m({"t", uint32_t(rt::MapType::LpmTrie), 8, 4, 4, rt::kMapNoPrealloc, 0});
  EXPECT_EQ(m.max_prefixlen(), 32u);
  auto key = [](uint32_t len, std::array<uint8_t, 4> a) {
    Bytes k(8);
    std::memcpy(k.data(), &len, 4);
    std::memcpy(k.data() + 4, a.data(), 4);
    return k;
  };
  const uint32_t one = 1, two = 2;
  ASSERT_EQ(m.update(key(16, {192, 168, 0, 0}).data(), &one, rt::kUpdateAny), 0);
  ASSERT_EQ(m.update(key(25, {192, 168, 1, 128}).data(), &two, rt::kUpdateAny), 0);
  auto find = [&](uint32_t len, std::array<uint8_t, 4> a) {
    const void* v = m.lookup(key(len, a).data());
    return v ? int(*static_cast<const uint32_t*>(v)) : -1;
  };
  EXPECT_EQ(find(32, {192, 168, 1, 200}), 2);
  EXPECT_EQ(find(32, {192, 168, 1, 100}), 1);  // bit 25 differs: the /16
  EXPECT_EQ(find(24, {192, 168, 1, 200}), 1);  // the key's prefixlen caps the match
  EXPECT_EQ(find(32, {10, 0, 0, 1}), -1);
  EXPECT_EQ(find(99, {192, 168, 1, 200}), 2);  // a lookup's prefixlen past the maximum is the maximum
  // Bits past the prefix do not make another element.
  EXPECT_EQ(m.update(key(16, {192, 168, 77, 77}).data(), &two, rt::kUpdateNoExist), -EEXIST);
  EXPECT_EQ(m.remove(key(24, {192, 168, 1, 0}).data()), -ENOENT);
  EXPECT_EQ(m.remove(key(33, {0, 0, 0, 0}).data()), -EINVAL);
  EXPECT_EQ(creation_error({"t", uint32_t(rt::MapType::LpmTrie), 8, 4, 4, 0, 0}),
            "map 't': an LPM trie needs map_flags BPF_F_NO_PREALLOC (1), as in the kernel");
  EXPECT_EQ(creation_error({"t", uint32_t(rt::MapType::LpmTrie), 4, 4, 4, rt::kMapNoPrealloc, 0}),
            "map 't': key_size 4 is not in [5, 260] (struct bpf_lpm_trie_key: u32 prefixlen, then 1 to 256 data "
            "bytes)");
}

TEST(MapTypes, QueueStackBloomAndTheirSizes) {
  rt::QueueStackMap s({"s", uint32_t(rt::MapType::Stack), 0, 4, 2, 0, 0});
  for (uint32_t v : {1u, 2u, 3u}) s.push(&v, rt::kUpdateExist);  // 3 drops the oldest, 1
  ASSERT_EQ(s.contents().size(), 2u);
  uint32_t top = 0;
  EXPECT_EQ(s.pop(&top), 0);
  EXPECT_EQ(top, 3u);
  EXPECT_EQ(creation_error({"q", uint32_t(rt::MapType::Queue), 4, 4, 2, 0, 0}),
            "map 'q': key_size 4 must be 0 for a queue map");
  rt::BloomFilterMap b({"b", uint32_t(rt::MapType::BloomFilter), 0, 8, 1000, 0, 0});
  EXPECT_EQ(b.hashes(), 5u);  // map_extra 0
  EXPECT_EQ(b.bits(), 8192u);  // 1000 * 5 * 7 / 5, rounded up to a power of two
  for (uint64_t v = 0; v < 1000; ++v) ASSERT_EQ(b.push(&v, 0), 0);
  size_t false_positives = 0;
  for (uint64_t v = 0; v < 1000; ++v) ASSERT_EQ(b.peek(&v), 0) << v;  // never a false negative
  for (uint64_t v = 1000; v < 11000; ++v) false_positives += b.peek(&v) == 0;
  EXPECT_LT(false_positives, 1000u);  // about 5% at this load
  EXPECT_EQ(creation_error({"b", uint32_t(rt::MapType::BloomFilter), 0, 8, 10, 0, 16}),
            "map 'b': map_extra 0x10: only bits 0-3 (the number of hash functions) may be set");
}

// The bucket bpf_get_stackid puts a stack in: jhash2 of its ips.
uint32_t stack_bucket(const std::vector<uint64_t>& ips, uint32_t buckets) {
  return rt::jhash2(ips.data(), uint32_t(ips.size() * 2), 0) & (buckets - 1);
}

// A stack of two ips {seed, 0x1000 + n} for the first n whose bucket is
// (or, with `other`, is not) `bucket`.
std::vector<uint64_t> stack_in(uint32_t bucket, uint32_t buckets, uint64_t seed, bool other = false) {
  for (uint64_t n = 0;; ++n) {
    std::vector<uint64_t> ips = {seed, 0x1000 + n};
    if ((stack_bucket(ips, buckets) == bucket) != other) return ips;
  }
}

std::vector<uint64_t> stack_value(const rt::StackTraceMap& m, uint32_t id) {
  std::vector<uint64_t> v(m.depth(), ~0ull);
  if (!m.copy(id, v.data())) return {};
  return v;
}

TEST(MapTypes, StackTraceBucketsAsTheKernel) {
  EXPECT_EQ(rt::jhash2(nullptr, 0, 0), 0xdeadbeefu);  // lookup3: no words, the initial value
  rt::StackTraceMap m({"st", uint32_t(rt::MapType::StackTrace), 4, 32, 2, 0, 0});  // 4 ips, 2 buckets
  EXPECT_EQ(m.buckets(), 2u);
  const std::vector<uint64_t> a = {0x401000, 0x402000, 0x403000};
  const uint32_t bucket = stack_bucket(a, 2);
  EXPECT_EQ(m.stack_id(a, 0), bucket);
  EXPECT_EQ(m.stack_id(a, 0), bucket);                    // the same stack, the same id
  EXPECT_EQ(m.stack_id(a, rt::kStackFastCmp), bucket);    // by its hash alone
  EXPECT_EQ(stack_value(m, bucket), (std::vector<uint64_t>{0x401000, 0x402000, 0x403000, 0}));  // zero-padded
  const std::vector<uint64_t> b = stack_in(bucket, 2, 7);  // another stack, the same bucket
  EXPECT_EQ(m.stack_id(b, 0), -EEXIST);
  EXPECT_EQ(m.stack_id(b, rt::kStackReuseId), bucket);  // replaces a
  EXPECT_EQ(stack_value(m, bucket), (std::vector<uint64_t>{b[0], b[1], 0, 0}));
  EXPECT_EQ(m.stack_id(a, 0), -EEXIST);
  // Skipped frames: the rest is the stack; none left is -EFAULT.
  const std::vector<uint64_t> c = {0x1, 0x2, 0x3, 0x4, 0x5, 0x6};
  const uint32_t skip2 = stack_bucket({0x3, 0x4, 0x5, 0x6}, 2);
  if (skip2 != bucket) {
    EXPECT_EQ(m.stack_id(c, 2), skip2);
    EXPECT_EQ(stack_value(m, skip2), (std::vector<uint64_t>{0x3, 0x4, 0x5, 0x6}));
  }
  EXPECT_EQ(m.stack_id(c, 6), -EFAULT);
  EXPECT_EQ(m.stack_id({}, 0), -EFAULT);
  // User space: a delete frees the bucket; an empty one or one past the
  // buckets is not there; no updates.
  const uint32_t id = bucket, past = 2;
  EXPECT_EQ(m.remove(&id), 0);
  EXPECT_TRUE(stack_value(m, bucket).empty());
  EXPECT_EQ(m.remove(&id), -ENOENT);
  EXPECT_EQ(m.remove(&past), -E2BIG);
  EXPECT_FALSE(m.copy(past, std::vector<uint64_t>(4).data()));
  EXPECT_EQ(m.update(&id, a.data(), 0), -EINVAL);
  EXPECT_EQ(m.stack_id(a, 0), bucket);  // the freed bucket takes a again
}

// max_entries stacks at most, though there are more buckets (a power of
// two): the next one is -ENOMEM, even to replace one (the kernel takes the
// new bucket first), until a delete frees one. entries() lists them by id.
TEST(MapTypes, StackTraceHoldsMaxEntriesStacks) {
  rt::StackTraceMap m({"st", uint32_t(rt::MapType::StackTrace), 4, 16, 3, 0, 0});
  ASSERT_EQ(m.buckets(), 4u);
  std::vector<uint64_t> stacks[4];
  for (uint32_t b = 0; b < 4; ++b) stacks[b] = stack_in(b, 4, 100 + b);
  for (uint32_t b = 0; b < 3; ++b) EXPECT_EQ(m.stack_id(stacks[b], 0), b);
  EXPECT_EQ(m.stack_id(stacks[3], 0), -ENOMEM);
  EXPECT_EQ(m.stack_id(stack_in(0, 4, 9), rt::kStackReuseId), -ENOMEM);
  const std::vector<rt::MapEntry> e = m.entries();
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[2].key, (Bytes{2, 0, 0, 0}));
  EXPECT_EQ(u64(e[2].values[0].data()), stacks[2][0]);
  const uint32_t one = 1;
  EXPECT_EQ(m.remove(&one), 0);
  EXPECT_EQ(m.stack_id(stacks[3], 0), 3);
}

TEST(MapTypes, StackTraceDefinitionsTheKernelRefuses) {
  auto spec = [](uint32_t key, uint32_t value, uint32_t flags = 0) {
    return rt::MapSpec{"st", uint32_t(rt::MapType::StackTrace), key, value, 8, flags, 0};
  };
  EXPECT_EQ(creation_error(spec(8, 64)), "map 'st': key_size 8 must be 4 for a stack_trace map");
  EXPECT_EQ(creation_error(spec(4, 12)),
            "map 'st': value_size 12 must be a multiple of 8 of at most 1016 (an ip per u64, at most "
            "perf_event_max_stack of them)");
  EXPECT_EQ(creation_error(spec(4, 1024)),
            "map 'st': value_size 1024 must be a multiple of 8 of at most 1016 (an ip per u64, at most "
            "perf_event_max_stack of them)");
  EXPECT_EQ(creation_error(spec(4, 64, 32)), "created");  // BPF_F_STACK_BUILD_ID: two frames
  EXPECT_EQ(creation_error(spec(4, 48, 32)),
            "map 'st': value_size 48 must be a multiple of 32 of at most 4064 (a struct bpf_stack_build_id per "
            "frame, at most perf_event_max_stack of them)");
  EXPECT_EQ(creation_error(spec(4, 64, 1)), "map 'st': map_flags 0x1 are not allowed");
  EXPECT_EQ(creation_error(spec(4, 1016)), "created");
}

TEST(MapTypes, RedirectMapSlots) {
  rt::RedirectMap d({"d", uint32_t(rt::MapType::DevMap), 4, 4, 4, 0, 0});
  const uint32_t k1 = 1, k9 = 9, ifindex = 3, zero = 0;
  EXPECT_EQ(d.update(&k1, &ifindex, rt::kUpdateAny), 0);
  EXPECT_TRUE(d.has(1));
  EXPECT_EQ(d.update(&k1, &ifindex, rt::kUpdateNoExist), -EEXIST);
  EXPECT_EQ(d.update(&k9, &ifindex, rt::kUpdateAny), -E2BIG);
  EXPECT_EQ(d.update(&k1, &zero, rt::kUpdateAny), 0);  // ifindex 0 empties the slot
  EXPECT_FALSE(d.has(1));
  EXPECT_EQ(d.lookup(&k1), nullptr);
  rt::RedirectMap c({"c", uint32_t(rt::MapType::CpuMap), 4, 4, 4, 0, 0});
  const uint32_t huge = 20000;
  EXPECT_EQ(c.update(&k1, &huge, rt::kUpdateAny), -EOVERFLOW);
  EXPECT_EQ(c.lookup(&k1), nullptr);  // not readable by programs
  rt::RedirectMap h({"h", uint32_t(rt::MapType::DevMapHash), 4, 8, 1, 0, 0});
  const uint64_t val = 2;
  EXPECT_EQ(h.update(&k9, &val, rt::kUpdateExist), -ENOENT);
  EXPECT_EQ(h.update(&k9, &val, rt::kUpdateAny), 0);
  EXPECT_EQ(h.update(&k1, &val, rt::kUpdateAny), -E2BIG);
  EXPECT_EQ(h.entries().size(), 1u);
  EXPECT_EQ(creation_error({"x", uint32_t(rt::MapType::XskMap), 4, 8, 4, 0, 0}),
            "map 'x': value_size 8 must be 4 for a xskmap map");
}

TEST(MapTypes, PerfEventArraySlots) {
  unsigned cpu = 0;
  rt::PerfEventArrayMap p({"e", uint32_t(rt::MapType::PerfEventArray), 4, 4, 4, 0, 0}, 2, [&] { return cpu; });
  const uint8_t data[3] = {1, 2, 3};
  EXPECT_EQ(p.output(0xffffffff, data, {}), 0);  // BPF_F_CURRENT_CPU: slot 0
  EXPECT_EQ(p.output(1, data, {}), -EOPNOTSUPP);  // open on CPU 1
  EXPECT_EQ(p.output(2, data, {}), -ENOENT);      // slots past the CPUs are closed
  p.set_slot(2, 0u);
  EXPECT_EQ(p.output(2, data, data), 0);
  EXPECT_EQ(p.output(4, data, {}), -E2BIG);
  EXPECT_EQ(p.output(uint64_t(1) << 53, data, {}), -EINVAL);
  std::vector<rt::PerfEventArrayMap::Record> r = p.take_records();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].slot, 2u);
  EXPECT_EQ(r[1].bytes, (Bytes{1, 2, 3, 1, 2, 3}));
  EXPECT_TRUE(p.take_records().empty());
}

// The checksum arithmetic on known values: RFC 1071's example words, and
// the kernel's csum_fold.
TEST(MapTypes, ChecksumArithmetic) {
  const Bytes words = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  // Little-endian words 0x03f20100 + 0xf7f6f5f4 = 0xfbe8f6f4 (no carry).
  EXPECT_EQ(rt::csum_partial(words, 0), 0xfbe8f6f4u);
  EXPECT_EQ(rt::csum_partial(words, 0x10000000), 0x0be8f6f5u);  // end-around carry
  EXPECT_EQ(rt::csum_partial(Bytes{1, 2, 3}, 0), 0x030201u);     // the tail zero-padded
  EXPECT_EQ(rt::csum_fold(0xfbe8f6f4u), uint16_t(~uint16_t(0xfbe8 + 0xf6f4 + 1)));
}

// bpf_fib_lookup over an embedder's routes (runtime/progtypes/fib_lookup.h).
TEST(MapTypes, FibLookupRoutes) {
  rt::Environment env;
  auto route = [](std::array<uint8_t, 4> prefix, uint8_t len) {
    rt::FibRoute r;
    std::copy(prefix.begin(), prefix.end(), r.prefix.begin());
    r.prefixlen = len;
    r.ifindex = 2;
    r.smac = {2, 0, 0, 0, 0, 1};
    r.dmac = {2, 0, 0, 0, 0, 2};
    return r;
  };
  rt::FibRoute def = route({10, 0, 0, 0}, 8);
  def.gateway = {10, 0, 0, 254};
  env.add_fib_route(def);
  rt::FibRoute hole = route({10, 1, 0, 0}, 16);
  hole.kind = rt::FibRoute::Kind::Blackhole;
  env.add_fib_route(hole);
  rt::FibRoute no_neigh = route({10, 2, 0, 0}, 16);
  no_neigh.has_neighbour = false;
  env.add_fib_route(no_neigh);
  rt::FibRoute small = route({192, 168, 0, 0}, 16);
  small.mtu = 1000;
  env.add_fib_route(small);
  const rt::HelperTable t = rt::standard_helpers(env);
  rt::ContextScope scope(&env);
  struct Params {
    uint8_t family = 2, l4 = 0;
    uint16_t sport = 0, dport = 0, tot_len = 0;
    uint32_t ifindex = 2, tos = 0;
    uint8_t src[16] = {}, dst[16] = {};
    uint16_t vlan_proto = 0, vlan_tci = 0;
    uint8_t smac[6] = {}, dmac[6] = {};
  };
  auto lookup = [&](std::array<uint8_t, 4> dst, uint32_t flags = 0, uint16_t tot_len = 100, uint32_t ifindex = 2) {
    Params p;
    std::copy(dst.begin(), dst.end(), p.dst);
    p.tot_len = tot_len;
    p.ifindex = ifindex;
    const int64_t r = int64_t(t.find(69)->fn(0, uint64_t(uintptr_t(&p)), sizeof p, flags, 0));
    return std::make_pair(r, p);
  };
  auto [ok, p] = lookup({10, 9, 9, 9});
  EXPECT_EQ(ok, 0);  // BPF_FIB_LKUP_RET_SUCCESS
  EXPECT_EQ(p.ifindex, 2u);
  EXPECT_EQ(p.dst[3], 254);  // the gateway is the next hop
  EXPECT_EQ(p.dmac[5], 2);
  EXPECT_EQ(p.tot_len, 1500);  // mtu_result
  EXPECT_EQ(lookup({10, 1, 2, 3}).first, 1);                 // BLACKHOLE: the longer prefix wins
  EXPECT_EQ(lookup({10, 2, 0, 1}).first, 7);                 // NO_NEIGH
  EXPECT_EQ(lookup({10, 2, 0, 1}, 4).first, 0);              // ... unless BPF_FIB_LOOKUP_SKIP_NEIGH
  auto [frag, fp] = lookup({192, 168, 1, 1}, 0, 1400);
  EXPECT_EQ(frag, 8);                                        // FRAG_NEEDED
  EXPECT_EQ(fp.tot_len, 1000);
  EXPECT_EQ(lookup({8, 8, 8, 8}).first, 4);                  // NOT_FWDED: no route
  EXPECT_EQ(lookup({10, 9, 9, 9}, 0, 100, 3).first, -ENODEV);
  EXPECT_EQ(lookup({10, 9, 9, 9}, 0, 100, 1).first, 5);      // FWD_DISABLED on the loopback
  EXPECT_EQ(lookup({10, 9, 9, 9}, 0x40).first, -EINVAL);
}

// --- the verifier: which helpers take which maps ---------------------------

std::string typed_verdict(rt::Environment& env, const bpf::ProgramType& type, const std::string& src) {
  bpf::Program p = bpf::assemble(src, "t.s");
  p.type = &type;
  return verdict(env, p);
}

TEST(MapTypes, VerifierMatchesMapsAndHelpers) {
  rt::Environment env;
  const uint64_t queue = env.create_map({"q", uint32_t(rt::MapType::Queue), 0, 4, 4, 0, 0}).handle();
  const uint64_t bloom = env.create_map({"b", uint32_t(rt::MapType::BloomFilter), 0, 4, 4, 0, 0}).handle();
  const uint64_t hash = env.create_map({"h", uint32_t(rt::MapType::Hash), 4, 4, 4, 0, 0}).handle();
  const uint64_t dev = env.create_map({"d", uint32_t(rt::MapType::DevMap), 4, 4, 4, 0, 0}).handle();
  const uint64_t cpus = env.create_map({"c", uint32_t(rt::MapType::CpuMap), 4, 4, 4, 0, 0}).handle();
  const auto& xdp = bpf::xdp_program_type();
  auto call = [](uint64_t map, int helper) {
    return fmt::format("stw [%r10-4], 0\nlddw %r1, {:#x}\nmov %r2, %r10\nadd %r2, -4\nmov %r3, 0\ncall {}\n"
                       "mov %r0, 2\nexit",
                       map, helper);
  };
  EXPECT_EQ(typed_verdict(env, xdp, call(queue, 87)), "accepted");  // push
  EXPECT_EQ(typed_verdict(env, xdp, call(queue, 88)), "accepted");  // pop
  EXPECT_EQ(typed_verdict(env, xdp, call(bloom, 89)), "accepted");  // peek
  EXPECT_EQ(typed_verdict(env, xdp, call(queue, 1)),
            "t.s: xdp: instruction 6: cannot pass map_type 22 into func map_lookup_elem#1");
  EXPECT_EQ(typed_verdict(env, xdp, call(bloom, 88)),
            "t.s: xdp: instruction 6: cannot pass map_type 30 into func map_pop_elem#88");
  EXPECT_EQ(typed_verdict(env, xdp, call(hash, 87)),
            "t.s: xdp: instruction 6: cannot pass map_type 1 into func map_push_elem#87");
  // get_stackid takes only a stack trace map, which no other helper takes;
  // only the x86-64 probe and tracing types, which run natively at a probe
  // or a trampoline, may call it (a guest's stack is Unicorn memory).
  const uint64_t stacks = env.create_map({"st", uint32_t(rt::MapType::StackTrace), 4, 64, 4, 0, 0}).handle();
  const auto& probe = bpf::probe_program_type(Arch::X86_64);
  auto stackid = [](uint64_t map) { return fmt::format("lddw %r2, {:#x}\nmov %r3, 256\ncall 27\nexit", map); };
  EXPECT_EQ(typed_verdict(env, probe, stackid(stacks)), "accepted");
  EXPECT_EQ(typed_verdict(env, probe, stackid(hash)),
            "t.s: kprobe: instruction 3: cannot pass map_type 1 into func get_stackid#27");
  EXPECT_EQ(typed_verdict(env, probe, call(stacks, 1)),
            "t.s: kprobe: instruction 6: cannot pass map_type 7 into func map_lookup_elem#1");
  EXPECT_EQ(typed_verdict(env, bpf::probe_program_type(Arch::Arm64), stackid(stacks)),
            "t.s: kprobe.arm64: instruction 3: program of this type cannot use helper get_stackid#27");
  EXPECT_EQ(typed_verdict(env, bpf::tracing_program_type(), stackid(stacks)), "accepted");
  EXPECT_EQ(typed_verdict(env, xdp, stackid(stacks)),
            "t.s: xdp: instruction 3: program of this type cannot use helper get_stackid#27");
  EXPECT_EQ(typed_verdict(env, bpf::tracing_program_type(Arch::Riscv64), stackid(stacks)),
            "t.s: tracing.riscv64: instruction 3: program of this type cannot use helper get_stackid#27");
  EXPECT_EQ(typed_verdict(env, bpf::tracing_program_type(Arch::Arm64),
                          "mov %r2, %r10\nadd %r2, -16\nmov %r3, 16\nmov %r4, 256\ncall 67\nexit"),
            "t.s: tracing.arm64: instruction 4: program of this type cannot use helper get_stack#67");
  EXPECT_EQ(typed_verdict(env, probe, "mov %r1, 10\ncall 109\nmov %r1, 10\ncall 117\nexit"), "accepted");
  // override_return writes a probe's pt_regs: the native x86-64 kprobe
  // type only, as the kernel's kprobe_prog_func_proto (not tracing).
  const std::string override = "mov %r2, -12\ncall 58\nmov %r0, 0\nexit";
  EXPECT_EQ(typed_verdict(env, probe, override), "accepted");
  EXPECT_EQ(typed_verdict(env, bpf::probe_program_type(Arch::Arm64), override),
            "t.s: kprobe.arm64: instruction 1: program of this type cannot use helper override_return#58");
  EXPECT_EQ(typed_verdict(env, bpf::tracing_program_type(), override),
            "t.s: tracing: instruction 1: program of this type cannot use helper override_return#58");
  EXPECT_EQ(typed_verdict(env, xdp, override),
            "t.s: xdp: instruction 1: program of this type cannot use helper override_return#58");
  EXPECT_EQ(typed_verdict(env, xdp, call(dev, 1)), "accepted");  // a devmap's value is readable, not writable
  EXPECT_EQ(typed_verdict(env, xdp,
                          fmt::format("stw [%r10-4], 0\nlddw %r1, {:#x}\nmov %r2, %r10\nadd %r2, -4\ncall 1\n"
                                      "jeq %r0, 0, +1\nstw [%r0+0], 1\nmov %r0, 2\nexit",
                                      dev)),
            "t.s: xdp: instruction 7: write into map forbidden, value_size=4 off=0 size=4");
  EXPECT_EQ(typed_verdict(env, xdp, call(cpus, 1)),
            "t.s: xdp: instruction 6: cannot pass map_type 16 into func map_lookup_elem#1");
  EXPECT_EQ(typed_verdict(env, xdp, fmt::format("lddw %r1, {:#x}\nmov %r2, 0\nmov %r3, 0\ncall 51\nexit", cpus)),
            "accepted");
  EXPECT_EQ(typed_verdict(env, xdp, fmt::format("lddw %r1, {:#x}\nmov %r2, 0\nmov %r3, 0\ncall 51\nexit", hash)),
            "t.s: xdp: instruction 4: cannot pass map_type 1 into func redirect_map#51");
  // pop writes its value: an unwritten stack slot is fine there, not for push.
  EXPECT_EQ(typed_verdict(env, xdp, fmt::format("lddw %r1, {:#x}\nmov %r2, %r10\nadd %r2, -8\ncall 88\nexit", queue)),
            "accepted");
  EXPECT_EQ(typed_verdict(env, xdp, fmt::format("lddw %r1, {:#x}\nmov %r2, %r10\nadd %r2, -8\nmov %r3, 0\ncall 87\nexit",
                                          queue)),
            "t.s: xdp: instruction 5: invalid indirect read from stack R2 off -8+0 size 4");
  // csum_diff: null with a size of 0, not with more.
  EXPECT_EQ(typed_verdict(env, xdp, "mov %r1, 0\nmov %r2, 0\nmov %r3, 0\nmov %r4, 0\nmov %r5, 0\ncall 28\nexit"),
            "accepted");
  EXPECT_EQ(typed_verdict(env, xdp, "mov %r1, 0\nmov %r2, 4\nmov %r3, 0\nmov %r4, 0\nmov %r5, 0\ncall 28\nexit"),
            "t.s: xdp: instruction 5: R1 type=scalar expected=fp, pkt, map_value, mem (a null R1 needs a size of 0 "
            "in R2)");
  // Per type: socket filters have no redirect or checksum replace; XDP no VLAN helpers.
  EXPECT_EQ(typed_verdict(env, bpf::socket_program_type(), "mov %r1, 1\nmov %r2, 0\ncall 23\nexit"),
            "t.s: socket: instruction 2: program of this type cannot use helper redirect#23");
  EXPECT_EQ(typed_verdict(env, xdp, "mov %r2, 0\nmov %r3, 0\ncall 18\nexit"),
            "t.s: xdp: instruction 2: program of this type cannot use helper skb_vlan_push#18");
  EXPECT_EQ(typed_verdict(env, bpf::tc_program_type(), "mov %r2, 0x81\nmov %r3, 5\ncall 18\nmov %r0, 0\nexit"),
            "accepted");
}

// bpf_spin_lock: the lock the value's BTF places (here at offset 4), one at
// a time, released on every path, no calls and no direct access while held.
TEST(MapTypes, VerifierSpinLockRules) {
  rt::Environment env;
  rt::MapSpec locked{"locked", uint32_t(rt::MapType::Array), 4, 16, 1, 0, 0};
  locked.spin_lock_offset = 4;
  const uint64_t m = env.create_map(locked).handle();
  const uint64_t plain = env.create_map({"plain", uint32_t(rt::MapType::Array), 4, 16, 1, 0, 0}).handle();
  auto prog = [](uint64_t map, const std::string& lock_at, const std::string& body, bool unlock = true) {
    return fmt::format("stw [%r10-4], 0\nlddw %r1, {:#x}\nmov %r2, %r10\nadd %r2, -4\ncall 1\njne %r0, 0, +2\n"
                       "mov %r0, 0\nexit\nmov %r6, %r0\nmov %r1, %r6\nadd %r1, {}\ncall 93\n{}{}mov %r0, 2\nexit",
                       map, lock_at, body, unlock ? "mov %r1, %r6\nadd %r1, 4\ncall 94\n" : "");
  };
  const auto& xdp = bpf::xdp_program_type();
  EXPECT_EQ(typed_verdict(env, xdp, prog(m, "4", "ldxw %r2, [%r6+0]\nadd %r2, 1\nstxw [%r6+0], %r2\n")), "accepted");
  EXPECT_EQ(typed_verdict(env, xdp, prog(m, "4", "", false)), "t.s: xdp: instruction 14: bpf_spin_unlock is missing");
  EXPECT_EQ(typed_verdict(env, xdp, prog(m, "4", "call 7\n")),
            "t.s: xdp: instruction 13: function calls are not allowed while holding a lock");
  EXPECT_EQ(typed_verdict(env, xdp, prog(m, "0", "")),
            "t.s: xdp: instruction 12: R1 off 0 doesn't point to 'struct bpf_spin_lock' that is at 4");
  EXPECT_EQ(typed_verdict(env, xdp, prog(plain, "4", "")),
            "t.s: xdp: instruction 12: map 'plain' has no valid bpf_spin_lock");
  EXPECT_EQ(typed_verdict(env, xdp, prog(m, "4", "stw [%r6+4], 0\n")),
            "t.s: xdp: instruction 13: bpf_spin_lock cannot be accessed directly by load/store");
  // A second lock is a call while holding one, as the kernel words it.
  EXPECT_EQ(typed_verdict(env, xdp, prog(m, "4", "mov %r1, %r6\nadd %r1, 4\ncall 93\n")),
            "t.s: xdp: instruction 15: function calls are not allowed while holding a lock");
  EXPECT_EQ(typed_verdict(env, xdp, fmt::format("stw [%r10-4], 0\nlddw %r1, {:#x}\nmov %r2, %r10\nadd %r2, -4\n"
                                                "call 1\njne %r0, 0, +2\nmov %r0, 0\nexit\nmov %r1, %r0\n"
                                                "add %r1, 4\ncall 94\nmov %r0, 2\nexit",
                                                m)),
            "t.s: xdp: instruction 11: bpf_spin_unlock without taking a lock");
}

// The ELF loader finds each value's struct bpf_spin_lock in its BTF.
TEST(MapTypes, SpinLockOffsetFromBtf) {
  rt::Environment env;
  bpf::ElfProgram elf = env.load_elf(object("xdp_spin"));
  EXPECT_EQ(env.find_map("counters")->spec().spin_lock_offset, 4);  // after a u32
  EXPECT_EQ(env.find_map("flows")->spec().spin_lock_offset, 8);     // after a u64
  rt::Environment other;
  other.load_elf(object("xdp_maps"));
  EXPECT_EQ(other.find_map("lru")->spec().spin_lock_offset, -1);
}

// An update copies a value but its lock word, as the kernel's
// copy_map_value: a lock another thread holds stays held (array, hash
// element replaced), a new hash element starts unlocked.
TEST(MapTypes, UpdatesLeaveTheLockWord) {
  for (uint32_t type : {uint32_t(rt::MapType::Array), uint32_t(rt::MapType::Hash)}) {
    SCOPED_TRACE(rt::map_type_name(type));
    rt::MapSpec spec{"m", type, 4, 16, 4, 0, 0};
    spec.spin_lock_offset = 4;
    std::unique_ptr<rt::Map> m = rt::create_map(spec);
    const uint32_t key = 1;
    uint8_t value[16];
    std::memset(value, 0xab, sizeof value);
    ASSERT_EQ(m->update(&key, value, 0), 0);
    auto* stored = static_cast<uint8_t*>(m->lookup(&key));
    ASSERT_NE(stored, nullptr);
    uint32_t lock;
    std::memcpy(&lock, stored + 4, 4);
    EXPECT_EQ(lock, 0u);  // the array's zeroed element, the hash's fresh one
    const uint32_t held = 1;
    std::memcpy(stored + 4, &held, 4);  // another thread holds it
    std::memset(value, 0xcd, sizeof value);
    ASSERT_EQ(m->update(&key, value, 0), 0);
    stored = static_cast<uint8_t*>(m->lookup(&key));
    std::memcpy(&lock, stored + 4, 4);
    EXPECT_EQ(lock, held);
    EXPECT_EQ(stored[0], 0xcd);
    EXPECT_EQ(stored[3], 0xcd);
    EXPECT_EQ(stored[8], 0xcd);
    EXPECT_EQ(stored[15], 0xcd);
  }
}

// --- what a test run records ----------------------------------------------

class RunRecords : public ::testing::TestWithParam<const Engine*> {};

TEST_P(RunRecords, RedirectTargetsAndTunnelKey) {
  const Engine& engine = *GetParam();
  {
    rt::Environment env;
    bpf::ElfProgram elf = env.load_elf(object("xdp_maps"));
    elf.program.type = elf.type;
    const uint32_t one = 1;
    ASSERT_EQ(env.find_map("devs")->update(&one, &one, 0), 0);
    const rt::HelperTable h = rt::standard_helpers(env);
    rt::TestRunInput in;
    in.data = Bytes(12, 0x11);
    in.data.insert(in.data.end(), {0x08, 0x00, 7, 0, 0, 0, 0, 1});  // part 7, key 1
    rt::TestRunOutput out = rt::test_run(engine, elf.program, h, in);
    EXPECT_EQ(out.retval, rt::kXdpRedirect);
    ASSERT_TRUE(out.redirect);
    EXPECT_EQ(out.redirect->kind, rt::RedirectTarget::Kind::Ifindex);  // bpf_redirect(1, 0) came last
    EXPECT_EQ(out.redirect->ifindex, 1u);
    in.data.back() = 2;  // an empty slot: the fallback, no target
    out = rt::test_run(engine, elf.program, h, in);
    EXPECT_EQ(out.retval, 2u);
    EXPECT_FALSE(out.redirect);
  }
  rt::Environment env;
  bpf::ElfProgram elf = env.load_elf(object("tc_helpers"));
  elf.program.type = elf.type;
  const rt::HelperTable h = rt::standard_helpers(env);
  rt::TestRunInput in;
  in.data = Bytes(14, 0);
  in.data[12] = 0x08;
  in.data.resize(60, 0);
  in.data[14] = 0x45;
  in.data.back() = 2;  // part 2: tunnel keys and redirects
  const rt::TestRunOutput out = rt::test_run(engine, elf.program, h, in);
  EXPECT_EQ(out.retval, rt::kTcActRedirect);
  ASSERT_TRUE(out.redirect);
  EXPECT_EQ(out.redirect->ifindex, 1u);
  EXPECT_EQ(out.redirect->flags, 0u);
  ASSERT_TRUE(out.tunnel_key);
  ASSERT_EQ(out.tunnel_key->size(), 44u);
  EXPECT_EQ((*out.tunnel_key)[0], 5);      // tunnel_id
  EXPECT_EQ((*out.tunnel_key)[24], 3);     // tunnel_label (the last key set, with BPF_F_TUNINFO_IPV6)
  ASSERT_EQ(out.clones.size(), 1u);        // bpf_clone_redirect's copy
  EXPECT_EQ(out.clones[0].ifindex, 1u);
  EXPECT_EQ(out.clones[0].packet, in.data);
}

INSTANTIATE_TEST_SUITE_P(Engines, RunRecords, ::testing::ValuesIn(all_engines()), engine_name);

}  // namespace
}  // namespace sb::test
