// Tail calls (helper 12, runtime/helpers/tail_call.h) on every engine: a chain
// through a prog array, the kernel's limit of 33, an index out of range, an
// empty slot (which counts, as in the kernel), a tail call from a
// subprogram, a fault in a target and a target that does not validate.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "frontend/assembler.h"
#include "ir/diag.h"
#include "runtime/helpers/std_helpers.h"
#include "runtime/helpers/tail_call.h"
#include "test/engines.h"

namespace sb::test {
namespace {

class TailCall : public testing::TestWithParam<size_t> {
 protected:
  TailCall() : helpers_(rt::standard_helpers(env_)) {
    rt::MapSpec spec{"jmp_table", uint32_t(rt::MapType::ProgArray), 4, 4, 4, 0};
    array_ = dynamic_cast<rt::ProgArrayMap*>(&env_.create_map(spec));
  }
  const Engine& engine() const { return engines()[GetParam()]; }
  // `source` with {map} replaced by the prog array's handle.
  std::shared_ptr<const bpf::Program> program(const std::string& name, const std::string& source) const {
    return std::make_shared<const bpf::Program>(
        bpf::assemble(fmt::format(fmt::runtime(source), fmt::arg("map", array_->handle())), name));
  }
  // Runs `p` over one 8-byte counter starting at 0; returns r0 and the counter.
  std::pair<uint64_t, uint64_t> run(const bpf::Program& p) {
    std::vector<uint8_t> mem(8, 0);
    const uint64_t r0 = engine().run(p, helpers_, mem);
    uint64_t counter;
    std::memcpy(&counter, mem.data(), 8);
    return {r0, counter};
  }

  rt::Environment env_;
  rt::HelperTable helpers_;
  rt::ProgArrayMap* array_ = nullptr;
};

// Adds 1 to the counter at [r1], then tail-calls slot `index`.
constexpr const char* kCountAndTailCall = R"(
ldxdw %r0, [%r1]
add %r0, 1
stxdw [%r1], %r0
lddw %r2, {map}
mov %r3, {index}
call 12
{after}
)";

std::string count_and_tail_call(int64_t index, const std::string& after) {
  return fmt::format(fmt::runtime(kCountAndTailCall), fmt::arg("map", "{map}"), fmt::arg("index", index),
                     fmt::arg("after", after));
}

TEST_P(TailCall, ChainRunsEachTargetAndEndsWithTheLastResult) {
  auto first = program("first", count_and_tail_call(1, "mov %r0, 100\nexit"));
  array_->set(1, program("second", count_and_tail_call(2, "mov %r0, 200\nexit")));
  array_->set(2, program("third", "ldxdw %r0, [%r1]\nmul %r0, 10\nstxdw [%r1], %r0\nexit"));
  EXPECT_EQ(run(*first), std::make_pair(uint64_t(20), uint64_t(20)));
}

// A program tail-calling itself runs 1 + 33 times: the 34th tail call falls
// through (MAX_TAIL_CALL_CNT, kernel/bpf/core.c), with r0 = 0 and r1 kept.
TEST_P(TailCall, SelfTailCallStopsAfterExactly33) {
  auto self = program("self", count_and_tail_call(0, "mov %r6, %r0\nldxdw %r0, [%r1]\nlsh %r0, 8\nor %r0, %r6\nexit"));
  array_->set(0, self);
  EXPECT_EQ(run(*self), std::make_pair(uint64_t((1 + rt::kMaxTailCalls) << 8), uint64_t(1 + rt::kMaxTailCalls)));
}

// A target starts with r1 = the context and r2 = the program array, as
// after the kernel's JITs (which leave the helper's argument registers),
// on every engine: nothing the helper does shows through.
TEST_P(TailCall, TargetStartsWithTheContextAndTheArray) {
  array_->set(0, program("target", "ldxdw %r0, [%r1]\nsub %r2, %r0\nmov %r0, %r2\nexit"));
  EXPECT_EQ(run(*program("p", count_and_tail_call(0, "mov %r0, 7\nexit"))).first, array_->handle() - 1);
}

TEST_P(TailCall, IndexOutOfRangeFallsThrough) {
  array_->set(3, program("target", "mov %r0, 99\nexit"));
  EXPECT_EQ(run(*program("p", count_and_tail_call(4, "add %r0, 7\nexit"))).first, 7u);
  // The index is 32 bits, as in the kernel: 2^32 + 3 is slot 3.
  auto wide = program("wide", "lddw %r2, {map}\nlddw %r3, 0x100000003\ncall 12\nmov %r0, 7\nexit");
  EXPECT_EQ(run(*wide).first, 99u);
}

// An empty slot falls through and still counts: after 33 of them, a tail
// call into a full slot falls through too.
TEST_P(TailCall, EmptySlotFallsThroughAndCounts) {
  array_->set(0, program("target", "mov %r0, 99\nexit"));
  const char* source = R"(
mov %r6, {n}
loop:
lddw %r2, {{map}}
mov %r3, 1
call 12
sub %r6, 1
jne %r6, 0, loop
lddw %r2, {{map}}
mov %r3, 0
call 12
mov %r0, 7
exit
)";
  EXPECT_EQ(run(*program("empty32", fmt::format(fmt::runtime(source), fmt::arg("n", 32)))).first, 99u);
  EXPECT_EQ(run(*program("empty33", fmt::format(fmt::runtime(source), fmt::arg("n", 33)))).first, 7u);
}

