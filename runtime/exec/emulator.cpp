#include "runtime/exec/emulator.h"

#include <unicorn/unicorn.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <functional>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "backends/compile.h"
#include "ir/diag.h"
#include "runtime/maps/maps.h"
#include "runtime/helpers/tail_call.h"

namespace sb::rt {

namespace {

// What the runner needs to know of each architecture, in one table.
struct GuestArch {
  uc_arch arch;
  uc_mode mode;
  int pc, sp;
  int link;           // link register, or -1 when the return address is on the stack (x86)
  int args[5];        // native argument registers of a helper call = BPF r1-r5
  int ret[2];         // return registers of the entry: r0, status
  uint8_t ret_insn[4];  // the instruction that fills a helper slot: return to the caller
  uint8_t ret_size;
};

const GuestArch& guest(Arch arch) {
  static const GuestArch x86 = {UC_ARCH_X86, UC_MODE_64, UC_X86_REG_RIP, UC_X86_REG_RSP, -1,
                                {UC_X86_REG_RDI, UC_X86_REG_RSI, UC_X86_REG_RDX, UC_X86_REG_RCX, UC_X86_REG_R8},
                                {UC_X86_REG_RAX, UC_X86_REG_RDX}, {0xc3}, 1};
  static const GuestArch arm64 = {UC_ARCH_ARM64, UC_MODE_ARM, UC_ARM64_REG_PC, UC_ARM64_REG_SP, UC_ARM64_REG_LR,
                                  {UC_ARM64_REG_X0, UC_ARM64_REG_X1, UC_ARM64_REG_X2, UC_ARM64_REG_X3, UC_ARM64_REG_X4},
                                  {UC_ARM64_REG_X0, UC_ARM64_REG_X1}, {0xc0, 0x03, 0x5f, 0xd6}, 4};  // ret
  static const GuestArch rv64 = {UC_ARCH_RISCV, UC_MODE_RISCV64, UC_RISCV_REG_PC, UC_RISCV_REG_SP, UC_RISCV_REG_RA,
                                 {UC_RISCV_REG_A0, UC_RISCV_REG_A1, UC_RISCV_REG_A2, UC_RISCV_REG_A3, UC_RISCV_REG_A4},
                                 {UC_RISCV_REG_A0, UC_RISCV_REG_A1}, {0x67, 0x80, 0x00, 0x00}, 4};  // jalr x0, 0(ra)
  switch (arch) {
    case Arch::X86_64: return x86;
    case Arch::Arm64: return arm64;
    default: return rv64;
  }
}

constexpr uint64_t kPage = 0x1000;
constexpr uint64_t kSlot = 16;
uint64_t round_up(uint64_t n) { return std::max<uint64_t>(kPage, (n + kPage - 1) / kPage * kPage); }

// Owns a Unicorn engine for one run.
class Engine {
 public:
  explicit Engine(const GuestArch& g) {
    if (uc_err e = uc_open(g.arch, g.mode, &uc_); e != UC_ERR_OK) throw Error("emulator", uc_strerror(e));
  }
  ~Engine() { uc_close(uc_); }
  uc_engine* get() const { return uc_; }
  void check(uc_err e, const char* what) const {
    if (e != UC_ERR_OK) throw Error("emulator", fmt::format("{}: {}", what, uc_strerror(e)));
  }
  void map(uint64_t addr, uint64_t size, uint32_t perms, const void* data, size_t len) const {
    check(uc_mem_map(uc_, addr, size, perms), "map");
    if (len) check(uc_mem_write(uc_, addr, data, len), "write");
  }
  // Host memory at its own address, shared with the host (no copy).
  void map_identity(const HostRange& r) const {
    check(uc_mem_map_ptr(uc_, r.addr, r.size, UC_PROT_READ | UC_PROT_WRITE, reinterpret_cast<void*>(r.addr)),
          "map host memory");
  }
  uint64_t reg(int id) const {
    uint64_t v = 0;
    uc_reg_read(uc_, id, &v);
    return v;
  }
  void set(int id, uint64_t v) const { check(uc_reg_write(uc_, id, &v), "register write"); }

