#include "runtime/helpers/std_helpers.h"
#include "runtime/helpers/tracing_helpers.h"

#include "runtime/helpers/csum_helpers.h"
#include "runtime/maps/map_of_maps.h"
#include "runtime/maps/map_support.h"
#include "runtime/progtypes/packet_run.h"
#include "runtime/progtypes/skb_helpers.h"
#include "runtime/progtypes/xdp_helpers.h"

#include "runtime/exec/hardening.h"

#include <utility>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cstring>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "frontend/loop_helper.h"
#include "ir/diag.h"
#include "ir/harden.h"
#include "runtime/helpers/tail_call.h"

namespace sb::rt {

// --- Environment ---

Environment::Environment(EnvironmentOptions opts) : opts_(std::move(opts)) {
  if (opts_.num_cpus == 0) {
    long n = sysconf(_SC_NPROCESSORS_CONF);
    opts_.num_cpus = n > 0 ? unsigned(n) : 1;
  }
  uint64_t seed = opts_.prandom_seed;
  if (seed == 0 && getrandom(&seed, sizeof seed, 0) != sizeof seed) seed = uint64_t(now_ns());
  prandom_state_ = seed;
}

Map& Environment::create_map(const MapSpec& spec) {
  std::unique_ptr<Map> m = rt::create_map(spec, {opts_.num_cpus, opts_.current_cpu});
  std::unique_lock lock(mutex_);
  for (const auto& other : maps_)
    if (other->name() == spec.name) throw Error("map '" + spec.name + "'", "a second map of that name");
  Map& ref = *m;
  by_handle_.emplace(m->handle(), m.get());
  maps_.push_back(std::move(m));
  return ref;
}

Map* Environment::find_map(std::string_view name) const {
  std::shared_lock lock(mutex_);
  for (const auto& m : maps_)
    if (m->name() == name) return m.get();
  return nullptr;
}

Map* Environment::map_from_handle(uint64_t handle) const {
  std::shared_lock lock(mutex_);
  auto it = by_handle_.find(handle);
  return it == by_handle_.end() ? nullptr : it->second;
}

RingBufMap* Environment::ring_holding(uint64_t sample) const {
  std::shared_lock lock(mutex_);
  for (const auto& m : maps_)
    if (m->type() == MapType::RingBuf) {
      auto* ring = static_cast<RingBufMap*>(m.get());
      if (ring->holds_sample(sample)) return ring;
    }
  return nullptr;
}

std::vector<Map*> Environment::maps() const {
  std::shared_lock lock(mutex_);
  std::vector<Map*> out;
  for (const auto& m : maps_) out.push_back(m.get());
  return out;
}

namespace {

// Creates the maps an object defines; global data gets its initial bytes.
bpf::MapCreator creator_for(Environment& env) {
  return [&env](const bpf::MapDef& d) -> bpf::MapAddress {
    // A perf event array without max_entries gets one slot per CPU, as
    // libbpf's bpf_object__create_map gives it (the kernel refuses 0).
    const uint32_t entries =
        d.max_entries == 0 && d.type == uint32_t(MapType::PerfEventArray) ? env.num_cpus() : d.max_entries;
    MapSpec spec{d.name, d.type, d.key_size, d.value_size, entries, d.flags, d.map_extra, d.spin_lock_offset};
    if (d.inner) {
      const bpf::MapDef& i = *d.inner;
      spec.inner = std::make_shared<const MapSpec>(
          MapSpec{bpf::inner_map_name(d.name), i.type, i.key_size, i.value_size, i.max_entries, i.flags, i.map_extra,
                  i.spin_lock_offset});
    }
    Map& m = env.create_map(spec);
    bpf::MapAddress a{m.handle(), 0};
    if (d.global_data) {
      std::span<uint8_t> value = static_cast<ArrayMap&>(m).value(0);
      if (!d.initial.empty()) std::memcpy(value.data(), d.initial.data(), std::min(value.size(), d.initial.size()));
      a.value = uint64_t(uintptr_t(value.data()));
    }
    return a;
  };
}

}  // namespace

bpf::ElfProgram Environment::load_elf(const std::string& path, const bpf::ElfSelection& which) {
  return load_elf(bpf::read_file(path), path, which);
}

// The program, then every program a program array's initialiser names,
// each loaded once from the same object with the maps just created.
namespace {
// Loads `which` with the maps in `created`, creating those not yet there,
// and fills the program arrays its object initialises.
bpf::ElfProgram load_with_maps(Environment& env, std::span<const uint8_t> bytes, const std::string& name,
                               const bpf::ElfSelection& which, std::map<std::string, bpf::MapAddress>& created);
}  // namespace

bpf::ElfProgram Environment::load_elf(std::span<const uint8_t> bytes, const std::string& name,
                                      const bpf::ElfSelection& which) {
  std::map<std::string, bpf::MapAddress> created;
  return load_with_maps(*this, bytes, name, which, created);
}

std::vector<bpf::ElfProgram> Environment::load_elf_all(std::span<const uint8_t> bytes, const std::string& name) {
  std::map<std::string, bpf::MapAddress> created;
  std::vector<bpf::ElfProgram> out;
  for (const bpf::ElfSelection& which : bpf::list_elf_programs(bytes, name))
    out.push_back(load_with_maps(*this, bytes, name, which, created));
  return out;
}

namespace {
bpf::ElfProgram load_with_maps(Environment& env, std::span<const uint8_t> bytes, const std::string& name,
                               const bpf::ElfSelection& which, std::map<std::string, bpf::MapAddress>& created) {
  const bpf::MapCreator create = creator_for(env);
  bpf::ElfProgram main = bpf::load_elf(bytes, name, which, [&](const bpf::MapDef& d) {
    if (auto it = created.find(d.name); it != created.end()) return it->second;
    return created[d.name] = create(d);
  });
  const bpf::MapCreator same_maps = [&](const bpf::MapDef& d) { return created.at(d.name); };
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const bpf::Program>> loaded;
  for (const bpf::MapDef& d : main.maps) {
    // A map of maps' initialised slots: maps of the same object.
    for (const auto& [index, inner] : d.inner_maps) {
      auto& outer = dynamic_cast<MapOfMaps&>(*env.map_from_handle(created.at(d.name).handle));
      Map* m = env.map_from_handle(created.at(inner).handle);
      if (outer.set(&index, m) != 0)
        throw Error(fmt::format("{}: map '{}'", name, d.name),
                    fmt::format("slot {}: map '{}' is not like the inner map's template", index, inner));
    }
    if (d.programs.empty()) continue;
    auto& array = dynamic_cast<ProgArrayMap&>(*env.map_from_handle(created.at(d.name).handle));
    for (const bpf::ProgramSlot& slot : d.programs) {
      std::shared_ptr<const bpf::Program>& p = loaded[{slot.program.section, slot.program.function}];
      if (!p) p = std::make_shared<const bpf::Program>(bpf::load_elf(bytes, name, slot.program, same_maps).program);
      array.set(slot.index, p);
    }
  }
  return main;
}
}  // namespace

void Environment::trace(std::string_view text) {
  std::lock_guard lock(trace_mutex_);
  trace_.append(text);
  if (sink_) sink_(text);
}

std::string Environment::take_trace() {
  std::lock_guard lock(trace_mutex_);
  return std::exchange(trace_, std::string());
}

void Environment::set_trace_sink(std::function<void(std::string_view)> sink) {
  std::lock_guard lock(trace_mutex_);
  sink_ = std::move(sink);
}

void Environment::add_readable(const void* addr, size_t size) {
  std::unique_lock lock(mutex_);
  readable_.push_back({uint64_t(uintptr_t(addr)), size});
}

uint64_t Environment::readable_from(uint64_t addr) const {
  uint64_t best = 0;
  auto consider = [&](const HostRange& r) {
    if (addr >= r.addr && addr - r.addr < r.size) best = std::max(best, r.size - (addr - r.addr));
  };
  std::shared_lock lock(mutex_);
  for (const HostRange& r : readable_) consider(r);
  for (const auto& m : maps_)
    for (const HostRange& r : m->ranges()) consider(r);
  return best;
}

void Environment::add_fib_route(const FibRoute& route) {
  std::unique_lock lock(mutex_);
  routes_.push_back(route);
}

std::vector<FibRoute> Environment::fib_routes() const {
  std::shared_lock lock(mutex_);
  return routes_;
}

bool Environment::readable(uint64_t addr, uint64_t size) const { return size <= readable_from(addr); }

namespace {
uint64_t clock_ns(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}
}  // namespace

uint64_t Environment::now_ns() const { return opts_.clock ? opts_.clock() : clock_ns(CLOCK_MONOTONIC); }
uint64_t Environment::boot_ns() const { return opts_.clock ? opts_.clock() : clock_ns(CLOCK_BOOTTIME); }

unsigned Environment::current_cpu() const {
  return (opts_.current_cpu ? opts_.current_cpu() : map_support::default_cpu()) % opts_.num_cpus;
}

uint32_t Environment::prandom_u32() {
  // splitmix64: one atomic step per call, so concurrent callers get
  // distinct values and a fixed seed gives a fixed sequence.
  uint64_t z = prandom_state_.fetch_add(0x9e3779b97f4a7c15ull, std::memory_order_relaxed) + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return uint32_t((z ^ (z >> 31)) >> 32);
}

std::vector<HostRange> Environment::host_ranges() const {
  std::shared_lock lock(mutex_);
  std::vector<HostRange> out;
  for (const auto& m : maps_)
    for (const HostRange& r : m->ranges()) out.push_back(r);
  return out;
}

Map* current_map(uint64_t handle) {
  const auto* e = dynamic_cast<const Environment*>(HelperContext::current());
  return e ? e->map_from_handle(handle) : nullptr;
}

// --- the helpers ---

namespace {

constexpr size_t kMaxFormat = 1024;  // trace_printk fmt_size limit
constexpr size_t kMaxString = 512;   // %s: bytes read at most
constexpr int kMaxArgs = 3;

Environment* env() { return dynamic_cast<Environment*>(HelperContext::current()); }
const void* ptr(uint64_t v) { return reinterpret_cast<const void*>(uintptr_t(v)); }
uint64_t errno_result(int64_t e) { return uint64_t(e); }

// A NUL-terminated string at `addr`, at most `limit` bytes: within the
// memory the environment knows readable, or elsewhere in the process (a
// program's stack, a probed function's argument) read without faulting, as
// the kernel's %s reads with strncpy_from_kernel_nofault; but only where a
// bounds-checked run may read. Empty when unreadable (the kernel prints ""
// too).
std::string read_string(const Environment& e, uint64_t addr, size_t limit) {
  const char* p = static_cast<const char*>(ptr(addr));
  if (const size_t n = size_t(std::min<uint64_t>(limit, e.readable_from(addr)))) return std::string(p, strnlen(p, n));
  if (addr == 0 || !access_allowed(addr, 1)) return "";
  std::string s(limit + 1, '\0');
  const std::optional<size_t> n = read_process_string(s.data(), addr, s.size());
  return n ? std::string(s.c_str()) : "";
}

// One conversion of bpf_trace_printk's format: flags, width and precision
// are copied into a printf spec from validated characters only.
std::optional<std::string> convert(const Environment& e, std::string_view f, size_t& i, uint64_t arg) {
  std::string spec = "%";
  auto copy_while = [&](auto pred, size_t max) {
    for (size_t n = 0; i < f.size() && pred(f[i]); ++n) {
      if (n == max) return false;
      spec += f[i++];
    }
    return true;
  };
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!copy_while([](char c) { return std::strchr("-+ #0", c) != nullptr && c != 0; }, 5)) return std::nullopt;
  if (!copy_while(is_digit, 3)) return std::nullopt;
  if (i < f.size() && f[i] == '.') {
    spec += f[i++];
    if (!copy_while(is_digit, 3)) return std::nullopt;
  }
  int longs = 0;
  for (; i < f.size() && (f[i] == 'l' || f[i] == 'h' || f[i] == 'z'); ++i)
    if (f[i] != 'h' && ++longs > 2) return std::nullopt;
  if (i >= f.size()) return std::nullopt;
  const char conv = f[i];
  char buf[kMaxString + 1024];
  int n = -1;
  switch (conv) {
    case 'd':
    case 'i':
      n = longs ? std::snprintf(buf, sizeof buf, (spec + "lld").c_str(), (long long)arg)
                : std::snprintf(buf, sizeof buf, (spec + "d").c_str(), int(uint32_t(arg)));
      break;
    case 'u':
    case 'x':
    case 'X':
      n = longs ? std::snprintf(buf, sizeof buf, (spec + "ll" + conv).c_str(), (unsigned long long)arg)
                : std::snprintf(buf, sizeof buf, (spec + conv).c_str(), unsigned(uint32_t(arg)));
      break;
    case 'c':
      n = std::snprintf(buf, sizeof buf, (spec + "c").c_str(), int(uint8_t(arg)));
      break;
    case 's':
      n = std::snprintf(buf, sizeof buf, (spec + "s").c_str(), read_string(e, arg, kMaxString).c_str());
      break;
    case 'p':
      if (i + 1 < f.size() && f[i + 1] == 'x') ++i;  // %px: the raw value, as %p here
      return fmt::format("{:#x}", arg);
    default:
      return std::nullopt;
  }
  if (n < 0) return std::nullopt;
  return std::string(buf, std::min(size_t(n), sizeof buf - 1));
}

// Pointer arguments: in a bounds-checked run (runtime/exec/hardening.h) each
// must lie where the program itself may access; a bad one is -EFAULT (or
// a null lookup), never a host crash.
bool arg_ok(uint64_t addr, uint64_t size) { return access_allowed(addr, size); }

uint64_t map_lookup_elem(uint64_t map, uint64_t key, uint64_t, uint64_t, uint64_t) {
  Map* m = current_map(map);
  return m && key && arg_ok(key, m->spec().key_size) ? uint64_t(uintptr_t(m->lookup(ptr(key)))) : 0;
}

uint64_t map_update_elem(uint64_t map, uint64_t key, uint64_t value, uint64_t flags, uint64_t) {
  Map* m = current_map(map);
  if (m && key && value && !(arg_ok(key, m->spec().key_size) && arg_ok(value, m->spec().value_size)))
    return errno_result(-EFAULT);
  return errno_result(m && key && value ? m->update(ptr(key), ptr(value), flags) : -EINVAL);
}

uint64_t map_delete_elem(uint64_t map, uint64_t key, uint64_t, uint64_t, uint64_t) {
  Map* m = current_map(map);
  if (m && key && !arg_ok(key, m->spec().key_size)) return errno_result(-EFAULT);
  return errno_result(m && key ? m->remove(ptr(key)) : -EINVAL);
}

uint64_t probe_read(uint64_t dst, uint64_t size, uint64_t src, uint64_t, uint64_t) {
  if (size == 0) return 0;
  if (!arg_ok(dst, size)) return errno_result(-EFAULT);
  Environment* e = env();
  void* to = reinterpret_cast<void*>(uintptr_t(dst));
  if (e && e->readable(src, size)) {
    std::memmove(to, ptr(src), size);
    return 0;
  }
  std::memset(to, 0, size);  // as the kernel: a failed read zero-fills the destination
  return errno_result(-EFAULT);
}

uint64_t ktime_get_ns(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  Environment* e = env();
  return e ? e->now_ns() : 0;
}

uint64_t trace_printk(uint64_t fmt_addr, uint64_t fmt_size, uint64_t a1, uint64_t a2, uint64_t a3) {
  Environment* e = env();
  if (!e || fmt_addr == 0 || fmt_size == 0 || fmt_size > kMaxFormat) return errno_result(-EINVAL);
  if (!arg_ok(fmt_addr, fmt_size)) return errno_result(-EFAULT);
  const char* fmt = static_cast<const char*>(ptr(fmt_addr));
  const void* nul = std::memchr(fmt, 0, fmt_size);
  if (!nul) return errno_result(-EINVAL);
  const std::string_view f(fmt, size_t(static_cast<const char*>(nul) - fmt));
  const uint64_t args[kMaxArgs] = {a1, a2, a3};
  int used = 0;
  std::string out;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') {
      out += f[i];
      continue;
    }
    if (i + 1 < f.size() && f[i + 1] == '%') {
      out += '%';
      ++i;
      continue;
    }
    if (used == kMaxArgs) return errno_result(-EINVAL);
    ++i;
    std::optional<std::string> piece = convert(*e, f, i, args[used++]);
    if (!piece) return errno_result(-EINVAL);
    out += *piece;
  }
  const size_t written = out.size();
  if (out.empty() || out.back() != '\n') out += '\n';  // one line per call, as in the kernel's trace_pipe
  e->trace(out);
  return written;
}

