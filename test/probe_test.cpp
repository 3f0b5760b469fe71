// Probes on functions of this process (x86-64): uprobes at a function's
// entry and at an instruction inside it, uretprobes, attached through the
// C API (sb_program_attach, sb_vm_attach_object) with programs written as
// libbpf-bootstrap's uprobe.bpf.c writes them (probes/uprobe.bpf.c,
// clang -target bpf -D__TARGET_ARCH_x86), on targets built by gcc and
// clang at -O0 and -O2 with and without frame pointers (probes/targets.c).
#include <capstone/capstone.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <dlfcn.h>
#include <setjmp.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <climits>
#include <functional>
#include <iterator>
#include <memory>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "runtime/api/springboard.h"

#ifdef SB_HAVE_LIBBPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#endif

extern "C" {
#define SB_VARIANT(tag, text)                                 \
  long sb_probe_##tag##_add(long, long);                      \
  long sb_probe_##tag##_fact(long);                           \
  long sb_probe_##tag##_mix(long, long, long, long, long, long); \
  long sb_probe_##tag##_depth(long);
#include "variants.h"
#undef SB_VARIANT

// The target of the object's "uprobe//proc/self/exe:sb_probe_by_section".
__attribute__((noinline, used)) long sb_probe_by_section(long a, long b, long c, long d, long e, long f) {
  long r = a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f;
  __asm__ volatile("" : "+r"(r));
  return r;
}

// Returns in xmm0 (and takes its argument there).
__attribute__((noinline, used)) double sb_probe_double(double x) {
  double r = x * 2.5;
  __asm__ volatile("" : "+x"(r));
  return r;
}

// Leaves by longjmp when asked: its uretprobe's return never comes.
__attribute__((noinline, used)) long sb_probe_jumper(jmp_buf* env, long jump) {
  if (jump) longjmp(*env, 1);
  long r = 7;
  __asm__ volatile("" : "+r"(r));
  return r;
}

// The target of the object's "fentry/sb_probe_fentry_target" and "fexit/...".
__attribute__((noinline, used)) long sb_probe_fentry_target(long a, int b) {
  long r = a * 3 + b;
  __asm__ volatile("" : "+r"(r));
  return r;
}

// A call chain with frame pointers for bpf_get_stack: outer -> middle ->
// leaf, the probe at leaf's entry (where bp is still middle's frame).
extern "C" {
__attribute__((noinline, used, optimize("no-omit-frame-pointer"))) long sb_probe_stack_leaf(long x) {
  __asm__ volatile("" : "+r"(x));
  return x + 1;
}
__attribute__((noinline, used, optimize("no-omit-frame-pointer"))) long sb_probe_stack_middle(long x) {
  long r = sb_probe_stack_leaf(x) * 2;
  __asm__ volatile("" : "+r"(r));
  return r;
}
__attribute__((noinline, used, optimize("no-omit-frame-pointer"))) long sb_probe_stack_outer(long x) {
  long r = sb_probe_stack_middle(x) + 3;
  __asm__ volatile("" : "+r"(r));
  return r;
}
// Two call sites of outer, for stack ids that differ only there.
__attribute__((noinline, used, optimize("no-omit-frame-pointer"))) long sb_probe_stack_site_a(long x) {
  long r = sb_probe_stack_outer(x);
  __asm__ volatile("" : "+r"(r));
  return r;
}
__attribute__((noinline, used, optimize("no-omit-frame-pointer"))) long sb_probe_stack_site_b(long x) {
  long r = sb_probe_stack_outer(x);
  __asm__ volatile("" : "+r"(r));
  return r;
}
}

// The same chain for the kernel's uprobe (GetStackidAgreesWithTheKernel):
// a kernel uprobe sees only the executable's file page, which stays the
// code only until Springboard patches a function in it (the page becomes
// the process's own copy), so leaf is alone on its page.
#define SB_ORACLE_FN \
  __attribute__((noinline, used, optimize("no-omit-frame-pointer"), section(".text.sb_oracle"), aligned(4096)))
SB_ORACLE_FN long sb_probe_oracle_leaf(long x) {
  __asm__ volatile("" : "+r"(x));
  return x + 1;
}
SB_ORACLE_FN long sb_probe_oracle_middle(long x) {
  long r = sb_probe_oracle_leaf(x) * 2;
  __asm__ volatile("" : "+r"(r));
  return r;
}
SB_ORACLE_FN long sb_probe_oracle_outer(long x) {
  long r = sb_probe_oracle_middle(x) + 3;
  __asm__ volatile("" : "+r"(r));
  return r;
}
#undef SB_ORACLE_FN

__attribute__((noinline, used)) long sb_probe_signal_target(long x) {
  __asm__ volatile("" : "+r"(x));
  return x * 3;
}

long sb_probe_fallible_runs = 0;  // how often sb_probe_fallible's body ran
__attribute__((noinline, used)) long sb_probe_fallible(long x) {
  __asm__ volatile("" : "+r"(x));
  ++sb_probe_fallible_runs;
  return x * 2;
}

__attribute__((noinline, used)) long sb_probe_read_target(const char* s, const long* p) {
  long r = *p + long(s[0]);
  __asm__ volatile("" : "+r"(r));
  return r;
}

// long sb_probe_regs_target(long seed): every general and vector register
// and the flags (DF set for odd seeds, the arithmetic ones from a compare)
// made from the seed, a 5-byte nop at sb_probe_regs_site where the probe
// goes, then a checksum of them all: what a probe that loses any of them
// changes.
__asm__(R"(
  .text
  .globl sb_probe_regs_target
  .type sb_probe_regs_target, @function
sb_probe_regs_target:
  push %rbx
  push %rbp
  push %r12
  push %r13
  push %r14
  push %r15
  lea 0x1(%rdi), %rax
  lea 0x2(%rdi), %rbx
  lea 0x3(%rdi), %rcx
  lea 0x4(%rdi), %rdx
  lea 0x5(%rdi), %rsi
  lea 0x6(%rdi), %rbp
  lea 0x7(%rdi), %r8
  lea 0x8(%rdi), %r9
  lea 0x9(%rdi), %r10
  lea 0xa(%rdi), %r11
  lea 0xb(%rdi), %r12
  lea 0xc(%rdi), %r13
  lea 0xd(%rdi), %r14
  lea 0xe(%rdi), %r15
  movq %rax, %xmm0
  movq %rbx, %xmm1
  movq %rcx, %xmm2
  movq %rdx, %xmm3
  movq %rsi, %xmm4
  movq %rbp, %xmm5
  movq %r8, %xmm6
  movq %r9, %xmm7
  movq %r10, %xmm8
  movq %r11, %xmm9
  movq %r12, %xmm10
  movq %r13, %xmm11
  movq %r14, %xmm12
  movq %r15, %xmm13
  movq %rdi, %xmm14
  movq %rax, %xmm15
  pshufd $0x4e, %xmm15, %xmm15
  test $1, %dil
  jz 1f
  std
1:
  cmp $0x1234, %rdi
  .globl sb_probe_regs_site
sb_probe_regs_site:
  nopl 0(%rax, %rax, 1)
  pushfq
  cld
  .irp r, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15
  imul $31, %rax, %rax
  add %\r, %rax
  .endr
  .irp x, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
  imul $31, %rax, %rax
  movq %xmm\x, %r11
  add %r11, %rax
  pextrq $1, %xmm\x, %r11
  add %r11, %rax
  .endr
  pop %r11
  and $0xcd5, %r11
  shl $40, %r11
  xor %r11, %rax
  pop %r15
  pop %r14
  pop %r13
  pop %r12
  pop %rbp
  pop %rbx
  ret
  .size sb_probe_regs_target, . - sb_probe_regs_target
)");
long sb_probe_regs_target(long seed);

// long sb_probe_loop(long n): n rounds of a loop whose head
// (sb_probe_loop_head) both the entry falls into and the back-edge, an
// 8-bit jnz, jumps to; a probe there fires once per round.
__asm__(R"(
  .text
  .globl sb_probe_loop
  .type sb_probe_loop, @function
sb_probe_loop:
  xor %eax, %eax
  .globl sb_probe_loop_head
sb_probe_loop_head:
  add $3, %rax
  dec %rdi
  jnz sb_probe_loop_head
  ret
  .size sb_probe_loop, . - sb_probe_loop
)");
long sb_probe_loop(long n);
extern const char sb_probe_loop_head[];
extern const char sb_probe_regs_site[];
}