 private:
  uc_engine* uc_ = nullptr;
};

// The host memory a run shows the guest at the same addresses: whole pages,
// sorted, overlapping or touching ranges merged (uc_mem_map_ptr takes no
// page twice). Throws when one would cover a fixed guest region.
std::vector<HostRange> identity_ranges(std::vector<HostRange> ranges, const std::vector<HostRange>& fixed,
                                       Arch arch) {
  std::vector<HostRange> pages;
  for (const HostRange& r : ranges) {
    if (r.size == 0) continue;
    const uint64_t begin = r.addr & ~(kPage - 1), end = (r.addr + r.size + kPage - 1) & ~(kPage - 1);
    pages.push_back({begin, end - begin});
  }
  std::sort(pages.begin(), pages.end(), [](const HostRange& a, const HostRange& b) { return a.addr < b.addr; });
  std::vector<HostRange> merged;
  for (const HostRange& r : pages) {
    if (!merged.empty() && r.addr <= merged.back().addr + merged.back().size)
      merged.back().size = std::max(merged.back().addr + merged.back().size, r.addr + r.size) - merged.back().addr;
    else
      merged.push_back(r);
  }
  for (const HostRange& r : merged)
    for (const HostRange& f : fixed)
      if (r.addr < f.addr + f.size && f.addr < r.addr + r.size)
        throw Error(fmt::format("{} emulator", backend::arch_name(arch)),
                    fmt::format("host memory [{:#x}, {:#x}) overlaps the guest's fixed region at {:#x}", r.addr,
                                r.addr + r.size, f.addr));
  return merged;
}

struct HookContext {
  const GuestArch* g;
  const HelperTable* helpers;
};

void helper_hook(uc_engine* uc, uint64_t address, uint32_t, void* user) {
  auto* ctx = static_cast<HookContext*>(user);
  const size_t index = (address - EmulatedProgram::kHelperBase) / kSlot;
  const Helper& h = ctx->helpers->all()[index];
  uint64_t a[5];
  for (int i = 0; i < 5; ++i) uc_reg_read(uc, ctx->g->args[i], &a[i]);
  uint64_t r = h.fn(a[0], a[1], a[2], a[3], a[4]);
  uc_reg_write(uc, ctx->g->ret[0], &r);
}

// `p` compiled for `arch` with helper calls aimed at the helper slots.
mc::CodeImage compile_for_guest(const bpf::Program& p, const HelperTable& helpers, Arch arch,
                                const ir::HardenOptions& harden, bool optimize = true, bool verify = false,
                                bool tail_call_target = false) {
  CompileOptions opts;
  opts.arch = arch;
  opts.verify = verify;
  opts.tail_call_target = tail_call_target;
  opts.optimize = optimize;
  opts.record_origins = true;
  opts.harden = harden;
  opts.helper_address = [&](uint32_t id) -> uint64_t {
    const auto& all = helpers.all();
    for (size_t i = 0; i < all.size(); ++i)
      if (all[i].id == id) return EmulatedProgram::kHelperBase + kSlot * i;
    throw Error(p.name, "call to unknown helper " + std::to_string(id));
  };
  return compile(p, helpers, opts).image;
}

uint64_t tail_entry_of(const mc::CodeImage& image, const std::string& name) {
  const std::optional<uint64_t> at = image.symbol(mc::kTailEntrySymbol);
  if (!at) throw Error(name, "the compiled code has no tail entry");
  return *at;
}

// One run's tail-call targets: each mapped into the guest after the code
// mapped before it, on its first tail call (from inside the helper's hook).
class GuestTargets final : public TailCallLoader {
 public:
  using Compile = std::function<const mc::CodeImage&(const std::shared_ptr<const bpf::Program>&)>;
  GuestTargets(const Engine& uc, uint64_t next, Compile compile) : uc_(uc), next_(next), compile_(std::move(compile)) {}
  uint64_t load(const std::shared_ptr<const bpf::Program>& target) override {
    auto it = mapped_.find(target.get());
    if (it == mapped_.end()) {
      const mc::CodeImage& image = compile_(target);
      const uint64_t size = round_up(image.text.size());
      if (next_ + size > EmulatedProgram::kCodeBase + EmulatedProgram::kCodeWindow)
        throw Error(target->name, fmt::format("tail-call targets need more than the guest's {:#x} bytes of code",
                                              EmulatedProgram::kCodeWindow));
      uc_.map(next_, size, UC_PROT_READ | UC_PROT_EXEC, image.text.data(), image.text.size());
      it = mapped_.emplace(target.get(), next_ + tail_entry_of(image, target->name)).first;
      next_ += size;
    }
    return it->second;
  }

 private:
  const Engine& uc_;
  uint64_t next_;
  Compile compile_;
  std::map<const bpf::Program*, uint64_t> mapped_;  // the guest address of each tail entry
};

}  // namespace

// The targets' code, compiled once per EmulatedProgram and mapped per run.
class EmulatedProgram::Targets {
 public:
  Targets(const HelperTable& helpers, Arch arch, const ir::HardenOptions& harden, bool verify)
      : helpers_(helpers), arch_(arch), harden_(harden), verify_(verify) {}
  const mc::CodeImage& image(const std::shared_ptr<const bpf::Program>& target) {
    std::lock_guard lock(mutex_);
    auto it = compiled_.find(target.get());
    if (it == compiled_.end())
      it = compiled_.emplace(target.get(), Entry{target, compile_for_guest(*target, helpers_, arch_, harden_, true, verify_, /*tail_call_target=*/true)}).first;
    return it->second.image;  // entries are never removed: the reference stays valid
  }

