// Ahead-of-time objects: a BPF program as a relocatable ELF object for
// x86-64, arm64 or riscv64 that an ordinary C program links
// (`springboard compile PROGRAM --arch A --emit obj -o prog.o`).
//
// The symbol contract (also in README.md, "Ahead-of-time objects"):
//
//   symbol                 defined by   what
//   NAME                   the object   uint64_t NAME(void *mem, size_t len): runs the
//                                       program on mem[0, len) (r1, r2) and returns r0
//   sb_helper_<helper>     the embedder uint64_t sb_helper_<helper>(uint64_t r1, ..., r5):
//                                       helper call `call ID`, named after the helper
//                                       table's entry (sb_helper_map_lookup_elem for id
//                                       1 of the standard table, sb_helper_unwind for
//                                       id 5 of the conformance one); sb_helper_<ID>
//                                       when the entry has no name
//   sb_map_<map>           the embedder the map's handle: its address is what an lddw of
//                                       the map loads and what map helpers receive
//   NAME_<section>         the object   a global data section's value (.data, .rodata,
//                                       .bss, ...: the section name, '.' as '_', e.g.
//                                       NAME_rodata_str1_1), its initial bytes included
//   sb_trap                the embedder uint64_t sb_trap(uint64_t code, uint64_t insn,
//                                       void *program): the program faulted (code 1:
//                                       callx of an unregistered helper) at bytecode
//                                       instruction insn; `program` is NAME's address;
//                                       the result becomes NAME's return value
//
// Every reference is PC-relative, so the object links into PIE executables
// and static ones alike (not into a shared library where the symbols could
// be preempted: that would need GOT references):
//
//   arch      call of a helper / sb_trap             address of a map or global data
//   x86-64    call sym          R_X86_64_PLT32       lea sym(%rip)    R_X86_64_PC32
//   arm64     bl sym            R_AARCH64_CALL26     .word sym - .    R_AARCH64_PREL32
//   riscv64   .word sym - .     R_RISCV_32_PCREL     .word sym - .    R_RISCV_32_PCREL
//
// (the 32-bit PC-relative words sit in .text beside the code that reads
// them; see load_symbol in backends/arm64/abi.cpp and riscv64/abi.cpp).
// NAME is the entry of the usual {r0, status} ABI, with status always 0:
// faults are reported through sb_trap instead (link_symbols below).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backends/arch.h"
#include "backends/mc/emitter.h"
#include "frontend/elf_loader.h"
#include "ir/ir.h"
#include "runtime/helpers/helpers.h"

namespace sb::aot {

inline constexpr const char* kTrapSymbol = "sb_trap";

// The names above. Each throws sb::Error when the result would not be a C
// identifier (a helper or map name with other characters).
std::string helper_symbol(const rt::Helper& h);
std::string map_symbol(const bpf::MapDef& map);
std::string data_symbol(const std::string& program, const bpf::MapDef& map);

// What a program refers to besides its code: the object's maps and the
// lddw instructions that name them (both from bpf::load_elf; empty for raw
// bytecode).
struct Links {
  std::span<const bpf::MapDef> maps;
  std::span<const bpf::MapRef> refs;
};

// Rewrites a lowered module for the linker: helper calls become CallSym of
// their sb_helper_ symbols, each map lddw a LoadSym of the map's or global
// data's symbol, and each Trap a call of sb_trap(code, insn, NAME) whose
// result ends the program (Unwind). Throws sb::Error naming `program_name`.
void link_symbols(ir::Module& m, const std::string& name, const rt::HelperTable& helpers, const Links& links,
                  const std::string& program_name);

struct ObjectOptions {
  Arch arch = Arch::X86_64;
  std::string name;  // NAME, the C function (a C identifier)
  mc::OutputKind output = mc::OutputKind::Object;  // or Asm: the same code as assembly text
};

// validate + lower + link_symbols + select + encode, and the global data
// objects the program refers to. The result's `object` (or `asm_text`).
mc::CodeImage compile_object(const bpf::Program& p, const rt::HelperTable& helpers, const Links& links,
                             const ObjectOptions& opts);

}  // namespace sb::aot