namespace {

struct Variant {
  const char* tag;
  const char* flags;
  long (*add)(long, long);
  long (*fact)(long);
  long (*mix)(long, long, long, long, long, long);
  long (*depth)(long);
  std::string symbol(const char* fn) const { return std::string("sb_probe_") + tag + "_" + fn; }
};
const Variant kVariants[] = {
#define SB_VARIANT(tag, text) \
  {#tag, text, sb_probe_##tag##_add, sb_probe_##tag##_fact, sb_probe_##tag##_mix, sb_probe_##tag##_depth},
#include "variants.h"
#undef SB_VARIANT
};

// As probes/uprobe.bpf.c.
struct Seen {
  uint64_t entries, returns;
  int64_t a, b, ret;
  uint64_t ip, sp, ret_ip, ret_sp;
  int64_t args[6];
  uint64_t cookie;
};

const std::string kObject = std::string(SB_PROBES_DIR) + "/uprobe.bpf.o";

// Calls through a volatile pointer so the compiler keeps each call.
template <typename F, typename... A>
long call(F* f, A... a) {
  F* volatile p = f;
  return p(a...);
}

class Probes : public ::testing::Test {
 protected:
  void SetUp() override {
    sb_vm_options o{};
    o.flags = SB_VM_NO_STATS;
    ASSERT_EQ(sb_vm_create(&o, &vm_), SB_OK);
  }
  void TearDown() override { sb_vm_destroy(vm_); }
  // The object's program of that function (all loaded once, sharing the map).
  sb_program* load(const char*, const char* function) {
    if (!count_) EXPECT_EQ(sb_vm_load_object(vm_, kObject.c_str(), programs_, 16, &count_), SB_OK)
        << sb_vm_last_error(vm_);
    for (size_t i = 0; i < count_; ++i)
      if (std::string(sb_program_name(programs_[i])).find(function) != std::string::npos) return programs_[i];
    ADD_FAILURE() << "no program " << function;
    return nullptr;
  }
  sb_program* programs_[16] = {};
  size_t count_ = 0;
  Seen seen(uint32_t key = 0) {
    sb_map* m = nullptr;
    Seen s{};
    EXPECT_EQ(sb_vm_find_map(vm_, "seen", &m), SB_OK);
    EXPECT_EQ(sb_map_lookup(m, &key, sizeof key, &s, sizeof s), SB_OK);
    return s;
  }
  void reset() {
    sb_map* m = nullptr;
    Seen s{};
    ASSERT_EQ(sb_vm_find_map(vm_, "seen", &m), SB_OK);
    for (uint32_t k = 0; k < 3; ++k) ASSERT_EQ(sb_map_update(m, &k, sizeof k, &s, sizeof s, SB_UPDATE_ANY), SB_OK);
  }
  sb_link* attach(sb_program* p, sb_attach_kind kind, const std::string& symbol, uint64_t offset = 0,
                  uint64_t cookie = 0) {
    sb_attach_opts o{};
    o.kind = kind;
    o.symbol = symbol.c_str();
    o.offset = offset;
    o.cookie = cookie;
    sb_link* l = nullptr;
    EXPECT_EQ(sb_program_attach(p, &o, &l), SB_OK) << sb_vm_last_error(vm_);
    return l;
  }
  // Runs the program of `function` as a uprobe at the entry of `symbol`
  // during one call of `call`.
  void probe_during(const char* function, const char* symbol, const std::function<void()>& call) {
    sb_link* l = attach(load("uprobe", function), SB_ATTACH_UPROBE, symbol, 0, 0);
    ASSERT_TRUE(l);
    call();
    sb_link_destroy(l);
  }
  // Element 0 of the array map `name` (a program's results).
  template <typename T>
  T result(const char* name) {
    T value{};
    sb_map* m = nullptr;
    EXPECT_EQ(sb_vm_find_map(vm_, name, &m), SB_OK);
    const uint32_t key = 0;
    EXPECT_EQ(sb_map_lookup(m, &key, sizeof key, &value, sizeof value), SB_OK) << sb_vm_last_error(vm_);
    return value;
  }
  sb_vm* vm_ = nullptr;
};

// The function symbol `ip` is in ("" when none).
std::string symbol_at(uint64_t ip) {
  Dl_info info{};
  if (!dladdr(reinterpret_cast<void*>(ip), &info) || !info.dli_sname) return "";
  return info.dli_sname;
}

// One call of outer -> middle -> leaf.
void call_outer() {
  long (*volatile outer)(long) = &sb_probe_stack_outer;
  EXPECT_EQ(outer(4), 13);
}

// The offset of the second instruction of `f`.
uint64_t second_instruction(const void* f) {
  csh h;
  EXPECT_EQ(cs_open(CS_ARCH_X86, CS_MODE_64, &h), CS_ERR_OK);
  cs_insn* insn = nullptr;
  const size_t n = cs_disasm(h, static_cast<const uint8_t*>(f), 16, reinterpret_cast<uint64_t>(f), 1, &insn);
  const uint64_t size = n ? insn[0].size : 0;
  if (n) cs_free(insn, n);
  cs_close(&h);
  return size;
}

TEST_F(Probes, EntryAndReturnSeeArgumentsAndResultOnEveryBuild) {
  sb_program* up = load("uprobe", "uprobe_add");
  sb_program* ret = load("uretprobe", "uretprobe_add");
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(v.flags);
    reset();
    sb_link* a = attach(up, SB_ATTACH_UPROBE, v.symbol("add"));
    sb_link* r = attach(ret, SB_ATTACH_URETPROBE, v.symbol("add"));
    ASSERT_TRUE(a && r);
    EXPECT_EQ(call(v.add, 40L, 2L), 42);
    EXPECT_EQ(call(v.add, -7L, 3L), -4);
    const Seen s = seen();
    EXPECT_EQ(s.entries, 2u);
    EXPECT_EQ(s.returns, 2u);
    EXPECT_EQ(s.a, -7);
    EXPECT_EQ(s.b, 3);
    EXPECT_EQ(s.ret, -4);
    EXPECT_EQ(s.ip, reinterpret_cast<uint64_t>(v.add));  // PT_REGS_IP: the probed instruction
    EXPECT_EQ(s.ret_sp, s.sp + 8);                        // after the return popped its address
    EXPECT_NE(s.ret_ip, 0u);                              // where it returned to, in call()
    sb_link_destroy(a);
    sb_link_destroy(r);
    EXPECT_EQ(call(v.add, 1L, 2L), 3);
    EXPECT_EQ(seen().entries, 2u);  // detached
  }
}

TEST_F(Probes, ProbeInsideAFunctionKeepsEveryRegister) {
  sb_program* up = load("uprobe", "uprobe_add");
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(v.flags);
    reset();
    const uint64_t off = second_instruction(reinterpret_cast<const void*>(v.mix));
    sb_link* a = attach(up, SB_ATTACH_UPROBE, v.symbol("mix"), off);
    ASSERT_TRUE(a);
    for (long i = 0; i < 10; ++i) EXPECT_EQ(call(v.mix, i, 2L, 3L, 4L, 5L, 6L), i - 2 + 12 - 5 + 6);
    const Seen s = seen();
    EXPECT_EQ(s.entries, 10u);
    EXPECT_EQ(s.ip, reinterpret_cast<uint64_t>(v.mix) + off);
    sb_link_destroy(a);
  }
}

