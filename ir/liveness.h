// Register liveness over a function's linear IR, for the passes that need
// to know whether a value is still used (ir/passes.h: fold_addresses'
// dead-code removal). The analysis is the textbook backward dataflow,
// solved per instruction on the linear code (successors are the next
// instruction and a branch's label), iterated to a fixed point; a function
// has at most a few thousand instructions and loops settle in two or three
// sweeps.
//
// Each instruction's effect is an over-approximation of what it reads and
// an under-approximation of what it writes, so "dead" is always safe:
//   calls read r1-r5 (all the argument registers, whatever the callee
//   takes) and write only r0; exit and unwind read r0; r10 is always live.
#pragma once

#include <cstdint>
#include <vector>

#include "ir/ir.h"

namespace sb::ir {

using RegSet = uint16_t;  // bit r: register r (kNumRegs <= 16)
constexpr RegSet reg_bit(uint8_t r) { return RegSet(1u << r); }

struct Effects {
  RegSet uses = 0;
  RegSet defs = 0;
};
Effects effects(const Inst& i);

struct Liveness {
  std::vector<RegSet> in;   // in[n]: live just before fn.code[n]; in[size]: nothing
  std::vector<RegSet> out;  // out[n]: live just after fn.code[n]
};
Liveness liveness(const Function& fn);

// Where control goes after fn.code[n]: the next instruction and/or a label.
bool falls_through(const Inst& i);
bool jumps(const Inst& i);
// label_index(fn)[L]: the position of label L in fn.code.
std::vector<size_t> label_index(const Function& fn);

}  // namespace sb::ir
