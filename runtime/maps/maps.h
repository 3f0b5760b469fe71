// BPF maps in process memory, with the kernel's semantics for the helpers
// (bpf_map_lookup_elem / update / delete, push / pop / peek, bpf_ringbuf_*):
// the base class and the registry of every type (create_map), with array,
// per-CPU array, the four hash maps (hash, per-CPU hash, LRU hash, LRU
// per-CPU hash: runtime/maps/hash_map.cpp), ring buffer and program array
// here; the other types in their own files (lpm_trie.h, queue_stack.h,
// bloom_filter.h, redirect_maps.h, perf_event_array.h, stack_trace.h).
//
// A map owns its storage, allocated page-aligned (mmap) once at creation,
// so a value's address never changes: lookup returns a pointer the program
// keeps using, and the emulator maps the same pages into the guest at the
// same address (ranges()). A program refers to a map by its handle, the
// address of the Map object (what the ELF loader puts into lddw); helpers
// only accept handles of maps their Environment created.
//
// Threads: array and per-CPU array lookups and updates take no lock (value
// copies are not atomic, as in the kernel; programs use atomic instructions
// on values). A hash map takes its mutex for every lookup, update and
// delete; a value pointer stays valid after the lock is released, and after
// a delete its slot may be reused by a later insert (the kernel's
// preallocated hash maps behave the same). A ring buffer serializes
// producers with a mutex; one consumer at a time.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "frontend/bpf.h"
#include "runtime/helpers/helpers.h"

namespace sb::rt {

// Map types by the kernel's numbering (include/uapi/linux/bpf.h).
enum class MapType : uint32_t {
  Hash = 1,
  Array = 2,
  ProgArray = 3,
  PerfEventArray = 4,
  PerCpuHash = 5,
  PerCpuArray = 6,
  StackTrace = 7,
  LruHash = 9,
  LruPerCpuHash = 10,
  LpmTrie = 11,
  ArrayOfMaps = 12,
  HashOfMaps = 13,
  DevMap = 14,
  CpuMap = 16,
  XskMap = 17,
  Queue = 22,
  Stack = 23,
  DevMapHash = 25,
  RingBuf = 27,
  BloomFilter = 30,
};

// map_flags the kernel gives meaning to (BPF_F_* of include/uapi/linux/bpf.h).
constexpr uint32_t kMapNoPrealloc = 1, kMapNoCommonLru = 2;
constexpr uint32_t kMapInnerMap = 1u << 12;  // BPF_F_INNER_MAP: maps of maps may hold it at any max_entries

// The kernel's update flags (BPF_ANY, BPF_NOEXIST, BPF_EXIST) and ring
// buffer flags.
constexpr uint64_t kUpdateAny = 0, kUpdateNoExist = 1, kUpdateExist = 2;
constexpr uint64_t kRingbufNoWakeup = 1, kRingbufForceWakeup = 2;

struct MapSpec {
  std::string name;
  uint32_t type = 0;  // MapType, as a number so that an unknown one can be named
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint32_t flags = 0;
  uint64_t map_extra = 0;  // bloom filter: the number of hash functions in bits 0-3 (0: 5)
  int32_t spin_lock_offset = -1;  // the value's struct bpf_spin_lock (bpf_spin_lock / unlock), -1: none
  std::shared_ptr<const MapSpec> inner;  // array/hash of maps: what every inner map is like
};

// A map's contents as user space reads them (BPF_MAP_LOOKUP_ELEM over
// every key): see map_entries below.
struct MapEntry {
  std::vector<uint8_t> key;
  std::vector<std::vector<uint8_t>> values;  // one, or one per CPU
};

// Page-aligned anonymous memory, zero-filled, released on destruction.
class PageMemory {
 public:
  PageMemory() = default;
  explicit PageMemory(size_t size);  // rounded up to whole pages; throws sb::Error
  ~PageMemory();
  PageMemory(PageMemory&& o) noexcept;
  PageMemory& operator=(PageMemory&& o) noexcept;
  PageMemory(const PageMemory&) = delete;
  PageMemory& operator=(const PageMemory&) = delete;

