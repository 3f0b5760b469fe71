// Target-independent IR passes, run by the pipeline after lowering
// (to_ir in backends/compile.cpp) so that every backend gets the simpler
// code. Each pass keeps the program's meaning exactly; each is linear in
// the function's length and only looks at neighbouring instructions, so
// none needs a control-flow graph:
//
//   reduce_strength     mul by 2^k -> shl k; udiv by 2^k -> lshr k;
//                       umod by 2^k -> and 2^k-1 (immediate operands)
//   fold_zero_extension shl.64 x, 32 + lshr.64 x, 32 -> mov.32 x, x; then
//                       mov.64 x, y + mov.32 x, x -> mov.32 x, y; and a
//                       mov.32 x, x right after a 32-bit result in x goes
//                       (32-bit results are zero-extended already)
//   invert_branch_over_jump
//                       br cc a, b -> L1; jmp -> L2; L1:  becomes
//                       br !cc a, b -> L2; L1:  (one taken branch per loop
//                       iteration fewer, as clang lays loops out); and a
//                       jmp to the label right after it goes
//
// The differential tests (random programs against the interpreter on every
// engine) and the conformance corpus run everything through these passes;
// test/ir_test.cpp has one focused test per rewrite.
#pragma once

#include "ir/ir.h"

namespace sb::ir {

void reduce_strength(Function& fn);
void fold_zero_extension(Function& fn);
void invert_branch_over_jump(Function& fn);

// All of the above, in that order, on every function of `m`.
void optimize(Module& m);

}  // namespace sb::ir