 private:
  struct Entry {
    std::shared_ptr<const bpf::Program> program;  // keeps the key's address unique
    mc::CodeImage image;
  };
  const HelperTable& helpers_;
  Arch arch_;
  ir::HardenOptions harden_;  // targets are hardened as the program is
  bool verify_;               // and verified as it was
  std::mutex mutex_;
  std::map<const bpf::Program*, Entry> compiled_;
};

EmulatedProgram::EmulatedProgram(const bpf::Program& p, const HelperTable& helpers, Arch arch, const Safety& safety,
                                 bool optimize)
    : name_(p.name), arch_(arch),
      helpers_(safety.harden().any() ? with_hardening_helpers(helpers) : helpers), safety_(safety),
      image_(compile_for_guest(p, helpers_, arch, safety.harden(), optimize, safety.verify)),
      targets_(std::make_unique<Targets>(helpers_, arch, safety.harden(), safety.verify)) {}

EmulatedProgram::~EmulatedProgram() = default;

uint64_t EmulatedProgram::run(std::vector<uint8_t>& mem, const EmuOptions& opts) const {
  ContextScope scope(helpers_.context());
  const GuestArch& g = guest(arch_);
  Engine uc(g);
  uc.map(kCodeBase, round_up(image_.text.size()), UC_PROT_READ | UC_PROT_EXEC, image_.text.data(), image_.text.size());

  const size_t slots = std::max<size_t>(helpers_.all().size(), 1);
  std::vector<uint8_t> slot_code(round_up(slots * kSlot), 0);
  for (size_t i = 0; i < slots; ++i) std::memcpy(&slot_code[i * kSlot], g.ret_insn, g.ret_size);
  uc.map(kHelperBase, slot_code.size(), UC_PROT_READ | UC_PROT_EXEC, slot_code.data(), slot_code.size());
  uc.map(kExitAddr, kPage, UC_PROT_READ | UC_PROT_EXEC, nullptr, 0);

  // Stack, program memory and the helpers' host ranges, at their host addresses.
  PageMemory stack(kStackSize);
  std::vector<HostRange> host = {stack.range()};
  if (!mem.empty()) host.push_back({uint64_t(uintptr_t(mem.data())), mem.size()});
  const std::vector<HostRange> reachable = reachable_ranges(helpers_);
  host.insert(host.end(), reachable.begin(), reachable.end());
  std::optional<RunRecord> record;
  if (safety_.needs_record()) {
    record.emplace(reachable, safety_);
    if (auto stop = record->stop_range()) host.push_back(*stop);  // the word time polls read
  }
  RunScope run_scope(record ? &*record : RunScope::current());
  const std::vector<HostRange> fixed = {{kCodeBase, kCodeWindow},
                                        {kHelperBase, slot_code.size()},
                                        {kExitAddr, kPage}};
  for (const HostRange& r : identity_ranges(std::move(host), fixed, arch_)) uc.map_identity(r);

  HookContext ctx{&g, &helpers_};
  uc_hook hook;
  uc.check(uc_hook_add(uc.get(), &hook, UC_HOOK_CODE, reinterpret_cast<void*>(helper_hook), &ctx, kHelperBase,
                       kHelperBase + slots * kSlot - 1),
           "hook");

  GuestTargets targets(uc, kCodeBase + round_up(image_.text.size()),
                       [this](const std::shared_ptr<const bpf::Program>& t) -> const mc::CodeImage& {
                         return targets_->image(t);
                       });
  TailCallRun tail_calls(targets);

  uint64_t sp = uint64_t(uintptr_t(stack.data())) + stack.size();
  if (g.link < 0) {  // x86: the return address is on the stack
    sp -= 8;
    uc.check(uc_mem_write(uc.get(), sp, &kExitAddr, 8), "stack write");
  } else {
    uc.set(g.link, kExitAddr);
  }
  uc.set(g.sp, sp);
  uc.set(g.args[0], mem.empty() ? 0 : uint64_t(uintptr_t(mem.data())));
  uc.set(g.args[1], mem.size());

  uc_err err;
  {
    std::optional<Watchdog> watchdog;
    if (record) watchdog.emplace(*record, std::chrono::nanoseconds(safety_.time_budget_ns));
    err = uc_emu_start(uc.get(), kCodeBase, kExitAddr, 0, opts.insn_budget);
  }
  const uint64_t pc = uc.reg(g.pc);
  if (err != UC_ERR_OK || pc != kExitAddr) {
    // Name the bytecode instruction whose code was running, when it is ours.
    std::string where = fmt::format("{} emulator", backend::arch_name(arch_));
    if (pc >= kCodeBase && pc < kCodeBase + image_.text.size()) {
      const mc::Origin* best = nullptr;
      for (const mc::Origin& o : image_.origins)
        if (kCodeBase + o.offset <= pc && (!best || o.offset >= best->offset)) best = &o;
      if (best) where = insn_location(name_, best->insn) + " (" + where + ")";
    }
    if (err != UC_ERR_OK) throw Error(where, fmt::format("{} at guest address {:#x}", uc_strerror(err), pc));
    throw Error(where, fmt::format("instruction budget of {} exhausted", opts.insn_budget));
  }
  tail_calls.finish();
  const std::string& trapped = tail_calls.running() ? tail_calls.running()->name : name_;
  return finish_run(uc.reg(g.ret[0]), uc.reg(g.ret[1]), trapped, record ? &*record : nullptr, safety_.time_budget_ns);
}

}  // namespace sb::rt
