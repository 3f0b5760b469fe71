// Diagnostics shared by every layer: one exception type that carries where
// the fault is (file, instruction index or field) so the CLI can print a
// message that names them and exit non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace sb {

class Error : public std::runtime_error {
 public:
  // `where` is e.g. "prog.bin: instruction 12" or "desc.json: field args[3]";
  // it may be empty when no location applies.
  Error(std::string where, std::string what);
  const std::string& where() const { return where_; }
  const std::string& message() const { return what_; }

 private:
  std::string where_;
  std::string what_;
};

// "FILE: instruction N" — the location format every bytecode error uses.
std::string insn_location(const std::string& file, size_t index);

}  // namespace sb
