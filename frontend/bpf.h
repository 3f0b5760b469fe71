// The BPF instruction set as RFC 9669 defines it: encoding constants and the
// raw instruction word. Everything that reads or writes bytecode (decoder,
// validator, assembler, disassembler, interpreter, IR lowering) uses these
// names, so the numbers below appear exactly once in the project.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sb::bpf {

// RFC 9669 section 3: one 64-bit slot, little-endian.
//   opcode:8 | dst_reg:4 | src_reg:4 | offset:16 | imm:32
struct Insn {
  uint8_t opcode = 0;
  uint8_t dst : 4 = 0;  // 0..15 as encoded; only 0..10 are valid registers
  uint8_t src : 4 = 0;  // (bit-fields so that the slot is 8 bytes, dst low)
  int16_t off = 0;
  int32_t imm = 0;

  bool operator==(const Insn&) const = default;
};
static_assert(sizeof(Insn) == 8);

constexpr int kNumRegs = 11;      // r0..r10
constexpr int kFramePointer = 10; // r10, read-only
constexpr int kStackSize = 512;   // bytes per frame (RFC 9669 section 2)
constexpr int kMaxCallDepth = 8;  // bpf-to-bpf frames, as the kernel

// --- instruction classes (RFC 9669 section 3.1, low 3 bits) ---
enum Class : uint8_t {
  LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03,
  ALU = 0x04, JMP = 0x05, JMP32 = 0x06, ALU64 = 0x07,
};
inline Class class_of(uint8_t opcode) { return Class(opcode & 0x07); }

// --- arithmetic and jump instructions (section 4) ---
enum Source : uint8_t { K = 0x00, X = 0x08 };  // bit 3: imm or src register

// ALU/ALU64 operation code (high 4 bits), section 4.1.
enum AluOp : uint8_t {
  ADD = 0x00, SUB = 0x10, MUL = 0x20, DIV = 0x30, OR = 0x40, AND = 0x50,
  LSH = 0x60, RSH = 0x70, NEG = 0x80, MOD = 0x90, XOR = 0xa0, MOV = 0xb0,
  ARSH = 0xc0, END = 0xd0,
};

// JMP/JMP32 operation code (high 4 bits), section 4.3.
enum JmpOp : uint8_t {
  JA = 0x00, JEQ = 0x10, JGT = 0x20, JGE = 0x30, JSET = 0x40, JNE = 0x50,
  JSGT = 0x60, JSGE = 0x70, CALL = 0x80, EXIT = 0x90, JLT = 0xa0, JLE = 0xb0,
  JSLT = 0xc0, JSLE = 0xd0,
};

// Byte swap (END) source bit: TO_LE uses K, TO_BE uses X; ALU64|END is bswap.
constexpr uint8_t TO_LE = 0x00, TO_BE = 0x08;

// CALL src_reg values (section 4.3.1).
enum CallKind : uint8_t { CALL_HELPER = 0, CALL_LOCAL = 1, CALL_HELPER_BTF = 2 };

// --- load and store instructions (section 5) ---
enum Size : uint8_t { W = 0x00, H = 0x08, B = 0x10, DW = 0x18 };
enum Mode : uint8_t {
  IMM = 0x00, ABS = 0x20, IND = 0x40, MEM = 0x60, MEMSX = 0x80, ATOMIC = 0xc0,
};
inline unsigned size_bytes(uint8_t opcode) {
  switch (opcode & 0x18) {
    case W: return 4;
    case H: return 2;
    case B: return 1;
    default: return 8;
  }
}

// Atomic operations carried in imm (section 5.3).
constexpr int32_t FETCH = 0x01;
enum AtomicOp : int32_t {
  ATOMIC_ADD = 0x00, ATOMIC_OR = 0x40, ATOMIC_AND = 0x50, ATOMIC_XOR = 0xa0,
  ATOMIC_XCHG = 0xe0 | FETCH, ATOMIC_CMPXCHG = 0xf0 | FETCH,
};

// 64-bit immediate load sub-types (src_reg of LD|IMM|DW, section 5.4).
enum LddwSrc : uint8_t {
  LDDW_IMM64 = 0, LDDW_MAP_FD = 1, LDDW_MAP_VALUE = 2, LDDW_VAR_ADDR = 3,
  LDDW_CODE_ADDR = 4, LDDW_MAP_IDX = 5, LDDW_MAP_IDX_VALUE = 6,
};
// An lddw of LDDW_CODE_ADDR loads the address of the function that starts
// at slot i + 1 + imm (i: the lddw's first slot), as the kernel's
// BPF_PSEUDO_FUNC: a callback for bpf_loop or bpf_for_each_map_elem. Only
// helper arguments take it.
inline constexpr uint32_t HELPER_LOOP = 181;            // bpf_loop (BPF_FUNC_loop)
inline constexpr uint32_t HELPER_FOR_EACH_MAP_ELEM = 164;  // bpf_for_each_map_elem
inline constexpr uint32_t kMaxLoops = uint32_t(1) << 23;  // BPF_MAX_LOOPS
// An opcode from its parts: class | operation or mode | source or size. (C++20
// deprecates `|` between two different enum types, so compose through this.)
constexpr uint8_t make_opcode(uint8_t cls, uint8_t op_or_mode, uint8_t src_or_size = 0) {
  return uint8_t(cls | op_or_mode | src_or_size);
}
constexpr uint8_t LDDW = make_opcode(LD, IMM, DW);  // 0x18

