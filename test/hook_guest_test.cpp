// Entry hooks of arm64 and riscv64 functions (runtime/hook/hook_guest.h), run in
// Unicorn: functions whose first instructions are PC-relative (adrp, adr,
// ldr literal, cbz, tbnz, b.cond, b, bl; auipc, jal, B-type branches,
// compressed code), built here with LLVM MC at a known guest address, are
// hooked with a trampoline (tramp::lower, Bindings::original = the stub)
// and called through their own address. Each must give what the unhooked
// function gave, with the fentry / fexit programs having run; the stub
// alone must be the original function. Every fixture runs with the
// trampoline near (arm64 b, riscv64 jal) and far (arm64 ldr+br, riscv64
// auipc+jalr), unless it is too short for the far patch. A call at entry
// (bl, jal ra) overwrites the caller's return address, so those fixtures
// are noreturn: their helper records its link register (it must point
// into the stub once hooked) and ends the call at Guest::kReturnAddr, and
// fexit never runs; jal t0 (millicode style) returns normally. Then the
// refusals, the patch forms by distance and the scratch register choice.
//
// Guest layout:
//   kFunc     the function under test; literals and tables after its code
//   kHelper   the functions it calls or jumps to (64 KiB on: in reach of bl/jal)
//   kData     what it reads (kWord) and what the programs and helpers record
//   kNear / kFar  the trampoline
//   kStub     the relocated instructions
//   kProg + 64K*i  the attached programs
//
// CTest runs one entry per architecture (label "trampoline;<arch>").
#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <llvm/MC/MCInst.h>

#include "backends/compile.h"
#include "backends/mc/disasm.h"
#include "backends/mc/emitter.h"
#include "backends/mc/inst.h"
#include "frontend/assembler.h"
#include "frontend/trampoline.h"
#include "ir/diag.h"
#include "runtime/exec/guest.h"
#include "runtime/hook/hook_guest.h"
#include "runtime/hook/tramp_runtime.h"

namespace sb::test {
namespace {

using ir::Type;
using mc::I;
using tramp::Kind;

constexpr uint64_t kFunc = 0x100000;
constexpr uint64_t kHelper = 0x110000;
constexpr uint64_t kData = 0x800000;
constexpr uint64_t kWord = kData + 0x18;   // the word the adrp/auipc fixtures load
constexpr uint64_t kLink = kData + 0x40;   // where noreturn helpers record their link register
constexpr uint64_t kNear = 0x180000;       // 512 KiB from kFunc: b, jal
constexpr uint64_t kFar = 0x40000000;      // 1 GiB: beyond b (128 MiB), within auipc+jalr (2 GiB)
constexpr uint64_t kStub = 0x300000;
constexpr uint64_t kProg = 0x400000;
constexpr uint64_t kRecords = kData + 0x1000;  // program i records at kRecords + 0x100 * i
constexpr uint64_t kWordValue = 0x0123456789abcdefull;

uint64_t record(size_t prog, size_t word) { return kRecords + 0x100 * prog + 8 * word; }

// riscv64 fixtures use compressed instructions too.
constexpr mc::TargetSpec kRiscvC = {"riscv64-unknown-linux-gnu", "generic-rv64", "+m,+a,+f,+d,+c,-relax"};
constexpr mc::TargetSpec kArm64 = {"aarch64-unknown-linux-gnu", "generic", ""};

// MCInsts for one blob of code at a known guest address: each emit()
// advances pc() by the instruction's size, so PC-relative immediates can
// be computed for instructions at known places.
class Asm {
 public:
  Asm(Arch arch, uint64_t base)
      : t_(mc::McTarget::get(arch == Arch::Arm64 ? kArm64 : kRiscvC)), out_(t_, mc::OutputKind::Bytes), base_(base) {
    out_.begin_function(out_.new_label(), false, 4);
  }
  unsigned op(const char* name) const { return t_.opcode(name); }
  unsigned r(const char* name) const { return t_.reg(name); }
  uint64_t pc() const { return base_ + size_; }
  Asm& operator<<(const llvm::MCInst& inst) {
    out_.emit(inst);
    size_ += t_.mii().get(inst.getOpcode()).getSize();
    return *this;
  }
  llvm::MCSymbol* label() { return out_.new_label(); }
  const llvm::MCExpr* ref(llvm::MCSymbol* l) { return out_.ref(l); }
  void bind(llvm::MCSymbol* l) { out_.bind(l); }
  void quad(uint64_t v) {
    out_.u64(v);
    size_ += 8;
  }
  std::vector<uint8_t> finish() { return out_.finish().text; }