TEST_F(Probes, RecursionSeesEveryLevelReturn) {
  sb_program* up = load("uprobe", "uprobe_add");
  sb_program* ret = load("uretprobe", "uretprobe_add");
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(v.flags);
    reset();
    sb_link* a = attach(up, SB_ATTACH_UPROBE, v.symbol("fact"));
    sb_link* r = attach(ret, SB_ATTACH_URETPROBE, v.symbol("fact"));
    EXPECT_EQ(call(v.fact, 10L), 3628800);
    const Seen s = seen();
    EXPECT_EQ(s.entries, s.returns);
    EXPECT_GE(s.entries, 1u);
    EXPECT_EQ(s.ret, 3628800);  // the outermost return comes last
    sb_link_destroy(a);
    sb_link_destroy(r);
  }
}

// Every register, vector register and flag the probed code had is what it
// has after the probe: with a program that calls no helper (the vector
// registers are then not saved: nothing the probe runs touches them) and
// with one that does.
TEST_F(Probes, EveryRegisterAndFlagSurvives) {
  constexpr long kSeeds[] = {0, 1, 2, 3, 0x1233, 0x1234, 0x1235, -1, -2, 0x7fffffffffffffff, INT64_MIN};
  std::vector<long> plain;
  for (long s : kSeeds) plain.push_back(call(sb_probe_regs_target, s));
  const uint64_t off = uint64_t(sb_probe_regs_site - reinterpret_cast<const char*>(&sb_probe_regs_target));
  for (const char* source : {"mov %r0, 0\nexit", "call 5\nmov %r0, 0\nexit"}) {
    SCOPED_TRACE(source);
    sb_program* p = nullptr;
    ASSERT_EQ(sb_vm_load_asm(vm_, "regs", source, &p), SB_OK) << sb_vm_last_error(vm_);
    sb_link* l = attach(p, SB_ATTACH_UPROBE, "sb_probe_regs_target", off);
    ASSERT_TRUE(l);
    sb_link* r = attach(p, SB_ATTACH_URETPROBE, "sb_probe_regs_target");  // and the return landing's
    ASSERT_TRUE(r);
    for (size_t i = 0; i < std::size(kSeeds); ++i) EXPECT_EQ(call(sb_probe_regs_target, kSeeds[i]), plain[i]) << i;
    sb_stats st{};
    ASSERT_EQ(sb_link_stats(l, &st), SB_OK);
    sb_link_destroy(l);
    sb_link_destroy(r);
  }
}

// A probe at a loop's head fires on every round, the back-edge included
// (it is not re-aimed at the relocated copy, as an fentry's would be).
TEST_F(Probes, LoopHeadFiresEveryRound) {
  sb_program* up = load("uprobe", "uprobe_add");
  reset();
  const uint64_t off = uint64_t(sb_probe_loop_head - reinterpret_cast<const char*>(&sb_probe_loop));
  sb_link* l = attach(up, SB_ATTACH_UPROBE, "sb_probe_loop", off);
  ASSERT_TRUE(l);
  EXPECT_EQ(call(sb_probe_loop, 10L), 30);
  EXPECT_EQ(call(sb_probe_loop, 1L), 3);
  EXPECT_EQ(seen().entries, 11u);
  EXPECT_EQ(seen().ip, reinterpret_cast<uint64_t>(sb_probe_loop_head));
  sb_link_destroy(l);
  EXPECT_EQ(call(sb_probe_loop, 4L), 12);
}

// A function of a library loaded with dlopen, found as "OBJECT:NAME" by
// the library's file name.
TEST_F(Probes, FunctionOfADlopenedLibrary) {
  const std::string path = std::string(SB_PROBES_DIR) + "/libsb_probe_so.so";
  void* so = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_TRUE(so) << dlerror();
  auto add = reinterpret_cast<long (*)(long, long)>(dlsym(so, "sb_probe_so_add"));
  ASSERT_TRUE(add);
  sb_program* up = load("uprobe", "uprobe_add");
  sb_program* ret = load("uretprobe", "uretprobe_add");
  reset();
  sb_link* e = attach(up, SB_ATTACH_UPROBE, "libsb_probe_so.so:sb_probe_so_add");
  sb_link* r = attach(ret, SB_ATTACH_URETPROBE, path + ":sb_probe_so_add");
  ASSERT_TRUE(e && r);
  EXPECT_EQ(call(add, 20L, 22L), 42);
  const Seen s = seen();
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.returns, 1u);
  EXPECT_EQ(s.a, 20);
  EXPECT_EQ(s.ret, 42);
  EXPECT_EQ(s.ip, reinterpret_cast<uint64_t>(add));
  sb_link_destroy(e);
  sb_link_destroy(r);
  EXPECT_EQ(call(add, 1L, 1L), 2);
}

// Attaching and detaching over and over frees what each cycle made (the
// thunk and stub near the function, the images): the memory within reach
// of the function's jump does not run out.
TEST_F(Probes, ManyAttachDetachCycles) {
  sb_program* up = load("uprobe", "uprobe_add");
  sb_program* ret = load("uretprobe", "uretprobe_add");
  const Variant& v = kVariants[2];
  reset();
  constexpr int kCycles = 1500;
  for (int i = 0; i < kCycles; ++i) {
    sb_link* e = attach(up, SB_ATTACH_UPROBE, v.symbol("add"));
    sb_link* r = attach(ret, SB_ATTACH_URETPROBE, v.symbol("add"));
    ASSERT_TRUE(e && r) << "cycle " << i;
    ASSERT_EQ(call(v.add, long(i), 1L), i + 1);
    sb_link_destroy(e);
    sb_link_destroy(r);
  }
  EXPECT_EQ(seen().entries, uint64_t(kCycles));
  EXPECT_EQ(seen().returns, uint64_t(kCycles));
}

