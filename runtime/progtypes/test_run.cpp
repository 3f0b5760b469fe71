#include "runtime/progtypes/test_run.h"

#include <chrono>

#include <fmt/format.h>

#include "frontend/progtypes/program_type.h"
#include "frontend/progtypes/skb.h"
#include "frontend/progtypes/xdp.h"
#include "ir/diag.h"
#include "runtime/progtypes/packet_run.h"
#include "runtime/progtypes/skb_run.h"
#include "runtime/progtypes/xdp_run.h"

namespace sb::rt {

namespace {
constexpr size_t kMaxCtxIn = 4096;  // bpf_check_uarg_tail_zero: PAGE_SIZE
}  // namespace

void check_context_tail(const std::vector<uint8_t>& ctx, size_t size, const std::string& name, const char* what) {
  if (ctx.size() > kMaxCtxIn)
    throw Error(name, fmt::format("{} bytes of context; at most {} (the kernel: E2BIG)", ctx.size(), kMaxCtxIn));
  for (size_t i = size; i < ctx.size(); ++i)
    if (ctx[i] != 0)
      throw Error(name, fmt::format("byte {} is not zero, past the {} bytes of {} (the kernel: E2BIG)", i, size, what));
}

bool has_test_run(const bpf::ProgramType& type) {
  return &type == &bpf::xdp_program_type() || &type == &bpf::tc_program_type() || &type == &bpf::socket_program_type();
}

std::string test_run_types() { return "xdp, tc, socket"; }

TestRunOutput test_run(const bpf::Program& p, const TestRunInput& in, const Engine::Runner& run) {
  const bpf::ProgramType& type = p.type ? *p.type : bpf::raw_program_type();
  if (!has_test_run(type))
    throw Error(p.name, "a " + std::string(type.name) + " program has no test run (types with one: " +
                            test_run_types() + ")");
  const bool xdp = &type == &bpf::xdp_program_type();
  const bool l2 = &type == &bpf::tc_program_type();  // socket filters start at the network header
  std::vector<uint8_t> block = xdp ? build_xdp_context(in) : build_skb_context(in, l2);
  TestRunOutput out;
  out.runs = in.repeat ? in.repeat : 1;
  // As the kernel's bpf_test_run: every run on the same context, so what
  // one run changes (xdp_adjust_head, a store to mark) the next one sees.
  PacketRun packet_run;
  packet_run.xdp = xdp;
  PacketRunScope scope(&packet_run);
  const auto start = std::chrono::steady_clock::now();
  uint64_t r0 = 0;
  for (uint32_t i = 0; i < out.runs; ++i) r0 = run(block);
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start);
  out.retval = uint32_t(r0);
  out.duration_ns = uint64_t(ns.count()) / out.runs;
  if (xdp) finish_xdp(block, in, out);
  else finish_skb(block, in, l2, out);
  if (out.retval == (xdp ? kXdpRedirect : kTcActRedirect)) out.redirect = packet_run.redirect;
  out.tunnel_key = packet_run.tunnel_key;
  out.clones = std::move(packet_run.clones);
  return out;
}

TestRunOutput test_run(const Engine& engine, const bpf::Program& p, const HelperTable& h, const TestRunInput& in,
                       const RunOptions& opts) {
  const bpf::ProgramType& type = p.type ? *p.type : bpf::raw_program_type();
  if (!has_test_run(type))  // before compiling: the error the user needs first
    throw Error(p.name, "a " + std::string(type.name) + " program has no test run (types with one: " +
                            test_run_types() + ")");
  return test_run(p, in, engine.prepare(p, h, opts));
}

}  // namespace sb::rt
