// bpf_loop (helper 181) written as bytecode, as the kernel's
// inline_bpf_loop does, so that every engine runs it the same way: the
// interpreter, the native JIT and the arm64 / riscv64 guests, where a host
// helper could not call back into guest code.
//
//   long bpf_loop(u32 nr_loops, void *callback_fn, void *callback_ctx, u64 flags)
//
// calls callback_fn(i, callback_ctx) for i = 0, 1, ... until it returns
// non-zero or i reaches nr_loops, and returns the number of calls made;
// -EINVAL for flags other than 0, -E2BIG for nr_loops above BPF_MAX_LOOPS
// (kernel/bpf/bpf_iter.c, bpf_loop). Where the kernel's helper and its
// inlined form (verifier.c inline_bpf_loop, used whenever flags is a known
// 0 and the callback is the same on every path) differ, this is the inlined
// form, which is what the kernel runs in practice: nr_loops is compared as
// all 64 bits, and -E2BIG is a 32-bit move (r0 = 0xfffffff9), as checked
// against BPF_PROG_TEST_RUN (test/progtypes/xdp_loop.c). The callback is a function of the
// program whose address an lddw took (LDDW_CODE_ADDR, the kernel's
// BPF_PSEUDO_FUNC).
//
// The rewrite, run after verification (which checks the callback as its
// own frame, frontend/verifier) and before lowering or interpreting:
//   - one function is appended at the end of the program, the loop: it
//     keeps the count, the bound, the context and the callback in r6-r9
//     (its own callee-saved registers, so it needs no stack) and calls the
//     callback with a local call, choosing it among the program's callbacks
//     by the number in r2;
//   - every `call bpf_loop` becomes a local call of that function;
//   - every lddw of a function's address loads the function's first slot
//     as a plain number, which is what the loop compares r2 against.
// Every slot keeps its index, so the verifier's per-slot results (context
// fields, proven accesses) apply to the rewritten program unchanged. The
// loop adds one frame between the caller and the callback: the validator
// counts a callback two frames deeper than the function that names it.
//
// bpf_for_each_map_elem (helper 164) the same way:
//
//   long bpf_for_each_map_elem(struct bpf_map *map, void *callback_fn, void *callback_ctx, u64 flags)
//
// calls callback_fn(map, &key, value, callback_ctx) for each element until
// it returns non-zero, and returns the number of elements it was called
// for; -EINVAL for flags other than 0 (kernel/bpf/bpf_iter.c,
// bpf_for_each_map_elem). Its appended function walks the map with the
// runtime's kMapNextElemHelper (rt::Map::next_element), keeping the key in
// its own frame, so keys of at most kForEachKeyBytes bytes.
#pragma once

#include <optional>

#include "frontend/bpf.h"

namespace sb::bpf {

// (map, u64 *cursor, void *key) -> the next element's value or 0: the
// runtime's walk of a map (runtime/helpers/std_helpers.cpp), in the range of
// helper ids no bytecode names (ir/harden.h kFirstReservedHelper).
inline constexpr uint32_t kMapNextElemHelper = 0xffff0010u;
inline constexpr uint32_t kForEachKeyBytes = 504;  // the walk's frame less its cursor

// The program rewritten as above; none when it calls neither bpf_loop nor
// bpf_for_each_map_elem and takes no function's address. `max_loops` is
// BPF_MAX_LOOPS, the most iterations bpf_loop makes before it answers
// -E2BIG; a caller may lower it to bound a run (a program that verifies
// must be safe whatever bpf_loop returns: r0 is an unknown number).
std::optional<Program> rewrite_loop_helper(const Program& p, uint32_t max_loops = kMaxLoops);

}  // namespace sb::bpf