 private:
  const mc::McTarget& t_;
  mc::Emitter out_;
  uint64_t base_;
  uint64_t size_ = 0;
};

// ---- fixtures -------------------------------------------------------------

ir::NativeValue T(Type t) { return {t, uint8_t(t == Type::F64 || t == Type::I64 ? 8 : 4)}; }
ir::Signature sig2(Type t) {
  ir::Signature s;
  s.args = {T(t), T(t)};
  s.ret = T(t);
  return s;
}
uint64_t f64w(double d) { return std::bit_cast<uint64_t>(d); }
double f64(uint64_t w) { return std::bit_cast<double>(w); }

struct Fixture {
  const char* name;
  Arch arch;
  Type type;  // of both arguments and the result
  // Emits the function at kFunc, and its helpers at kHelper.
  std::function<void(Asm& fn, Asm& helper)> build;
  std::function<uint64_t(uint64_t a, uint64_t b)> model;  // what it computes
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  bool returns = true;    // false: its helper ends the call at Guest::kReturnAddr (fexit never runs)
  bool far_ok = true;     // false: too short for the far patch (a refusal test covers it)
  const char* first;      // the first instruction's disassembly starts with this
};

// arm64 ----------------------------------------------------------------------

// Helper: x0 += x1; ret.
void a64_add_helper(Asm& h) {
  h << I(h.op("ADDXrs")).r(h.r("X0")).r(h.r("X0")).r(h.r("X1")).i(0) << I(h.op("RET")).r(h.r("LR"));
}
// A noreturn helper: records x30 at kLink, x0 += x1, ends the call.
void a64_noreturn_helper(Asm& h) {
  h << I(h.op("MOVZXi")).r(h.r("X10")).i(kLink >> 16).i(16)
    << I(h.op("ADDXri")).r(h.r("X10")).r(h.r("X10")).i(kLink & 0xffff).i(0)
    << I(h.op("STRXui")).r(h.r("LR")).r(h.r("X10")).i(0)
    << I(h.op("ADDXrs")).r(h.r("X0")).r(h.r("X0")).r(h.r("X1")).i(0)
    << I(h.op("MOVZXi")).r(h.r("X9")).i(rt::Guest::kReturnAddr >> 16).i(16)
    << I(h.op("BR")).r(h.r("X9"));
}
void a64_nop(Asm& f) { f << I(f.op("HINT")).i(0); }
void a64_add(Asm& f, const char* d, const char* a, const char* b) {
  f << I(f.op("ADDXrs")).r(f.r(d)).r(f.r(a)).r(f.r(b)).i(0);
}
void a64_ret(Asm& f) { f << I(f.op("RET")).r(f.r("LR")); }
// x0 = a + b + (x9 loaded by `load`), after some nops: the far patch covers them.
void a64_load_then_add(Asm& f, const std::function<void(Asm&)>& load) {
  load(f);
  a64_add(f, "X0", "X0", "X9");
  a64_add(f, "X0", "X0", "X1");
  a64_nop(f);
  a64_ret(f);
}
// A conditional branch at entry (or second): taken -> 77, else a + b + 1.
void a64_branchy(Asm& f, const std::function<void(Asm&, llvm::MCSymbol*)>& branch) {
  llvm::MCSymbol* taken = f.label();
  branch(f, taken);
  a64_add(f, "X0", "X0", "X1");
  f << I(f.op("ADDXri")).r(f.r("X0")).r(f.r("X0")).i(1).i(0);
  a64_nop(f);
  a64_ret(f);
  f.bind(taken);
  f << I(f.op("MOVZXi")).r(f.r("X0")).i(77).i(0);
  a64_ret(f);
}
// A literal load into x9 (or v2 for q) at entry.
std::function<void(Asm&, Asm&)> a64_literal(const char* opcode, const char* reg, uint64_t lo, uint64_t hi = 0) {
  return [=](Asm& f, Asm&) {
    llvm::MCSymbol* lit = f.label();
    a64_load_then_add(f, [&](Asm& g) {
      g << I(g.op(opcode)).r(g.r(reg)).e(g.ref(lit));
      if (std::string(reg) == "Q2") g << I(g.op("UMOVvi64")).r(g.r("X9")).r(g.r("Q2")).i(1);
    });
    f.bind(lit);
    f.quad(lo);
    f.quad(hi);
  };
}

const std::vector<std::pair<uint64_t, uint64_t>> kArgs = {{20, 3}, {0, 5}, {uint64_t(-7), uint64_t(1) << 40}, {9, 9}};

std::vector<Fixture> arm64_fixtures() {
  std::vector<Fixture> v;
  v.push_back({"adrp", Arch::Arm64, Type::I64,
               [](Asm& f, Asm&) {
                 a64_load_then_add(f, [](Asm& g) {
                   g << I(g.op("ADRP")).r(g.r("X9")).i(int64_t(kWord >> 12) - int64_t(g.pc() >> 12))
                     << I(g.op("LDRXui")).r(g.r("X9")).r(g.r("X9")).i((kWord & 0xfff) / 8);
                 });
               },
               [](uint64_t a, uint64_t b) { return a + b + kWordValue; }, kArgs, true, true, "adrp x9"});
  v.push_back({"adrp_x16", Arch::Arm64, Type::I64,
               [](Asm& f, Asm&) {  // x16 is live across the jump back: the stub must use x17
                 f << I(f.op("ADRP")).r(f.r("X16")).i(int64_t(kWord >> 12) - int64_t(f.pc() >> 12));
                 for (int k = 0; k < 3; ++k) a64_nop(f);
                 f << I(f.op("LDRXui")).r(f.r("X16")).r(f.r("X16")).i((kWord & 0xfff) / 8);
                 a64_add(f, "X0", "X0", "X16");
                 a64_add(f, "X0", "X0", "X1");
                 a64_ret(f);
               },
               [](uint64_t a, uint64_t b) { return a + b + kWordValue; }, kArgs, true, true, "adrp x16"});
  v.push_back({"adr", Arch::Arm64, Type::I64,
               [](Asm& f, Asm&) {
                 llvm::MCSymbol* table = f.label();
                 a64_load_then_add(f, [&](Asm& g) {
                   g << I(g.op("ADR")).r(g.r("X9")).e(g.ref(table))
                     << I(g.op("LDRXui")).r(g.r("X9")).r(g.r("X9")).i(1);
                 });
                 f.bind(table);
                 f.quad(1000);
                 f.quad(2000);
               },
               [](uint64_t a, uint64_t b) { return a + b + 2000; }, kArgs, true, true, "adr x9"});
  v.push_back({"ldr_x_literal", Arch::Arm64, Type::I64, a64_literal("LDRXl", "X9", 0x1122334455667788),
               [](uint64_t a, uint64_t b) { return a + b + 0x1122334455667788; }, kArgs, true, true, "ldr x9"});
  v.push_back({"ldr_w_literal", Arch::Arm64, Type::I64, a64_literal("LDRWl", "W9", 0xfedcba98),
               [](uint64_t a, uint64_t b) { return a + b + 0xfedcba98; }, kArgs, true, true, "ldr w9"});
  v.push_back({"ldrsw_literal", Arch::Arm64, Type::I64, a64_literal("LDRSWl", "X9", 0x80000005),
               [](uint64_t a, uint64_t b) { return a + b + uint64_t(int64_t(int32_t(0x80000005))); }, kArgs, true,
               true, "ldrsw x9"});
  v.push_back({"ldr_q_literal", Arch::Arm64, Type::I64, a64_literal("LDRQl", "Q2", 1, 0x5555),
               [](uint64_t a, uint64_t b) { return a + b + 0x5555; }, kArgs, true, true, "ldr q2"});
  v.push_back({"prfm_literal", Arch::Arm64, Type::I64,
               [](Asm& f, Asm&) {
                 llvm::MCSymbol* lit = f.label();
                 f << I(f.op("PRFMl")).i(0).e(f.ref(lit));  // prfm pldl1keep, lit
                 a64_add(f, "X0", "X0", "X1");
                 a64_add(f, "X0", "X0", "X1");
                 a64_nop(f);
                 a64_ret(f);
                 f.bind(lit);
                 f.quad(0);
               },
               [](uint64_t a, uint64_t b) { return a + 2 * b; }, kArgs, true, true, "prfm pldl1keep"});
  v.push_back({"ldr_d_literal", Arch::Arm64, Type::F64,
               [](Asm& f, Asm&) {
                 llvm::MCSymbol* lit = f.label();
                 f << I(f.op("LDRDl")).r(f.r("D2")).e(f.ref(lit))
                   << I(f.op("FADDDrr")).r(f.r("D0")).r(f.r("D0")).r(f.r("D2"))
                   << I(f.op("FADDDrr")).r(f.r("D0")).r(f.r("D0")).r(f.r("D1"));
                 a64_nop(f);
                 a64_ret(f);
                 f.bind(lit);
                 f.quad(f64w(0.25));
               },
               [](uint64_t a, uint64_t b) { return f64w(f64(a) + 0.25 + f64(b)); },
               {{f64w(1.5), f64w(-3.0)}, {f64w(0), f64w(1e10)}}, true, true, "ldr d2"});
  v.push_back({"cbz", Arch::Arm64, Type::I64,
               [](Asm& f, Asm&) {
                 a64_branchy(f, [](Asm& g, llvm::MCSymbol* l) { g << I(g.op("CBZX")).r(g.r("X0")).e(g.ref(l)); });
               },
               [](uint64_t a, uint64_t b) { return a == 0 ? 77 : a + b + 1; }, kArgs, true, true, "cbz x0"});
  v.push_back({"tbnz", Arch::Arm64, Type::I64,
               [](Asm& f, Asm&) {
                 a64_branchy(f, [](Asm& g, llvm::MCSymbol* l) {
                   g << I(g.op("TBNZW")).r(g.r("W0")).i(3).e(g.ref(l));
                 });
               },
               [](uint64_t a, uint64_t b) { return (a & 8) ? 77 : a + b + 1; }, kArgs, true, true, "tbnz w0, #3"});
  v.push_back({"b_cond_second", Arch::Arm64, Type::I64,
               [](Asm& f, Asm&) {
                 a64_branchy(f, [](Asm& g, llvm::MCSymbol* l) {
                   g << I(g.op("SUBSXrs")).r(g.r("XZR")).r(g.r("X0")).r(g.r("X1")).i(0)  // cmp x0, x1
                     << I(g.op("Bcc")).i(11).e(g.ref(l));                                   // b.lt
                 });
               },
               [](uint64_t a, uint64_t b) { return int64_t(a) < int64_t(b) ? 77 : a + b + 1; }, kArgs, true, true,
               "cmp x0, x1"});
  v.push_back({"b_tail", Arch::Arm64, Type::I64,
               [](Asm& f, Asm& h) {
                 f << I(f.op("B")).i(int64_t(kHelper - f.pc()) / 4);
                 a64_add_helper(h);
               },
               [](uint64_t a, uint64_t b) { return a + b; }, kArgs, true, false, "b "});
  v.push_back({"bl_second", Arch::Arm64, Type::I64,
               [](Asm& f, Asm& h) {
                 f << I(f.op("ORRXrs")).r(f.r("X9")).r(f.r("XZR")).r(f.r("LR")).i(0)  // mov x9, x30
                   << I(f.op("BL")).i(int64_t(kHelper - f.pc()) / 4)
                   << I(f.op("ADDXri")).r(f.r("X0")).r(f.r("X0")).i(1).i(0)
                   << I(f.op("ORRXrs")).r(f.r("LR")).r(f.r("XZR")).r(f.r("X9")).i(0);
                 a64_ret(f);
                 a64_add_helper(h);
               },
               [](uint64_t a, uint64_t b) { return a + b + 1; }, kArgs, true, true, "mov x9, x30"});
  v.push_back({"bl_noreturn", Arch::Arm64, Type::I64,
               [](Asm& f, Asm& h) {
                 f << I(f.op("BL")).i(int64_t(kHelper - f.pc()) / 4);
                 for (int k = 0; k < 3; ++k) a64_nop(f);
                 f << I(f.op("BRK")).i(1);
                 a64_noreturn_helper(h);
               },
               [](uint64_t a, uint64_t b) { return a + b; }, kArgs, false, true, "bl "});
  return v;
}

// riscv64 --------------------------------------------------------------------

void rv_rr(Asm& f, const char* op, const char* d, const char* a, const char* b) {
  f << I(f.op(op)).r(f.r(d)).r(f.r(a)).r(f.r(b));
}
void rv_ri(Asm& f, const char* op, const char* d, const char* a, int64_t imm) {
  f << I(f.op(op)).r(f.r(d)).r(f.r(a)).i(imm);
}
void rv_ret(Asm& f) { rv_ri(f, "JALR", "X0", "X1", 0); }
// hi20 / lo12 of a PC-relative distance, as %pcrel_hi / %pcrel_lo.
int64_t hi20(int64_t d) { return ((d + 0x800) >> 12) & 0xfffff; }
int64_t lo12(int64_t d) { return d - (int64_t(int32_t(uint32_t(hi20(d)) << 12))); }
void rv_noreturn_helper(Asm& h) {  // records ra at kLink, a0 += a1, ends the call
  h << I(h.op("LUI")).r(h.r("X7")).i(kLink >> 12);
  rv_ri(h, "SD", "X1", "X7", kLink & 0xfff);
  rv_rr(h, "ADD", "X10", "X10", "X11");
  h << I(h.op("LUI")).r(h.r("X6")).i(rt::Guest::kReturnAddr >> 12);
  rv_ri(h, "JALR", "X0", "X6", 0);
}
void rv_branchy(Asm& f, const std::function<void(Asm&, llvm::MCSymbol*)>& branch) {
  llvm::MCSymbol* taken = f.label();
  branch(f, taken);
  rv_rr(f, "ADD", "X10", "X10", "X11");
  rv_ri(f, "ADDI", "X10", "X10", 1);
  rv_ret(f);
  f.bind(taken);
  rv_ri(f, "ADDI", "X10", "X0", 77);
  rv_ret(f);
}

std::vector<Fixture> riscv64_fixtures() {
  std::vector<Fixture> v;
  v.push_back({"auipc", Arch::Riscv64, Type::I64,
               [](Asm& f, Asm&) {
                 const int64_t d = int64_t(kWord - f.pc());
                 f << I(f.op("AUIPC")).r(f.r("X5")).i(hi20(d));  // auipc t0, %pcrel_hi(word)
                 rv_ri(f, "LD", "X5", "X5", lo12(d));              // ld t0, %pcrel_lo(...)(t0)
                 rv_rr(f, "ADD", "X10", "X10", "X5");
                 rv_rr(f, "ADD", "X10", "X10", "X11");
                 rv_ret(f);
               },
               [](uint64_t a, uint64_t b) { return a + b + kWordValue; }, kArgs, true, true, "auipc t0"});
  v.push_back({"auipc_t1", Arch::Riscv64, Type::I64,
               [](Asm& f, Asm&) {  // t1 is live across the jump back: the stub must use t3
                 const int64_t d = int64_t(kWord - f.pc());
                 f << I(f.op("AUIPC")).r(f.r("X6")).i(hi20(d));
                 rv_ri(f, "ADDI", "X0", "X0", 0);
                 rv_ri(f, "LD", "X6", "X6", lo12(d));
                 rv_rr(f, "ADD", "X10", "X10", "X6");
                 rv_rr(f, "ADD", "X10", "X10", "X11");
                 rv_ret(f);
               },
               [](uint64_t a, uint64_t b) { return a + b + kWordValue; }, kArgs, true, true, "auipc t1"});
  v.push_back({"auipc_jalr_t0", Arch::Riscv64, Type::I64,
               [](Asm& f, Asm& h) {  // call t0, helper (millicode style: ra is kept)
                 const int64_t d = int64_t(kHelper - f.pc());
                 f << I(f.op("AUIPC")).r(f.r("X5")).i(hi20(d));
                 rv_ri(f, "JALR", "X5", "X5", lo12(d));
                 rv_ri(f, "ADDI", "X10", "X10", 1);
                 rv_ret(f);
                 rv_rr(h, "ADD", "X10", "X10", "X11");
                 rv_ri(h, "JALR", "X0", "X5", 0);  // jr t0
               },
               [](uint64_t a, uint64_t b) { return a + b + 1; }, kArgs, true, true, "auipc t0"});
  v.push_back({"jal_t0", Arch::Riscv64, Type::I64,
               [](Asm& f, Asm& h) {
                 f << I(f.op("JAL")).r(f.r("X5")).i(int64_t(kHelper - f.pc()));
                 rv_ri(f, "ADDI", "X10", "X10", 1);
                 rv_ret(f);
                 rv_rr(h, "ADD", "X10", "X10", "X11");
                 rv_ri(h, "JALR", "X0", "X5", 0);
               },
               [](uint64_t a, uint64_t b) { return a + b + 1; }, kArgs, true, true, "jal t0"});
  v.push_back({"jal_ra_noreturn", Arch::Riscv64, Type::I64,
               [](Asm& f, Asm& h) {
                 f << I(f.op("JAL")).r(f.r("X1")).i(int64_t(kHelper - f.pc()));
                 rv_ri(f, "ADDI", "X0", "X0", 0);  // nop
                 f << I(f.op("EBREAK"));
                 rv_noreturn_helper(h);
               },
               [](uint64_t a, uint64_t b) { return a + b; }, kArgs, false, true, "jal "});
  v.push_back({"j_tail", Arch::Riscv64, Type::I64,
               [](Asm& f, Asm& h) {
                 f << I(f.op("JAL")).r(f.r("X0")).i(int64_t(kHelper - f.pc()));
                 rv_rr(h, "ADD", "X10", "X10", "X11");
                 rv_ret(h);
               },
               [](uint64_t a, uint64_t b) { return a + b; }, kArgs, true, false, "j "});
  v.push_back({"beqz", Arch::Riscv64, Type::I64,
               [](Asm& f, Asm&) {
                 rv_branchy(f, [](Asm& g, llvm::MCSymbol* l) {
                   g << I(g.op("BEQ")).r(g.r("X10")).r(g.r("X0")).e(g.ref(l));
                 });
               },
               [](uint64_t a, uint64_t b) { return a == 0 ? 77 : a + b + 1; }, kArgs, true, true, "beqz a0"});
  v.push_back({"bltu", Arch::Riscv64, Type::I64,
               [](Asm& f, Asm&) {
                 rv_branchy(f, [](Asm& g, llvm::MCSymbol* l) {
                   g << I(g.op("BLTU")).r(g.r("X10")).r(g.r("X11")).e(g.ref(l));
                 });
               },
               [](uint64_t a, uint64_t b) { return a < b ? 77 : a + b + 1; }, kArgs, true, true, "bltu a0, a1"});
  v.push_back({"c_beqz", Arch::Riscv64, Type::I64,
               [](Asm& f, Asm&) {
                 llvm::MCSymbol* taken = f.label();
                 f << I(f.op("C_BEQZ")).r(f.r("X10")).e(f.ref(taken))
                   << I(f.op("C_ADDI")).r(f.r("X10")).r(f.r("X10")).i(1);
                 rv_rr(f, "ADD", "X10", "X10", "X11");
                 rv_ret(f);
                 f.bind(taken);
                 f << I(f.op("C_LI")).r(f.r("X10")).i(13);
                 rv_ret(f);
               },
               [](uint64_t a, uint64_t b) { return a == 0 ? 13 : a + 1 + b; }, kArgs, true, true, "beqz a0"});
  v.push_back({"compressed_straddle", Arch::Riscv64, Type::I64,
               [](Asm& f, Asm&) {  // the last displaced instruction ends past the patch
                 f << I(f.op("C_ADDI")).r(f.r("X10")).r(f.r("X10")).i(1);
                 rv_ri(f, "ADDI", "X10", "X10", 2);
                 rv_rr(f, "ADD", "X10", "X10", "X11");
                 rv_ri(f, "ADDI", "X10", "X10", 4);
                 rv_ret(f);
               },
               [](uint64_t a, uint64_t b) { return a + b + 7; }, kArgs, true, true, "addi a0, a0, 1"});
  v.push_back({"c_j_second", Arch::Riscv64, Type::I64,
               [](Asm& f, Asm&) {
                 llvm::MCSymbol* on = f.label();
                 f << I(f.op("C_ADDI")).r(f.r("X10")).r(f.r("X10")).i(1) << I(f.op("C_J")).e(f.ref(on))
                   << I(f.op("C_EBREAK")) << I(f.op("C_EBREAK"));
                 f.bind(on);
                 rv_rr(f, "ADD", "X10", "X10", "X11");
                 rv_ret(f);
               },
               [](uint64_t a, uint64_t b) { return a + 1 + b; }, kArgs, true, false, "addi a0, a0, 1"});
  return v;
}

// ---- the harness ------------------------------------------------------------

struct Built {
  std::vector<uint8_t> code, helper;
};
Built build(const Fixture& fx) {
  Asm fn(fx.arch, kFunc), helper(fx.arch, kHelper);
  fx.build(fn, helper);
  return {fn.finish(), helper.finish()};
}

// fentry records the arguments at record(0, *), fexit arguments and
// result at record(1, *).
const char* const kFentry = "lddw %r3, {rec}\nldxdw %r2, [%r1+0]\nstxdw [%r3+0], %r2\n"
                            "ldxdw %r2, [%r1+8]\nstxdw [%r3+8], %r2\nmov %r0, 0\nexit";
const char* const kFexit = "lddw %r3, {rec}\nldxdw %r2, [%r1+0]\nstxdw [%r3+0], %r2\n"
                           "ldxdw %r2, [%r1+8]\nstxdw [%r3+8], %r2\nldxdw %r2, [%r1+16]\nstxdw [%r3+16], %r2\n"
                           "mov %r0, 0\nexit";

class HookedGuest {
 public:
  HookedGuest(const Fixture& fx, const Built& b) : fx_(fx), built_(b), g_(fx.arch) {
    g_.map_code(kFunc, b.code);
    g_.map_code(kHelper, b.helper);
    g_.map_data(kData, 0x10000);
    g_.write_u64(kWord, kWordValue);
    enter_ = g_.add_host_function([](const std::array<uint64_t, 5>& a) {
      return rt::sb_tramp_prog_enter(reinterpret_cast<rt::ProgState*>(a[0]), nullptr);
    });
    exit_ = g_.add_host_function([](const std::array<uint64_t, 5>& a) -> uint64_t {
      rt::sb_tramp_prog_exit(reinterpret_cast<rt::ProgState*>(a[0]), a[1], nullptr);
      return 0;
    });
    sig_ = sig2(fx.type);
  }

