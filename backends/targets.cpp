// The target registry: every backend built into this library.
#include <string>

#include "backends/target.h"
#include "ir/diag.h"

namespace sb::backend {

#ifdef SPRINGBOARD_HAVE_X86_64
extern const TargetDesc kX86_64Target;
#endif
#ifdef SPRINGBOARD_HAVE_ARM64
extern const TargetDesc kArm64Target;
#endif
#ifdef SPRINGBOARD_HAVE_RISCV64
extern const TargetDesc kRiscv64Target;
#endif

const std::vector<const TargetDesc*>& targets() {
  static const std::vector<const TargetDesc*> list = {
#ifdef SPRINGBOARD_HAVE_X86_64
      &kX86_64Target,
#endif
#ifdef SPRINGBOARD_HAVE_ARM64
      &kArm64Target,
#endif
#ifdef SPRINGBOARD_HAVE_RISCV64
      &kRiscv64Target,
#endif
  };
  return list;
}

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::X86_64: return "x86-64";
    case Arch::Arm64: return "arm64";
    case Arch::Riscv64: return "riscv64";
  }
  return "?";
}

const TargetDesc* find_target(std::string_view name) {
  if (name == "x86_64") name = "x86-64";
  if (name == "aarch64") name = "arm64";
  for (const TargetDesc* t : targets())
    if (name == t->name) return t;
  return nullptr;
}

const TargetDesc& target_for(Arch arch) {
  for (const TargetDesc* t : targets())
    if (t->arch == arch) return *t;
  throw Error("", std::string("the ") + arch_name(arch) + " backend is not built into this library");
}

}  // namespace sb::backend
