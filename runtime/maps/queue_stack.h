// BPF_MAP_TYPE_QUEUE and BPF_MAP_TYPE_STACK (kernel/bpf/queue_stack_maps.c):
// no keys (key_size 0), at most max_entries values; programs use
// bpf_map_push_elem / pop_elem / peek_elem (helpers 87-89), user space
// BPF_MAP_UPDATE_ELEM (push), LOOKUP_ELEM (peek) and LOOKUP_AND_DELETE
// (pop). A queue gives the oldest value back first, a stack the newest.
//
// As the kernel: push on a full map fails with -E2BIG unless flags is
// BPF_EXIST, which drops the oldest value to make room (for a stack too);
// flags other than 0 and BPF_EXIST are -EINVAL; pop and peek of an empty
// map are -ENOENT and zero the destination.
#pragma once

#include <deque>
#include <mutex>
#include <vector>

#include "runtime/maps/maps.h"

namespace sb::rt {

class QueueStackMap : public Map {
 public:
  explicit QueueStackMap(MapSpec spec);
  int64_t push(const void* value, uint64_t flags) override;
  int64_t pop(void* value) override;
  int64_t peek(void* value) override;
  // For user space: update is push (its key is ignored), lookup is not
  // possible through a pointer (the value is a copy): use peek.
  int64_t update(const void* key, const void* value, uint64_t flags) override { return push(value, flags); }

  bool is_stack() const { return type() == MapType::Stack; }
  // The values in the order pop would return them.
  std::vector<std::vector<uint8_t>> contents() const;

 private:
  int64_t take(void* value, bool remove);
  mutable std::mutex mutex_;
  std::deque<std::vector<uint8_t>> values_;  // oldest first
};

}  // namespace sb::rt