// From a bpf-to-bpf callee: the target's r0 ends the run; nothing returns
// to the callee's caller, and the target starts at the entry's frame.
TEST_P(TailCall, FromSubprogramReplacesTheWholeProgram) {
  array_->set(0, program("target", "stdw [%r10-8], 5\nldxdw %r0, [%r10-8]\nadd %r0, 40\nexit"));
  auto p = program("caller", R"(
stdw [%r10-8], 1000
call local f
add %r0, 1
exit
f:
lddw %r2, {map}
mov %r3, 0
call 12
mov %r0, 3
exit
)");
  EXPECT_EQ(run(*p).first, 45u);
}

// Programs cannot change a program array (the kernel's verifier allows
// only bpf_tail_call on one); the embedder empties a slot with null.
TEST_P(TailCall, ProgramsCannotUpdateTheArrayTheEmbedderCan) {
  array_->set(0, program("target", "mov %r0, 99\nexit"));
  auto p = program("p", R"(
stw [%r10-4], 0
lddw %r1, {map}
mov %r2, %r10
add %r2, -4
call 3
mov %r6, %r0
lddw %r2, {map}
mov %r3, 0
call 12
mov %r0, %r6
exit
)");
  EXPECT_EQ(run(*p).first, 99u);  // map_delete_elem failed, the slot stayed
  array_->set(0, nullptr);
  EXPECT_EQ(int64_t(run(*p).first), -EINVAL);
  EXPECT_THROW(array_->set(4, nullptr), Error);
}

// A fault after a tail call names the target's instruction; a target that
// does not validate ends the run with its validator's error.
TEST_P(TailCall, ErrorsInTargetsNameTheTarget) {
  const std::pair<const char*, const char*> targets[] = {
      {"mov %r0, 1\nmov %r2, 77\ncall %r2\nexit", "faulty: instruction 2"},
      {"mov %r0, 1\nja +5\nexit", "faulty: instruction 1"}};
  for (const auto& [source, where] : targets) {
    array_->set(0, program("faulty", source));
    try {
      run(*program("caller", "lddw %r2, {map}\nmov %r3, 0\ncall 12\nexit"));
      ADD_FAILURE() << engine().name << ": no error for " << source;
    } catch (const Error& e) {
      EXPECT_EQ(e.where(), where) << engine().name << ": " << e.what();
    }
  }
}

// Hardened (bounds checks), a chain keeps the memory the run began with:
// the targets reach the counter, and a target's access one byte past it
// faults, named in the target.
TEST_P(TailCall, HardenedTargetsKeepTheRunsMemoryAndItsBounds) {
  rt::RunOptions hardened;
  hardened.safety.bounds_check = true;
  auto first = program("first", count_and_tail_call(1, "mov %r0, 100\nexit"));
  array_->set(1, program("second", count_and_tail_call(2, "mov %r0, 200\nexit")));
  array_->set(2, program("third", "ldxdw %r0, [%r1]\nstxb [%r1+8], %r0\nexit"));
  std::vector<uint8_t> mem(8, 0);
  try {
    engine().run(*first, helpers_, mem, hardened);
    ADD_FAILURE() << "no fault";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), fmt::format("third: instruction 1: out-of-bounds access of 1 bytes at {:#x}",
                                                 uint64_t(uintptr_t(mem.data())) + 8));
  }
  EXPECT_EQ(mem[0], 2);  // both counting programs ran
  array_->set(2, program("third", "ldxdw %r0, [%r1]\nmul %r0, 10\nexit"));
  mem.assign(8, 0);
  EXPECT_EQ(engine().run(*first, helpers_, mem, hardened), 20u);
}

INSTANTIATE_TEST_SUITE_P(Engines, TailCall, testing::Range<size_t>(0, engines().size()),
                         [](const testing::TestParamInfo<size_t>& i) { return engines()[i.param].name; });

}  // namespace
}  // namespace sb::test
