// The symbol table of the loaded object that holds an address of this
// process (its ELF file read with libelf: .symtab, else .dynsym), for entry
// hooking: a function's extent, the code parts the compiler split off it
// (gcc's "name.cold"), the next symbol (what bounds the padding after a
// function) and the allocated sections (what bounds a jump table's reads).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

typedef struct Elf Elf;  // <libelf.h>

namespace sb::rt {

// An ELF file of this process read with libelf (ELF_C_READ_MMAP); closes
// what it opened.
struct ElfFile {
  int fd = -1;
  Elf* elf = nullptr;
  bool open(const std::string& path);  // false: no such file, not ELF
  ElfFile() = default;
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;
  ~ElfFile();
};

struct FunctionSymbol {
  uint64_t start = 0;  // runtime addresses
  uint64_t size = 0;
  std::string name;
};

class SymbolIndex {
 public:
  // The index of the object mapped at `address`; nullopt when the address
  // is in no object, or its file cannot be read or has no symbols.
  static std::optional<SymbolIndex> of(const void* address);
  // The index of the object file at `path` loaded with bias `bias`.
  static std::optional<SymbolIndex> load(const std::string& path, uint64_t bias);

  // The function symbol whose [start, start+size) holds `address`.
  std::optional<FunctionSymbol> function_at(uint64_t address) const;
  // The lowest start of any symbol above `address`, or the end of the
  // executable section holding it.
  uint64_t next_symbol(uint64_t address) const;
  // Whether [address, address+size) lies in one allocated section of the file.
  bool in_section(uint64_t address, uint64_t size) const;
  // Whether [address, address+size) lies in one executable section.
  bool in_code(uint64_t address, uint64_t size) const;

 private:
  friend std::optional<FunctionSymbol> find_process_function(std::string_view, std::string*);
  struct Section {
    uint64_t start, end;
    bool exec;
  };
  std::vector<FunctionSymbol> functions_;  // sorted by start
  std::vector<uint64_t> starts_;           // every symbol's start, sorted
  std::vector<Section> sections_;
};

// The objects loaded in this process (dl_iterate_phdr), in load order, the
// executable first: its file and load bias. With `object` non-empty only
// the one whose path or file name it is ("libc.so.6").
struct LoadedObject {
  std::string path;
  uint64_t bias = 0;
};
std::vector<LoadedObject> loaded_objects(std::string_view object = {});

// A function of this process by name: "NAME" in the executable and then
// every loaded library in load order (their .symtab, else .dynsym, so
// static functions too), or "OBJECT:NAME" in the loaded object whose path or
// file name is OBJECT ("libc.so.6:malloc"). `object` gets the file it was
// found in. nullopt when no object has it.
std::optional<FunctionSymbol> find_process_function(std::string_view spec, std::string* object = nullptr);

}  // namespace sb::rt
