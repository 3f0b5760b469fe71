// libFuzzer target: arbitrary text through the trampoline description
// parser and, when it parses, the lowering to IR and the IR well-formedness
// check; and through the compact signature parser (sb_program_attach's
// "i64, i64 -> i64"), and as an ELF section name through the attach-point
// parser ("uprobe/PATH:FUNC+OFF", frontend/attach_point.h), as a USDT
// note's argument string (runtime/trace/usdt.h) and as a kernel config
// value of each __kconfig type (frontend/kconfig.h). None may crash;
// rejections are sb::Error naming the field.
//   tools/fuzz.sh trampoline 60
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/attach_point.h"
#include "frontend/kconfig.h"
#include "runtime/trace/usdt.h"
#include "frontend/trampoline.h"
#include "ir/diag.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    // A base directory that does not exist keeps "file" programs from reading the disk.
    sb::tramp::Description d = sb::tramp::parse_description(text, "fuzz.json", "/nonexistent-fuzz-dir");
    sb::ir::Module m = sb::tramp::lower(d, sb::tramp::placeholder_bindings(d));
    sb::ir::check(m);
  } catch (const sb::Error&) {
  }
  try {
    sb::ir::Signature sig = sb::tramp::parse_signature(text, "fuzz");
    sb::tramp::frame_of(sig);
  } catch (const sb::Error&) {
  }
  try {
    sb::bpf::parse_attach_point(text, "fuzz.o: section");
  } catch (const sb::Error&) {
  }
  // a USDT note's argument string ("-4@%edi 8@-8(%rbp)", "-4@[sp, 12]", "-8@%lo(x)(a5)"), and its spec
  for (sb::Arch arch : {sb::Arch::X86_64, sb::Arch::Arm64, sb::Arch::Riscv64}) try {
      const std::vector<sb::rt::UsdtArg> args = sb::rt::parse_usdt_args(text, "fuzz: .note.stapsdt", arch);
      if (args.size() > sb::rt::kUsdtMaxArgs || sb::rt::usdt_spec(args, 0).size() != sb::rt::kUsdtSpecSize)
        __builtin_trap();
    } catch (const sb::Error&) {
    }
  try {  // a kernel config value for each kconfig type
    const sb::bpf::KernelConfig config = {{"CONFIG_FUZZ", std::string(text)}};
    for (auto type : {sb::bpf::KconfigType::Bool, sb::bpf::KconfigType::Tristate, sb::bpf::KconfigType::Char,
                      sb::bpf::KconfigType::Int, sb::bpf::KconfigType::CharArray})
      for (uint32_t size : {1u, 2u, 4u, 8u, 16u}) {
        sb::bpf::KconfigExtern e{"CONFIG_FUZZ", type, size, size == 2, false};
        try {
          if (sb::bpf::kconfig_value(e, config, "fuzz").size() != size) __builtin_trap();
        } catch (const sb::Error&) {
        }
      }
  } catch (const sb::Error&) {
  }
  return 0;
}
