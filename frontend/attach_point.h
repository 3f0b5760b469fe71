// Attach points in ELF section names as libbpf writes them
// (libbpf.c section_defs and attach_uprobe / attach_trace):
//   uprobe/PATH:FUNC[+OFF]   uretprobe/PATH:FUNC   (PATH may itself contain
//   '/', e.g. "uprobe//proc/self/exe:main"; OFF decimal or 0x hex)
//   usdt/PATH:PROVIDER:NAME  (a <sys/sdt.h> probe; kind Uprobe, `usdt` set)
//   fentry/FUNC   fexit/FUNC   fmod_ret/FUNC
// A bare "uprobe", "uretprobe" or "usdt" names the kind and no target (the
// embedder attaches it by hand). Other sections are not tracing sections.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "frontend/trampoline.h"

namespace sb::bpf {

struct AttachPoint {
  tramp::Kind kind = tramp::Kind::Uprobe;
  bool has_target = false;  // false: a bare "uprobe" / "uretprobe"
  std::string path;         // uprobes: the object holding FUNC ("/proc/self/exe": the executable)
  std::string function;
  uint64_t offset = 0;  // FUNC+OFF
  bool usdt = false;     // a USDT probe: `provider` and `function` (its name) in `path`
  std::string provider;
};

// nullopt: not a tracing section. Throws sb::Error located at `where`
// ("prog.o: section 'uprobe/x'") for a tracing section whose target does
// not parse, saying what was expected.
std::optional<AttachPoint> parse_attach_point(std::string_view section, const std::string& where);

}  // namespace sb::bpf
