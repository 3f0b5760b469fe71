// arm64 and riscv64 function entry hooking for Unicorn guests: decode the
// first instructions with LLVM's MCDisassembler (Capstone 4 has no
// riscv64; one decoder serves both), relocate them into a stub built with
// LLVM MC, build the entry patch. Diagrams and the relocation table are in
// hook_guest.h.
#include "runtime/hook/hook_guest.h"

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <llvm/MC/MCContext.h>
#include <llvm/MC/MCDisassembler/MCDisassembler.h>
#include <llvm/MC/MCInstrAnalysis.h>
#include <llvm/Support/MathExtras.h>
#include <llvm/Support/raw_ostream.h>

#include "backends/mc/disasm.h"
#include "backends/mc/emitter.h"
#include "backends/mc/inst.h"
#include "backends/native_abi.h"
#include "ir/diag.h"
#include "runtime/exec/guest.h"
#include "runtime/hook/tramp_runtime.h"
#ifdef SPRINGBOARD_HAVE_ARM64
#include "backends/arm64/arm64.h"
#endif
#ifdef SPRINGBOARD_HAVE_RISCV64
#include "backends/riscv64/riscv64.h"
#endif

namespace sb::rt {

namespace {

using mc::I;

// What hooking needs to know about each architecture, one row each.
struct HookFacts {
  Arch arch;
  // Decoding: every extension a hooked function may use (the backends'
  // own specs leave out what they never emit, e.g. riscv64's C).
  mc::TargetSpec decode;
  unsigned min_insn;  // the step over bytes that do not decode
  // The stub's scratch register: the first candidate that no displaced
  // instruction writes (hook_guest.h). Unused entries are null.
  std::array<const char*, 9> scratch;
  // Opcode names (prefixes) beginning a load-exclusive / load-reserved
  // sequence, which relocation would split.
  std::array<const char*, 4> exclusive;
  // Opcodes that end the flow besides those LLVM marks as returns or
  // barriers (traps; riscv64's jr, which LLVM does not mark).
  std::array<const char*, 5> stops;
};

constexpr HookFacts kFacts[] = {
    {Arch::Arm64,
     {"aarch64-unknown-linux-gnu", "generic", "+all"},
     4,
     {"X16", "X17", "X9", "X10", "X11", "X12", "X13", "X14", "X15"},
     {"LDXR", "LDAXR", "LDXP", "LDAXP"},
     {"BRK", "HLT", "UDF", nullptr, nullptr}},
    {Arch::Riscv64,
     {"riscv64-unknown-linux-gnu", "generic-rv64", "+m,+a,+f,+d,+c,+zba,+zbb,+zbs,-relax"},
     2,
     {"X6", "X28", "X29", "X30", "X31", nullptr, nullptr, nullptr, nullptr},  // t1, t3..t6
     {"LR_W", "LR_D", nullptr, nullptr},
     {"EBREAK", "C_EBREAK", "UNIMP", "C_UNIMP", "C_JR"}},
};

const HookFacts& facts_for(Arch arch, const std::string& where) {
  for (const HookFacts& f : kFacts)
    if (f.arch == arch) return f;
  throw Error(where, fmt::format("entry hooking of {} guest functions is not supported (arm64 and riscv64 are; "
                                 "x86-64 functions of this process: runtime/hook/hook_x86_64.h)",
                                 backend::arch_name(arch)));
}

template <size_t N>
bool starts_with_any(std::string_view name, const std::array<const char*, N>& prefixes, bool whole = false) {
  for (const char* p : prefixes)
    if (p && (whole ? name == p : name.starts_with(p))) return true;
  return false;
}

// Conditional branches and the branch that skips the absolute jump
// replacing them; the label is the last operand.
struct Inverse {
  const char* name;
  const char* inverse;
};

struct Insn {
  uint64_t offset;  // from the function's first byte
  uint64_t address;
  uint32_t size;
  const uint8_t* bytes;
  llvm::MCInst mc;
  std::string_view name;  // LLVM's TableGen opcode name
};

// LLVM's disassembler and instruction analysis, for one hook.
class Decoder {
 public:
  Decoder(const HookFacts& f, const GuestHookRequest& r)
      : f_(f),
        req_(r),
        t_(mc::McTarget::get(f.decode)),
        ctx_(t_.triple(), &t_.mai(), &t_.mri(), &t_.sti(), nullptr, &t_.options()),
        dis_(t_.create_disassembler(ctx_)),
        mia_(t_.target().createMCInstrAnalysis(&t_.mii())) {
    if (!dis_ || !mia_) throw Error("LLVM", "no disassembler for " + t_.triple().str());
  }

