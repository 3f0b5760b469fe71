// USDT probes (<sys/sdt.h>) in this process, attached through the C API
// (sb_program_attach with SB_ATTACH_USDT, sb_vm_attach_object with
// "usdt/PATH:PROVIDER:NAME" sections) with programs written against
// libbpf's <bpf/usdt.bpf.h> (probes/usdt.bpf.c), on probe sites built by
// gcc and clang at -O0 and -O2 (probes/usdt_targets.c), so the arguments
// are in registers, in stack slots and constants as each compiler places
// them.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <typeinfo>
#include <vector>

#include "runtime/api/springboard.h"
#include "usdt_expected.h"

extern "C" {
#define SB_USDT_VARIANT(tag)                                 \
  long sb_usdt_##tag##_fire_args(int);                       \
  int sb_usdt_##tag##_fire_guarded(long);                    \
  long sb_usdt_##tag##_fire_twice(long);                     \
  void sb_usdt_##tag##_fire_tail(long);                      \
  long sb_usdt_##tag##_fire_global(long);                    \
  extern unsigned short sb_usdt_##tag##_guarded_semaphore;   \
  extern long sb_usdt_##tag##_table[8];
#include "usdt_variants.h"
#undef SB_USDT_VARIANT
}

namespace {

struct Variant {
  const char* tag;
  long (*args)(int);
  int (*guarded)(long);
  long (*twice)(long);
  void (*tail)(long);
  long (*global)(long);
  unsigned short* semaphore;
  long* table;
  std::string probe(const char* name) const { return std::string("sb_usdt_") + tag + ":" + name; }
};
const Variant kVariants[] = {
#define SB_USDT_VARIANT(tag)                                                                    \
  {#tag, sb_usdt_##tag##_fire_args, sb_usdt_##tag##_fire_guarded, sb_usdt_##tag##_fire_twice, sb_usdt_##tag##_fire_tail, sb_usdt_##tag##_fire_global, \
   &sb_usdt_##tag##_guarded_semaphore, sb_usdt_##tag##_table},
#include "usdt_variants.h"
#undef SB_USDT_VARIANT
};

const std::string kObject = std::string(SB_PROBES_DIR) + "/usdt.bpf.o";

template <typename F, typename... A>
auto call(F* f, A... a) {
  F* volatile p = f;
  return p(a...);
}

class Usdt : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sb_vm_create(nullptr, &vm_), SB_OK);
    ASSERT_EQ(sb_vm_load_object(vm_, kObject.c_str(), programs_, 8, &count_), SB_OK) << sb_vm_last_error(vm_);
  }
  void TearDown() override { sb_vm_destroy(vm_); }
  sb_program* program(const char* name) {
    for (size_t i = 0; i < count_; ++i)
      if (std::string(sb_program_name(programs_[i])).find(name) != std::string::npos) return programs_[i];
    ADD_FAILURE() << "no program " << name;
    return nullptr;
  }
  sb_status attach(sb_program* p, const std::string& probe, sb_link** out, uint64_t cookie = 0) {
    sb_attach_opts o{};
    o.kind = SB_ATTACH_USDT;
    o.symbol = probe.c_str();
    o.cookie = cookie;
    return sb_program_attach(p, &o, out);
  }
  long seen(uint32_t key) {
    sb_map* m = nullptr;
    long v = 0;
    EXPECT_EQ(sb_vm_find_map(vm_, "seen", &m), SB_OK);
    EXPECT_EQ(sb_map_lookup(m, &key, sizeof key, &v, sizeof v), SB_OK);
    return v;
  }
  std::map<long, uint64_t> values() {
    sb_map* m = nullptr;
    std::map<long, uint64_t> out;
    EXPECT_EQ(sb_vm_find_map(vm_, "values", &m), SB_OK);
    sb_map_for_each(
        m,
        [](void* user, const void* k, size_t, const void* v, size_t, size_t) {
          (*static_cast<std::map<long, uint64_t>*>(user))[*static_cast<const long*>(k)] =
              *static_cast<const uint64_t*>(v);
        },
        &out, nullptr);
    return out;
  }
  // sb_vm_attach_object in a VM of its own (the object's maps are created
  // once per VM, and the fixture's VM has loaded it): the links it made.
  std::vector<sb_link*> attach_object_in_a_new_vm() {
    sb_vm_destroy(vm_);
    EXPECT_EQ(sb_vm_create(nullptr, &vm_), SB_OK);
    sb_link* links[4] = {};
    size_t n = 0;
    EXPECT_EQ(sb_vm_attach_object(vm_, kObject.c_str(), links, 4, &n), SB_OK) << sb_vm_last_error(vm_);
    return {links, links + n};
  }
  sb_vm* vm_ = nullptr;
  sb_program* programs_[8] = {};
  size_t count_ = 0;
};

