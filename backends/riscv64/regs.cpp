// riscv64: the LLVM names of its registers and opcodes, resolved once.
// The BPF register map itself is in regs.h.
#include <mutex>

#include "backends/riscv64/riscv64.h"

namespace sb::riscv64 {

// LLVM names the integer registers by number (X0..X31), in NReg order.
static const char* const kNames[32] = {
    "X0",  "X1",  "X2",  "X3",  "X4",  "X5",  "X6",  "X7",  "X8",  "X9",  "X10",
    "X11", "X12", "X13", "X14", "X15", "X16", "X17", "X18", "X19", "X20", "X21",
    "X22", "X23", "X24", "X25", "X26", "X27", "X28", "X29", "X30", "X31"};
static const char* const kOpcodeNames[] = {
#define SB_RISCV64_NAME(name) #name,
    SB_RISCV64_OPCODES(SB_RISCV64_NAME)
#undef SB_RISCV64_NAME
};

const char* opcode_name(Opc op) { return kOpcodeNames[op]; }

const Tables& tables() {
  static Tables t;
  static std::once_flag once;
  std::call_once(once, [] {
    const mc::McTarget& mt = mc::McTarget::get(kSpec);
    mc::resolve_opcodes(mt, kOpcodeNames, t.op);
    mc::resolve_regs(mt, kNames, t.x);
  });
  return t;
}

}  // namespace sb::riscv64
