// The reference interpreter: executes bytecode directly, without the IR or
// any backend, so it is an independent oracle for every test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "frontend/bpf.h"
#include "frontend/progtypes/program_type.h"
#include "runtime/exec/hardening.h"
#include "runtime/helpers/helpers.h"

namespace sb::rt {

struct InterpOptions {
  uint64_t insn_budget = 0;  // 0: unlimited; otherwise sb::Error when exceeded
  // Bounds checks and the time budget, with the same messages as compiled
  // code (constant blinding means nothing here).
  Safety safety;
  // A typed program's context fields per instruction slot
  // (verifier::VerifyResult::ctx_fields): those loads and stores go to the
  // native context (bpf::native_access), as lowering rewrites them.
  std::span<const bpf::CtxField* const> ctx_fields;
  // Reading a register nothing wrote faults ("R3 read before it was
  // written"): r0 and r3-r9 at the entry, r1-r5 after a helper call, r0 and
  // r6-r9 in a callee. What the verifier proves never happens
  // (test/fuzz/fuzz_verifier.cpp checks it on the programs it accepts).
  bool check_uninit = false;
  // bpf_loop's BPF_MAX_LOOPS: a call asking for more iterations gets
  // -E2BIG. Only lowered (test/fuzz/fuzz_verifier.cpp bounds its runs so).
  uint32_t max_loops = bpf::kMaxLoops;
};

// Runs a validated program with r1 = mem, r2 = len and r10 at the top of a
// 512-byte stack (a fresh 512-byte frame per bpf-to-bpf call, depth <= 8).
// Semantics: RFC 9669; where it leaves a choice, the Linux kernel's (see
// ../shared/DESIGN.md "Semantics"). Faults (call depth, unknown helper in
// callx, budget) throw sb::Error naming the instruction.
uint64_t interpret(const bpf::Program& p, const HelperTable& helpers, void* mem, size_t len,
                   const InterpOptions& opts = {});

}  // namespace sb::rt
