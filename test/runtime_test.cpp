// Runtime: executable memory is never writable and executable at once, and
// native code runs with the documented entry contract.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "frontend/assembler.h"
#include "runtime/exec/exec_memory.h"
#include "runtime/exec/native.h"

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