// A uretprobe keeps the vector registers that return values (xmm0-xmm1)
// even when its program calls a helper that uses them (probe_read_user_str:
// glibc's memchr), and a uprobe keeps the argument in xmm0.
TEST_F(Probes, VectorReturnValuesSurviveHelpers) {
  static const char kText[] = "a string for memchr to scan through, longer than a vector register";
  const std::string src = fmt::format(
      "mov %r1, %r10\nadd %r1, -64\nmov %r2, 64\nlddw %r3, {:#x}\ncall 114\nmov %r0, 0\nexit",
      reinterpret_cast<uint64_t>(kText));
  sb_program* p = nullptr;
  ASSERT_EQ(sb_vm_load_asm(vm_, "reads", src.c_str(), &p), SB_OK) << sb_vm_last_error(vm_);
  sb_link* e = attach(p, SB_ATTACH_UPROBE, "sb_probe_double");
  sb_link* r = attach(p, SB_ATTACH_URETPROBE, "sb_probe_double");
  ASSERT_TRUE(e && r);
  double (*volatile fn)(double) = &sb_probe_double;
  for (double x : {1.0, -3.25, 1e300, 0.1}) EXPECT_EQ(fn(x), x * 2.5) << x;
  sb_link_destroy(e);
  sb_link_destroy(r);
}

// Recursion deeper than the thread's return stack (64, as the kernel's
// MAX_URETPROBE_DEPTH): the outer 64 returns are seen, the deeper ones are
// counted as the link's misses, and every call still returns right.
TEST_F(Probes, DeepRecursionCountsTheReturnsItMisses) {
  sb_program* ret = load("uretprobe", "uretprobe_add");
  const Variant& v = kVariants[0];  // -O0: each level a call
  ASSERT_STREQ(v.flags, "gcc -O0");
  reset();
  sb_link* r = attach(ret, SB_ATTACH_URETPROBE, v.symbol("depth"));
  ASSERT_TRUE(r);
  EXPECT_EQ(call(v.depth, 100L), 5050);  // 101 calls
  EXPECT_EQ(seen().returns, 64u);
  EXPECT_EQ(seen().ret, 5050);  // the outermost return is among those seen
  sb_stats st{};
  ASSERT_EQ(sb_link_stats(r, &st), SB_OK);
  EXPECT_EQ(st.misses, 37u);
  EXPECT_EQ(call(v.depth, 3L), 6);
  EXPECT_EQ(seen().returns, 68u);
  sb_link_destroy(r);
}

// A call left by longjmp leaves its return address on the thread's
// return stack; the next entry at that stack depth drops it (as the
// kernel's cleanup_return_instances), so later returns are each seen once
// and the stack does not fill up.
TEST_F(Probes, LongjmpOutOfAReturnProbedFunction) {
  sb_program* ret = load("uretprobe", "uretprobe_add");
  reset();
  sb_link* r = attach(ret, SB_ATTACH_URETPROBE, "sb_probe_jumper");
  ASSERT_TRUE(r);
  long jumped = 0;
  for (int i = 0; i < 200; ++i) {  // more than the return stack holds (64)
    jmp_buf env;
    if (setjmp(env) == 0)
      call(sb_probe_jumper, &env, 1L);
    else
      ++jumped;
  }
  EXPECT_EQ(jumped, 200);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(call(sb_probe_jumper, static_cast<jmp_buf*>(nullptr), 0L), 7);
  const Seen s = seen();
  EXPECT_EQ(s.returns, 10u);
  EXPECT_EQ(s.ret, 7);
  sb_link_destroy(r);
}

// As probes/uprobe.bpf.c.
struct Reads {
  uint64_t pid_tgid, uid_gid, cookie, func_ip, cpu;
  char comm[16];
  char comm4[4];
  char str[8];
  int64_t str_ret, long_ret, value, bad_ret, bad_str_ret, kernel_ret;
  uint64_t bad_value;
  char bad_str[4];
  int64_t printk_ret;
};

// The tracing helpers as the kernel defines them, from a clang-built
// program on a real probe (this thread, named here, calls the target).
TEST_F(Probes, TracingHelpersSeeTheCallingThread) {
  sb_program* p = load("uprobe", "uprobe_read");
  ASSERT_EQ(pthread_setname_np(pthread_self(), "sb-probe-thread"), 0);  // 15 bytes, TASK_COMM_LEN - 1
  sb_link* l = attach(p, SB_ATTACH_UPROBE, "sb_probe_read_target", 0, 0xc0ffee);
  ASSERT_TRUE(l);
  const long value = 0x1122334455667788;
  EXPECT_EQ(call(sb_probe_read_target, "longer than eight", &value), value + 'l');
  sb_link_destroy(l);
  sb_map* m = nullptr;
  ASSERT_EQ(sb_vm_find_map(vm_, "reads", &m), SB_OK);
  Reads r{};
  const uint32_t key = 0;
  ASSERT_EQ(sb_map_lookup(m, &key, sizeof key, &r, sizeof r), SB_OK);
  EXPECT_EQ(r.pid_tgid, uint64_t(getpid()) << 32 | uint32_t(gettid()));
  EXPECT_EQ(r.uid_gid, uint64_t(getgid()) << 32 | getuid());
  EXPECT_EQ(r.cookie, 0xc0ffeeu);
  EXPECT_EQ(r.func_ip, reinterpret_cast<uint64_t>(&sb_probe_read_target));
  EXPECT_LT(r.cpu, 4096u);
  EXPECT_STREQ(r.comm, "sb-probe-thread");
  EXPECT_STREQ(r.comm4, "sb-");              // strscpy: size - 1 bytes and the NUL
  EXPECT_EQ(r.str_ret, 8);                   // cut: size, with dst[size-1] = NUL
  EXPECT_STREQ(r.str, "longer ");
  EXPECT_EQ(r.long_ret, 0);
  EXPECT_EQ(r.value, value);
  EXPECT_EQ(r.bad_ret, -EFAULT);             // an unmapped address: an error, never a fault
  EXPECT_EQ(r.bad_value, 0u);                // ... and the destination zero-filled
  EXPECT_EQ(r.bad_str_ret, -EFAULT);
  EXPECT_EQ(std::string(r.bad_str, 4), std::string(4, '\0'));
  EXPECT_EQ(r.kernel_ret, 0);
  EXPECT_GT(r.printk_ret, 0);
  const std::string trace = sb_vm_take_trace(vm_);
  EXPECT_NE(trace.find("read 1234605616436508552"), std::string::npos) << trace;
  pthread_setname_np(pthread_self(), "sb_probe_tests");
}

