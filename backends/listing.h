// A listing: each bytecode instruction followed by the native instructions
// it produced (Capstone for x86-64 and arm64, LLVM for riscv64).
#pragma once

#include <string>

#include "backends/mc/emitter.h"
#include "backends/target.h"
#include "frontend/bpf.h"

namespace sb {

// `image` must come from a Bytes compile with record_origins set.
std::string listing(const bpf::Program& p, Arch arch, const mc::CodeImage& image);

}  // namespace sb
