// The liveness analysis of ir/liveness.h.
#include "ir/liveness.h"

namespace sb::ir {

std::vector<RegSet> label_live_in(const Function& fn) {
  std::vector<RegSet> label_in(fn.num_labels, 0);
  while (live_sweep(fn, label_in, [](size_t, RegSet out, const Effects& fx) { return live_in(out, fx); })) {
  }
  return label_in;
}

std::vector<RegSet> live_out(const Function& fn) {
  std::vector<RegSet> label_in = label_live_in(fn);
  std::vector<RegSet> out(fn.code.size(), 0);
  live_sweep(fn, label_in, [&](size_t k, RegSet after, const Effects& fx) {
    out[k] = after;
    return live_in(after, fx);
  });
  return out;
}

}  // namespace sb::ir