// bpf_get_stack of the user stack at leaf's entry: the probed ip, then
// the return address into outer that middle's frame holds (the kernel's
// frame-pointer walk misses the immediate caller at an entry, as here);
// the kernel stack is empty and zeroed; a size not a multiple of 8 is
// -EINVAL.
TEST_F(Probes, GetStackWalksTheFramePointers) {
  probe_during("uprobe_stack", "sb_probe_stack_leaf", call_outer);
  struct Stack {
    int64_t user_ret, kernel_ret, odd_ret;
    uint64_t ips[8];
    uint64_t kips[2];
  };
  const Stack s = result<Stack>("stacks");
  ASSERT_GE(s.user_ret, 16);
  EXPECT_EQ(s.user_ret % 8, 0);
  EXPECT_EQ(s.ips[0], reinterpret_cast<uint64_t>(&sb_probe_stack_leaf));
  EXPECT_EQ(symbol_at(s.ips[1]), "sb_probe_stack_outer");
  for (size_t i = size_t(s.user_ret / 8); i < 8; ++i) EXPECT_EQ(s.ips[i], 0u) << i;  // the rest zeroed
  EXPECT_EQ(s.kernel_ret, 0);
  EXPECT_EQ(s.kips[0], 0u);
  EXPECT_EQ(s.odd_ret, -EINVAL);
}

// bpf_get_stackid at leaf's entry: the stack bpf_get_stack gives (the
// probed ip, then the return into outer) stored under an id, the same id
// for the same stack; the kernel stack (empty) and more skipped frames than
// the stack has are -EFAULT, unknown flags -EINVAL. User space reads the
// ips zero-padded, may not update, and a delete frees the bucket.
// probes/uprobe.bpf.c's struct stackid.
struct StackBuildId {
  int32_t status;
  uint8_t build_id[20];
  uint64_t offset_or_ip;
};
struct StackId {
  int64_t id, again, kernel, skip_all, bad_flags, id3;
  uint64_t ips[8];
  int64_t bid_ret, bid_kernel, bid_odd, bid_id;
  StackBuildId bids[3];
};

TEST_F(Probes, GetStackidStoresTheFramePointerChain) {
  probe_during("uprobe_stackid", "sb_probe_stack_leaf", call_outer);
  const StackId s = result<StackId>("stackids");
  ASSERT_GE(s.id, 0);
  EXPECT_LT(s.id, 64);  // 64 buckets
  EXPECT_EQ(s.again, s.id);
  EXPECT_EQ(s.kernel, -EFAULT);
  EXPECT_EQ(s.skip_all, -EFAULT);
  EXPECT_EQ(s.bad_flags, -EINVAL);

  sb_map* stacks = nullptr;
  ASSERT_EQ(sb_vm_find_map(vm_, "stack_ids", &stacks), SB_OK);
  sb_map_info info{};
  ASSERT_EQ(sb_map_get_info(stacks, &info), SB_OK);
  EXPECT_EQ(info.type, SB_MAP_STACK_TRACE);
  const uint32_t id = uint32_t(s.id);
  uint64_t ips[8];
  std::memset(ips, 0xff, sizeof ips);
  ASSERT_EQ(sb_map_lookup(stacks, &id, sizeof id, ips, sizeof ips), SB_OK) << sb_vm_last_error(vm_);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(ips[i], s.ips[i]) << i;  // get_stack's stack, zero-padded alike
  EXPECT_EQ(ips[0], reinterpret_cast<uint64_t>(&sb_probe_stack_leaf));
  EXPECT_EQ(symbol_at(ips[1]), "sb_probe_stack_outer");
  size_t count = 0;
  EXPECT_EQ(sb_map_for_each(stacks, [](void*, const void*, size_t, const void*, size_t, size_t) {}, nullptr, &count),
            SB_OK);
  EXPECT_EQ(count, 1u);  // one stack stored

  // As build ids and file offsets: this executable's for leaf and outer
  // (compared with the kernel's in GetStackidAgreesWithTheKernel); the
  // kernel stack and a size no multiple of an entry are -EINVAL.
  EXPECT_EQ(s.bid_ret, 2 * 32 + (s.bids[2].status ? 32 : 0));
  EXPECT_EQ(s.bid_kernel, -EINVAL);
  EXPECT_EQ(s.bid_odd, -EINVAL);
  EXPECT_GE(s.bid_id, 0);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(s.bids[i].status, 1) << i;  // BPF_STACK_BUILD_ID_VALID
    EXPECT_EQ(std::memcmp(s.bids[i].build_id, s.bids[0].build_id, 20), 0) << i;
    EXPECT_NE(std::memcmp(s.bids[i].build_id, std::string(20, '\0').data(), 20), 0) << i;
  }
  EXPECT_LT(s.bids[0].offset_or_ip, s.ips[0]);  // a file offset, not the address
  EXPECT_EQ(sb_map_update(stacks, &id, sizeof id, ips, sizeof ips, SB_UPDATE_ANY), SB_ERR_MAP);
  EXPECT_EQ(sb_map_delete(stacks, &id, sizeof id), SB_OK);
  EXPECT_EQ(sb_map_lookup(stacks, &id, sizeof id, ips, sizeof ips), SB_ERR_NOT_FOUND);
  EXPECT_EQ(sb_map_delete(stacks, &id, sizeof id), SB_ERR_NOT_FOUND);
}

