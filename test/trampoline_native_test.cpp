// Trampolines attached to real functions of this test binary (x86-64):
// fentry / fmod_ret / fexit semantics as the kernel's, argument passing
// (stack arguments, floats, structs), cookies, statistics, the recursion
// guard, and attaching and detaching while other threads call.
#include <atomic>
#include <cstring>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "frontend/assembler.h"
#include "ir/diag.h"
#include "runtime/hook/hook_x86_64.h"
#include "runtime/hook/trampoline.h"

extern "C" {
// noipa: the compiler must neither inline these nor specialise their callers.
__attribute__((noinline, noipa)) int64_t sb_t_add(int64_t a, int64_t b) { return a * 2 + b; }
__attribute__((noinline, noipa)) int64_t sb_t_side(int64_t* p, int64_t v) {
  *p += v;
  return v + 1;
}
__attribute__((noinline, noipa)) int64_t sb_t_many(int8_t a, uint16_t b, int32_t c, uint64_t d, int64_t e, int8_t f,
                                                  int16_t g, uint32_t h, int64_t i, void* j, int32_t k, uint8_t l) {
  return a + 2 * b + 3 * c + 4 * int64_t(d) + 5 * e + 6 * f + 7 * g + 8 * int64_t(h) + 9 * i +
         10 * int64_t(reinterpret_cast<uintptr_t>(j)) + 11 * k + 12 * l;
}
__attribute__((noinline, noipa)) double sb_t_mix(double x, float y, int64_t n, double z) { return x * y + double(n) - z; }
__attribute__((noinline, noipa)) float sb_t_fmul(float a, float b) { return a * b + 0.5f; }
struct SbPair {
  int64_t a;
  int32_t b;
};
__attribute__((noinline, noipa)) int64_t sb_t_struct(SbPair p, int64_t k) { return p.a * k + p.b; }
__attribute__((noinline, noipa)) void sb_t_empty() {}
__attribute__((noinline, noipa)) int64_t sb_t_counted(int64_t x) { return x + 1; }
// Waits (called through a trampoline: inside its image) until released.
std::atomic<int> sb_t_gate{0};
__attribute__((noinline, noipa)) int64_t sb_t_wait(int64_t x) {
  sb_t_gate.store(1);
  while (sb_t_gate.load() != 2) std::this_thread::yield();
  return x + 7;
}
}

// A call as the first instruction (the displaced bytes are that call):
//   call_first: call sb_t_wait; add $1,%rax; ret      (x + 8)
extern "C" int64_t sb_t_call_first(int64_t x);
asm(R"(
  .text
  .globl sb_t_call_first
  .type sb_t_call_first, @function
  .p2align 4
sb_t_call_first:
  call sb_t_wait
  .byte 0x48, 0x83, 0xc0, 0x01, 0xc3
  .size sb_t_call_first, .-sb_t_call_first
)");

// Loops made of the bytes an entry patch displaces, so that threads calling
// them stand at every instruction boundary of the displaced range:
//   park_a: +0 dec %edi; +2 nop; +3 nop; +4 jne +0; +6 mov %edi,%eax; ret
//   park_b: +0 nop; +1 nop; +2 dec %edi; +4 jne +0; +6 mov %edi,%eax; ret
// Each returns 0 after n iterations.
extern "C" unsigned sb_t_park_a(unsigned n);
extern "C" unsigned sb_t_park_b(unsigned n);
asm(R"(
  .text
  .globl sb_t_park_a
  .type sb_t_park_a, @function
  .p2align 4
sb_t_park_a:
  .byte 0xff, 0xcf, 0x90, 0x90, 0x75, 0xfa, 0x89, 0xf8, 0xc3
  .size sb_t_park_a, .-sb_t_park_a
  .globl sb_t_park_b
  .type sb_t_park_b, @function
  .p2align 4
sb_t_park_b:
  .byte 0x90, 0x90, 0xff, 0xcf, 0x75, 0xfa, 0x89, 0xf8, 0xc3
  .size sb_t_park_b, .-sb_t_park_b
)");

// Functions shorter than the 5-byte entry jump, each with what follows it:
//   short_pad:   lea 1(%rdi),%eax; ret (4 bytes), then int3, int3, xchg %ax,%ax
//                (66 90), nopl (%rax) (0f 1f 00) up to the next symbol: padding
//   short_data:  ret, then bytes that are code without a symbol (mov %rdi,%rax; ret)
//   short_tight: xor %eax,%eax; ret, int3, and the next symbol 4 bytes from the start
extern "C" int sb_t_short_pad(int x);
extern "C" void sb_t_short_data();
extern "C" int sb_t_short_tight();
asm(R"(
  .text
  .globl sb_t_short_pad
  .type sb_t_short_pad, @function
  .p2align 4
sb_t_short_pad:
  .byte 0x8d, 0x47, 0x01, 0xc3
  .size sb_t_short_pad, .-sb_t_short_pad
  .byte 0xcc, 0xcc, 0x66, 0x90, 0x0f, 0x1f, 0x00
  .globl sb_t_short_data
  .type sb_t_short_data, @function
sb_t_short_data:
  .byte 0xc3
  .size sb_t_short_data, .-sb_t_short_data
  .byte 0x48, 0x89, 0xf8, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc
  .globl sb_t_short_tight
  .type sb_t_short_tight, @function
sb_t_short_tight:
  .byte 0x31, 0xc0, 0xc3
  .size sb_t_short_tight, .-sb_t_short_tight
  .byte 0xcc
  .globl sb_t_short_next
  .type sb_t_short_next, @function
sb_t_short_next:
  .byte 0xc3
  .size sb_t_short_next, .-sb_t_short_next
)");

