// x86-64: the LLVM names of its registers and opcodes, resolved once.
// The BPF register map itself is in regs.h.
#include <mutex>

#include "backends/x86_64/x86_64.h"

namespace sb::x86_64 {

// The names LLVM gives each register at 64/32/16/8 bits, in NReg order.
static const char* const kNames64[16] = {"RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI",
                                         "R8",  "R9",  "R10", "R11", "R12", "R13", "R14", "R15"};
static const char* const kNames32[16] = {"EAX", "ECX", "EDX", "EBX", "ESP", "EBP", "ESI", "EDI",
                                         "R8D", "R9D", "R10D", "R11D", "R12D", "R13D", "R14D", "R15D"};
static const char* const kNames16[16] = {"AX", "CX", "DX", "BX", "SP", "BP", "SI", "DI",
                                         "R8W", "R9W", "R10W", "R11W", "R12W", "R13W", "R14W", "R15W"};
static const char* const kNames8[16] = {"AL", "CL", "DL", "BL", "SPL", "BPL", "SIL", "DIL",
                                        "R8B", "R9B", "R10B", "R11B", "R12B", "R13B", "R14B", "R15B"};
static const char* const kNamesXmm[16] = {"XMM0", "XMM1", "XMM2",  "XMM3",  "XMM4",  "XMM5",  "XMM6",  "XMM7",
                                          "XMM8", "XMM9", "XMM10", "XMM11", "XMM12", "XMM13", "XMM14", "XMM15"};
static const char* const kOpcodeNames[] = {
#define SB_X86_NAME(name) #name,
    SB_X86_OPCODES(SB_X86_NAME)
#undef SB_X86_NAME
};


const Tables& tables() {
  static Tables t;
  static std::once_flag once;
  std::call_once(once, [] {
    const mc::McTarget& mt = mc::McTarget::get(kSpec);
    mc::resolve_opcodes(mt, kOpcodeNames, t.op);
    mc::resolve_regs(mt, kNames64, t.r64);
    mc::resolve_regs(mt, kNames32, t.r32);
    mc::resolve_regs(mt, kNames16, t.r16);
    mc::resolve_regs(mt, kNames8, t.r8);
    mc::resolve_regs(mt, kNamesXmm, t.xmm);
    t.rip = mt.reg("RIP");
    t.fs = mt.reg("FS");
  });
  return t;
}

}  // namespace sb::x86_64
