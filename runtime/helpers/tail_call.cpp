#include "runtime/helpers/tail_call.h"

namespace sb::rt {

TailCallRun::TailCallRun(TailCallLoader& loader) : loader_(loader), scope_(this) {}
TailCallRun::~TailCallRun() = default;

TailCallRun* TailCallRun::current() { return CurrentScope<TailCallRun>::current(); }

uint64_t TailCallRun::resolve(const std::shared_ptr<const bpf::Program>& slot, bool in_range) {
  if (!in_range || count_ >= kMaxTailCalls) return 0;
  ++count_;
  if (!slot || error_) return 0;
  try {
    const uint64_t entry = loader_.load(slot);
    if (entry) running_ = slot;
    return entry;
  } catch (...) {  // never through generated code: fall through, end the run with it
    error_ = std::current_exception();
    return 0;
  }
}

void TailCallRun::finish() const {
  if (error_) std::rethrow_exception(error_);
}

}  // namespace sb::rt
