#include "runtime/maps/queue_stack.h"

#include <algorithm>
#include <cstring>

#include "runtime/maps/map_support.h"

namespace sb::rt {

using namespace map_support;

QueueStackMap::QueueStackMap(MapSpec spec) : Map(std::move(spec)) {
  checked_bytes(this->spec(), this->spec().value_size, this->spec().max_entries);
}

int64_t QueueStackMap::push(const void* value, uint64_t flags) {
  if (flags != kUpdateAny && flags != kUpdateExist) return -EINVAL;
  std::lock_guard lock(mutex_);
  if (values_.size() >= spec().max_entries) {
    if (flags != kUpdateExist) return -E2BIG;
    values_.pop_front();  // the oldest goes, for a stack too
  }
  values_.push_back(bytes(value, spec().value_size));
  return 0;
}

int64_t QueueStackMap::take(void* value, bool remove) {
  std::lock_guard lock(mutex_);
  if (values_.empty()) {
    std::memset(value, 0, spec().value_size);
    return -ENOENT;
  }
  std::vector<uint8_t>& v = is_stack() ? values_.back() : values_.front();
  std::memcpy(value, v.data(), v.size());
  if (remove) {
    if (is_stack()) values_.pop_back();
    else values_.pop_front();
  }
  return 0;
}

int64_t QueueStackMap::pop(void* value) { return take(value, true); }
int64_t QueueStackMap::peek(void* value) { return take(value, false); }

std::vector<std::vector<uint8_t>> QueueStackMap::contents() const {
  std::lock_guard lock(mutex_);
  std::vector<std::vector<uint8_t>> out(values_.begin(), values_.end());
  if (is_stack()) std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace sb::rt
