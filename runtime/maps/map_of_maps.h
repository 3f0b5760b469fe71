// BPF_MAP_TYPE_ARRAY_OF_MAPS and HASH_OF_MAPS: slots that hold other maps,
// all alike (the inner map template, MapSpec::inner: the kernel's
// inner_map_meta). A program's lookup returns the inner map itself, which
// it then passes to the map helpers as it would a map it named; the
// verifier types the result as that template's map (frontend/verifier).
// Programs only look up (the kernel's check_map_func_compatibility);
// the embedder, or an object's `.values` initialiser, fills the slots with
// set(), which refuses a map unlike the template as the kernel's
// bpf_map_meta_equal does (type, key and value sizes, flags; max_entries
// too unless the template has BPF_F_INNER_MAP). Keys are as the outer
// map's type has them: an array's u32 index below max_entries, a hash's
// key_size bytes. Where the kernel stores a file descriptor (value_size 4),
// a slot holds the map; entries() gives its name's bytes.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/maps/maps.h"

namespace sb::rt {

class MapOfMaps : public Map {
 public:
  explicit MapOfMaps(MapSpec spec);
  void* lookup(const void* key) override;  // the inner map (its handle), or null
  // From user space the value is a map, not a file descriptor: use set().
  int64_t update(const void* key, const void* value, uint64_t flags) override { return -EOPNOTSUPP; }
  int64_t remove(const void* key) override;  // an array's slot too (fd_array_map_delete_elem)
  std::vector<MapEntry> entries() const override;

  // The kernel's update of a slot from user space (bpf_fd_array_map_update_elem,
  // bpf_fd_htab_map_update_elem): 0; -EINVAL for a map unlike the template
  // (or null), for an array any flags but kUpdateAny, for a hash unknown
  // flags; -E2BIG for an array's index out of range or a full hash; a
  // hash's -EEXIST (kUpdateNoExist, present) and -ENOENT (kUpdateExist,
  // absent).
  int64_t set(const void* key, Map* inner, uint64_t flags = kUpdateAny);
  Map* get(const void* key) const;
  const MapSpec& inner() const { return *spec().inner; }

 private:
  bool array() const { return type() == MapType::ArrayOfMaps; }
  mutable std::mutex mutex_;
  std::vector<Map*> slots_;                   // array of maps
  std::map<std::string, Map*> hashed_;        // hash of maps: key bytes -> map
};

}  // namespace sb::rt