namespace sb::test {
namespace {

using ir::Type;

ir::Signature sig(std::initializer_list<ir::NativeValue> args, ir::NativeValue ret) {
  ir::Signature s;
  s.args = args;
  s.ret = ret;
  return s;
}
ir::NativeValue T(Type t, uint8_t size) { return {t, size}; }
const ir::NativeValue kI64 = T(Type::I64, 8), kVoid = T(Type::Void, 0), kF64 = T(Type::F64, 8), kF32 = T(Type::F32, 4);

template <typename F>
F through_volatile(F f) {  // calls the hooked entry, never a copy the compiler made
  F volatile p = f;
  return p;
}

// Observations programs write: lddw of this buffer's address.
struct Seen {
  uint64_t word[16] = {};
};

std::string addr(const void* p) { return fmt::format("{:#x}", reinterpret_cast<uint64_t>(p)); }

// A program that copies ctx[from..from+n) to seen->word[0..n).
bpf::Program record_ctx(Seen* seen, int from, int n) {
  std::string src = "lddw %r3, " + addr(seen) + "\n";
  for (int k = 0; k < n; ++k)
    src += fmt::format("ldxdw %r2, [%r1{:+}]\nstxdw [%r3+{}], %r2\n", 8 * (from + k), 8 * k);
  return bpf::assemble(src + "mov %r0, 0\nexit", "record");
}
bpf::Program returns(int64_t v) { return bpf::assemble(fmt::format("lddw %r0, {:#x}\nexit", uint64_t(v)), "ret"); }

const rt::HelperTable& no_helpers() {
  static const rt::HelperTable h;
  return h;
}

TEST(TrampolineNative, FentryAndFexitSeeArgumentsAndResult) {
  rt::TrampolineTable table;
  rt::Trampoline& t = table.get(reinterpret_cast<void*>(&sb_t_add), sig({kI64, kI64}, kI64), {}, "sb_t_add");
  Seen in, out;
  t.link(tramp::Kind::Fentry, record_ctx(&in, -1, 3), 0, no_helpers());  // nr_args, a, b
  t.link(tramp::Kind::Fexit, record_ctx(&out, 0, 3), 0, no_helpers());   // a, b, ret
  EXPECT_EQ(through_volatile(&sb_t_add)(20, 3), 43);
  EXPECT_EQ(in.word[0], 2u);
  EXPECT_EQ(in.word[1], 20u);
  EXPECT_EQ(in.word[2], 3u);
  EXPECT_EQ(out.word[2], 43u);
  table.put(reinterpret_cast<void*>(&sb_t_add));
  EXPECT_EQ(through_volatile(&sb_t_add)(1, 1), 3);
}

TEST(TrampolineNative, DetachRestoresTheOriginalBytes) {
  uint8_t before[16];
  std::memcpy(before, reinterpret_cast<void*>(&sb_t_add), sizeof before);
  {
    rt::TrampolineTable table;
    rt::Trampoline& t = table.get(reinterpret_cast<void*>(&sb_t_add), sig({kI64, kI64}, kI64));
    rt::LinkId id = t.link(tramp::Kind::Fentry, returns(0), 0, no_helpers());
    EXPECT_NE(std::memcmp(before, reinterpret_cast<void*>(&sb_t_add), 5), 0);
    t.unlink(id);
    EXPECT_FALSE(t.attached());
    EXPECT_EQ(std::memcmp(before, reinterpret_cast<void*>(&sb_t_add), sizeof before), 0);
    table.put(reinterpret_cast<void*>(&sb_t_add));
  }
  EXPECT_EQ(through_volatile(&sb_t_add)(5, 1), 11);
}

TEST(TrampolineNative, FmodRetNonZeroSkipsTheOriginalAndLaterFmodRet) {
  rt::TrampolineTable table;
  const ir::NativeValue ptr = T(Type::Ptr, 8);
  rt::Trampoline& t = table.get(reinterpret_cast<void*>(&sb_t_side), sig({ptr, kI64}, kI64));
  Seen later, fexit;
  rt::LinkId zero = t.link(tramp::Kind::FmodRet, returns(0), 0, no_helpers());
  int64_t cell = 0;
  EXPECT_EQ(through_volatile(&sb_t_side)(&cell, 5), 6);  // 0: the original runs
  EXPECT_EQ(cell, 5);
  t.link(tramp::Kind::FmodRet, returns(42), 0, no_helpers());
  t.link(tramp::Kind::FmodRet, record_ctx(&later, 0, 1), 0, no_helpers());
  t.link(tramp::Kind::Fexit, record_ctx(&fexit, 0, 3), 0, no_helpers());
  EXPECT_EQ(through_volatile(&sb_t_side)(&cell, 5), 42);
  EXPECT_EQ(cell, 5) << "the original ran";
  EXPECT_EQ(later.word[0], 0u) << "a later fmod_ret program ran";
  EXPECT_EQ(fexit.word[2], 42u) << "fexit sees the overriding value";
  t.unlink(zero);
}

TEST(TrampolineNative, CookiesAndStatistics) {
  rt::TrampolineTable table;
  rt::TrampolineOptions opts;
  opts.stats = true;
  rt::Trampoline& t = table.get(reinterpret_cast<void*>(&sb_t_add), sig({kI64, kI64}, kI64), opts);
  Seen a, b;
  // The run context sits 48 bytes below ctx (tramp::Frame); its first word is the cookie.
  auto cookie_to = [](Seen* s) {
    return bpf::assemble("ldxdw %r2, [%r1-48]\nlddw %r3, " + addr(s) + "\nstxdw [%r3+0], %r2\nmov %r0, 0\nexit");
  };
  rt::LinkId la = t.link(tramp::Kind::Fentry, cookie_to(&a), 7, no_helpers());
  rt::LinkId lb = t.link(tramp::Kind::Fexit, cookie_to(&b), 0x1122334455667788, no_helpers());
  for (int i = 0; i < 10; ++i) through_volatile(&sb_t_add)(i, i);
  EXPECT_EQ(a.word[0], 7u);
  EXPECT_EQ(b.word[0], 0x1122334455667788u);
  rt::ProgStats s = t.stats(la);
  EXPECT_EQ(s.run_count, 10u);
  EXPECT_GT(s.run_time_ns, 0u);
  EXPECT_EQ(s.misses, 0u);
  EXPECT_EQ(t.stats(lb).run_count, 10u);
}

TEST(TrampolineNative, TwelveArgumentsIncludingStackArguments) {
  rt::TrampolineTable table;
  ir::Signature s = sig({T(Type::I8, 1), T(Type::U16, 2), T(Type::I32, 4), T(Type::U64, 8), kI64, T(Type::I8, 1),
                         T(Type::I16, 2), T(Type::U32, 4), kI64, T(Type::Ptr, 8), T(Type::I32, 4), T(Type::U8, 1)},
                        kI64);
  rt::Trampoline& t = table.get(reinterpret_cast<void*>(&sb_t_many), s);
  Seen in, out;
  t.link(tramp::Kind::Fentry, record_ctx(&in, 0, 12), 0, no_helpers());
  t.link(tramp::Kind::Fexit, record_ctx(&out, 12, 1), 0, no_helpers());
  void* j = reinterpret_cast<void*>(0x1000);
  const int64_t expect = sb_t_many(-5, 65535, -7, 1ull << 40, -9, 100, -300, 4000000000u, 11, j, -13, 250);
  EXPECT_EQ(through_volatile(&sb_t_many)(-5, 65535, -7, 1ull << 40, -9, 100, -300, 4000000000u, 11, j, -13, 250),
            expect);
  const uint64_t want[12] = {uint64_t(-5), 65535, uint64_t(-7), 1ull << 40, uint64_t(-9), 100, uint64_t(-300),
                             4000000000u, 11, 0x1000, uint64_t(-13), 250};
  for (int k = 0; k < 12; ++k) EXPECT_EQ(in.word[k], want[k]) << "argument " << k;
  EXPECT_EQ(int64_t(out.word[0]), expect);
}

TEST(TrampolineNative, FloatingPointArgumentsAndResults) {
  rt::TrampolineTable table;
  rt::Trampoline& t = table.get(reinterpret_cast<void*>(&sb_t_mix), sig({kF64, kF32, kI64, kF64}, kF64));
  Seen in, out;
  t.link(tramp::Kind::Fentry, record_ctx(&in, 0, 4), 0, no_helpers());
  t.link(tramp::Kind::Fexit, record_ctx(&out, 4, 1), 0, no_helpers());
  const double r = through_volatile(&sb_t_mix)(1.5, 2.0f, 7, 0.25);
  EXPECT_EQ(r, 1.5 * 2.0 + 7 - 0.25);
  double x;
  std::memcpy(&x, &in.word[0], 8);
  EXPECT_EQ(x, 1.5);
  const float y = 2.0f;
  uint32_t ybits;
  std::memcpy(&ybits, &y, 4);
  EXPECT_EQ(in.word[1], uint64_t(ybits)) << "an f32 is its bits, zero-extended";
  EXPECT_EQ(in.word[2], 7u);
  double ret;
  std::memcpy(&ret, &out.word[0], 8);
  EXPECT_EQ(ret, r);

  // An fmod_ret result on a float function is the result's bits.
  rt::Trampoline& f = table.get(reinterpret_cast<void*>(&sb_t_fmul), sig({kF32, kF32}, kF32));
  EXPECT_EQ(through_volatile(&sb_t_fmul)(3.0f, 2.0f), 6.5f);
  const float override_value = 2.25f;
  uint32_t bits;
  std::memcpy(&bits, &override_value, 4);
  f.link(tramp::Kind::FmodRet, returns(bits), 0, no_helpers());
  EXPECT_EQ(through_volatile(&sb_t_fmul)(3.0f, 2.0f), 2.25f);
}

TEST(TrampolineNative, StructPassedByValue) {
  rt::TrampolineTable table;
  rt::Trampoline& t = table.get(reinterpret_cast<void*>(&sb_t_struct), sig({T(Type::Struct, 16), kI64}, kI64));
  Seen in;
  t.link(tramp::Kind::Fentry, record_ctx(&in, 0, 3), 0, no_helpers());
  EXPECT_EQ(through_volatile(&sb_t_struct)(SbPair{10, -3}, 4), 37);
  EXPECT_EQ(in.word[0], 10u);
  EXPECT_EQ(uint32_t(in.word[1]), uint32_t(-3));  // the upper half is padding
  EXPECT_EQ(in.word[2], 4u);
}

// A helper that calls the hooked function again: its fentry program must be
// skipped by the guard (a miss), as the kernel's per-CPU "active" counter does.
uint64_t call_hooked(uint64_t x, uint64_t, uint64_t, uint64_t, uint64_t) {
  return uint64_t(through_volatile(&sb_t_counted)(int64_t(x)));
}

TEST(TrampolineNative, RecursionGuardSkipsNestedRuns) {
  rt::HelperTable helpers;
  helpers.add(100, "call_hooked", &call_hooked);
  rt::TrampolineTable table;
  rt::Trampoline& t = table.get(reinterpret_cast<void*>(&sb_t_counted), sig({kI64}, kI64));
  rt::LinkId id = t.link(tramp::Kind::Fentry, bpf::assemble("mov %r1, 5\ncall 100\nmov %r0, 0\nexit"), 0, helpers);
  EXPECT_EQ(through_volatile(&sb_t_counted)(1), 2);
  rt::ProgStats s = t.stats(id);
  EXPECT_EQ(s.run_count, 0u) << "statistics are off by default";
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(through_volatile(&sb_t_counted)(1), 2);
  EXPECT_EQ(t.stats(id).misses, 2u) << "each outer call runs the program once more";
}

// Another program running on the thread is not recursion: a program whose
// helper calls a second hooked function lets that one's program run, and
// both run again on the next call (the guard's state unwinds).
TEST(TrampolineNative, RecursionGuardLetsOtherProgramsNest) {
  rt::HelperTable helpers;
  helpers.add(100, "call_hooked", &call_hooked);
  rt::TrampolineOptions opts;
  opts.stats = true;
  rt::TrampolineTable table;
  rt::Trampoline& outer = table.get(reinterpret_cast<void*>(&sb_t_add), sig({kI64, kI64}, kI64), opts);
  rt::Trampoline& inner = table.get(reinterpret_cast<void*>(&sb_t_counted), sig({kI64}, kI64), opts);
  Seen seen;
  rt::LinkId a = outer.link(tramp::Kind::Fentry, bpf::assemble("mov %r1, 5\ncall 100\nmov %r0, 0\nexit"), 0, helpers);
  rt::LinkId b = inner.link(tramp::Kind::Fentry, record_ctx(&seen, 0, 1), 0, no_helpers());
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(through_volatile(&sb_t_add)(i, 1), 2 * i + 1);
    EXPECT_EQ(seen.word[0], 5u);
    EXPECT_EQ(outer.stats(a).run_count, uint64_t(i));
    EXPECT_EQ(inner.stats(b).run_count, uint64_t(i));
  }
  EXPECT_EQ(outer.stats(a).misses + inner.stats(b).misses, 0u);
  EXPECT_GE(outer.stats(a).run_time_ns, inner.stats(b).run_time_ns) << "the outer run contains the inner one";
}

// The defaults (no statistics, the guard on) run a program's enter and
// exit inline in the trampoline while no other program runs on the thread
// (frontend/trampoline.h, Bindings::plain); a nested one goes through the
// runtime. Either way the run context is current during the run (a helper
// reads the cookie and the traced function from it), the guard's state
// unwinds after each call, and a nested program is not recursion.
struct RunCtxSeen {
  uint64_t cookie = 0, func_ip = 0;
  int runs = 0;
};
RunCtxSeen outer_seen, inner_seen;
uint64_t note_run_ctx(uint64_t which, uint64_t nest, uint64_t, uint64_t, uint64_t) {
  const rt::RunCtx* rc = rt::current_run_ctx();
  RunCtxSeen& seen = which ? inner_seen : outer_seen;
  seen.cookie = rc ? rc->cookie : 0;
  seen.func_ip = rc ? rc->func_ip : 0;
  ++seen.runs;
  if (nest) through_volatile(&sb_t_counted)(1);
  return 0;
}

TEST(TrampolineNative, DefaultGuardRunsInlineAndNests) {
  rt::HelperTable helpers;
  helpers.add(100, "note_run_ctx", &note_run_ctx);
  rt::TrampolineTable table;
  rt::Trampoline& outer = table.get(reinterpret_cast<void*>(&sb_t_add), sig({kI64, kI64}, kI64));
  rt::Trampoline& inner = table.get(reinterpret_cast<void*>(&sb_t_counted), sig({kI64}, kI64));
  rt::LinkId a = outer.link(tramp::Kind::Fentry, bpf::assemble("mov %r1, 0\nmov %r2, 1\ncall 100\nmov %r0, 0\nexit"),
                            7, helpers);
  rt::LinkId b = inner.link(tramp::Kind::Fentry, bpf::assemble("mov %r1, 1\nmov %r2, 0\ncall 100\nmov %r0, 0\nexit"),
                            9, helpers);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(through_volatile(&sb_t_add)(i, 1), 2 * i + 1);
    EXPECT_EQ(outer_seen.runs, i);
    EXPECT_EQ(inner_seen.runs, i) << "the nested program runs: it is not recursion";
    EXPECT_EQ(outer_seen.cookie, 7u);
    EXPECT_EQ(inner_seen.cookie, 9u);
    EXPECT_EQ(outer_seen.func_ip, reinterpret_cast<uint64_t>(&sb_t_add));
    EXPECT_EQ(inner_seen.func_ip, reinterpret_cast<uint64_t>(&sb_t_counted));
    EXPECT_EQ(rt::current_run_ctx(), nullptr) << "the run context is restored after each call";
  }
  EXPECT_EQ(through_volatile(&sb_t_counted)(1), 2);  // the inner one alone, entered inline
  EXPECT_EQ(inner_seen.runs, 4);
  EXPECT_EQ(inner_seen.cookie, 9u);
  EXPECT_EQ(outer.stats(a).misses + inner.stats(b).misses, 0u);
  // Recursion through the inline path is still found: the outer program's
  // helper calls its own function again.
  outer.unlink(a);
  a = outer.link(tramp::Kind::Fentry, bpf::assemble("mov %r1, 0\nmov %r2, 0\ncall 100\nmov %r1, 5\nmov %r2, 9\n"
                                                    "call 101\nmov %r0, 0\nexit"),
                 7, [&] {
                   rt::HelperTable h = helpers;
                   h.add(101, "call_add", +[](uint64_t x, uint64_t y, uint64_t, uint64_t, uint64_t) {
                     return uint64_t(through_volatile(&sb_t_add)(int64_t(x), int64_t(y)));
                   });
                   return h;
                 }());
  const int before = outer_seen.runs;
  EXPECT_EQ(through_volatile(&sb_t_add)(2, 1), 5);
  EXPECT_EQ(outer_seen.runs, before + 1) << "the nested call of its own function skips the program";
  EXPECT_EQ(outer.stats(a).misses, 1u);
  EXPECT_EQ(rt::current_run_ctx(), nullptr);
}

