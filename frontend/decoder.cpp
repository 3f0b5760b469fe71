// Raw bytecode <-> slots. RFC 9669 section 3: each slot is 64 bits, stored
// little-endian (the byte order this project's inputs use), with dst_reg in
// the low nibble of the second byte and src_reg in the high nibble.
#include "frontend/decoder.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

#include "ir/diag.h"

namespace sb::bpf {

namespace {
constexpr size_t kSlotBytes = 8;
}  // namespace

uint64_t to_word(const Insn& insn) {
  return uint64_t(insn.opcode) | uint64_t(insn.dst) << 8 | uint64_t(insn.src) << 12 |
         uint64_t(uint16_t(insn.off)) << 16 | uint64_t(uint32_t(insn.imm)) << 32;
}

Insn from_word(uint64_t word) {
  Insn insn;
  insn.opcode = uint8_t(word);
  insn.dst = (word >> 8) & 0xf;
  insn.src = (word >> 12) & 0xf;
  insn.off = int16_t(uint16_t(word >> 16));
  insn.imm = int32_t(uint32_t(word >> 32));
  return insn;
}

Program decode(std::span<const uint8_t> bytes, std::string name) {
  if (bytes.empty()) throw Error(name, "empty program");
  if (bytes.size() % kSlotBytes != 0)
    throw Error(name, "program length " + std::to_string(bytes.size()) +
                          " is not a multiple of 8 bytes");
  Program p{std::move(name), {}};
  p.insns.reserve(bytes.size() / kSlotBytes);
  for (size_t at = 0; at < bytes.size(); at += kSlotBytes) {
    uint64_t word = 0;
    for (size_t b = 0; b < kSlotBytes; ++b) word |= uint64_t(bytes[at + b]) << (8 * b);
    p.insns.push_back(from_word(word));
  }
  return p;
}

Program read_program_file(const std::string& path) {
  std::vector<uint8_t> bytes;
  if (path == "-") {
    bytes.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (std::cin.bad()) throw Error("<stdin>", "read error");
    return decode(bytes, "<stdin>");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, std::string("cannot open: ") + std::strerror(errno));
  bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path, "read error");
  return decode(bytes, path);
}

std::vector<uint8_t> encode(const Program& p) {
  std::vector<uint8_t> bytes;
  bytes.reserve(p.insns.size() * kSlotBytes);
  for (const Insn& insn : p.insns) {
    uint64_t word = to_word(insn);
    for (size_t b = 0; b < kSlotBytes; ++b) bytes.push_back(uint8_t(word >> (8 * b)));
  }
  return bytes;
}

}  // namespace sb::bpf