// Every argument kind reads what the code passed: a register of each
// width (gcc -O2), stack slots (-O0, clang), the constant -5 ($-5) and an
// address; signed narrow values are sign-extended, unsigned ones not.
TEST_F(Usdt, ArgumentsOfEveryKindOnEveryBuild) {
  sb_program* p = program("on_args");
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(v.tag);
    sb_link* l = nullptr;
    ASSERT_EQ(attach(p, v.probe("args"), &l, 0xc00c1e), SB_OK) << sb_vm_last_error(vm_);
    for (int i : {3, 7}) {
      EXPECT_EQ(call(v.args, i), sb::test::fire_args_result(i));
      sb::test::expect_on_args([this](uint32_t k) { return seen(k); }, i, reinterpret_cast<long>(v.table), 0xc00c1e);
    }
    sb_stats s{};
    ASSERT_EQ(sb_link_stats(l, &s), SB_OK);
    EXPECT_EQ(s.run_count, 2u);
    EXPECT_NE(std::string(sb_link_name(l)).find("usdt sb_usdt_"), std::string::npos) << sb_link_name(l);
    sb_link_destroy(l);
    call(v.args, 5);
    EXPECT_EQ(seen(0), 7);  // detached
  }
}

// A probe's semaphore counts the links on it: the code's `if (semaphore)`
// fires the probe only while one is attached.
TEST_F(Usdt, SemaphoreCountsTheLinks) {
  sb_program* p = program("on_value");
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(v.tag);
    EXPECT_EQ(*v.semaphore, 0);
    EXPECT_EQ(call(v.guarded, 1L), 0);
    sb_link* a = nullptr;
    sb_link* b = nullptr;
    ASSERT_EQ(attach(p, v.probe("guarded"), &a), SB_OK) << sb_vm_last_error(vm_);
    EXPECT_EQ(*v.semaphore, 1);
    ASSERT_EQ(attach(p, v.probe("guarded"), &b), SB_OK) << sb_vm_last_error(vm_);
    EXPECT_EQ(*v.semaphore, 2);
    EXPECT_EQ(call(v.guarded, 42L), 1);
    sb_link_destroy(a);
    EXPECT_EQ(*v.semaphore, 1);
    EXPECT_EQ(call(v.guarded, 42L), 1);
    sb_link_destroy(b);
    EXPECT_EQ(*v.semaphore, 0);
    EXPECT_EQ(call(v.guarded, 42L), 0);
  }
  // Each build: two links saw the first call, one the second.
  EXPECT_EQ(values()[42], 3u * (sizeof kVariants / sizeof kVariants[0]));
}

// A probe with two sites (an inlined function used twice) is one link on
// both, each site with its own spec; its statistics add up.
TEST_F(Usdt, EverySiteOfAProbe) {
  sb_program* p = program("on_value");
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(v.tag);
    sb_link* l = nullptr;
    ASSERT_EQ(attach(p, v.probe("twice"), &l), SB_OK) << sb_vm_last_error(vm_);
    EXPECT_NE(std::string(sb_link_name(l)).find("(2 sites)"), std::string::npos) << sb_link_name(l);
    EXPECT_EQ(call(v.twice, 100L), 300);
    sb_stats s{};
    ASSERT_EQ(sb_link_stats(l, &s), SB_OK);
    EXPECT_EQ(s.run_count, 2u);
    sb_link_destroy(l);
  }
  const size_t builds = sizeof kVariants / sizeof kVariants[0];
  EXPECT_EQ(values()[100], builds);
  EXPECT_EQ(values()[101], builds);
}

// A static variable as the argument ("-8@sym(%rip)" from gcc -O2, which
// libbpf 1.1 refuses): read from the symbol's address in the object.
TEST_F(Usdt, AStaticVariableArgumentOnEveryBuild) {
  sb_program* p = program("on_value");
  long base = 0;
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(v.tag);
    sb_link* l = nullptr;
    ASSERT_EQ(attach(p, v.probe("global"), &l), SB_OK) << sb_vm_last_error(vm_);
    base += 5000;
    EXPECT_EQ(call(v.global, base), 2 * base);
    sb_link_destroy(l);
    EXPECT_EQ(values()[base], 1u) << "the variable's value";
  }
}

