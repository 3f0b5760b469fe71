// The trampoline runtime's program entry and exit (runtime/hook/
// tramp_runtime.h) as host functions of a guest, for the trampolines and
// probes the tests build in Unicorn. The run context a guest's trampoline
// passes is on the guest's stack, which is this process's memory at the
// same address (runtime/exec/guest.h), so get_attach_cookie and
// get_func_ip read it as in this process.
#pragma once

#include <array>
#include <cstdint>

#include "runtime/exec/guest.h"
#include "runtime/hook/tramp_runtime.h"

namespace sb::test {

struct GuestProgRuntime {
  explicit GuestProgRuntime(rt::Guest& g)
      : enter(g.add_host_function([](const std::array<uint64_t, 5>& a) {
          return rt::sb_tramp_prog_enter(reinterpret_cast<rt::ProgState*>(a[0]), reinterpret_cast<rt::RunCtx*>(a[1]));
        })),
        exit(g.add_host_function([](const std::array<uint64_t, 5>& a) -> uint64_t {
          rt::sb_tramp_prog_exit(reinterpret_cast<rt::ProgState*>(a[0]), a[1], reinterpret_cast<rt::RunCtx*>(a[2]));
          return 0;
        })) {}
  uint64_t enter, exit;  // guest addresses: Bindings::prog_enter, prog_exit
};

}  // namespace sb::test
