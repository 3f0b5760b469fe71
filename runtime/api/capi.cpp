// The C API of runtime/api/springboard.h over the C++ library: handles own the
// library's objects, and every entry point catches every exception and turns
// it into an sb_status plus a message kept per VM and per calling thread.
#include "runtime/api/springboard.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "backends/mc/disasm.h"
#include "backends/target.h"
#include "frontend/assembler.h"
#include "frontend/attach_point.h"
#include "frontend/progtypes/probe.h"
#include "frontend/decoder.h"
#include "frontend/disassembler.h"
#include "frontend/elf_loader.h"
#include "frontend/validator.h"
#include "ir/diag.h"
#include "frontend/trampoline.h"
#include "runtime/maps/map_of_maps.h"
#include "runtime/maps/perf_event_array.h"
#include "runtime/maps/stack_trace.h"
#include "frontend/verifier/verifier.h"
#include "runtime/exec/cycle_clock.h"
#include "runtime/exec/emulator.h"
#include "runtime/exec/engines.h"
#include "runtime/exec/interpreter.h"
#include "runtime/exec/native.h"
#include "runtime/exec/run_stats.h"
#include "runtime/helpers/std_helpers.h"
#include "runtime/progtypes/test_run.h"
#include "frontend/progtypes/program_type.h"
#include "runtime/hook/symbols.h"
#include "runtime/hook/trampoline.h"
#include "runtime/trace/usdt.h"

namespace {

using namespace sb;

// A failure whose status is not the calling function's default one.
class ApiError : public std::runtime_error {
 public:
  ApiError(sb_status status, const std::string& what) : std::runtime_error(what), status(status) {}
  sb_status status;
};

// Runs and their time in read_ticks() units (per-thread stripes), converted when read.
using Stats = rt::RunStats;

void read_stats(const rt::RunTotals& t, sb_stats* out) {
  out->run_count = t.runs;
  out->run_time_ns = rt::ticks_to_ns(t.ticks);
  out->misses = 0;
}

// What sb_code_run keeps per run (sb_vm_options.flags).
enum class StatsMode : uint8_t { Off, Count, Timed };

StatsMode stats_mode_of(const sb_vm_options* o) {
  if (o && (o->flags & SB_VM_NO_STATS)) return StatsMode::Off;
  if (o && (o->flags & SB_VM_NO_TIMING)) return StatsMode::Count;
  return StatsMode::Timed;
}

// The helpers' context: the Environment, knowing its VM (sb_current_vm).
class VmEnvironment final : public rt::Environment {
 public:
  VmEnvironment(sb_vm* vm, const rt::EnvironmentOptions& opts) : rt::Environment(opts), vm(vm) {}
  sb_vm* const vm;
};

rt::EnvironmentOptions environment_options(const sb_vm_options* o) {
  rt::EnvironmentOptions opts;
  if (o) {
    opts.num_cpus = o->num_cpus;
    opts.prandom_seed = o->prandom_seed;
  }
  return opts;
}

struct Failure {
  sb_status status = SB_OK;
  std::string message;
};
constexpr size_t kMaxErrorSlots = 1024;

}  // namespace

struct sb_map {
  sb_vm* vm;
  rt::Map* map;
};

struct sb_program {
  sb_vm* vm;
  std::shared_ptr<const bpf::Program> program;
  const bpf::ProgramType* section_type = nullptr;  // an ELF program: its section's type
  std::shared_ptr<Stats> stats;  // of its destroyed codes; live codes keep their own
};

struct sb_code {
  sb_vm* vm;
  const rt::Engine* engine;
  std::shared_ptr<const bpf::Program> program;
  std::shared_ptr<Stats> program_stats;  // takes this code's totals when it is destroyed
  StatsMode stats_mode;
  Stats stats;
  std::unique_ptr<rt::NativeProgram> native;
  rt::EntryFn direct = nullptr;  // native->direct_entry(): sb_code_run calls it without the rest
  std::unique_ptr<rt::EmulatedProgram> emulated;
  std::once_flag disassembly_once;
  std::string disassembly;

  const mc::CodeImage* image() const {
    return native ? &native->image() : emulated ? &emulated->image() : nullptr;
  }
};

namespace {
// One run of `c` in its statistics: counts faulting runs too.
class RunCount {
 public:
  explicit RunCount(sb_code& c) : c_(c), start_(c.stats_mode == StatsMode::Timed ? rt::read_ticks() : 0) {}
  ~RunCount() {
    if (c_.stats_mode != StatsMode::Off) c_.stats.add(start_ ? rt::read_ticks() - start_ : 0);
  }
  RunCount(const RunCount&) = delete;
  RunCount& operator=(const RunCount&) = delete;

 private:
  sb_code& c_;
  const uint64_t start_;
};
}  // namespace

// A program attached around a function of this process (sb_program_attach).
struct sb_link {
  sb_vm* vm;
  std::string name;  // "PROGRAM: KIND TARGET" (sb_link_name)
  tramp::Kind kind = tramp::Kind::Fentry;
  // Where the program runs: one site, or every site of a USDT probe.
  struct Site {
    void* target;
    rt::Trampoline* trampoline;
    rt::LinkId id;
  };
  std::vector<Site> sites;
  // A USDT link: the semaphores it holds up (one count each, as libbpf's
  // uprobe ref_ctr) and its spec slots in the object's __bpf_usdt_specs.
  std::vector<uint16_t*> semaphores;
  rt::Map* usdt_specs = nullptr;
  rt::Map* usdt_ips = nullptr;
  std::vector<std::pair<uint32_t, uint64_t>> usdt_slots;  // (spec id, site address)
  ~sb_link();
};

struct sb_vm {
  explicit sb_vm(const sb_vm_options* o)
      : env(this, environment_options(o)),
        helpers(rt::standard_helpers(env)),
        stats_mode(stats_mode_of(o)),
        verify(!o || !(o->flags & SB_VM_NO_VERIFY)) {}

  VmEnvironment env;
  rt::HelperTable helpers;
  const StatsMode stats_mode;
  const bool verify;  // sb_program_compile proves programs safe first
  void* user_data = nullptr;
  std::string trace;

  // The spec ids of each __bpf_usdt_specs map that USDT links hold.
  std::mutex usdt_mutex;
  std::unordered_map<const rt::Map*, std::vector<bool>> usdt_spec_ids;

  // Destroyed before env and helpers, which they refer to.
  std::mutex mutex;  // the handle lists
  std::vector<std::unique_ptr<sb_program>> programs;
  std::vector<std::unique_ptr<sb_code>> codes;
  std::unordered_map<const rt::Map*, std::unique_ptr<sb_map>> maps;
  std::vector<std::unique_ptr<sb_link>> links;  // destroyed first: they run its programs

  mutable std::mutex errors_mutex;
  mutable std::unordered_map<std::thread::id, Failure> errors;

  sb_map* wrap(rt::Map* m) {
    std::lock_guard lock(mutex);
    auto& slot = maps[m];
    if (!slot) slot.reset(new sb_map{this, m});
    return slot.get();
  }
  template <typename T>
  T* keep(std::vector<std::unique_ptr<T>>& list, std::unique_ptr<T> item) {
    std::lock_guard lock(mutex);
    list.push_back(std::move(item));
    return list.back().get();
  }
  template <typename T>
  void drop(std::vector<std::unique_ptr<T>>& list, const T* item) {
    std::lock_guard lock(mutex);
    auto it = std::find_if(list.begin(), list.end(), [&](const auto& p) { return p.get() == item; });
    if (it != list.end()) list.erase(it);
  }
};

