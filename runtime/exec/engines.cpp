#include "runtime/exec/engines.h"

#include <algorithm>
#include <memory>

#include "frontend/validator.h"
#include "frontend/verifier/verifier.h"
#include "runtime/exec/emulator.h"
#include "runtime/exec/interpreter.h"
#include "runtime/exec/native.h"

namespace sb::rt {

namespace {

void* data_of(std::vector<uint8_t>& mem) { return mem.empty() ? nullptr : mem.data(); }

std::vector<Engine> make_engines() {
  std::vector<Engine> list;
  list.push_back({"interp", EngineKind::Interp, Arch::X86_64,
                  [](const bpf::Program& p, const HelperTable& h, const RunOptions& o) -> Engine::Runner {
                    bpf::ValidateOptions v;
                    v.helper_exists = [&](uint32_t id) { return h.find(id) != nullptr; };
                    bpf::validate(p, v);
                    // A typed program is verified always: its context accesses
                    // are rewritten from the result.
                    auto verified = std::make_shared<bpf::verifier::VerifyResult>();
                    if (o.safety.verify || bpf::needs_context_rewrite(p)) *verified = bpf::verifier::verify(p, h.verify_options());
                    InterpOptions io;
                    io.insn_budget = o.insn_budget;
                    io.safety = o.safety;
                    if (bpf::needs_context_rewrite(p)) io.ctx_fields = verified->ctx_fields;
                    return [&p, &h, io, verified](std::vector<uint8_t>& mem) {
                      return interpret(p, h, data_of(mem), mem.size(), io);
                    };
                  }});
#if defined(__x86_64__) && defined(SPRINGBOARD_HAVE_X86_64)
  list.push_back({"x86_64_native", EngineKind::Native, Arch::X86_64,
                  [](const bpf::Program& p, const HelperTable& h, const RunOptions& o) -> Engine::Runner {
                    auto native = std::make_shared<NativeProgram>(p, h, o.safety, o.optimize);
                    return [native](std::vector<uint8_t>& mem) { return native->run(data_of(mem), mem.size()); };
                  }});
#endif
  for (const backend::TargetDesc* t : backend::targets()) {
    std::string name = t->name;
    std::replace(name.begin(), name.end(), '-', '_');
    const Arch arch = t->arch;
    list.push_back({name + "_emu", EngineKind::Emulated, arch,
                    [arch](const bpf::Program& p, const HelperTable& h, const RunOptions& o) -> Engine::Runner {
                      auto emu = std::make_shared<EmulatedProgram>(p, h, arch, o.safety, o.optimize);
                      EmuOptions eo;
                      if (o.insn_budget) eo.insn_budget = o.insn_budget;
                      return [emu, eo](std::vector<uint8_t>& mem) { return emu->run(mem, eo); };
                    }});
  }
  return list;
}

}  // namespace

const std::vector<Engine>& engines() {
  static const std::vector<Engine> list = make_engines();
  return list;
}

const Engine* find_engine(EngineKind kind, Arch arch) {
  for (const Engine& e : engines())
    if (e.kind == kind && (kind == EngineKind::Interp || e.arch == arch)) return &e;
  return nullptr;
}

}  // namespace sb::rt
