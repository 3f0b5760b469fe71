// Runs generated code for any target in Unicorn: arm64 and riscv64 on this
// x86-64 host, and x86-64 too (to check the emulator path against native).
//
// Guest address space:
//   kCodeBase    the compiled program (read/execute), then the programs its
//                tail calls went to, each mapped on its first tail call in a
//                run, up to kCodeWindow bytes in all
//   kHelperBase  one slot of 16 bytes per helper: a `ret`, with a hook that
//                calls the host helper with the argument registers first
//   kExitAddr    the return address of the entry call; reaching it ends the run
// and, each at its own host address (uc_mem_map_ptr: the guest reads and
// writes host memory in place, nothing is copied), the memory a program's
// pointers reach: a kStackSize native stack allocated per run (sp starts at
// its top), the pages holding the program's memory (so r1 is the same
// pointer as on the other engines), and the helper context's host ranges
// (map values, global data, ring buffers; HelperContext::host_ranges). A
// pointer thus means the same thing in the guest, to helpers running on the
// host, and on every engine.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/mc/emitter.h"
#include "backends/target.h"
#include "frontend/bpf.h"
#include "runtime/exec/hardening.h"
#include "runtime/helpers/helpers.h"

namespace sb::rt {

struct EmuOptions {
  uint64_t insn_budget = 50'000'000;  // native instructions; exceeding it is an error
};

class EmulatedProgram {
 public:
  static constexpr uint64_t kCodeBase = 0x10000000;
  static constexpr uint64_t kCodeWindow = 0x1000000;
  static constexpr uint64_t kStackSize = 0x10000;
  static constexpr uint64_t kHelperBase = 0x40000000;
  static constexpr uint64_t kExitAddr = 0x50000000;

  // Compiles `p` for `arch`, hardened as `safety` asks, with helper calls
  // aimed at the helper slots. The helpers' context must outlive the
  // program. `optimize`: CompileOptions::optimize (off: the IR as lowered).
  EmulatedProgram(const bpf::Program& p, const HelperTable& helpers, Arch arch, const Safety& safety = {},
                  bool optimize = true);
  ~EmulatedProgram();

  // r1 = mem.data() (or 0 without memory), r2 = mem.size(); the program
  // works on `mem` in place. Throws sb::Error on a fault (naming the arch, the
  // guest address and, when known, the bytecode instruction), on a trap,
  // and when the budget runs out.
  uint64_t run(std::vector<uint8_t>& mem, const EmuOptions& opts = {}) const;

  const mc::CodeImage& image() const { return image_; }
  Arch arch() const { return arch_; }

 private:
  class Targets;  // tail-call targets compiled for arch_, once each
  std::string name_;
  Arch arch_;
  HelperTable helpers_;  // with the hardening helpers when hardened
  Safety safety_;
  mc::CodeImage image_;
  std::unique_ptr<Targets> targets_;
};

}  // namespace sb::rt
