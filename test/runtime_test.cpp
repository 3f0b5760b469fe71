// Runtime: executable memory is never writable and executable at once, and
// native code runs with the documented entry contract.
#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "frontend/assembler.h"
#include "runtime/exec/exec_memory.h"
#include "runtime/exec/native.h"
#include "runtime/exec/run_stats.h"

namespace sb::test {
namespace {

// The permissions of the mapping containing `addr`, from /proc/self/maps.
std::string permissions_of(const void* addr) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  auto a = reinterpret_cast<uintptr_t>(addr);
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms;
    in >> range >> perms;
    auto dash = range.find('-');
    uintptr_t lo = std::stoull(range.substr(0, dash), nullptr, 16);
    uintptr_t hi = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (a >= lo && a < hi) return perms;
  }
  return "";
}

TEST(ExecMemory, IsReadExecuteNeverWritable) {
  std::vector<uint8_t> code = {0xc3};  // ret
  rt::ExecMemory mem(code);
  std::string perms = permissions_of(mem.data());
  ASSERT_EQ(perms.size(), 4u);
  EXPECT_EQ(perms.substr(0, 3), "r-x");
}

TEST(ExecMemory, NoMappingIsWritableAndExecutable) {
  rt::HelperTable helpers = rt::HelperTable::conformance();
  rt::NativeProgram p(bpf::assemble("mov %r0, 1\nexit"), helpers);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms;
    in >> range >> perms;
    EXPECT_FALSE(perms[1] == 'w' && perms[2] == 'x') << line;
  }
  EXPECT_EQ(p.run(nullptr, 0), 1u);
}

size_t mapping_count() {
  std::ifstream maps("/proc/self/maps");
  size_t n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}

// Compiled code comes from the arena: freed code is reused, so compiling
// and freeing many programs maps nothing new, and the code stays runnable
// and read-execute where it runs.
TEST(ExecMemory, CompileFreeCyclesReuseTheArena) {
  rt::HelperTable helpers = rt::HelperTable::conformance();
  const bpf::Program p = bpf::assemble("mov %r0, %r2\nadd %r0, 5\nexit");
  { rt::NativeProgram warm(p, helpers); }
  const size_t arena = rt::ExecMemory::arena_mappings(), maps = mapping_count();
  EXPECT_GE(arena, 2u);
  for (int i = 0; i < 2000; ++i) {
    rt::NativeProgram a(p, helpers), b(p, helpers);
    ASSERT_EQ(a.run(nullptr, size_t(i)), uint64_t(i + 5));
    ASSERT_EQ(b.run(nullptr, 1), 6u);
  }
  EXPECT_EQ(rt::ExecMemory::arena_mappings(), arena);
  EXPECT_LE(mapping_count(), maps + 2);
  rt::NativeProgram live(p, helpers);
  EXPECT_EQ(permissions_of(live.entry()).substr(0, 3), "r-x");
}

// Blocks of the arena do not overlap, and freed ones merge again.
TEST(ExecMemory, ArenaBlocksAreDisjointAndReused) {
  std::vector<uint8_t> ret(100, 0xc3);
  std::vector<rt::ExecMemory> blocks;
  for (int i = 0; i < 50; ++i) blocks.emplace_back(ret);
  for (size_t i = 1; i < blocks.size(); ++i)
    for (size_t j = 0; j < i; ++j) {
      const uint8_t *a = blocks[i].data(), *b = blocks[j].data();
      EXPECT_TRUE(a + ret.size() <= b || b + ret.size() <= a) << i << " overlaps " << j;
    }
  for (const rt::ExecMemory& m : blocks) EXPECT_EQ(std::vector<uint8_t>(m.data(), m.data() + m.size()), ret);
  std::vector<const uint8_t*> at;
  for (const rt::ExecMemory& m : blocks) at.push_back(m.data());
  blocks.clear();
  for (int i = 0; i < 50; ++i) blocks.emplace_back(ret);  // the same first fits again
  for (size_t i = 0; i < blocks.size(); ++i) EXPECT_EQ(blocks[i].data(), at[i]) << i;
  blocks.clear();
  std::vector<uint8_t> big(50 * 128, 0xc3);  // fits where the 50 freed blocks merged, or earlier
  rt::ExecMemory merged(big);
  EXPECT_LE(merged.data(), *std::min_element(at.begin(), at.end()));
}

// After fork() the parent and the child own their code: a block one of
// them frees and fills with another program does not change what the
// other runs (the arena's chunks are shared memory, copied for the child).
TEST(ExecMemory, ForkedChildAndParentKeepTheirOwnCode) {
  rt::HelperTable helpers = rt::HelperTable::conformance();
  const bpf::Program one = bpf::assemble("mov %r0, 1\nexit"), two = bpf::assemble("mov %r0, 2\nexit");
  for (bool child_replaces : {true, false}) {
    auto kept = std::make_unique<rt::NativeProgram>(one, helpers);
    const void* at = kept->entry();
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    const bool replacer = (pid == 0) == child_replaces;
    int status = 0;
    if (replacer) {
      kept.reset();  // the block goes back, and the next program takes it
      rt::NativeProgram other(two, helpers);
      const bool reused = other.entry() == at && other.run(nullptr, 0) == 2;
      if (pid == 0) _exit(reused ? 0 : 3);
      ASSERT_TRUE(reused);
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      ASSERT_TRUE(WIFEXITED(status));
      EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's program changed with the parent's";
    } else if (pid == 0) {
      usleep(100 * 1000);  // the parent frees and refills meanwhile
      _exit(kept->run(nullptr, 0) == 1 ? 0 : 4);
    } else {
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      ASSERT_TRUE(WIFEXITED(status));
      EXPECT_EQ(WEXITSTATUS(status), 0);
      EXPECT_EQ(kept->run(nullptr, 0), 1u) << "the parent's program changed with the child's";
    }
  }
}

// Run statistics are exact however many threads add at once: more than
// there are stripes (the rest share one with atomic adds), and threads
// that exit hand their stripes, counts included, to the next ones.
TEST(RunStats, ExactTotalsFromManyThreads) {
  rt::RunStats stats;
  constexpr int kPerThread = 20000;
  for (int wave = 0; wave < 2; ++wave) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 40; ++t)
      threads.emplace_back([&stats, t] {
        for (int i = 0; i < kPerThread; ++i) stats.add(uint64_t(t + 1));
      });
    for (auto& th : threads) th.join();
  }
  stats.add_totals({5, 7});
  const rt::RunTotals t = stats.totals();
  EXPECT_EQ(t.runs, uint64_t(2 * 40 * kPerThread + 5));
  EXPECT_EQ(t.ticks, uint64_t(2 * kPerThread) * (40 * 41 / 2) + 7);
}

TEST(NativeProgram, PassesMemoryAndLength) {
  rt::HelperTable helpers = rt::HelperTable::conformance();
  rt::NativeProgram p(bpf::assemble("ldxb %r0, [%r1+1]\nadd %r0, %r2\nexit"), helpers);
  uint8_t mem[4] = {1, 40, 3, 4};
  EXPECT_EQ(p.run(mem, sizeof mem), 44u);
}

TEST(NativeProgram, RunsConcurrently) {
  rt::HelperTable helpers = rt::HelperTable::conformance();
  rt::NativeProgram p(bpf::assemble("mov %r0, %r2\nmul %r0, 3\nexit"), helpers);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i)
        if (p.run(nullptr, size_t(t * 1000 + i)) != uint64_t(3 * (t * 1000 + i))) ++wrong;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace sb::test
