// Target-independent IR passes, run by the pipeline after lowering
// (to_ir in backends/compile.cpp) so that every backend gets the simpler
// code. Each pass keeps the program's meaning exactly. None builds a
// control-flow graph: most look only at neighbouring instructions; the
// ones that need facts about every path (liveness, copies, loops) iterate
// a dataflow over the linear code, meeting at labels:
//
//   propagate_constants within a straight-line stretch, a register known
//                       to hold a constant becomes the immediate of the
//                       ALU operations, branches and stores that read it
//                       (c > x is turned into x < c); an ALU operation on
//                       constants becomes a mov of its result. The movs
//                       nobody reads any more go in remove_dead_code
//   reduce_strength     mul by 2^k -> shl k; udiv by 2^k -> lshr k;
//                       umod by 2^k -> and 2^k-1 (immediate operands)
//   remove_redundant_masks
//                       x &= 2^k - 1 (and any mask with those low bits set)
//                       where x < 2^k on every path here, and mov.32 x, x
//                       where x < 2^32: the masks BPF code writes so that
//                       the verifier can bound an index (a[i & 255] after
//                       a check of i). A forward dataflow of an unsigned
//                       interval per register, narrowed on each edge of a
//                       compare, met at labels, widened to the function's
//                       compared constants when a loop keeps growing one
//   fold_zero_extension shl.64 x, 32 + lshr.64 x, 32 -> mov.32 x, x; then
//                       mov.64 x, y + mov.32 x, x -> mov.32 x, y; and a
//                       mov.32 x, x right after a 32-bit result in x goes
//                       (32-bit results are zero-extended already)
//   invert_branch_over_jump
//                       br cc a, b -> L1; jmp -> L2; L1:  becomes
//                       br !cc a, b -> L2; L1:  (one taken branch per loop
//                       iteration fewer, as clang lays loops out); and a
//                       jmp to the label right after it goes
//   fold_bit_test       x &= b; br eq/ne x, 0 -> L  becomes  br clear/set x, b
//                       -> L when x is dead after the branch (a test
//                       instead of an and), and with x = y before it, the
//                       branch tests y and the copy goes too; and a branch
//                       on x a few instructions after x = y (mov.64, or
//                       mov.32 where the compare reads the same on y's
//                       low half) compares y; remove_dead_code drops the
//                       copy when nothing else reads it (clang's w3 = w2;
//                       ...; if w3 != 0)
//   remove_redundant_copies
//                       mov.64 x, y where x already holds y's value, and
//                       mov x, c where x already holds c, on every path
//                       here (a forward dataflow of which registers are
//                       copies of each other or constants, met at labels)
//   hoist_loop_invariants
//                       in a loop entered only at its head, a pure
//                       x = f(y) with y unchanged in the loop, x written
//                       nowhere else in it and not live into it, moves
//                       before the loop (a u32 copy of a key, a constant)
//   sink_past_branches  the pure instructions right before a branch whose
//                       results only one side reads move to that side:
//                       after the branch when the target does not read
//                       them (a loop's back edge skips them), or onto the
//                       target's edge, a block at the function's end, when
//                       the branch leaves a loop (run once, not per turn)
//   compute_into_copies x op= c; ...; y = x with x dead after the copy:
//                       y = x; y op= c; ..., so the copy comes first and a
//                       target selects it with what follows (x86-64 lea
//                       y = 3x + 1, arm64 and riscv64 add y, x, c)
//
// The target-aware half, run by backends/compile.cpp just before
// instruction selection (after hardening), with what the target's memory
// operands can express:
//
//   combine_loads       within a straight-line stretch, bytes loaded one by
//                       one from a base and put together with shl/or (the
//                       C idiom p[0] << 8 | p[1] for a big-endian field)
//                       become one 2-, 4- or 8-byte load, followed by a
//                       bswap when the bytes went in most significant
//                       first; the byte loads and the arithmetic go where
//                       nothing else reads them. Only on targets whose
//                       loads may be unaligned
//   fold_addresses      within a straight-line stretch, an address built by
//                       mov/add/shl into a register (x = y; x += z; x += 8)
//                       is put into the load or store that uses it, as
//                       [y + z*1 + 8], when the target has that form; then
//                       remove_dead_code drops the arithmetic nobody reads
//   remove_dead_code    ALU results and constants that are never read
//                       (ir/liveness.h); loads stay, since they can fault
//   fold_index_shift    x <<= k; ...; load [b + x*1]  ->  load [b + x*2^k]
//                       when nothing between touches x and x is dead
//                       after the access (the shift made only the index)
//
// The differential tests (random programs against the interpreter on every
// engine) and the conformance corpus run everything through these passes;
// test/ir_test.cpp has one focused test per rewrite.
#pragma once

#include "ir/ir.h"

namespace sb::ir {

void propagate_constants(Function& fn);
void reduce_strength(Function& fn);
void remove_redundant_masks(Function& fn);
void fold_zero_extension(Function& fn);
void invert_branch_over_jump(Function& fn);
void fold_bit_test(Function& fn);
void remove_redundant_copies(Function& fn);
void hoist_loop_invariants(Function& fn);
void sink_past_branches(Function& fn);
void compute_into_copies(Function& fn);

// All of the above, in that order, on every function of `m`.
void optimize(Module& m);

// The addressing modes of a target's loads and stores, beyond base + off
// (which every target has for any 32-bit off).
struct AddressModes {
  bool index = false;          // base + index (+ off): x86-64, arm64
  uint8_t max_scale = 0;       // index << scale for scale <= max_scale (x86-64: 3)
  bool size_scale = false;     // also scale == log2(access size) (arm64's LSL #size)
  bool index_with_off = false; // base + index + off in one operand (x86-64)
  // The offsets every access size encodes in the instruction itself; a
  // fold that would need a larger one (materialized into a scratch
  // register) is not made.
  int32_t min_off = 0, max_off = 0;
  // A load of any size at any address costs about what an aligned one
  // does (x86-64, arm64), so combine_loads may make them.
  bool unaligned_loads = false;
};

void combine_loads(Function& fn, const AddressModes& modes);

void fold_addresses(Function& fn, const AddressModes& modes);
void remove_dead_code(Function& fn);
void fold_index_shift(Function& fn, const AddressModes& modes);

// combine_loads, fold_addresses, remove_dead_code, then fold_index_shift
// (when the target has indexed addresses), on every function of `m`.
void optimize_for_target(Module& m, const AddressModes& modes);

}  // namespace sb::ir
