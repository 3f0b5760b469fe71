// The tests use the runtime's list of engines (runtime/exec/engines.h).
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/exec/engines.h"

namespace sb::test {
using rt::Engine;
using rt::engines;

// For tests parameterised by engine: every engine, and its name as the
// test's suffix.
inline std::vector<const Engine*> all_engines() {
  std::vector<const Engine*> out;
  for (const Engine& e : engines()) out.push_back(&e);
  return out;
}
inline std::string engine_name(const ::testing::TestParamInfo<const Engine*>& i) { return i.param->name; }
}  // namespace sb::test
