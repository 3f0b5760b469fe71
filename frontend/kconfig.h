// The values of `extern ... __kconfig` variables, as libbpf resolves them
// (libbpf.c bpf_object__read_kconfig_file / set_kcfg_value_*): the
// LINUX_* names libbpf defines itself, and CONFIG_* options from the
// running kernel's config (/boot/config-$(uname -r) or /proc/config.gz is
// what libbpf reads; Springboard reads the /boot file).
//
//   LINUX_KERNEL_VERSION        u32 KERNEL_VERSION(a, b, c) of uname -r
//   LINUX_HAS_BPF_COOKIE        true: every Springboard attachment has a cookie
//                               (libbpf's usdt.bpf.h then reads the USDT spec id
//                               from bpf_get_attach_cookie)
//   LINUX_HAS_SYSCALL_WRAPPER   true on x86-64 and arm64, as their kernels
//   CONFIG_X                    y / m / n, a number or a "string", typed by
//                               the variable: bool, tristate (enum libbpf_tristate),
//                               char ('y', 'm', 'n'), an integer, a char array
// An extern with no value is an error unless it is __weak (then zero), as
// libbpf's "extern (kcfg) 'X': value not found".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sb::bpf {

// How the object declares the variable (its BTF type, resolved).
enum class KconfigType { Bool, Tristate, Char, Int, CharArray };

struct KconfigExtern {
  std::string name;
  KconfigType type = KconfigType::Int;
  uint32_t size = 0;  // bytes
  bool is_signed = false;
  bool weak = false;
};

// The most bytes the externs take together: they are one value of the
// ".kconfig" array map, and the kernel's array map refuses a value above
// KMALLOC_MAX_SIZE (4 MiB on x86-64 with 4 KiB pages) with E2BIG. A BTF
// array type can claim far more than the object holds; it is refused here
// before anything that size is allocated.
constexpr uint64_t kMaxKconfigBytes = 4ull << 20;

// The running kernel's configuration: CONFIG_X -> its right-hand side.
using KernelConfig = std::map<std::string, std::string>;
// Read once per process; empty when the file is missing.
const KernelConfig& running_kernel_config();

// The `size` bytes of `e`'s value. Throws sb::Error located at `where` for a
// value the type cannot hold or a missing non-weak one.
std::vector<uint8_t> kconfig_value(const KconfigExtern& e, const KernelConfig& config, const std::string& where);

}  // namespace sb::bpf