// A function shorter than the jump is hooked over the padding after it
// (int3 and nops up to the next symbol), which detaching restores; without
// padding, with code (a symbol-less one) after it, or without a symbol
// table, it stays refused, and the message says why.
TEST(TrampolineNative, ShortFunctionsUseThePaddingAfterThem) {
  auto* pad = reinterpret_cast<uint8_t*>(&sb_t_short_pad);
  const std::vector<uint8_t> before(pad, pad + 11);
  rt::TrampolineTable table;
  rt::Trampoline& t = table.get(pad, sig({T(Type::I32, 4)}, T(Type::I32, 4)));
  Seen count, in, out;
  t.link(tramp::Kind::Fentry, bpf::assemble("lddw %r2, " + addr(&count) + "\nmov %r3, 1\nlock add [%r2+0], %r3\n" +
                                                "ldxdw %r2, [%r1+0]\nlddw %r3, " + addr(&in) +
                                                "\nstxdw [%r3+0], %r2\nmov %r0, 0\nexit"),
         0, no_helpers());
  t.link(tramp::Kind::Fexit, bpf::assemble("ldxdw %r2, [%r1+8]\nlddw %r3, " + addr(&out) +
                                               "\nstxdw [%r3+0], %r2\nmov %r0, 0\nexit"),
         0, no_helpers());
  EXPECT_EQ(pad[0], 0xe9) << "the entry is a jmp rel32";
  for (int x : {41, -7}) EXPECT_EQ(through_volatile(&sb_t_short_pad)(x), x + 1);
  EXPECT_EQ(count.word[0], 2u);
  EXPECT_EQ(uint32_t(in.word[0]), uint32_t(-7));
  EXPECT_EQ(uint32_t(out.word[0]), uint32_t(-6));
  EXPECT_EQ(reinterpret_cast<int (*)(int)>(const_cast<void*>(t.original()))(9), 10);
  table.put(pad);
  EXPECT_EQ(std::vector<uint8_t>(pad, pad + 11), before) << "the function and its padding are restored";
  EXPECT_EQ(through_volatile(&sb_t_short_pad)(1), 2);

  auto refusal = [](void* f) {
    try {
      rt::Hook::install(f);
      ADD_FAILURE() << "hooked a function shorter than the jump at " << f;
    } catch (const Error& e) {
      EXPECT_NE(e.where().find(fmt::format("{}", f)), std::string::npos) << e.what();
      EXPECT_NE(e.message().find("too short to hook"), std::string::npos) << e.what();
      return e.message();
    }
    return std::string();
  };
  const std::string data = refusal(reinterpret_cast<void*>(&sb_t_short_data));
  EXPECT_NE(data.find("ends after 1 bytes (+0: ret)"), std::string::npos) << data;
  EXPECT_NE(data.find("at +1 are not padding"), std::string::npos) << data;
  const std::string tight = refusal(reinterpret_cast<void*>(&sb_t_short_tight));
  EXPECT_NE(tight.find("leaves 4 bytes for the 5-byte jump"), std::string::npos) << tight;
  // A copy in anonymous memory has no symbol to bound its padding.
  const std::vector<uint8_t> bytes(pad, pad + 11);
  rt::ExecMemory copy(bytes);
  const std::string nosym = refusal(const_cast<uint8_t*>(copy.data()));
  EXPECT_NE(nosym.find("no symbol table"), std::string::npos) << nosym;
}

