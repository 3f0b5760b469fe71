// The benchmarks' generated program (sb_jit_bench, sb_api_bench):
// synthetic100, exactly 100 instruction slots in the conformance suite's
// assembly syntax.
#pragma once

#include <string>

namespace sb {

// synthetic100: straight-line ALU work with loads, stores, forward branches
// and a multiply, exactly 100 slots, over 32 bytes of input.
inline std::string synthetic_source() {
  std::string s =
      "ldxdw %r2, [%r1+0]\n"
      "ldxdw %r3, [%r1+8]\n"
      "ldxw %r4, [%r1+16]\n"
      "ldxh %r5, [%r1+20]\n"
      "stxdw [%r10-8], %r2\n";
  const char* shifts[] = {"lsh %r4, 3", "rsh %r4, 5", "arsh %r4, 7"};
  for (int k = 0; k < 9; ++k) {
    s += "add %r2, %r3\n";
    s += "xor %r3, " + std::to_string(0x1234567 * (k + 1) & 0x7fffffff) + "\n";
    s += std::string(shifts[k % 3]) + "\n";
    s += "mov32 %r5, %r2\n";
    s += "add32 %r5, " + std::to_string(1000 * k + 7) + "\n";
    s += "jgt %r5, " + std::to_string(0x40000000 + k) + ", +2\n";
    s += "mul %r3, %r2\n";
    s += "stxdw [%r10-8], %r3\n";
    s += "ldxdw %r6, [%r10-8]\n";
    s += "or %r2, %r6\n";
  }
  s +=
      "rsh %r2, 1\n"
      "add %r2, %r4\n"
      "xor %r2, %r5\n"
      "mov %r0, %r2\n"
      "exit\n";
  return s;
}

}  // namespace sb
