// The tracing helpers (the kernel's kernel/trace/bpf_trace.c and
// kernel/bpf/helpers.c), for programs attached in this process
// (runtime/hook/trampoline.h): who and where the probed code runs, and
// fault-safe reads of the process's memory.
//
//   id   helper                  semantics (the kernel's, for the calling thread)
//   (8   get_smp_processor_id    is a standard helper, std_helpers.h: the CPU
//                                whose copy the per-CPU maps give the program)
//   14   get_current_pid_tgid    tgid << 32 | tid  (process id, thread id)
//   15   get_current_uid_gid     gid << 32 | uid   (real ids)
//   16   get_current_comm        the thread's name (16 bytes with its NUL, as
//                                TASK_COMM_LEN) copied as strscpy: at most size-1
//                                bytes and a NUL, the rest untouched; 0
//   112  probe_read_user         copy size bytes from an address of this process:
//   113  probe_read_kernel       0, or -EFAULT with dst zero-filled when any byte
//                                is unmapped (process_vm_readv, never a fault)
//   114  probe_read_user_str     a NUL-terminated string: the length with its NUL,
//   115  probe_read_kernel_str   or size when it was cut (dst[size-1] = NUL); on a
//                                fault -EFAULT and dst zero-filled; size 0: 0
//   67   get_stack               the user stack (BPF_F_USER_STACK) on x86-64: of a
//                                probe, the probed ip, then return addresses by
//                                the frame-pointer chain; of an fentry, fmod_ret
//                                or fexit program, the traced function, the
//                                return into its caller, then the chain; read
//                                without faulting; the kernel stack (and any
//                                stack of a run no probe or trampoline started)
//                                is empty; bytes written
//   27   get_stackid             the same stack stored in a stack trace map
//                                (runtime/maps/stack_trace.h): its id; the empty
//                                kernel stack is -EFAULT, as the kernel's empty trace
//   109  send_signal             the signal to this process (kill) / this thread
//   117  send_signal_thread      (tgkill); -EINVAL for a signal past 64, -EPERM in
//                                pid 1, as bpf_send_signal_common
//   58   override_return         a probe at a function's entry (x86-64): the
//                                function returns rc at once, its body skipped
//   173  get_func_ip             the address of the function (or the probed
//                                instruction) the program is attached to
//   174  get_attach_cookie       the link's cookie
// The last two and the stack helpers read the thread's run context
// (runtime/hook/tramp_runtime.h) and give 0 outside a trampoline or probe. probe_read_kernel reads this
// process's memory like probe_read_user: user space has no kernel memory
// (the kernel would refuse user addresses there with -ERANGE).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "runtime/helpers/helpers.h"

namespace sb::rt {

// Adds them, with their verifier prototypes (frontend/verifier/helper_protos.h).
void add_tracing_helpers(HelperTable& t);

// Copies the NUL-terminated string at `src` of this process into to[0, size)
// without faulting, as the kernel's strncpy_from_user_nofault: its length
// with the NUL, or size when cut (to[size - 1] = NUL); nullopt when a byte
// before the NUL is unmapped. size > 0.
std::optional<size_t> read_process_string(char* to, uint64_t src, size_t size);

}  // namespace sb::rt
