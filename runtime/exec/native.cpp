#include "runtime/exec/native.h"

#include <map>
#include <mutex>

#include "backends/compile.h"
#include "ir/diag.h"
#include "runtime/helpers/tail_call.h"

namespace sb::rt {

// Tail-call targets of runs of one program (and of its targets' tail
// calls, which go through the same run), compiled on first use.
class NativeProgram::Targets final : public TailCallLoader {
 public:
  Targets(const HelperTable& helpers, const Safety& safety) : helpers_(helpers), safety_(safety) {}
  uint64_t load(const std::shared_ptr<const bpf::Program>& target) override {
    std::lock_guard lock(mutex_);
    auto it = compiled_.find(target.get());
    if (it == compiled_.end()) {
      auto code = std::make_unique<NativeProgram>(*target, helpers_, safety_, true, /*tail_call_target=*/true);  // hardened alike
      const uint64_t entry = uint64_t(uintptr_t(code->tail_entry()));
      it = compiled_.emplace(target.get(), Entry{target, std::move(code), entry}).first;
    }
    return it->second.tail_entry;
  }

 private:
  struct Entry {
    std::shared_ptr<const bpf::Program> program;  // keeps the key's address unique
    std::unique_ptr<NativeProgram> code;
    uint64_t tail_entry;
  };
  const HelperTable& helpers_;
  const Safety safety_;
  std::mutex mutex_;
  std::map<const bpf::Program*, Entry> compiled_;
};

namespace {
// Whether `p` calls a helper (by id or through a register: callx; tail
// calls included); bpf-to-bpf calls need nothing.
bool calls_helpers(const bpf::Program& p) {
  for (const bpf::Insn& i : p.insns) {
    if ((i.opcode & 0x07) != bpf::JMP || bpf::op_of(i) != bpf::CALL) continue;
    if (bpf::is_reg_source(i) || i.src != bpf::CALL_LOCAL) return true;
  }
  return false;
}
}  // namespace

NativeProgram::~NativeProgram() = default;

const void* NativeProgram::tail_entry() const {
  const std::optional<uint64_t> at = image_.symbol(mc::kTailEntrySymbol);
  if (!at) throw Error(name_, "the compiled code has no tail entry");
  return code_.data() + *at;
}

NativeProgram::NativeProgram(const bpf::Program& p, const HelperTable& helpers, const Safety& safety, bool optimize,
                             bool tail_call_target)
    : name_(p.name),
      helpers_(safety.harden().any() ? with_hardening_helpers(helpers) : helpers),
      safety_(safety),
      targets_(std::make_unique<Targets>(helpers_, safety)) {
#if !defined(__x86_64__)
  throw Error(p.name, "native execution needs an x86-64 host; use the emulator");
#endif
  CompileOptions opts;
  opts.arch = Arch::X86_64;
  opts.harden = safety.harden();
  opts.optimize = optimize;
  opts.verify = safety.verify;
  opts.tail_call_target = tail_call_target;
  image_ = compile(p, helpers_, opts).image;
  code_ = ExecMemory(image_.text);
  if (!safety_.needs_record() && !calls_helpers(p))
    direct_ = reinterpret_cast<EntryFn>(const_cast<uint8_t*>(code_.data()));
}

uint64_t NativeProgram::run(void* mem, size_t len) const {
  if (direct_) {
    const EntryResult r = direct_(mem, len);
    if (r.status == 0) [[likely]]
      return r.r0;
    return finish_run(r.r0, r.status, name_, nullptr, 0);
  }
  ContextScope scope(helpers_.context());
  TailCallRun tail_calls(*targets_);
  auto entry = reinterpret_cast<EntryFn>(const_cast<uint8_t*>(code_.data()));
  RunRecord* outer = RunScope::current();
  std::optional<RunRecord> record;
  if (safety_.needs_record()) record.emplace(reachable_ranges(helpers_), safety_);
  RunScope run(record ? &*record : outer);
  EntryResult r;
  {
    std::optional<Watchdog> watchdog;
    if (record) watchdog.emplace(*record, std::chrono::nanoseconds(safety_.time_budget_ns));
    r = entry(mem, len);
  }
  tail_calls.finish();
  const std::string& name = tail_calls.running() ? tail_calls.running()->name : name_;
  return finish_run(r.r0, r.status, name, record ? &*record : nullptr, safety_.time_budget_ns);
}

uint64_t check_result(const EntryResult& r, const std::string& program_name) {
  return finish_run(r.r0, r.status, program_name, nullptr, 0);
}

}  // namespace sb::rt