uint64_t get_prandom_u32(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  Environment* e = env();
  return e ? e->prandom_u32() : 0;
}

uint64_t get_smp_processor_id(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  Environment* e = env();
  return e ? e->current_cpu() : 0;
}

// One NUMA node: user space does not place a program's memory.
uint64_t get_numa_node_id(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) { return 0; }

uint64_t ktime_get_boot_ns(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  Environment* e = env();
  return e ? e->boot_ns() : 0;
}

// bpf_spin_lock / bpf_spin_unlock on the lock word the verifier found in a
// map value (a u32: 0 free, 1 held); a lock is held only between the two
// calls of one run, with no other call in between (the verifier's rule),
// so spinning ends.
uint64_t spin_lock(uint64_t lock, uint64_t, uint64_t, uint64_t, uint64_t) {
  if (!arg_ok(lock, 4)) return 0;
  auto* word = reinterpret_cast<uint32_t*>(uintptr_t(lock));
  while (__atomic_exchange_n(word, 1u, __ATOMIC_ACQUIRE) != 0)
    while (__atomic_load_n(word, __ATOMIC_RELAXED) != 0) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
  return 0;
}

uint64_t spin_unlock(uint64_t lock, uint64_t, uint64_t, uint64_t, uint64_t) {
  if (arg_ok(lock, 4)) __atomic_store_n(reinterpret_cast<uint32_t*>(uintptr_t(lock)), 0u, __ATOMIC_RELEASE);
  return 0;
}

