// Build ids and file offsets of this process's ips (see build_id.h).
#include "runtime/trace/build_id.h"

#include <elf.h>
#include <link.h>
#include <sys/auxv.h>

#include <algorithm>
#include <cstring>

namespace sb::rt {

namespace {

// The NT_GNU_BUILD_ID note among an object's PT_NOTE segments (in memory,
// where the loader mapped them), as the kernel's build_id_parse takes it:
// a "GNU" note of type 3 with 1-20 bytes of descriptor, zero-padded.
bool note_build_id(const dl_phdr_info& info, uint8_t id[20]) {
  for (int i = 0; i < info.dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info.dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const auto* p = reinterpret_cast<const uint8_t*>(info.dlpi_addr + ph.p_vaddr);
    size_t left = ph.p_memsz;
    while (left >= sizeof(ElfW(Nhdr))) {
      ElfW(Nhdr) n;
      std::memcpy(&n, p, sizeof n);
      const size_t name = (n.n_namesz + 3) & ~size_t(3), desc = (n.n_descsz + 3) & ~size_t(3);
      if (sizeof n + name + desc > left) break;
      if (n.n_type == NT_GNU_BUILD_ID && n.n_namesz == 4 && std::memcmp(p + sizeof n, "GNU", 4) == 0 &&
          n.n_descsz > 0 && n.n_descsz <= 20) {
        std::memset(id, 0, 20);
        std::memcpy(id, p + sizeof n + name, n.n_descsz);
        return true;
      }
      p += sizeof n + name + desc;
      left -= sizeof n + name + desc;
    }
  }
  return false;
}

struct Search {
  uint64_t ip;
  uint64_t vdso;
  StackBuildId* out;
  bool found;
};

int visit(dl_phdr_info* info, size_t, void* data) {
  auto* s = static_cast<Search*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const uint64_t start = info->dlpi_addr + ph.p_vaddr;
    if (s->ip < start || s->ip - start >= ph.p_memsz) continue;
    // The vDSO is no file to the kernel; bytes past the file's (.bss) are anonymous.
    if (s->vdso && reinterpret_cast<uint64_t>(info->dlpi_phdr) - s->vdso < 4096) return 1;
    if (s->ip - start >= ph.p_filesz) return 1;
    if (!note_build_id(*info, s->out->build_id)) return 1;
    s->out->status = kBuildIdValid;
    s->out->offset_or_ip = ph.p_offset + (s->ip - start);
    s->found = true;
    return 1;
  }
  return 0;
}

}  // namespace

void build_id_offsets(const uint64_t* ips, size_t n, StackBuildId* out) {
  const uint64_t vdso = getauxval(AT_SYSINFO_EHDR);
  for (size_t i = 0; i < n; ++i) {
    StackBuildId& e = out[i];
    std::memset(&e, 0, sizeof e);
    Search s{ips[i], vdso, &e, false};
    dl_iterate_phdr(visit, &s);
    if (!s.found) {
      std::memset(&e, 0, sizeof e);
      e.status = kBuildIdIp;
      e.offset_or_ip = ips[i];
    }
  }
}

}  // namespace sb::rt
