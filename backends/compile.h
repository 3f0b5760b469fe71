// The compile pipeline, in order (design example 10):
//
//   bytes ──decode──▶ bpf::Program ──validate──▶ ──lower──▶ ir::Module ──check──▶
//     ──optimize──▶ ──check──▶ (harden ──check──▶) ──target passes──▶ ──select (backends/<arch>/isel.cpp + abi.cpp)──▶
//     MCInsts ──LLVM MC assembler──▶ machine code bytes | assembly text | ELF relocatable object
//
// decode: frontend/decoder.cpp      validate: frontend/validator.cpp
// lower:  frontend/lower.cpp        check:    ir/check.cpp (IR well-formedness)
// optimize: ir/passes.cpp (target-independent rewrites)
// target passes: ir/passes.cpp optimize_for_target, with the target's
//         addressing modes (TargetDesc::addressing)
// select: the target's ISel, driven by backends/isel.cpp
// encode: backends/mc/emitter.cpp (LLVM MC encodes; labels, fixups and relaxation
//         are LLVM's streamers or, for bytes, emitter.cpp's own assembler)
#pragma once

#include <cstdint>
#include <functional>

#include "backends/mc/emitter.h"
#include "backends/target.h"
#include "frontend/bpf.h"
#include "ir/harden.h"
#include "ir/ir.h"
#include "runtime/helpers/helpers.h"

namespace sb {

struct CompileOptions {
  Arch arch = Arch::X86_64;
  mc::OutputKind output = mc::OutputKind::Bytes;
  bool record_origins = false;  // native offset of every bytecode instruction (listings)
  // Where helper calls go; default: the host address of the helper's function.
  std::function<uint64_t(uint32_t id)> helper_address;
  // Bounds checks, time polls, constant blinding (ir/harden.h). Their
  // reserved helpers must be in the table (rt::with_hardening_helpers).
  ir::HardenOptions harden;
  // The IR passes (ir/passes.h): optimize after lowering and the target
  // passes (address folding, dead-code removal) before selection. Off,
  // the IR is selected as lowered.
  bool optimize = true;
  // Run the verifier (frontend/verifier/) after validation: a refused
  // program throws sb::Error naming the instruction. With bounds checks,
  // accesses it proves keep none.
  bool verify = false;
  // The program is compiled to be entered by a tail call: its r2 is its
  // caller's, not the memory's length (VerifyOptions::raw_length_in_r2).
  bool tail_call_target = false;
};

struct Compilation {
  ir::Module ir;
  mc::CodeImage image;
};

// validate + lower + verify (+ optimize + verify): the target-independent
// half. `optimize = false` gives the IR exactly as lowered. Reserved helper
// ids (ir/harden.h) are neither callable from bytecode nor callx targets.
// With `verify`, `proven` (when given) gets the verifier's proof of each
// access (bpf::verifier::VerifyResult::proven).
ir::Module to_ir(const bpf::Program& p, const rt::HelperTable& helpers, bool optimize = true, bool verify = false,
                 std::vector<uint8_t>* proven = nullptr, bool tail_call_target = false);

// The whole pipeline. Throws sb::Error naming the file and instruction.
// Compilation::ir is the module as selected (after hardening and the
// target passes).
Compilation compile(const bpf::Program& p, const rt::HelperTable& helpers, const CompileOptions& opts);

// The target-dependent half on an IR module (trampolines enter here too):
// the target passes on a copy of `m`, then selection.
mc::CodeImage generate(const ir::Module& m, const CompileOptions& opts);

}  // namespace sb
