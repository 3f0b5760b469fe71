// Disassembly of generated code, for listings and tests: Capstone for
// x86-64 (AT&T syntax, as LLVM's asm output) and arm64; LLVM's
// MCDisassembler for riscv64, which Capstone 4 does not know.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backends/target.h"

namespace sb::mc {

struct DisasmLine {
  uint64_t address;
  uint32_t size;
  std::string text;  // "movq %rdi, %rax": mnemonic and operands, one space
};

// Throws sb::Error if a byte sequence does not decode.
std::vector<DisasmLine> disassemble(Arch arch, std::span<const uint8_t> code, uint64_t address = 0);

// One instruction per line, "text" only: what golden tests compare.
std::string disassemble_text(Arch arch, std::span<const uint8_t> code);

}  // namespace sb::mc
