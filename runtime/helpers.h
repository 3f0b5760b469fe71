// Helper functions a program calls by id (`call N`), registered by the
// embedder. Every engine (interpreter, native JIT, Unicorn) resolves ids
// through one HelperTable, so a helper behaves the same everywhere.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sb::rt {

using HelperFn = uint64_t (*)(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);

struct Helper {
  uint32_t id = 0;
  std::string name;
  HelperFn fn = nullptr;
  // ubpf's "unwind" extension: when the helper returns 0 the whole program
  // ends with r0 = 0 (conformance helper 5, see call_unwind_fail.data).
  bool unwind_on_zero = false;
};

class HelperTable {
 public:
  // Replaces an existing helper with the same id.
  void add(uint32_t id, std::string name, HelperFn fn, bool unwind_on_zero = false);
  const Helper* find(uint32_t id) const;
  const std::vector<Helper>& all() const { return helpers_; }  // ascending ids

  // The set the conformance suite expects: helper 5 "unwind" returns its
  // argument and unwinds when that argument is 0.
  static HelperTable conformance();

 private:
  std::vector<Helper> helpers_;
};

}  // namespace sb::rt