  bool decode(uint64_t offset, Insn& out) const {
    if (offset >= req_.code.size()) return false;
    llvm::ArrayRef<uint8_t> bytes(req_.code.data() + offset, req_.code.size() - offset);
    uint64_t size = 0;
    out.mc = llvm::MCInst();
    if (dis_->getInstruction(out.mc, size, bytes, req_.address + offset, llvm::nulls()) !=
        llvm::MCDisassembler::Success)
      return false;
    out.offset = offset;
    out.address = req_.address + offset;
    out.size = uint32_t(size);
    out.bytes = bytes.data();
    out.name = t_.mii().getName(out.mc.getOpcode());
    return true;
  }

  // "the instruction at +8 (cbnz x1, #0x100004)", as listings print it;
  // LLVM's opcode name when that disassembler does not know it.
  std::string describe(const Insn& in) const {
    std::string text;
    try {
      text = mc::disassemble(f_.arch, std::span(in.bytes, in.size), in.address).at(0).text;
    } catch (const Error&) {
      text = std::string(in.name);
    }
    return fmt::format("the instruction at +{} ({})", in.offset, text);
  }

  // The absolute address a PC-relative operand names (a branch target; on
  // arm64 also ADR/ADRP/LDR literal, whose operands LLVM marks PC-relative).
  std::optional<uint64_t> pc_target(const Insn& in) const {
    uint64_t target = 0;
    if (!mia_->evaluateBranch(in.mc, in.address, in.size, target)) return std::nullopt;
    return target;
  }
  std::optional<uint64_t> branch_target(const Insn& in) const {
    const llvm::MCInstrDesc& d = t_.mii().get(in.mc.getOpcode());
    if (!d.isBranch() && !d.isCall()) return std::nullopt;
    return pc_target(in);
  }

  // Control does not continue to the next instruction.
  bool ends_flow(const Insn& in) const {
    const llvm::MCInstrDesc& d = t_.mii().get(in.mc.getOpcode());
    if (d.isReturn() || d.isBarrier() || starts_with_any(in.name, f_.stops, true)) return true;
    // riscv64 JAL/JALR without a link: a jump (LLVM marks them calls).
    return (in.name == "JAL" || in.name == "JALR") && in.mc.getOperand(0).getReg() == reg("X0");
  }

  // A call (its link register written), not a jump: calling the entry
  // is a call of the hooked function, jumping to it a loop.
  bool is_call(const Insn& in) const {
    const llvm::MCInstrDesc& d = t_.mii().get(in.mc.getOpcode());
    if (!d.isCall()) return false;
    return !((in.name == "JAL" || in.name == "JALR") && in.mc.getOperand(0).getReg() == reg("X0"));
  }

  bool writes(const Insn& in, unsigned reg) const {
    const llvm::MCInstrDesc& d = t_.mii().get(in.mc.getOpcode());
    for (unsigned i = 0; i < d.getNumDefs() && i < in.mc.getNumOperands(); ++i) {
      const llvm::MCOperand& op = in.mc.getOperand(i);
      if (op.isReg() && t_.mri().regsOverlap(op.getReg(), reg)) return true;
    }
    for (llvm::MCPhysReg r : d.implicit_defs())
      if (t_.mri().regsOverlap(r, reg)) return true;
    return false;
  }

  unsigned reg(std::string_view name) const { return t_.reg(name); }
  unsigned encoding(unsigned reg) const { return t_.mri().getEncodingValue(reg); }