// An int3 where the code starts is another tool's breakpoint (a kernel
// uprobe on the file puts one in every process that maps it): the byte it
// covers is unknown, so the hook is refused, naming why.
// A probe where the 5-byte jump cannot fit (short_tight: its next symbol
// 4 bytes from the start, no padding) takes a breakpoint on its
// instruction, as a kernel uprobe does: the trap sends the thread through
// the probe, which sees its registers and ip, and the function's result is
// unchanged, on the first instruction and on the `ret`. Threads calling it
// while the probe is attached and detached over and over never fault, and
// detaching restores every byte.
TEST(TrampolineNative, ProbesWithoutRoomTakeABreakpoint) {
  auto* code = reinterpret_cast<uint8_t*>(&sb_t_short_tight);
  const std::vector<uint8_t> before(code, code + 4);
  for (uint64_t offset : {0u, 2u}) {
    SCOPED_TRACE(offset);
    rt::TrampolineTable table;
    rt::TrampolineOptions opts;
    opts.probe = true;
    void* target = code + offset;
    rt::Trampoline& t = table.get(target, {}, opts, "sb_t_short_tight");
    Seen count, ip;
    t.link(tramp::Kind::Uprobe,
           bpf::assemble("lddw %r2, " + addr(&count) + "\nmov %r3, 1\nlock add [%r2+0], %r3\n" +
                         "ldxdw %r2, [%r1+128]\nlddw %r3, " + addr(&ip) + "\nstxdw [%r3+0], %r2\nmov %r0, 0\nexit"),
           0, no_helpers());
    EXPECT_TRUE(t.breakpoint());
    EXPECT_EQ(code[offset], 0xcc);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(through_volatile(&sb_t_short_tight)(), 0);
    EXPECT_EQ(count.word[0], 3u);
    EXPECT_EQ(ip.word[0], reinterpret_cast<uint64_t>(target)) << "PT_REGS_IP: the probed instruction";
    table.put(target);
    EXPECT_EQ(std::vector<uint8_t>(code, code + 4), before);
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> calls{0}, wrong{0};
  std::vector<std::thread> callers;
  for (int k = 0; k < 2; ++k)
    callers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        if (through_volatile(&sb_t_short_tight)() != 0) wrong.fetch_add(1);
        calls.fetch_add(1, std::memory_order_relaxed);
      }
    });
  Seen count;
  const bpf::Program counter =
      bpf::assemble("lddw %r2, " + addr(&count) + "\nmov %r3, 1\nlock add [%r2+0], %r3\nmov %r0, 0\nexit");
  for (int round = 0; round < 200; ++round) {
    rt::TrampolineTable table;
    rt::TrampolineOptions opts;
    opts.probe = true;
    rt::Trampoline& t = table.get(code + 2, {}, opts, "sb_t_short_tight+2");
    t.link(tramp::Kind::Uprobe, counter, 0, no_helpers());
    for (const uint64_t seen_at = calls.load(); calls.load() < seen_at + 20;) std::this_thread::yield();
    table.put(code + 2);
  }
  stop = true;
  for (std::thread& c : callers) c.join();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(count.word[0], 0u);
  EXPECT_EQ(std::vector<uint8_t>(code, code + 4), before);
}