// Links give their spec slots back: more attach/detach cycles than
// __bpf_usdt_specs has slots (256) all succeed.
TEST_F(Usdt, SpecSlotsAreReused) {
  sb_program* p = program("on_value");
  for (int i = 0; i < 300; ++i) {
    sb_link* l = nullptr;
    ASSERT_EQ(attach(p, kVariants[0].probe("twice"), &l), SB_OK) << i << ": " << sb_vm_last_error(vm_);
    sb_link_destroy(l);
  }
}

// "usdt/PATH:PROVIDER:NAME" sections attach by themselves.
TEST_F(Usdt, ObjectAttachesBySection) {
  const std::vector<sb_link*> links = attach_object_in_a_new_vm();
  ASSERT_EQ(links.size(), 2u);  // on_twice_by_section, on_throw; the bare "usdt" ones are attached by hand
  EXPECT_EQ(call(sb_usdt_gccO2_fire_twice, 5L), 15);
  EXPECT_EQ(values()[1005], 1u);
  EXPECT_EQ(values()[1006], 1u);
  for (sb_link* l : links) sb_link_destroy(l);
}

// A system library's probe: libstdc++'s libstdcxx:throw (in __cxa_throw,
// "8@%rdi 8@%rsi"), attached by the section "usdt/libstdc++.so.6:...": the
// program sees the thrown object and its std::type_info.
TEST_F(Usdt, LibstdcxxThrowSeesTheException) {
  const std::vector<sb_link*> links = attach_object_in_a_new_vm();
  ASSERT_EQ(links.size(), 2u);
  int caught = 0;
  try {
    throw 4242;
  } catch (int v) {
    caught = v;
  }
  EXPECT_EQ(caught, 4242);
  EXPECT_NE(seen(0), 0);
  EXPECT_EQ(seen(1), reinterpret_cast<long>(&typeid(int)));
  EXPECT_EQ(seen(2), 4242);
  EXPECT_EQ(seen(3), 2);
  for (sb_link* l : links) sb_link_destroy(l);
}

// A site right before a function's last `ret`: where the 5-byte jump
// does not fit before the next function (no padding to take), the probe
// takes a breakpoint there, as the kernel's int3 uprobes do (the link's
// name says so); either way it fires on every build, and once detached
// the code runs on unhooked.
TEST_F(Usdt, ASiteAtAFunctionsEndFiresOnEveryBuild) {
  sb_program* p = program("on_value");
  size_t breakpoints = 0;
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(v.tag);
    sb_link* l = nullptr;
    ASSERT_EQ(attach(p, v.probe("tail"), &l), SB_OK) << sb_vm_last_error(vm_);
    breakpoints += std::string(sb_link_name(l)).find("1 by breakpoint") != std::string::npos;
    call(v.tail, 7000L);
    call(v.tail, 7000L);
    sb_stats s{};
    ASSERT_EQ(sb_link_stats(l, &s), SB_OK);
    EXPECT_EQ(s.run_count, 2u);
    sb_link_destroy(l);
    call(v.tail, 7000L);
  }
  EXPECT_EQ(values()[7000], 2 * (sizeof kVariants / sizeof kVariants[0]));
  RecordProperty("breakpoints", int(breakpoints));
}

TEST_F(Usdt, BadProbesAreClearErrors) {
  sb_program* p = program("on_value");
  sb_link* l = nullptr;
  EXPECT_EQ(attach(p, "sb_usdt_gccO2:no_such_probe", &l), SB_ERR_NOT_FOUND);
  EXPECT_NE(std::string(sb_vm_last_error(vm_)).find("no USDT probe sb_usdt_gccO2:no_such_probe"), std::string::npos)
      << sb_vm_last_error(vm_);
  EXPECT_EQ(attach(p, "libc.so.6:sb_usdt_gccO2:args", &l), SB_ERR_NOT_FOUND);  // in another object
  EXPECT_EQ(attach(p, "just_a_name", &l), SB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(sb_vm_last_error(vm_)).find("PROVIDER:NAME"), std::string::npos) << sb_vm_last_error(vm_);
  EXPECT_EQ(l, nullptr);
}

}  // namespace
