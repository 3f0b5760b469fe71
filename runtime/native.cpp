#include "runtime/native.h"

#include "backends/compile.h"
#include "ir/diag.h"

namespace sb::rt {

NativeProgram::NativeProgram(const bpf::Program& p, const HelperTable& helpers) : name_(p.name), helpers_(helpers) {
#if !defined(__x86_64__)
  throw Error(p.name, "native execution needs an x86-64 host; use the emulator");
#endif
  CompileOptions opts;
  opts.arch = Arch::X86_64;
  image_ = compile(p, helpers, opts).image;
  code_ = ExecMemory(image_.text);
}

uint64_t NativeProgram::run(void* mem, size_t len) const {
  ContextScope scope(helpers_.context());
  auto entry = reinterpret_cast<EntryFn>(const_cast<uint8_t*>(code_.data()));
  return check_result(entry(mem, len), name_);
}

uint64_t check_result(const EntryResult& r, const std::string& program_name) {
  if (r.status == 0) return r.r0;
  throw Error(insn_location(program_name, r.r0), ir::trap_message(ir::TrapCode(r.status)));
}

}  // namespace sb::rt
