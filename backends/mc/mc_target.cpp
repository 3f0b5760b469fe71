#include "backends/mc/mc_target.h"

#include <map>
#include <mutex>

#include <llvm/Support/TargetSelect.h>

#include "ir/diag.h"

namespace sb::mc {

namespace {
void initialize_llvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeAllTargetInfos();
    llvm::InitializeAllTargetMCs();
    llvm::InitializeAllDisassemblers();
  });
}
}  // namespace

McTarget::McTarget(const TargetSpec& spec) : triple_(spec.triple) {
  initialize_llvm();
  std::string err;
  target_ = llvm::TargetRegistry::lookupTarget(spec.triple, err);
  if (!target_) throw Error("LLVM", "no target for " + std::string(spec.triple) + ": " + err);
  mri_.reset(target_->createMCRegInfo(spec.triple));
  mai_.reset(target_->createMCAsmInfo(*mri_, spec.triple, options_));
  mii_.reset(target_->createMCInstrInfo());
  sti_.reset(target_->createMCSubtargetInfo(spec.triple, spec.cpu, spec.features));
  if (!mri_ || !mai_ || !mii_ || !sti_)
    throw Error("LLVM", "incomplete MC layer for " + std::string(spec.triple));
  for (unsigned i = 0; i < mii_->getNumOpcodes(); ++i) opcodes_.emplace(mii_->getName(i), i);
  for (unsigned i = 1; i < mri_->getNumRegs(); ++i) regs_.emplace(mri_->getName(i), i);
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
  auto it = opcodes_.find(name);
  if (it == opcodes_.end())
    throw Error("LLVM " + triple_.str(), "unknown opcode name " + std::string(name));
  return it->second;
}

unsigned McTarget::reg(std::string_view name) const {
  auto it = regs_.find(name);
  if (it == regs_.end())
    throw Error("LLVM " + triple_.str(), "unknown register name " + std::string(name));
  return it->second;
}

}  // namespace sb::mc