 private:
  const HookFacts& f_;
  const GuestHookRequest& req_;
  const mc::McTarget& t_;
  llvm::MCContext ctx_;
  std::unique_ptr<llvm::MCDisassembler> dis_;
  std::unique_ptr<llvm::MCInstrAnalysis> mia_;
};

struct Plan {
  const GuestHookRequest& req;
  const HookFacts& facts;
  const Decoder& dec;
  std::string where;
  EntryPatch form;
  size_t patch_size;
  std::vector<Insn> displaced;
  size_t n = 0;               // displaced bytes
  bool falls_through = true;  // the last displaced instruction continues to the next
  unsigned scratch = 0;       // LLVM register number
  uint64_t site() const { return req.address + req.offset; }  // what the patch replaces
  uint64_t back() const { return site() + n; }
};

// A probe at FUNC+OFF: the offset must start an instruction, found by
// decoding the function from its start (bytes that do not decode are
// stepped over as check_branches does).
void check_boundary(const Plan& p) {
  const GuestHookRequest& r = p.req;
  if (!r.offset) return;
  if (!r.probe)
    throw Error(p.where, "only a probe may patch an instruction inside a function (its offset is not 0)");
  if (r.size && r.offset >= r.size)
    throw Error(p.where, fmt::format("the offset +{:#x} is beyond the function's {} bytes", r.offset, r.size));
  uint64_t off = 0;
  Insn in;
  bool decoded = false;
  while (off < r.offset) {
    decoded = p.dec.decode(off, in);
    if (!decoded && off >= r.code.size())
      throw Error(p.where, fmt::format("the offset +{:#x} is beyond the {} bytes of code given", r.offset,
                                       r.code.size()));
    off += decoded ? in.size : p.facts.min_insn;
  }
  if (off == r.offset) return;
  const uint64_t start = off - (decoded ? in.size : p.facts.min_insn);
  throw Error(p.where, fmt::format("+{:#x} is not the start of an instruction: it is inside {}", r.offset,
                                   decoded ? p.dec.describe(in) : fmt::format("the bytes at +{} that do not decode",
                                                                              start)));
}

// The shortest patch that reaches the destination (hook_guest.h).
void choose_patch(Plan& p) {
  const int64_t d = int64_t(p.req.destination - p.site());
  // Inside a function no register is dead: only the patches that write none.
  auto near_only = [&](const char* patch, const char* reach, const char* reg) {
    if (p.req.offset)
      throw Error(p.where, fmt::format("the probe at {:#x} is beyond the +-{} a {} reaches from +{:#x}, and the "
                                       "longer patch would clobber {}, which the code there may have live",
                                       p.req.destination, reach, patch, p.req.offset, reg));
  };
  if (p.req.arch == Arch::Arm64) {
    if (p.req.destination % 4)
      throw Error(p.where, fmt::format("the destination {:#x} is not 4-byte aligned", p.req.destination));
    p.form = llvm::isInt<28>(d) ? EntryPatch::Arm64B : EntryPatch::Arm64LdrBr;
    if (p.form == EntryPatch::Arm64LdrBr) near_only("b", "128 MiB", "x16");
    p.patch_size = p.form == EntryPatch::Arm64B ? 4 : 16;
    return;
  }
  if (p.req.destination % 2)
    throw Error(p.where, fmt::format("the destination {:#x} is not 2-byte aligned", p.req.destination));
  if (llvm::isInt<21>(d)) {
    p.form = EntryPatch::Riscv64Jal;
    p.patch_size = 4;
  } else if (llvm::isInt<32>(d + 0x800)) {
    near_only("jal", "1 MiB", "t1");
    p.form = EntryPatch::Riscv64AuipcJalr;
    p.patch_size = 8;
  } else {
    throw Error(p.where, fmt::format("the destination {:#x} is beyond the +-2 GiB an auipc+jalr reaches",
                                     p.req.destination));
  }
}

// Decodes the instructions the patch covers and refuses what cannot move.
void decode_displaced(Plan& p) {
  const GuestHookRequest& r = p.req;
  auto too_short = [&](const std::string& why) {
    return Error(p.where, fmt::format("the function is too short to hook: {}; the entry patch ({}) needs {} bytes",
                                      why, entry_patch_name(p.form), p.patch_size));
  };
  if (r.size && r.size < r.offset + p.patch_size)
    throw too_short(r.offset ? fmt::format("it is {} bytes, its probe at +{:#x}", r.size, r.offset)
                             : fmt::format("it is {} bytes", r.size));
  while (p.n < p.patch_size) {
    Insn in;
    if (!p.dec.decode(r.offset + p.n, in)) {
      if (r.offset + p.n >= r.code.size())
        throw Error(p.where, fmt::format("only {} bytes of its code were given", r.code.size()));
      throw Error(p.where, fmt::format("the bytes at +{} do not decode as an instruction", r.offset + p.n));
    }
    if (starts_with_any(in.name, p.facts.exclusive))
      throw Error(p.where, p.dec.describe(in) + " starts an exclusive-access sequence that relocation would split");
    p.n += in.size;
    p.falls_through = !p.dec.ends_flow(in);
    if (!p.falls_through && p.n < p.patch_size)
      throw too_short(fmt::format("{} ends it after {} bytes", p.dec.describe(in), p.n));
    p.displaced.push_back(std::move(in));
  }
}

// No branch may land inside the displaced bytes (their start is fine: the
// patched instruction). The rest of the function is scanned when its
// size is known; bytes that do not decode (literal pools) are stepped over.
// A jump from the rest of the function back to the entry itself (a loop
// whose head is the entry) is refused too: it would run the trampoline once
// per iteration. (Displaced jumps to the entry go to the stub's start.)
// A probe fires whenever its instruction runs, as a breakpoint there
// would: a branch to it (a loop's head) stays, and so do displaced ones.
void check_branches(const Plan& p) {
  const uint64_t lo = p.site(), hi = p.back();
  auto check = [&](const Insn& in) {
    if (std::optional<uint64_t> t = p.dec.branch_target(in); t && *t > lo && *t < hi)
      throw Error(p.where, fmt::format("{} at {:#x} branches into the displaced bytes (+{})", p.dec.describe(in),
                                       in.address, *t - p.req.address));
  };
  for (const Insn& in : p.displaced) check(in);
  if (p.req.size > p.req.code.size())
    throw Error(p.where, fmt::format("its size is {} bytes but only {} were given", p.req.size, p.req.code.size()));
  for (uint64_t off = 0; off < p.req.size;) {
    if (off == p.req.offset) {  // the displaced instructions, checked above
      off += p.n;
      continue;
    }
    Insn in;
    if (!p.dec.decode(off, in)) {
      off += p.facts.min_insn;
      continue;
    }
    check(in);
    if (std::optional<uint64_t> t = p.dec.branch_target(in); t && *t == lo && !p.dec.is_call(in) && !p.req.probe)
      throw Error(p.where, fmt::format("{} at {:#x} jumps back to the entry: a loop through the hook would run the "
                                       "trampoline once per iteration",
                                       p.dec.describe(in), in.address));
    off += in.size;
  }
}

void choose_scratch(Plan& p) {
  std::string tried;
  for (const char* name : p.facts.scratch) {
    if (!name) break;
    const unsigned reg = p.dec.reg(name);
    bool written = false;
    for (const Insn& in : p.displaced) written = written || p.dec.writes(in, reg);
    if (!written) {
      p.scratch = reg;
      return;
    }
    tried += tried.empty() ? name : fmt::format(", {}", name);
  }
  throw Error(p.where, fmt::format("the displaced instructions write every scratch register the stub could use ({})",
                                   tried));
}

// Where a relocated branch goes: a jump back to the entry loops in the
// stub (its start), a call of the entry calls the hooked function. A
// probe's stays, to fire again.
uint64_t loop_target_of(const Plan& p, uint64_t target, bool call) {
  return target == p.req.address && !call && !p.req.probe ? p.req.stub_address : target;
}

// A probe's stub branches directly (hook_guest.h): `bits`, the reach of
// the shortest one (arm64 b, riscv64 jal), signed, from anywhere in
// [from, from + slack].
void check_reach(const Plan& p, uint64_t from, uint64_t slack, uint64_t to, unsigned bits, const char* branch) {
  if (!llvm::isIntN(bits, int64_t(to - from)) || !llvm::isIntN(bits, int64_t(to - from - slack)))
    throw Error(p.where, fmt::format("the probe's stub at {:#x} is beyond the reach of a {} ({} bits) to {:#x}",
                                     p.req.stub_address, branch, bits, to));
}

[[noreturn]] void cannot_relocate(const Plan& p, const Insn& in) {
  throw Error(p.where, p.dec.describe(in) + " reads the PC in a way the stub cannot reproduce");
}

// ---- arm64 ---------------------------------------------------------------

#ifdef SPRINGBOARD_HAVE_ARM64

// LDR (literal) forms and the unsigned-offset load of the same register.
struct LiteralLoad {
  const char* literal;
  const char* offset;
  bool gpr;  // the address can be built in the destination itself
};
constexpr LiteralLoad kLiteralLoads[] = {
    {"LDRXl", "LDRXui", true},  {"LDRWl", "LDRWui", true},  {"LDRSWl", "LDRSWui", true},
    {"LDRSl", "LDRSui", false}, {"LDRDl", "LDRDui", false}, {"LDRQl", "LDRQui", false},
    {"PRFMl", "PRFMui", false},  // operand 0 is the prefetch operation
};

// Bcc (and BCcc) invert their condition, operand 0, instead: cc ^ 1.
constexpr Inverse kArm64Inverses[] = {
    {"Bcc", "Bcc"},     {"BCcc", "BCcc"},   {"CBZW", "CBNZW"},  {"CBZX", "CBNZX"},  {"CBNZW", "CBZW"},
    {"CBNZX", "CBZX"},  {"TBZW", "TBNZW"},  {"TBZX", "TBNZX"},  {"TBNZW", "TBZW"},  {"TBNZX", "TBZX"},
};
constexpr int64_t kCondAlways = 14;  // AL; NV (15) is "always" too
constexpr uint64_t kMaxStub = 256;   // bytes: more than any stub's branches are from its start

class Arm64Stub {
 public:
  explicit Arm64Stub(const Plan& p)
      : p_(p), t_(mc::McTarget::get(arm64::kSpec)), at_(arm64::tables()), out_(t_, mc::OutputKind::Bytes) {}

