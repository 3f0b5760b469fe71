// The whole Springboard IR in one header.
//
// A Module is a list of Functions; function 0 is the entry. A Function is a
// linear list of Insts over eleven 64-bit registers r0..r10 with the BPF
// calling convention (r0 result, r1-r5 arguments and scratch, r6-r9 callee
// saved, r10 read-only frame pointer to the top of a per-function frame).
// Control flow uses numbered labels local to a function. Bytecode lowers
// into it one-to-one or one-to-few (frontend/lower.cpp); trampolines
// (frontend/trampoline.cpp) lower into the same ops plus two native-ABI
// ops, CallAddr and CallSig, and a function Signature whose arguments the
// prologue spills to frame slots. So frame and call logic is written once
// and backends only select instructions and supply their calling convention.
//
// TailCall (bpf_tail_call, runtime/helpers/tail_call.h) calls its helper like Call,
// keeping r1; a non-zero result is the target program's tail entry (after
// its prologue's register saves): the native stack is reset to the entry
// frame as the entry's prologue left it after those saves, and control
// jumps there with r1 as it was. Otherwise r0 = 0 and execution goes on.
//
// Text form (ir/printer.cpp), one instruction per line:
//   r0 = add.32 r0, 5        r3 = load.s16 [r1+2]      store.64 [r10-8], r1
//   r0 = load.32 [r1+r5*4+8] (an indexed address, see fold_addresses)
//   br.64 sgt r1, -3 -> L3   call helper 5             L3:
//   r1 = ldsym @0+0x10       call.sym @1               (@N: Module::symbols[N])
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sb::ir {

constexpr int kNumRegs = 13;  // r0..r10, r11 and r12
constexpr uint8_t kFP = 10;   // r10: frame pointer, never written
// r11 ("ax", the kernel's BPF_REG_AX) and r12 ("ax2"): hidden scratch
// registers that no bytecode names. IR passes (ir/harden.h: constant
// blinding, bounds checks, time-budget polls) use them inside the few
// instructions they insert; they are never live across a call, a division
// or an atomic, which may clobber them.
constexpr uint8_t kAX = 11;
constexpr uint8_t kAX2 = 12;
constexpr uint32_t kNoOrigin = ~0u;
constexpr uint8_t kNoIndex = 15;  // Inst::index: no index register

// The BPF stack of a run is one contiguous region, as in the reference
// interpreter: the entry function's frame at the top, then, when the
// module has callees, room for kMaxCallDepth - 1 callee frames of
// kCallFrame bytes below it. A
// bpf-to-bpf callee's r10 is its caller's r10 - kCallFrame; no native data
// (return addresses, saved registers) lies inside the region. Below it the
// entry reserves kRunBlockBytes for the run block the hardening passes use
// (ir/harden.h). Module::stack_bytes() is the region's size.
constexpr uint32_t kCallFrame = 512;
constexpr uint32_t kMaxCallDepth = 8;
constexpr uint32_t kRunBlockBytes = 160;

// The opcode table (design example 3). Columns:
//   name      the enumerator         text     the printer's mnemonic
//   form      operand shape (see Form below)
//   meaning   what it does, `b` is the second operand: src register or imm
#define SB_IR_OPS(X)                                                                \
  /*  name       text          form          meaning                            */ \
  X(Mov,       "mov",        Form::Alu,    "dst = b")                               \
  X(Add,       "add",        Form::Alu,    "dst += b")                              \
  X(Sub,       "sub",        Form::Alu,    "dst -= b")                              \
  X(Mul,       "mul",        Form::Alu,    "dst *= b")                              \
  X(UDiv,      "udiv",       Form::Alu,    "dst = b ? dst / b : 0 (unsigned)")      \
  X(SDiv,      "sdiv",       Form::Alu,    "dst = b ? dst / b : 0; MIN/-1 = MIN")   \
  X(UMod,      "umod",       Form::Alu,    "dst = b ? dst % b : dst (unsigned)")    \
  X(SMod,      "smod",       Form::Alu,    "dst = b ? dst % b : dst; MIN%-1 = 0")   \
  X(Or,        "or",         Form::Alu,    "dst |= b")                              \
  X(And,       "and",        Form::Alu,    "dst &= b")                              \
  X(Xor,       "xor",        Form::Alu,    "dst ^= b")                              \
  X(Shl,       "shl",        Form::Alu,    "dst <<= b mod width")                   \
  X(LShr,      "lshr",       Form::Alu,    "dst >>= b mod width (logical)")         \
  X(AShr,      "ashr",       Form::Alu,    "dst >>= b mod width (arithmetic)")      \
  X(Neg,       "neg",        Form::Unary,  "dst = -dst")                            \
  X(MovSx,     "movsx",      Form::Ext,    "dst = sign_extend(src, ext bits)")      \
  X(Bswap,     "bswap",      Form::Ext,    "dst = byte_swap(dst, ext bits)")        \
  X(LoadImm,   "ldimm",      Form::Imm64,  "dst = imm (any 64-bit value)")          \
  X(LoadSym,   "ldsym",      Form::Imm64,  "dst = &symbols[target] + imm (linked)")  \
  X(Load,      "load",       Form::Load,   "dst = *(size *)(src [+ index << scale] + off), extended") \
  X(Store,     "store",      Form::Store,  "*(size *)(dst [+ index << scale] + off) = b") \
  X(Atomic,    "atomic",     Form::Atomic, "atomic rmw at dst + off with src")      \
  X(Jmp,       "jmp",        Form::Jump,   "goto target")                           \
  X(Br,        "br",         Form::Branch, "if (dst cc b) goto target")             \
  X(Call,      "call",       Form::Call,   "r0 = helper[target](r1..r5)")           \
  X(CallLocal, "call.local", Form::Call,   "r0 = function[target](r1..r5)")         \
  X(CallAddr,  "call.addr",  Form::Call,   "r0 = native imm(r1..r5), C ABI")        \
  X(CallSig,   "call.sig",   Form::Call,   "r0 = native imm(args at r10+off), sig")  \
  X(CallSym,   "call.sym",   Form::Call,   "r0 = native symbols[target](r1..r5), C ABI") \
  X(TailCall,  "tailcall",   Form::Call,   "r0 = helper[target](r1..r3); r0 ? goto r0") \
  X(Exit,      "exit",       Form::Term,   "return r0 from this function")          \
  X(Unwind,    "unwind",     Form::Term,   "end the whole program with r0")         \
  X(Trap,      "trap",       Form::Term,   "end the program with fault `target`")   \
  X(Label,     "label",      Form::Label,  "define label target")                    \
  X(EntryFrame, "frame.entry", Form::Def,  "dst = r10 of the entry function (top of the stack)") \
  X(ThreadPtr, "thread.ptr",  Form::Def,    "dst = the thread pointer (TLS base: fs:0, tpidr_el0, tp)")

enum class Form : uint8_t { Alu, Unary, Ext, Imm64, Load, Store, Atomic, Jump, Branch, Call, Term, Label, Def };

enum class Op : uint8_t {
#define SB_IR_ENUM(name, text, form, meaning) name,
  SB_IR_OPS(SB_IR_ENUM)
#undef SB_IR_ENUM
};

// Branch conditions. Unsigned unless prefixed with S; Set branches when
// dst & b != 0 (BPF's JSET), Clear when dst & b == 0 (its inverse, which
// bytecode cannot say but `if (!(x & 1))` compiles to).
#define SB_IR_CONDS(X) \
  X(Eq, "eq") X(Ne, "ne") X(Gt, "gt") X(Ge, "ge") X(Lt, "lt") X(Le, "le") \
  X(SGt, "sgt") X(SGe, "sge") X(SLt, "slt") X(SLe, "sle") X(Set, "set") X(Clear, "clear")

enum class Cond : uint8_t {
#define SB_IR_ENUM(name, text) name,
  SB_IR_CONDS(SB_IR_ENUM)
#undef SB_IR_ENUM
};

// Atomic read-modify-write kinds. With `fetch`, src receives the old value;
// CmpXchg compares with r0 and always loads the old value into r0.
#define SB_IR_ATOMICS(X) \
  X(Add, "add") X(Or, "or") X(And, "and") X(Xor, "xor") X(Xchg, "xchg") X(CmpXchg, "cmpxchg")

enum class AtomicOp : uint8_t {
#define SB_IR_ENUM(name, text) name,
  SB_IR_ATOMICS(SB_IR_ENUM)
#undef SB_IR_ENUM
};

// Faults a program can end with (Trap's target). Engines report them as
// errors that name the bytecode instruction (the Trap's origin).
#define SB_IR_TRAPS(X)                                              \
  X(None, "no fault") X(BadCallx, "callx to an unregistered helper") \
  X(OutOfBounds, "out-of-bounds memory access") X(TimeLimit, "time budget exhausted")

enum class TrapCode : uint8_t {
#define SB_IR_ENUM(name, text) name,
  SB_IR_TRAPS(SB_IR_ENUM)
#undef SB_IR_ENUM
};
const char* trap_message(TrapCode code);

struct Inst {
  Op op = Op::Label;
  uint8_t dst = 0;       // destination / base register (Store, Atomic)
  uint8_t src = 0;       // source / base register (Load)
  bool k = false;        // the second operand `b` is imm, not src
  uint8_t width = 64;    // operation width: 32 or 64 (Alu, Unary, Br, Atomic)
  uint8_t size = 8;      // memory access size in bytes (Load, Store, Atomic)
  uint8_t ext = 0;       // MovSx source bits, Bswap bits (16/32/64)
  uint8_t args = 5;      // CallAddr: the callee reads r1..r{args} (liveness); the other calls read all five
  bool sext = false;     // Load sign-extends
  bool fetch = false;    // Atomic returns the old value
  Cond cc = Cond::Eq;    // Br
  AtomicOp aop = AtomicOp::Add;
  // Load and Store only, and only after a target's address folding
  // (ir/passes.h fold_addresses): the address is base + (index << scale) + off.
  uint8_t index : 4 = kNoIndex;
  uint8_t scale : 2 = 0;
  int32_t off = 0;       // memory displacement
  int64_t imm = 0;       // `b` when k; the 64-bit constant of LoadImm
  uint32_t target = 0;   // label (Jmp, Br, Label), helper id (Call, TailCall), function (CallLocal)
  uint32_t origin = kNoOrigin;  // index of the bytecode instruction it came from
};

// Native value types of a Signature (trampolines). Structs are passed by
// value, at most 16 bytes, integer fields only (the description parser
// checks), so every ABI passes them as one or two integer words.
#define SB_IR_TYPES(X)                                                       \
  X(Void, "void", 0) X(I8, "i8", 1) X(U8, "u8", 1) X(I16, "i16", 2)            \
  X(U16, "u16", 2) X(I32, "i32", 4) X(U32, "u32", 4) X(I64, "i64", 8)          \
  X(U64, "u64", 8) X(Ptr, "ptr", 8) X(F32, "f32", 4) X(F64, "f64", 8)          \
  X(Struct, "struct", 0)

enum class Type : uint8_t {
#define SB_IR_ENUM(name, text, size) name,
  SB_IR_TYPES(SB_IR_ENUM)
#undef SB_IR_ENUM
};
const char* type_name(Type t);

struct NativeValue {
  Type type = Type::Void;
  uint8_t size = 0;  // bytes (structs: 1..16; scalars: the type's size)
  bool is_fp() const { return type == Type::F32 || type == Type::F64; }
  uint32_t words() const { return (size + 7u) / 8u; }  // 8-byte slots it occupies
};

// A function's native signature: the prologue stores argument word w at
// [r10 + spill_off + 8*w] (floats as their bits, zero-extended); Exit
// returns r0 as `ret`; CallSig passes the words at [r10 + off] with the
// same signature and leaves the result in r0 (floats as bits).
struct Signature {
  std::vector<NativeValue> args;
  NativeValue ret;
  int32_t spill_off = 0;
  uint32_t words() const {
    uint32_t n = 0;
    for (const NativeValue& a : args) n += a.words();
    return n;
  }
};

struct Function {
  std::string name;
  std::vector<Inst> code;
  uint32_t num_labels = 0;
  uint32_t frame_size = 512;  // bytes below r10
  std::optional<Signature> native;  // set for functions called with a native ABI
  // Set for a probe (frontend/trampoline.h, Kind::Uprobe): the entry is
  // jumped to at any instruction of a host function with every register
  // live. Its backend saves every register in the architecture's pt_regs
  // as BPF programs see it (backends/native_abi.h, ProbeRegs), with
  // `ip` as its instruction pointer and the stack pointer as it was at
  // the probe, and calls the body (a native function (ptr) -> ptr, its
  // argument that pt_regs); when the body returns, every register is
  // restored from the pt_regs and control continues at the address the
  // body returned.
  struct Probe {
    uint64_t ip = 0;
    // Where to go on when it is always the same place (the displaced
    // instructions' copy): the backend jumps there itself, the body's
    // result unused. Unset: the body's result. x86-64 jumps there with
    // every register restored; arm64 and riscv64, which cannot jump
    // without a register, with every register but x16 / t1 restored and
    // sp still at the saved pt_regs: the code at `next` reloads x16 / t1
    // from them and frees them (runtime/hook/hook_guest.h, probe stubs).
    // Unset, they continue through x16 / t1, which must be dead there.
    std::optional<uint64_t> next;
    // Which vector (floating-point) registers to keep: All when the body
    // calls code that may use them (a helper compiled from C; the body's
    // own code and the trampoline runtime, runtime/hook/tramp_runtime.h,
    // use none); ReturnValues at a function's return, where by the C ABI
    // only the ones that return values are live (x86-64 xmm0-xmm1, arm64
    // v0-v3, riscv64 fa0-fa1); None when nothing the body runs touches them.
    enum class Vectors : uint8_t { None, ReturnValues, All };
    Vectors vectors = Vectors::All;
  };
  std::optional<Probe> probe;
  uint32_t new_label() { return num_labels++; }
};

struct Module {
  std::vector<Function> functions;  // [0] is the entry point
  // Size of the contiguous BPF stack region (see kCallFrame above).
  uint32_t stack_bytes() const {
    if (functions.empty()) return kCallFrame;
    return functions[0].frame_size + (functions.size() > 1 ? (kMaxCallDepth - 1) * kCallFrame : 0);
  }
  // Names of the external (or separately defined) symbols LoadSym and
  // CallSym refer to by index; only ahead-of-time objects have any, since
  // a linker resolves them (backends/aot.h).
  std::vector<std::string> symbols;
};

// Table lookups generated from the X-macros above. op_form is inline: the
// well-formedness check and every instruction selector ask it for each instruction.
inline constexpr Form kOpForms[] = {
#define SB_IR_ROW(name, text, form, meaning) form,
    SB_IR_OPS(SB_IR_ROW)
#undef SB_IR_ROW
};
inline Form op_form(Op op) { return kOpForms[size_t(op)]; }
const char* op_name(Op op);
const char* op_meaning(Op op);
const char* cond_name(Cond cc);
const char* atomic_name(AtomicOp a);
bool is_terminator(Op op);  // Jmp, Exit, Unwind, Trap: control never falls through

// Construction helpers so lowering code reads like the IR text. Inline, so
// an instruction is built in registers, not stored field by field and read
// back whole (a store-forwarding stall per instruction lowered).
// The same instruction with `b` the immediate `imm`.
inline Inst with_imm(Inst i, int64_t imm) {
  i.k = true, i.imm = imm;
  return i;
}
inline Inst alu(Op op, int width, uint8_t dst, uint8_t src) {
  Inst i;
  i.op = op, i.width = uint8_t(width), i.dst = dst, i.src = src;
  return i;
}
inline Inst alu_imm(Op op, int width, uint8_t dst, int64_t imm) { return with_imm(alu(op, width, dst, 0), imm); }
inline Inst load(int size, bool sext, uint8_t dst, uint8_t base, int32_t off) {
  Inst i;
  i.op = Op::Load, i.size = uint8_t(size), i.sext = sext, i.dst = dst, i.src = base, i.off = off;
  return i;
}
inline Inst store(int size, uint8_t base, int32_t off, uint8_t src) {
  Inst i;
  i.op = Op::Store, i.size = uint8_t(size), i.dst = base, i.off = off, i.src = src;
  return i;
}
inline Inst store_imm(int size, uint8_t base, int32_t off, int64_t imm) {
  return with_imm(store(size, base, off, 0), imm);
}
inline Inst branch(Cond cc, int width, uint8_t dst, uint8_t src, uint32_t label) {
  Inst i;
  i.op = Op::Br, i.cc = cc, i.width = uint8_t(width), i.dst = dst, i.src = src, i.target = label;
  return i;
}
inline Inst branch_imm(Cond cc, int width, uint8_t dst, int64_t imm, uint32_t label) {
  return with_imm(branch(cc, width, dst, 0, label), imm);
}
inline Inst with_target(Op op, uint32_t target) {
  Inst i;
  i.op = op, i.target = target;
  return i;
}
inline Inst jump(uint32_t label) { return with_target(Op::Jmp, label); }
inline Inst label(uint32_t id) { return with_target(Op::Label, id); }
inline Inst call_helper(uint32_t id) { return with_target(Op::Call, id); }
inline Inst trap(TrapCode code) { return with_target(Op::Trap, uint32_t(code)); }
inline Inst entry_frame(uint8_t dst) {
  Inst i;
  i.op = Op::EntryFrame, i.dst = dst;
  return i;
}
inline Inst thread_ptr(uint8_t dst) {
  Inst i;
  i.op = Op::ThreadPtr, i.dst = dst;
  return i;
}

// Printer (ir/printer.cpp): the text form above, used by tests and --emit ir.
std::string print(const Inst& inst);
std::string print(const Function& fn);
std::string print(const Module& m);

// Well-formedness check (ir/check.cpp), run between stages: registers in range, r10
// never written, widths and sizes legal, labels defined once and every
// target defined, call targets exist, last instruction a terminator.
// Throws sb::Error naming the function and instruction index.
void check(const Module& m);

}  // namespace sb::ir
