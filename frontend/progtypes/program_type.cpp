// The registry of program types and libbpf's section names for them.
#include "frontend/progtypes/program_type.h"

#include <array>

namespace sb::bpf {

const CtxField* ContextLayout::field_at(uint32_t offset) const {
  for (const CtxField& f : fields)
    if (offset >= f.offset && offset < uint32_t(f.offset) + f.size) return &f;
  return nullptr;
}

namespace {

// r1 = memory of r2 bytes, no context; any helper; any return value.
constexpr ProgramType kRaw{.name = "raw", .kernel_type = 0, .ctx = {}, .raw_memory = true};

// Every type, in the order listings show them. A new type: its table in
// its own file, declared here.
constexpr std::array<const ProgramType*, 1> kTypes = {&kRaw};

// libbpf's section names (libbpf.c section_defs): an exact name, or a
// prefix followed by '/' and an attach point. Longer prefixes first where
// one is a prefix of another.
struct SectionRule {
  std::string_view prefix;
  const ProgramType* type;
  bool takes_attach;  // "prefix/ATTACH" (and the bare prefix where libbpf allows it)
};
constexpr std::array<SectionRule, 0> kSections = {};

}  // namespace

const ProgramType& raw_program_type() { return kRaw; }

const ProgramType* find_program_type(std::string_view name) {
  for (const ProgramType* t : kTypes)
    if (t->name == name) return t;
  return nullptr;
}

std::optional<SectionType> program_type_for_section(std::string_view section) {
  for (const SectionRule& r : kSections) {
    if (section == r.prefix) return SectionType{r.type, {}};
    if (r.takes_attach && section.size() > r.prefix.size() && section.substr(0, r.prefix.size()) == r.prefix &&
        section[r.prefix.size()] == '/')
      return SectionType{r.type, std::string(section.substr(r.prefix.size() + 1))};
  }
  return std::nullopt;
}

std::span<const ProgramType* const> program_types() { return kTypes; }

std::string program_type_names() {
  std::string out;
  for (const ProgramType* t : kTypes) {
    if (!out.empty()) out += ", ";
    out += t->name;
  }
  return out;
}

}  // namespace sb::bpf
