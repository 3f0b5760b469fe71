// The tracing helpers; see tracing_helpers.h.
#include "runtime/helpers/tracing_helpers.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "backends/native_abi.h"
#include "runtime/exec/hardening.h"
#include "runtime/helpers/std_helpers.h"
#include "runtime/hook/tramp_runtime.h"
#include "runtime/maps/stack_trace.h"
#include "runtime/trace/build_id.h"

namespace sb::rt {

namespace {

constexpr size_t kCommLen = 16;  // TASK_COMM_LEN

uint64_t err(int e) { return uint64_t(-int64_t(e)); }

// Copies [src, src+size) of this process into dst without faulting: the
// number of bytes read (process_vm_readv stops at the first unmapped page).
size_t read_process(void* dst, uint64_t src, size_t size) {
  iovec local{dst, size};
  iovec remote{reinterpret_cast<void*>(uintptr_t(src)), size};
  const ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  return n < 0 ? 0 : size_t(n);
}

uint64_t get_current_pid_tgid(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return uint64_t(uint32_t(getpid())) << 32 | uint32_t(gettid());
}

uint64_t get_current_uid_gid(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return uint64_t(getgid()) << 32 | getuid();
}

uint64_t get_current_comm(uint64_t buf, uint64_t size, uint64_t, uint64_t, uint64_t) {
  if (size == 0) return 0;  // the verifier proves size > 0
  auto* out = reinterpret_cast<char*>(uintptr_t(buf));
  if (!access_allowed(buf, size)) return err(EFAULT);
  char comm[kCommLen + 1] = {};
  if (prctl(PR_GET_NAME, comm) != 0) {
    std::memset(out, 0, size);
    return err(EINVAL);
  }
  const size_t n = std::min<size_t>(strnlen(comm, kCommLen), size - 1);  // strscpy
  std::memcpy(out, comm, n);
  out[n] = '\0';
  return 0;
}

uint64_t probe_read_memory(uint64_t dst, uint64_t size, uint64_t src, uint64_t, uint64_t) {
  if (size == 0) return 0;
  if (!access_allowed(dst, size)) return err(EFAULT);
  void* to = reinterpret_cast<void*>(uintptr_t(dst));
  if (read_process(to, src, size) == size) return 0;
  std::memset(to, 0, size);
  return err(EFAULT);
}

uint64_t probe_read_memory_str(uint64_t dst, uint64_t size, uint64_t src, uint64_t, uint64_t) {
  if (size == 0) return 0;
  if (!access_allowed(dst, size)) return err(EFAULT);
  auto* to = reinterpret_cast<char*>(uintptr_t(dst));
  if (const std::optional<size_t> n = read_process_string(to, src, size)) return *n;
  std::memset(to, 0, size);
  return err(EFAULT);
}

#if defined(__x86_64__)
// Words of a probe's x86-64 pt_regs, from backends/native_abi.h's offsets
// (rbp, which the stack walk starts from, is word 4).
constexpr const backend::ProbeRegs& kX86Regs = backend::probe_regs(Arch::X86_64);
constexpr size_t kAx = kX86Regs.rc / 8, kIp = kX86Regs.ip / 8, kSp = kX86Regs.sp / 8, kBp = 4;

// What an overridden function "runs" instead (the kernel's
// just_return_func): the return to its caller.
extern "C" void sb_just_return();
asm(R"(
  .text
  .globl sb_just_return
  .hidden sb_just_return
  .type sb_just_return, @function
sb_just_return:
  ret
  .size sb_just_return, .-sb_just_return
)");
#endif

// bpf_override_return (the kernel's, kernel/trace/bpf_trace.c): the
// probed function returns `rc` at once, its body skipped. The probe's
// pt_regs get rc as the return value and the return instruction as the
// ip; the probe goes on there (frontend/trampoline.h, lower_probe), with
// the stack as at the function's entry, so it returns to the caller. At a
// function's entry only (the attach refuses an offset); 0. Outside a
// probe's run -EINVAL, nothing written.
uint64_t override_return(uint64_t ctx, uint64_t rc, uint64_t, uint64_t, uint64_t) {
#if defined(__x86_64__)
  const RunCtx* run = current_run_ctx();
  if (!run || run->frame) return err(EINVAL);
  auto* regs = reinterpret_cast<uint64_t*>(uintptr_t(ctx));  // struct pt_regs
  regs[kAx] = rc;
  regs[kIp] = reinterpret_cast<uint64_t>(&sb_just_return);
  return 0;
#else
  (void)ctx, (void)rc;
  return err(EINVAL);
#endif
}

uint64_t get_func_ip(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  const RunCtx* rc = current_run_ctx();
  return rc ? rc->func_ip : 0;
}

constexpr size_t kMaxDepth = 127;  // sysctl kernel.perf_event_max_stack

// perf_callchain_user's frame-pointer walk: from the frame at fp, each
// frame's return address into ips[n, max_depth) (a frame must lie at or
// above sp and every read is fault-safe; a function built without frame
// pointers ends the chain early, as in the kernel). The number of ips.
size_t walk_frames(uint64_t fp, uint64_t sp, uint64_t* ips, size_t n, size_t max_depth) {
  while (n < max_depth && fp >= sp && fp % 8 == 0) {
    uint64_t frame[2];  // the saved fp, the return address
    if (read_process(frame, fp, sizeof frame) != sizeof frame || frame[1] == 0) break;
    ips[n++] = frame[1];
    if (frame[0] <= fp) break;  // a chain goes up the stack
    fp = frame[0];
  }
  return n;
}

// The kernel's get_perf_callchain for the program running on this thread,
// into ips[0, max_depth): the user stack (`user`), as perf_callchain_user
// walks it. The kernel stack of user-space code is empty, and so is the
// stack of a run that no probe or trampoline started (nothing was
// interrupted). The number of ips.
//  - A probe (x86-64 pt_regs at ctx): the probed ip, then the
//    frame-pointer chain from its bp.
//  - An fentry, fmod_ret or fexit program (its trampoline's frame in the
//    run context; ctx is the argument array, as the kernel's raw_tp
//    variants ignore it): the traced function's address, the return
//    address into its caller (which the trampoline's entry knows exactly),
//    then the chain from the caller's frame pointer. The kernel's stack
//    of an fentry program has the same frames after the program's and
//    the trampoline's own, which are JIT code here and not reported.
size_t callchain(uint64_t ctx, bool user, uint64_t* ips, size_t max_depth) {
  const RunCtx* rc = current_run_ctx();
  if (!user || !max_depth || !rc) return 0;
#if defined(__x86_64__)
  if (rc->frame) {
    constexpr backend::NativeEntryFrame kFrame = backend::kX86NativeEntryFrame;
    const uint64_t entry_sp = rc->frame + kFrame.entry_sp;
    ips[0] = rc->func_ip;
    if (max_depth == 1) return 1;
    ips[1] = *reinterpret_cast<const uint64_t*>(uintptr_t(entry_sp));  // the trampoline's own frame
    const uint64_t caller_fp = *reinterpret_cast<const uint64_t*>(uintptr_t(rc->frame + kFrame.caller_fp));
    return walk_frames(caller_fp, entry_sp + 8, ips, 2, max_depth);
  }
  const auto* regs = reinterpret_cast<const uint64_t*>(uintptr_t(ctx));  // struct pt_regs
  ips[0] = regs[kIp];
  return walk_frames(regs[kBp], regs[kSp], ips, 1, max_depth);
#else
  (void)ctx, (void)ips;
  return 0;
#endif
}

// bpf_get_stack (kernel/bpf/stackmap.c): the callchain; `flags`' low 8
// bits skip that many entries; with BPF_F_USER_BUILD_ID (user stacks only)
// each entry is a struct bpf_stack_build_id (runtime/trace/build_id.h)
// instead of an ip; the rest of the buffer is zeroed; the bytes written, or
// -EINVAL (unknown flags, build ids of the kernel stack, a size not a
// multiple of the entry's).
uint64_t get_stack(uint64_t ctx, uint64_t buf, uint64_t size, uint64_t flags, uint64_t) {
  constexpr uint64_t kUserBuildId = 1u << 11;
  auto* out = reinterpret_cast<uint8_t*>(uintptr_t(buf));
  if (!access_allowed(buf, size)) return err(EFAULT);
  const bool build_ids = flags & kUserBuildId;
  const size_t elem = build_ids ? sizeof(StackBuildId) : 8;
  if ((flags & ~(kStackSkipMask | kStackUser | kUserBuildId)) || (build_ids && !(flags & kStackUser)) ||
      size % elem != 0) {
    std::memset(out, 0, size);
    return err(EINVAL);
  }
  uint64_t ips[kMaxDepth];
  const size_t nr = callchain(ctx, flags & kStackUser, ips, kMaxDepth);
  const size_t skip = std::min<size_t>(flags & kStackSkipMask, nr);
  const size_t n = std::min<size_t>(nr - skip, size / elem);
  if (build_ids) {
    StackBuildId entries[kMaxDepth];
    build_id_offsets(ips + skip, n, entries);
    if (n) std::memcpy(out, entries, n * elem);
  } else if (n) {
    std::memcpy(out, ips + skip, n * 8);
  }
  std::memset(out + n * elem, 0, size - n * elem);
  return n * elem;
}

// bpf_get_stackid: the callchain, value_size / 8 ips after the skipped
// ones (at most perf_event_max_stack in all), into the stack trace map:
// its id (StackTraceMap::stack_id) or -EINVAL for unknown flags or a map
// that is not a stack trace map. The empty kernel stack is -EFAULT, as the
// kernel gives for a trace with no entries.
uint64_t get_stackid(uint64_t ctx, uint64_t map, uint64_t flags, uint64_t, uint64_t) {
  auto* m = dynamic_cast<StackTraceMap*>(current_map(map));
  if (!m || (flags & ~(kStackSkipMask | kStackUser | kStackFastCmp | kStackReuseId))) return err(EINVAL);
  uint64_t ips[kMaxDepth];
  const size_t depth = std::min<size_t>(m->depth() + (flags & kStackSkipMask), kMaxDepth);
  const size_t nr = callchain(ctx, flags & kStackUser, ips, depth);
  return uint64_t(m->stack_id({ips, nr}, flags));
}

// bpf_send_signal_common: `sig` to this process (kill) or this thread
// (tgkill); 0 is only the check, as for kill(2); -EINVAL past _NSIG (64),
// -EPERM in pid 1 (the kernel refuses init), else kill's errno.
uint64_t send_signal_common(uint64_t sig, bool thread) {
  if (uint32_t(sig) > 64) return err(EINVAL);  // the helper's argument is a u32
  if (getpid() == 1) return err(EPERM);
  const int r = thread ? tgkill(getpid(), gettid(), int(uint32_t(sig))) : kill(getpid(), int(uint32_t(sig)));
  return r == 0 ? 0 : err(errno);
}

uint64_t send_signal(uint64_t sig, uint64_t, uint64_t, uint64_t, uint64_t) { return send_signal_common(sig, false); }
uint64_t send_signal_thread(uint64_t sig, uint64_t, uint64_t, uint64_t, uint64_t) {
  return send_signal_common(sig, true);
}

uint64_t get_attach_cookie(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  const RunCtx* rc = current_run_ctx();
  return rc ? rc->cookie : 0;
}

constexpr KernelHelper kTracingHelpers[] = {
    {14, "get_current_pid_tgid", get_current_pid_tgid},
    {15, "get_current_uid_gid", get_current_uid_gid},
    {16, "get_current_comm", get_current_comm},
    {112, "probe_read_user", probe_read_memory},
    {113, "probe_read_kernel", probe_read_memory},
    {114, "probe_read_user_str", probe_read_memory_str},
    {115, "probe_read_kernel_str", probe_read_memory_str},
    {27, "get_stackid", get_stackid},
    {67, "get_stack", get_stack},
    {58, "override_return", override_return},
    {109, "send_signal", send_signal},
    {117, "send_signal_thread", send_signal_thread},
    {173, "get_func_ip", get_func_ip},
    {174, "get_attach_cookie", get_attach_cookie},
};

}  // namespace

// strncpy_from_user_nofault: page by page up to the NUL, so that a string
// ending just before an unmapped page reads.
std::optional<size_t> read_process_string(char* to, uint64_t src, size_t size) {
  const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  size_t done = 0;
  while (done < size) {
    const uint64_t at = src + done;
    const size_t chunk = size_t(std::min<uint64_t>(size - done, page - at % page));
    if (read_process(to + done, at, chunk) != chunk) return std::nullopt;
    if (const void* nul = std::memchr(to + done, 0, chunk))
      return size_t(static_cast<const char*>(nul) - to + 1);  // the length with its NUL
    done += chunk;
  }
  to[size - 1] = '\0';  // cut: size bytes, the last one the NUL
  return size;
}

void add_tracing_helpers(HelperTable& t) { t.add_kernel(kTracingHelpers); }

}  // namespace sb::rt
