// Hooking under ThreadSanitizer: threads call hooked functions while others
// link and unlink programs on one trampoline and attach and detach another
// (table get / put), and threads spin inside the displaced bytes while the
// entry is patched and restored. The runtime/hook sources are built into
// this program with -fsanitize=thread (test/CMakeLists.txt), so TSan sees
// the accesses of the code that patches, publishes images and reclaims;
// the counts are exact where a program stays linked the whole time. The
// probes (uprobe, uretprobe) go through the same.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "frontend/assembler.h"
#include "runtime/hook/trampoline.h"

// Targets in assembly (TSan would put a call to __tsan_func_entry among
// the first bytes of a C function):
//   sb_ts_add:  lea (%rdi,%rsi),%rax; add %rdi,%rax; ret      (2a + b)
//   sb_ts_mul3: lea (%rdi,%rdi,2),%rax; add %rsi,%rax; ret    (3a + b)
//   sb_ts_park: dec %edi; nop; nop; jne sb_ts_park; mov %edi,%eax; ret
//               (a loop made of the displaced bytes: returns 0 after n rounds)
//   sb_ts_tight: xor %eax,%eax; ret, the next symbol right after it: no room
//               for a jump, so its probes take breakpoints
extern "C" int64_t sb_ts_tight();
extern "C" int64_t sb_ts_add(int64_t a, int64_t b);
extern "C" int64_t sb_ts_mul3(int64_t a, int64_t b);
extern "C" unsigned sb_ts_park(unsigned n);
asm(R"(
  .text
  .globl sb_ts_add
  .type sb_ts_add, @function
  .p2align 4
sb_ts_add:
  .byte 0x48, 0x8d, 0x04, 0x37, 0x48, 0x01, 0xf8, 0xc3
  .size sb_ts_add, .-sb_ts_add
  .globl sb_ts_mul3
  .type sb_ts_mul3, @function
  .p2align 4
sb_ts_mul3:
  .byte 0x48, 0x8d, 0x04, 0x7f, 0x48, 0x01, 0xf0, 0xc3
  .size sb_ts_mul3, .-sb_ts_mul3
  .globl sb_ts_park
  .type sb_ts_park, @function
  .p2align 4
sb_ts_park:
  .byte 0xff, 0xcf, 0x90, 0x90, 0x75, 0xfa, 0x89, 0xf8, 0xc3
  .size sb_ts_park, .-sb_ts_park
  .globl sb_ts_tight
  .type sb_ts_tight, @function
  .p2align 4
sb_ts_tight:
  .byte 0x31, 0xc0, 0xc3
  .size sb_ts_tight, .-sb_ts_tight
  .globl sb_ts_tight_next
  .type sb_ts_tight_next, @function
sb_ts_tight_next:
  .byte 0xc3
  .size sb_ts_tight_next, .-sb_ts_tight_next
)");

