// The architectures Springboard generates code for.
#pragma once

#include <cstdint>

namespace sb {

enum class Arch : uint8_t { X86_64, Arm64, Riscv64 };

}  // namespace sb
