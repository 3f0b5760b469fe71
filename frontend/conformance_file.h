// The bpf_conformance `.data` test format (../shared/conformance/README.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "frontend/bpf.h"

namespace sb::bpf {

struct ConformanceTest {
  std::string name;                  // file stem
  Program program;                   // from `-- raw` when present, else `-- asm`
  std::optional<Program> asm_program;  // `-- asm` assembled, when present
  std::vector<uint8_t> memory;       // `-- mem`, may be empty
  bool has_memory = false;
  std::optional<uint64_t> result;    // `-- result`
  std::optional<std::string> error;  // `-- error`
  bool skipped = false;              // unknown section: the suite skips the file
  std::string skip_reason;
};

// Throws sb::Error naming the file and line on malformed input.
ConformanceTest parse_conformance(std::string_view text, std::string name);
ConformanceTest read_conformance_file(const std::string& path);

// Hex helpers shared with the plugin contract: "0a 1b" / "0a1b" -> bytes.
std::vector<uint8_t> parse_hex_bytes(std::string_view text, const std::string& where);

}  // namespace sb::bpf
