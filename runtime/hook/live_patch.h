// Patching x86-64 code that other threads of this process may be running,
// as the kernel's text_poke_bp: a breakpoint over the first byte, a core
// serialisation (membarrier SYNC_CORE), the other bytes, another, the first
// byte, another. A SIGTRAP handler moves a thread that stops on the
// breakpoint to the relocated copy of the instruction it was about to run;
// and before the other bytes are written, every other thread is stopped
// once (signal SIGRTMAX - 1 sent with tgkill; its handler answers) and one
// standing between two displaced instructions is moved to the matching
// instruction of the copy, so no thread ever resumes inside the new bytes.
//
// The handler is process-wide, as signal dispositions are: it is installed
// once (the previous SIGTRAP action is called for traps that are not ours)
// and reads a fixed table of the regions being patched, each guarded by a
// sequence count. This table and the answer count are the library's only
// mutable process-wide state besides the recursion guard's (tramp_runtime).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace sb::rt {

// While alive, a breakpoint or a stopped thread in [lo, hi) is moved to
// the copy of the instruction at its offset (`moved`: offset -> address).
class Relocated {
 public:
  Relocated(uint64_t lo, uint64_t hi, std::span<const std::pair<uint32_t, uint64_t>> moved);  // throws sb::Error
  ~Relocated();
  Relocated(const Relocated&) = delete;
  Relocated& operator=(const Relocated&) = delete;

 private:
  int slot_;
};

// Replaces `size` bytes at `address` (the start of an instruction, the
// region of a live Relocated) by the protocol above; `move_threads` stops
// the other threads once before the bytes after the first are written
// (needed when the new bytes split the old instructions). Throws sb::Error
// and leaves the old bytes when a thread does not answer.
void poke_live(uint8_t* address, const uint8_t* bytes, size_t size, bool move_threads);

// Stops every other thread once (the stop round above) and returns where
// each was: code that no thread stands in and that no thread can enter
// any more can be freed (runtime/hook/trampoline.h). Each stopped thread
// first runs `probe(arg)` in its signal handler (so async-signal-safe),
// to report its own state (the images it is inside). Throws sb::Error.
std::vector<uint64_t> other_threads_pcs(void (*probe)(void*) = nullptr, void* arg = nullptr);

}  // namespace sb::rt