  std::vector<uint8_t> build() {
    start_ = out_.new_label();
    out_.begin_function(start_, false, 4);
    if (p_.req.probe) {  // the probe's frame: x16 back from its user_pt_regs, then sp
      const backend::ProbeRegs& regs = backend::probe_regs(Arch::Arm64);
      out_.emit(I(t_.opcode("LDRXui")).r(t_.reg("X16")).r(t_.reg("SP")).i(16));  // regs[16], scaled by 8
      out_.emit(I(t_.opcode("ADDXri")).r(t_.reg("SP")).r(t_.reg("SP")).i(regs.size).i(0));
    }
    for (const Insn& in : p_.displaced) relocate(in);
    if (p_.falls_through) jump(p_.back(), false);
    if (!pool_.empty()) {
      out_.begin_function(out_.new_label(), false, 8);
      for (auto& [label, value] : pool_) {
        out_.bind(label);
        out_.u64(value);
      }
    }
    return out_.finish().text;
  }

 private:
  // hw: the register's number, 0-30 (an arm64::NReg).
  void materialize(unsigned hw, uint64_t value) {
    const auto r = arm64::NReg(hw);
    for (const arm64::MatStep& s : arm64::materialize(value)) {
      using namespace arm64;
      const bool w = s.op == MOVZWi || s.op == MOVNWi || s.op == MOVKWi || s.op == ORRWri;
      const unsigned dst = w ? at_.w[r] : at_.x[r];
      I inst(at_.op[s.op]);
      inst.r(dst);
      if (s.op == MOVKXi || s.op == MOVKWi) inst.r(dst);
      if (s.op == ORRXri || s.op == ORRWri) inst.r(w ? at_.w[ZR] : at_.x[ZR]).i(s.imm);
      else inst.i(s.imm).i(s.shift);
      out_.emit(inst);
    }
  }
  // ldr S, =dest; br S (blr S: the link is the stub's next instruction).
  // A probe's: b dest / bl dest, as "the stub's start + distance".
  void jump(uint64_t dest, bool link) {
    if (p_.req.probe) {
      check_reach(p_, p_.req.stub_address, kMaxStub, dest, 28, "b");
      out_.emit(I(t_.opcode(link ? "BL" : "B"))
                    .e(llvm::MCBinaryExpr::createAdd(
                        out_.ref(start_), llvm::MCConstantExpr::create(int64_t(dest - p_.req.stub_address), out_.ctx()),
                        out_.ctx())));
      return;
    }
    llvm::MCSymbol* literal = out_.new_label();
    pool_.emplace_back(literal, dest);
    out_.emit(I(t_.opcode("LDRXl")).r(p_.scratch).e(out_.ref(literal)));
    out_.emit(I(t_.opcode(link ? "BLR" : "BR")).r(p_.scratch));
  }

