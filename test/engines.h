// The tests use the runtime's list of engines (runtime/exec/engines.h).
#pragma once

#include "runtime/exec/engines.h"

namespace sb::test {
using rt::Engine;
using rt::engines;
}  // namespace sb::test