  uint8_t* data() const { return static_cast<uint8_t*>(base_); }
  size_t size() const { return size_; }  // whole pages
  HostRange range() const { return {uint64_t(uintptr_t(base_)), size_}; }

 private:
  void* base_ = nullptr;
  size_t size_ = 0;
};

size_t page_size();

class Map {
 public:
  explicit Map(MapSpec spec) : spec_(std::move(spec)) {}
  virtual ~Map() = default;
  Map(const Map&) = delete;
  Map& operator=(const Map&) = delete;

  const MapSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }
  MapType type() const { return MapType(spec_.type); }
  uint64_t handle() const { return uint64_t(uintptr_t(this)); }  // what lddw loads

  // The helpers' semantics on host pointers: lookup returns the value or
  // null; update and remove return 0 or a negative errno (-EEXIST, -ENOENT,
  // -E2BIG, -EINVAL), as the kernel's helpers do.
  virtual void* lookup(const void* key) { return nullptr; }
  virtual int64_t update(const void* key, const void* value, uint64_t flags) { return -EINVAL; }
  virtual int64_t remove(const void* key) { return -EINVAL; }
  // bpf_map_push_elem / pop_elem / peek_elem (queue, stack, bloom filter):
  // 0 or a negative errno; pop and peek copy value_size bytes to `value`.
  virtual int64_t push(const void* value, uint64_t flags) { return -EINVAL; }
  virtual int64_t pop(void* value) { return -EINVAL; }
  virtual int64_t peek(void* value) { return -EINVAL; }

  // The elements user space would read (map_entries); none for types whose
  // contents are not elements (programs, records, queues).
  virtual std::vector<MapEntry> entries() const { return {}; }

  // bpf_for_each_map_elem's walk (frontend/loop_helper.h): the first
  // element at or after `*cursor` (0 to start), its key copied to `key`
  // (key_size bytes) and the cursor moved past it; its value as a
  // program's lookup returns it (this CPU's copy), or null at the end.
  // Null for types bpf_for_each_map_elem does not walk.
  virtual void* next_element(uint64_t* cursor, void* key) { return nullptr; }

  // The memory a program may reach through this map, page-aligned.
  virtual std::vector<HostRange> ranges() const { return {}; }

 private:
  MapSpec spec_;
};

// BPF_MAP_TYPE_ARRAY: max_entries values of value_size bytes, each at an
// 8-byte aligned slot (as the kernel rounds the element size), keyed by a
// 32-bit index. Global data (.data, .rodata, .bss) is an array of one.
class ArrayMap : public Map {
 public:
  explicit ArrayMap(MapSpec spec);
  void* lookup(const void* key) override;
  void* next_element(uint64_t* cursor, void* key) override;
  int64_t update(const void* key, const void* value, uint64_t flags) override;
  std::vector<HostRange> ranges() const override { return {storage_.range()}; }
  std::vector<MapEntry> entries() const override;

  std::span<uint8_t> value(uint32_t index) const;  // throws sb::Error when out of range
  size_t stride() const { return stride_; }

 private:
  size_t stride_;
  PageMemory storage_;
};

// BPF_MAP_TYPE_PERCPU_ARRAY: one array per CPU. A program sees the copy of
// the CPU it runs on: `current_cpu()` (by default sched_getcpu()) modulo
// the number of copies. User space has no preemption control, so two
// threads may share a copy; programs that need exact totals update values
// with atomic instructions, like in the kernel's per-CPU-but-preemptible
// contexts. Embedders (and tests) pass a fixed CPU function for
// reproducible placement.
class PerCpuArrayMap : public Map {
 public:
  PerCpuArrayMap(MapSpec spec, unsigned num_cpus, std::function<unsigned()> current_cpu);
  void* lookup(const void* key) override;
  void* next_element(uint64_t* cursor, void* key) override;
  int64_t update(const void* key, const void* value, uint64_t flags) override;
  std::vector<HostRange> ranges() const override { return {storage_.range()}; }
  std::vector<MapEntry> entries() const override;

