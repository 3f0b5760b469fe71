// The breakpoint protocol and its SIGTRAP handler (see live_patch.h).
#include "runtime/hook/live_patch.h"

#include <dirent.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "ir/diag.h"
#include "runtime/hook/hook_x86_64.h"
#include "runtime/hook/sanitizer.h"

namespace sb::rt {

namespace {

constexpr uint8_t kInt3 = 0xCC;
constexpr size_t kSlots = 256;   // regions relocated at once (hooks alive)
constexpr size_t kMoved = 16;    // displaced instructions per region
constexpr uint32_t kMaxThreads = 4096;
// The stop round's signal (live_patch.h); its previous action gets the
// signals not sent by a stop round.
const int kStopSignal = SIGRTMAX - 1;

// Under ThreadSanitizer (runtime/hook/sanitizer.h) the handlers are
// installed with the rt_sigaction system call itself, out of TSan's sight,
// and are not instrumented (SB_SIGNAL_CONTEXT): TSan's own handler defers
// the signals it does not take for faults (GCC 12's: SIGTRAP and the
// real-time ones) to the thread's next call into its runtime and then runs
// ours on a copy of the context, so a thread would resume after the
// breakpoint, in the middle of an instruction, and a spinning one would
// never answer a stop round. TSan's background thread, which blocks every
// signal and runs no hooked code, is left out of the rounds.

// A sequence lock: the handler reads the fields (relaxed atomics, as the
// C++ memory model wants for data read while it may be rewritten) between
// two reads of an even `seq`.
struct Slot {
  std::atomic<uint64_t> seq{0};  // odd while being written
  std::atomic<bool> used{false};
  std::atomic<uint64_t> lo{0}, hi{0};
  std::atomic<uint32_t> count{0};
  std::atomic<uint32_t> offset[kMoved] = {};
  std::atomic<uint64_t> copy[kMoved] = {};
};

struct State {
  Slot slots[kSlots];
  // A stop round's answers: answered[i] is (round << 32 | thread id), so an
  // entry left from an earlier round is never taken for this one's, even
  // while its new writer has claimed the index but not yet written it.
  std::atomic<uint32_t> round{0};
  std::atomic<uint32_t> answered_count{0};
  std::atomic<uint64_t> answered[kMaxThreads] = {};
  std::atomic<uint64_t> answered_pc[kMaxThreads] = {};  // where each was stopped
  // What each stopped thread runs before it answers (other_threads_pcs).
  std::atomic<void (*)(void*)> probe{nullptr};
  std::atomic<void*> probe_arg{nullptr};
  struct sigaction previous {};       // SIGTRAP's
  struct sigaction previous_stop {};  // kStopSignal's
  std::mutex patching;  // one stop round at a time
  bool membarrier = false;
};

State& state() {
  static State s;
  return s;
}

// The copy of the instruction at `pc` in a relocated region, or 0; `start`
// only: a thread stopped between instructions (pc > lo) or on the breakpoint.
SB_SIGNAL_CONTEXT uint64_t relocated_pc(uint64_t pc, bool inside_only) {
  State& s = state();
  for (Slot& slot : s.slots) {
    if (!slot.used.load(std::memory_order_acquire)) continue;
    for (;;) {
      const uint64_t seq = slot.seq.load(std::memory_order_acquire);
      if (seq & 1) break;
      constexpr auto r = std::memory_order_relaxed;
      const uint64_t lo = slot.lo.load(r), hi = slot.hi.load(r);
      uint64_t found = 0;
      if (pc >= lo && pc < hi && !(inside_only && pc == lo))
        for (uint32_t k = 0, n = slot.count.load(r); k < n && k < kMoved; ++k)
          if (lo + slot.offset[k].load(r) == pc) found = slot.copy[k].load(r);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (slot.seq.load(std::memory_order_relaxed) != seq) continue;  // rewritten meanwhile: read again
      if (found) return found;
      break;
    }
  }
  return 0;
}

// Hands a signal that is not ours to the action installed before ours.
SB_SIGNAL_CONTEXT void chain(const struct sigaction& p, int sig, siginfo_t* info, void* ctx) {
  if (p.sa_flags & SA_SIGINFO) {
    if (p.sa_sigaction) p.sa_sigaction(sig, info, ctx);
    return;
  }
  if (p.sa_handler == SIG_IGN) return;
  if (p.sa_handler != SIG_DFL) return p.sa_handler(sig);
  // The default action (SIGTRAP's a core dump), as if we had not been here.
  signal(sig, SIG_DFL);
  raise(sig);
}

// A breakpoint: rip is after the int3.
SB_SIGNAL_CONTEXT void on_sigtrap(int sig, siginfo_t* info, void* ctx) {
  greg_t& rip = static_cast<ucontext_t*>(ctx)->uc_mcontext.gregs[REG_RIP];
  if (info->si_code == SI_KERNEL)
    if (uint64_t to = relocated_pc(uint64_t(rip) - 1, false)) {
      rip = greg_t(to);
      return;
    }
  chain(state().previous, sig, info, ctx);
}

// A stop round's signal (real-time: unlike a second SIGTRAP, it is never
// merged with the pending one of a breakpoint).
SB_SIGNAL_CONTEXT void on_stop(int sig, siginfo_t* info, void* ctx) {
  if (info->si_code != SI_TKILL || info->si_pid != getpid()) return chain(state().previous_stop, sig, info, ctx);
  greg_t& rip = static_cast<ucontext_t*>(ctx)->uc_mcontext.gregs[REG_RIP];
  if (uint64_t to = relocated_pc(uint64_t(rip), true)) rip = greg_t(to);
  State& s = state();
  if (auto probe = s.probe.load(std::memory_order_acquire)) probe(s.probe_arg.load(std::memory_order_relaxed));
  const uint32_t i = s.answered_count.fetch_add(1, std::memory_order_acq_rel);
  if (i < kMaxThreads) {
    s.answered_pc[i].store(uint64_t(rip), std::memory_order_relaxed);
    const uint64_t round = s.round.load(std::memory_order_relaxed);
    s.answered[i].store(round << 32 | uint32_t(syscall(SYS_gettid)), std::memory_order_release);
  }
}

#ifdef SB_UNDER_TSAN
extern "C" void sb_live_patch_restorer();
asm(R"(
  .text
  .p2align 4
sb_live_patch_restorer:
  mov $15, %eax  # rt_sigreturn
  syscall
)");

// sigaction() by the system call (see SB_UNDER_TSAN above).
int install_action(int sig, const struct sigaction* sa, struct sigaction* old) {
  struct KernelAction {
    void* handler;
    unsigned long flags;
    void (*restorer)();
    uint64_t mask;
  };
  constexpr unsigned long kRestorer = 0x04000000;  // SA_RESTORER
  KernelAction k{reinterpret_cast<void*>(sa->sa_sigaction), static_cast<unsigned long>(sa->sa_flags) | kRestorer,
                 &sb_live_patch_restorer, 0};
  for (int s = 1; s <= 64; ++s)
    if (sigismember(&sa->sa_mask, s) == 1) k.mask |= uint64_t(1) << (s - 1);
  KernelAction o{};
  if (syscall(SYS_rt_sigaction, sig, &k, &o, sizeof k.mask) != 0) return -1;
  *old = {};
  old->sa_flags = int(o.flags & ~kRestorer);
  if (o.flags & SA_SIGINFO)
    old->sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t*, void*)>(o.handler);
  else
    old->sa_handler = reinterpret_cast<void (*)(int)>(o.handler);
  return 0;
}
#else
int install_action(int sig, const struct sigaction* sa, struct sigaction* old) { return sigaction(sig, sa, old); }
#endif

void install_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    State& s = state();
    struct sigaction sa {};
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_sigtrap;
    // A stop round waits until a thread has left the breakpoint handler,
    // so the place it samples is the one the thread resumes at.
    sigaddset(&sa.sa_mask, kStopSignal);
    if (install_action(SIGTRAP, &sa, &s.previous) != 0)
      throw Error("runtime", std::string("installing the SIGTRAP handler failed: ") + strerror(errno));
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_stop;
    if (install_action(kStopSignal, &sa, &s.previous_stop) != 0)
      throw Error("runtime", std::string("installing the stop-signal handler failed: ") + strerror(errno));
    s.membarrier = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0) == 0;
  });
}