  uint64_t call(uint64_t addr, uint64_t a, uint64_t b) { return g_.call(addr, sig_, {a, b}); }

  // The trampoline at `at` with an fentry and an fexit program, its
  // original the stub at kStub.
  void map_trampoline(uint64_t at) {
    tramp::Description d;
    d.file = d.target = fx_.name;
    d.signature = sig_;
    tramp::Bindings b;
    b.ip = kFunc;
    b.original = kStub;
    b.prog_enter = enter_;
    b.prog_exit = exit_;
    CompileOptions opts;
    opts.arch = fx_.arch;
    const char* sources[] = {kFentry, kFexit};
    for (size_t i = 0; i < 2; ++i) {
      std::string src = sources[i];
      src.replace(src.find("{rec}"), 5, fmt::format("{:#x}", record(i, 0)));
      tramp::AttachedProgram p{i == 0 ? Kind::Fentry : Kind::Fexit, bpf::assemble(src, fmt::format("program {}", i)),
                               0};
      const uint64_t addr = kProg + 0x10000 * i;
      g_.map_code(addr, compile(p.program, helpers_, opts).image.text);
      states_[i].stats = true;
      states_[i].recursion_guard = true;
      b.entries.push_back(addr);
      b.states.push_back(uint64_t(reinterpret_cast<uintptr_t>(&states_[i])));
      d.programs.push_back(std::move(p));
    }
    ir::Module m = tramp::lower(d, b);
    ir::check(m);
    g_.map_code(at, generate(m, opts).text);
  }

