// SymbolIndex: dl_iterate_phdr finds the object, libelf reads its file.
#include "runtime/hook/symbols.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

namespace sb::rt {

namespace {

struct Found {
  uint64_t address;
  uint64_t bias = 0;
  std::string path;
  bool found = false;
};

int find_object(dl_phdr_info* info, size_t, void* data) {
  auto* f = static_cast<Found*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const uint64_t lo = info->dlpi_addr + ph.p_vaddr;
    if (f->address >= lo && f->address < lo + ph.p_memsz) {
      f->bias = info->dlpi_addr;
      f->path = info->dlpi_name ? info->dlpi_name : "";
      f->found = true;
      return 1;
    }
  }
  return 0;
}


// The file of a loaded object as dl_iterate_phdr names it ("" for the executable).
std::string object_path(const char* name) {
  if (name && *name) return name;
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

}  // namespace

ElfFile::~ElfFile() {
  if (elf) elf_end(elf);
  if (fd >= 0) close(fd);
}

bool ElfFile::open(const std::string& path) {
  if (elf_version(EV_CURRENT) == EV_NONE) return false;
  fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // the vdso, a deleted file
  elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  return elf && elf_kind(elf) == ELF_K_ELF;
}

std::optional<SymbolIndex> SymbolIndex::of(const void* address) {
  Found f{reinterpret_cast<uint64_t>(address), 0, {}, false};
  dl_iterate_phdr(find_object, &f);
  if (!f.found) return std::nullopt;
  return load(object_path(f.path.c_str()), f.bias);
}

std::vector<LoadedObject> loaded_objects(std::string_view object) {
  std::vector<LoadedObject> all;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        static_cast<std::vector<LoadedObject>*>(data)->push_back({object_path(info->dlpi_name), info->dlpi_addr});
        return 0;
      },
      &all);
  std::vector<LoadedObject> out;
  for (LoadedObject& o : all) {
    if (o.path.empty()) continue;  // the vdso
    if (!object.empty()) {         // a path, or the file's name ("libc.so.6")
      const std::string_view base = std::string_view(o.path).substr(o.path.rfind('/') + 1);
      if (o.path != object && base != object) continue;
    }
    out.push_back(std::move(o));
  }
  return out;
}

std::optional<FunctionSymbol> find_process_function(std::string_view spec, std::string* object) {
  std::string_view want_object, name = spec;
  if (const size_t colon = spec.rfind(':'); colon != std::string_view::npos) {
    want_object = spec.substr(0, colon);
    name = spec.substr(colon + 1);
  }
  for (const LoadedObject& o : loaded_objects(want_object)) {
    const std::optional<SymbolIndex> index = SymbolIndex::load(o.path, o.bias);
    if (!index) continue;
    for (const FunctionSymbol& s : index->functions_)
      if (s.name == name) {
        if (object) *object = o.path;
        return s;
      }
  }
  return std::nullopt;
}

std::optional<SymbolIndex> SymbolIndex::load(const std::string& path, uint64_t bias) {
  if (path.empty()) return std::nullopt;
  ElfFile file;
  if (!file.open(path)) return std::nullopt;

  SymbolIndex index;
  Elf_Scn* symtab = nullptr;
  Elf_Scn* dynsym = nullptr;
  for (Elf_Scn* scn = elf_nextscn(file.elf, nullptr); scn; scn = elf_nextscn(file.elf, scn)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) continue;
    if (sh.sh_type == SHT_SYMTAB) symtab = scn;
    if (sh.sh_type == SHT_DYNSYM) dynsym = scn;
    if ((sh.sh_flags & SHF_ALLOC) && sh.sh_size)
      index.sections_.push_back({bias + sh.sh_addr, bias + sh.sh_addr + sh.sh_size, (sh.sh_flags & SHF_EXECINSTR) != 0});
  }
  Elf_Scn* scn = symtab ? symtab : dynsym;
  if (!scn) return std::nullopt;
  GElf_Shdr sh;
  Elf_Data* data = gelf_getshdr(scn, &sh) ? elf_getdata(scn, nullptr) : nullptr;
  if (!data || !sh.sh_entsize) return std::nullopt;
  const size_t count = sh.sh_size / sh.sh_entsize;
  for (size_t i = 0; i < count; ++i) {
    GElf_Sym sym;
    if (!gelf_getsym(data, int(i), &sym) || sym.st_shndx == SHN_UNDEF || sym.st_shndx >= SHN_LORESERVE) continue;
    const int type = GELF_ST_TYPE(sym.st_info);
    if (type == STT_SECTION || type == STT_FILE || type == STT_TLS) continue;
    const uint64_t start = bias + sym.st_value;
    index.starts_.push_back(start);
    if (type == STT_FUNC && sym.st_size) {
      const char* name = elf_strptr(file.elf, sh.sh_link, sym.st_name);
      index.functions_.push_back({start, sym.st_size, name ? name : ""});
    }
  }
  std::sort(index.functions_.begin(), index.functions_.end(),
            [](const FunctionSymbol& a, const FunctionSymbol& b) { return a.start < b.start; });
  std::sort(index.starts_.begin(), index.starts_.end());
  if (index.functions_.empty()) return std::nullopt;
  return index;
}

std::optional<FunctionSymbol> SymbolIndex::function_at(uint64_t address) const {
  auto it = std::upper_bound(functions_.begin(), functions_.end(), address,
                             [](uint64_t a, const FunctionSymbol& s) { return a < s.start; });
  // Aliases share a start; any one holding the address serves.
  while (it != functions_.begin()) {
    --it;
    if (address < it->start + it->size) return *it;
    if (it->start + (1u << 20) < address) break;  // no function is that long here
  }
  return std::nullopt;
}

uint64_t SymbolIndex::next_symbol(uint64_t address) const {
  uint64_t end = address;
  for (const Section& s : sections_)
    if (s.exec && address >= s.start && address < s.end) end = s.end;
  auto it = std::upper_bound(starts_.begin(), starts_.end(), address);
  return it != starts_.end() && *it < end ? *it : end;
}

bool SymbolIndex::in_section(uint64_t address, uint64_t size) const {
  for (const Section& s : sections_)
    if (address >= s.start && address + size <= s.end) return true;
  return false;
}

bool SymbolIndex::in_code(uint64_t address, uint64_t size) const {
  for (const Section& s : sections_)
    if (s.exec && address >= s.start && address + size <= s.end) return true;
  return false;
}

}  // namespace sb::rt