namespace {

sb_status fail(const sb_vm* vm, sb_status status, const char* message) noexcept {
  if (!vm) return status;
  try {
    std::lock_guard lock(vm->errors_mutex);
    // Threads come and go: keep the slots of a bounded number of them.
    if (vm->errors.size() >= kMaxErrorSlots) vm->errors.clear();
    Failure& f = vm->errors[std::this_thread::get_id()];
    f.status = status;
    f.message = message;
  } catch (...) {
    // No room for the message: the status still says what happened.
  }
  return status;
}

// Runs `f` (returning sb_status); an sb::Error becomes `category`.
template <typename F>
sb_status guarded(const sb_vm* vm, sb_status category, F&& f) noexcept {
  try {
    return f();
  } catch (const ApiError& e) {
    return fail(vm, e.status, e.what());
  } catch (const Error& e) {
    return fail(vm, category, e.what());
  } catch (const std::bad_alloc&) {
    return fail(vm, SB_ERR_NO_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(vm, SB_ERR_INTERNAL, e.what());
  } catch (...) {
    return fail(vm, SB_ERR_INTERNAL, "unknown exception");
  }
}

void require(const void* p, const char* function, const char* argument) {
  if (!p) throw ApiError(SB_ERR_NULL, fmt::format("{}: {} is NULL", function, argument));
}

std::string name_or(const char* name, const char* fallback) { return name && *name ? name : fallback; }

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ApiError(SB_ERR_IO, path + ": cannot open file");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw ApiError(SB_ERR_IO, path + ": read failed");
  return bytes;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Structural checks at load time; helper ids wait for the compile.
sb_program* add_program(sb_vm* vm, bpf::Program p, sb_program** out) {
  bpf::validate(p);
  auto prog = std::make_unique<sb_program>();
  prog->vm = vm;
  prog->program = std::make_shared<const bpf::Program>(std::move(p));
  prog->stats = std::make_shared<Stats>();
  return *out = vm->keep(vm->programs, std::move(prog));
}

sb_status load_elf(sb_vm* vm, const std::string& name, std::span<const uint8_t> bytes, const char* section,
                   const char* function, sb_program** out) {
  bpf::ElfSelection which{name_or(section, ""), name_or(function, "")};
  bpf::ElfProgram elf = vm->env.load_elf(bytes, name, which);
  return guarded(vm, SB_ERR_BAD_PROGRAM, [&] {
    add_program(vm, std::move(elf.program), out)->section_type = elf.type;
    return SB_OK;
  });
}

// Every name sb_program_compile knows, built or not, so that a known but
// absent engine is SB_ERR_UNAVAILABLE rather than unknown.
constexpr std::string_view kKnownEngines[] = {"interp",    "jit",     "x86_64_native", "x86_64_emu",
                                              "arm64_emu", "riscv64_emu", "x86-64",     "x86_64",
                                              "arm64",     "aarch64", "riscv64"};

const rt::Engine& resolve_engine(std::string_view name) {
  for (const rt::Engine& e : rt::engines())
    if (e.name == name) return e;
  const rt::Engine* found = nullptr;
  if (name == "jit") {
    found = rt::find_engine(rt::EngineKind::Native, Arch::X86_64);
  } else if (const backend::TargetDesc* t = backend::find_target(name)) {
    found = rt::find_engine(rt::EngineKind::Native, t->arch);
    if (!found) found = rt::find_engine(rt::EngineKind::Emulated, t->arch);
  }
  if (found) return *found;
  std::string names;
  for (const rt::Engine& e : rt::engines()) names += (names.empty() ? "" : ", ") + e.name;
  const bool known = std::find(std::begin(kKnownEngines), std::end(kKnownEngines), name) != std::end(kKnownEngines);
  if (known)
    throw ApiError(SB_ERR_UNAVAILABLE,
                   fmt::format("engine '{}' is not available in this build on this host (available: {})", name, names));
  throw ApiError(SB_ERR_UNKNOWN_ENGINE, fmt::format("unknown engine or architecture '{}' (engines: {}; "
                                                    "architectures: x86-64, arm64, riscv64; jit)",
                                                    name, names));
}

uint64_t execute(const sb_code& c, void* mem, size_t size) {
  switch (c.engine->kind) {
    case rt::EngineKind::Interp: return rt::interpret(*c.program, c.vm->helpers, mem, size);
    case rt::EngineKind::Native: return c.native->run(mem, size);
    case rt::EngineKind::Emulated: break;
  }
  // The emulator runs over a vector it maps into the guest: copy in and out.
  auto* bytes = static_cast<uint8_t*>(mem);
  std::vector<uint8_t> copy(bytes, bytes + size);
  uint64_t r0 = c.emulated->run(copy);
  if (size) std::memcpy(mem, copy.data(), size);
  return r0;
}

std::string disassemble_code(const sb_code& c) {
  const mc::CodeImage* image = c.image();
  if (!image) return bpf::disassemble(*c.program);
  std::string text;
  for (const mc::DisasmLine& line : mc::disassemble(c.engine->arch, image->text))
    text += fmt::format("{:5x}: {}\n", line.address, line.text);
  return text;
}

const char* errno_name(int64_t err) {
  switch (-err) {
    case E2BIG: return "E2BIG (the map is full)";
    case EEXIST: return "EEXIST (the key exists)";
    case ENOENT: return "ENOENT (no such key)";
    case EINVAL: return "EINVAL (not supported on this map or bad flags)";
    case EAGAIN: return "EAGAIN";
    default: return "an error";
  }
}

void check_size(const sb_map* m, const char* what, size_t given, uint32_t expected) {
  if (given != expected)
    throw ApiError(SB_ERR_INVALID_ARGUMENT,
                   fmt::format("map '{}': {} size is {}, not {}", m->map->name(), what, expected, given));
}

sb_status map_result(const sb_map* m, const char* op, int64_t err) {
  if (err == 0) return SB_OK;
  throw ApiError(err == -ENOENT ? SB_ERR_NOT_FOUND : SB_ERR_MAP,
                 fmt::format("map '{}': {}: {}", m->map->name(), op, errno_name(err)));
}

[[gnu::noinline]] sb_status run_faulted(const sb_code& code, rt::EntryResult r) {  // by value: in registers
  return guarded(code.vm, SB_ERR_EXEC, [&] {
    rt::check_result(r, code.program->name);  // throws: the run faulted
    return SB_ERR_INTERNAL;
  });
}

// sb_code_run with statistics, on any engine.
[[gnu::noinline]] sb_status run_counted(sb_code& code, void* mem, size_t size, uint64_t* r0) {
  if (code.direct && (mem || !size)) {
    rt::EntryResult r;
    {
      RunCount count(code);
      r = code.direct(mem, size);
    }
    if (r.status != 0) return run_faulted(code, r);
    if (r0) *r0 = r.r0;
    return SB_OK;
  }
  return guarded(code.vm, SB_ERR_EXEC, [&] {
    if (size) require(mem, "sb_code_run", "mem");
    RunCount count(code);
    uint64_t result = execute(code, mem, size);
    if (r0) *r0 = result;
    return SB_OK;
  });
}

}  // namespace

extern "C" {

// ---- errors, version ----

const char* sb_status_name(sb_status status) {
  switch (status) {
#define SB_NAME(s) \
  case s: return #s;
    SB_NAME(SB_OK)
    SB_NAME(SB_ERR_NULL)
    SB_NAME(SB_ERR_INVALID_ARGUMENT)
    SB_NAME(SB_ERR_IO)
    SB_NAME(SB_ERR_BAD_PROGRAM)
    SB_NAME(SB_ERR_BAD_ELF)
    SB_NAME(SB_ERR_UNKNOWN_ENGINE)
    SB_NAME(SB_ERR_UNAVAILABLE)
    SB_NAME(SB_ERR_COMPILE)
    SB_NAME(SB_ERR_NOT_FOUND)
    SB_NAME(SB_ERR_MAP)
    SB_NAME(SB_ERR_EXEC)
    SB_NAME(SB_ERR_NO_MEMORY)
    SB_NAME(SB_ERR_INTERNAL)
#undef SB_NAME
    case SB_STATUS_MAX_ENUM: break;
  }
  return "SB_UNKNOWN_STATUS";
}

const char* sb_version(void) { return SPRINGBOARD_VERSION_STRING; }

// ---- the VM ----

sb_status sb_vm_create(const sb_vm_options* options, sb_vm** out) {
  if (!out) return SB_ERR_NULL;
  *out = nullptr;
  return guarded(nullptr, SB_ERR_INTERNAL, [&] {
    *out = new sb_vm(options);
    return SB_OK;
  });
}

void sb_vm_destroy(sb_vm* vm) { delete vm; }

const char* sb_vm_last_error(const sb_vm* vm) {
  if (!vm) return "sb_vm_last_error: vm is NULL";
  try {
    std::lock_guard lock(vm->errors_mutex);
    auto it = vm->errors.find(std::this_thread::get_id());
    return it == vm->errors.end() ? "" : it->second.message.c_str();
  } catch (...) {
    return "";
  }
}

sb_status sb_vm_last_status(const sb_vm* vm) {
  if (!vm) return SB_ERR_NULL;
  try {
    std::lock_guard lock(vm->errors_mutex);
    auto it = vm->errors.find(std::this_thread::get_id());
    return it == vm->errors.end() ? SB_OK : it->second.status;
  } catch (...) {
    return SB_ERR_INTERNAL;
  }
}

void sb_vm_set_user_data(sb_vm* vm, void* user_data) {
  if (vm) vm->user_data = user_data;
}

void* sb_vm_user_data(const sb_vm* vm) { return vm ? vm->user_data : nullptr; }

sb_vm* sb_current_vm(void) {
  auto* env = dynamic_cast<VmEnvironment*>(rt::HelperContext::current());
  return env ? env->vm : nullptr;
}

const char* sb_vm_take_trace(sb_vm* vm) {
  if (!vm) return "";
  try {
    vm->trace = vm->env.take_trace();
  } catch (...) {
    vm->trace.clear();
  }
  return vm->trace.c_str();
}

// ---- helpers ----

sb_status sb_vm_register_helper(sb_vm* vm, uint32_t id, const char* name, sb_helper_fn fn) {
  if (!vm) return SB_ERR_NULL;
  return guarded(vm, SB_ERR_INVALID_ARGUMENT, [&] {
    require(reinterpret_cast<const void*>(fn), "sb_vm_register_helper", "fn");
    vm->helpers.add(id, name_or(name, fmt::format("helper {}", id).c_str()), fn);
    return SB_OK;
  });
}

// ---- maps ----

sb_status sb_vm_create_map(sb_vm* vm, const char* name, sb_map_type type, uint32_t key_size, uint32_t value_size,
                           uint32_t max_entries, sb_map** out) {
  if (!vm) return SB_ERR_NULL;
  return guarded(vm, SB_ERR_MAP, [&] {
    require(out, "sb_vm_create_map", "out");
    *out = nullptr;
    if (!name || !*name) throw ApiError(SB_ERR_INVALID_ARGUMENT, "sb_vm_create_map: a map needs a name");
    rt::MapSpec spec{.name = name, .type = uint32_t(type), .key_size = key_size, .value_size = value_size,
                     .max_entries = max_entries, .inner = nullptr};
    *out = vm->wrap(&vm->env.create_map(spec));
    return SB_OK;
  });
}

sb_status sb_vm_create_map_of_maps(sb_vm* vm, const char* name, sb_map_type type, uint32_t key_size,
                                   uint32_t max_entries, const sb_map* inner, sb_map** out) {
  if (!vm) return SB_ERR_NULL;
  return guarded(vm, SB_ERR_MAP, [&] {
    require(out, "sb_vm_create_map_of_maps", "out");
    require(inner, "sb_vm_create_map_of_maps", "inner");
    *out = nullptr;
    if (!name || !*name) throw ApiError(SB_ERR_INVALID_ARGUMENT, "sb_vm_create_map_of_maps: a map needs a name");
    if (type != SB_MAP_ARRAY_OF_MAPS && type != SB_MAP_HASH_OF_MAPS)
      throw ApiError(SB_ERR_INVALID_ARGUMENT, fmt::format("sb_vm_create_map_of_maps: map '{}': type {} is not an "
                                                          "array or hash of maps (use sb_vm_create_map)",
                                                          name, uint32_t(type)));
    if (inner->vm != vm)
      throw ApiError(SB_ERR_INVALID_ARGUMENT,
                     fmt::format("sb_vm_create_map_of_maps: map '{}': the inner map belongs to another vm", name));
    rt::MapSpec spec{.name = name, .type = uint32_t(type), .key_size = key_size, .value_size = 4,
                     .max_entries = max_entries, .inner = nullptr};
    spec.inner = std::make_shared<const rt::MapSpec>(inner->map->spec());
    *out = vm->wrap(&vm->env.create_map(spec));
    return SB_OK;
  });
}

sb_status sb_vm_find_map(sb_vm* vm, const char* name, sb_map** out) {
  if (!vm) return SB_ERR_NULL;
  return guarded(vm, SB_ERR_NOT_FOUND, [&] {
    require(out, "sb_vm_find_map", "out");
    require(name, "sb_vm_find_map", "name");
    *out = nullptr;
    rt::Map* m = vm->env.find_map(name);
    if (!m) throw ApiError(SB_ERR_NOT_FOUND, fmt::format("no map named '{}'", name));
    *out = vm->wrap(m);
    return SB_OK;
  });
}

size_t sb_vm_map_count(const sb_vm* vm) {
  try {
    return vm ? vm->env.maps().size() : 0;
  } catch (...) {
    return 0;
  }
}

sb_map* sb_vm_map_at(sb_vm* vm, size_t index) {
  try {
    if (!vm) return nullptr;
    std::vector<rt::Map*> all = vm->env.maps();
    return index < all.size() ? vm->wrap(all[index]) : nullptr;
  } catch (...) {
    return nullptr;
  }
}

sb_status sb_map_get_info(const sb_map* map, sb_map_info* out) {
  if (!map) return SB_ERR_NULL;
  if (!out) return fail(map->vm, SB_ERR_NULL, "sb_map_get_info: out is NULL");
  const rt::MapSpec& s = map->map->spec();
  *out = {s.name.c_str(), s.type, s.key_size, s.value_size, s.max_entries, map->map->handle()};
  return SB_OK;
}

sb_status sb_map_lookup(sb_map* map, const void* key, size_t key_size, void* value, size_t value_size) {
  if (!map) return SB_ERR_NULL;
  return guarded(map->vm, SB_ERR_MAP, [&] {
    require(key, "sb_map_lookup", "key");
    require(value, "sb_map_lookup", "value");
    const rt::MapSpec& s = map->map->spec();
    if (s.type == SB_MAP_RINGBUF || s.type == SB_MAP_PROG_ARRAY)
      throw ApiError(SB_ERR_MAP, fmt::format("map '{}': a {} map has no elements to look up", s.name,
                                             rt::map_type_name(s.type)));
    if (dynamic_cast<rt::MapOfMaps*>(map->map))
      throw ApiError(SB_ERR_MAP, fmt::format("map '{}': a {} map holds maps: use sb_map_get_inner", s.name,
                                             rt::map_type_name(s.type)));
    check_size(map, "key", key_size, s.key_size);
    check_size(map, "value", value_size, s.value_size);
    if (auto* stacks = dynamic_cast<rt::StackTraceMap*>(map->map)) {  // a copy, as bpf_stackmap_copy
      uint32_t id;
      std::memcpy(&id, key, sizeof id);
      if (!stacks->copy(id, value))
        throw ApiError(SB_ERR_NOT_FOUND, fmt::format("map '{}': lookup: no stack {}", s.name, id));
      return SB_OK;
    }
    const void* found = map->map->lookup(key);
    if (!found) throw ApiError(SB_ERR_NOT_FOUND, fmt::format("map '{}': lookup: no such key", s.name));
    std::memcpy(value, found, value_size);
    return SB_OK;
  });
}

sb_status sb_map_update(sb_map* map, const void* key, size_t key_size, const void* value, size_t value_size,
                        uint64_t flags) {
  if (!map) return SB_ERR_NULL;
  return guarded(map->vm, SB_ERR_MAP, [&] {
    require(key, "sb_map_update", "key");
    require(value, "sb_map_update", "value");
    if (dynamic_cast<rt::MapOfMaps*>(map->map))
      throw ApiError(SB_ERR_MAP, fmt::format("map '{}': a {} map holds maps: use sb_map_set_inner", map->map->name(),
                                             rt::map_type_name(map->map->spec().type)));
    check_size(map, "key", key_size, map->map->spec().key_size);
    check_size(map, "value", value_size, map->map->spec().value_size);
    return map_result(map, "update", map->map->update(key, value, flags));
  });
}

sb_status sb_map_delete(sb_map* map, const void* key, size_t key_size) {
  if (!map) return SB_ERR_NULL;
  return guarded(map->vm, SB_ERR_MAP, [&] {
    require(key, "sb_map_delete", "key");
    check_size(map, "key", key_size, map->map->spec().key_size);
    return map_result(map, "delete", map->map->remove(key));
  });
}

namespace {
rt::MapOfMaps& map_of_maps(const sb_map* m, const char* fn) {
  auto* outer = dynamic_cast<rt::MapOfMaps*>(m->map);
  if (!outer)
    throw ApiError(SB_ERR_MAP, fmt::format("{}: map '{}' is a {} map, not an array or hash of maps", fn,
                                           m->map->name(), rt::map_type_name(m->map->spec().type)));
  return *outer;
}
}  // namespace

sb_status sb_map_set_inner(sb_map* outer, const void* key, size_t key_size, sb_map* inner, uint64_t flags) {
  if (!outer) return SB_ERR_NULL;
  return guarded(outer->vm, SB_ERR_MAP, [&] {
    require(key, "sb_map_set_inner", "key");
    require(inner, "sb_map_set_inner", "inner");
    rt::MapOfMaps& m = map_of_maps(outer, "sb_map_set_inner");
    check_size(outer, "key", key_size, m.spec().key_size);
    if (inner->vm != outer->vm)
      throw ApiError(SB_ERR_INVALID_ARGUMENT,
                     fmt::format("map '{}': set: the inner map '{}' belongs to another vm", m.name(), inner->map->name()));
    const int64_t err = m.set(key, inner->map, flags);
    if (err == -EINVAL) {
      const bool array = m.type() == rt::MapType::ArrayOfMaps;
      const bool bad_flags = array ? flags != SB_UPDATE_ANY : flags > SB_UPDATE_EXIST;
      throw ApiError(SB_ERR_MAP, bad_flags ? fmt::format("map '{}': set: EINVAL: flags {} ({})", m.name(), flags,
                                                         array ? "an array of maps takes only SB_UPDATE_ANY"
                                                               : "not SB_UPDATE_ANY, _NOEXIST or _EXIST")
                                           : fmt::format("map '{}': set: EINVAL: map '{}' is unlike the template "
                                                         "(type, key and value sizes, flags, max_entries)",
                                                         m.name(), inner->map->name()));
    }
    return map_result(outer, "set", err);
  });
}

sb_status sb_map_get_inner(sb_map* outer, const void* key, size_t key_size, sb_map** out) {
  if (!outer) return SB_ERR_NULL;
  return guarded(outer->vm, SB_ERR_NOT_FOUND, [&] {
    require(key, "sb_map_get_inner", "key");
    require(out, "sb_map_get_inner", "out");
    *out = nullptr;
    rt::MapOfMaps& m = map_of_maps(outer, "sb_map_get_inner");
    check_size(outer, "key", key_size, m.spec().key_size);
    rt::Map* inner = m.get(key);
    if (!inner) throw ApiError(SB_ERR_NOT_FOUND, fmt::format("map '{}': no map in that slot", m.name()));
    *out = outer->vm->wrap(inner);
    return SB_OK;
  });
}

sb_status sb_map_consume(sb_map* map, sb_record_fn fn, void* ctx, size_t* count) {
  if (!map) return SB_ERR_NULL;
  return guarded(map->vm, SB_ERR_MAP, [&] {
    require(reinterpret_cast<const void*>(fn), "sb_map_consume", "fn");
    size_t n = 0;
    if (auto* ring = dynamic_cast<rt::RingBufMap*>(map->map)) {
      n = ring->consume([&](std::span<const uint8_t> r) { fn(ctx, r.data(), r.size()); });
    } else if (auto* perf = dynamic_cast<rt::PerfEventArrayMap*>(map->map)) {
      for (const rt::PerfEventArrayMap::Record& r : perf->take_records()) fn(ctx, r.bytes.data(), r.bytes.size()), ++n;
    } else {
      throw ApiError(SB_ERR_MAP, fmt::format("map '{}': not a ring buffer or perf event array", map->map->name()));
    }
    if (count) *count = n;
    return SB_OK;
  });
}

sb_status sb_map_for_each(sb_map* map, sb_entry_fn fn, void* ctx, size_t* count) {
  if (!map) return SB_ERR_NULL;
  return guarded(map->vm, SB_ERR_MAP, [&] {
    require(reinterpret_cast<const void*>(fn), "sb_map_for_each", "fn");
    const std::vector<rt::MapEntry> entries = rt::map_entries(*map->map);
    std::vector<uint8_t> values;
    for (const rt::MapEntry& e : entries) {
      values.clear();
      for (const std::vector<uint8_t>& v : e.values) values.insert(values.end(), v.begin(), v.end());
      fn(ctx, e.key.data(), e.key.size(), values.data(), e.values.empty() ? 0 : e.values.front().size(),
         e.values.size());
    }
    if (count) *count = entries.size();
    return SB_OK;
  });
}

// ---- programs ----

sb_status sb_vm_load_bytecode(sb_vm* vm, const char* name, const void* bytes, size_t size, sb_program** out) {
  if (!vm) return SB_ERR_NULL;
  return guarded(vm, SB_ERR_BAD_PROGRAM, [&] {
    require(out, "sb_vm_load_bytecode", "out");
    *out = nullptr;
    if (size) require(bytes, "sb_vm_load_bytecode", "bytes");
    auto* b = static_cast<const uint8_t*>(bytes);
    add_program(vm, bpf::decode(std::span<const uint8_t>(b, size), name_or(name, "<bytecode>")), out);
    return SB_OK;
  });
}

sb_status sb_vm_load_asm(sb_vm* vm, const char* name, const char* source, sb_program** out) {
  if (!vm) return SB_ERR_NULL;
  return guarded(vm, SB_ERR_BAD_PROGRAM, [&] {
    require(out, "sb_vm_load_asm", "out");
    *out = nullptr;
    require(source, "sb_vm_load_asm", "source");
    add_program(vm, bpf::assemble(source, name_or(name, "<asm>")), out);
    return SB_OK;
  });
}

sb_status sb_vm_load_elf(sb_vm* vm, const char* name, const void* bytes, size_t size, const char* section,
                         const char* function, sb_program** out) {
  if (!vm) return SB_ERR_NULL;
  return guarded(vm, SB_ERR_BAD_ELF, [&] {
    require(out, "sb_vm_load_elf", "out");
    *out = nullptr;
    if (size) require(bytes, "sb_vm_load_elf", "bytes");
    auto* b = static_cast<const uint8_t*>(bytes);
    return load_elf(vm, name_or(name, "<elf>"), std::span<const uint8_t>(b, size), section, function, out);
  });
}

sb_status sb_vm_load_file(sb_vm* vm, const char* path, const char* section, const char* function,
                          sb_program** out) {
  if (!vm) return SB_ERR_NULL;
  return guarded(vm, SB_ERR_BAD_PROGRAM, [&] {
    require(out, "sb_vm_load_file", "out");
    *out = nullptr;
    require(path, "sb_vm_load_file", "path");
    std::vector<uint8_t> bytes = read_file(path);
    if (bpf::looks_like_elf(bytes))
      return guarded(vm, SB_ERR_BAD_ELF, [&] { return load_elf(vm, path, bytes, section, function, out); });
    if (ends_with(path, ".s") || ends_with(path, ".asm"))
      add_program(vm, bpf::assemble(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path),
                  out);
    else
      add_program(vm, bpf::decode(bytes, path), out);
    return SB_OK;
  });
}

sb_status sb_vm_load_object(sb_vm* vm, const char* path, sb_program** programs, size_t capacity, size_t* count) {
  if (!vm) return SB_ERR_NULL;
  return guarded(vm, SB_ERR_BAD_ELF, [&] {
    require(path, "sb_vm_load_object", "path");
    require(count, "sb_vm_load_object", "count");
    if (capacity) require(programs, "sb_vm_load_object", "programs");
    *count = 0;
    std::vector<bpf::ElfProgram> all = vm->env.load_elf_all(read_file(path), path);
    *count = all.size();
    if (all.size() > capacity)
      throw ApiError(SB_ERR_INVALID_ARGUMENT, fmt::format("sb_vm_load_object: {} has {} programs, programs holds {}",
                                                          path, all.size(), capacity));
    return guarded(vm, SB_ERR_BAD_PROGRAM, [&] {
      for (size_t i = 0; i < all.size(); ++i) {
        all[i].program.name = all[i].function.empty() ? all[i].section : all[i].function;
        add_program(vm, std::move(all[i].program), &programs[i])->section_type = all[i].type;
      }
      return SB_OK;
    });
  });
}

void sb_program_destroy(sb_program* program) {
  if (program) program->vm->drop(program->vm->programs, program);
}

const char* sb_program_name(const sb_program* program) { return program ? program->program->name.c_str() : ""; }

size_t sb_program_slot_count(const sb_program* program) { return program ? program->program->insns.size() : 0; }

// ---- engines and compiled code ----

size_t sb_engine_count(void) {
  try {
    return rt::engines().size();
  } catch (...) {
    return 0;
  }
}

const char* sb_engine_name(size_t index) {
  try {
    return index < rt::engines().size() ? rt::engines()[index].name.c_str() : nullptr;
  } catch (...) {
    return nullptr;
  }
}

}  // extern "C"

namespace {
// The checks of a compile: helpers the VM has, and (unless SB_VM_NO_VERIFY)
// the verifier's proof of safety.
void check_program(const sb_vm& vm, const bpf::Program& p) {
  bpf::ValidateOptions v;
  v.helper_exists = [&](uint32_t id) { return vm.helpers.find(id) != nullptr; };
  bpf::validate(p, v);
  if (vm.verify) bpf::verifier::verify(p, vm.helpers.verify_options());
}
}  // namespace

extern "C" {

sb_status sb_program_compile(sb_program* program, const char* engine, sb_code** out) {
  if (!program) return SB_ERR_NULL;
  sb_vm* vm = program->vm;
  return guarded(vm, SB_ERR_COMPILE, [&] {
    require(out, "sb_program_compile", "out");
    *out = nullptr;
    require(engine, "sb_program_compile", "engine");
    auto code = std::make_unique<sb_code>();
    code->vm = vm;
    code->engine = &resolve_engine(engine);
    code->program = program->program;
    code->program_stats = program->stats;
    code->stats_mode = vm->stats_mode;
    const bpf::Program& p = *program->program;
    rt::Safety safety;
    safety.verify = vm->verify;
    switch (code->engine->kind) {
      case rt::EngineKind::Interp:
        check_program(*vm, p);  // what compiling does for the other engines
        break;
      case rt::EngineKind::Native:
        code->native = std::make_unique<rt::NativeProgram>(p, vm->helpers, safety);
        code->direct = code->native->direct_entry();
        break;
      case rt::EngineKind::Emulated:
        code->emulated = std::make_unique<rt::EmulatedProgram>(p, vm->helpers, code->engine->arch, safety);
        break;
    }
    *out = vm->keep(vm->codes, std::move(code));
    return SB_OK;
  });
}

void sb_code_destroy(sb_code* code) {
  if (!code) return;
  sb_vm* vm = code->vm;
  std::lock_guard lock(vm->mutex);  // sb_program_stats reads the list under it
  auto it = std::find_if(vm->codes.begin(), vm->codes.end(), [&](const auto& c) { return c.get() == code; });
  if (it == vm->codes.end()) return;
  code->program_stats->add_totals(code->stats.totals());
  vm->codes.erase(it);
}

const char* sb_code_engine(const sb_code* code) { return code ? code->engine->name.c_str() : ""; }

const uint8_t* sb_code_machine_code(const sb_code* code, size_t* size) {
  const mc::CodeImage* image = code ? code->image() : nullptr;
  if (size) *size = image ? image->text.size() : 0;
  return image && !image->text.empty() ? image->text.data() : nullptr;
}

const char* sb_code_disassembly(sb_code* code) {
  if (!code) return nullptr;
  sb_status s = guarded(code->vm, SB_ERR_INTERNAL, [&] {
    std::call_once(code->disassembly_once, [&] { code->disassembly = disassemble_code(*code); });
    return SB_OK;
  });
  return s == SB_OK ? code->disassembly.c_str() : nullptr;
}

sb_status sb_code_run(sb_code* code, void* mem, size_t size, uint64_t* r0) {
  if (!code) return SB_ERR_NULL;
  // Native code that needs nothing around its run, without statistics:
  // the call itself, and everything else out of line.
  if (code->direct && code->stats_mode == StatsMode::Off && (mem || !size)) [[likely]] {
    const rt::EntryResult r = code->direct(mem, size);
    if (r.status == 0) [[likely]] {
      if (r0) *r0 = r.r0;
      return SB_OK;
    }
    return run_faulted(*code, r);
  }
  return run_counted(*code, mem, size, r0);
}

sb_status sb_code_function(const sb_code* code, sb_native_fn* out) {
  if (!code) return SB_ERR_NULL;
  return guarded(code->vm, SB_ERR_UNAVAILABLE, [&] {
    require(reinterpret_cast<const void*>(out), "sb_code_function", "out");
    *out = nullptr;
    if (!code->native)
      throw ApiError(SB_ERR_UNAVAILABLE, fmt::format("sb_code_function: '{}' code is not native; use sb_code_run",
                                                     code->engine->name));
    rt::EntryFn entry = code->native->direct_entry();
    if (!entry)
      throw ApiError(SB_ERR_UNAVAILABLE, fmt::format("sb_code_function: {} calls helpers, which need sb_code_run",
                                                     code->program->name));
    static_assert(sizeof(sb_native_result) == sizeof(rt::EntryResult) &&
                  offsetof(sb_native_result, status) == offsetof(rt::EntryResult, status));
    *out = reinterpret_cast<sb_native_fn>(reinterpret_cast<void (*)()>(entry));  // the same layout
    return SB_OK;
  });
}

// ---- statistics ----

sb_status sb_code_stats(const sb_code* code, sb_stats* out) {
  if (!code) return SB_ERR_NULL;
  if (!out) return fail(code->vm, SB_ERR_NULL, "sb_code_stats: out is NULL");
  read_stats(code->stats.totals(), out);
  return SB_OK;
}

sb_status sb_program_test_run(sb_program* program, const char* engine, const char* type, sb_test_run* run) {
  if (!program) return SB_ERR_NULL;
  sb_vm* vm = program->vm;
  return guarded(vm, SB_ERR_INVALID_ARGUMENT, [&]() -> sb_status {
    require(engine, "sb_program_test_run", "engine");
    require(run, "sb_program_test_run", "run");
    if (run->data_size_in) require(run->data_in, "sb_program_test_run", "run->data_in");
    const rt::Engine& e = resolve_engine(engine);
    const bpf::ProgramType* t = program->section_type;
    if (type) {
      t = bpf::find_program_type(type);
      if (!t)
        throw ApiError(SB_ERR_INVALID_ARGUMENT, fmt::format("sb_program_test_run: unknown program type '{}' (types: {})",
                                                            type, bpf::program_type_names()));
    }
    if (!t || !rt::has_test_run(*t))
      throw ApiError(SB_ERR_INVALID_ARGUMENT,
                     fmt::format("sb_program_test_run: {} is a {} program, which has no test run (types with one: {})",
                                 program->program->name, t ? t->name : "raw", rt::test_run_types()));
    bpf::Program typed = *program->program;
    typed.type = t;
    rt::TestRunInput in;
    const auto* d = static_cast<const uint8_t*>(run->data_in);
    in.data.assign(d, d + run->data_size_in);
    if (run->ctx_in) {
      const auto* c = static_cast<const uint8_t*>(run->ctx_in);
      in.ctx.emplace(c, c + run->ctx_size_in);
    }
    in.repeat = run->repeat;
    rt::RunOptions opts;
    opts.safety.verify = vm->verify;
    rt::Engine::Runner runner;
    {
      const sb_status s = guarded(vm, SB_ERR_COMPILE, [&] {
        runner = e.prepare(typed, vm->helpers, opts);
        return SB_OK;
      });
      if (s != SB_OK) return s;
    }
    rt::TestRunOutput out;
    try {
      out = rt::test_run(typed, in, runner);
    } catch (const Error& err) {
      // Bad input is found before the first run; anything after is the program's fault.
      const bool input = err.where().rfind("data_in", 0) == 0 || err.where().rfind("ctx_in", 0) == 0;
      throw ApiError(input ? SB_ERR_INVALID_ARGUMENT : SB_ERR_EXEC, err.what());
    }
    run->retval = out.retval;
    run->duration_ns = out.duration_ns;
    auto copy_out = [](const std::vector<uint8_t>& from, void* to, size_t& size, const char* what) {
      const size_t room = size;
      size = from.size();
      if (!to) return;  // not wanted (the kernel's test run copies nothing either)
      std::memcpy(to, from.data(), std::min(room, from.size()));
      if (room < from.size())
        throw ApiError(SB_ERR_INVALID_ARGUMENT, fmt::format("sb_program_test_run: {} holds {} bytes of the {} out "
                                                            "(the kernel: ENOSPC)",
                                                            what, room, from.size()));
    };
    run->redirect = SB_REDIRECT_NONE;
    run->redirect_ifindex = run->redirect_key = 0;
    run->redirect_map = nullptr;
    run->redirect_flags = 0;
    if (out.redirect) {
      const rt::RedirectTarget& r = *out.redirect;
      run->redirect_flags = r.flags;
      if (r.kind == rt::RedirectTarget::Kind::Ifindex) {
        run->redirect = SB_REDIRECT_IFINDEX;
        run->redirect_ifindex = r.ifindex;
      } else {
        run->redirect = SB_REDIRECT_MAP;
        rt::Map* m = vm->env.find_map(r.map);
        run->redirect_map = m ? vm->wrap(m) : nullptr;
        run->redirect_key = r.key;
      }
    }
    run->clone_count = out.clones.size();
    if (run->on_clone)
      for (const rt::ClonedPacket& c : out.clones)
        run->on_clone(run->on_clone_ctx, c.ifindex, c.flags, c.packet.data(), c.packet.size());
    run->tunnel_key_size = out.tunnel_key ? std::min(out.tunnel_key->size(), sizeof run->tunnel_key) : 0;
    std::memset(run->tunnel_key, 0, sizeof run->tunnel_key);
    if (run->tunnel_key_size) std::memcpy(run->tunnel_key, out.tunnel_key->data(), run->tunnel_key_size);
    copy_out(out.data, run->data_out, run->data_size_out, "run->data_out");
    copy_out(out.ctx, run->ctx_out, run->ctx_size_out, "run->ctx_out");
    return SB_OK;
  });
}

sb_status sb_program_stats(const sb_program* program, sb_stats* out) {
  if (!program) return SB_ERR_NULL;
  if (!out) return fail(program->vm, SB_ERR_NULL, "sb_program_stats: out is NULL");
  // A run counts once, in its code; the program adds up its codes.
  rt::RunTotals t = program->stats->totals();
  {
    std::lock_guard lock(program->vm->mutex);
    for (const auto& c : program->vm->codes)
      if (c->program_stats == program->stats) {
        const rt::RunTotals ct = c->stats.totals();
        t.runs += ct.runs, t.ticks += ct.ticks;
      }
  }
  read_stats(t, out);
  return SB_OK;
}

// ---- attaching to functions of this process ----

}  // extern "C"

namespace {

// One trampoline per function of the process, shared by every VM's links;
// never destroyed (threads may still be inside its images at exit).
rt::TrampolineTable& process_trampolines() {
  static rt::TrampolineTable* table = new rt::TrampolineTable;
  return *table;
}

tramp::Kind attach_kind(sb_attach_kind k) {
  switch (k) {
    case SB_ATTACH_FENTRY: return tramp::Kind::Fentry;
    case SB_ATTACH_FEXIT: return tramp::Kind::Fexit;
    case SB_ATTACH_FMOD_RET: return tramp::Kind::FmodRet;
    case SB_ATTACH_UPROBE: return tramp::Kind::Uprobe;
    case SB_ATTACH_URETPROBE: return tramp::Kind::Uretprobe;
    case SB_ATTACH_USDT: return tramp::Kind::Uprobe;
    default: break;
  }
  throw ApiError(SB_ERR_INVALID_ARGUMENT, fmt::format("sb_program_attach: kind {} is not SB_ATTACH_FENTRY, "
                                                      "SB_ATTACH_FEXIT, SB_ATTACH_FMOD_RET, SB_ATTACH_UPROBE, "
                                                      "SB_ATTACH_URETPROBE or SB_ATTACH_USDT", int(k)));
}

// Runs `f`, turning an sb::Error into an ApiError of `status`.
template <typename F>
decltype(auto) as_status(sb_status status, F&& f) {
  try {
    return f();
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    throw ApiError(status, e.what());
  }
}

// What to attach: a program, as which kind, where.
struct AttachRequest {
  std::shared_ptr<const bpf::Program> program;
  const bpf::ProgramType* section_type = nullptr;  // its ELF section's, if any
  tramp::Kind kind = tramp::Kind::Fentry;
  void* target = nullptr;  // null: `symbol`
  std::string symbol;      // "NAME" or "OBJECT:NAME"
  uint64_t offset = 0;     // probes: bytes past the function's start
  ir::Signature signature;  // fentry, fexit, fmod_ret
  uint64_t cookie = 0;
  std::string label;  // how sb_link_name names the program; empty: its name
  bool usdt = false;  // a USDT probe: `symbol` is "[OBJECT:]PROVIDER:NAME"; cookie: bpf_usdt_cookie's
};

// "/proc/self/exe:main" -> the executable's path: what the symbol search
// matches objects by (runtime/hook/symbols.h).
std::string object_spec(const std::string& path, const std::string& function) {
  if (path.empty()) return function;
  std::string object = path;
  char buf[4096];
  if (path == "/proc/self/exe") {
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) object.assign(buf, size_t(n));
  } else if (realpath(path.c_str(), buf)) {
    object = buf;
  }
  return object + ":" + function;
}

// One site of a link: the trampoline at `target`, the program linked into it.
sb_link::Site attach_site(sb_vm* vm, const AttachRequest& r, const bpf::Program& typed, void* target,
                          const std::string& name, uint64_t cookie,
                          std::shared_ptr<const rt::NativeProgram> compiled = nullptr) {
  const bool probe = tramp::is_probe(r.kind);
  rt::TrampolineOptions topts;
  topts.stats = vm->stats_mode != StatsMode::Off;
  topts.probe = probe;
  rt::TrampolineTable& table = process_trampolines();
  rt::Trampoline& t = as_status(SB_ERR_INVALID_ARGUMENT, [&]() -> rt::Trampoline& {
    return table.get(target, probe ? ir::Signature{} : r.signature, topts, name);
  });
  try {
    const rt::LinkId id =
        as_status(SB_ERR_UNAVAILABLE, [&] { return t.link(r.kind, typed, compiled, cookie, vm->helpers); });
    return {target, &t, id};
  } catch (...) {
    table.put(target);
    throw;
  }
}

// The map an ELF program's lddw names `name` (its handle), or null.
rt::Map* program_map(sb_vm* vm, const bpf::Program& p, std::string_view name) {
  for (const bpf::MapUse& m : p.maps)
    if (!m.value && m.name == name && m.insn + 1 < p.insns.size())
      return vm->env.map_from_handle(uint64_t(uint32_t(p.insns[m.insn].imm)) |
                                     uint64_t(uint32_t(p.insns[m.insn + 1].imm)) << 32);
  return nullptr;
}

// A USDT probe: every site of [OBJECT:]PROVIDER:NAME, each a probe whose
// cookie is its spec id in the object's __bpf_usdt_specs (what libbpf's
// usdt.bpf.h reads through bpf_get_attach_cookie when the kconfig
// LINUX_HAS_BPF_COOKIE is true, as Springboard sets it; the ip -> spec id
// map is filled too, for programs built to look it up), semaphores counted
// up while attached.
sb_link* attach_usdt(sb_vm* vm, const AttachRequest& r, const bpf::Program& typed, const char* api) {
  const size_t c2 = r.symbol.rfind(':');
  if (c2 == std::string::npos || c2 == 0)
    throw ApiError(SB_ERR_INVALID_ARGUMENT,
                   fmt::format("{}: USDT '{}': expected [OBJECT:]PROVIDER:NAME", api, r.symbol));
  const size_t c1 = r.symbol.rfind(':', c2 - 1);  // npos: no OBJECT
  const size_t provider_at = c1 == std::string::npos ? 0 : c1 + 1;
  const std::string object = r.symbol.substr(0, provider_at ? c1 : 0);
  const std::string provider = r.symbol.substr(provider_at, c2 - provider_at);
  const std::string probe_name = r.symbol.substr(c2 + 1);
  const std::vector<rt::UsdtProbe> probes =
      as_status(SB_ERR_INVALID_ARGUMENT, [&] { return rt::find_usdt_probes(object, provider, probe_name); });
  if (probes.empty())
    throw ApiError(SB_ERR_NOT_FOUND, fmt::format("{}: no USDT probe {}:{} in {}", api, provider, probe_name,
                                                 object.empty() ? "the executable or a loaded library" : object));
  as_status(SB_ERR_COMPILE, [&] {
    check_program(*vm, typed);
    return 0;
  });
  auto link = std::make_unique<sb_link>();
  link->vm = vm;
  link->kind = r.kind;
  link->name = fmt::format("{}: usdt {}:{}", r.label.empty() ? r.program->name : r.label, provider, probe_name);
  size_t breakpoints = 0;  // sites where the jump did not fit (Hook::breakpoint)
  link->usdt_specs = program_map(vm, typed, "__bpf_usdt_specs");
  link->usdt_ips = program_map(vm, typed, "__bpf_usdt_ip_to_spec_id");
  if (link->usdt_specs && link->usdt_specs->spec().value_size != rt::kUsdtSpecSize)
    throw ApiError(SB_ERR_INVALID_ARGUMENT, fmt::format("{}: __bpf_usdt_specs has {}-byte values; libbpf's struct "
                                                        "__bpf_usdt_spec is {} bytes",
                                                        api, link->usdt_specs->spec().value_size, rt::kUsdtSpecSize));
  // One compile for every site: each runs the same code with its own spec id.
  std::shared_ptr<const rt::NativeProgram> compiled;
  if (!probes.empty())
    compiled = as_status(SB_ERR_UNAVAILABLE, [&] { return std::make_shared<const rt::NativeProgram>(typed, vm->helpers); });
  for (const rt::UsdtProbe& p : probes) {
    uint32_t id = 0;
    if (link->usdt_specs) {
      std::lock_guard lock(vm->usdt_mutex);
      std::vector<bool>& used = vm->usdt_spec_ids[link->usdt_specs];
      used.resize(link->usdt_specs->spec().max_entries);
      const auto free = std::find(used.begin(), used.end(), false);
      if (free == used.end())
        throw ApiError(SB_ERR_NO_MEMORY, fmt::format("{}: USDT {}:{}: all {} slots of __bpf_usdt_specs are in use "
                                                     "(BPF_USDT_MAX_SPEC_CNT)",
                                                     api, provider, probe_name, used.size()));
      *free = true;
      id = uint32_t(free - used.begin());
      link->usdt_slots.push_back({id, p.address});
      const std::vector<uint8_t> spec = rt::usdt_spec(p.args, r.cookie);
      link->usdt_specs->update(&id, spec.data(), 0);
      if (link->usdt_ips) link->usdt_ips->update(&p.address, &id, 0);
    }
    const std::string where = fmt::format("USDT {}:{} at {:#x} in {}", provider, probe_name, p.address, p.object);
    link->sites.push_back(attach_site(vm, r, typed, reinterpret_cast<void*>(p.address), where, id, compiled));
    if (link->sites.back().trampoline->breakpoint()) ++breakpoints;
    if (p.semaphore) {
      auto* sema = reinterpret_cast<uint16_t*>(p.semaphore);
      __atomic_fetch_add(sema, 1, __ATOMIC_SEQ_CST);
      link->semaphores.push_back(sema);
    }
  }
  link->name += fmt::format(" ({} site{}{})", probes.size(), probes.size() == 1 ? "" : "s",
                            breakpoints ? fmt::format(", {} by breakpoint", breakpoints) : "");
  return vm->keep(vm->links, std::move(link));
}

sb_link* attach(sb_vm* vm, const AttachRequest& r, const char* api) {
  const bool probe = tramp::is_probe(r.kind);
  // The type it runs as: a probe's ctx is pt_regs; fentry & co. keep the
  // raw checks they always had unless their section says "tracing".
  const bpf::ProgramType* want = probe ? &bpf::probe_program_type(Arch::X86_64)
                                 : r.section_type ? &bpf::tracing_program_type()
                                                  : nullptr;
  if (r.section_type && want != r.section_type)
    throw ApiError(SB_ERR_INVALID_ARGUMENT,
                   fmt::format("{}: program '{}' is a {} program (by its ELF section); a {} needs a {} program", api,
                               r.program->name, r.section_type->name, r.usdt ? "usdt" : tramp::kind_name(r.kind),
                               want ? want->name : "tracing"));
  auto typed = std::make_shared<bpf::Program>(*r.program);
  if (want) typed->type = want;  // a probe's pt_regs, a tracing section's argument array
  if (r.usdt && tramp::overrides_return(*r.program))
    throw ApiError(SB_ERR_INVALID_ARGUMENT, fmt::format("{}: program '{}' calls bpf_override_return, which needs a "
                                                        "probe at a function's entry, not a USDT site",
                                                        api, r.program->name));
  if (r.usdt) return attach_usdt(vm, r, *typed, api);
  void* target = r.target;
  std::string name = r.symbol;
  if (!target) {
    if (name.empty()) throw ApiError(SB_ERR_NULL, fmt::format("{}: opts->target and opts->symbol are both NULL", api));
    const std::optional<rt::FunctionSymbol> f = rt::find_process_function(name);
    if (!f)
      throw ApiError(SB_ERR_NOT_FOUND, fmt::format("{}: symbol '{}': no function of that name in the executable or "
                                                   "a loaded library",
                                                   api, name));
    if (r.offset && r.offset >= f->size)
      throw ApiError(SB_ERR_INVALID_ARGUMENT, fmt::format("{}: {}+{:#x} is past the end of the function ({} bytes)",
                                                          api, name, r.offset, f->size));
    target = reinterpret_cast<void*>(f->start + r.offset);
  } else {
    target = static_cast<uint8_t*>(target) + r.offset;
  }
  // A uretprobe and a probe that may override the return need the return
  // address on top of the stack: a function's entry.
  const char* entry_only = r.kind == tramp::Kind::Uretprobe ? "a uretprobe"
                           : r.kind == tramp::Kind::Uprobe && tramp::overrides_return(*r.program)
                               ? "a uprobe calling bpf_override_return"
                               : nullptr;
  if (entry_only && r.offset)
    throw ApiError(SB_ERR_INVALID_ARGUMENT,
                   fmt::format("{}: {} attaches at a function's entry, not at +{:#x}", api, entry_only, r.offset));
  if (entry_only)
    if (const std::optional<rt::SymbolIndex> index = rt::SymbolIndex::of(target))
      if (const std::optional<rt::FunctionSymbol> f = index->function_at(reinterpret_cast<uint64_t>(target));
          f && f->start != reinterpret_cast<uint64_t>(target))
        throw ApiError(SB_ERR_INVALID_ARGUMENT,
                       fmt::format("{}: {} is +{:#x} into {}: {} attaches at a function's entry", api, target,
                                   reinterpret_cast<uint64_t>(target) - f->start, f->name, entry_only));
  if (name.empty()) name = fmt::format("function at {}", target);
  else if (r.offset) name = fmt::format("{}+{:#x}", name, r.offset);
  as_status(SB_ERR_COMPILE, [&] {
    check_program(*vm, *typed);
    return 0;
  });
  auto link = std::make_unique<sb_link>();
  link->vm = vm;
  link->name = fmt::format("{}: {} {}", r.label.empty() ? r.program->name : r.label, tramp::kind_name(r.kind), name);
  link->kind = r.kind;
  link->sites.push_back(attach_site(vm, r, *typed, target, name, r.cookie));
  if (link->sites.back().trampoline->breakpoint()) link->name += " (breakpoint)";
  return vm->keep(vm->links, std::move(link));
}

}  // namespace

