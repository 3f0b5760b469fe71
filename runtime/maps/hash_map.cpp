// The four hash maps (maps.h: HashMap): hash, per-CPU hash, LRU hash and
// LRU per-CPU hash, with the kernel's update flags and errors
// (kernel/bpf/hashtab.c).
#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "runtime/maps/map_support.h"
#include "runtime/maps/maps.h"

namespace sb::rt {

using namespace map_support;

namespace {
bool is_per_cpu(uint32_t type) {
  return type == uint32_t(MapType::PerCpuHash) || type == uint32_t(MapType::LruPerCpuHash);
}
bool is_lru(uint32_t type) { return type == uint32_t(MapType::LruHash) || type == uint32_t(MapType::LruPerCpuHash); }
}  // namespace

HashMap::HashMap(MapSpec spec, unsigned num_cpus, std::function<unsigned()> current_cpu)
    : Map(std::move(spec)),
      per_cpu_(is_per_cpu(this->spec().type)),
      lru_(is_lru(this->spec().type)),
      copies_(per_cpu_ ? std::max(1u, num_cpus) : 1),
      current_cpu_(current_cpu ? std::move(current_cpu) : default_cpu),
      key_stride_(round8(this->spec().key_size)),
      value_stride_(round8(this->spec().value_size)),
      slot_size_(key_stride_ + value_stride_ * copies_),
      storage_(checked_bytes(this->spec(), slot_size_, this->spec().max_entries)) {
  const uint32_t n = this->spec().max_entries;
  free_.reserve(n);
  for (uint32_t s = n; s-- > 0;) free_.push_back(s);  // slot 0 first
  index_.reserve(n);
  used_.assign(n, 0);
  if (lru_) {
    prev_.assign(n, kNone);
    next_.assign(n, kNone);
  }
}

void HashMap::unlink(uint32_t slot) {
  const uint32_t p = prev_[slot], n = next_[slot];
  (p == kNone ? head_ : next_[p]) = n;
  (n == kNone ? tail_ : prev_[n]) = p;
  prev_[slot] = next_[slot] = kNone;
}

void HashMap::push_front(uint32_t slot) {
  prev_[slot] = kNone;
  next_[slot] = head_;
  (head_ == kNone ? tail_ : prev_[head_]) = slot;
  head_ = slot;
}

uint32_t HashMap::take_slot() {
  if (!free_.empty()) {
    const uint32_t s = free_.back();
    free_.pop_back();
    return s;
  }
  if (!lru_ || tail_ == kNone) return kNone;
  const uint32_t victim = tail_;
  unlink(victim);
  index_.erase(std::string(reinterpret_cast<const char*>(key_at(victim)), spec().key_size));
  return victim;
}

void* HashMap::lookup(const void* key) {
  std::string k(static_cast<const char*>(key), spec().key_size);
  std::lock_guard lock(mutex_);
  auto it = index_.find(k);
  if (it == index_.end()) return nullptr;
  if (lru_) {
    unlink(it->second);
    push_front(it->second);
  }
  return value_at(it->second, per_cpu_ ? current_cpu_() % copies_ : 0);
}

// `value`: one value (a program's update: its CPU's copy) or, with
// all_cpus, one per copy (user space's update).
int64_t HashMap::update_locked(const std::string& k, const void* value, uint64_t flags, bool all_cpus) {
  if (flags > kUpdateExist) return -EINVAL;
  const auto* v = static_cast<const uint8_t*>(value);
  const uint32_t vs = spec().value_size;
  auto write = [&](uint32_t slot, bool fresh) {
    if (all_cpus) {
      for (unsigned c = 0; c < copies_; ++c) copy_map_value(spec(), value_at(slot, c), v + size_t(c) * vs, fresh);
      return;
    }
    const unsigned mine = per_cpu_ ? current_cpu_() % copies_ : 0;
    for (unsigned c = 0; c < copies_; ++c)
      if (c == mine) copy_map_value(spec(), value_at(slot, c), v, fresh);  // per-CPU maps hold no lock
      else if (fresh) std::memset(value_at(slot, c), 0, value_stride_);
  };
  auto it = index_.find(k);
  if (it != index_.end()) {
    if (flags == kUpdateNoExist) return -EEXIST;
    write(it->second, false);
    if (lru_) {
      unlink(it->second);
      push_front(it->second);
    }
    return 0;
  }
  if (flags == kUpdateExist) return -ENOENT;
  const uint32_t slot = take_slot();
  if (slot == kNone) return -E2BIG;
  std::memcpy(key_at(slot), k.data(), spec().key_size);
  write(slot, true);
  index_.emplace(k, slot);
  used_[slot] = 1;
  if (lru_) push_front(slot);
  return 0;
}

int64_t HashMap::update(const void* key, const void* value, uint64_t flags) {
  std::string k(static_cast<const char*>(key), spec().key_size);
  std::lock_guard lock(mutex_);
  return update_locked(k, value, flags, false);
}

int64_t HashMap::update_cpus(const void* key, const void* values, uint64_t flags) {
  std::string k(static_cast<const char*>(key), spec().key_size);
  std::lock_guard lock(mutex_);
  return update_locked(k, values, flags, true);
}

int64_t HashMap::remove(const void* key) {
  std::string k(static_cast<const char*>(key), spec().key_size);
  std::lock_guard lock(mutex_);
  auto it = index_.find(k);
  if (it == index_.end()) return -ENOENT;
  if (lru_) unlink(it->second);
  free_.push_back(it->second);
  used_[it->second] = 0;
  index_.erase(it);
  return 0;
}

// In slot order (the kernel walks its buckets, in hash order). An element
// added during the walk is seen when its slot is still ahead, one removed
// is not seen once removed: the kernel's walk makes no promise either.
void* HashMap::next_element(uint64_t* cursor, void* key) {
  std::lock_guard lock(mutex_);
  for (uint64_t s = *cursor; s < used_.size(); ++s)
    if (used_[s]) {
      *cursor = s + 1;
      std::memcpy(key, key_at(uint32_t(s)), spec().key_size);
      return value_at(uint32_t(s), per_cpu_ ? current_cpu_() % copies_ : 0);
    }
  *cursor = used_.size();
  return nullptr;
}

size_t HashMap::size() const {
  std::lock_guard lock(mutex_);
  return index_.size();
}

void HashMap::for_each(
    const std::function<void(std::span<const uint8_t> key, std::span<uint8_t> value)>& fn) const {
  std::lock_guard lock(mutex_);
  for (const auto& [k, slot] : index_) fn({key_at(slot), spec().key_size}, {value_at(slot), spec().value_size});
}

std::vector<MapEntry> HashMap::entries() const {
  std::vector<MapEntry> out;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [k, slot] : index_) {
      MapEntry e{bytes(key_at(slot), spec().key_size), {}};
      for (unsigned c = 0; c < copies_; ++c) e.values.push_back(bytes(value_at(slot, c), spec().value_size));
      out.push_back(std::move(e));
    }
  }
  std::sort(out.begin(), out.end(), [](const MapEntry& a, const MapEntry& b) { return a.key < b.key; });
  return out;
}

}  // namespace sb::rt
