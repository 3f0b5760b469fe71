// Executable memory that is never writable and executable at once (W^X):
// code is copied into a read-write mapping, which is then switched to
// read-execute before anyone can run it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace sb::rt {

class ExecMemory {
 public:
  ExecMemory() = default;
  explicit ExecMemory(std::span<const uint8_t> code);  // throws sb::Error
  // Within +-2 GiB of `near` (for rel32 jumps and rip-relative operands).
  ExecMemory(std::span<const uint8_t> code, const void* near);
  ~ExecMemory();
  ExecMemory(ExecMemory&& o) noexcept;
  ExecMemory& operator=(ExecMemory&& o) noexcept;
  ExecMemory(const ExecMemory&) = delete;
  ExecMemory& operator=(const ExecMemory&) = delete;

  // Reserves pages within +-2 GiB of `near`, read-write, for code to be
  // filled in and sealed: its final address is known before it is built.
  static ExecMemory reserve_near(const void* near, size_t size);
  uint8_t* writable();  // only between reserve_near() and seal()
  void seal();          // read-write -> read-execute, once

  const uint8_t* data() const { return static_cast<const uint8_t*>(base_); }
  size_t size() const { return size_; }

 private:
  void* base_ = nullptr;
  size_t size_ = 0;     // code bytes
  size_t mapped_ = 0;   // whole pages
  bool sealed_ = true;
};

}  // namespace sb::rt
