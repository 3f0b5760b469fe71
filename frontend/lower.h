// Bytecode -> IR.
#pragma once

#include <cstdint>
#include <vector>

#include "frontend/bpf.h"
#include "ir/ir.h"

namespace sb::bpf {

struct HelperInfo {
  uint32_t id;
  bool unwind_on_zero;  // a zero result ends the program (ubpf's unwind extension)
  bool tail_call = false;  // bpf_tail_call: lowered to ir::Op::TailCall
};

struct LowerOptions {
  std::vector<HelperInfo> helpers;  // ascending ids; callx dispatches among these
};

// Lowers a validated program: one IR function per bpf-to-bpf function
// (frontend/validator.h function_starts), every IR instruction tagged with
// the index of the bytecode instruction it came from.
ir::Module lower(const Program& p, const LowerOptions& opts = {});

}  // namespace sb::bpf
