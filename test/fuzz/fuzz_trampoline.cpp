// libFuzzer target: arbitrary text through the trampoline description
// parser and, when it parses, the lowering to IR and the IR well-formedness
// check; and through the compact signature parser (sb_program_attach's
// "i64, i64 -> i64"), and as an ELF section name through the attach-point
// parser ("uprobe/PATH:FUNC+OFF", frontend/attach_point.h). None may crash; rejections are sb::Error naming the
// field.
//   tools/fuzz.sh trampoline 60
#include <cstdint>
#include <string_view>

#include "frontend/attach_point.h"
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
  return 0;
}
