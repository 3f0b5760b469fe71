// Static checks on bytecode before it is interpreted, lowered or compiled.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "frontend/bpf.h"

namespace sb::bpf {

struct ValidateOptions {
  // Returns whether helper `id` exists; null accepts every id.
  std::function<bool(uint32_t id)> helper_exists;
};

// Throws sb::Error located at "NAME: instruction N" with the fault:
// unknown opcode, bad register, write to r10, jump out of range, jump into
// the second half of an LDDW, truncated LDDW, no exit / falls off the end,
// reserved fields set (non-zero where RFC 9669 requires zero), division or
// modulo by an immediate zero, unknown helper, call to a non-instruction.
void validate(const Program& p, const ValidateOptions& opts = {});

// Where the jump or local call at `index` goes: index + 1 + offset, the offset
// taken from imm for JMP32 JA ("gotol") and local calls (RFC 9669 section
// 4.3). nullopt for every other instruction (including helper calls, callx
// and exit). Not range-checked: validate() does that.
std::optional<int64_t> branch_target(const Insn& insn, size_t index);

// An lddw of a function's address (LDDW_CODE_ADDR, a bpf_loop callback).
inline bool is_func_ref(const Insn& in) { return is_lddw(in) && in.src == LDDW_CODE_ADDR; }
// Where the function an is_func_ref lddw at `index` names starts: index + 1 + imm.
inline int64_t func_ref_target(const Insn& in, size_t index) { return int64_t(index) + 1 + in.imm; }

// Indices of bpf-to-bpf call targets and of functions whose address an
// lddw takes (entry 0 first), ascending; each starts a function. Assumes
// a validated program.
std::vector<size_t> function_starts(const Program& p);

}  // namespace sb::bpf
