// BPF ELF objects as `clang -O2 -target bpf -c` writes them (the layout
// libbpf loads) -> bpf::Program, read with LLVM's Object library.
//
// One program is chosen by section name ("xdp") and/or function name; the
// .text subprograms it calls (static or global, directly or through other
// subprograms) are appended after it. Its maps are the object's BTF-style
// `.maps` (members `__uint(type, ...)`, `__type(key, ...)`, ... read from
// .BTF) and legacy `maps` (struct bpf_map_def) definitions, and its global
// data sections (.data*, .rodata*, .bss*), each one array map with a single
// element, as libbpf does. A program array's static initialiser names the
// programs of its slots (MapDef::programs); the embedder loads each from
// the same object with the same maps (rt::Environment::load_elf does).
//
// Every lddw pseudo source is resolved here into a plain 64-bit immediate
// (src 0), so the validator, interpreter, IR and backends need nothing new:
//   relocation     instruction  symbol in           becomes
//   R_BPF_64_64    lddw         .maps / maps        src 1 (map fd): the map's handle
//   R_BPF_64_64    lddw         .data/.rodata/.bss  src 2 (map value): value address + offset
//   R_BPF_64_64    lddw         undefined, in BTF   src 2 into the ".kconfig" map (one element
//                               DATASEC .kconfig    holding each extern's value, frontend/kconfig.h)
//   R_BPF_64_32    call src=1   .text               imm = offset of the appended subprogram
// A call with src=1 and no relocation stays inside its own section. Debug
// and BTF relocations are ignored; anything else is an error.
//
// Malformed input throws sb::Error naming the file and the section, symbol
// or field, e.g. "prog.o: section 'xdp': relocation 3: offset 0x400 is
// outside the section (size 0x130)".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/bpf.h"

namespace sb::bpf {

// Which program: by section, by function, or both (the function must then
// be in that section). Both empty: the object's only program.
struct ElfSelection {
  std::string section;
  std::string function;
};

// A slot of a program array the object initialises (`.values = { [1] =
// (void *)&stage1 }` in BTF `.maps`, relocations in .rel.maps, as libbpf).
struct ProgramSlot {
  uint32_t index = 0;
  ElfSelection program;  // its section and function
};

// A map the object defines, as the embedder must create it.
struct MapDef {
  std::string name;       // the variable's name; for global data the section's (".bss")
  uint32_t type = 0;      // BPF_MAP_TYPE_* as written (global data: 2, array)
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint32_t flags = 0;
  bool global_data = false;      // a .data/.rodata/.bss section
  std::vector<uint8_t> initial;  // global data: the section's bytes (.bss: empty, zero-filled)
  std::vector<ProgramSlot> programs;  // a program array's initialised slots
  uint32_t map_extra = 0;             // __uint(map_extra, N): a bloom filter's hash count
  int32_t spin_lock_offset = -1;      // the value struct's `struct bpf_spin_lock` member (BTF), -1: none
  // An array or hash of maps: what its inner maps are like (the BTF's
  // `__array(values, struct {...})`), and the slots its `.values`
  // initialiser fills: index -> the name of a map of the same object.
  std::shared_ptr<const MapDef> inner;
  std::vector<std::pair<uint32_t, std::string>> inner_maps;
};

// What an lddw that names a map becomes: `handle` for a map reference (src
// 1), `value` + offset for a global-data reference (src 2; the address of
// element 0's value).
struct MapAddress {
  uint64_t handle = 0;
  uint64_t value = 0;
};

// Creates one map (called once per map, before any relocation is applied)
// and returns its addresses. May throw sb::Error; the loader adds the file
// and map name.
using MapCreator = std::function<MapAddress(const MapDef&)>;

// An lddw of a map or of global data, as the loader resolved it:
// ahead-of-time objects name the map's symbol there instead of the
// MapCreator's address (backends/aot.h).
struct MapRef {
  size_t insn;      // the lddw's index in ElfProgram::program
  size_t map;       // index into ElfProgram::maps
  uint64_t offset;  // global data: the offset into the value (0 for a map handle)
  bool value;       // global data (src 2: the value's address), not a map handle (src 1)
};

struct ElfProgram {
  Program program;       // entry at instruction 0, called subprograms after it
  std::string section;   // where the entry came from
  // The section's program type as libbpf names them ("xdp": XDP), null for a
  // section Springboard has no type for. program.type stays null (raw) until
  // the embedder chooses to run the program as its type.
  const ProgramType* type = nullptr;
  std::string function;  // its symbol (empty for a section without symbols)
  std::vector<MapDef> maps;  // every map of the object, in creation order
  std::vector<MapRef> map_refs;  // every lddw of a map or global data, by instruction
};

// `name` is used in diagnostics and as the program's name.
ElfProgram load_elf(std::span<const uint8_t> bytes, const std::string& name, const ElfSelection& which,
                    const MapCreator& create_map);
ElfProgram read_elf_file(const std::string& path, const ElfSelection& which, const MapCreator& create_map);

// Every program of an object a selection can choose (a global function of
// a program section, or a program section without symbols: function
// empty), in section order; .text subprograms are not listed.
std::vector<ElfSelection> list_elf_programs(std::span<const uint8_t> bytes, const std::string& name);
// The prototype of `function` as the object's BTF gives it (a FUNC of that
// name and its FUNC_PROTO), written as trampoline signatures are
// ("i64, ptr -> i32", frontend/trampoline.h parse_signature); nullopt when
// the BTF has no such FUNC. A type no signature can express (a variadic
// function, a nested struct) throws sb::Error naming the parameter.
std::optional<std::string> btf_signature(std::span<const uint8_t> bytes, const std::string& name,
                                         std::string_view function);
std::vector<uint8_t> read_file(const std::string& path);  // throws sb::Error naming the path

// Whether `bytes` start with the ELF magic (for tools choosing a reader).
bool looks_like_elf(std::span<const uint8_t> bytes);

}  // namespace sb::bpf
