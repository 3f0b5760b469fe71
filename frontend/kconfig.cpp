// `extern __kconfig` values; see kconfig.h.
#include "frontend/kconfig.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "ir/diag.h"

namespace sb::bpf {

namespace {

// "6.1.0-26-amd64" -> KERNEL_VERSION(6, 1, 0), the sublevel capped at 255 as the kernel's macro.
uint32_t running_kernel_version() {
  utsname u{};
  if (uname(&u) != 0) return 0;
  unsigned a = 0, b = 0, c = 0;
  if (std::sscanf(u.release, "%u.%u.%u", &a, &b, &c) < 2) return 0;
  return (a << 16) + (b << 8) + std::min(c, 255u);
}

// LINUX_*: what libbpf computes itself rather than reads from the config.
std::optional<std::string> linux_value(const std::string& name) {
  if (name == "LINUX_KERNEL_VERSION") return std::to_string(running_kernel_version());
  if (name == "LINUX_HAS_BPF_COOKIE") return "y";
#if defined(__x86_64__) || defined(__aarch64__)
  if (name == "LINUX_HAS_SYSCALL_WRAPPER") return "y";
#else
  if (name == "LINUX_HAS_SYSCALL_WRAPPER") return "n";
#endif
  return std::nullopt;
}

bool parse_number(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 0);
  if (errno == ERANGE || *end != '\0') {
    errno = 0;
    const unsigned long long u = std::strtoull(s.c_str(), &end, 0);
    if (errno == ERANGE || *end != '\0') return false;
    out = int64_t(u);
    return true;
  }
  out = v;
  return true;
}

}  // namespace

const KernelConfig& running_kernel_config() {
  static const KernelConfig config = [] {
    KernelConfig c;
    utsname u{};
    if (uname(&u) != 0) return c;
    std::ifstream in(fmt::format("/boot/config-{}", u.release));
    std::string line;
    while (std::getline(in, line)) {
      if (!line.starts_with("CONFIG_")) continue;  // "# CONFIG_X is not set" is n, as absent
      const size_t eq = line.find('=');
      if (eq == std::string::npos) continue;
      c[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return c;
  }();
  return config;
}

std::vector<uint8_t> kconfig_value(const KconfigExtern& e, const KernelConfig& config, const std::string& where) {
  std::vector<uint8_t> out(e.size, 0);
  std::optional<std::string> v = linux_value(e.name);
  if (!v && e.name.starts_with("CONFIG_"))
    if (auto it = config.find(e.name); it != config.end()) v = it->second;
  if (!v) {
    if (e.weak) return out;
    throw Error(where, fmt::format("extern (kcfg) '{}': value not found (not a LINUX_* name Springboard defines, nor "
                                   "in the running kernel's config; declare it __weak to get 0)",
                                   e.name));
  }
  const std::string& s = *v;
  const bool tri = s == "y" || s == "m" || s == "n";
  auto bad = [&](const char* what) {
    return Error(where, fmt::format("extern (kcfg) '{}': value '{}' cannot be {}", e.name, s, what));
  };
  switch (e.type) {
    case KconfigType::Bool:
      if (s == "m") throw bad("a bool (it is a module)");
      if (!tri) throw bad("a bool");
      out[0] = s == "y";
      return out;
    case KconfigType::Tristate:  // enum libbpf_tristate: TRI_NO 0, TRI_YES 1, TRI_MODULE 2
      if (!tri) throw bad("a tristate");
      out[0] = s == "y" ? 1 : s == "m" ? 2 : 0;
      return out;
    case KconfigType::Char:
      if (!tri) throw bad("a char ('y', 'm' or 'n')");
      out[0] = uint8_t(s[0]);
      return out;
    case KconfigType::CharArray: {
      if (s.size() < 2 || s.front() != '"' || s.back() != '"') throw bad("a string (not quoted)");
      const std::string body = s.substr(1, s.size() - 2);
      if (body.size() + 1 > e.size) throw bad(fmt::format("held by char[{}]", e.size).c_str());
      std::memcpy(out.data(), body.data(), body.size());
      return out;
    }
    case KconfigType::Int: {
      int64_t n = 0;
      if (tri) n = s == "y" ? 1 : 0;  // libbpf allows y/n for an integer (1 / 0)
      else if (!parse_number(s, n)) throw bad("an integer");
      if (e.size < 8) {
        const int bits = int(8 * e.size);
        const bool fits = e.is_signed ? (n >= -(int64_t(1) << (bits - 1)) && n < (int64_t(1) << (bits - 1)))
                                      : (uint64_t(n) >> bits) == 0;
        if (!fits) throw bad(fmt::format("held by a {}-byte integer", e.size).c_str());
      }
      std::memcpy(out.data(), &n, std::min<size_t>(e.size, 8));
      return out;
    }
  }
  return out;
}

}  // namespace sb::bpf
