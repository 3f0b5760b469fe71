#include "runtime/hook/trampoline.h"

#include <cstddef>

#include <fmt/format.h>

#include "backends/compile.h"
#include "ir/diag.h"
#include "runtime/hook/live_patch.h"
#include "runtime/hook/sanitizer.h"

namespace sb::rt {

static_assert(offsetof(RunCtx, prev) == tramp::kRunCtxPrev && offsetof(ThreadGuard, run_ctx) == tramp::kGuardRunCtx &&
                  offsetof(ThreadGuard, depth) == tramp::kGuardDepth &&
                  offsetof(ThreadGuard, running) == tramp::kGuardRunning && sizeof(ThreadGuard::depth) == 4,
              "frontend/trampoline.cpp runs enter and exit inline with these offsets");

// The return landing every uretprobe shares (tramp_runtime.h): compiled
// once, never freed, since any thread may return into it at any time.
namespace {
mc::CodeImage compile_host(const ir::Module& m) {
  ir::check(m);
  CompileOptions opts;
  opts.arch = Arch::X86_64;
  return generate(m, opts);
}
}  // namespace

const void* return_landing() {
  static const ExecMemory* landing = [] {
    return new ExecMemory(compile_host(tramp::lower_return_landing(reinterpret_cast<uint64_t>(&sb_uretprobe_dispatch))).text);
  }();
  return landing->data();
}

uint64_t return_misses(const Trampoline& t) { return t.return_site() ? t.return_site()->misses.load() : 0; }

Trampoline::Trampoline(void* target, ir::Signature sig, TrampolineOptions opts, std::string name)
    : target_(target), sig_(std::move(sig)), opts_(opts), name_(std::move(name)) {}

Trampoline::~Trampoline() {
  if (hook_) hook_->detach();
}

size_t Trampoline::links() const {
  std::lock_guard<std::mutex> lock(mu_);
  return links_.size();
}

bool Trampoline::attached() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hook_ != nullptr;
}

const void* Trampoline::original() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hook_ ? hook_->original() : target_;
}

bool Trampoline::breakpoint() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hook_ && hook_->breakpoint();
}

std::vector<uint8_t> Trampoline::image() const {
  std::lock_guard<std::mutex> lock(mu_);
  return image_ ? image_code_.text : std::vector<uint8_t>{};
}

LinkId Trampoline::link(tramp::Kind kind, const bpf::Program& p, uint64_t cookie, const HelperTable& helpers) {
  return link(kind, p, nullptr, cookie, helpers);
}

LinkId Trampoline::link(tramp::Kind kind, const bpf::Program& p, std::shared_ptr<const NativeProgram> compiled,
                        uint64_t cookie, const HelperTable& helpers) {
  std::lock_guard<std::mutex> lock(mu_);
  if (tramp::is_probe(kind) != opts_.probe)
    throw Error(name_, fmt::format("a {} program cannot be linked to the {} at this address", tramp::kind_name(kind),
                                   opts_.probe ? "probe (uprobe, uretprobe)" : "trampoline (fentry, fexit, fmod_ret)"));
  if (links_.size() >= tramp::kMaxPrograms)
    throw Error(name_, fmt::format("at most {} programs may be attached", tramp::kMaxPrograms));
  auto data = std::make_shared<LinkData>();
  data->id = next_id_++;
  data->program = compiled ? std::move(compiled) : std::make_shared<const NativeProgram>(p, helpers);
  data->state.stats = opts_.stats;
  data->state.recursion_guard = opts_.recursion_guard;
  data->state.context = helpers.context();
  for (const bpf::Insn& in : p.insns)
    data->calls_helpers = data->calls_helpers || (in.opcode == bpf::make_opcode(bpf::JMP, bpf::CALL) && in.src != bpf::CALL_LOCAL);
  data->overrides_return = tramp::overrides_return(p);
  if (!hook_) hook_ = Hook::install(target_, opts_.probe);
  links_.push_back({data->id, kind, cookie, data});
  try {
    update();
  } catch (...) {
    links_.pop_back();
    throw;
  }
  return links_.back().id;
}

void Trampoline::unlink(LinkId id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find_if(links_.begin(), links_.end(), [&](const Link& l) { return l.id == id; });
  if (it == links_.end()) throw Error(name_, fmt::format("no link {}", id));
  links_.erase(it);  // its data lives on in the images that call it
  if (!links_.empty()) return update();
  detach();
}

void Trampoline::unlink_all() {
  std::lock_guard<std::mutex> lock(mu_);
  links_.clear();
  detach();
}

void Trampoline::detach() {
  if (!hook_) return;
  if (return_site_) return_site_->programs.store(nullptr, std::memory_order_release);
  hook_->detach();  // calls run the function itself again
  retired_hooks_.push_back(std::move(hook_));
  if (image_) retired_images_.push_back(std::move(*image_));
  image_.reset();
  reclaim(false);
}