  unsigned num_cpus() const { return num_cpus_; }
  std::span<uint8_t> value(uint32_t index, unsigned cpu) const;  // throws sb::Error when out of range

 private:
  uint8_t* slot(uint32_t index, unsigned cpu) const;
  size_t stride_;
  unsigned num_cpus_;
  std::function<unsigned()> current_cpu_;
  PageMemory storage_;
};

// The four hash maps (runtime/maps/hash_map.cpp): BPF_MAP_TYPE_HASH,
// PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH. max_entries preallocated
// slots (key, then the value or one value per CPU, each 8-byte aligned) in
// one page-aligned block, an index from key bytes to slot, and a free
// list; one mutex guards the index.
//   per-CPU: a program sees the copy of current_cpu() modulo the copies
//     (as PerCpuArrayMap); an element a program creates has its other
//     copies zeroed, as the kernel's pcpu_init_value; user space reads and
//     writes every copy (entries(), update_cpus()).
//   LRU: a full map makes room for a new key by evicting the least
//     recently used element (updates and program lookups count as uses),
//     so update never fails with -E2BIG. The kernel's LRU is approximate
//     (per-CPU free lists, a reference bit, a batch of evictions at a time),
//     so which element goes first can differ from it; the capacity, the
//     flags' errors and what a lookup finds otherwise agree.
class HashMap : public Map {
 public:
  explicit HashMap(MapSpec spec, unsigned num_cpus = 1, std::function<unsigned()> current_cpu = {});
  void* lookup(const void* key) override;
  void* next_element(uint64_t* cursor, void* key) override;
  int64_t update(const void* key, const void* value, uint64_t flags) override;
  int64_t remove(const void* key) override;
  std::vector<HostRange> ranges() const override { return {storage_.range()}; }
  std::vector<MapEntry> entries() const override;

  // BPF_MAP_UPDATE_ELEM from user space on a per-CPU map: `values` holds
  // one value_size value per copy (num_cpus() of them).
  int64_t update_cpus(const void* key, const void* values, uint64_t flags);
  bool per_cpu() const { return per_cpu_; }
  bool lru() const { return lru_; }
  unsigned num_cpus() const { return copies_; }

  size_t size() const;
  // Every element, in no particular order, with its first copy (under the
  // lock: `fn` must not call back into this map).
  void for_each(const std::function<void(std::span<const uint8_t> key, std::span<uint8_t> value)>& fn) const;

 private:
  static constexpr uint32_t kNone = ~0u;
  uint8_t* key_at(uint32_t slot) const { return storage_.data() + size_t(slot) * slot_size_; }
  uint8_t* value_at(uint32_t slot, unsigned copy = 0) const {
    return key_at(slot) + key_stride_ + size_t(copy) * value_stride_;
  }
  // A free slot, or (LRU) the least recently used one, evicted; kNone when full.
  uint32_t take_slot();
  void unlink(uint32_t slot);      // LRU list
  void push_front(uint32_t slot);  // LRU list: most recently used
  int64_t update_locked(const std::string& key, const void* value, uint64_t flags, bool all_cpus);

  bool per_cpu_, lru_;
  unsigned copies_;
  std::function<unsigned()> current_cpu_;
  size_t key_stride_, value_stride_, slot_size_;
  PageMemory storage_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, uint32_t> index_;  // key bytes -> slot
  std::vector<uint32_t> free_;
  std::vector<uint8_t> used_;          // per slot: holds an element
  std::vector<uint32_t> prev_, next_;  // LRU: a list through the used slots
  uint32_t head_ = kNone, tail_ = kNone;
};

