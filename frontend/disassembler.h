// Bytecode -> the conformance suite's assembler syntax (the inverse of
// frontend/assembler.h), used by listings and error messages.
#pragma once

#include <string>

#include "frontend/bpf.h"

namespace sb::bpf {

// One instruction (for LDDW pass the second slot as `next`). Jump targets
// print as relative offsets ("+3"). Unknown encodings print as ".raw 0x...".
std::string disassemble(const Insn& insn, const Insn* next = nullptr);

// The whole program, one instruction per line, LDDW's second slot skipped.
std::string disassemble(const Program& p);

}  // namespace sb::bpf
