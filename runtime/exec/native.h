// Runs JIT-compiled x86-64 code in this process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "backends/mc/emitter.h"
#include "frontend/bpf.h"
#include "runtime/exec/exec_memory.h"
#include "runtime/exec/hardening.h"
#include "runtime/helpers/helpers.h"

namespace sb::rt {

// What every entry function returns (backends/isel.h): status is 0 or an
// ir::TrapCode, and then r0 is the index of the faulting instruction.
struct EntryResult {
  uint64_t r0;
  uint64_t status;
};
using EntryFn = EntryResult (*)(void* mem, uint64_t len);

class NativeProgram {
 public:
  // Compiles for the host (x86-64), hardened as `safety` asks. Throws
  // sb::Error on a bad program or when the host is not x86-64. The
  // helpers' context must outlive the program. `optimize`:
  // CompileOptions::optimize (off: the IR as lowered); `tail_call_target`:
  // CompileOptions::tail_call_target (the program's tail-call targets).
  NativeProgram(const bpf::Program& p, const HelperTable& helpers, const Safety& safety = {}, bool optimize = true,
                bool tail_call_target = false);
  ~NativeProgram();

  // r1 = mem, r2 = len. Throws sb::Error naming the instruction on a trap,
  // a bounds fault (with the address) or an exhausted time budget.
  uint64_t run(void* mem, size_t len) const;

  // The entry when a run needs nothing around it (no helper calls, so no
  // helper context or tail calls, and no hardening record): run() then just
  // calls it, and sb_code_function hands it out. Null otherwise.
  EntryFn direct_entry() const { return direct_; }

  const mc::CodeImage& image() const { return image_; }
  const void* entry() const { return code_.data(); }
  const void* tail_entry() const;  // where a tail call enters (mc::kTailEntrySymbol)

 private:
  class Targets;  // the programs tail calls went to, compiled once each
  std::string name_;
  HelperTable helpers_;  // with the hardening helpers when hardened
  Safety safety_;
  mc::CodeImage image_;
  ExecMemory code_;
  std::unique_ptr<Targets> targets_;
  EntryFn direct_ = nullptr;
};

// Converts an entry's result to r0 or an sb::Error naming the instruction.
uint64_t check_result(const EntryResult& r, const std::string& program_name);

}  // namespace sb::rt
