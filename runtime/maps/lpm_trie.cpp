#include "runtime/maps/lpm_trie.h"

#include <algorithm>
#include <cstring>

#include "runtime/maps/map_support.h"

namespace sb::rt {

using namespace map_support;

LpmTrieMap::LpmTrieMap(MapSpec spec)
    : Map(std::move(spec)),
      data_size_(this->spec().key_size - 4),
      max_prefixlen_(8 * data_size_),
      key_stride_(round8(this->spec().key_size)),
      slot_size_(key_stride_ + round8(this->spec().value_size)),
      storage_(checked_bytes(this->spec(), slot_size_, this->spec().max_entries)) {
  per_length_.assign(max_prefixlen_ + 1, 0);
  for (uint32_t s = this->spec().max_entries; s-- > 0;) free_.push_back(s);
}

std::string LpmTrieMap::masked(uint32_t prefixlen, const uint8_t* data) const {
  std::string k(4 + data_size_, '\0');
  std::memcpy(k.data(), &prefixlen, 4);
  const uint32_t whole = prefixlen / 8, bits = prefixlen % 8;
  std::memcpy(k.data() + 4, data, whole);
  if (bits) k[4 + whole] = char(data[whole] & uint8_t(0xff00u >> bits));
  return k;
}

void* LpmTrieMap::lookup(const void* key) {
  const auto* k = static_cast<const uint8_t*>(key);
  const uint32_t limit = std::min(index_of(k), max_prefixlen_);
  std::lock_guard lock(mutex_);
  for (uint32_t len = limit + 1; len-- > 0;) {
    if (per_length_[len] == 0) continue;
    auto it = index_.find(masked(len, k + 4));
    if (it != index_.end()) return value_at(it->second);
  }
  return nullptr;
}

int64_t LpmTrieMap::update(const void* key, const void* value, uint64_t flags) {
  const auto* k = static_cast<const uint8_t*>(key);
  const uint32_t len = index_of(k);
  if (flags > kUpdateExist || len > max_prefixlen_) return -EINVAL;
  std::string m = masked(len, k + 4);
  std::lock_guard lock(mutex_);
  auto it = index_.find(m);
  uint32_t slot;
  if (it != index_.end()) {
    if (flags == kUpdateNoExist) return -EEXIST;
    slot = it->second;
  } else {
    if (flags == kUpdateExist) return -ENOENT;
    if (free_.empty()) return -ENOSPC;
    slot = free_.back();
    free_.pop_back();
    index_.emplace(std::move(m), slot);
    ++per_length_[len];
  }
  std::memcpy(key_at(slot), k, spec().key_size);
  std::memcpy(value_at(slot), value, spec().value_size);
  return 0;
}

int64_t LpmTrieMap::remove(const void* key) {
  const auto* k = static_cast<const uint8_t*>(key);
  const uint32_t len = index_of(k);
  if (len > max_prefixlen_) return -EINVAL;
  std::lock_guard lock(mutex_);
  auto it = index_.find(masked(len, k + 4));
  if (it == index_.end()) return -ENOENT;
  free_.push_back(it->second);
  index_.erase(it);
  --per_length_[len];
  return 0;
}

size_t LpmTrieMap::size() const {
  std::lock_guard lock(mutex_);
  return index_.size();
}

std::vector<MapEntry> LpmTrieMap::entries() const {
  std::vector<MapEntry> out;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [m, slot] : index_)
      out.push_back({bytes(key_at(slot), spec().key_size), {bytes(value_at(slot), spec().value_size)}});
  }
  std::sort(out.begin(), out.end(), [](const MapEntry& a, const MapEntry& b) { return a.key < b.key; });
  return out;
}

}  // namespace sb::rt
