#include "runtime/progtypes/test_run.h"

#include <chrono>

#include "frontend/progtypes/program_type.h"
#include "frontend/progtypes/xdp.h"
#include "ir/diag.h"
#include "runtime/progtypes/xdp_run.h"

namespace sb::rt {

bool has_test_run(const bpf::ProgramType& type) { return &type == &bpf::xdp_program_type(); }

std::string test_run_types() { return "xdp"; }

TestRunOutput test_run(const bpf::Program& p, const TestRunInput& in, const Engine::Runner& run) {
  const bpf::ProgramType& type = p.type ? *p.type : bpf::raw_program_type();
  if (!has_test_run(type))
    throw Error(p.name, "a " + std::string(type.name) + " program has no test run (types with one: " +
                            test_run_types() + ")");
  std::vector<uint8_t> block = build_xdp_context(in);
  TestRunOutput out;
  out.runs = in.repeat ? in.repeat : 1;
  // As the kernel's bpf_test_run: every run on the same context, so what
  // one run changes (xdp_adjust_head) the next one sees.
  const auto start = std::chrono::steady_clock::now();
  uint64_t r0 = 0;
  for (uint32_t i = 0; i < out.runs; ++i) r0 = run(block);
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start);
  out.retval = uint32_t(r0);
  out.duration_ns = uint64_t(ns.count()) / out.runs;
  finish_xdp(block, in, out);
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
