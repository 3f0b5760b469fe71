#include "runtime/native.h"

#include "backends/compile.h"
#include "ir/diag.h"

namespace sb::rt {

NativeProgram::NativeProgram(const bpf::Program& p, const HelperTable& helpers, const Safety& safety)
    : name_(p.name), helpers_(safety.harden().any() ? with_hardening_helpers(helpers) : helpers), safety_(safety) {
#if !defined(__x86_64__)
  throw Error(p.name, "native execution needs an x86-64 host; use the emulator");
#endif
  CompileOptions opts;
  opts.arch = Arch::X86_64;
  opts.harden = safety.harden();
  image_ = compile(p, helpers_, opts).image;
  code_ = ExecMemory(image_.text);
}

uint64_t NativeProgram::run(void* mem, size_t len) const {
  ContextScope scope(helpers_.context());
  auto entry = reinterpret_cast<EntryFn>(const_cast<uint8_t*>(code_.data()));
  if (!safety_.needs_record()) return check_result(entry(mem, len), name_);
  RunRecord record(reachable_ranges(helpers_), safety_.time_budget_ns != 0);
  RunScope run(&record);
  EntryResult r;
  {
    Watchdog watchdog(record, std::chrono::nanoseconds(safety_.time_budget_ns));
    r = entry(mem, len);
  }
  return finish_run(r.r0, r.status, name_, &record, safety_.time_budget_ns);
}

uint64_t check_result(const EntryResult& r, const std::string& program_name) {
  return finish_run(r.r0, r.status, program_name, nullptr, 0);
}

}  // namespace sb::rt
