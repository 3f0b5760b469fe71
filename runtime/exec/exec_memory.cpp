#include "runtime/exec/exec_memory.h"

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

ExecMemory ExecMemory::reserve_near(const void* near, size_t size) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  ExecMemory m;
  m.mapped_ = (std::max<size_t>(size, 1) + page - 1) / page * page;
  m.size_ = size;
  const uintptr_t center = reinterpret_cast<uintptr_t>(near) & ~uintptr_t(page - 1);
  constexpr uintptr_t kReach = uintptr_t(1) << 30;  // well inside +-2 GiB
  for (uintptr_t step = 1 << 20; step < kReach; step += 1 << 20) {
    for (uintptr_t hint : {center - step, center + step}) {
      void* p = mmap(reinterpret_cast<void*>(hint), m.mapped_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (p != MAP_FAILED) {
        m.base_ = p;
        m.sealed_ = false;
        return m;
      }
    }
  }
  throw Error("runtime", "no free memory within 1 GiB of the hooked function");
}

uint8_t* ExecMemory::writable() {
  if (sealed_) throw Error("runtime", "code memory is sealed (never writable and executable)");
  return static_cast<uint8_t*>(base_);
}

void ExecMemory::seal() {
  if (sealed_) return;
  if (mprotect(base_, mapped_, PROT_READ | PROT_EXEC) != 0)
    throw Error("runtime", std::string("mprotect to read-execute failed: ") + strerror(errno));
  __builtin___clear_cache(static_cast<char*>(base_), static_cast<char*>(base_) + size_);
  sealed_ = true;
}

ExecMemory::ExecMemory(std::span<const uint8_t> code, const void* near)
    : ExecMemory(reserve_near(near, code.size())) {
  std::memcpy(writable(), code.data(), code.size());
  seal();
}

ExecMemory::~ExecMemory() {
  if (base_) munmap(base_, mapped_);
}

ExecMemory::ExecMemory(ExecMemory&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)),
      mapped_(std::exchange(o.mapped_, 0)), sealed_(std::exchange(o.sealed_, true)) {}

ExecMemory& ExecMemory::operator=(ExecMemory&& o) noexcept {
  if (this != &o) {
    if (base_) munmap(base_, mapped_);
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    mapped_ = std::exchange(o.mapped_, 0);
    sealed_ = std::exchange(o.sealed_, true);
  }
  return *this;
}

}  // namespace sb::rt