ProgStats Trampoline::stats(LinkId id) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Link& l : links_)
    if (l.id == id) return stats_of(l.data->state);
  for (const Image& i : retired_images_)
    for (const auto& d : i.links)
      if (d->id == id) return stats_of(d->state);
  throw Error(name_, fmt::format("no link {} (never linked, or unlinked and freed)", id));
}

void Trampoline::update() {
  tramp::Description d;
  d.file = name_;
  d.target = name_;
  d.signature = sig_;
  d.call_original = opts_.call_original;
  d.ip_arg = opts_.ip_arg;
  d.stats = opts_.stats;
  d.recursion_guard = opts_.recursion_guard;
  d.no_vector_use = true;
  for (const Link& l : links_) {
    // A helper may read the run context (get_attach_cookie, get_func_ip).
    d.run_context = d.run_context || l.data->state.context || l.data->calls_helpers;
    d.no_vector_use = d.no_vector_use && !l.data->calls_helpers;
  }
  Image next;
  tramp::Bindings b;
  b.ip = reinterpret_cast<uint64_t>(target_);
  b.original = reinterpret_cast<uint64_t>(hook_->original());
  b.prog_enter = reinterpret_cast<uint64_t>(&sb_tramp_prog_enter);
  b.prog_exit = reinterpret_cast<uint64_t>(&sb_tramp_prog_exit);
  static const int64_t tls = in_flight_tls_offset();
  if (tls < INT32_MIN || tls > INT32_MAX)
    throw Error(name_, "the in-flight stack is not within 2 GiB of the thread pointer (not initial-exec TLS)");
  b.in_flight_tls = int32_t(tls);
  b.in_flight_capacity = kInFlightCapacity;
#ifndef SB_UNDER_TSAN  // under TSan every enter and exit goes through the runtime, which states their edges
  static const int64_t guard = guard_tls_offset();
  if (guard >= INT32_MIN && guard <= INT32_MAX) b.guard_tls = int32_t(guard);
#endif
  static std::atomic<uint64_t> images{0};  // tokens are never reused
  next.token = b.image_token = images.fetch_add(1, std::memory_order_relaxed) + 1;
  next.hook = hook_.get();
  for (const Link& l : links_) {
    d.programs.push_back({l.kind, {}, l.cookie, l.data->overrides_return});
    b.entries.push_back(reinterpret_cast<uint64_t>(l.data->program->entry()));
    b.states.push_back(reinterpret_cast<uint64_t>(&l.data->state));
    const ProgState& st = l.data->state;
    b.plain.push_back(!st.stats && !st.context && st.recursion_guard);
    next.links.push_back(l.data);
  }
  const bool returns = !d.of_kind(tramp::Kind::Uretprobe).empty();
  if (returns) {
    if (!return_site_) return_site_ = new_return_site();  // never freed (tramp_runtime.h)
    b.ret_enter = reinterpret_cast<uint64_t>(&sb_uretprobe_enter);
    b.ret_site = reinterpret_cast<uint64_t>(return_site_);
    b.ret_landing = reinterpret_cast<uint64_t>(return_landing());
    next.return_code = std::make_unique<ExecMemory>(compile_host(tramp::lower_return(d, b)).text);
  }
  mc::CodeImage code = compile_host(tramp::lower(d, b));
  next.code = std::make_unique<ExecMemory>(code.text);
  for (const auto& l : next.links) tsan_release(&l->state);  // sanitizer.h
  if (return_site_)  // before the probe that catches returns for them
    return_site_->programs.store(
        returns ? reinterpret_cast<uint64_t (*)(void*)>(const_cast<uint8_t*>(next.return_code->data())) : nullptr,
        std::memory_order_release);
  hook_->redirect(next.code->data());
  if (image_) retired_images_.push_back(std::move(*image_));
  image_ = std::move(next);
  image_code_ = std::move(code);
  reclaim(false);
}

// What a stop round asks each stopped thread (in its signal handler):
// which of the retired images' tokens it holds.
struct InFlightQuery {
  const uint64_t* tokens;
  size_t n;
  uint8_t* hit;
};
SB_SIGNAL_CONTEXT static void probe_in_flight(void* arg) {
  const auto* q = static_cast<const InFlightQuery*>(arg);
  mark_in_flight(q->tokens, q->n, q->hit);
}

// Retired images are few while threads keep up; a stop round costs a
// signal per thread, so it runs once this many have gathered.
constexpr size_t kReclaimBatch = 16;

