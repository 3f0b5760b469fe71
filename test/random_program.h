// Seeded random BPF programs for differential testing (test/differential_test.cpp):
// every program is valid (bpf::validate accepts it), terminates, reads no
// register or stack byte before writing it, and touches memory only inside
// its input buffer and its stack frames, so every engine must agree on r0
// and on the final memory.
//
// The same seed gives the same program on every platform and standard
// library: the generator draws from std::mt19937_64 (whose output the C++
// standard fixes) through its own bounded draws, never through the
// implementation-defined std::*_distribution.
//
// What a program looks like:
//
//   main:  mov r9, r1            r9 = the input buffer for the whole function
//          stdw [r10-8a], imm    the accumulator slot
//          stdw [r10-8k], imm    every other stack slot the function uses
//          ...statements...      ALU/ALU64, loads/stores/atomics, if, if-else,
//                                bounded loops (counter in r8), calls, and
//                                `lock add [r10-8a], rX` to observe a value
//          fold r1..r8 and the   so that a wrong value shows in r0 (every
//          accumulator into r0   early exit folds the accumulator too)
//          exit
//   f1..:  the same shape; r1 = the buffer, r2..r5 scalar or pointer
//          arguments; called only from lower levels (depth <= 3).
//   cb..:  (options.callbacks) bpf_loop callbacks: the same shape over the
//          caller's stack bytes passed as the context.
//
// Register rules the generator keeps (the kernel verifier's): r9 is never
// written after its copy, r10 never; r0-r5 are undefined after any call;
// r6-r8 are undefined at a subprogram's entry; pointers (to the buffer or to
// a stack frame) are never used as data, stored, or compared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "frontend/bpf.h"

namespace sb::test {

// Bounded draws on std::mt19937_64, identical on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  uint64_t next() { return engine_(); }
  uint64_t below(uint64_t n);               // uniform in [0, n), n > 0
  int64_t range(int64_t lo, int64_t hi);    // uniform in [lo, hi]
  bool chance(unsigned percent) { return below(100) < percent; }
  template <typename T, size_t N>
  const T& pick(const T (&options)[N]) { return options[below(N)]; }

 private:
  std::mt19937_64 engine_;
};

struct RandomProgramOptions {
  // The subset the Linux verifier accepts as a BPF_PROG_TYPE_SYSCALL
  // program whose context is the input buffer: no helper calls or callx,
  // aligned accesses only, no immediate stores or atomics to the buffer, no
  // arithmetic on buffer pointers and only additions to stack pointers,
  // immediate shifts below the width, at most 96 bytes of stack per frame;
  // the high half of r0 is folded into the low half at exit (the kernel
  // returns 32 bits).
  bool kernel_compatible = false;
  size_t mem_size = 64;     // bytes of input buffer; a multiple of 8, >= 32
  int max_call_depth = 3;   // bpf-to-bpf calls below main
  int main_statements = 24; // top-level statements of main (subprograms: fewer)
  // Calls of bpf_loop (helper 181) with callbacks: r1 = 0..5 loops (or a
  // register masked to 0..7), r2 = the callback's address (lddw of
  // LDDW_CODE_ADDR), r3 = 8-32 bytes of the caller's stack as the context,
  // r4 = flags (rarely non-zero: -EINVAL). A callback has the shape of a
  // function whose "buffer" (r9) is that context, its r1 the index; it
  // returns r0 & 1 and calls no function of its own. Off in kernel mode.
  bool callbacks = false;
};

struct RandomProgram {
  bpf::Program program;
  std::vector<uint8_t> memory;  // the input buffer's initial contents
};

// The program for `seed`; program.name is "seed <seed>".
RandomProgram random_program(uint64_t seed, const RandomProgramOptions& opts = {});

}  // namespace sb::test