  void relocate(const Insn& in) {
    const std::optional<uint64_t> target = p_.dec.pc_target(in);
    if (!target) return out_.bytes(in.bytes, in.size);
    const std::string_view name = in.name;
    if (name == "ADR" || name == "ADRP") {
      const unsigned hw = p_.dec.encoding(in.mc.getOperand(0).getReg());
      if (hw < 31) materialize(hw, *target);  // 31: xzr, nothing to write
      return;
    }
    if (name == "B" || name == "BL") return jump(loop_target(*target, name == "BL"), name == "BL");
    for (const LiteralLoad& l : kLiteralLoads) {
      if (name != l.literal) continue;
      const llvm::MCOperand& data = in.mc.getOperand(0);  // the register, or PRFM's operation
      const unsigned hw = data.isReg() ? p_.dec.encoding(data.getReg()) : 31;
      const unsigned base = l.gpr && hw < 31 ? at_.x[hw] : p_.scratch;
      // In a probe's stub S may be live: kept below sp (no red zone on arm64).
      const bool keep = p_.req.probe && base == p_.scratch;
      if (keep) out_.emit(I(t_.opcode("STRXpre")).r(t_.reg("SP")).r(base).r(t_.reg("SP")).i(-16));
      materialize(p_.dec.encoding(base), *target);
      I load(t_.opcode(l.offset));
      if (data.isReg()) load.r(data.getReg());
      else load.i(data.getImm());
      out_.emit(load.r(base).i(0));
      if (keep) out_.emit(I(t_.opcode("LDRXpost")).r(t_.reg("SP")).r(base).r(t_.reg("SP")).i(16));
      return;
    }
    for (const Inverse& inv : kArm64Inverses) {
      if (name != inv.name) continue;
      const bool is_bcc = name == "Bcc" || name == "BCcc";
      if (is_bcc && in.mc.getOperand(0).getImm() >= kCondAlways) return jump(loop_target(*target, false), false);
      llvm::MCSymbol* skip = out_.new_label();
      I branch(t_.opcode(inv.inverse));
      for (unsigned k = 0; k + 1 < in.mc.getNumOperands(); ++k) {
        const llvm::MCOperand& op = in.mc.getOperand(k);
        if (op.isReg()) branch.r(op.getReg());
        else branch.i(is_bcc && k == 0 ? op.getImm() ^ 1 : op.getImm());
      }
      out_.emit(branch.e(out_.ref(skip)));
      jump(loop_target(*target, false), false);
      out_.bind(skip);
      return;
    }
    cannot_relocate(p_, in);
  }