// bpf_get_stack and bpf_get_stackid from fentry, fmod_ret and fexit
// programs at leaf (probes/uprobe.bpf.c, record_stack), through site_a or
// site_b -> outer -> middle -> leaf: the traced function, then the return
// addresses into middle, outer and the site, in order (the trampoline
// knows the return into the caller exactly, which the uprobe's
// frame-pointer walk at an entry misses), the same for the three kinds
// and each call; one skipped frame starts at the caller; a buffer of two
// ips gets the first two (16 bytes); the kernel stack is empty (0 bytes,
// zeroed; get_stackid -EFAULT); a size not a multiple of 8, a flag
// get_stack does not take and unknown stackid flags are -EINVAL; more
// skipped frames than there are -EFAULT. Two calls from one site give one
// id, another site another id, and the map holds the four ips.
TEST_F(Probes, GetStackFromFentryAndFexitStartsAtTheTracedFunction) {
  struct TracedStack {
    int64_t user_ret, skip_ret, small_ret, kernel_ret, odd_ret, flags_ret;
    int64_t id, again, kernel_id, skip_all, bad_flags;
    uint64_t ips[8], skipped[8], small[2], kips[2];
  };
  const char* kinds[] = {"fentry_stack", "fmod_ret_stack", "fexit_stack"};
  const sb_attach_kind kind_of[] = {SB_ATTACH_FENTRY, SB_ATTACH_FMOD_RET, SB_ATTACH_FEXIT};
  sb_link* links[3] = {};
  for (size_t k = 0; k < 3; ++k) {
    sb_attach_opts o{};
    o.kind = kind_of[k];
    o.symbol = "sb_probe_stack_leaf";
    o.signature = "i64 -> i64";
    ASSERT_EQ(sb_program_attach(load("fentry", kinds[k]), &o, &links[k]), SB_OK) << sb_vm_last_error(vm_);
  }
  sb_map* results = nullptr;
  ASSERT_EQ(sb_vm_find_map(vm_, "traced_stacks", &results), SB_OK);
  auto call_from = [&](long (*site)(long)) {
    EXPECT_EQ(call(site, 4L), 13);
    std::vector<TracedStack> out(3);
    for (uint32_t k = 0; k < 3; ++k)
      EXPECT_EQ(sb_map_lookup(results, &k, sizeof k, &out[k], sizeof out[k]), SB_OK) << sb_vm_last_error(vm_);
    return out;
  };
  const std::vector<TracedStack> a1 = call_from(sb_probe_stack_site_a);
  const std::vector<TracedStack> a2 = call_from(sb_probe_stack_site_a);
  const std::vector<TracedStack> b = call_from(sb_probe_stack_site_b);
  for (sb_link* l : links) sb_link_destroy(l);

  for (size_t k = 0; k < 3; ++k) {
    SCOPED_TRACE(kinds[k]);
    const TracedStack& s = a1[k];
    ASSERT_GE(s.user_ret, 40);  // leaf, middle, outer, site_a, and the test's frames beyond
    EXPECT_EQ(s.user_ret % 8, 0);
    EXPECT_EQ(s.ips[0], reinterpret_cast<uint64_t>(&sb_probe_stack_leaf));
    EXPECT_EQ(symbol_at(s.ips[1]), "sb_probe_stack_middle");
    EXPECT_EQ(symbol_at(s.ips[2]), "sb_probe_stack_outer");
    EXPECT_EQ(symbol_at(s.ips[3]), "sb_probe_stack_site_a");
    EXPECT_EQ(symbol_at(b[k].ips[3]), "sb_probe_stack_site_b");
    for (size_t i = size_t(s.user_ret / 8); i < 8; ++i) EXPECT_EQ(s.ips[i], 0u) << i;
    for (size_t i = 0; i < 8; ++i) EXPECT_EQ(s.ips[i], a1[0].ips[i]) << i;  // fentry's stack for every kind
    if (s.user_ret < 64) EXPECT_EQ(s.skip_ret, s.user_ret - 8);
    else EXPECT_GE(s.skip_ret, 56);  // the stack may go on past the buffer
    for (size_t i = 0; i + 1 < 8; ++i) EXPECT_EQ(s.skipped[i], s.ips[i + 1]) << i;  // from the caller on
    EXPECT_EQ(s.small_ret, 16);
    EXPECT_EQ(s.small[0], s.ips[0]);
    EXPECT_EQ(s.small[1], s.ips[1]);
    EXPECT_EQ(s.kernel_ret, 0);
    EXPECT_EQ(s.kips[0], 0u);
    EXPECT_EQ(s.odd_ret, -EINVAL);
    EXPECT_EQ(s.flags_ret, -EINVAL);
    ASSERT_GE(s.id, 0);
    EXPECT_EQ(s.again, s.id);
    EXPECT_EQ(a2[k].id, s.id);  // the same site
    EXPECT_EQ(a1[k].id, a1[0].id);
    EXPECT_GE(b[k].id, 0);
    EXPECT_NE(b[k].id, s.id);  // another site
    EXPECT_EQ(s.kernel_id, -EFAULT);
    EXPECT_EQ(s.skip_all, -EFAULT);
    EXPECT_EQ(s.bad_flags, -EINVAL);
  }
  sb_map* ids = nullptr;
  ASSERT_EQ(sb_vm_find_map(vm_, "traced_ids", &ids), SB_OK);
  for (const std::vector<TracedStack>* call : {&a1, &b}) {
    uint64_t ips[4] = {};
    const uint32_t id = uint32_t((*call)[0].id);
    ASSERT_EQ(sb_map_lookup(ids, &id, sizeof id, ips, sizeof ips), SB_OK) << sb_vm_last_error(vm_);
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(ips[i], (*call)[0].ips[i]) << i;
  }
  size_t count = 0;
  EXPECT_EQ(sb_map_for_each(ids, [](void*, const void*, size_t, const void*, size_t, size_t) {}, nullptr, &count),
            SB_OK);
  EXPECT_EQ(count, 2u);  // one stack per site
}

// The same fentry program compiled to run directly over a buffer
// (sb_code_run) runs as a raw program, which interrupts nothing: the
// verifier refuses its stack helpers when it is compiled, naming the
// first one.
TEST_F(Probes, GetStackOfADirectRunIsRefused) {
  sb_code* code = nullptr;
  EXPECT_EQ(sb_program_compile(load("fentry", "fentry_stack"), "x86-64", &code), SB_ERR_COMPILE);
  EXPECT_NE(std::string(sb_vm_last_error(vm_)).find("program of this type cannot use helper get_stack#67"),
            std::string::npos)
      << sb_vm_last_error(vm_);
}

#ifdef SB_HAVE_LIBBPF
// One call of the oracle's chain, from one call site (the third ip).
__attribute__((noinline)) void call_oracle_outer() {
  long (*volatile outer)(long) = &sb_probe_oracle_outer;
  EXPECT_EQ(outer(4), 13);
}

