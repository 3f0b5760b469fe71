// libFuzzer target: arbitrary bytes through decode, validate and disassemble.
// None may crash; rejections are sb::Error. Also checks two invariants:
// disassembly always reassembles to the same slots, and function_starts /
// branch_target stay inside a validated program.
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     test/fuzz/fuzz_bytecode.cpp frontend/{decoder,validator,disassembler,assembler}.cpp ir/diag.cpp -lfmt
#include <cstdint>
#include <cstdlib>
#include <span>

#include "frontend/assembler.h"
#include "frontend/decoder.h"
#include "frontend/disassembler.h"
#include "frontend/validator.h"
#include "ir/diag.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sb::bpf;
  Program p;
  try {
    p = decode(std::span(data, size), "fuzz.bin");
  } catch (const sb::Error&) {
    return 0;
  }

  std::string text = disassemble(p);
  if (assemble(text, "fuzz.s").insns != p.insns) std::abort();

  ValidateOptions opts;
  opts.helper_exists = [](uint32_t id) { return id < 8; };
  try {
    validate(p, opts);
  } catch (const sb::Error&) {
    (void)function_starts(p);  // must tolerate invalid programs too
    return 0;
  }
  for (size_t start : function_starts(p))
    if (start >= p.insns.size()) std::abort();
  for (size_t i = 0; i < p.insns.size(); i += slot_count(p.insns[i])) {
    std::optional<int64_t> target = branch_target(p.insns[i], i);
    if (target && (*target < 0 || *target >= int64_t(p.insns.size()))) std::abort();
  }
  return 0;
}