// bpf_map_push_elem(map, value, flags), pop_elem(map, value), peek_elem(map, value).
uint64_t map_push_elem(uint64_t map, uint64_t value, uint64_t flags, uint64_t, uint64_t) {
  Map* m = current_map(map);
  if (!m || !value) return errno_result(-EINVAL);
  if (!arg_ok(value, m->spec().value_size)) return errno_result(-EFAULT);
  return errno_result(m->push(ptr(value), flags));
}

uint64_t map_pop_elem(uint64_t map, uint64_t value, uint64_t, uint64_t, uint64_t) {
  Map* m = current_map(map);
  if (!m || !value) return errno_result(-EINVAL);
  if (!arg_ok(value, m->spec().value_size)) return errno_result(-EFAULT);
  return errno_result(m->pop(reinterpret_cast<void*>(uintptr_t(value))));
}

uint64_t map_peek_elem(uint64_t map, uint64_t value, uint64_t, uint64_t, uint64_t) {
  Map* m = current_map(map);
  if (!m || !value) return errno_result(-EINVAL);
  if (!arg_ok(value, m->spec().value_size)) return errno_result(-EFAULT);
  return errno_result(m->peek(reinterpret_cast<void*>(uintptr_t(value))));
}

RingBufMap* ring_arg(uint64_t handle) {
  Map* m = current_map(handle);
  return m && m->type() == MapType::RingBuf ? static_cast<RingBufMap*>(m) : nullptr;
}