// Every thread serialises its instruction stream before it runs again.
void sync_cores() {
  if (state().membarrier) syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0);
}

#ifdef SB_UNDER_TSAN
// Whether thread `tid` blocks (nearly) every signal (SigBlk in its
// status), as TSan's background thread does. A thread in one of our
// handlers blocks the stop signal too, but not the others, and must be
// waited for.
bool blocks_every_signal(pid_t tid) {
  FILE* f = std::fopen(fmt::format("/proc/self/task/{}/status", tid).c_str(), "r");
  if (!f) return false;
  char line[256];
  unsigned long long mask = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, "SigBlk:", 7) == 0) mask = std::strtoull(line + 7, nullptr, 16);
  std::fclose(f);
  auto blocked = [&](int sig) { return (mask >> (sig - 1)) & 1; };
  return blocked(kStopSignal) && blocked(SIGSEGV) && blocked(SIGINT) && blocked(SIGTERM) && blocked(SIGTRAP);
}
#endif

// Stops every other thread once; the handler moves those inside a region
// and answers with its thread id. Done when each thread asked answered or
// has exited.
std::vector<uint64_t> stop_round() {
  State& s = state();
  const pid_t pid = getpid(), self = pid_t(syscall(SYS_gettid));
  const uint64_t round = uint32_t(s.round.fetch_add(1, std::memory_order_relaxed) + 1);
  s.answered_count.store(0);
  std::vector<pid_t> asked;
  DIR* d = opendir("/proc/self/task");
  if (!d) throw Error("runtime", "cannot list the threads (/proc/self/task) to patch live code");
  while (dirent* e = readdir(d)) {
    const pid_t tid = pid_t(atoi(e->d_name));
    if (tid <= 0 || tid == self) continue;
#ifdef SB_UNDER_TSAN
    if (blocks_every_signal(tid)) continue;  // TSan's own background thread: it runs no hooked code
#endif
    if (asked.size() >= kMaxThreads) break;
    if (syscall(SYS_tgkill, pid, tid, kStopSignal) == 0) asked.push_back(tid);
  }
  closedir(d);
  if (asked.size() >= kMaxThreads)
    throw Error("runtime", fmt::format("more than {} threads: live patching cannot stop them all", kMaxThreads));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    const uint32_t n = std::min<uint32_t>(s.answered_count.load(std::memory_order_acquire), kMaxThreads);
    size_t missing = 0;
    for (pid_t tid : asked) {
      bool done = false;
      for (uint32_t i = 0; i < n && !done; ++i)
        done = s.answered[i].load(std::memory_order_acquire) == (round << 32 | uint32_t(tid));
      if (!done && syscall(SYS_tgkill, pid, tid, 0) == 0) ++missing;  // alive and not answered
    }
    if (!missing) {
      std::vector<uint64_t> pcs;
      for (uint32_t i = 0; i < n; ++i)
        if (s.answered[i].load(std::memory_order_acquire) >> 32 == round)
          pcs.push_back(s.answered_pc[i].load(std::memory_order_relaxed));
      return pcs;
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw Error("runtime", fmt::format("{} of {} threads did not answer the stop signal (is it blocked?)",
                                         missing, asked.size()));
    std::this_thread::yield();
  }
}

}  // namespace

