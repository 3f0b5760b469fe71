// Every way Springboard can execute a program, as one list: the CLI's run
// and diff commands and every cross-engine test use it (design example 7),
// so a new engine is covered everywhere by adding it here.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backends/target.h"
#include "frontend/bpf.h"
#include "runtime/exec/hardening.h"
#include "runtime/helpers/helpers.h"

namespace sb::rt {

enum class EngineKind { Interp, Native, Emulated };

// How to run: the hardening an untrusted program needs (runtime/exec/hardening.h)
// and the interpreter's and emulator's instruction budget.
struct RunOptions {
  Safety safety;
  uint64_t insn_budget = 0;  // 0: the engine's default (interpreter: none); native code has none
  // Compiled engines: run the IR passes (CompileOptions::optimize). Off, the
  // IR is selected as lowered, so a test's constants reach instruction
  // selection instead of being folded away first.
  bool optimize = true;
};

struct Engine {
  // One program made ready to run (validated and verified, compiled), run
  // any number of times over memory: r1 = mem.data(), r2 = mem.size().
  using Runner = std::function<uint64_t(std::vector<uint8_t>& mem)>;
  // `p` and `h` must outlive the runner.
  using Prepare = std::function<Runner(const bpf::Program& p, const HelperTable& h, const RunOptions& opts)>;
  std::string name;  // "interp", "x86_64_native", "arm64_emu", ...
  EngineKind kind;
  Arch arch;         // meaningless for the interpreter
  Prepare prepare;
  // Validates and runs `p` over `mem` (modified in place); returns r0,
  // throws sb::Error naming the instruction on any fault.
  uint64_t run(const bpf::Program& p, const HelperTable& h, std::vector<uint8_t>& mem,
               const RunOptions& opts = {}) const {
    return prepare(p, h, opts)(mem);
  }
};

// The interpreter, native x86-64 (on an x86-64 host), then every built
// backend under Unicorn.
const std::vector<Engine>& engines();
const Engine* find_engine(EngineKind kind, Arch arch);

}  // namespace sb::rt
