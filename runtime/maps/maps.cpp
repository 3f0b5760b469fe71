#include "runtime/maps/maps.h"

#include <algorithm>

#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "ir/diag.h"
#include "runtime/maps/bloom_filter.h"
#include "runtime/maps/lpm_trie.h"
#include "runtime/maps/map_support.h"
#include "runtime/maps/perf_event_array.h"
#include "runtime/maps/queue_stack.h"
#include "runtime/maps/redirect_maps.h"
#include "runtime/maps/stack_trace.h"
#include "runtime/maps/map_of_maps.h"

namespace sb::rt {

namespace {

using namespace map_support;

// The map types, with the key and value sizes each requires: kAny is any
// size from 1 to the limits above, kNone 0, otherwise the exact size (or
// either of two: value_size2); `check` what else the kernel's map_alloc_check
// refuses.
constexpr uint32_t kAny = ~0u;
struct TypeInfo {
  MapType type;
  const char* name;
  uint32_t key_size;
  uint32_t value_size;
  std::unique_ptr<Map> (*make)(const MapSpec&, const MapOptions&);
  uint32_t value_size2 = 0;  // a second allowed value size (0: none)
  void (*check)(const MapSpec&) = nullptr;
};

template <typename T>
std::unique_ptr<Map> make(const MapSpec& s, const MapOptions&) {
  return std::make_unique<T>(s);
}
template <typename T>
std::unique_ptr<Map> make_per_cpu(const MapSpec& s, const MapOptions& o) {
  return std::make_unique<T>(s, o.num_cpus, o.current_cpu);
}

void lru_check(const MapSpec& s) {
  if (s.flags & kMapNoPrealloc) fail(s, "an LRU hash is always preallocated: BPF_F_NO_PREALLOC is not allowed");
}
void lpm_check(const MapSpec& s) {
  if (!(s.flags & kMapNoPrealloc)) fail(s, "an LPM trie needs map_flags BPF_F_NO_PREALLOC (1), as in the kernel");
  if (s.key_size < 5 || s.key_size > 260)
    fail(s, fmt::format("key_size {} is not in [5, 260] (struct bpf_lpm_trie_key: u32 prefixlen, then 1 to 256 "
                        "data bytes)",
                        s.key_size));
}
void cpumap_check(const MapSpec& s) {
  if (s.max_entries > 4096) fail(s, fmt::format("max_entries {} is more CPUs than the kernel's NR_CPUS", s.max_entries));
}

const TypeInfo kTypes[] = {
    {MapType::Hash, "hash", kAny, kAny, make_per_cpu<HashMap>},
    {MapType::Array, "array", 4, kAny, make<ArrayMap>},
    {MapType::ProgArray, "prog_array", 4, 4, make<ProgArrayMap>},
    {MapType::PerfEventArray, "perf_event_array", 4, 4, make_per_cpu<PerfEventArrayMap>},
    {MapType::PerCpuHash, "percpu_hash", kAny, kAny, make_per_cpu<HashMap>},
    {MapType::PerCpuArray, "percpu_array", 4, kAny, make_per_cpu<PerCpuArrayMap>},
    {MapType::StackTrace, "stack_trace", 4, kAny, make<StackTraceMap>},
    {MapType::LruHash, "lru_hash", kAny, kAny, make_per_cpu<HashMap>, 0, lru_check},
    {MapType::LruPerCpuHash, "lru_percpu_hash", kAny, kAny, make_per_cpu<HashMap>, 0, lru_check},
    {MapType::LpmTrie, "lpm_trie", kAny, kAny, make<LpmTrieMap>, 0, lpm_check},
    {MapType::DevMap, "devmap", 4, 4, make<RedirectMap>, 8},
    {MapType::CpuMap, "cpumap", 4, 4, make<RedirectMap>, 8, cpumap_check},
    {MapType::XskMap, "xskmap", 4, 4, make<RedirectMap>},
    {MapType::Queue, "queue", 0, kAny, make<QueueStackMap>},
    {MapType::Stack, "stack", 0, kAny, make<QueueStackMap>},
    {MapType::DevMapHash, "devmap_hash", 4, 4, make<RedirectMap>, 8},
    {MapType::RingBuf, "ringbuf", 0, 0, make<RingBufMap>},
    {MapType::BloomFilter, "bloom_filter", 0, kAny, make<BloomFilterMap>},
    {MapType::ArrayOfMaps, "array_of_maps", 4, 4, make<MapOfMaps>},
    {MapType::HashOfMaps, "hash_of_maps", kAny, 4, make<MapOfMaps>},
};

const TypeInfo* find_type(uint32_t type) {
  for (const TypeInfo& t : kTypes)
    if (uint32_t(t.type) == type) return &t;
  return nullptr;
}

void check_size(const MapSpec& spec, const char* field, uint32_t size, uint32_t required, uint64_t limit,
                uint32_t or_size = 0) {
  if (required == kAny) {
    if (size == 0 || size > limit) fail(spec, fmt::format("{} {} is not in [1, {}]", field, size, limit));
  } else if (size != required && (or_size == 0 || size != or_size)) {
    fail(spec, fmt::format("{} {} must be {}{} for a {} map", field, size, required,
                           or_size ? fmt::format(" or {}", or_size) : "", map_type_name(spec.type)));
  }
}

}  // namespace

namespace map_support {

void fail(const MapSpec& spec, const std::string& what) { throw Error("map '" + spec.name + "'", what); }

size_t checked_bytes(const MapSpec& spec, uint64_t stride, uint64_t count, uint64_t copies) {
  if (stride > kMaxMapBytes || count > kMaxMapBytes || copies > kMaxMapBytes ||
      stride * count > kMaxMapBytes / copies)
    fail(spec, fmt::format("needs more than the {} bytes a map may use", kMaxMapBytes));
  return size_t(stride * count * copies);
}

unsigned default_cpu() {
  int cpu = sched_getcpu();
  return cpu < 0 ? 0 : unsigned(cpu);
}

}  // namespace map_support

size_t page_size() {
  static const size_t size = size_t(sysconf(_SC_PAGESIZE));
  return size;
}

// --- PageMemory ---

PageMemory::PageMemory(size_t size) {
  if (size == 0) return;
  const size_t page = page_size();
  size_ = (size + page - 1) / page * page;
  base_ = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base_ == MAP_FAILED) {
    base_ = nullptr;
    throw Error("maps", fmt::format("cannot allocate {} bytes: {}", size_, std::strerror(errno)));
  }
}

