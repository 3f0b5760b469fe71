// Tail calls (helper 12, bpf_tail_call) with the kernel's semantics, the
// part every engine shares:
//
//   bpf_tail_call(ctx, prog_array, index)
//     if index (32 bits) >= max_entries            -> fall through
//     if this run already made kMaxTailCalls       -> fall through
//     count it (an empty slot counts too, as in kernel/bpf/core.c)
//     if the slot is empty                         -> fall through
//     otherwise the target replaces the running program: r1 = ctx, a
//     fresh stack frame at the entry's depth; its r0 ends the whole run.
//   A fall-through leaves r0 = 0 and r1 as it was; r2-r5 are undefined
//   after it, as after any helper call.
//
// The helper itself (tail_call_helper, registered as id 12 by
// standard_helpers) checks and counts, and asks the run's engine for the
// target's code: every engine keeps its own cache of the programs it
// compiled or loaded (TailCallLoader) and makes a TailCallRun current on
// the thread for the length of one run. The helper returns what the loader
// returned (for compiled code, the address of the target's tail entry, just
// after its prologue saved the caller's registers; for the interpreter, the
// program itself) or 0. Compiled code (ir::Op::TailCall) then resets the
// native stack to the entry frame and jumps there; nothing returns.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>

#include "frontend/bpf.h"
#include "runtime/helpers/helpers.h"

namespace sb::rt {

constexpr uint32_t kTailCallHelperId = 12;  // BPF_FUNC_tail_call
constexpr uint32_t kMaxTailCalls = 33;      // MAX_TAIL_CALL_CNT

// An engine's cache of targets: returns what its code jumps to for
// `target`, compiling or loading it on first use. May throw sb::Error (a
// target that does not compile); the run then falls through and ends with
// that error.
class TailCallLoader {
 public:
  virtual ~TailCallLoader() = default;
  virtual uint64_t load(const std::shared_ptr<const bpf::Program>& target) = 0;
};

// One run's tail-call state, current on this thread while it lives (runs
// nest: a helper may run a program; the previous one is restored).
class TailCallRun {
 public:
  explicit TailCallRun(TailCallLoader& loader);
  ~TailCallRun();
  TailCallRun(const TailCallRun&) = delete;
  TailCallRun& operator=(const TailCallRun&) = delete;

  static TailCallRun* current();
  // The kernel's checks on a slot's program (null: empty or out of range,
  // from ProgArrayMap::get): the loader's answer, or 0 to fall through.
  uint64_t resolve(const std::shared_ptr<const bpf::Program>& slot, bool in_range);
  uint32_t count() const { return count_; }
  // The program running now: the last tail call's target, or null before
  // the first (nothing returns from a tail call, so a trap is in it).
  const bpf::Program* running() const { return running_.get(); }
  // Rethrows an error a loader raised during the run, if any.
  void finish() const;

 private:
  TailCallLoader& loader_;
  CurrentScope<TailCallRun> scope_;
  uint32_t count_ = 0;
  std::shared_ptr<const bpf::Program> running_;
  std::exception_ptr error_;
};

}  // namespace sb::rt
