// The first compile in a fresh process (issue 17): run it as its own
// process, since any earlier compile (a benchmark's warm-up) would hide
// the one-time set-up. Prints the microseconds of sb_vm_create, of loading
// the bytecode and of the first sb_program_compile for the architecture
// given (default x86-64) with its page faults, then of a second compile
// for comparison.
//
//   build/test/bench/sb_first_compile [x86-64|arm64|riscv64]
#include <sys/resource.h>
#include <time.h>

#include <cstdint>
#include <cstdio>

#include "runtime/api/springboard.h"

static double now_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) * 1e6 + double(ts.tv_nsec) / 1e3;
}

// Page faults so far: on this VM each costs about 25 us, and the first
// compile's cost is mostly the faults of touching LLVM's tables and code.
static long faults() {
  rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_minflt + r.ru_majflt;
}

int main(int argc, char** argv) {
  const char* arch = argc > 1 ? argv[1] : "x86-64";
  // mov r0, 0; exit
  static const uint8_t kEmpty[16] = {0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0};
  sb_vm* vm = nullptr;
  sb_program* p = nullptr;
  sb_code *c = nullptr, *again = nullptr;
  const double t0 = now_us();
  if (sb_vm_create(nullptr, &vm) != SB_OK) return 1;
  const double t1 = now_us();
  if (sb_vm_load_bytecode(vm, "empty", kEmpty, sizeof kEmpty, &p) != SB_OK) return 1;
  const double t2 = now_us();
  const long f2 = faults();
  if (sb_program_compile(p, arch, &c) != SB_OK) {
    fprintf(stderr, "%s\n", sb_vm_last_error(vm));
    return 1;
  }
  const double t3 = now_us();
  const long f3 = faults();
  if (sb_program_compile(p, arch, &again) != SB_OK) return 1;
  const double t4 = now_us();
  uint64_t r0 = 1;
  if (sb_code_run(c, nullptr, 0, &r0) != SB_OK || r0 != 0) return 1;
  printf("%s: vm_create %.1f us, load %.1f us, first compile %.1f us (%ld page faults), second compile %.1f us\n",
         arch, t1 - t0, t2 - t1, t3 - t2, f3 - f2, t4 - t3);
  sb_vm_destroy(vm);
  return 0;
}