// The kernel as the oracle: the same program on a kernel uprobe at
// sb_probe_oracle_leaf (libbpf, this process's executable), then on
// Springboard's, gives the same results and, for the
// three-ip map, the same id and ips: the kernel's hash of the same
// addresses, and its frame-pointer walk. Needs root.
TEST_F(Probes, GetStackidAgreesWithTheKernel) {
  if (geteuid() != 0) GTEST_SKIP() << "kernel uprobes need root";
  char exe[PATH_MAX] = {};
  ASSERT_GT(readlink("/proc/self/exe", exe, sizeof exe - 1), 0);
  libbpf_set_print(nullptr);
  std::unique_ptr<bpf_object, void (*)(bpf_object*)> obj(bpf_object__open_file(kObject.c_str(), nullptr),
                                                         bpf_object__close);
  ASSERT_TRUE(obj);
  bpf_program* prog = nullptr;
  bpf_program* p;
  bpf_object__for_each_program(p, obj.get()) {
    const bool mine = std::string(bpf_program__name(p)) == "uprobe_stackid";
    bpf_program__set_autoload(p, mine);
    if (mine) prog = p;
  }
  ASSERT_TRUE(prog);
  if (bpf_object__load(obj.get()) != 0) GTEST_SKIP() << "the kernel refused to load the object";
  LIBBPF_OPTS(bpf_uprobe_opts, o, .func_name = "sb_probe_oracle_leaf");
  bpf_link* link = bpf_program__attach_uprobe_opts(prog, getpid(), exe, 0, &o);
  if (!link) GTEST_SKIP() << "the kernel cannot attach a uprobe here";
  call_oracle_outer();
  bpf_link__destroy(link);
  StackId kernel{};
  const uint32_t zero = 0;
  ASSERT_EQ(bpf_map_lookup_elem(bpf_object__find_map_fd_by_name(obj.get(), "stackids"), &zero, &kernel), 0);
  if (kernel.kernel == 0)  // the program did not run: the page is the process's copy since an earlier run
    GTEST_SKIP() << "sb_probe_oracle_leaf was patched in this process before (a repeated run)";
  uint64_t kernel_ips[3] = {};
  ASSERT_GE(kernel.id3, 0);
  const uint32_t kernel_id3 = uint32_t(kernel.id3);
  ASSERT_EQ(bpf_map_lookup_elem(bpf_object__find_map_fd_by_name(obj.get(), "stack_ids3"), &kernel_id3, kernel_ips),
            0);

  probe_during("uprobe_stackid", "sb_probe_oracle_leaf", call_oracle_outer);
  const StackId ours = result<StackId>("stackids");
  EXPECT_EQ(ours.again == ours.id, kernel.again == kernel.id);
  EXPECT_EQ(ours.kernel, kernel.kernel);
  EXPECT_EQ(ours.skip_all, kernel.skip_all);
  EXPECT_EQ(ours.bad_flags, kernel.bad_flags);
  EXPECT_EQ(ours.id3, kernel.id3);
  sb_map* stacks = nullptr;
  ASSERT_EQ(sb_vm_find_map(vm_, "stack_ids3", &stacks), SB_OK);
  uint64_t ips[3] = {};
  const uint32_t id3 = uint32_t(ours.id3);
  ASSERT_EQ(sb_map_lookup(stacks, &id3, sizeof id3, ips, sizeof ips), SB_OK) << sb_vm_last_error(vm_);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(ips[i], kernel_ips[i]) << i;
  EXPECT_EQ(kernel_ips[0], reinterpret_cast<uint64_t>(&sb_probe_oracle_leaf));
  EXPECT_EQ(symbol_at(kernel_ips[1]), "sb_probe_oracle_outer");

  // Build ids and file offsets (BPF_F_USER_BUILD_ID, BPF_F_STACK_BUILD_ID):
  // the kernel's, frame by frame, for the frames in this executable.
  EXPECT_EQ(ours.bid_ret, kernel.bid_ret);
  EXPECT_EQ(ours.bid_kernel, kernel.bid_kernel);
  EXPECT_EQ(ours.bid_odd, kernel.bid_odd);
  EXPECT_EQ(ours.bid_id, kernel.bid_id);
  auto same = [](const StackBuildId& a, const StackBuildId& b) {
    return a.status == b.status && std::memcmp(a.build_id, b.build_id, 20) == 0 && a.offset_or_ip == b.offset_or_ip;
  };
  auto describe = [](const StackBuildId& e) {
    std::string id;
    for (uint8_t b : e.build_id) id += fmt::format("{:02x}", b);
    return fmt::format("status {} build id {} offset/ip {:#x}", e.status, id, e.offset_or_ip);
  };
  for (size_t i = 0; i < 2; ++i) {  // leaf, outer: this executable's code
    EXPECT_EQ(kernel.bids[i].status, 1) << i;  // BPF_STACK_BUILD_ID_VALID
    EXPECT_TRUE(same(ours.bids[i], kernel.bids[i])) << i << ": here " << describe(ours.bids[i]) << ", kernel "
                                                    << describe(kernel.bids[i]);
  }
  StackBuildId kernel_bids[3] = {}, our_bids[3] = {};
  ASSERT_GE(kernel.bid_id, 0);
  const uint32_t kernel_bid = uint32_t(kernel.bid_id), our_bid = uint32_t(ours.bid_id);
  ASSERT_EQ(bpf_map_lookup_elem(bpf_object__find_map_fd_by_name(obj.get(), "stack_bids3"), &kernel_bid, kernel_bids),
            0);
  sb_map* bid_stacks = nullptr;
  ASSERT_EQ(sb_vm_find_map(vm_, "stack_bids3", &bid_stacks), SB_OK);
  ASSERT_EQ(sb_map_lookup(bid_stacks, &our_bid, sizeof our_bid, our_bids, sizeof our_bids), SB_OK)
      << sb_vm_last_error(vm_);
  for (size_t i = 0; i < 2; ++i)
    EXPECT_TRUE(same(our_bids[i], kernel_bids[i])) << "stack map frame " << i << ": here " << describe(our_bids[i])
                                                   << ", kernel " << describe(kernel_bids[i]);
}
#endif

// bpf_send_signal and bpf_send_signal_thread from a probe: SIGUSR1 reaches
// this process's handler once for each; signal 0 only checks (0); 65 is
// -EINVAL.
std::atomic<int> g_usr1_count{0};

