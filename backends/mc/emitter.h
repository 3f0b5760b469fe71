// The one place backends hand their MCInsts to: the same instruction
// selection run produces machine code bytes (for the JIT), assembly text,
// or a relocatable ELF object, depending on what is behind it.
// Asm and Object output go through LLVM's MC streamers. Bytes go through a
// small one-section assembler over the target's MCCodeEmitter and
// MCAsmBackend (emitter.cpp): it keeps the labels and fixups itself, relaxes
// branches (x86 short/near jumps, riscv out-of-range branches) as LLVM's
// MCAssembler does, and gives the bytes the object streamer would; its LLVM
// objects are reused by the next Emitter on the same thread (ReusePool).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <string>
#include <vector>

#include <llvm/MC/MCExpr.h>
#include <llvm/MC/MCInst.h>

#include "backends/mc/mc_target.h"

namespace llvm {
class MCContext;
class MCStreamer;
class MCSymbol;
class MCObjectFileInfo;
class raw_svector_ostream;
}  // namespace llvm

namespace sb::mc {

enum class OutputKind { Bytes, Asm, Object };

// Where data_object() puts a data object: .data, .rodata or .bss.
enum class DataSection { Data, ReadOnly, Zero };

// Origins that are not bytecode instructions.
constexpr uint32_t kOriginPrologue = ~0u - 1;   // a function's prologue
constexpr uint32_t kOriginExitStub = ~0u - 2;   // the program's exit and trap path

struct Origin {
  uint32_t insn;    // bytecode instruction index
  uint64_t offset;  // native offset of its first instruction in .text
};

struct CodeImage {
  std::vector<uint8_t> text;    // OutputKind::Bytes: the .text section
  std::string asm_text;         // OutputKind::Asm
  std::vector<uint8_t> object;  // OutputKind::Object: an ELF relocatable
  std::vector<Origin> origins;  // Bytes, when origins were recorded
  std::vector<uint64_t> function_offsets;  // Bytes: start of each function
  std::vector<std::pair<std::string, uint64_t>> symbols;  // Bytes: Emitter::mark_symbol's, in order
  // The offset of symbol `name`, or nullopt.
  std::optional<uint64_t> symbol(std::string_view name) const;
};

// Where a tail call enters a program (ir::Op::TailCall): just after the
// entry prologue saved the caller's registers.
inline constexpr std::string_view kTailEntrySymbol = "tail_entry";

class Emitter {
 public:
  Emitter(const McTarget& target, OutputKind kind, bool record_origins = false);
  ~Emitter();
  Emitter(const Emitter&) = delete;
  Emitter& operator=(const Emitter&) = delete;

  void emit(const llvm::MCInst& inst);
  llvm::MCSymbol* new_label();
  void bind(llvm::MCSymbol* label);
  // Pads with nops to an `align`-byte boundary (a loop's head), unless
  // that takes more than `max_skip` bytes (0: any).
  void align_code(unsigned align, unsigned max_skip = 0);
  const llvm::MCExpr* ref(const llvm::MCSymbol* sym);
  // Starts a function at an aligned address; `global` exports `sym`.
  void begin_function(llvm::MCSymbol* sym, bool global, unsigned align = 16);
  llvm::MCSymbol* named_symbol(const std::string& name);
  // Records the offset of the next instruction as CodeImage symbol `name`
  // (Bytes output; the assembly text stays as it is).
  void mark_symbol(std::string_view name);
  // Notes that the next instruction comes from bytecode instruction `insn`.
  void mark_origin(uint32_t insn);
  void comment(const std::string& text);  // Asm output only
  // Bytes copied from code decoded elsewhere (relocating a hooked
  // function's first instructions), and data words inside code.
  void bytes(const uint8_t* data, size_t size);
  void value(const llvm::MCExpr* expr, unsigned size);
  // `size` zero bytes with the ELF relocation `relocation` (by its name,
  // e.g. "R_RISCV_32_PCREL") of `expr` at them: a `.reloc` directive, for a
  // relocation LLVM would only produce through a target's own MCExpr.
  void reloc_value(const llvm::MCExpr* expr, unsigned size, const char* relocation);
  void u64(uint64_t v);
  // A global data object `name` of `size` bytes (ahead-of-time objects):
  // `initial`, then zeros (.bss: zeros only), 8-byte aligned, with its ELF
  // type and size; code continues in .text afterwards.
  void data_object(const std::string& name, std::span<const uint8_t> initial, size_t size, DataSection where);

  CodeImage finish();

  llvm::MCContext& ctx();
  const McTarget& target() const { return target_; }
  OutputKind kind() const { return kind_; }

  struct State;  // the LLVM objects behind an Emitter (emitter.cpp)

 private:
  void end_function();  // gives the last global function its ELF size (objects only)

  const McTarget& target_;
  OutputKind kind_;
  bool record_origins_;
  std::unique_ptr<State> s_;
};

}  // namespace sb::mc
