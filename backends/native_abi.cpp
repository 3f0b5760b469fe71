#include "backends/native_abi.h"

namespace sb::backend {

std::vector<WordLocation> classify_args(const ir::Signature& sig, const CallingConvention& cc) {
  std::vector<WordLocation> out;
  uint8_t next_int = 0, next_fp = 0, next_stack = 0;
  auto on_stack = [&](bool f32) { out.push_back({WordLocation::Stack, next_stack++, f32}); };
  auto in_int = [&](bool f32) { out.push_back({WordLocation::IntReg, next_int++, f32}); };
  for (const ir::NativeValue& a : sig.args) {
    const uint32_t words = a.words();
    const bool f32 = a.type == ir::Type::F32;
    if (a.is_fp()) {
      if (next_fp < cc.fp_regs)
        out.push_back({WordLocation::FpReg, next_fp++, f32});
      else if (cc.fp_falls_back_to_int && next_int < cc.int_regs)
        in_int(f32);
      else
        on_stack(f32);
      continue;
    }
    if (next_int + words <= cc.int_regs) {
      for (uint32_t w = 0; w < words; ++w) in_int(false);
    } else if (cc.struct_splits && next_int < cc.int_regs) {
      in_int(false);
      for (uint32_t w = 1; w < words; ++w) on_stack(false);
    } else {
      for (uint32_t w = 0; w < words; ++w) on_stack(false);
      if (cc.stack_closes_int_regs) next_int = cc.int_regs;
    }
  }
  return out;
}

uint32_t stack_slots(const std::vector<WordLocation>& locs) {
  uint32_t n = 0;
  for (const WordLocation& l : locs)
    if (l.kind == WordLocation::Stack) n = std::max<uint32_t>(n, l.index + 1u);
  return n;
}

}  // namespace sb::backend
