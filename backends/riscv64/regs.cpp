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
// The floating-point registers, as LLVM names them in each width: F10_F is
// fa0 holding a float (FLW, FSW, FMV.X.W), F10_D the same register holding
// a double (FLD, FSD, FMV.X.D).
static const char* const kFpNames32[32] = {
    "F0_F",  "F1_F",  "F2_F",  "F3_F",  "F4_F",  "F5_F",  "F6_F",  "F7_F",  "F8_F",  "F9_F",  "F10_F",
    "F11_F", "F12_F", "F13_F", "F14_F", "F15_F", "F16_F", "F17_F", "F18_F", "F19_F", "F20_F", "F21_F",
    "F22_F", "F23_F", "F24_F", "F25_F", "F26_F", "F27_F", "F28_F", "F29_F", "F30_F", "F31_F"};
static const char* const kFpNames64[32] = {
    "F0_D",  "F1_D",  "F2_D",  "F3_D",  "F4_D",  "F5_D",  "F6_D",  "F7_D",  "F8_D",  "F9_D",  "F10_D",
    "F11_D", "F12_D", "F13_D", "F14_D", "F15_D", "F16_D", "F17_D", "F18_D", "F19_D", "F20_D", "F21_D",
    "F22_D", "F23_D", "F24_D", "F25_D", "F26_D", "F27_D", "F28_D", "F29_D", "F30_D", "F31_D"};
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
    mc::resolve_regs(mt, kFpNames32, t.f32);
    mc::resolve_regs(mt, kFpNames64, t.f64);
  });
  return t;
}

}  // namespace sb::riscv64