namespace sb::test {
namespace {

template <typename F>
F through_volatile(F f) {  // calls the hooked entry, never a copy the compiler made
  F volatile v = f;
  return v;
}

ir::Signature sig2() {
  ir::Signature s;
  s.args = {{ir::Type::I64, 8}, {ir::Type::I64, 8}};
  s.ret = {ir::Type::I64, 8};
  return s;
}

struct Counter {
  uint64_t word = 0;  // the programs add to it with lock add; read after the
                      // threads are joined
};
bpf::Program counting(Counter* c) {
  return bpf::assemble(fmt::format("lddw %r2, {:#x}\nmov %r3, 1\nlock add [%r2+0], %r3\nmov %r0, 0\nexit",
                                   reinterpret_cast<uint64_t>(&c->word)));
}
const bpf::Program kNothing = bpf::assemble("mov %r0, 0\nexit");

TEST(HookThreads, ExactCountsWhileOthersLinkUnlinkAttachAndDetach) {
  const rt::HelperTable helpers;
  rt::TrampolineTable table;
  void* a = reinterpret_cast<void*>(&sb_ts_add);
  void* b = reinterpret_cast<void*>(&sb_ts_mul3);
  rt::TrampolineOptions opts;
  opts.stats = true;
  rt::Trampoline& ta = table.get(a, sig2(), opts);
  Counter on_a, on_b;
  const rt::LinkId base = ta.link(tramp::Kind::Fentry, counting(&on_a), 0,
                                  helpers);  // linked throughout

  // The callers count their own calls and run until the churn is done.
  constexpr int kCallers = 2, kRelinks = 150, kAttaches = 60;
  std::atomic<bool> churning{true};
  std::atomic<uint64_t> wrong{0}, calls{0};
  std::vector<std::thread> threads;
  for (int n = 0; n < kCallers; ++n)
    threads.emplace_back([&, n] {
      uint64_t mine = 0;
      for (int64_t i = 0; churning.load(); ++i, ++mine) {
        if (through_volatile(&sb_ts_add)(i, n) != 2 * i + n) wrong.fetch_add(1);
        if (through_volatile(&sb_ts_mul3)(i, n) != 3 * i + n) wrong.fetch_add(1);
      }
      calls.fetch_add(mine);
    });
  std::string attach_error,
      relink_error;           // an exception ends the churn, not the program
  std::thread attacher([&] {  // attach and detach b through the table
    try {
      for (int k = 0; k < kAttaches; ++k) {
        table.get(b, sig2()).link(tramp::Kind::Fentry, counting(&on_b), 0, helpers);
        table.put(b);
      }
    } catch (const std::exception& e) {
      attach_error = e.what();
      std::fprintf(stderr, "attach error: %s\n", e.what());
    }
  });
  try {
    for (int k = 0; k < kRelinks; ++k) ta.unlink(ta.link(tramp::Kind::Fexit, kNothing, 0, helpers));  // new images
  } catch (const std::exception& e) {
    relink_error = e.what();
  }
  attacher.join();
  churning = false;
  for (auto& t : threads) t.join();
  EXPECT_EQ(attach_error, "");
  EXPECT_EQ(relink_error, "");

  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(calls.load(), 0u);
  EXPECT_EQ(on_a.word, calls.load()) << "every call of a ran its fentry program once";
  const rt::ProgStats s = ta.stats(base);
  EXPECT_EQ(s.run_count, calls.load());
  EXPECT_EQ(s.misses, 0u);
  EXPECT_LE(on_b.word, calls.load()) << "b's fentry ran at most once per call";
  table.put(a);
  EXPECT_EQ(table.lookup(a), nullptr);
  EXPECT_EQ(through_volatile(&sb_ts_add)(5, 1), 11);
  EXPECT_EQ(through_volatile(&sb_ts_mul3)(5, 1), 16);
  std::printf(
      "%d relinks of a and %d attaches of b while %d threads called "
      "both %llu times in all\n",
      kRelinks, kAttaches, kCallers, static_cast<unsigned long long>(calls.load()));
}

// Probes (uprobe and uretprobe, ctx pt_regs) under the same churn: their
// entry and return counts are exact while the return programs' image is
// replaced and another function's probes come and go.
TEST(HookThreads, ProbesCountExactlyWhileOthersAttachAndDetach) {
  const rt::HelperTable helpers;
  rt::TrampolineTable table;
  void* a = reinterpret_cast<void*>(&sb_ts_add);
  void* b = reinterpret_cast<void*>(&sb_ts_mul3);
  rt::TrampolineOptions opts;
  opts.probe = true;
  rt::Trampoline& ta = table.get(a, {}, opts);
  Counter entries, returns, on_b;
  ta.link(tramp::Kind::Uprobe, counting(&entries), 0, helpers);
  ta.link(tramp::Kind::Uretprobe, counting(&returns), 0, helpers);
  constexpr int kCallers = 2, kRelinks = 100, kAttaches = 40;
  std::atomic<bool> churning{true};
  std::atomic<uint64_t> wrong{0}, calls{0};
  std::vector<std::thread> threads;
  for (int n = 0; n < kCallers; ++n)
    threads.emplace_back([&, n] {
      uint64_t mine = 0;
      for (int64_t i = 0; churning.load(); ++i, ++mine) {
        if (through_volatile(&sb_ts_add)(i, n) != 2 * i + n) wrong.fetch_add(1);
        if (through_volatile(&sb_ts_mul3)(i, n) != 3 * i + n) wrong.fetch_add(1);
      }
      calls.fetch_add(mine);
    });
  std::string error;
  std::thread attacher([&] {
    try {
      for (int k = 0; k < kAttaches; ++k) {
        rt::Trampoline& tb = table.get(b, {}, opts);
        tb.link(tramp::Kind::Uprobe, counting(&on_b), 0, helpers);
        tb.link(tramp::Kind::Uretprobe, kNothing, 0, helpers);
        table.put(b);
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  for (int k = 0; k < kRelinks; ++k) ta.unlink(ta.link(tramp::Kind::Uretprobe, kNothing, 0, helpers));
  attacher.join();
  churning = false;
  for (auto& t : threads) t.join();
  EXPECT_EQ(error, "");
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(calls.load(), 0u);
  EXPECT_EQ(entries.word, calls.load());
  EXPECT_EQ(returns.word, calls.load());
  EXPECT_LE(on_b.word, calls.load());
  table.put(a);
  EXPECT_EQ(through_volatile(&sb_ts_add)(5, 1), 11);
}

// Breakpoint probes (no room for the jump): a probe at the first
// instruction counts every call exactly while another at the `ret` is
// attached and detached over and over, the callers trapping on both.
TEST(HookThreads, BreakpointProbesCountExactlyWhileOthersComeAndGo) {
  const rt::HelperTable helpers;
  rt::TrampolineTable table;
  auto* f = reinterpret_cast<uint8_t*>(&sb_ts_tight);
  rt::TrampolineOptions opts;
  opts.probe = true;
  rt::Trampoline& first = table.get(f, {}, opts);
  Counter entries, on_ret;
  first.link(tramp::Kind::Uprobe, counting(&entries), 0, helpers);
  ASSERT_TRUE(first.breakpoint());
  std::atomic<bool> churning{true};
  std::atomic<uint64_t> wrong{0}, calls{0};
  std::vector<std::thread> threads;
  for (int n = 0; n < 2; ++n)
    threads.emplace_back([&] {
      uint64_t mine = 0;
      for (; churning.load(); ++mine)
        if (through_volatile(&sb_ts_tight)() != 0) wrong.fetch_add(1);
      calls.fetch_add(mine);
    });
  std::string error;
  try {
    for (int k = 0; k < 40; ++k) {
      rt::Trampoline& last = table.get(f + 2, {}, opts);
      last.link(tramp::Kind::Uprobe, counting(&on_ret), 0, helpers);
      table.put(f + 2);
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  churning = false;
  for (auto& t : threads) t.join();
  EXPECT_EQ(error, "");
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(calls.load(), 0u);
  EXPECT_EQ(entries.word, calls.load());
  EXPECT_LE(on_ret.word, calls.load());
  table.put(f);
  EXPECT_EQ(f[0], 0x31) << "restored";
}

TEST(HookThreads, ThreadsInsideTheDisplacedBytesWhilePatching) {
  const rt::HelperTable helpers;
  void* target = reinterpret_cast<void*>(&sb_ts_park);
  const std::vector<uint8_t> before(static_cast<uint8_t*>(target), static_cast<uint8_t*>(target) + 9);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> wrong{0}, calls{0};
  std::vector<std::thread> threads;
  for (int n = 0; n < 2; ++n)
    threads.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        if (through_volatile(&sb_ts_park)(1u << 14) != 0) wrong.fetch_add(1);
        calls.fetch_add(1, std::memory_order_relaxed);
      }
    });
  Counter runs;
  rt::TrampolineTable table;
  for (int round = 0; round < 40; ++round) {
    table.get(target, {{{ir::Type::U32, 4}}, {ir::Type::U32, 4}})
        .link(tramp::Kind::Fentry, counting(&runs), 0, helpers);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    table.put(target);
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(calls.load(), 0u);
  EXPECT_LE(runs.word, calls.load());
  EXPECT_EQ(std::vector<uint8_t>(static_cast<uint8_t*>(target), static_cast<uint8_t*>(target) + 9), before);
}

}  // namespace
}  // namespace sb::test
