// Hooking a function of this process (x86-64): calls to it go to a
// destination that can be switched atomically, and the original function
// stays callable through a stub.
//
//   target:  jmp thunk            (5 bytes replacing its first instructions)
//   thunk:   jmp [slot]           (slot: 8 bytes in a read-write data page)
//   stub:    <displaced instructions, relocated>
//            jmp [target + displaced]
//
// Branches from the rest of the function into the displaced bytes (a
// loop whose head is the entry or one of the first instructions) are found
// before patching: the function's extent comes from its object's symbol
// table (runtime/hook/symbols.h) and is swept, with the parts split off it
// ("name.cold") and the jump tables it indexes (lea T(%rip) + movslq
// (T,i,4); jmp *T(,i,8)); without a symbol, its control flow is followed
// from the entry. Each such branch with a rel32 is re-aimed at the matching
// instruction of the relocated copy (and restored on detach), so a loop
// never re-enters the hook; one with a rel8, or a jump-table entry, makes
// the hook refused, the error naming the branch's address. Branches
// among the displaced instructions stay inside the copy.
// Not detected: indirect jumps whose targets are in no visible table.
//
// A function shorter than the jump (it returns or jumps away in its first
// 4 bytes) is hooked only when its symbol ends there and the bytes after
// it up to the next symbol are alignment padding (nops or int3, nothing
// else): the jump's last bytes then go over padding no one runs, and
// detaching writes that back too. Otherwise it is refused as too short.
//
// Two hooks never patch the same bytes: one whose entry or re-aimed
// branches would cover bytes an attached hook patched is refused, naming
// that hook (each one's detach restores the bytes it saw).
//
// The entry is written as the kernel's text_poke_bp does, so that threads
// running the function meanwhile never fault (runtime/hook/live_patch.h).
//
// Patching never makes a page writable and executable: the pages holding
// the first bytes are rebuilt in a fresh mapping, sealed read-execute and
// moved over the old ones with mremap, which other threads see at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/exec/exec_memory.h"
#include "runtime/hook/live_patch.h"

namespace sb::rt {

class Hook {
 public:
  // Throws sb::Error (naming the function's address and the instruction)
  // when the function cannot be hooked: too short before a return or jump
  // with no padding after it to take the rest of the jump,
  // a branch into the displaced bytes that cannot be re-aimed (named by
  // its address), an instruction that cannot move.
  // `probe`: `target` may be any instruction (a probe at FUNC+OFF) and
  // the thunk keeps every register (jmp [rip+slot]; at a function's entry
  // otherwise it may use r11, dead there). An address inside an
  // instruction of its function (by its symbol) is refused, naming it.
  // Branches to a probe's instruction (a loop's head) are left going to it,
  // so the probe fires on each, as a breakpoint there would.
  // A probe where the jump does not fit (its instruction within 5 bytes of
  // the function's end without padding, a short branch into the 4 bytes
  // after it, another hook's bytes there) takes a breakpoint instead, as
  // a kernel uprobe does: its instruction's first byte becomes int3, and
  // the trap (live_patch.h) sends the thread on to the thunk; one trap
  // per hit (breakpoint()).
  static std::unique_ptr<Hook> install(void* target, bool probe = false);
  bool breakpoint() const { return breakpoint_; }
  // Restores the original bytes; calls then run the function directly.
  // The thunk and stub stay mapped until the Hook is destroyed, since a
  // thread may still be inside them: an owner frees a detached hook once a
  // stop round (other_threads_pcs) after detach() finds no thread in
  // code() and nothing that may still call original() is left; a stub
  // that calls out (a displaced indirect call; a direct one returns to the
  // original function) may be returned to at any later time
  // and is never freed.
  void detach();
  // After detach() and a stop round: no thread can still stop on the
  // breakpoint of the entry patch, so its slot in the process-wide table
  // of relocated regions (live_patch.h) is given back.
  void release_traps() { relocated_.reset(); }
  // The thunk and the stub: where a thread running through the hook is.
  bool contains(uint64_t pc) const {
    const uint64_t lo = reinterpret_cast<uint64_t>(stub_.data());
    return pc >= lo && pc < lo + stub_.size();
  }
  bool stub_calls_out() const { return calls_out_; }
  ~Hook();  // detaches if still attached

  // Where calls go now; initially original(). One atomic store.
  void redirect(const void* destination);
  const void* original() const { return stub_.data() + stub_offset_; }
  const void* target() const { return target_; }
  size_t displaced() const { return displaced_; }

 private:
  Hook() = default;
  static std::unique_ptr<Hook> build(uint8_t* code, const std::string& at, bool probe, bool breakpoint);
  uint8_t* target_ = nullptr;
  bool breakpoint_ = false;
  size_t displaced_ = 0;
  std::vector<uint8_t> saved_;  // the original first bytes
  ExecMemory stub_;             // thunk, then the relocated instructions
  size_t stub_offset_ = 0;
  struct CodePatch {
    uint8_t* at;
    std::vector<uint8_t> saved, bytes;
  };
  std::vector<CodePatch> reaimed_;  // branches into the displaced bytes, aimed at the copy
  std::vector<std::pair<uint32_t, uint64_t>> moved_;  // displaced instruction's offset -> its copy
  std::unique_ptr<Relocated> relocated_;  // traps and stopped threads -> the copy
  ExecMemory slot_page_;                   // read-write, never executable
  std::atomic<uint64_t>* slot_ = nullptr;  // in slot_page_
  bool attached_ = false;
  bool calls_out_ = false;  // a displaced call: a thread may return into the stub at any time
};

// Replaces `size` bytes at `address` in executable code without ever
// mapping it writable and executable (see above). Exposed for tests.
void patch_code(void* address, const uint8_t* bytes, size_t size);

}  // namespace sb::rt
