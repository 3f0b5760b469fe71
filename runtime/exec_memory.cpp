#include "runtime/exec_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "ir/diag.h"

namespace sb::rt {

ExecMemory::ExecMemory(std::span<const uint8_t> code) : size_(code.size()) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  mapped_ = (std::max<size_t>(code.size(), 1) + page - 1) / page * page;
  base_ = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base_ == MAP_FAILED) {
    base_ = nullptr;
    throw Error("runtime", std::string("mmap of code memory failed: ") + strerror(errno));
  }
  std::memcpy(base_, code.data(), code.size());
  if (mprotect(base_, mapped_, PROT_READ | PROT_EXEC) != 0) {
    int e = errno;
    munmap(base_, mapped_);
    base_ = nullptr;
    throw Error("runtime", std::string("mprotect to read-execute failed: ") + strerror(e));
  }
  __builtin___clear_cache(static_cast<char*>(base_), static_cast<char*>(base_) + code.size());
}

ExecMemory::~ExecMemory() {
  if (base_) munmap(base_, mapped_);
}

ExecMemory::ExecMemory(ExecMemory&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)), mapped_(std::exchange(o.mapped_, 0)) {}

ExecMemory& ExecMemory::operator=(ExecMemory&& o) noexcept {
  if (this != &o) {
    if (base_) munmap(base_, mapped_);
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    mapped_ = std::exchange(o.mapped_, 0);
  }
  return *this;
}

}  // namespace sb::rt
