#include "runtime/exec/exec_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "ir/diag.h"

namespace sb::rt {

namespace {

size_t page_size() {
  static const size_t page = size_t(sysconf(_SC_PAGESIZE));
  return page;
}
size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

[[noreturn]] void fail(const char* what, int err) {
  throw Error("runtime", std::string(what) + ": " + strerror(err));
}

// The code arena: chunks of a memfd, each mapped read-execute (where code
// runs) and read-write (where it is copied in), carved into blocks by a
// first-fit free list that merges neighbours when code is freed.
class CodeArena {
 public:
  static constexpr size_t kChunk = size_t(1) << 20;  // 1 MiB: two mappings per MiB of live code
  static constexpr size_t kAlign = 64;               // a cache line per program

  static CodeArena& get() {
    static CodeArena* arena = new CodeArena;  // never destroyed: code may be freed during exit
    return *arena;
  }

  // The executable address of a block holding `code`, or null when the
  // kernel refuses executable memfd mappings (the caller falls back).
  void* allocate(std::span<const uint8_t> code, size_t& block) {
    block = round_up(std::max<size_t>(code.size(), 1), kAlign);
    std::lock_guard lock(mu_);
    if (unusable_) return nullptr;
    Chunk* chunk = nullptr;
    size_t offset = 0;
    for (const auto& c : chunks_)
      if (take(*c, block, offset)) {
        chunk = c.get();
        break;
      }
    if (!chunk) {
      chunk = add_chunk(std::max(kChunk, round_up(block, page_size())));
      if (!chunk) return nullptr;
      take(*chunk, block, offset);
    }
    std::memcpy(chunk->rw + offset, code.data(), code.size());
    uint8_t* at = chunk->rx + offset;
    __builtin___clear_cache(reinterpret_cast<char*>(at), reinterpret_cast<char*>(at + code.size()));
    return at;
  }

  void free(void* p, size_t block) noexcept {
    std::lock_guard lock(mu_);
    auto* at = static_cast<uint8_t*>(p);
    for (const auto& c : chunks_) {
      if (at < c->rx || at >= c->rx + c->size) continue;
      const size_t offset = size_t(at - c->rx);
      auto next = c->free.lower_bound(offset);
      size_t start = offset, size = block;
      if (next != c->free.end() && offset + block == next->first) {
        size += next->second;
        next = c->free.erase(next);
      }
      if (next != c->free.begin()) {
        auto prev = std::prev(next);
        if (prev->first + prev->second == offset) {
          start = prev->first;
          size += prev->second;
          c->free.erase(prev);
        }
      }
      c->free.emplace(start, size);
      return;
    }
  }

  size_t mappings() {
    std::lock_guard lock(mu_);
    return 2 * chunks_.size();
  }

 private:
  struct Chunk {
    uint8_t* rx;
    uint8_t* rw;
    size_t size;
    std::map<size_t, size_t> free;  // offset -> bytes
  };

  static bool take(Chunk& c, size_t block, size_t& offset) {
    for (auto it = c.free.begin(); it != c.free.end(); ++it) {
      if (it->second < block) continue;
      offset = it->first;
      const size_t rest = it->second - block;
      c.free.erase(it);
      if (rest) c.free.emplace(offset + block, rest);
      return true;
    }
    return false;
  }

  Chunk* add_chunk(size_t size) {
    const int fd = memfd_create("springboard-code", MFD_CLOEXEC);
    if (fd < 0) return give_up();
    if (ftruncate(fd, off_t(size)) != 0) {
      const int e = errno;
      close(fd);
      fail("growing the code arena", e);
    }
    void* rx = mmap(nullptr, size, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    if (rx == MAP_FAILED) {
      close(fd);
      return give_up();  // e.g. vm.memfd_noexec
    }
    void* rw = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const int e = errno;
    close(fd);  // the mappings keep the memory
    if (rw == MAP_FAILED) {
      munmap(rx, size);
      fail("mapping the code arena", e);
    }
    auto c = std::make_unique<Chunk>(Chunk{static_cast<uint8_t*>(rx), static_cast<uint8_t*>(rw), size, {}});
    c->free.emplace(0, size);
    chunks_.push_back(std::move(c));
    return chunks_.back().get();
  }
  Chunk* give_up() {
    unusable_ = true;
    return nullptr;
  }

  std::mutex mu_;
  std::vector<std::unique_ptr<Chunk>> chunks_;  // never unmapped: the process's code lives here
  bool unusable_ = false;
};

}  // namespace

ExecMemory::ExecMemory(std::span<const uint8_t> code) : size_(code.size()) {
  base_ = CodeArena::get().allocate(code, block_);
  if (base_) return;
  // No executable memfd: pages of its own, read-write, then read-execute.
  block_ = 0;
  mapped_ = round_up(std::max<size_t>(code.size(), 1), page_size());
  base_ = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base_ == MAP_FAILED) {
    base_ = nullptr;
    fail("mmap of code memory failed", errno);
  }
  std::memcpy(base_, code.data(), code.size());
  if (mprotect(base_, mapped_, PROT_READ | PROT_EXEC) != 0) {
    int e = errno;
    munmap(base_, mapped_);
    base_ = nullptr;
    fail("mprotect to read-execute failed", e);
  }
  __builtin___clear_cache(static_cast<char*>(base_), static_cast<char*>(base_) + code.size());
}

ExecMemory ExecMemory::reserve_near(const void* near, size_t size) {
  const size_t page = page_size();
  ExecMemory m;
  m.mapped_ = round_up(std::max<size_t>(size, 1), page);
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
  if (mprotect(base_, mapped_, PROT_READ | PROT_EXEC) != 0) fail("mprotect to read-execute failed", errno);
  __builtin___clear_cache(static_cast<char*>(base_), static_cast<char*>(base_) + size_);
  sealed_ = true;
}

ExecMemory::ExecMemory(std::span<const uint8_t> code, const void* near)
    : ExecMemory(reserve_near(near, code.size())) {
  std::memcpy(writable(), code.data(), code.size());
  seal();
}

size_t ExecMemory::arena_mappings() { return CodeArena::get().mappings(); }

void ExecMemory::release() noexcept {
  if (!base_) return;
  if (block_)
    CodeArena::get().free(base_, block_);
  else
    munmap(base_, mapped_);
  base_ = nullptr;
}

ExecMemory::~ExecMemory() { release(); }

ExecMemory::ExecMemory(ExecMemory&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)),
      mapped_(std::exchange(o.mapped_, 0)), block_(std::exchange(o.block_, 0)),
      sealed_(std::exchange(o.sealed_, true)) {}

ExecMemory& ExecMemory::operator=(ExecMemory&& o) noexcept {
  if (this != &o) {
    release();
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    mapped_ = std::exchange(o.mapped_, 0);
    block_ = std::exchange(o.block_, 0);
    sealed_ = std::exchange(o.sealed_, true);
  }
  return *this;
}

}  // namespace sb::rt
