// libFuzzer target: arbitrary bytes through the ELF loader (ELF header,
// sections, symbols, relocations, BTF, map definitions, linking). None may
// crash; rejections are sb::Error. A loaded program must then be one the
// validator can judge without crashing, and every lddw must be resolved.
// The first input byte picks the selection (none, a section, a function) so
// that the per-program paths are reached too; every program the listing
// (list_elf_programs, `springboard inspect`) names is loaded as well, and
// the BTF prototypes of functions are read (btf_signature).
// Each map definition is then created as the runtime creates it
// (rt::create_map: the map types' size, flag and map_extra checks) and
// given one update, lookup, push, peek, pop, delete and listing with
// bytes from the input, when it is small enough not to exhaust the
// fuzzer's memory.
// Seeds: the objects built from test/programs (build-dir/test/programs/*.o).
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     -I/usr/lib/llvm-19/include test/fuzz/fuzz_elf.cpp frontend/{elf_loader,decoder,validator}.cpp \
//     ir/diag.cpp -L/usr/lib/llvm-19/lib -lLLVM-19 -lfmt -o fuzz_elf
#include <cstdint>
#include <cstdlib>
#include <span>

#include "frontend/elf_loader.h"
#include "frontend/validator.h"
#include "ir/diag.h"
#include "runtime/maps/maps.h"
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sb::bpf;
  if (size == 0) return 0;
  static const ElfSelection kSelections[] = {
      {}, {"xdp", ""}, {"tc", ""}, {"", "prog"}, {".text", ""}, {"socket", ""},
  };
  const ElfSelection& which = kSelections[data[0] % std::size(kSelections)];
  size_t maps = 0;
  auto create_map = [&](const MapDef& d) -> MapAddress {
    if (d.global_data && d.initial.size() > d.value_size) std::abort();  // the loader sized it from the section
    ++maps;
    if (uint64_t(d.max_entries) * (uint64_t(d.key_size) + d.value_size + 64) < (16u << 20) && d.value_size < (1u << 20)) {
      try {
        std::unique_ptr<sb::rt::Map> m =
            sb::rt::create_map({d.name, d.type, d.key_size, d.value_size, d.max_entries, d.flags, d.map_extra});
        std::vector<uint8_t> key(d.key_size + 8, uint8_t(size)), value(d.value_size + 8, uint8_t(size >> 8));
        m->update(key.data(), value.data(), size % 4);
        m->lookup(key.data());
        m->push(value.data(), size % 3);
        m->peek(value.data());
        m->pop(value.data());
        m->entries();
        m->remove(key.data());
      } catch (const sb::Error&) {
      }
    }
    return {0x1000 + 0x100 * maps, 0x100000 * maps};
  };
  // A function's prototype from the BTF (fentry sections' signatures): any
  // FUNC the object may have, by the names the seeds use.
  for (const char* f : {"prog", "sb_probe_fentry_target", "fe"}) {
    try {
      btf_signature(std::span(data + 1, size - 1), "fuzz.o", f);
    } catch (const sb::Error&) {
    }
  }
  // What `springboard inspect` lists must each load as that selection.
  try {
    for (const ElfSelection& listed : list_elf_programs(std::span(data + 1, size - 1), "fuzz.o")) {
      try {
        load_elf(std::span(data + 1, size - 1), "fuzz.o", listed, [](const MapDef&) { return MapAddress{1, 2}; });
      } catch (const sb::Error&) {
      }
    }
  } catch (const sb::Error&) {
  }
  ElfProgram p;
  try {
    p = load_elf(std::span(data + 1, size - 1), "fuzz.o", which, create_map);
  } catch (const sb::Error&) {
    return 0;
  }
  if (p.program.insns.empty()) std::abort();
  if (p.maps.size() != maps) std::abort();
  for (size_t i = 0; i < p.program.insns.size(); i += slot_count(p.program.insns[i]))
    if (is_lddw(p.program.insns[i]) && p.program.insns[i].src != LDDW_IMM64) std::abort();
  try {
    validate(p.program);
  } catch (const sb::Error&) {
  }
  return 0;
}
