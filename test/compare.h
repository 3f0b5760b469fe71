// Runs a program on chosen engines and on the interpreter over the same
// patterned buffer, and expects the same r0 and the same buffer, with and
// without the IR passes: the check behind the operand grids and the
// per-backend execution tests.
#pragma once

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "frontend/assembler.h"
#include "runtime/exec/engines.h"
#include "runtime/exec/interpreter.h"

namespace sb::test {

inline void expect_same_as_interpreter(const std::string& source, size_t mem_size, const std::string& what,
                                       const std::function<bool(const rt::Engine&)>& which) {
  const bpf::Program p = bpf::assemble(source, what.empty() ? "<test>" : what);
  const rt::HelperTable helpers = rt::HelperTable::conformance();
  std::vector<uint8_t> pattern(mem_size);
  for (size_t k = 0; k < mem_size; ++k) pattern[k] = uint8_t(k * 37 + 11);
  std::vector<uint8_t> mem_i = pattern;
  const uint64_t expected = rt::interpret(p, helpers, mem_i.empty() ? nullptr : mem_i.data(), mem_i.size());
  // With the IR passes (a JIT compile) and without: operands built from
  // constants would otherwise be folded before instruction selection.
  for (const bool optimize : {true, false})
    for (const rt::Engine& e : rt::engines()) {
      if (e.kind == rt::EngineKind::Interp || !which(e)) continue;
      const std::string name = e.name + (optimize ? "" : " (IR passes off)");
      rt::RunOptions o;
      o.optimize = optimize;
      std::vector<uint8_t> mem_e = pattern;
      EXPECT_EQ(e.run(p, helpers, mem_e, o), expected) << name << ": " << what;
      for (size_t k = 0; k < mem_size; k += 8) {
        uint64_t got = 0, want = 0;
        std::memcpy(&got, &mem_e[k], std::min<size_t>(8, mem_size - k));
        std::memcpy(&want, &mem_i[k], std::min<size_t>(8, mem_size - k));
        if (got != want) {
          ADD_FAILURE() << name << ": " << what << ": memory differs at result " << k / 8
                        << fmt::format(": {:#x}, interpreter {:#x}", got, want);
          break;
        }
      }
    }
}

// The emulated engine of one architecture.
inline std::function<bool(const rt::Engine&)> emulated(Arch arch) {
  return [arch](const rt::Engine& e) { return e.kind == rt::EngineKind::Emulated && e.arch == arch; };
}

}  // namespace sb::test
