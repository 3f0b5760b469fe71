#include "backends/compile.h"

#include "backends/isel.h"
#include "frontend/lower.h"
#include "frontend/validator.h"
#include "frontend/verifier/verifier.h"
#include "ir/diag.h"
#include "ir/passes.h"

namespace sb {

namespace {
// The IR after a pass (ir/passes.h, ir/harden.h): checked in the builds
// the tests run (CMake SPRINGBOARD_CHECK_PASSES), trusted in Release.
void check_pass_output([[maybe_unused]] const ir::Module& m) {
#if SPRINGBOARD_CHECK_PASSES
  ir::check(m);
#endif
}
}  // namespace

ir::Module to_ir(const bpf::Program& p, const rt::HelperTable& helpers, bool optimize, bool verify,
                 std::vector<uint8_t>* proven, bool tail_call_target) {
  bpf::ValidateOptions vopts;
  vopts.helper_exists = [&](uint32_t id) { return !ir::is_reserved_helper(id) && helpers.find(id) != nullptr; };
  bpf::validate(p, vopts);
  // A typed program's context accesses are rewritten from the verifier's
  // result, so it is verified even when the caller trusts it.
  bpf::verifier::VerifyResult verified;
  if (verify || bpf::needs_context_rewrite(p)) {
    bpf::verifier::VerifyOptions vo = helpers.verify_options();
    vo.raw_length_in_r2 = !tail_call_target;
    verified = bpf::verifier::verify(p, vo);
    if (proven) *proven = verified.proven;
  }
  bpf::LowerOptions lopts;
  if (bpf::needs_context_rewrite(p)) lopts.ctx_fields = verified.ctx_fields;
  for (const rt::Helper& h : helpers.all())
    if (!ir::is_reserved_helper(h.id)) lopts.helpers.push_back({h.id, h.unwind_on_zero, h.tail_call});
  ir::Module m = bpf::lower(p, lopts);
  ir::check(m);
  if (optimize) {
    ir::optimize(m);
    check_pass_output(m);
  }
  return m;
}

namespace {

// The target passes, in place.
void prepare(ir::Module& m, const backend::TargetDesc& target, const CompileOptions& opts) {
  if (!opts.optimize) return;
  ir::optimize_for_target(m, target.addressing);
  check_pass_output(m);
}

mc::CodeImage select(const ir::Module& m, const backend::TargetDesc& target, const CompileOptions& opts) {
  mc::Emitter out(mc::McTarget::get(target.spec), opts.output, opts.record_origins);
  backend::CodegenOptions copts;
  copts.helper_address = opts.helper_address;
  target.make_isel(out, copts)->run(m);
  return out.finish();
}

}  // namespace

mc::CodeImage generate(const ir::Module& m, const CompileOptions& opts) {
  const backend::TargetDesc& target = backend::target_for(opts.arch);
  if (!opts.optimize) return select(m, target, opts);
  ir::Module copy = m;
  prepare(copy, target, opts);
  return select(copy, target, opts);
}

Compilation compile(const bpf::Program& p, const rt::HelperTable& helpers, const CompileOptions& opts) {
  Compilation c;
  // A verified program keeps runtime bounds checks only where the proof
  // does not cover an access.
  std::vector<uint8_t> proven;
  c.ir = to_ir(p, helpers, opts.optimize, opts.verify, opts.verify && opts.harden.bounds_check ? &proven : nullptr,
               opts.tail_call_target);
  if (opts.harden.any()) {
    ir::HardenOptions h = opts.harden;
    if (!proven.empty() && !h.proven) h.proven = &proven;
    ir::harden(c.ir, h);
    check_pass_output(c.ir);
  }
  CompileOptions o = opts;
  if (!o.helper_address) {
    o.helper_address = [&](uint32_t id) -> uint64_t {
      const rt::Helper* h = helpers.find(id);
      if (!h) throw Error(p.name, "call to unknown helper " + std::to_string(id));
      return reinterpret_cast<uint64_t>(h->fn);
    };
  }
  const backend::TargetDesc& target = backend::target_for(opts.arch);
  prepare(c.ir, target, o);
  c.image = select(c.ir, target, o);
  return c;
}

}  // namespace sb