  uint64_t loop_target(uint64_t target, bool call) const { return loop_target_of(p_, target, call); }
  const Plan& p_;
  const mc::McTarget& t_;
  const arm64::Tables& at_;
  mc::Emitter out_;
  llvm::MCSymbol* start_ = nullptr;
  std::vector<std::pair<llvm::MCSymbol*, uint64_t>> pool_;
};

std::vector<uint8_t> arm64_patch(const Plan& p) {
  const mc::McTarget& t = mc::McTarget::get(arm64::kSpec);
  mc::Emitter out(t, mc::OutputKind::Bytes);
  llvm::MCSymbol* entry = out.new_label();
  out.begin_function(entry, false, 4);
  if (p.form == EntryPatch::Arm64B) {
    // The destination as "this entry + distance": MC resolves the imm26.
    out.emit(I(t.opcode("B")).e(llvm::MCBinaryExpr::createAdd(
        out.ref(entry), llvm::MCConstantExpr::create(int64_t(p.req.destination - p.site()), out.ctx()),
        out.ctx())));
  } else {
    llvm::MCSymbol* literal = out.new_label();
    out.emit(I(t.opcode("LDRXl")).r(t.reg("X16")).e(out.ref(literal)));
    out.emit(I(t.opcode("BR")).r(t.reg("X16")));
    out.bind(literal);
    out.u64(p.req.destination);
  }
  return out.finish().text;
}

#endif  // SPRINGBOARD_HAVE_ARM64

// ---- riscv64 -------------------------------------------------------------

#ifdef SPRINGBOARD_HAVE_RISCV64

// B-type branches, and the compressed ones, which compare with x0.
constexpr Inverse kRiscvInverses[] = {
    {"BEQ", "BNE"},  {"BNE", "BEQ"},  {"BLT", "BGE"},    {"BGE", "BLT"},
    {"BLTU", "BGEU"}, {"BGEU", "BLTU"}, {"C_BEQZ", "BNE"}, {"C_BNEZ", "BEQ"},
};

class Riscv64Stub {
 public:
  explicit Riscv64Stub(const Plan& p)
      : p_(p), t_(mc::McTarget::get(riscv64::kSpec)), rt_(riscv64::tables()), out_(t_, mc::OutputKind::Bytes) {}

  // No pool and no alignment: compressed instructions copied keep the
  // stub 2-byte aligned only, and every address is built as a constant.
  std::vector<uint8_t> build() {
    out_.begin_function(out_.new_label(), false, 1);
    if (p_.req.probe) {  // the probe's frame: t1 back from its user_regs_struct, then sp
      const backend::ProbeRegs& regs = backend::probe_regs(Arch::Riscv64);
      emit(I(rt_.op[riscv64::LD]).r(rt_.x[riscv64::T1]).r(rt_.x[riscv64::SP]).i(8 * riscv64::T1));
      emit(I(rt_.op[riscv64::ADDI]).r(rt_.x[riscv64::SP]).r(rt_.x[riscv64::SP]).i(regs.size));
    }
    for (const Insn& in : p_.displaced) relocate(in);
    if (p_.falls_through) jump(p_.back(), rt_.x[riscv64::ZERO]);
    return out_.finish().text;
  }

