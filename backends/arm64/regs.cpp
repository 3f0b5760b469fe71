// arm64: the LLVM names of its registers and opcodes, resolved once.
// The BPF register map itself is in regs.h.
#include <mutex>

#include "backends/arm64/arm64.h"

namespace sb::arm64 {

// LLVM's names for each NReg as a 64-bit and as a 32-bit register
// (x29 and x30 are FP and LR there; encoding 31 is XZR/WZR or SP/WSP).
static const char* const kNamesX[kNumNRegs] = {
    "X0",  "X1",  "X2",  "X3",  "X4",  "X5",  "X6",  "X7",  "X8",  "X9",  "X10",
    "X11", "X12", "X13", "X14", "X15", "X16", "X17", "X18", "X19", "X20", "X21",
    "X22", "X23", "X24", "X25", "X26", "X27", "X28", "FP",  "LR",  "XZR", "SP"};
static const char* const kNamesW[kNumNRegs] = {
    "W0",  "W1",  "W2",  "W3",  "W4",  "W5",  "W6",  "W7",  "W8",  "W9",  "W10",
    "W11", "W12", "W13", "W14", "W15", "W16", "W17", "W18", "W19", "W20", "W21",
    "W22", "W23", "W24", "W25", "W26", "W27", "W28", "W29", "W30", "WZR", "WSP"};
static const char* const kNamesD[kFpArgRegs] = {"D0", "D1", "D2", "D3", "D4", "D5", "D6", "D7"};
static const char* const kNamesS[kFpArgRegs] = {"S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7"};
static const char* const kNamesQ[32] = {"Q0",  "Q1",  "Q2",  "Q3",  "Q4",  "Q5",  "Q6",  "Q7",  "Q8",  "Q9",  "Q10",
                                       "Q11", "Q12", "Q13", "Q14", "Q15", "Q16", "Q17", "Q18", "Q19", "Q20", "Q21",
                                       "Q22", "Q23", "Q24", "Q25", "Q26", "Q27", "Q28", "Q29", "Q30", "Q31"};
static const char* const kOpcodeNames[] = {
#define SB_ARM64_NAME(name) #name,
    SB_ARM64_OPCODES(SB_ARM64_NAME)
#undef SB_ARM64_NAME
};

const char* opcode_name(Opc op) { return kOpcodeNames[op]; }

const Tables& tables() {
  static Tables t;
  static std::once_flag once;
  std::call_once(once, [] {
    const mc::McTarget& mt = mc::McTarget::get(kSpec);
    mc::resolve_opcodes(mt, kOpcodeNames, t.op);
    mc::resolve_regs(mt, kNamesX, t.x);
    mc::resolve_regs(mt, kNamesW, t.w);
    mc::resolve_regs(mt, kNamesD, t.d);
    mc::resolve_regs(mt, kNamesS, t.s);
    mc::resolve_regs(mt, kNamesQ, t.q);
  });
  return t;
}

}  // namespace sb::arm64
