#include "runtime/exec/exec_memory.h"

#include <fcntl.h>
#include <pthread.h>
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
    static CodeArena* arena = [] {
      auto* a = new CodeArena;  // never destroyed: code may be freed during exit
      pthread_atfork(&CodeArena::before_fork, &CodeArena::after_fork_parent, &CodeArena::after_fork_child);
      return a;
    }();
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
    bool frozen = false;  // no longer writable through `rw`: takes no new code
  };

  static bool take(Chunk& c, size_t block, size_t& offset) {
    if (c.frozen) return false;
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

  // fork(): the chunks are shared memory, so without care a child and its
  // parent would see each other's code: a block one of them frees and
  // fills again would change what the other runs. The child therefore
  // takes private copies of every chunk (a new memfd, mapped over the old
  // addresses, so every compiled function keeps its address). The parent
  // holds the arena's lock until the child has copied, so no block
  // changes under the copy. posix_spawn and vfork run no fork handlers
  // and share nothing afterwards that would need this.
  static void before_fork() {
    CodeArena& a = get();
    a.mu_.lock();
    a.fork_pipe_[0] = a.fork_pipe_[1] = -1;
    if (!a.chunks_.empty() && pipe2(a.fork_pipe_, O_CLOEXEC) != 0) a.fork_pipe_[0] = a.fork_pipe_[1] = -1;
  }
  static void after_fork_parent() {
    CodeArena& a = get();
    if (a.fork_pipe_[0] >= 0) {
      close(a.fork_pipe_[1]);
      char done;
      while (read(a.fork_pipe_[0], &done, 1) < 0 && errno == EINTR) {
      }  // one byte when the child has copied, or end of file when it died
      close(a.fork_pipe_[0]);
    }
    a.mu_.unlock();
  }
  static void after_fork_child() {
    CodeArena& a = get();
    const int err = errno;
    for (const auto& c : a.chunks_) a.privatize(*c);
    if (a.fork_pipe_[0] >= 0) {
      close(a.fork_pipe_[0]);
      const char done = 1;
      (void)!write(a.fork_pipe_[1], &done, 1);
      close(a.fork_pipe_[1]);
    }
    errno = err;
    a.mu_.unlock();
  }

  // Gives the chunk memory of this process alone, at the same addresses.
  void privatize(Chunk& c) noexcept;

  std::mutex mu_;
  std::vector<std::unique_ptr<Chunk>> chunks_;  // never unmapped: the process's code lives here
  bool unusable_ = false;
  int fork_pipe_[2] = {-1, -1};
};

void CodeArena::privatize(Chunk& c) noexcept {
  const int fd = memfd_create("springboard-code", MFD_CLOEXEC);
  void* copy = MAP_FAILED;
  if (fd >= 0 && ftruncate(fd, off_t(c.size)) == 0)
    copy = mmap(nullptr, c.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (copy != MAP_FAILED) {
    std::memcpy(copy, c.rw, c.size);
    const bool rx = mmap(c.rx, c.size, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED, fd, 0) != MAP_FAILED;
    const bool rw = rx && mmap(c.rw, c.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) != MAP_FAILED;
    munmap(copy, c.size);
    close(fd);
    if (rw) return;
    if (rx) {  // the code is private already; only new code cannot come here
      c.frozen = true;
      return;
    }
  } else if (fd >= 0) {
    close(fd);
  }
  // No new memfd (or it cannot be executable here): anonymous private
  // pages with the same bytes, sealed read-execute; the chunk takes no
  // new code, since its two views no longer alias.
  void* anon = mmap(nullptr, c.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (anon == MAP_FAILED) return;  // out of memory in a fresh child: the old sharing stays
  std::memcpy(anon, c.rw, c.size);
  if (mprotect(anon, c.size, PROT_READ | PROT_EXEC) == 0 &&
      mremap(anon, c.size, c.size, MREMAP_MAYMOVE | MREMAP_FIXED, c.rx) != MAP_FAILED) {
    c.frozen = true;
    return;
  }
  munmap(anon, c.size);
}

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