uint64_t ringbuf_output(uint64_t ring, uint64_t data, uint64_t size, uint64_t flags, uint64_t) {
  RingBufMap* r = ring_arg(ring);
  if (r && size && !arg_ok(data, size)) return errno_result(-EFAULT);
  return errno_result(r && (data || size == 0) ? r->output(ptr(data), size, flags) : -EINVAL);
}

uint64_t ringbuf_reserve(uint64_t ring, uint64_t size, uint64_t flags, uint64_t, uint64_t) {
  RingBufMap* r = ring_arg(ring);
  return r ? uint64_t(uintptr_t(r->reserve(size, flags))) : 0;
}

void commit(uint64_t sample, bool discard) {
  Environment* e = env();
  if (RingBufMap* r = e ? e->ring_holding(sample) : nullptr) r->commit(reinterpret_cast<void*>(uintptr_t(sample)), discard);
}

uint64_t ringbuf_submit(uint64_t sample, uint64_t, uint64_t, uint64_t, uint64_t) {
  commit(sample, false);
  return 0;
}

uint64_t ringbuf_discard(uint64_t sample, uint64_t, uint64_t, uint64_t, uint64_t) {
  commit(sample, true);
  return 0;
}

// bpf_tail_call: the slot's program, through the run's engine (runtime/helpers/tail_call.h).
uint64_t tail_call(uint64_t, uint64_t map, uint64_t index, uint64_t, uint64_t) {
  auto* array = dynamic_cast<ProgArrayMap*>(current_map(map));
  TailCallRun* run = TailCallRun::current();
  if (!array || !run) return 0;
  const uint32_t i = uint32_t(index);  // the kernel compares the low 32 bits
  return run->resolve(array->get(i), i < array->spec().max_entries);
}

