// The liveness analysis of ir/liveness.h.
#include "ir/liveness.h"


namespace sb::ir {

std::vector<RegSet> label_live_in(const Function& fn) {
  std::vector<RegSet> label_in(fn.num_labels, 0);
  while (live_sweep(fn, label_in, [](size_t, RegSet out, const Effects& fx) { return live_in(out, fx); })) {
  }
  return label_in;
}

Liveness liveness(const Function& fn) {
  Liveness l{std::vector<RegSet>(fn.code.size() + 1, 0), std::vector<RegSet>(fn.code.size(), 0), label_live_in(fn)};
  live_sweep(fn, l.label_in, [&](size_t k, RegSet out, const Effects& fx) {
    l.out[k] = out;
    return l.in[k] = live_in(out, fx);
  });
  return l;
}

}  // namespace sb::ir