// A retired image can no longer be entered (the hook jumps elsewhere and
// every core has serialised since). It is free once, with every other
// thread stopped, none holds its token in its in-flight stack (it is
// between the trampoline's first instructions and its last: inside a
// program, a helper or the original function called from it) and none
// stands in its code (before the push or after the pop); nor does this
// thread hold it (a program that unlinks).
void Trampoline::reclaim(bool all) {
  // A detached hook is looked at by the stop round after its detach, and
  // it needs one: that round also ends every breakpoint trap of its entry.
  all = all || !retired_hooks_.empty();
  if (retired_images_.empty() && retired_hooks_.empty()) return;
  if (!all && retired_images_.size() < kReclaimBatch) return;
  const size_t n = retired_images_.size();
  std::vector<uint64_t> tokens;
  for (const Image& img : retired_images_) tokens.push_back(img.token);
  std::vector<uint8_t> hits(n, 0);
  InFlightQuery q{tokens.data(), n, hits.data()};
  const std::vector<uint64_t> pcs = other_threads_pcs(probe_in_flight, &q);
  probe_in_flight(&q);
  std::vector<Image> kept;
  for (size_t i = 0; i < n; ++i) {
    Image& img = retired_images_[i];
    const uint64_t lo = reinterpret_cast<uint64_t>(img.code->data()), hi = lo + img.code->size();
    bool inside = __atomic_load_n(&hits[i], __ATOMIC_RELAXED) != 0;
    for (uint64_t pc : pcs) inside = inside || (pc >= lo && pc < hi);
    if (img.return_code) {
      const uint64_t rlo = reinterpret_cast<uint64_t>(img.return_code->data()), rhi = rlo + img.return_code->size();
      for (uint64_t pc : pcs) inside = inside || (pc >= rlo && pc < rhi);
    }
    if (inside)
      kept.push_back(std::move(img));
    else
      for (const auto& l : img.links) tsan_acquire(&l->state);  // sanitizer.h
  }
  retired_images_ = std::move(kept);
  // A detached hook: no new thread can enter its thunk (the entry was
  // restored, cores serialised, before this round), so it is free once no
  // thread stands in it and no image left can still call its stub.
  std::vector<std::unique_ptr<Hook>> hooks;
  for (std::unique_ptr<Hook>& h : retired_hooks_) {
    h->release_traps();
    bool busy = false;
    for (uint64_t pc : pcs) busy = busy || h->contains(pc);
    for (const Image& img : retired_images_) busy = busy || img.hook == h.get();
    if (h->stub_calls_out())
      kept_hooks_.push_back(std::move(h));
    else if (busy)
      hooks.push_back(std::move(h));
  }
  retired_hooks_ = std::move(hooks);
}

bool Trampoline::collect() {
  std::lock_guard<std::mutex> lock(mu_);
  reclaim(true);
  return retired_images_.empty() && retired_hooks_.empty() && kept_hooks_.empty();
}

Trampoline& TrampolineTable::get(void* target, const ir::Signature& sig, const TrampolineOptions& opts,
                                 const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  sweep_graveyard();
  Entry& e = table_[target];
  if (!e.trampoline) {
    e.trampoline = std::make_unique<Trampoline>(target, sig, opts, name);
  } else {
    const TrampolineOptions& o = e.trampoline->options();
    if (o.probe != opts.probe)
      throw Error(name, fmt::format("this address already has a {}, this request needs a {}",
                                    o.probe ? "probe (uprobe, uretprobe)" : "trampoline (fentry, fexit, fmod_ret)",
                                    opts.probe ? "probe" : "trampoline"));
    const ir::Signature& have = e.trampoline->signature();
    bool same = have.args.size() == sig.args.size() && have.ret.type == sig.ret.type;
    for (size_t i = 0; same && i < sig.args.size(); ++i)
      same = have.args[i].type == sig.args[i].type && have.args[i].size == sig.args[i].size;
    if (!same) throw Error(name, "a trampoline with another signature is already attached to this function");
    // The options shape the image every link shares: a reference asking
    // for others would silently get the first one's.
    auto differs = [&](bool have_v, bool want, const char* what) {
      if (have_v != want)
        throw Error(name, fmt::format("the trampoline already attached to this function has {} {}, this request "
                                      "asks for it {}",
                                      what, have_v ? "on" : "off", want ? "on" : "off"));
    };
    differs(o.call_original, opts.call_original, "call_original");
    differs(o.ip_arg, opts.ip_arg, "ip_arg");
    differs(o.stats, opts.stats, "statistics");
    differs(o.recursion_guard, opts.recursion_guard, "the recursion guard");
  }
  ++e.refs;
  return *e.trampoline;
}

Trampoline* TrampolineTable::lookup(void* target) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = table_.find(target);
  return it == table_.end() ? nullptr : it->second.trampoline.get();
}

void TrampolineTable::put(void* target) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = table_.find(target);
  if (it == table_.end()) throw Error("trampoline table", "put of a target that has no trampoline");
  if (--it->second.refs > 0) return;
  it->second.trampoline->unlink_all();
  graveyard_.push_back(std::move(it->second.trampoline));  // threads may still be inside
  table_.erase(it);
  sweep_graveyard();
}

void TrampolineTable::sweep_graveyard() {
  std::erase_if(graveyard_, [](const std::unique_ptr<Trampoline>& t) { return t->collect(); });
}

TrampolineTable::~TrampolineTable() = default;

}  // namespace sb::rt
