#include "runtime/exec/engines.h"

#include <algorithm>

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
                  [](const bpf::Program& p, const HelperTable& h, std::vector<uint8_t>& mem, const RunOptions& o) {
                    bpf::ValidateOptions v;
                    v.helper_exists = [&](uint32_t id) { return h.find(id) != nullptr; };
                    bpf::validate(p, v);
                    if (o.safety.verify) {
                      bpf::verifier::verify(p, h.verify_options());
                    }
                    InterpOptions io;
                    io.insn_budget = o.insn_budget;
                    io.safety = o.safety;
                    return interpret(p, h, data_of(mem), mem.size(), io);
                  }});
#if defined(__x86_64__) && defined(SPRINGBOARD_HAVE_X86_64)
  list.push_back({"x86_64_native", EngineKind::Native, Arch::X86_64,
                  [](const bpf::Program& p, const HelperTable& h, std::vector<uint8_t>& mem, const RunOptions& o) {
                    NativeProgram native(p, h, o.safety, o.optimize);
                    return native.run(data_of(mem), mem.size());
                  }});
#endif
  for (const backend::TargetDesc* t : backend::targets()) {
    std::string name = t->name;
    std::replace(name.begin(), name.end(), '-', '_');
    const Arch arch = t->arch;
    list.push_back({name + "_emu", EngineKind::Emulated, arch,
                    [arch](const bpf::Program& p, const HelperTable& h, std::vector<uint8_t>& mem,
                           const RunOptions& o) {
                      EmulatedProgram emu(p, h, arch, o.safety, o.optimize);
                      EmuOptions eo;
                      if (o.insn_budget) eo.insn_budget = o.insn_budget;
                      return emu.run(mem, eo);
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
