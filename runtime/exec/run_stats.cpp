#include "runtime/exec/run_stats.h"

#include <mutex>

namespace sb::rt::run_stats_detail {

namespace {

struct Registry {
  std::mutex mu;
  bool taken[kStripes] = {};
};
Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: threads exit after main returns too
  return *r;
}

// Gives the thread's stripe back when it exits; afterwards (a run from a
// later thread_local destructor) the thread adds to the shared stripe.
struct Owner {
  uint32_t stripe = kShared;
  ~Owner() {
    if (stripe != kShared) {
      std::lock_guard lock(registry().mu);
      registry().taken[stripe] = false;
    }
    t_stripe = kShared + 1;
  }
};

}  // namespace

uint32_t take_stripe() noexcept {
  static thread_local Owner owner;  // constructed here, on the first add of each thread
  uint32_t s = kShared;
  {
    std::lock_guard lock(registry().mu);
    for (uint32_t i = 0; i < kStripes; ++i)
      if (!registry().taken[i]) {
        registry().taken[i] = true;
        s = i;
        break;
      }
  }
  owner.stripe = s;
  t_stripe = s + 1;
  return s;
}

}  // namespace sb::rt::run_stats_detail
