// The conformance suite's assembler syntax -> bytecode:
//   mov %r0, 1 / mov32 / add / ... / lddw %r1, 0x1122334455667788
//   ldxb %r0, [%r1+2] / stxdw [%r10-8], %r1 / stw [%r1], 5
//   lock [fetch] add[32] [%r1+0], %r2 / lock xchg / lock cmpxchg[32]
//   jeq %r1, 5, +2 / jne32 %r1, %r2, label / ja label / ja32 label
//   call 5 / call %r2 (callx) / call local func / exit / label:
//   be16/be32/be64 le16/le32/le64 swap16/32/64 (bswap16/32/64) neg/neg32
//   movsx{8,16,32}{32,64} / ldxs{b,h,w} / sdiv[32] / smod[32]
//   .raw 0x<64-bit word>  (any slot, as in `-- raw`; the disassembler prints
//                          encodings no mnemonic covers this way)
// Immediates are decimal or 0x hex with an optional sign; a 32-bit immediate
// accepts [-2^31, 2^32) (0xfffffffd is -3), lddw [-2^63, 2^64). Offsets and
// numeric jump targets are signed. `exit` as a jump target names the first
// exit instruction unless a label `exit:` exists (as the suite's assembler).
// `#` starts a comment.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "frontend/bpf.h"

namespace sb::bpf {

// Throws sb::Error located at "NAME: line N" naming the bad token.
Program assemble(std::string_view source, std::string name = "<asm>");

// The same for source that starts at line `first_line` of file NAME (an
// `-- asm` section), so that errors name the file's line.
Program assemble(std::string_view source, std::string name, size_t first_line);

}  // namespace sb::bpf
