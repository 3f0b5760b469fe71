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

// The kernel's verifier alone: BPF_PROG_LOAD of `p` as `prog_type` (with
// `expected_attach_type` and BPF_F_* `prog_flags`), each map of p.maps
// created as it says (type, key and value size, entries, `map_flags`) and
// its lddw pointed at it (src_reg 1, or 2 with the MapUse's offset for a
// value). Accepted or Refused (by the verifier: its log is not empty);
// Failed when the load failed before verification or a map could not be
// made. The statistics are BPF_LOG_STATS' "verification time" and
// "processed N insns" of an accepted load.
struct KernelVerdict {
  enum class Status { Accepted, Refused, Failed };
  Status status = Status::Failed;
  std::string message;             // Refused: the log's last lines; Failed: why
  uint64_t verification_usec = 0;  // Accepted: BPF_LOG_STATS' verification time
  uint64_t insns_processed = 0;
};
struct KernelLoad {
  uint32_t prog_type = 0;
  uint32_t expected_attach_type = 0;
  uint32_t prog_flags = 0;
  std::vector<uint32_t> map_flags;  // per p.maps entry (BPF_F_RDONLY_PROG, ...); empty: none
};
KernelVerdict kernel_verify(const bpf::Program& p, const KernelLoad& how);

}  // namespace sb::test