 private:
  // li: the backend's materializer (hw: x0..x31).
  void li(unsigned hw, uint64_t value) {
    using namespace riscv64;
    unsigned src = rt_.x[ZERO];
    const unsigned dst = rt_.x[hw];
    for (const MatStep& s : riscv64::materialize(int64_t(value))) {
      if (s.op == LUI) emit(I(rt_.op[LUI]).r(dst).i(s.imm));
      else emit(I(rt_.op[s.op]).r(dst).r(src).i(s.imm));
      src = dst;
    }
  }
  // li S, dest; jalr link, 0(S). A probe's: jal link, dest (the offset
  // an immediate: the stub's bytes so far are counted).
  void jump(uint64_t dest, unsigned link) {
    if (p_.req.probe) {
      const uint64_t pc = p_.req.stub_address + at_;
      check_reach(p_, pc, 0, dest, 21, "jal");
      return emit(I(rt_.op[riscv64::JAL]).r(link).i(int64_t(dest - pc)));
    }
    li(p_.dec.encoding(p_.scratch), dest);
    emit(I(rt_.op[riscv64::JALR]).r(link).r(p_.scratch).i(0));
  }
  // Every instruction the stub's target (no C) emits is 4 bytes.
  void emit(const llvm::MCInst& inst) {
    out_.emit(inst);
    at_ += 4;
  }
  void copy(const Insn& in) {
    out_.bytes(in.bytes, in.size);
    at_ += in.size;
  }

  void relocate(const Insn& in) {
    const std::string_view name = in.name;
    if (name == "AUIPC") {
      const unsigned rd = p_.dec.encoding(in.mc.getOperand(0).getReg());
      const uint64_t value = in.address + uint64_t(llvm::SignExtend64<32>(uint64_t(in.mc.getOperand(1).getImm()) << 12));
      if (rd != 0) li(rd, value);
      return;
    }
    const std::optional<uint64_t> target = p_.dec.pc_target(in);
    if (!target) return copy(in);
    if (name == "JAL") return jump(loop_target(*target, in.mc.getOperand(0).getReg() != rt_.x[riscv64::ZERO]),
                                   in.mc.getOperand(0).getReg());
    if (name == "C_J") return jump(loop_target(*target, false), rt_.x[riscv64::ZERO]);
    if (name == "C_JAL") return jump(*target, rt_.x[riscv64::RA]);
    for (const Inverse& inv : kRiscvInverses) {
      if (name != inv.name) continue;
      llvm::MCSymbol* skip = out_.new_label();
      const unsigned rs1 = in.mc.getOperand(0).getReg();
      const unsigned rs2 = in.size == 2 ? rt_.x[riscv64::ZERO] : in.mc.getOperand(1).getReg();
      emit(I(t_.opcode(inv.inverse)).r(rs1).r(rs2).e(out_.ref(skip)));
      jump(loop_target(*target, false), rt_.x[riscv64::ZERO]);
      out_.bind(skip);
      return;
    }
    cannot_relocate(p_, in);
  }

