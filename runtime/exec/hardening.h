// The runtime half of the hardening passes (ir/harden.h): the two reserved
// helpers that hardened code calls, the record of one hardened run, and
// the watchdog of a time budget. Every engine that runs compiled code
// (native and Unicorn) uses these, and the interpreter checks the same
// ranges with the same messages, so a fault reads alike on every engine.
//
// A run's record is found by its helpers through this thread's current
// RunScope, as helpers find their HelperContext (runtime/helpers/helpers.h).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ir/harden.h"
#include "runtime/helpers/helpers.h"
#include "runtime/maps/maps.h"

namespace sb::rt {

// What an embedder asks of a run of an untrusted program (every engine).
struct Safety {
  // Prove the program safe before it runs (frontend/verifier/): refused
  // programs throw sb::Error. The CLI and the C API turn it on unless told
  // the code is trusted (--no-verify, SB_VM_NO_VERIFY).
  bool verify = false;
  bool bounds_check = false;     // every load/store/atomic checked; a fault names insn and address
  bool blind_constants = false;  // compiled code only: no user immediate appears verbatim
  uint64_t blind_seed = 0;       // 0: random per compile
  uint64_t time_budget_ns = 0;   // 0: none; otherwise TimeLimit once it has passed
  ir::HardenOptions harden() const { return {bounds_check, time_budget_ns != 0, blind_constants, blind_seed, nullptr}; }
  bool needs_record() const { return bounds_check || time_budget_ns != 0; }
};

// Where a program may load and store besides its memory and its stack.
std::vector<HostRange> reachable_ranges(const HelperTable& helpers);

// "out-of-bounds access of 4 bytes at 0x1234": the text every engine uses.
std::string access_fault(uint64_t addr, uint64_t size);

// One hardened run on this thread.
class RunRecord {
 public:
  // `ranges`: reachable_ranges(). With a time budget the record owns the
  // stop word polls read, in a page of its own so that the emulator can
  // show it to the guest (stop_range()).
  RunRecord(std::vector<HostRange> ranges, const Safety& safety);
  bool checks_bounds() const { return bounds_; }

  // The check-access helper's search: refills the block's cache on a hit.
  bool check(uint64_t addr, uint64_t size, uint32_t origin, ir::RunBlock* block);
  // The run-init helper: fills the block, zeroes the stack region.
  void init(uint64_t mem, uint64_t len, uint64_t entry_frame, uint64_t stack_bytes);
  // The interpreter's regions (it has no run block).
  void set_regions(HostRange memory, HostRange stack);
  // Whether [addr, addr + size) lies in the memory, the stack region or a
  // reachable range: what helpers check their pointer arguments against.
  bool allows(uint64_t addr, uint64_t size) const;

  struct Fault {
    uint64_t addr, size;
    uint32_t origin;
  };
  const std::optional<Fault>& fault() const { return fault_; }

  // Tells the running code to stop at its next poll (from any thread).
  void request_stop();
  std::optional<HostRange> stop_range() const;

 private:
  std::vector<HostRange> ranges_;
  bool bounds_;
  std::optional<HostRange> memory_;  // the program's memory, from the first init of the run
  HostRange stack_;                  // the BPF stack region
  std::optional<Fault> fault_;
  PageMemory stop_page_;  // empty without a time budget
};

// RunScope::current()->allows(addr, size) in a bounds-checked run; true
// otherwise (a run without bounds checks trusts its program).
bool access_allowed(uint64_t addr, uint64_t size);

// Makes `record` this thread's current run until destroyed.
using RunScope = CurrentScope<RunRecord>;

// Calls record.request_stop() when `budget` has passed, unless destroyed
// first (declare it after the record). A budget of zero starts nothing.
class Watchdog {
 public:
  Watchdog(RunRecord& record, std::chrono::nanoseconds budget);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// `helpers` plus the reserved helpers hardened code calls.
HelperTable with_hardening_helpers(const HelperTable& helpers);

// Turns an entry's {r0, status} into r0 or an sb::Error naming the
// instruction: a trap's message, with the address of a bounds fault and the
// budget of a time limit.
uint64_t finish_run(uint64_t r0, uint64_t status, const std::string& program, const RunRecord* record,
                    uint64_t time_budget_ns);

}  // namespace sb::rt