// BPF_MAP_TYPE_PROG_ARRAY: the programs bpf_tail_call (helper 12,
// runtime/helpers/tail_call.h) jumps to, as bytecode: each engine compiles or loads
// a slot's program itself on its first tail call into it. Programs can
// neither look up nor update it (as in the kernel); the embedder sets
// entries (or an object's `.maps` initialiser does: Environment::load_elf),
// also while programs run. Keys and values are 32-bit.
class ProgArrayMap : public Map {
 public:
  explicit ProgArrayMap(MapSpec spec);
  // Null empties the slot. Throws sb::Error when out of range.
  void set(uint32_t index, std::shared_ptr<const bpf::Program> program);
  std::shared_ptr<const bpf::Program> get(uint32_t index) const;  // null when empty or out of range

 private:
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<const bpf::Program>> programs_;
};

// BPF_MAP_TYPE_RINGBUF with the kernel's memory layout, in process memory:
//
//   base                  consumer page (consumer_pos at offset 0)
//   base + page           producer page (producer_pos at offset 0)
//   base + 2 pages        data, max_entries bytes (a power of two, whole pages)
//   base + 2 pages + size the same data pages mapped again
//
// The second mapping lets a record that wraps around be read and written
// as one contiguous block. Each record starts with the kernel's 8-byte
// header {u32 len with BUSY (bit 31) and DISCARD (bit 30); u32 pg_off} and
// is padded to 8 bytes. Producers: reserve + submit/discard, or output.
// Consumer: consume(), which calls back once per submitted record.
class RingBufMap : public Map {
 public:
  static constexpr uint32_t kBusyBit = 1u << 31;
  static constexpr uint32_t kDiscardBit = 1u << 30;
  static constexpr uint32_t kHeaderSize = 8;

  explicit RingBufMap(MapSpec spec);
  ~RingBufMap() override;
  std::vector<HostRange> ranges() const override;

  // bpf_ringbuf_reserve: null when flags != 0 or the record does not fit.
  void* reserve(uint64_t size, uint64_t flags);
  // bpf_ringbuf_submit / bpf_ringbuf_discard on a pointer reserve returned.
  void commit(void* sample, bool discard);
  // bpf_ringbuf_output: 0, -EINVAL (bad flags) or -EAGAIN (no room).
  int64_t output(const void* data, uint64_t size, uint64_t flags);
  // Whether `p` points at the data of a reserved record of this buffer.
  bool holds_sample(uint64_t p) const;

  // Consumes every submitted record in order (skipping discarded ones),
  // stopping at one still reserved; returns how many `fn` saw.
  size_t consume(const std::function<void(std::span<const uint8_t> record)>& fn);
  uint64_t consumer_pos() const;
  uint64_t producer_pos() const;
  size_t data_size() const { return size_; }

 private:
  uint64_t* consumer() const { return reinterpret_cast<uint64_t*>(base_); }
  uint64_t* producer() const { return reinterpret_cast<uint64_t*>(base_ + page_size()); }
  uint8_t* data() const { return base_ + 2 * page_size(); }

  uint8_t* base_ = nullptr;
  size_t size_ = 0;    // data bytes
  size_t mapped_ = 0;  // 2 pages + 2 * size_
  std::mutex producer_mutex_;
};

// Creates a map of spec.type, checking the sizes the kernel checks.
// Throws sb::Error("map 'NAME'", what) on an unknown type or bad sizes.
struct MapOptions {
  unsigned num_cpus = 1;                // per-CPU copies
  std::function<unsigned()> current_cpu;  // null: sched_getcpu()
};
std::unique_ptr<Map> create_map(const MapSpec& spec, const MapOptions& opts = {});

// A map's contents as user space reads them (BPF_MAP_LOOKUP_ELEM over
// every key, Map::entries()): arrays every index, hashes and tries every
// element sorted by key bytes, redirect maps their set slots, per-CPU maps
// one value per copy. Other map types have no elements here (their
// contents are programs, records or a queue's order).
std::vector<MapEntry> map_entries(const Map& m);
// One value for an entry: a per-CPU entry's copies summed word by word (u64
// words when the value size allows, else u32, else bytes), so contents
// compare across runs that landed on different CPUs and CPU counts.
std::vector<uint8_t> map_entry_total(const MapEntry& e);

// "hash", "array", ... or "type N".
std::string map_type_name(uint32_t type);

}  // namespace sb::rt