std::vector<uint64_t> other_threads_pcs(void (*probe)(void*), void* arg) {
  install_handler();
  State& s = state();
  std::lock_guard<std::mutex> lock(s.patching);
  s.probe_arg.store(arg, std::memory_order_relaxed);
  s.probe.store(probe, std::memory_order_release);
  struct Clear {
    State& s;
    ~Clear() { s.probe.store(nullptr, std::memory_order_release); }
  } clear{s};
  return stop_round();
}

Relocated::Relocated(uint64_t lo, uint64_t hi, std::span<const std::pair<uint32_t, uint64_t>> moved) : slot_(-1) {
  install_handler();
  if (moved.size() > kMoved) throw Error("runtime", fmt::format("more than {} displaced instructions", kMoved));
  State& s = state();
  for (size_t k = 0; k < kSlots; ++k) {
    bool expected = false;
    if (!s.slots[k].used.compare_exchange_strong(expected, true)) continue;
    Slot& slot = s.slots[k];
    constexpr auto r = std::memory_order_relaxed;
    slot.seq.fetch_add(1, std::memory_order_acq_rel);  // odd: being written
    slot.lo.store(lo, r);
    slot.hi.store(hi, r);
    slot.count.store(uint32_t(moved.size()), r);
    for (size_t i = 0; i < moved.size(); ++i) {
      slot.offset[i].store(moved[i].first, r);
      slot.copy[i].store(moved[i].second, r);
    }
    slot.seq.fetch_add(1, std::memory_order_release);
    slot_ = int(k);
    return;
  }
  throw Error("runtime", fmt::format("more than {} hooks are attached or being detached", kSlots));
}

Relocated::~Relocated() {
  Slot& slot = state().slots[slot_];
  constexpr auto r = std::memory_order_relaxed;
  slot.seq.fetch_add(1, std::memory_order_acq_rel);
  slot.lo.store(0, r);
  slot.hi.store(0, r);
  slot.count.store(0, r);
  slot.seq.fetch_add(1, std::memory_order_release);
  slot.used.store(false, std::memory_order_release);
}

void poke_live(uint8_t* address, const uint8_t* bytes, size_t size, bool move_threads) {
  install_handler();
  State& s = state();
  std::lock_guard<std::mutex> lock(s.patching);
  const uint8_t first = address[0];
  patch_code(address, &kInt3, 1);
  sync_cores();
  if (size > 1) {
    if (move_threads) {
      try {
        stop_round();
      } catch (...) {
        patch_code(address, &first, 1);
        sync_cores();
        throw;
      }
    }
    patch_code(address + 1, bytes + 1, size - 1);
    sync_cores();
  }
  patch_code(address, bytes, 1);
  sync_cores();
}

}  // namespace sb::rt