// bpf_for_each_map_elem's walk (frontend/loop_helper.h): the next element's
// value, its key written to `key`, or 0 at the end.
uint64_t map_next_elem(uint64_t map, uint64_t cursor, uint64_t key, uint64_t, uint64_t) {
  Map* m = current_map(map);
  if (!m || !cursor || !key || !arg_ok(cursor, 8) || !arg_ok(key, m->spec().key_size)) return 0;
  return uint64_t(uintptr_t(m->next_element(reinterpret_cast<uint64_t*>(uintptr_t(cursor)),
                                            reinterpret_cast<void*>(uintptr_t(key)))));
}
static_assert(ir::is_reserved_helper(bpf::kMapNextElemHelper), "no bytecode names the walk's helper");

// The kernel's ids (include/uapi/linux/bpf.h, __BPF_FUNC_MAPPER).
constexpr KernelHelper kStandardHelpers[] = {
    {1, "map_lookup_elem", map_lookup_elem},
    {2, "map_update_elem", map_update_elem},
    {3, "map_delete_elem", map_delete_elem},
    {4, "probe_read", probe_read},
    {5, "ktime_get_ns", ktime_get_ns},
    {6, "trace_printk", trace_printk},
    {7, "get_prandom_u32", get_prandom_u32},
    {8, "get_smp_processor_id", get_smp_processor_id},
    {42, "get_numa_node_id", get_numa_node_id},
    {87, "map_push_elem", map_push_elem},
    {88, "map_pop_elem", map_pop_elem},
    {89, "map_peek_elem", map_peek_elem},
    {93, "spin_lock", spin_lock},
    {94, "spin_unlock", spin_unlock},
    {125, "ktime_get_boot_ns", ktime_get_boot_ns},
    {130, "ringbuf_output", ringbuf_output},
    {131, "ringbuf_reserve", ringbuf_reserve},
    {132, "ringbuf_submit", ringbuf_submit},
    {133, "ringbuf_discard", ringbuf_discard},
};

}  // namespace

std::optional<bpf::MapUse> Environment::map_use(uint64_t handle) const {
  const Map* m = map_from_handle(handle);
  if (!m) return std::nullopt;
  const MapSpec& s = m->spec();
  bpf::MapUse u{0, s.name, s.type, s.key_size, s.value_size, s.max_entries, false, 0, s.spin_lock_offset};
  if (s.inner) u.inner = bpf::inner_map_use(s.name, *s.inner);
  return u;
}

HelperTable standard_helpers(Environment& env) {
  HelperTable t;
  t.add_kernel(kStandardHelpers);
  t.add(bpf::kMapNextElemHelper, "sb_map_next_elem", map_next_elem);
  add_tracing_helpers(t);
  t.add_tail_call(kTailCallHelperId, "tail_call", tail_call);
  t.set_proto(kTailCallHelperId, &bpf::verifier::tail_call_proto());
  // Program-type helpers: the verifier lets only their types call them.
  add_xdp_helpers(t);
  add_skb_helpers(t);
  add_csum_helpers(t);
  add_packet_run_helpers(t);
  add_fib_helpers(t);
  t.set_context(&env);
  return t;
}

}  // namespace sb::rt