  rt::GuestHook hook(uint64_t destination, bool with_size = true) {
    rt::GuestHookRequest r;
    r.arch = fx_.arch;
    r.address = kFunc;
    r.code = built_.code;
    r.size = with_size ? built_.code.size() : 0;
    r.destination = destination;
    r.stub_address = kStub;
    return rt::build_guest_hook(r);
  }

  rt::Guest& guest() { return g_; }
  uint64_t runs(size_t prog) const { return rt::stats_of(states_[prog]).run_count; }
  void clear_records() {
    for (size_t w = 0; w < 0x40; ++w) g_.write_u64(kRecords + 8 * w, 0);
    g_.write_u64(kLink, 0);
  }

 private:
  const Fixture& fx_;
  const Built& built_;
  rt::Guest g_;
  ir::Signature sig_;
  uint64_t enter_ = 0, exit_ = 0;
  rt::HelperTable helpers_;
  rt::ProgState states_[2];
};

// One line per instruction; what does not decode (literal pools) as .hword/.word.
std::string listing(Arch arch, const std::vector<uint8_t>& code, uint64_t at) {
  std::string out;
  for (size_t off = 0; off < code.size();) {
    size_t n = arch == Arch::Riscv64 && (code[off] & 3) != 3 ? 2 : 4;
    n = std::min(n, code.size() - off);
    std::string text;
    try {
      text = mc::disassemble(arch, std::span(code).subspan(off, n), at + off).at(0).text;
    } catch (const Error&) {
      uint32_t v = 0;
      std::memcpy(&v, &code[off], n);
      text = fmt::format("{} {:#x}", n == 4 ? ".word" : ".hword", v);
    }
    out += fmt::format("  {:#x}: {}\n", at + off, text);
    off += n;
  }
  return out;
}

// ---- running hooked fixtures ------------------------------------------------

struct Case {
  const Fixture* fixture;
  bool far;
};
std::vector<Case> cases() {
  static const std::vector<Fixture> all = [] {
    std::vector<Fixture> v;
#ifdef SPRINGBOARD_HAVE_ARM64
    for (Fixture& f : arm64_fixtures()) v.push_back(std::move(f));
#endif
#ifdef SPRINGBOARD_HAVE_RISCV64
    for (Fixture& f : riscv64_fixtures()) v.push_back(std::move(f));
#endif
    return v;
  }();
  std::vector<Case> c;
  for (const Fixture& f : all) {
    c.push_back({&f, false});
    if (f.far_ok) c.push_back({&f, true});
  }
  return c;
}
std::string case_name(const testing::TestParamInfo<Case>& info) {
  return fmt::format("{}_{}_{}", backend::arch_name(info.param.fixture->arch), info.param.fixture->name,
                     info.param.far ? "far" : "near");
}

void PrintTo(const Case& c, std::ostream* os) {
  *os << backend::arch_name(c.fixture->arch) << ' ' << c.fixture->name << (c.far ? " far" : " near");
}

class HookedFunction : public testing::TestWithParam<Case> {};

TEST_P(HookedFunction, RunsThroughTheTrampolineAndTheStub) {
  const Fixture& fx = *GetParam().fixture;
  const Built built = build(fx);
  HookedGuest h(fx, built);
  rt::Guest& g = h.guest();
  const size_t first_size = fx.arch == Arch::Riscv64 && (built.code[0] & 3) != 3 ? 2 : 4;
  ASSERT_EQ(mc::disassemble(fx.arch, std::span(built.code).first(first_size), kFunc).at(0).text.rfind(fx.first, 0), 0u)
      << "the fixture starts with " << fx.first << ":\n" << listing(fx.arch, built.code, kFunc);

  // Unhooked: the function computes its model.
  std::vector<uint64_t> unhooked;
  for (auto [a, b] : fx.calls) {
    unhooked.push_back(h.call(kFunc, a, b));
    EXPECT_EQ(unhooked.back(), fx.model(a, b)) << fmt::format("unhooked ({:#x}, {:#x})", a, b);
    if (!fx.returns) {
      EXPECT_EQ(g.read_u64(kLink), kFunc + 4) << "the helper's link register, unhooked";
    }
  }

  const uint64_t tramp = GetParam().far ? kFar : kNear;
  h.map_trampoline(tramp);
  const rt::GuestHook hook = h.hook(tramp);
  const rt::EntryPatch expect_form = fx.arch == Arch::Arm64
                                         ? (GetParam().far ? rt::EntryPatch::Arm64LdrBr : rt::EntryPatch::Arm64B)
                                         : (GetParam().far ? rt::EntryPatch::Riscv64AuipcJalr : rt::EntryPatch::Riscv64Jal);
  EXPECT_EQ(hook.form, expect_form) << rt::entry_patch_name(hook.form);
  EXPECT_EQ(hook.original(), kStub);
  EXPECT_EQ(hook.saved, std::vector<uint8_t>(built.code.begin(), built.code.begin() + ptrdiff_t(hook.displaced())));
  rt::install(g, hook);
  const std::string where = fmt::format("\nfunction:\n{}stub:\n{}", listing(fx.arch, built.code, kFunc),
                                        listing(fx.arch, hook.stub, kStub));

  // Hooked, called at its own address: the same results, the programs ran.
  for (size_t k = 0; k < fx.calls.size(); ++k) {
    const auto [a, b] = fx.calls[k];
    h.clear_records();
    EXPECT_EQ(h.call(kFunc, a, b), unhooked[k]) << fmt::format("hooked ({:#x}, {:#x})", a, b) << where;
    EXPECT_EQ(g.read_u64(record(0, 0)), a) << "fentry saw the first argument" << where;
    EXPECT_EQ(g.read_u64(record(0, 1)), b) << "fentry saw the second argument";
    if (fx.returns) {
      EXPECT_EQ(g.read_u64(record(1, 1)), b) << "fexit saw the second argument";
      EXPECT_EQ(g.read_u64(record(1, 2)), unhooked[k]) << "fexit saw the result";
    } else {
      const uint64_t link = g.read_u64(kLink);
      EXPECT_TRUE(link > kStub && link < kStub + hook.stub.size())
          << fmt::format("the relocated call's link {:#x} is the stub's next instruction", link) << where;
    }
  }
  EXPECT_EQ(h.runs(0), fx.calls.size());
  EXPECT_EQ(h.runs(1), fx.returns ? fx.calls.size() : 0);

  // The stub alone is the original function; the programs stay quiet.
  for (size_t k = 0; k < fx.calls.size(); ++k) {
    const auto [a, b] = fx.calls[k];
    h.clear_records();
    EXPECT_EQ(h.call(hook.original(), a, b), unhooked[k]) << fmt::format("stub ({:#x}, {:#x})", a, b) << where;
    EXPECT_EQ(g.read_u64(record(0, 0)), 0u) << "fentry did not run";
  }

  // Unhooked again.
  rt::uninstall(g, hook);
  for (size_t k = 0; k < fx.calls.size(); ++k) {
    h.clear_records();
    EXPECT_EQ(h.call(kFunc, fx.calls[k].first, fx.calls[k].second), unhooked[k]) << "after uninstall";
  }
  EXPECT_EQ(h.runs(0), fx.calls.size()) << "fentry did not run after uninstall";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HookedFunction, testing::ValuesIn(cases()), case_name);

// ---- refusals and patch forms, per architecture ------------------------------

class HookGuest : public testing::TestWithParam<Arch> {
 protected:
  // Hooks `code` at kFunc towards `destination`; returns the error message.
  std::string refusal(const std::vector<uint8_t>& code, uint64_t destination, uint64_t size = 0) {
    rt::GuestHookRequest r;
    r.arch = GetParam();
    r.address = kFunc;
    r.code = code;
    r.size = size;
    r.destination = destination;
    r.stub_address = kStub;
    try {
      rt::build_guest_hook(r);
    } catch (const Error& e) {
      EXPECT_NE(e.where().find(fmt::format("{:#x}", kFunc)), std::string::npos) << "names the function: " << e.where();
      return e.message();
    }
    ADD_FAILURE() << "hooked, expected a refusal";
    return "";
  }
  Arch arch() const { return GetParam(); }
  template <typename F>
  std::vector<uint8_t> assemble(F body) {
    Asm f(arch(), kFunc);
    body(f);
    return f.finish();
  }
};

std::string arch_param_name(const testing::TestParamInfo<Arch>& info) { return backend::arch_name(info.param); }

// Straight-line code: n register additions, then a return.
std::vector<uint8_t> adds_then_ret(Arch arch, int n) {
  Asm f(arch, kFunc);
  for (int k = 0; k < n; ++k) {
    if (arch == Arch::Arm64) a64_add(f, "X0", "X0", "X1");
    else rv_rr(f, "ADD", "X10", "X10", "X11");
  }
  if (arch == Arch::Arm64) a64_ret(f);
  else rv_ret(f);
  return f.finish();
}

TEST_P(HookGuest, RefusesAFunctionThatReturnsBeforeThePatchEnds) {
  // arm64: 8 bytes against the 16-byte far patch; riscv64: 4 bytes against auipc+jalr.
  const std::string msg = refusal(adds_then_ret(arch(), arch() == Arch::Arm64 ? 1 : 0), kFar);
  EXPECT_NE(msg.find("too short"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ret"), std::string::npos) << "names the instruction: " << msg;
  if (arch() == Arch::Riscv64) {  // a compressed return against the 4-byte jal
    const std::vector<uint8_t> c_ret = assemble([](Asm& f) { f << I(f.op("C_JR")).r(f.r("X1")); });
    const std::string m = refusal(c_ret, kNear);
    EXPECT_NE(m.find("too short"), std::string::npos) << m;
  }
}

TEST_P(HookGuest, RefusesAFunctionSmallerThanThePatch) {
  const std::string msg = refusal(adds_then_ret(arch(), 8), kFar, 6);
  EXPECT_NE(msg.find("too short"), std::string::npos) << msg;
  EXPECT_NE(msg.find("6 bytes"), std::string::npos) << msg;
}

TEST_P(HookGuest, RefusesABranchIntoTheDisplacedBytes) {
  // A loop whose head is the second instruction: the branch back comes
  // after the displaced bytes, so only a known size finds it.
  const std::vector<uint8_t> loop = assemble([&](Asm& f) {
    llvm::MCSymbol* head = f.label();
    if (arch() == Arch::Arm64) {
      a64_add(f, "X0", "X0", "X1");
      f.bind(head);
      f << I(f.op("SUBXri")).r(f.r("X1")).r(f.r("X1")).i(1).i(0);
      a64_nop(f);
      a64_nop(f);
      f << I(f.op("CBNZX")).r(f.r("X1")).e(f.ref(head));
      a64_ret(f);
    } else {
      rv_rr(f, "ADD", "X10", "X10", "X11");
      f.bind(head);
      rv_ri(f, "ADDI", "X11", "X11", -1);
      rv_ri(f, "ADDI", "X0", "X0", 0);
      f << I(f.op("BNE")).r(f.r("X11")).r(f.r("X0")).e(f.ref(head));
      rv_ret(f);
    }
  });
  const uint64_t branch_at = arch() == Arch::Arm64 ? 16 : 12;
  const std::string msg = refusal(loop, kFar, loop.size());
  EXPECT_NE(msg.find("branches into the displaced bytes (+4)"), std::string::npos) << msg;
  EXPECT_NE(msg.find(fmt::format("at +{} (", branch_at)), std::string::npos) << "names the branch: " << msg;

  // Without the size only the displaced instructions are checked.
  rt::GuestHookRequest r{arch(), kFunc, loop, 0, kFar, kStub};
  EXPECT_NO_THROW(rt::build_guest_hook(r));
  // A displaced branch into the displaced bytes is found without it.
  const std::vector<uint8_t> inner = assemble([&](Asm& f) {
    llvm::MCSymbol* second = f.label();
    if (arch() == Arch::Arm64) {
      f << I(f.op("CBZX")).r(f.r("X0")).e(f.ref(second));
      f.bind(second);
      for (int k = 0; k < 3; ++k) a64_add(f, "X0", "X0", "X1");
      a64_ret(f);
    } else {
      f << I(f.op("BEQ")).r(f.r("X10")).r(f.r("X0")).e(f.ref(second));
      f.bind(second);
      rv_rr(f, "ADD", "X10", "X10", "X11");
      rv_ret(f);
    }
  });
  const std::string m2 = refusal(inner, kFar);
  EXPECT_NE(m2.find("at +0 ("), std::string::npos) << m2;
  EXPECT_NE(m2.find("branches into the displaced bytes (+4)"), std::string::npos) << m2;
}

// A loop whose head is the entry: the jump back from the rest of the
// function is refused (it would run the trampoline once per iteration);
// a displaced jump back to the entry loops inside the stub.
TEST_P(HookGuest, ALoopBackToTheEntryNeverReentersTheHook) {
  const std::vector<uint8_t> loop = assemble([&](Asm& f) {
    llvm::MCSymbol* head = f.label();
    f.bind(head);
    if (arch() == Arch::Arm64) {
      f << I(f.op("SUBXri")).r(f.r("X1")).r(f.r("X1")).i(1).i(0);
      a64_add(f, "X0", "X0", "X1");
      f << I(f.op("CBNZX")).r(f.r("X1")).e(f.ref(head));
      a64_ret(f);
    } else {
      rv_ri(f, "ADDI", "X11", "X11", -1);
      f << I(f.op("BNE")).r(f.r("X11")).r(f.r("X0")).e(f.ref(head));
      rv_rr(f, "ADD", "X10", "X10", "X11");
      rv_ret(f);
    }
  });
  const uint64_t branch_at = kFunc + (arch() == Arch::Arm64 ? 8 : 4);
  const std::string msg = refusal(loop, kNear, loop.size());
  EXPECT_NE(msg.find(fmt::format("at {:#x} jumps back to the entry", branch_at)), std::string::npos) << msg;
  // The far patch displaces the branch too: it then loops to the stub's start.
  rt::GuestHookRequest r{arch(), kFunc, loop, loop.size(), kFar, kStub};
  const rt::GuestHook h = rt::build_guest_hook(r);
  if (arch() == Arch::Arm64) {
    bool has_stub_literal = false, has_func_literal = false;
    for (size_t k = 0; k + 8 <= h.stub.size(); k += 8) {
      uint64_t v;
      std::memcpy(&v, &h.stub[k], 8);
      has_stub_literal |= v == kStub;
      has_func_literal |= v == kFunc;
    }
    EXPECT_TRUE(has_stub_literal);
    EXPECT_FALSE(has_func_literal) << "jumps to the hooked entry";
  } else {
    const std::string stub = mc::disassemble_text(arch(), h.stub);
    EXPECT_NE(stub.find("lui t1, 768"), std::string::npos) << "li t1, 0x300000: " << stub;
  }
}

// Loops through the displaced bytes, hooked with a trampoline and run in
// Unicorn: one whose head is the entry (with the near patch its back-edge
// is in the rest of the function; the far patch displaces it too) and one
// whose head is the second instruction (outside the near patch, inside the
// far one). Each hook is either refused, the error naming the branch's
// address, and the function left as it was, or it runs fentry and fexit
// exactly once per call while the loop runs all its iterations (never once
// per iteration, never a crash). Each computes a + (b-1) + (b-2) + ... + 0.
TEST_P(HookGuest, LoopsThroughTheDisplacedBytesRunTheHookOncePerCall) {
  struct Loop {
    const char* name;
    uint64_t head, branch;  // offsets of the loop's head and of its back-edge
    std::function<void(Asm&, Asm&)> build;
  };
  const bool a64 = arch() == Arch::Arm64;
  // arm64:   [nop;] head: sub x1, x1, #1; add x0, x0, x1; cbnz x1, head; ret
  // riscv64: [addi x0, x0, 0;] head: c.addi a1, -1; c.add a0, a1; bne a1, zero, head; ret
  auto loop = [&](bool lead) {
    return [lead, a64](Asm& f, Asm&) {
      llvm::MCSymbol* head = f.label();
      if (a64) {
        if (lead) a64_nop(f);
        f.bind(head);
        f << I(f.op("SUBXri")).r(f.r("X1")).r(f.r("X1")).i(1).i(0);
        a64_add(f, "X0", "X0", "X1");
        f << I(f.op("CBNZX")).r(f.r("X1")).e(f.ref(head));
        a64_ret(f);
      } else {
        if (lead) rv_ri(f, "ADDI", "X0", "X0", 0);
        f.bind(head);
        f << I(f.op("C_ADDI")).r(f.r("X11")).r(f.r("X11")).i(-1) << I(f.op("C_ADD")).r(f.r("X10")).r(f.r("X10")).r(f.r("X11"));
        f << I(f.op("BNE")).r(f.r("X11")).r(f.r("X0")).e(f.ref(head));
        rv_ret(f);
      }
    };
  };
  const std::vector<Loop> loops = {{"head_at_entry", 0, a64 ? 8u : 4u, loop(false)},
                                   {"head_second", 4, a64 ? 12u : 8u, loop(true)}};
  size_t hooked = 0, refused = 0;
  for (const Loop& l : loops) {
    for (bool far : {false, true}) {
      SCOPED_TRACE(fmt::format("{} {}", l.name, far ? "far" : "near"));
      const Fixture fx{l.name, arch(), Type::I64, l.build,
                       [](uint64_t a, uint64_t b) { return a + b * (b - 1) / 2; },
                       {{20, 3}, {0, 50}, {7, 1}}, true, true, ""};
      const Built built = build(fx);
      HookedGuest h(fx, built);
      rt::Guest& g = h.guest();
      for (auto [a, b] : fx.calls) ASSERT_EQ(h.call(kFunc, a, b), fx.model(a, b)) << "unhooked";
      const uint64_t dest = far ? kFar : kNear;
      const uint64_t n = far ? (a64 ? 16 : 8) : 4;  // the bytes each patch displaces here
      const bool refuse = l.head == 0 ? l.branch >= n : l.head < n;
      h.map_trampoline(dest);
      std::optional<rt::GuestHook> hook;
      try {
        hook = h.hook(dest);
      } catch (const Error& e) {
        EXPECT_TRUE(refuse) << e.what();
        const std::string want =
            l.head == 0 ? fmt::format("at {:#x} jumps back to the entry", kFunc + l.branch)
                        : fmt::format("at {:#x} branches into the displaced bytes (+{})", kFunc + l.branch, l.head);
        EXPECT_NE(e.message().find(want), std::string::npos) << "names the branch: " << e.what();
        for (auto [a, b] : fx.calls) EXPECT_EQ(h.call(kFunc, a, b), fx.model(a, b)) << "after the refusal";
        EXPECT_EQ(h.runs(0), 0u);
        ++refused;
        continue;
      }
      ASSERT_FALSE(refuse) << "hooked a loop that would re-enter the hook or land inside the patch";
      ASSERT_EQ(hook->displaced(), n);
      rt::install(g, *hook);
      const std::string where = fmt::format("\nfunction:\n{}stub:\n{}", listing(arch(), built.code, kFunc),
                                            listing(arch(), hook->stub, kStub));
      for (size_t k = 0; k < fx.calls.size(); ++k) {
        const auto [a, b] = fx.calls[k];
        h.clear_records();
        EXPECT_EQ(h.call(kFunc, a, b), fx.model(a, b)) << fmt::format("hooked ({}, {})", a, b) << where;
        EXPECT_EQ(h.runs(0), k + 1) << "fentry runs once per call, not per iteration" << where;
        EXPECT_EQ(h.runs(1), k + 1) << "fexit runs once per call";
        EXPECT_EQ(g.read_u64(record(1, 2)), fx.model(a, b)) << "fexit saw the result";
      }
      EXPECT_EQ(h.call(hook->original(), 1, 40), fx.model(1, 40)) << "the stub alone" << where;
      EXPECT_EQ(h.runs(0), fx.calls.size()) << "the stub does not run the hook";
      rt::uninstall(g, *hook);
      for (auto [a, b] : fx.calls) EXPECT_EQ(h.call(kFunc, a, b), fx.model(a, b)) << "after uninstall";
      ++hooked;
    }
  }
  EXPECT_EQ(hooked, 2u);  // the entry loop far (in the stub), the second-instruction loop near (in the function)
  EXPECT_EQ(refused, 2u);
}

TEST_P(HookGuest, RefusesToSplitAnExclusiveAccessSequence) {
  const std::vector<uint8_t> code = assemble([&](Asm& f) {
    if (arch() == Arch::Arm64) {
      f << I(f.op("LDXRX")).r(f.r("X0")).r(f.r("X0"));
      a64_ret(f);
    } else {
      f << I(f.op("LR_D")).r(f.r("X10")).r(f.r("X10"));
      rv_ret(f);
    }
  });
  const std::string msg = refusal(code, kNear);
  EXPECT_NE(msg.find("exclusive-access"), std::string::npos) << msg;
  EXPECT_NE(msg.find(arch() == Arch::Arm64 ? "ldxr" : "lr.d"), std::string::npos) << msg;
}

TEST_P(HookGuest, TheStubsScratchRegisterIsOneTheDisplacedCodeDoesNotWrite) {
  if (arch() == Arch::Arm64) {
    // Three post-indexed ldp write all nine candidates (x16, x17, x9..x15).
    const std::vector<uint8_t> code = assemble([](Asm& f) {
      f << I(f.op("LDPXpost")).r(f.r("X9")).r(f.r("X16")).r(f.r("X17")).r(f.r("X9")).i(2)
        << I(f.op("LDPXpost")).r(f.r("X12")).r(f.r("X10")).r(f.r("X11")).r(f.r("X12")).i(2)
        << I(f.op("LDPXpost")).r(f.r("X15")).r(f.r("X13")).r(f.r("X14")).r(f.r("X15")).i(2);
      a64_nop(f);
      a64_ret(f);
    });
    const std::string msg = refusal(code, kFar);
    EXPECT_NE(msg.find("write every scratch register the stub could use (X16, X17, X9, X10, X11, X12, X13, X14, "
                       "X15)"),
              std::string::npos)
        << msg;
  } else {
    // c.li t1, t3, t4, t5 fill the 8-byte patch: t6 is left.
    const std::vector<uint8_t> code = assemble([](Asm& f) {
      for (const char* r : {"X6", "X28", "X29", "X30"}) f << I(f.op("C_LI")).r(f.r(r)).i(1);
      rv_ret(f);
    });
    rt::GuestHookRequest r{arch(), kFunc, code, 0, kFar, kStub};
    const rt::GuestHook h = rt::build_guest_hook(r);
    EXPECT_NE(mc::disassemble_text(arch(), h.stub).find("jr t6"), std::string::npos)
        << mc::disassemble_text(arch(), h.stub);
  }
}

TEST_P(HookGuest, RefusesBytesThatAreNotInstructions) {
  const std::string msg = refusal(std::vector<uint8_t>(16, 0xff), kNear);
  EXPECT_NE(msg.find("the bytes at +0 do not decode"), std::string::npos) << msg;
  const std::string none = refusal({}, kNear);
  EXPECT_NE(none.find("only 0 bytes of its code were given"), std::string::npos) << none;
}

TEST_P(HookGuest, PatchFormsByDistance) {
  const std::vector<uint8_t> code = adds_then_ret(arch(), 8);
  auto form = [&](uint64_t dest) {
    rt::GuestHookRequest r{arch(), kFunc, code, 0, dest, kStub};
    return rt::build_guest_hook(r);
  };
  if (arch() == Arch::Arm64) {
    EXPECT_EQ(form(kFunc + (128 << 20) - 4).form, rt::EntryPatch::Arm64B);
    EXPECT_EQ(form(kFunc + (128 << 20)).form, rt::EntryPatch::Arm64LdrBr);
    const rt::GuestHook far = form(0x123456789000ull);
    EXPECT_EQ(mc::disassemble_text(arch(), std::span(far.patch).first(8)), "ldr x16, #8\nbr x16\n");
    EXPECT_EQ(far.displaced(), 16u);
  } else {
    EXPECT_EQ(form(kFunc - (1 << 20)).form, rt::EntryPatch::Riscv64Jal);
    EXPECT_EQ(form(kFunc + (1 << 20)).form, rt::EntryPatch::Riscv64AuipcJalr);
    // The extremes of auipc+jalr: hi20 and lo12 as %pcrel_hi / %pcrel_lo.
    const rt::GuestHook up = form(kFunc + 0x7ffff7fe);
    EXPECT_EQ(up.form, rt::EntryPatch::Riscv64AuipcJalr);
    EXPECT_EQ(mc::disassemble_text(arch(), up.patch), "auipc t1, 524287\njr 2046(t1)\n");
    const rt::GuestHook down = form(kFunc - 0x80000800ull);
    EXPECT_EQ(mc::disassemble_text(arch(), down.patch), "auipc t1, 524288\njr -2048(t1)\n");
    EXPECT_EQ(mc::disassemble_text(arch(), form(kFunc + 0x1000).patch), "j 0x1000\n");
    const std::string msg = refusal(code, kFunc + 0x80000000ull);
    EXPECT_NE(msg.find("2 GiB"), std::string::npos) << msg;
  }
}

TEST_P(HookGuest, FarthestDestinationRunsInTheGuest) {
  // arm64's ldr+br reaches anywhere: a trampoline 4 GiB away; riscv64's
  // auipc+jalr just under +2 GiB.
  static const Fixture fx_a64 = arm64_fixtures().front();  // adrp
  static const Fixture fx_rv = riscv64_fixtures().front();  // auipc
  const Fixture& fx = arch() == Arch::Arm64 ? fx_a64 : fx_rv;
  const Built built = build(fx);
  HookedGuest h(fx, built);
  const uint64_t far = arch() == Arch::Arm64 ? 0x100000000ull : kFunc + 0x7ffff000;
  h.map_trampoline(far);
  const rt::GuestHook hook = h.hook(far);
  EXPECT_EQ(hook.form, arch() == Arch::Arm64 ? rt::EntryPatch::Arm64LdrBr : rt::EntryPatch::Riscv64AuipcJalr);
  rt::install(h.guest(), hook);
  EXPECT_EQ(h.call(kFunc, 1, 2), fx.model(1, 2));
  EXPECT_EQ(h.runs(0), 1u);
  EXPECT_EQ(h.runs(1), 1u);
}

TEST_P(HookGuest, RefusesOtherArchitectures) {
  const std::vector<uint8_t> code(16, 0x90);
  rt::GuestHookRequest r{Arch::X86_64, kFunc, code, 0, kNear, kStub};
  try {
    rt::build_guest_hook(r);
    ADD_FAILURE() << "hooked";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("hook_x86_64.h"), std::string::npos) << e.message();
  }
}

std::vector<Arch> archs() {
  std::vector<Arch> v;
#ifdef SPRINGBOARD_HAVE_ARM64
  v.push_back(Arch::Arm64);
#endif
#ifdef SPRINGBOARD_HAVE_RISCV64
  v.push_back(Arch::Riscv64);
#endif
  return v;
}
INSTANTIATE_TEST_SUITE_P(Archs, HookGuest, testing::ValuesIn(archs()), arch_param_name);

}  // namespace
}  // namespace sb::test