TEST_F(Probes, SendSignalReachesTheProcessAndThread) {
  struct sigaction sa{}, old{};
  sa.sa_handler = [](int) { g_usr1_count.fetch_add(1); };
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  g_usr1_count = 0;
  probe_during("uprobe_signal", "sb_probe_signal_target", [] {
    long (*volatile target)(long) = &sb_probe_signal_target;
    EXPECT_EQ(target(5), 15);
  });
  // The thread's signal arrives before the syscall returns; the process's
  // goes to a thread that does not block it, which may be another one.
  for (int i = 0; i < 1000 && g_usr1_count.load() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(g_usr1_count.load(), 2);
  sigaction(SIGUSR1, &old, nullptr);
  struct Signals {
    int64_t process, thread, zero, invalid;
  };
  const Signals s = result<Signals>("signals");
  EXPECT_EQ(s.process, 0);
  EXPECT_EQ(s.thread, 0);
  EXPECT_EQ(s.zero, 0);
  EXPECT_EQ(s.invalid, -EINVAL);
}

// bpf_override_return at a function's entry: the call returns the
// program's value at once and the body does not run, every other call is
// untouched (the kernel's fault injection, on a user-space function).
// Elsewhere than an entry, at a USDT site, in another program type and in
// the guests it is refused, naming why.
TEST_F(Probes, OverrideReturnSkipsTheFunction) {
  long (*volatile fallible)(long) = &sb_probe_fallible;
  sb_program* p = load("uprobe", "uprobe_override");
  sb_link* l = attach(p, SB_ATTACH_UPROBE, "sb_probe_fallible");
  ASSERT_TRUE(l);
  sb_probe_fallible_runs = 0;
  EXPECT_EQ(fallible(5), 10);
  EXPECT_EQ(fallible(13), -12);
  EXPECT_EQ(fallible(13), -12);
  EXPECT_EQ(fallible(7), 14);
  EXPECT_EQ(sb_probe_fallible_runs, 2) << "the overridden calls skipped the body";
  EXPECT_EQ(result<int64_t>("overrides"), 0);
  sb_link_destroy(l);
  EXPECT_EQ(fallible(13), 26);
  sb_attach_opts o{};
  o.kind = SB_ATTACH_UPROBE;
  o.symbol = "sb_probe_fallible";
  o.offset = 4;
  EXPECT_EQ(sb_program_attach(p, &o, &l), SB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(sb_vm_last_error(vm_)).find("a uprobe calling bpf_override_return attaches at a function's "
                                                    "entry, not at +0x4"),
            std::string::npos)
      << sb_vm_last_error(vm_);
}

TEST_F(Probes, ObjectAttachesBySection) {
  sb_link* links[8] = {};
  size_t n = 0;
  ASSERT_EQ(sb_vm_attach_object(vm_, kObject.c_str(), links, 8, &n), SB_OK) << sb_vm_last_error(vm_);
  // The uprobe and uretprobe of sb_probe_by_section, the fentry and fexit of
  // sb_probe_fentry_target (its signature from the object's BTF: long, int ->
  // long), the fentry, fmod_ret and fexit stack programs at
  // sb_probe_stack_leaf (not called here); the bare uprobe sections and the
  // xdp one are left alone.
  EXPECT_EQ(n, 7u);
  EXPECT_EQ(call(sb_probe_by_section, 1L, 2L, 3L, 4L, 5L, 6L), 1 + 4 + 9 + 16 + 25 + 36);
  EXPECT_EQ(call(sb_probe_fentry_target, 5L, -2), 13);
  const Seen f = seen(2);
  EXPECT_EQ(f.entries, 1u);
  EXPECT_EQ(f.returns, 1u);
  EXPECT_EQ(f.a, 5);
  EXPECT_EQ(f.b, -2);  // an int argument, sign-extended by the trampoline (its BTF type is signed)
  EXPECT_EQ(f.ret, 13);
  const Seen s = seen(1);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.returns, 1u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(s.args[i], i + 1);
  EXPECT_EQ(s.ret, 91);
  for (size_t i = 0; i < n; ++i) sb_link_destroy(links[i]);
  call(sb_probe_by_section, 1L, 2L, 3L, 4L, 5L, 6L);
  EXPECT_EQ(seen(1).entries, 1u);
}

TEST_F(Probes, BadInputIsAClearError) {
  sb_program* up = load("uprobe", "uprobe_add");
  sb_attach_opts o{};
  o.kind = SB_ATTACH_UPROBE;
  o.symbol = "sb_probe_no_such_function";
  sb_link* l = nullptr;
  EXPECT_EQ(sb_program_attach(up, &o, &l), SB_ERR_NOT_FOUND);
  EXPECT_NE(std::string(sb_vm_last_error(vm_)).find("sb_probe_no_such_function"), std::string::npos);
  // Inside the first instruction of an -O0 build (push %rbp; mov %rsp,%rbp: +2 is inside the mov).
  const std::string add = kVariants[0].symbol("add");
  o.symbol = add.c_str();
  const uint64_t first = second_instruction(reinterpret_cast<const void*>(kVariants[0].add));
  o.offset = first + 1;
  EXPECT_NE(sb_program_attach(up, &o, &l), SB_OK);
  EXPECT_NE(std::string(sb_vm_last_error(vm_)).find("not the start of an instruction"), std::string::npos)
      << sb_vm_last_error(vm_);
  o.kind = SB_ATTACH_URETPROBE;
  o.offset = first;
  EXPECT_EQ(sb_program_attach(up, &o, &l), SB_ERR_INVALID_ARGUMENT);
  // An XDP program (by its section) is not a probe.
  sb_program* xdp = load("xdp", "not_a_probe");
  o.kind = SB_ATTACH_UPROBE;
  o.offset = 0;
  EXPECT_EQ(sb_program_attach(xdp, &o, &l), SB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(sb_vm_last_error(vm_)).find("xdp"), std::string::npos) << sb_vm_last_error(vm_);
  // A uprobe program (by its section) is not an fentry one either: its ctx is pt_regs.
  sb_attach_opts f{};
  f.kind = SB_ATTACH_FENTRY;
  f.symbol = add.c_str();
  f.signature = "i64, i64 -> i64";
  EXPECT_EQ(sb_program_attach(up, &f, &l), SB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(sb_vm_last_error(vm_)).find("is a kprobe program"), std::string::npos) << sb_vm_last_error(vm_);
  // A probe inside the bytes an fentry hook patched: refused, naming it.
  sb_program* raw = nullptr;
  ASSERT_EQ(sb_vm_load_asm(vm_, "zero", "mov %r0, 0\nexit", &raw), SB_OK);
  o.kind = SB_ATTACH_FENTRY;
  o.signature = "i64, i64 -> i64";
  sb_link* fentry = nullptr;
  ASSERT_EQ(sb_program_attach(raw, &o, &fentry), SB_OK) << sb_vm_last_error(vm_);
  o.kind = SB_ATTACH_UPROBE;
  o.offset = first;  // the second instruction, inside the entry's jump
  EXPECT_NE(sb_program_attach(up, &o, &l), SB_OK);
  EXPECT_NE(std::string(sb_vm_last_error(vm_)).find("already patched by the hook at"), std::string::npos)
      << sb_vm_last_error(vm_);
  sb_link_destroy(fentry);
  EXPECT_EQ(call(kVariants[0].add, 1L, 2L), 3);  // still running, unhooked
}

// Threads call a probed function while other links on it are made and
// destroyed: nothing crashes, and the link that stays attached sees every
// call (its run count, from a VM with statistics), as does the uretprobe.
TEST(ProbeThreads, CallsWhileLinksComeAndGo) {
  sb_vm* vm = nullptr;
  sb_vm_options o{};
  ASSERT_EQ(sb_vm_create(&o, &vm), SB_OK);
  sb_program* progs[16];
  size_t n = 0;
  ASSERT_EQ(sb_vm_load_object(vm, kObject.c_str(), progs, 16, &n), SB_OK) << sb_vm_last_error(vm);
  sb_program *up = nullptr, *ret = nullptr;
  for (size_t i = 0; i < n; ++i) {
    if (std::string(sb_program_name(progs[i])) == "uprobe_add") up = progs[i];
    if (std::string(sb_program_name(progs[i])) == "uretprobe_add") ret = progs[i];
  }
  ASSERT_TRUE(up && ret);
  const Variant& v = kVariants[0];
  const std::string symbol = v.symbol("add");
  auto attach = [&](sb_program* p, sb_attach_kind kind) {
    sb_attach_opts a{};
    a.kind = kind;
    a.symbol = symbol.c_str();
    sb_link* l = nullptr;
    EXPECT_EQ(sb_program_attach(p, &a, &l), SB_OK) << sb_vm_last_error(vm);
    return l;
  };
  sb_link* steady = attach(up, SB_ATTACH_UPROBE);
  sb_link* steady_ret = attach(ret, SB_ATTACH_URETPROBE);
  ASSERT_TRUE(steady && steady_ret);
  constexpr int kThreads = 3;
  std::atomic<int> ready{0};
  std::atomic<bool> done{false};
  std::atomic<uint64_t> calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      uint64_t mine = 0;
      ready.fetch_add(1);
      for (long i = 0; !done.load(std::memory_order_relaxed) || mine < 1000; ++i, ++mine)
        if (call(v.add, i, long(t)) != i + t) ADD_FAILURE() << "wrong result";
      calls.fetch_add(mine);
    });
  while (ready.load() < kThreads) std::this_thread::yield();
  for (int round = 0; round < 20; ++round) {  // links made and destroyed while the threads run
    sb_link* r = attach(ret, SB_ATTACH_URETPROBE);
    sb_link* e = attach(up, SB_ATTACH_UPROBE);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    sb_link_destroy(e);
    sb_link_destroy(r);
  }
  done = true;
  for (std::thread& t : threads) t.join();
  sb_stats st{}, rst{};
  ASSERT_EQ(sb_link_stats(steady, &st), SB_OK);
  ASSERT_EQ(sb_link_stats(steady_ret, &rst), SB_OK);
  EXPECT_EQ(st.run_count, calls.load());
  EXPECT_EQ(rst.run_count, calls.load());
  EXPECT_GT(calls.load(), 20000u);
  sb_link_destroy(steady);
  sb_link_destroy(steady_ret);
  EXPECT_EQ(call(v.add, 2L, 3L), 5);
  sb_vm_destroy(vm);
}

}  // namespace
