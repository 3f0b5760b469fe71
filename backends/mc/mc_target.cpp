#include "backends/mc/mc_target.h"

#include <iterator>
#include <map>
#include <mutex>
#include <optional>

#include <llvm/MC/MCDisassembler/MCDisassembler.h>
#include <llvm/CodeGen/TargetOpcodes.h>
#include <llvm/Support/TargetSelect.h>

#include "ir/diag.h"

namespace sb::mc {

namespace {

// LLVM's registration of the targets Springboard uses, one at a time: a
// process sets up only the targets it compiles for (the first compile's
// cost), and the disassembler only when something disassembles.
struct LlvmTarget {
  llvm::Triple::ArchType arch;
  void (*info)();
  void (*mc)();
  void (*disassembler)();
};
constexpr LlvmTarget kLlvmTargets[] = {
    {llvm::Triple::x86_64, LLVMInitializeX86TargetInfo, LLVMInitializeX86TargetMC, LLVMInitializeX86Disassembler},
    {llvm::Triple::aarch64, LLVMInitializeAArch64TargetInfo, LLVMInitializeAArch64TargetMC,
     LLVMInitializeAArch64Disassembler},
    {llvm::Triple::riscv64, LLVMInitializeRISCVTargetInfo, LLVMInitializeRISCVTargetMC,
     LLVMInitializeRISCVDisassembler},
};

// Registers the MC layer (and with `disassembler` the disassembler) of
// `triple`'s target, once; any other triple gets every target. LLVM's
// registry is a plain list, so one lock serialises all registrations.
void initialize_llvm(const llvm::Triple& triple, bool disassembler) {
  static std::mutex mu;
  static bool mc_done[std::size(kLlvmTargets) + 1], disassembler_done[std::size(kLlvmTargets) + 1];
  size_t i = 0;
  while (i < std::size(kLlvmTargets) && kLlvmTargets[i].arch != triple.getArch()) ++i;
  std::lock_guard lock(mu);
  if (!mc_done[i]) {
    if (i < std::size(kLlvmTargets)) {
      kLlvmTargets[i].info();
      kLlvmTargets[i].mc();
    } else {
      llvm::InitializeAllTargetInfos();
      llvm::InitializeAllTargetMCs();
    }
    mc_done[i] = true;
  }
  if (disassembler && !disassembler_done[i]) {
    if (i < std::size(kLlvmTargets))
      kLlvmTargets[i].disassembler();
    else
      llvm::InitializeAllDisassemblers();
    disassembler_done[i] = true;
  }
}

}  // namespace

McTarget::McTarget(const TargetSpec& spec) : triple_(spec.triple) {
  initialize_llvm(triple_, false);
  std::string err;
  target_ = llvm::TargetRegistry::lookupTarget(spec.triple, err);
  if (!target_) throw Error("LLVM", "no target for " + std::string(spec.triple) + ": " + err);
  mri_.reset(target_->createMCRegInfo(spec.triple));
  mai_.reset(target_->createMCAsmInfo(*mri_, spec.triple, options_));
  mii_.reset(target_->createMCInstrInfo());
  sti_.reset(target_->createMCSubtargetInfo(spec.triple, spec.cpu, spec.features));
  if (!mri_ || !mai_ || !mii_ || !sti_)
    throw Error("LLVM", "incomplete MC layer for " + std::string(spec.triple));
  for (unsigned i = 1; i < mri_->getNumRegs(); ++i) regs_.emplace(mri_->getName(i), i);
}

std::unique_ptr<llvm::MCDisassembler> McTarget::create_disassembler(llvm::MCContext& ctx) const {
  initialize_llvm(triple_, true);
  return std::unique_ptr<llvm::MCDisassembler>(target_->createMCDisassembler(*sti_, ctx));
}

// TableGen numbers a target's own instructions after the generic ones,
// pseudos first, each group sorted by name: a binary search in each group
// finds a name without a table of them all (building one for x86's 20000
// opcodes took most of the first compile). Should the order ever differ,
// the linear scan still finds it.
std::optional<unsigned> McTarget::find_opcode(std::string_view name) const {
  const unsigned first = llvm::TargetOpcode::GENERIC_OP_END + 1, end = mii_->getNumOpcodes();
  auto name_of = [&](unsigned i) { return std::string_view(mii_->getName(i)); };
  unsigned lo = first, hi = end;  // the first non-pseudo
  while (lo < hi) {
    const unsigned mid = lo + (hi - lo) / 2;
    if (mii_->get(mid).isPseudo()) lo = mid + 1;
    else hi = mid;
  }
  for (auto [from, to] : {std::pair{first, lo}, std::pair{lo, end}}) {
    unsigned a = from, b = to;
    while (a < b) {
      const unsigned mid = a + (b - a) / 2;
      if (name_of(mid) < name) a = mid + 1;
      else b = mid;
    }
    if (a < to && name_of(a) == name) return a;
  }
  for (unsigned i = 0; i < end; ++i)
    if (name_of(i) == name) return i;
  return std::nullopt;
}

const McTarget& McTarget::get(const TargetSpec& spec) {
  // The target this thread asked for last: every compile asks, and this
  // answers without the lock or building a key.
  struct Last {
    std::string triple, cpu, features;
    const McTarget* target = nullptr;
  };
  thread_local Last last;
  if (last.target && last.triple == spec.triple && last.cpu == spec.cpu && last.features == spec.features)
    return *last.target;
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<McTarget>> cache;
  std::lock_guard<std::mutex> lock(mu);
  std::string key = std::string(spec.triple) + '|' + spec.cpu + '|' + spec.features;
  auto& slot = cache[key];
  if (!slot) slot = std::make_unique<McTarget>(spec);
  last = {spec.triple, spec.cpu, spec.features, slot.get()};
  return *slot;
}

unsigned McTarget::opcode(std::string_view name) const {
  const std::optional<unsigned> found = find_opcode(name);
  if (!found) throw Error("LLVM " + triple_.str(), "unknown opcode name " + std::string(name));
  return *found;
}

unsigned McTarget::reg(std::string_view name) const {
  auto it = regs_.find(name);
  if (it == regs_.end())
    throw Error("LLVM " + triple_.str(), "unknown register name " + std::string(name));
  return it->second;
}

}  // namespace sb::mc
