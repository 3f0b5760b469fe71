// The Linux kernel as a test oracle (test/differential_test.cpp): a program
// is loaded as BPF_PROG_TYPE_SYSCALL, whose context is a plain byte buffer
// that BPF_PROG_TEST_RUN copies in before the run and back out after it, so
// r1 is the input buffer exactly as on our engines. The kernel requires
// syscall programs to be sleepable (BPF_F_SLEEPABLE) and reports only the
// low 32 bits of r0. Needs libbpf at build time (SB_HAVE_LIBBPF) and
// CAP_BPF + CAP_SYS_ADMIN (root) at run time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "frontend/bpf.h"
#include "runtime/progtypes/kernel_test_run.h"

namespace sb::test {

struct KernelRun {
  enum class Status { Ran, Rejected, Failed };
  Status status = Status::Failed;
  uint32_t retval = 0;   // Ran: the low 32 bits of r0
  std::string message;   // Rejected: the verifier's last words; Failed: why
};

// nullopt when this process can load and run programs in the kernel,
// otherwise the reason (built without libbpf, EPERM, no syscall programs).
std::optional<std::string> kernel_unavailable();

// Verifies and runs `p` once over `memory` (modified in place, as the
// engines do). Rejected means the verifier refused the program (EINVAL,
// EACCES, E2BIG with a verifier log); anything else that fails is Failed.
KernelRun kernel_run(const bpf::Program& p, std::vector<uint8_t>& memory);

// Tail calls: runs `p` once as a socket filter (syscall programs are
// sleepable and may not use program arrays) over 64 zero bytes, with each
// `lddw` of `prog_array` loading a one-slot BPF_MAP_TYPE_PROG_ARRAY whose
// slot 0 is `p` itself and each `lddw` of `counter` an array map of one u64.
// Ran: retval is that u64 after the run (the low 32 bits).
KernelRun kernel_run_self_tail_call(const bpf::Program& p, uint64_t prog_array, uint64_t counter);

// Objects run in the kernel by BPF_PROG_TEST_RUN (the typed-program tests).
using rt::KernelObject;

}  // namespace sb::test