TEST(TrampolineNative, ForeignBreakpointIsRefused) {
  const std::vector<uint8_t> bytes = {0xcc, 0x89, 0xf8, 0x83, 0xc0, 0x01, 0xc3};  // int3 over a mov; add; ret
  rt::ExecMemory code(bytes);
  try {
    rt::Hook::install(const_cast<uint8_t*>(code.data()));
    ADD_FAILURE() << "hooked code under a foreign breakpoint";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("starts with int3: a breakpoint another tool placed"), std::string::npos) << e.what();
  }
}

TEST(TrampolineNative, TableCountsReferences) {
  rt::TrampolineTable table;
  void* target = reinterpret_cast<void*>(&sb_t_add);
  rt::Trampoline& a = table.get(target, sig({kI64, kI64}, kI64));
  rt::Trampoline& b = table.get(target, sig({kI64, kI64}, kI64));
  EXPECT_EQ(&a, &b);
  EXPECT_THROW(table.get(target, sig({kI64}, kI64)), Error);
  // Other options than the attached trampoline's are an error, never ignored.
  for (int k = 0; k < 4; ++k) {
    rt::TrampolineOptions o;
    bool* field[] = {&o.stats, &o.recursion_guard, &o.call_original, &o.ip_arg};
    *field[k] = !*field[k];
    try {
      table.get(target, sig({kI64, kI64}, kI64), o);
      ADD_FAILURE() << "option " << k << " ignored";
    } catch (const Error& e) {
      EXPECT_NE(e.message().find("this request asks for it"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(&table.get(target, sig({kI64, kI64}, kI64), rt::TrampolineOptions{}), &a);
  table.put(target);
  a.link(tramp::Kind::Fentry, returns(0), 0, no_helpers());
  table.put(target);
  EXPECT_EQ(table.lookup(target), &a);
  EXPECT_TRUE(a.attached());
  table.put(target);
  EXPECT_EQ(table.lookup(target), nullptr);
  EXPECT_EQ(through_volatile(&sb_t_add)(2, 2), 6);
}

// Threads call the function nonstop while it is attached, relinked and
// detached: every call returns the right value, fentry never runs more
// often than the function was called, and on the trampoline left attached
// the statistics count exactly the runs of its program (each detach frees
// what it retired once no thread can run it: the trampolines dropped by
// the table are not kept to be asked).
TEST(TrampolineNative, AttachAndDetachWhileOtherThreadsCall) {
  rt::TrampolineTable table;
  void* target = reinterpret_cast<void*>(&sb_t_add);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> wrong{0}, calls{0};
  std::vector<std::thread> threads;
  for (int n = 0; n < 3; ++n)
    threads.emplace_back([&, n] {
      for (int64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        if (through_volatile(&sb_t_add)(i, n) != 2 * i + n) wrong.fetch_add(1);
        calls.fetch_add(1, std::memory_order_relaxed);
      }
    });
  Seen counter, last_counter;
  auto counting = [](Seen* c) {
    return bpf::assemble("lddw %r2, " + addr(c) + "\nmov %r3, 1\nlock add [%r2+0], %r3\nmov %r0, 0\nexit");
  };
  const bpf::Program count = counting(&counter), count_last = counting(&last_counter);
  rt::TrampolineOptions opts;
  opts.stats = true;
  constexpr int kRounds = 40;
  rt::Trampoline* last = nullptr;
  rt::LinkId last_id = 0;
  for (int round = 0; round < kRounds; ++round) {
    rt::Trampoline& t = table.get(target, sig({kI64, kI64}, kI64), opts);
    rt::LinkId a = t.link(tramp::Kind::Fentry, round + 1 < kRounds ? count : count_last, 0, no_helpers());
    rt::LinkId b = t.link(tramp::Kind::Fexit, returns(0), 0, no_helpers());  // a relink: new image
    std::this_thread::sleep_for(std::chrono::microseconds(500));
    t.unlink(b);
    if (round + 1 < kRounds) {
      table.put(target);  // detach
    } else {
      last = &t;
      last_id = a;
    }
  }
  stop = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(calls.load(), 0u);
  EXPECT_LE(counter.word[0] + last_counter.word[0], calls.load()) << "fentry ran more often than the function was called";
  // Read once no thread can be between the program and its exit call.
  EXPECT_EQ(last->stats(last_id).run_count, last_counter.word[0]);
  table.put(target);
  EXPECT_EQ(through_volatile(&sb_t_add)(1, 2), 4);
}

// Threads spin inside the displaced instructions while the entry is
// patched and restored, again and again: a thread that stands between two
// of them is moved into the relocated copy (and one that meets the
// breakpoint too), so none ever runs half an instruction: no faults, and
// every call returns its value.
TEST(TrampolineNative, ThreadsInsideTheDisplacedBytesSurvivePatching) {
  for (auto* park : {&sb_t_park_a, &sb_t_park_b}) {
    void* target = reinterpret_cast<void*>(park);
    const std::vector<uint8_t> before(static_cast<uint8_t*>(target), static_cast<uint8_t*>(target) + 9);
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> wrong{0}, calls{0};
    std::vector<std::thread> threads;
    for (int n = 0; n < 4; ++n)
      threads.emplace_back([&] {
        while (!stop.load(std::memory_order_relaxed)) {
          if (through_volatile(park)(1u << 16) != 0) wrong.fetch_add(1);
          calls.fetch_add(1, std::memory_order_relaxed);
        }
      });
    Seen counter;
    const bpf::Program count = bpf::assemble("lddw %r2, " + addr(&counter) +
                                             "\nmov %r3, 1\nlock add [%r2+0], %r3\nmov %r0, 0\nexit");
    rt::TrampolineTable table;
    uint64_t attached_calls = 0;
    for (int round = 0; round < 100; ++round) {
      rt::Trampoline& t = table.get(target, sig({T(Type::U32, 4)}, T(Type::U32, 4)));
      t.link(tramp::Kind::Fentry, count, 0, no_helpers());
      std::this_thread::sleep_for(std::chrono::microseconds(300));
      table.put(target);
      ++attached_calls;
    }
    stop = true;
    for (auto& th : threads) th.join();
    EXPECT_EQ(wrong.load(), 0u);
    EXPECT_GT(calls.load(), 0u);
    EXPECT_LE(counter.word[0], calls.load()) << "fentry ran more often than the function was called";
    EXPECT_EQ(std::vector<uint8_t>(static_cast<uint8_t*>(target), static_cast<uint8_t*>(target) + 9), before);
    EXPECT_EQ(through_volatile(park)(5), 0u);
  }
}

size_t mappings() {
  FILE* f = std::fopen("/proc/self/maps", "r");
  size_t n = 0;
  for (int c; (c = std::fgetc(f)) != EOF;) n += c == '\n';
  std::fclose(f);
  return n;
}

// Link/unlink cycles while threads call: the images replaced, and the
// programs only they called, are freed (the mappings stay bounded), and
// every call still returns its value.
TEST(TrampolineNative, ReplacedImagesAndProgramsAreFreed) {
  rt::TrampolineTable table;
  void* target = reinterpret_cast<void*>(&sb_t_add);
  rt::Trampoline& t = table.get(target, sig({kI64, kI64}, kI64));
  Seen counter;
  const bpf::Program count = bpf::assemble("lddw %r2, " + addr(&counter) +
                                           "\nmov %r3, 1\nlock add [%r2+0], %r3\nmov %r0, 0\nexit");
  t.link(tramp::Kind::Fentry, count, 0, no_helpers());  // keeps the hook attached
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> wrong{0};
  std::vector<std::thread> threads;
  for (int n = 0; n < 3; ++n)
    threads.emplace_back([&, n] {
      for (int64_t i = 0; !stop.load(std::memory_order_relaxed); ++i)
        if (through_volatile(&sb_t_add)(i, n) != 2 * i + n) wrong.fetch_add(1);
    });
  const size_t before = mappings();
  size_t most = before;
  for (int cycle = 0; cycle < 2000; ++cycle) {
    rt::LinkId id = t.link(tramp::Kind::Fexit, returns(0), 0, no_helpers());
    t.unlink(id);
    most = std::max(most, mappings());
  }
  stop = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0u);
  // 4000 images and 2000 programs were made; at most a batch of each waits.
  EXPECT_LE(most, before + 80) << "before: " << before;
  EXPECT_GT(counter.word[0], 0u);
}

// A thread inside an image (in the original function, which the image
// called and returns into) keeps that image and the fexit program it
// calls alive while links change and reclaim rounds free every other
// retired image: when it returns, the old image runs its fexit with the
// result, and nothing it needs was freed.
TEST(TrampolineNative, AThreadInsideAnImageKeepsItAlive) {
  rt::TrampolineTable table;
  void* target = reinterpret_cast<void*>(&sb_t_wait);
  rt::Trampoline& t = table.get(target, sig({kI64}, kI64));
  Seen seen;
  t.link(tramp::Kind::Fexit, record_ctx(&seen, 1, 1), 0, no_helpers());  // ctx[1]: the return value
  sb_t_gate = 0;
  int64_t got = 0;
  std::thread waiter([&] { got = through_volatile(&sb_t_wait)(35); });
  while (sb_t_gate.load() != 1) std::this_thread::yield();
  const size_t before = mappings();
  for (int cycle = 0; cycle < 200; ++cycle) {  // many reclaim rounds: the waiter's image must survive them
    rt::LinkId id = t.link(tramp::Kind::Fentry, returns(0), 0, no_helpers());
    t.unlink(id);
  }
  EXPECT_LE(mappings(), before + 40) << "the images no thread is inside were not freed";
  sb_t_gate = 2;
  waiter.join();
  EXPECT_EQ(got, 42);
  EXPECT_EQ(seen.word[0], 42u) << "the waiter's image ran its fexit program";
  t.unlink_all();
}

// A displaced direct call returns to the original function, past the
// patched bytes, not into the stub: a thread still inside the callee when
// the hook is detached comes back right, and the detached hook is freed
// once that thread has left the image that called it (a stub a callee
// could return into would have to be kept forever).
TEST(TrampolineNative, ADisplacedCallReturnsToTheFunctionNotTheStub) {
  rt::TrampolineTable table;
  rt::Trampoline& t = table.get(reinterpret_cast<void*>(&sb_t_call_first), sig({kI64}, kI64));
  Seen seen;
  t.link(tramp::Kind::Fexit, record_ctx(&seen, 1, 1), 0, no_helpers());
  sb_t_gate = 0;
  int64_t got = 0;
  std::thread waiter([&] { got = through_volatile(&sb_t_call_first)(35); });
  while (sb_t_gate.load() != 1) std::this_thread::yield();
  t.unlink_all();  // detached while the waiter is inside sb_t_wait, called from the stub
  EXPECT_FALSE(t.collect()) << "the waiter is still inside the image";
  sb_t_gate = 2;
  waiter.join();
  EXPECT_EQ(got, 43);
  EXPECT_EQ(seen.word[0], 43u);
  EXPECT_TRUE(t.collect()) << "the detached hook and its image were not freed";
  sb_t_gate = 0;
  std::thread again([&] { got = through_volatile(&sb_t_call_first)(1); });
  while (sb_t_gate.load() != 1) std::this_thread::yield();
  sb_t_gate = 2;
  again.join();
  EXPECT_EQ(got, 9);
}

// Attach/detach cycles of one function while threads call it: each
// detached hook (thunk, stub, slot page, its entry in the table of
// relocated regions) is freed by the stop round after its detach, so the
// cycles go on past the 256 regions and the 1 GiB around the function that
// kept hooks used to exhaust, with the mappings flat and every call right.
TEST(TrampolineNative, DetachedHooksAreFreed) {
  rt::TrampolineTable table;
  void* target = reinterpret_cast<void*>(&sb_t_add);
  Seen counter;
  const bpf::Program count = bpf::assemble("lddw %r2, " + addr(&counter) +
                                           "\nmov %r3, 1\nlock add [%r2+0], %r3\nmov %r0, 0\nexit");
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> wrong{0}, calls{0};
  std::vector<std::thread> threads;
  for (int n = 0; n < 2; ++n)
    threads.emplace_back([&, n] {
      for (int64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        if (through_volatile(&sb_t_add)(i, n) != 2 * i + n) wrong.fetch_add(1);
        calls.fetch_add(1, std::memory_order_relaxed);
      }
    });
  auto cycle = [&] {
    table.get(target, sig({kI64, kI64}, kI64)).link(tramp::Kind::Fentry, count, 0, no_helpers());
    table.put(target);
  };
  cycle();
  const size_t before = mappings();
  size_t most = before;
  for (int k = 0; k < 1500; ++k) {
    ASSERT_NO_THROW(cycle()) << "cycle " << k;
    most = std::max(most, mappings());
  }
  stop = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_LE(counter.word[0], calls.load());
  // A thread seen inside a thunk keeps that one hook for a later round.
  EXPECT_LE(most, before + 10) << "before: " << before;
  EXPECT_EQ(table.lookup(target), nullptr);
  EXPECT_EQ(through_volatile(&sb_t_add)(1, 2), 4);
}

}  // namespace
}  // namespace sb::test
