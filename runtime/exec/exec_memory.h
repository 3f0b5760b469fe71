// Executable memory that is never writable and executable at once (W^X).
//
// Compiled code (ExecMemory(code)) comes from one process-wide arena: chunks
// of a memfd mapped twice, read-execute where code runs and read-write
// elsewhere where it is copied in, so a compile neither maps nor protects
// pages, and freed code goes back to the arena for the next compile (the
// mapping count stays bounded however many programs come and go). Where
// the kernel refuses executable memfd mappings, each code gets its own
// pages instead, written read-write and switched to read-execute.
//
// A fork()ed child gets private copies of the arena at the same addresses,
// so neither process's later compiles and frees change the other's code.
//
// Memory near an address (reserve_near, for the hooks' rel32 jumps) is its
// own pages, filled in while read-write and then sealed read-execute.
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

  // The arena's mappings now (two per chunk; for tests).
  static size_t arena_mappings();

 private:
  void release() noexcept;
  void* base_ = nullptr;
  size_t size_ = 0;     // code bytes
  size_t mapped_ = 0;   // own pages (0: a block of the arena)
  size_t block_ = 0;    // arena block bytes
  bool sealed_ = true;
};

}  // namespace sb::rt