PageMemory::~PageMemory() {
  if (base_) munmap(base_, size_);
}

PageMemory::PageMemory(PageMemory&& o) noexcept : base_(o.base_), size_(o.size_) {
  o.base_ = nullptr;
  o.size_ = 0;
}

PageMemory& PageMemory::operator=(PageMemory&& o) noexcept {
  if (this != &o) {
    if (base_) munmap(base_, size_);
    base_ = o.base_;
    size_ = o.size_;
    o.base_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

// --- ArrayMap ---

ArrayMap::ArrayMap(MapSpec spec)
    : Map(std::move(spec)),
      stride_(round8(this->spec().value_size)),
      storage_(checked_bytes(this->spec(), stride_, this->spec().max_entries)) {}

void* ArrayMap::lookup(const void* key) {
  const uint32_t i = index_of(key);
  return i < spec().max_entries ? storage_.data() + size_t(i) * stride_ : nullptr;
}

int64_t ArrayMap::update(const void* key, const void* value, uint64_t flags) {
  if (flags > kUpdateExist) return -EINVAL;
  const uint32_t i = index_of(key);
  if (i >= spec().max_entries) return -E2BIG;
  if (flags == kUpdateNoExist) return -EEXIST;  // every element of an array exists
  copy_map_value(spec(), storage_.data() + size_t(i) * stride_, value);
  return 0;
}

std::span<uint8_t> ArrayMap::value(uint32_t index) const {
  if (index >= spec().max_entries)
    fail(spec(), fmt::format("index {} out of range [0, {})", index, spec().max_entries));
  return {storage_.data() + size_t(index) * stride_, spec().value_size};
}

// --- PerCpuArrayMap ---

PerCpuArrayMap::PerCpuArrayMap(MapSpec spec, unsigned num_cpus, std::function<unsigned()> current_cpu)
    : Map(std::move(spec)),
      stride_(round8(this->spec().value_size)),
      num_cpus_(num_cpus == 0 ? 1 : num_cpus),
      current_cpu_(current_cpu ? std::move(current_cpu) : default_cpu),
      storage_(checked_bytes(this->spec(), stride_, this->spec().max_entries, num_cpus_)) {}

uint8_t* PerCpuArrayMap::slot(uint32_t index, unsigned cpu) const {
  return storage_.data() + (size_t(cpu) * spec().max_entries + index) * stride_;
}

void* PerCpuArrayMap::lookup(const void* key) {
  const uint32_t i = index_of(key);
  return i < spec().max_entries ? slot(i, current_cpu_() % num_cpus_) : nullptr;
}

int64_t PerCpuArrayMap::update(const void* key, const void* value, uint64_t flags) {
  if (flags > kUpdateExist) return -EINVAL;
  const uint32_t i = index_of(key);
  if (i >= spec().max_entries) return -E2BIG;
  if (flags == kUpdateNoExist) return -EEXIST;
  std::memcpy(slot(i, current_cpu_() % num_cpus_), value, spec().value_size);
  return 0;
}

std::span<uint8_t> PerCpuArrayMap::value(uint32_t index, unsigned cpu) const {
  if (index >= spec().max_entries || cpu >= num_cpus_)
    fail(spec(), fmt::format("index {} cpu {} out of range [0, {}) x [0, {})", index, cpu,
                             spec().max_entries, num_cpus_));
  return {slot(index, cpu), spec().value_size};
}

// --- ProgArrayMap ---

ProgArrayMap::ProgArrayMap(MapSpec spec) : Map(std::move(spec)) {
  checked_bytes(this->spec(), sizeof(void*), this->spec().max_entries);
  programs_.assign(this->spec().max_entries, nullptr);
}

void ProgArrayMap::set(uint32_t index, std::shared_ptr<const bpf::Program> program) {
  if (index >= programs_.size())
    fail(spec(), fmt::format("index {} out of range [0, {})", index, programs_.size()));
  std::lock_guard lock(mutex_);
  programs_[index] = std::move(program);
}

std::shared_ptr<const bpf::Program> ProgArrayMap::get(uint32_t index) const {
  std::lock_guard lock(mutex_);
  return index < programs_.size() ? programs_[index] : nullptr;
}


// --- RingBufMap ---

RingBufMap::RingBufMap(MapSpec spec) : Map(std::move(spec)) {
  const size_t page = page_size();
  const uint64_t size = this->spec().max_entries;
  if (size < page || size % page != 0 || (size & (size - 1)) != 0)
    fail(this->spec(), fmt::format("max_entries {} must be a power of two and a multiple of the page size {}",
                                   size, page));
  checked_bytes(this->spec(), size, 2);
  size_ = size_t(size);
  mapped_ = 2 * page + 2 * size_;

  // Reserve the address range, then put the two control pages and the data
  // pages (twice, from one memfd) in it.
  const int fd = memfd_create("springboard-ringbuf", MFD_CLOEXEC);
  if (fd < 0) fail(this->spec(), fmt::format("memfd_create: {}", std::strerror(errno)));
  void* area = mmap(nullptr, mapped_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  bool ok = area != MAP_FAILED && ftruncate(fd, off_t(size_)) == 0;
  if (ok) {
    auto* base = static_cast<uint8_t*>(area);
    ok = mmap(base, 2 * page, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED &&
         mmap(base + 2 * page, size_, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_SHARED, fd, 0) != MAP_FAILED &&
         mmap(base + 2 * page + size_, size_, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_SHARED, fd, 0) != MAP_FAILED;
  }
  const int saved_errno = errno;
  close(fd);
  if (!ok) {
    if (area != MAP_FAILED) munmap(area, mapped_);
    fail(this->spec(), fmt::format("cannot map {} bytes: {}", mapped_, std::strerror(saved_errno)));
  }
  base_ = static_cast<uint8_t*>(area);
}

RingBufMap::~RingBufMap() {
  if (base_) munmap(base_, mapped_);
}

std::vector<HostRange> RingBufMap::ranges() const { return {{uint64_t(uintptr_t(base_)), mapped_}}; }

void* RingBufMap::reserve(uint64_t size, uint64_t flags) {
  if (flags != 0 || size > UINT32_MAX / 4) return nullptr;  // the kernel's RINGBUF_MAX_RECORD_SZ
  const uint64_t len = round8(size + kHeaderSize);
  std::lock_guard lock(producer_mutex_);
  const uint64_t cons = __atomic_load_n(consumer(), __ATOMIC_ACQUIRE);
  const uint64_t prod = __atomic_load_n(producer(), __ATOMIC_RELAXED);
  if (prod + len - cons > size_ - 1) return nullptr;  // as the kernel: new_prod - cons > mask
  uint8_t* hdr = data() + (prod & (size_ - 1));
  const uint32_t header[2] = {uint32_t(size) | kBusyBit, uint32_t((hdr - base_) / page_size())};
  __atomic_store_n(reinterpret_cast<uint32_t*>(hdr), header[0], __ATOMIC_RELAXED);
  __atomic_store_n(reinterpret_cast<uint32_t*>(hdr) + 1, header[1], __ATOMIC_RELAXED);
  __atomic_store_n(producer(), prod + len, __ATOMIC_RELEASE);
  return hdr + kHeaderSize;
}

void RingBufMap::commit(void* sample, bool discard) {
  auto* len = reinterpret_cast<uint32_t*>(static_cast<uint8_t*>(sample) - kHeaderSize);
  const uint32_t old = __atomic_load_n(len, __ATOMIC_RELAXED);
  __atomic_store_n(len, (old & ~kBusyBit) | (discard ? kDiscardBit : 0), __ATOMIC_RELEASE);
}

int64_t RingBufMap::output(const void* data, uint64_t size, uint64_t flags) {
  if (flags & ~(kRingbufNoWakeup | kRingbufForceWakeup)) return -EINVAL;
  void* rec = reserve(size, 0);
  if (!rec) return -EAGAIN;
  std::memcpy(rec, data, size);
  commit(rec, false);
  return 0;
}

bool RingBufMap::holds_sample(uint64_t p) const {
  const uint64_t begin = uint64_t(uintptr_t(data())) + kHeaderSize;
  if (p < begin || p >= begin + size_ || (p - begin) % 8 != 0) return false;
  const auto* len = reinterpret_cast<const uint32_t*>(uintptr_t(p - kHeaderSize));
  return (__atomic_load_n(len, __ATOMIC_ACQUIRE) & kBusyBit) != 0;
}

size_t RingBufMap::consume(const std::function<void(std::span<const uint8_t> record)>& fn) {
  size_t seen = 0;
  uint64_t cons = __atomic_load_n(consumer(), __ATOMIC_ACQUIRE);
  while (cons < __atomic_load_n(producer(), __ATOMIC_ACQUIRE)) {
    const uint8_t* hdr = data() + (cons & (size_ - 1));
    const uint32_t len = __atomic_load_n(reinterpret_cast<const uint32_t*>(hdr), __ATOMIC_ACQUIRE);
    if (len & kBusyBit) break;
    const uint32_t size = len & ~(kBusyBit | kDiscardBit);
    cons += round8(uint64_t(size) + kHeaderSize);
    if (!(len & kDiscardBit)) {
      fn({hdr + kHeaderSize, size});  // contiguous thanks to the second mapping
      ++seen;
    }
    __atomic_store_n(consumer(), cons, __ATOMIC_RELEASE);
  }
  return seen;
}

uint64_t RingBufMap::consumer_pos() const { return __atomic_load_n(consumer(), __ATOMIC_ACQUIRE); }
uint64_t RingBufMap::producer_pos() const { return __atomic_load_n(producer(), __ATOMIC_ACQUIRE); }

// --- creation ---

std::unique_ptr<Map> create_map(const MapSpec& spec, const MapOptions& opts) {
  const TypeInfo* t = find_type(spec.type);
  if (!t) fail(spec, fmt::format("unsupported map type {}", spec.type));
  if (spec.max_entries == 0) fail(spec, "max_entries must not be 0");
  check_size(spec, "key_size", spec.key_size, t->key_size, kMaxKeySize);
  check_size(spec, "value_size", spec.value_size, t->value_size, kMaxValueSize, t->value_size2);
  if (t->check) t->check(spec);
  return t->make(spec, opts);
}

std::string map_type_name(uint32_t type) {
  const TypeInfo* t = find_type(type);
  return t ? t->name : fmt::format("type {}", type);
}

std::vector<MapEntry> map_entries(const Map& m) { return m.entries(); }

void* ArrayMap::next_element(uint64_t* cursor, void* key) {
  if (*cursor >= spec().max_entries) return nullptr;
  const uint32_t i = uint32_t((*cursor)++);
  std::memcpy(key, &i, sizeof i);
  return value(i).data();
}

void* PerCpuArrayMap::next_element(uint64_t* cursor, void* key) {
  if (*cursor >= spec().max_entries) return nullptr;
  const uint32_t i = uint32_t((*cursor)++);
  std::memcpy(key, &i, sizeof i);
  return slot(i, current_cpu_() % num_cpus_);
}

std::vector<MapEntry> ArrayMap::entries() const {
  std::vector<MapEntry> out;
  for (uint32_t i = 0; i < spec().max_entries; ++i) {
    const std::span<uint8_t> v = value(i);
    out.push_back({index_key(i), {std::vector<uint8_t>(v.begin(), v.end())}});
  }
  return out;
}

std::vector<MapEntry> PerCpuArrayMap::entries() const {
  std::vector<MapEntry> out;
  for (uint32_t i = 0; i < spec().max_entries; ++i) {
    MapEntry e{index_key(i), {}};
    for (unsigned cpu = 0; cpu < num_cpus(); ++cpu) {
      const std::span<uint8_t> v = value(i, cpu);
      e.values.emplace_back(v.begin(), v.end());
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<uint8_t> map_entry_total(const MapEntry& e) {
  if (e.values.empty()) return {};
  std::vector<uint8_t> sum = e.values[0];
  const size_t word = sum.size() % 8 == 0 ? 8 : sum.size() % 4 == 0 ? 4 : 1;
  for (size_t v = 1; v < e.values.size(); ++v)
    for (size_t at = 0; at + word <= sum.size() && at + word <= e.values[v].size(); at += word) {
      uint64_t a = 0, b = 0;
      std::memcpy(&a, &sum[at], word);
      std::memcpy(&b, &e.values[v][at], word);
      a += b;
      std::memcpy(&sum[at], &a, word);
    }
  return sum;
}

}  // namespace sb::rt
