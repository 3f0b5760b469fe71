// Hardening passes on the IR, for running untrusted programs (issue 7):
// written once here, target-independent, so every backend gets them by
// selecting ordinary IR ops.
//
//   bounds checks   before every load, store and atomic whose address is
//                   not provably inside the function's own frame: the
//                   access must lie in the program's memory [r1, r1+r2) of
//                   the entry, in the BPF stack region, or in one of the
//                   helper context's host ranges (map values, global data,
//                   ring buffers); otherwise the program ends with
//                   TrapCode::OutOfBounds and the runtime names the
//                   instruction and the address.
//   time polls      before every backward branch: the word the run block's
//                   stop_ptr points to, which a watchdog sets when the time
//                   budget runs out; then the program ends with
//                   TrapCode::TimeLimit. Calls
//                   need none: recursion is rejected and depth is bounded,
//                   so every unbounded run goes through a back edge.
//   constant blinding
//                   every immediate of the program (ALU, store, branch,
//                   64-bit constant) is materialized as (imm ^ R) ^ R with
//                   a fresh random R per instruction in a hidden register,
//                   as the kernel's bpf_jit_blind_constants, so no
//                   user-chosen constant appears in the machine code.
//
// Bounds checks and polls use the run block, kRunBlockBytes below the BPF
// stack region (ir/ir.h), filled at entry by the run-init helper:
//
//   entry r10 ->  +----------------------------+
//                 | BPF stack region           |  Module::stack_bytes()
//                 +----------------------------+
//                 | RunBlock (below)           |  kRunBlockBytes
//                 +----------------------------+
//
// The fast path of a check compares the address with the stack region,
// the memory range and a one-entry cache of the host range last matched,
// in a handful of instructions; only other addresses call the
// check-access helper (the runtime's, runtime/exec/hardening.h), which
// searches the host ranges, refills the cache and records a fault.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ir/ir.h"

namespace sb::ir {

// Helper ids the passes call. Reserved: never a bytecode helper, never a
// callx target (backends/compile.cpp to_ir filters them).
constexpr uint32_t kFirstReservedHelper = 0xffff0000u;
constexpr uint32_t kRunInitHelper = 0xffff0001u;     // (mem, len, entry r10, stack bytes) -> 0
constexpr uint32_t kCheckAccessHelper = 0xffff0002u; // (addr, size, origin, block) -> 1 ok / 0 fault
constexpr bool is_reserved_helper(uint32_t id) { return id >= kFirstReservedHelper; }

// The run block. mem_* and cache_* describe a range by its first byte and,
// per access size 1, 2, 4, 8, the last address an access of that size may
// start at; an empty range has lo = ~0 and last = 0.
struct RunBlock {
  uint64_t mem_lo;
  uint64_t mem_last[4];
  uint64_t cache_lo;
  uint64_t cache_last[4];
  uint64_t saved[6];  // r0-r5 across the slow path's helper call
  uint64_t stop_ptr;  // address of a word that is non-zero once the time budget ran out
  uint64_t spare[3];
};
static_assert(sizeof(RunBlock) == kRunBlockBytes, "the run block fills its reserved bytes");
static_assert(offsetof(RunBlock, saved) == 80 && offsetof(RunBlock, stop_ptr) == 128);

struct HardenOptions {
  bool bounds_check = false;
  bool time_polls = false;
  bool blind_constants = false;
  uint64_t blind_seed = 0;  // 0: a fresh random seed per compile
  // Per bytecode slot: 1 where the verifier proved every execution of that
  // load, store or atomic inside its object (bpf::verifier::VerifyResult::
  // proven); those get no bounds check. Null: every access is checked.
  const std::vector<uint8_t>* proven = nullptr;
  bool any() const { return bounds_check || time_polls || blind_constants; }
};

// Rewrites a bytecode module in place (bounds checks and polls first, then
// blinding, which leaves the hidden registers' own constants alone).
// Trampoline modules are not hardened: their frames hold native arguments.
void harden(Module& m, const HardenOptions& opts);

}  // namespace sb::ir
