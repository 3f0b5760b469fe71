// Bytecode input: raw little-endian 8-byte slots -> bpf::Program.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "frontend/bpf.h"

namespace sb::bpf {

// Splits `bytes` into instruction slots. Throws sb::Error naming `name` when
// the length is not a multiple of 8 or the program is empty.
Program decode(std::span<const uint8_t> bytes, std::string name);

// Reads a raw bytecode file ("-" reads standard input).
Program read_program_file(const std::string& path);

// The inverse of decode: 8 bytes per slot.
std::vector<uint8_t> encode(const Program& p);

// One slot as the 64-bit little-endian word it is stored as (the `-- raw`
// format and ".raw" directive): opcode in bits 0-7, dst 8-11, src 12-15,
// offset 16-31, imm 32-63.
uint64_t to_word(const Insn& insn);
Insn from_word(uint64_t word);

}  // namespace sb::bpf
