// LLVM MC objects that never change for a target (register info, asm info,
// instruction info, subtarget), created once per process and shared by
// every compile; LLVM's registry is set up only for the targets asked for. Backends refer to LLVM opcodes and registers by their
// TableGen names ("MOV64rr", "X0"): the generated enums are not installed
// with llvm-19-dev, so each backend resolves its name table once through
// opcode()/reg(), which fail loudly on a name LLVM does not know.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <llvm/MC/MCAsmInfo.h>
#include <llvm/MC/MCContext.h>
#include <llvm/MC/MCDisassembler/MCDisassembler.h>
#include <llvm/MC/MCInstrInfo.h>
#include <llvm/MC/MCRegisterInfo.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/MCTargetOptions.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/TargetParser/Triple.h>

namespace sb::mc {

struct TargetSpec {
  const char* triple;    // "x86_64-unknown-linux-gnu"
  const char* cpu;       // "" for generic
  const char* features;  // "+m,+a,-relax"
};

class McTarget {
 public:
  // Thread-safe; the first call for a triple builds it.
  static const McTarget& get(const TargetSpec& spec);

  unsigned opcode(std::string_view name) const;  // throws sb::Error if unknown (a binary search)
  unsigned reg(std::string_view name) const;     // throws sb::Error if unknown

  const llvm::Target& target() const { return *target_; }
  const llvm::Triple& triple() const { return triple_; }
  const llvm::MCRegisterInfo& mri() const { return *mri_; }
  const llvm::MCAsmInfo& mai() const { return *mai_; }
  const llvm::MCInstrInfo& mii() const { return *mii_; }
  const llvm::MCSubtargetInfo& sti() const { return *sti_; }
  const llvm::MCTargetOptions& options() const { return options_; }
  // LLVM's disassembler for this target, set up on first use (null if none).
  std::unique_ptr<llvm::MCDisassembler> create_disassembler(llvm::MCContext& ctx) const;

  explicit McTarget(const TargetSpec& spec);

 private:
  std::optional<unsigned> find_opcode(std::string_view name) const;

  const llvm::Target* target_ = nullptr;
  llvm::Triple triple_;
  llvm::MCTargetOptions options_;
  std::unique_ptr<llvm::MCRegisterInfo> mri_;
  std::unique_ptr<llvm::MCAsmInfo> mai_;
  std::unique_ptr<llvm::MCInstrInfo> mii_;
  std::unique_ptr<llvm::MCSubtargetInfo> sti_;
  std::unordered_map<std::string_view, unsigned> regs_;
};

// Resolves a table of names to numbers once: `names` and `out` have the
// same length; used by every backend's opcode and register tables.
template <size_t N>
void resolve_opcodes(const McTarget& t, const char* const (&names)[N], unsigned (&out)[N]) {
  for (size_t i = 0; i < N; ++i) out[i] = t.opcode(names[i]);
}
template <size_t N>
void resolve_regs(const McTarget& t, const char* const (&names)[N], unsigned (&out)[N]) {
  for (size_t i = 0; i < N; ++i) out[i] = t.reg(names[i]);
}

}  // namespace sb::mc
