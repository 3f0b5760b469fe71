// The tests use the runtime's list of engines (runtime/engines.h).
#pragma once

#include "runtime/engines.h"

namespace sb::test {
using rt::Engine;
using rt::engines;
}  // namespace sb::test