sb_link::~sb_link() {
  for (const Site& site : sites) {
    try {
      site.trampoline->unlink(site.id);
      process_trampolines().put(site.target);
    } catch (...) {
      // Already unlinked: nothing left to give back.
    }
  }
  for (uint16_t* sema : semaphores) __atomic_fetch_sub(sema, 1, __ATOMIC_SEQ_CST);
  if (usdt_specs && !usdt_slots.empty()) {
    std::lock_guard lock(vm->usdt_mutex);
    std::vector<bool>& used = vm->usdt_spec_ids[usdt_specs];
    for (auto [id, address] : usdt_slots) {
      if (id < used.size()) used[id] = false;
      if (usdt_ips) usdt_ips->remove(&address);
    }
  }
}

extern "C" {

sb_status sb_program_attach(sb_program* program, const sb_attach_opts* opts, sb_link** out) {
  if (!program) return SB_ERR_NULL;
  sb_vm* vm = program->vm;
  return guarded(vm, SB_ERR_INTERNAL, [&] {
    require(out, "sb_program_attach", "out");
    *out = nullptr;
    require(opts, "sb_program_attach", "opts");
#if !defined(__x86_64__)
    throw ApiError(SB_ERR_UNAVAILABLE, "sb_program_attach: attaching runs on x86-64 hosts only");
#endif
    AttachRequest r;
    r.kind = attach_kind(opts->kind);
    if (!tramp::is_probe(r.kind)) {
      require(opts->signature, "sb_program_attach", "opts->signature");
      r.signature = as_status(SB_ERR_INVALID_ARGUMENT, [&] {
        return tramp::parse_signature(opts->signature, "sb_program_attach: opts->signature");
      });
    }
    r.program = program->program;
    r.section_type = program->section_type;
    r.target = const_cast<void*>(opts->target);
    r.symbol = opts->symbol && *opts->symbol ? opts->symbol : "";
    r.usdt = opts->kind == SB_ATTACH_USDT;
    if (r.usdt) require(opts->symbol, "sb_program_attach", "opts->symbol");
    r.offset = tramp::is_probe(r.kind) && !r.usdt ? opts->offset : 0;
    r.cookie = opts->cookie;
    *out = attach(vm, r, "sb_program_attach");
    return SB_OK;
  });
}

sb_status sb_vm_attach_object(sb_vm* vm, const char* path, sb_link** links, size_t capacity, size_t* count) {
  if (!vm) return SB_ERR_NULL;
  return guarded(vm, SB_ERR_BAD_ELF, [&] {
    require(path, "sb_vm_attach_object", "path");
    require(count, "sb_vm_attach_object", "count");
    if (capacity) require(links, "sb_vm_attach_object", "links");
    *count = 0;
#if !defined(__x86_64__)
    throw ApiError(SB_ERR_UNAVAILABLE, "sb_vm_attach_object: attaching runs on x86-64 hosts only");
#endif
    const std::vector<uint8_t> bytes = read_file(path);
    std::vector<AttachRequest> requests;
    for (bpf::ElfProgram& elf : vm->env.load_elf_all(bytes, path)) {
      const std::string where = fmt::format("{}: section '{}'", path, elf.section);
      const std::optional<bpf::AttachPoint> a =
          as_status(SB_ERR_INVALID_ARGUMENT, [&] { return bpf::parse_attach_point(elf.section, where); });
      if (!a || !a->has_target) continue;  // not a tracing section, or attached by hand
      AttachRequest r;
      if (!a->usdt && !tramp::is_probe(a->kind)) {  // the target's prototype, from the object's BTF
        const std::optional<std::string> sig =
            as_status(SB_ERR_INVALID_ARGUMENT, [&] { return bpf::btf_signature(bytes, path, a->function); });
        if (!sig)
          throw ApiError(SB_ERR_UNAVAILABLE,
                         fmt::format("{}: {} needs the signature of '{}', and the object's BTF has no function of "
                                     "that name (declare it in the object, or attach with sb_program_attach)",
                                     where, tramp::kind_name(a->kind), a->function));
        r.signature = as_status(SB_ERR_INVALID_ARGUMENT, [&] {
          return tramp::parse_signature(*sig, fmt::format("{}: BTF of '{}'", where, a->function));
        });
      }
      r.label = elf.function.empty() ? elf.section : elf.function;
      r.program = std::make_shared<const bpf::Program>(std::move(elf.program));
      r.section_type = elf.type;
      r.kind = a->kind;
      r.usdt = a->usdt;
      r.symbol = object_spec(a->path, a->usdt ? a->provider + ":" + a->function : a->function);
      r.offset = a->offset;
      requests.push_back(std::move(r));
    }
    std::vector<sb_link*> made;
    try {
      for (const AttachRequest& r : requests) made.push_back(attach(vm, r, path));
    } catch (...) {
      for (sb_link* l : made) vm->drop(vm->links, l);
      throw;
    }
    *count = made.size();
    if (made.size() > capacity) {
      for (sb_link* l : made) vm->drop(vm->links, l);
      throw ApiError(SB_ERR_INVALID_ARGUMENT, fmt::format("sb_vm_attach_object: {} has {} programs to attach, "
                                                          "links holds {} (nothing attached)",
                                                          path, made.size(), capacity));
    }
    std::copy(made.begin(), made.end(), links);
    return SB_OK;
  });
}

void sb_link_destroy(sb_link* link) {
  if (!link) return;
  link->vm->drop(link->vm->links, link);
}

const char* sb_link_name(const sb_link* link) { return link ? link->name.c_str() : ""; }

sb_status sb_link_stats(const sb_link* link, sb_stats* out) {
  if (!link) return SB_ERR_NULL;
  if (!out) return fail(link->vm, SB_ERR_NULL, "sb_link_stats: out is NULL");
  return guarded(link->vm, SB_ERR_INTERNAL, [&] {
    *out = {};
    for (const sb_link::Site& site : link->sites) {
      const rt::ProgStats s = site.trampoline->stats(site.id);
      out->run_count += s.run_count;
      out->run_time_ns += s.run_time_ns;
      out->misses += s.misses + (link->kind == tramp::Kind::Uretprobe ? rt::return_misses(*site.trampoline) : 0);
    }
    return SB_OK;
  });
}

}  // extern "C"
