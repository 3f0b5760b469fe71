#include "ir/diag.h"

namespace sb {

static std::string join(const std::string& where, const std::string& what) {
  return where.empty() ? what : where + ": " + what;
}

Error::Error(std::string where, std::string what)
    : std::runtime_error(join(where, what)), where_(std::move(where)), what_(std::move(what)) {}

std::string insn_location(const std::string& file, size_t index) {
  return (file.empty() ? std::string("<program>") : file) + ": instruction " + std::to_string(index);
}

}  // namespace sb
