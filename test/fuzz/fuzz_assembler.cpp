// libFuzzer target: arbitrary text through the assembler and the conformance
// file parser. Neither may crash; rejections are sb::Error. Whatever
// assembles must survive disassemble -> assemble unchanged.
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     test/fuzz/fuzz_assembler.cpp frontend/{decoder,disassembler,assembler,conformance_file}.cpp ir/diag.cpp -lfmt
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "frontend/assembler.h"
#include "frontend/conformance_file.h"
#include "frontend/disassembler.h"
#include "ir/diag.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sb::bpf;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    Program p = assemble(text, "fuzz.s");
    if (assemble(disassemble(p), "fuzz-disassembled.s").insns != p.insns) std::abort();
  } catch (const sb::Error&) {
  }
  try {
    (void)parse_conformance(text, "fuzz.data");
  } catch (const sb::Error&) {
  }
  return 0;
}
