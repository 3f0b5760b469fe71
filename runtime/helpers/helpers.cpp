#include "runtime/helpers/helpers.h"

#include <algorithm>
#include <utility>

namespace sb::rt {

void HelperTable::add(uint32_t id, std::string name, HelperFn fn, bool unwind_on_zero) {
  auto it = std::lower_bound(helpers_.begin(), helpers_.end(), id,
                             [](const Helper& h, uint32_t key) { return h.id < key; });
  Helper h{id, std::move(name), fn, unwind_on_zero};
  if (it != helpers_.end() && it->id == id)
    *it = std::move(h);
  else
    helpers_.insert(it, std::move(h));
}

void HelperTable::add_tail_call(uint32_t id, std::string name, HelperFn fn) {
  add(id, std::move(name), fn);
  helpers_[size_t(find(id) - helpers_.data())].tail_call = true;
}

void HelperTable::add_kernel_helpers(std::span<const KernelHelper> helpers) {
  for (const KernelHelper& h : helpers) {
    add(h.id, h.name, h.fn);
    set_proto(h.id, bpf::verifier::standard_helper_proto(h.id));
  }
}

const Helper* HelperTable::find(uint32_t id) const {
  auto it = std::lower_bound(helpers_.begin(), helpers_.end(), id,
                             [](const Helper& h, uint32_t key) { return h.id < key; });
  return it != helpers_.end() && it->id == id ? &*it : nullptr;
}

void HelperTable::set_proto(uint32_t id, const bpf::verifier::HelperProto* proto) {
  for (Helper& h : helpers_)
    if (h.id == id) h.proto = proto;
}

bpf::verifier::VerifyOptions HelperTable::verify_options() const {
  bpf::verifier::VerifyOptions o;
  o.helper = [this](uint32_t id) -> bpf::verifier::HelperInfo {
    const Helper* h = find(id);
    return {h != nullptr, h ? h->proto : nullptr};
  };
  if (context_) o.map_at = [ctx = context_](uint64_t imm) { return ctx->map_use(imm); };
  return o;
}

HelperContext* HelperContext::current() { return ContextScope::current(); }

namespace {
// Conformance helper 5: returns its argument; the table marks it
// unwind_on_zero, so an argument of 0 ends the program with r0 = 0.
uint64_t unwind(uint64_t r1, uint64_t, uint64_t, uint64_t, uint64_t) { return r1; }
}  // namespace

HelperTable HelperTable::conformance() {
  HelperTable t;
  t.add(5, "unwind", unwind, /*unwind_on_zero=*/true);
  t.set_proto(5, &bpf::verifier::unwind_helper_proto());
  return t;
}

}  // namespace sb::rt
