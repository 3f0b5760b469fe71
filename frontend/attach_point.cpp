// Section names -> attach points; see attach_point.h.
#include "frontend/attach_point.h"

#include <fmt/format.h>

#include "ir/diag.h"

namespace sb::bpf {

namespace {

// libbpf's function names: [a-zA-Z0-9_.@] (symbol versions, gcc's ".cold").
bool function_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '@';
}

uint64_t parse_offset(std::string_view s, const std::string& where, std::string_view section) {
  const bool hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  std::string_view digits = hex ? s.substr(2) : s;
  if (digits.empty()) throw Error(where, fmt::format("'{}': expected an offset after '+'", section));
  uint64_t v = 0;
  for (char c : digits) {
    unsigned d;
    if (c >= '0' && c <= '9') d = unsigned(c - '0');
    else if (hex && c >= 'a' && c <= 'f') d = unsigned(c - 'a' + 10);
    else if (hex && c >= 'A' && c <= 'F') d = unsigned(c - 'A' + 10);
    else throw Error(where, fmt::format("'{}': offset '{}' is not a {} number", section, s, hex ? "hex" : "decimal"));
    const unsigned base = hex ? 16 : 10;
    if (v > (UINT64_MAX - d) / base) throw Error(where, fmt::format("'{}': offset '{}' is too large", section, s));
    v = v * base + d;
  }
  return v;
}

void check_function(std::string_view f, const std::string& where, std::string_view section) {
  if (f.empty()) throw Error(where, fmt::format("'{}': expected a function name", section));
  for (char c : f)
    if (!function_char(c))
      throw Error(where, fmt::format("'{}': '{}' is not a function name (letters, digits, _ . @)", section, f));
}

}  // namespace

std::optional<AttachPoint> parse_attach_point(std::string_view section, const std::string& where) {
  if (section == "usdt" || section.starts_with("usdt/")) {  // usdt/PATH:PROVIDER:NAME
    AttachPoint a;
    a.kind = tramp::Kind::Uprobe;
    a.usdt = true;
    if (section == "usdt") return a;
    std::string_view rest = section.substr(5);
    const size_t c2 = rest.rfind(':');
    const size_t c1 = c2 == std::string_view::npos || c2 == 0 ? std::string_view::npos : rest.rfind(':', c2 - 1);
    if (c1 == std::string_view::npos || c1 == 0)
      throw Error(where, fmt::format("'{}': expected usdt/PATH:PROVIDER:NAME", section));
    a.has_target = true;
    a.path = std::string(rest.substr(0, c1));
    a.provider = std::string(rest.substr(c1 + 1, c2 - c1 - 1));
    a.function = std::string(rest.substr(c2 + 1));
    check_function(a.provider, where, section);
    check_function(a.function, where, section);
    return a;
  }
  static constexpr struct {
    std::string_view prefix;
    tramp::Kind kind;
  } kPrefixes[] = {{"uprobe", tramp::Kind::Uprobe},  {"uretprobe", tramp::Kind::Uretprobe},
                   {"fentry", tramp::Kind::Fentry},  {"fexit", tramp::Kind::Fexit},
                   {"fmod_ret", tramp::Kind::FmodRet}};
  for (const auto& p : kPrefixes) {
    if (!section.starts_with(p.prefix)) continue;
    std::string_view rest = section.substr(p.prefix.size());
    AttachPoint a;
    a.kind = p.kind;
    if (rest.empty()) {
      if (!tramp::is_probe(p.kind))
        throw Error(where, fmt::format("'{}': expected {}/FUNCTION", section, p.prefix));
      return a;
    }
    if (rest[0] != '/') continue;  // "uprobe.s", "fentry.s": not these
    rest.remove_prefix(1);
    a.has_target = true;
    if (!tramp::is_probe(p.kind)) {
      check_function(rest, where, section);
      a.function = std::string(rest);
      return a;
    }
    const size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      throw Error(where, fmt::format("'{}': expected {}/PATH:FUNCTION[+OFFSET]", section, p.prefix));
    a.path = std::string(rest.substr(0, colon));
    std::string_view target = rest.substr(colon + 1);
    if (const size_t plus = target.find('+'); plus != std::string_view::npos) {
      a.offset = parse_offset(target.substr(plus + 1), where, section);
      target = target.substr(0, plus);
    }
    check_function(target, where, section);
    a.function = std::string(target);
    if (p.kind == tramp::Kind::Uretprobe && a.offset)
      throw Error(where, fmt::format("'{}': a uretprobe attaches at a function's entry, not at +{:#x}", section,
                                     a.offset));
    return a;
  }
  return std::nullopt;
}

}  // namespace sb::bpf
