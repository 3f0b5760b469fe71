#include "runtime/maps/redirect_maps.h"

#include <cstring>

#include "runtime/maps/map_support.h"

namespace sb::rt {

using namespace map_support;

namespace {
constexpr uint32_t kCpuMapMaxQueue = 16384;  // the kernel's cpumap qsize limit
}

RedirectMap::RedirectMap(MapSpec spec)
    : Map(std::move(spec)),
      stride_(round8(this->spec().value_size)),
      storage_(checked_bytes(this->spec(), stride_, this->spec().max_entries)) {
  if (hashed())
    for (uint32_t s = this->spec().max_entries; s-- > 0;) free_.push_back(s);
}

void* RedirectMap::lookup(const void* key) {
  if (type() != MapType::DevMap && type() != MapType::DevMapHash) return nullptr;
  std::lock_guard lock(mutex_);
  auto it = slots_.find(index_of(key));
  return it == slots_.end() ? nullptr : value_at(it->second);
}

bool RedirectMap::has(uint32_t key) const {
  std::lock_guard lock(mutex_);
  return slots_.count(key) != 0;
}

int64_t RedirectMap::update(const void* key, const void* value, uint64_t flags) {
  if (flags > kUpdateExist) return -EINVAL;
  const uint32_t k = index_of(key);
  const uint32_t first = index_of(value);  // ifindex, queue size or socket
  if (type() == MapType::CpuMap && first > kCpuMapMaxQueue) return -EOVERFLOW;
  std::lock_guard lock(mutex_);
  auto it = slots_.find(k);
  uint32_t slot;
  if (hashed()) {
    if (first == 0) return -EINVAL;
    if (it != slots_.end()) {
      if (flags == kUpdateNoExist) return -EEXIST;
      slot = it->second;
    } else {
      if (flags == kUpdateExist) return -ENOENT;
      if (free_.empty()) return -E2BIG;
      slot = free_.back();
      free_.pop_back();
      slots_.emplace(k, slot);
    }
  } else {
    if (k >= spec().max_entries) return -E2BIG;
    if (flags == kUpdateNoExist) return -EEXIST;  // every slot of an array exists
    if (first == 0) {                              // an empty slot
      slots_.erase(k);
      return 0;
    }
    slot = k;
    slots_[k] = k;
  }
  std::memcpy(value_at(slot), value, spec().value_size);
  return 0;
}

int64_t RedirectMap::remove(const void* key) {
  const uint32_t k = index_of(key);
  std::lock_guard lock(mutex_);
  auto it = slots_.find(k);
  if (!hashed()) {
    if (k >= spec().max_entries) return -EINVAL;
    if (it != slots_.end()) slots_.erase(it);
    return 0;
  }
  if (it == slots_.end()) return -ENOENT;
  free_.push_back(it->second);
  slots_.erase(it);
  return 0;
}

std::vector<MapEntry> RedirectMap::entries() const {
  std::vector<MapEntry> out;
  if (type() == MapType::XskMap) return out;  // user space cannot read a socket back (-EOPNOTSUPP)
  std::lock_guard lock(mutex_);
  for (const auto& [k, slot] : slots_) out.push_back({index_key(k), {bytes(value_at(slot), spec().value_size)}});
  return out;
}

}  // namespace sb::rt