// Decoded helpers on the raw word.
inline bool is_lddw(const Insn& i) { return i.opcode == LDDW; }
inline uint8_t op_of(const Insn& i) { return i.opcode & 0xf0; }
inline bool is_reg_source(const Insn& i) { return (i.opcode & X) != 0; }
inline uint8_t mode_of(uint8_t opcode) { return opcode & 0xe0; }  // LD/LDX/ST/STX
// Slots an instruction occupies: LDDW takes two (section 5.4), all others one.
inline size_t slot_count(const Insn& i) { return is_lddw(i) ? 2 : 1; }

// An lddw the ELF loader resolved from a map reference into a plain 64-bit
// immediate (frontend/elf_loader.h): which map it names, so that the
// verifier types the register as a map handle or a pointer into the map's
// value rather than as a number.
struct MapUse {
  size_t insn = 0;          // the lddw's index
  std::string name;         // the map's name, for the verifier's messages
  uint32_t type = 0;        // BPF_MAP_TYPE_*
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  bool value = false;       // global data: the address of element 0's value + `offset`
  uint64_t offset = 0;
  int32_t spin_lock_offset = -1;  // where its value's struct bpf_spin_lock is (from BTF), -1: none
  // An array or hash of maps: what its inner maps are like (a lookup gives
  // one of them, which the verifier types as this).
  std::shared_ptr<const MapUse> inner;
};

// The name messages give the inner maps of map of maps `outer`.
inline std::string inner_map_name(const std::string& outer) { return outer + " (inner)"; }
// What the verifier knows of the inner maps of `outer` from their template
// (bpf::MapDef as the loader read it, or rt::MapSpec as the map holds it:
// any description with these fields).
template <class Description>
std::shared_ptr<const MapUse> inner_map_use(const std::string& outer, const Description& inner) {
  return std::make_shared<const MapUse>(MapUse{0, inner_map_name(outer), inner.type, inner.key_size, inner.value_size,
                                               inner.max_entries, false, 0, inner.spin_lock_offset, nullptr});
}

// A global function of an ELF object: a .text function whose BTF FUNC has
// linkage BTF_FUNC_GLOBAL (what clang writes for one that is not static).
// As the kernel does (btf_prepare_func_args, btf_check_subprog_call), the
// verifier checks it once, on its own, for any arguments its prototype
// allows, and checks each call's arguments against the prototype instead
// of following the call. The prototype is kept as BTF declares it; the
// verifier resolves it against the program type (a pointer to the type's
// context struct is the context, see ContextLayout::btf_name).
struct GlobalFuncParam {
  enum class Kind : uint8_t {
    Scalar,       // an integer or enum
    Pointer,      // a pointer: the context, or memory of `size` bytes (maybe null)
    Unsupported,  // anything else (a float, a struct by value): refused
  };
  Kind kind = Kind::Scalar;
  std::string pointee;           // Pointer to a struct or union: its name ("xdp_md"); else empty
  std::optional<uint32_t> size;  // Pointer: the pointee's size; none when it has none (void, a function)
  std::string type;              // the BTF kind of the parameter or pointee, for messages ("float", "void")
};

struct GlobalFunc {
  size_t start = 0;  // its first instruction in Program::insns
  std::string name;
  std::vector<GlobalFuncParam> params;  // as declared (more than 5 is refused)
  bool returns_scalar = true;           // an integer or enum (anything else is refused)
};

// A loaded program: raw slots (LDDW occupies two), plus where it came from
// so every diagnostic can name the file and the instruction.
struct ProgramType;  // frontend/progtypes/program_type.h

struct Program {
  std::string name;        // file name or "<stdin>", used in diagnostics
  std::vector<Insn> insns; // raw slots, indexes are instruction numbers
  std::vector<MapUse> maps;  // the lddw of every map it uses (ELF objects), by instruction
  // What r1 is and what the program may do (xdp, ...); null: raw bytecode,
  // r1 = memory of r2 bytes. An ELF object's section names the type
  // (ElfProgram::type); the embedder chooses to run it as that type.
  const ProgramType* type = nullptr;
  std::vector<GlobalFunc> globals;  // its global functions but the entry (ELF objects with BTF)
};

}  // namespace sb::bpf
