// Bytecode -> IR.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "frontend/bpf.h"
#include "frontend/progtypes/program_type.h"
#include "ir/ir.h"

namespace sb::bpf {

struct HelperInfo {
  uint32_t id;
  bool unwind_on_zero;  // a zero result ends the program (ubpf's unwind extension)
  bool tail_call = false;  // bpf_tail_call: lowered to ir::Op::TailCall
};

struct LowerOptions {
  std::vector<HelperInfo> helpers;  // ascending ids; callx dispatches among these
  // Per instruction slot, the context field a load or store touches
  // (verifier::VerifyResult::ctx_fields): lowered as an access of the
  // native context instead (bpf::native_access, the kernel's
  // convert_ctx_access). Empty: no rewriting (raw programs).
  std::span<const CtxField* const> ctx_fields;
};

// Lowers a validated program: one IR function per bpf-to-bpf function
// (frontend/validator.h function_starts), every IR instruction tagged with
// the index of the bytecode instruction it came from.
ir::Module lower(const Program& p, const LowerOptions& opts = {});

}  // namespace sb::bpf
