// Maps of maps (see map_of_maps.h).
#include "runtime/maps/map_of_maps.h"

#include <cstring>

#include <fmt/format.h>

#include "runtime/maps/map_support.h"

namespace sb::rt {

using map_support::fail;

MapOfMaps::MapOfMaps(MapSpec spec) : Map(std::move(spec)) {
  if (!this->spec().inner) fail(this->spec(), "a map of maps needs its inner map's template");
  if (array()) slots_.assign(this->spec().max_entries, nullptr);
}

Map* MapOfMaps::get(const void* key) const {
  std::lock_guard lock(mutex_);
  if (array()) {
    uint32_t i;
    std::memcpy(&i, key, 4);
    return i < slots_.size() ? slots_[i] : nullptr;
  }
  auto it = hashed_.find(std::string(static_cast<const char*>(key), spec().key_size));
  return it == hashed_.end() ? nullptr : it->second;
}

void* MapOfMaps::lookup(const void* key) { return get(key); }

int64_t MapOfMaps::set(const void* key, Map* m, uint64_t flags) {
  const MapSpec& t = inner();
  const bool alike = m && m->spec().type == t.type && m->spec().key_size == t.key_size &&
                     m->spec().value_size == t.value_size && m->spec().flags == t.flags &&
                     ((t.flags & kMapInnerMap) || m->spec().max_entries == t.max_entries);
  std::lock_guard lock(mutex_);
  if (array()) {  // the kernel's order: flags, index, then the map
    uint32_t i;
    std::memcpy(&i, key, 4);
    if (flags != kUpdateAny) return -EINVAL;
    if (i >= slots_.size()) return -E2BIG;
    if (!alike) return -EINVAL;
    slots_[i] = m;
    return 0;
  }
  if (!alike || flags > kUpdateExist) return -EINVAL;  // the map first, then htab_map_update_elem's checks
  std::string k(static_cast<const char*>(key), spec().key_size);
  const bool present = hashed_.count(k) != 0;
  if (present && flags == kUpdateNoExist) return -EEXIST;
  if (!present && flags == kUpdateExist) return -ENOENT;
  if (!present && hashed_.size() >= spec().max_entries) return -E2BIG;
  hashed_[k] = m;
  return 0;
}

int64_t MapOfMaps::remove(const void* key) {
  std::lock_guard lock(mutex_);
  if (array()) {
    uint32_t i;
    std::memcpy(&i, key, 4);
    if (i >= slots_.size()) return -E2BIG;
    if (!slots_[i]) return -ENOENT;
    slots_[i] = nullptr;
    return 0;
  }
  return hashed_.erase(std::string(static_cast<const char*>(key), spec().key_size)) ? 0 : -ENOENT;
}

std::vector<MapEntry> MapOfMaps::entries() const {
  std::lock_guard lock(mutex_);
  std::vector<MapEntry> out;
  auto entry = [](std::vector<uint8_t> key, const Map* m) {
    return MapEntry{std::move(key), {std::vector<uint8_t>(m->name().begin(), m->name().end())}};
  };
  for (uint32_t i = 0; i < slots_.size(); ++i)
    if (slots_[i]) out.push_back(entry(std::vector<uint8_t>{uint8_t(i), uint8_t(i >> 8), uint8_t(i >> 16), uint8_t(i >> 24)}, slots_[i]));
  for (const auto& [k, m] : hashed_) out.push_back(entry(std::vector<uint8_t>(k.begin(), k.end()), m));
  return out;
}

}  // namespace sb::rt