  uint64_t loop_target(uint64_t target, bool call) const { return loop_target_of(p_, target, call); }
  const Plan& p_;
  const mc::McTarget& t_;
  const riscv64::Tables& rt_;
  mc::Emitter out_;
  uint64_t at_ = 0;  // bytes emitted
};

// The patch is built on the decoding target, which has C: the filler
// after it may be a c.ebreak. The offsets are immediates because RISC-V's
// MC layer takes only its own %pcrel_hi/%pcrel_lo expressions (in headers
// LLVM does not install), not "label + constant".
std::vector<uint8_t> riscv64_patch(const Plan& p) {
  const mc::McTarget& t = mc::McTarget::get(p.facts.decode);
  mc::Emitter out(t, mc::OutputKind::Bytes);
  out.begin_function(out.new_label(), false, 1);
  const int64_t d = int64_t(p.req.destination - p.site());
  const unsigned x0 = t.reg("X0"), t1 = t.reg("X6");
  if (p.form == EntryPatch::Riscv64Jal) {
    out.emit(I(t.opcode("JAL")).r(x0).i(d));
  } else {
    const int64_t hi20 = ((d + 0x800) >> 12) & 0xfffff;  // auipc adds hi20 << 12, sign-extended
    const int64_t lo12 = d - llvm::SignExtend64<32>(uint64_t(hi20) << 12);
    out.emit(I(t.opcode("AUIPC")).r(t1).i(hi20));
    out.emit(I(t.opcode("JALR")).r(x0).r(t1).i(lo12));
  }
  for (size_t k = p.patch_size; k < p.n; k += 2) out.emit(I(t.opcode("C_EBREAK")));
  return out.finish().text;
}

#endif  // SPRINGBOARD_HAVE_RISCV64

}  // namespace

const char* entry_patch_name(EntryPatch p) {
  switch (p) {
    case EntryPatch::Arm64B: return "b";
    case EntryPatch::Arm64LdrBr: return "ldr x16 + br x16";
    case EntryPatch::Riscv64Jal: return "jal";
    case EntryPatch::Riscv64AuipcJalr: return "auipc t1 + jalr";
  }
  return "?";
}

GuestHook build_guest_hook(const GuestHookRequest& req) {
  const std::string where =
      req.offset ? fmt::format("probe at +{:#x} of the {} function at {:#x}", req.offset,
                               backend::arch_name(req.arch), req.address)
                 : fmt::format("{} of the {} function at {:#x}", req.probe ? "probe" : "hook",
                               backend::arch_name(req.arch), req.address);
  const HookFacts& facts = facts_for(req.arch, where);
  if (req.stub_address % 8) throw Error(where, fmt::format("the stub address {:#x} is not 8-byte aligned", req.stub_address));
  const Decoder dec(facts, req);
  Plan p{req, facts, dec, where, EntryPatch::Arm64B, 0, {}};
  check_boundary(p);
  choose_patch(p);
  decode_displaced(p);
  check_branches(p);
  choose_scratch(p);

  GuestHook h{req.arch, p.site(), req.stub_address, p.form, {}, {}, {}};
  h.saved.assign(req.code.begin() + ptrdiff_t(req.offset), req.code.begin() + ptrdiff_t(req.offset + p.n));
  switch (req.arch) {
#ifdef SPRINGBOARD_HAVE_ARM64
    case Arch::Arm64:
      h.stub = Arm64Stub(p).build();
      h.patch = arm64_patch(p);
      break;
#endif
#ifdef SPRINGBOARD_HAVE_RISCV64
    case Arch::Riscv64:
      h.stub = Riscv64Stub(p).build();
      h.patch = riscv64_patch(p);
      break;
#endif
    default:
      throw Error(where, fmt::format("the {} backend is not built", backend::arch_name(req.arch)));
  }
  if (h.patch.size() != p.n)
    throw Error(where, fmt::format("internal: the entry patch is {} bytes, the displaced instructions {}",
                                   h.patch.size(), p.n));
  return h;
}

void install(Guest& guest, const GuestHook& hook) {
  if (guest.arch() != hook.arch)
    throw Error(fmt::format("hook of the function at {:#x}", hook.address),
                fmt::format("built for {}, installed in a {} guest", backend::arch_name(hook.arch),
                            backend::arch_name(guest.arch())));
  guest.map_code(hook.stub_address, hook.stub);
  guest.write_code(hook.address, hook.patch.data(), hook.patch.size());
}

void uninstall(Guest& guest, const GuestHook& hook) {
  guest.write_code(hook.address, hook.saved.data(), hook.saved.size());
}

GuestReturnStack::GuestReturnStack(Guest& guest, Arch arch) : guest_(guest), arch_(arch) {
  const backend::ProbeRegs& regs = backend::probe_regs(arch);
  // Where the return address is at a function's entry: the link register
  // in the saved registers, or (x86-64) the word at sp.
  auto slot = [this, &regs](uint64_t pt_regs) {
    if (arch_ == Arch::X86_64) return guest_.read_u64(pt_regs + regs.sp);
    return pt_regs + (arch_ == Arch::Arm64 ? 8 * 30 : 8 * 1);
  };
  enter_ = guest.add_host_function([this, &regs, slot](const std::array<uint64_t, 5>& a) -> uint64_t {
    const uint64_t sp = guest_.read_u64(a[0] + regs.sp);
    while (!pending_.empty() && pending_.back().sp <= sp) pending_.pop_back();
    if (pending_.size() == kMaxReturnDepth) return 0;
    const uint64_t at = slot(a[0]);
    pending_.push_back({guest_.read_u64(at), sp});
    guest_.write_u64(at, a[2]);  // the landing
    return 0;
  });
  pop_ = guest.add_host_function([this, &regs](const std::array<uint64_t, 5>& a) -> uint64_t {
    // At the return the stack is as at the entry (x86-64: the return popped 8 bytes).
    const uint64_t sp = guest_.read_u64(a[0] + regs.sp) - (arch_ == Arch::X86_64 ? 8 : 0);
    while (pending_.size() > 1 && pending_.back().sp < sp) pending_.pop_back();
    if (pending_.empty()) throw Error("guest return probe", "a return with no return address recorded");
    const Pending p = pending_.back();
    pending_.pop_back();
    guest_.write_u64(a[0] + regs.ip, p.ret);
    return p.ret;
  });
}

}  // namespace sb::rt
