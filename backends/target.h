// The target registry (design example 2): one descriptor per architecture,
// listed in backends/targets.cpp. A descriptor names the LLVM target and
// creates that architecture's instruction selector.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "backends/arch.h"
#include "backends/mc/emitter.h"
#include "ir/ir.h"
#include "ir/passes.h"

namespace sb {

namespace backend {

struct CodegenOptions {
  // Native address to call for helper `id` (a host function, a trap address
  // in the emulator); called once per call site.
  std::function<uint64_t(uint32_t id)> helper_address;
};

class ISel;

struct TargetDesc {
  Arch arch;
  const char* name;  // the CLI's spelling: "x86-64", "arm64", "riscv64"
  mc::TargetSpec spec;
  std::unique_ptr<ISel> (*make_isel)(mc::Emitter& out, const CodegenOptions& opts);
  // What its loads and stores address (ir::fold_addresses).
  ir::AddressModes addressing;
};

// The built targets, in the order above; the aliases x86_64 and aarch64
// are accepted too. find_target returns null for an unknown name.
const std::vector<const TargetDesc*>& targets();
const TargetDesc* find_target(std::string_view name);
const TargetDesc& target_for(Arch arch);  // throws sb::Error if not built
const char* arch_name(Arch arch);

}  // namespace backend
}  // namespace sb
