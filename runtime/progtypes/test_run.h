// BPF_PROG_TEST_RUN for typed programs (the kernel's net/bpf/test_run.c):
// the packet and, optionally, the uapi context go in; the runtime builds the
// native context the program's type needs (runtime/progtypes/xdp_run.h for
// XDP), runs the program `repeat` times on it, and gives back what the
// kernel's test run gives: retval, the output packet, the uapi context and
// the duration per run. `springboard test-run` and sb_program_test_run are
// this function.
//
// Input the kernel refuses is refused here too, with an sb::Error naming the
// input and field and the kernel's errno: a frame shorter than an Ethernet
// header, a context with bytes past the uapi struct that are not zero
// (E2BIG), context fields the kernel does not let a test run set (EINVAL).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "frontend/bpf.h"
#include "runtime/exec/engines.h"
#include "runtime/progtypes/packet_run.h"

namespace sb::rt {

struct TestRunInput {
  std::vector<uint8_t> data;                // data_in: the packet
  std::optional<std::vector<uint8_t>> ctx;  // ctx_in: the uapi context (xdp_md), or none
  uint32_t repeat = 1;                      // runs on the same context, as the kernel's (0: 1)
  std::string data_name = "data_in";        // what errors call the inputs (file names in the CLI)
  std::string ctx_name = "ctx_in";
};

struct TestRunOutput {
  uint32_t retval = 0;        // the last run's r0, low 32 bits (the kernel's u32 retval)
  std::vector<uint8_t> data;  // data_out: XDP, from data_meta to data_end
  std::vector<uint8_t> ctx;   // ctx_out: the uapi context after the runs
  uint64_t duration_ns = 0;   // mean wall time per run
  uint32_t runs = 0;
  // Where a run that returned XDP_REDIRECT / TC_ACT_REDIRECT sends the
  // packet (bpf_redirect, bpf_redirect_map), and the tunnel key
  // bpf_skb_set_tunnel_key set (runtime/progtypes/packet_run.h).
  std::optional<RedirectTarget> redirect;
  std::optional<std::vector<uint8_t>> tunnel_key;
  std::vector<ClonedPacket> clones;  // bpf_clone_redirect's copies, in order
};

// ctx_in as the kernel reads a uapi context (bpf_ctx_init): shorter than
// T is zero-filled, longer must be zero past it (else E2BIG), at most a
// page. `what` names the struct in errors ("struct xdp_md").
void check_context_tail(const std::vector<uint8_t>& ctx, size_t size, const std::string& name, const char* what);
template <typename T>
T read_context_in(const std::vector<uint8_t>& ctx, const std::string& name, const char* what) {
  check_context_tail(ctx, sizeof(T), name, what);
  T t{};
  if (!ctx.empty()) std::memcpy(&t, ctx.data(), std::min(ctx.size(), sizeof t));  // an empty vector's data() may be null
  return t;
}

// Whether `type` has a test run ("xdp"); the error names the types that do.
bool has_test_run(const bpf::ProgramType& type);
std::string test_run_types();

// `run` executes the prepared program once on the native context (an
// Engine::Runner of `p`); `p.type` says which context to build. Throws
// sb::Error for bad input or a type without a test run; faults of the
// program propagate from `run`.
TestRunOutput test_run(const bpf::Program& p, const TestRunInput& in, const Engine::Runner& run);
// The same on `engine`, prepared here (verified and compiled once).
TestRunOutput test_run(const Engine& engine, const bpf::Program& p, const HelperTable& h, const TestRunInput& in,
                       const RunOptions& opts = {});

}  // namespace sb::rt
