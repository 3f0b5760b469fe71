// springboard.hpp: a header-only C++17 wrapper over the C API
// (springboard.h). Failures throw springboard::error, carrying the
// sb_status and the VM's message.
//
//   springboard::vm vm;
//   springboard::program prog = vm.load_file("prog.o", "xdp");
//   springboard::code jit = prog.compile("x86-64");
//   uint64_t r0 = jit.run(packet.data(), packet.size());
//
// A vm owns everything; program and code own their handles (moving
// transfers them) and must not outlive their vm. A map is a view, valid as
// long as its vm.
#ifndef SPRINGBOARD_HPP
#define SPRINGBOARD_HPP

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "springboard.h"

namespace springboard {

class error : public std::runtime_error {
 public:
  error(sb_status code, const std::string& message) : std::runtime_error(message), code_(code) {}
  sb_status code() const noexcept { return code_; }

 private:
  sb_status code_;
};

namespace detail {
inline void check(sb_status status, const sb_vm* vm) {
  if (status == SB_OK) return;
  const char* message = vm ? sb_vm_last_error(vm) : "";
  throw error(status, message && *message ? message : sb_status_name(status));
}
inline const char* c_str_or_null(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

// A handle destroyed with its owner; moving transfers it.
template <typename T, void (*Destroy)(T*)>
class owned {
 public:
  owned(sb_vm* vm, T* handle) noexcept : vm_(vm), handle_(handle) {}
  owned(owned&& o) noexcept : vm_(o.vm_), handle_(std::exchange(o.handle_, nullptr)) {}
  owned& operator=(owned&& o) noexcept {
    if (this != &o) {
      Destroy(handle_);
      vm_ = o.vm_;
      handle_ = std::exchange(o.handle_, nullptr);
    }
    return *this;
  }
  owned(const owned&) = delete;
  owned& operator=(const owned&) = delete;
  ~owned() { Destroy(handle_); }
  T* get() const noexcept { return handle_; }

 protected:
  sb_vm* vm_;
  T* handle_;
};
}  // namespace detail

using stats = sb_stats;
using map_info = sb_map_info;

class map {
 public:
  map(sb_vm* vm, sb_map* m) : vm_(vm), map_(m) {}
  sb_map* get() const noexcept { return map_; }
  map_info info() const {
    map_info i;
    detail::check(sb_map_get_info(map_, &i), vm_);
    return i;
  }
  uint64_t handle() const { return info().handle; }

  // Raw bytes; key and value sizes must be the map's.
  bool lookup(const void* key, size_t key_size, void* value, size_t value_size) const {
    sb_status s = sb_map_lookup(map_, key, key_size, value, value_size);
    if (s == SB_ERR_NOT_FOUND) return false;
    detail::check(s, vm_);
    return true;
  }
  void update(const void* key, size_t key_size, const void* value, size_t value_size,
              uint64_t flags = SB_UPDATE_ANY) {
    detail::check(sb_map_update(map_, key, key_size, value, value_size, flags), vm_);
  }
  bool remove(const void* key, size_t key_size) {
    sb_status s = sb_map_delete(map_, key, key_size);
    if (s == SB_ERR_NOT_FOUND) return false;
    detail::check(s, vm_);
    return true;
  }

  // Typed: sizeof(K) and sizeof(V) must be the map's sizes.
  template <typename V, typename K>
  std::optional<V> value(const K& key) const {
    V value{};
    if (!lookup(&key, sizeof key, &value, sizeof value)) return std::nullopt;
    return value;
  }
  template <typename K, typename V>
  void set(const K& key, const V& value, uint64_t flags = SB_UPDATE_ANY) {
    update(&key, sizeof key, &value, sizeof value, flags);
  }
  template <typename K>
  bool erase(const K& key) {
    return remove(&key, sizeof key);
  }

  // Every element (sb_map_for_each): its key and its values (one per
  // possible CPU for per-CPU maps, else one).
  struct entry {
    std::vector<uint8_t> key;
    std::vector<std::vector<uint8_t>> values;
  };
  std::vector<entry> entries() const {
    std::vector<entry> out;
    detail::check(sb_map_for_each(map_, &map::collect_entry, &out, nullptr), vm_);
    return out;
  }

  // An array or hash of maps: the map in a slot (none when empty), and
  // filling one (sb_map_set_inner).
  template <typename K>
  std::optional<map> inner(const K& key) const {
    sb_map* m = nullptr;
    sb_status s = sb_map_get_inner(map_, &key, sizeof key, &m);
    if (s == SB_ERR_NOT_FOUND) return std::nullopt;
    detail::check(s, vm_);
    return map(vm_, m);
  }
  template <typename K>
  void set_inner(const K& key, const map& inner, uint64_t flags = SB_UPDATE_ANY) {
    detail::check(sb_map_set_inner(map_, &key, sizeof key, inner.get(), flags), vm_);
  }

  // A ring buffer's records, in order.
  std::vector<std::vector<uint8_t>> consume() {
    std::vector<std::vector<uint8_t>> records;
    detail::check(sb_map_consume(map_, &map::collect, &records, nullptr), vm_);
    return records;
  }

 private:
  static void collect(void* ctx, const void* data, size_t size) {
    auto* bytes = static_cast<const uint8_t*>(data);
    try {
      static_cast<std::vector<std::vector<uint8_t>>*>(ctx)->emplace_back(bytes, bytes + size);
    } catch (...) {
      // Never unwind through the C library; the record is lost.
    }
  }
  static void collect_entry(void* ctx, const void* key, size_t key_size, const void* values, size_t value_size,
                            size_t value_count) {
    auto* k = static_cast<const uint8_t*>(key);
    auto* v = static_cast<const uint8_t*>(values);
    try {
      entry e{std::vector<uint8_t>(k, k + key_size), {}};
      for (size_t i = 0; i < value_count; ++i) e.values.emplace_back(v + i * value_size, v + (i + 1) * value_size);
      static_cast<std::vector<entry>*>(ctx)->push_back(std::move(e));
    } catch (...) {
      // Never unwind through the C library; the element is left out.
    }
  }
  sb_vm* vm_;
  sb_map* map_;
};

class code : public detail::owned<sb_code, sb_code_destroy> {
 public:
  using owned::owned;
  std::string engine() const { return sb_code_engine(handle_); }
  uint64_t run(void* mem = nullptr, size_t size = 0) {
    uint64_t r0 = 0;
    detail::check(sb_code_run(handle_, mem, size, &r0), vm_);
    return r0;
  }
  uint64_t run(std::vector<uint8_t>& mem) { return run(mem.empty() ? nullptr : mem.data(), mem.size()); }
  // The compiled function (sb_code_function); throws for code that has none.
  sb_native_fn function() const {
    sb_native_fn fn = nullptr;
    detail::check(sb_code_function(handle_, &fn), vm_);
    return fn;
  }
  std::vector<uint8_t> machine_code() const {
    size_t size = 0;
    const uint8_t* bytes = sb_code_machine_code(handle_, &size);
    return bytes ? std::vector<uint8_t>(bytes, bytes + size) : std::vector<uint8_t>();
  }
  std::string disassembly() {
    const char* text = sb_code_disassembly(handle_);
    if (!text) detail::check(sb_vm_last_status(vm_), vm_);
    return text ? text : "";
  }
  springboard::stats stats() const {
    springboard::stats s;
    detail::check(sb_code_stats(handle_, &s), vm_);
    return s;
  }
};

// A program attached around a function of this process (sb_program_attach);
// destroying it detaches.
class link : public detail::owned<sb_link, sb_link_destroy> {
 public:
  using owned::owned;
  springboard::stats stats() const {
    springboard::stats s;
    detail::check(sb_link_stats(handle_, &s), vm_);
    return s;
  }
  std::string name() const { return sb_link_name(handle_); }  // "PROGRAM: KIND TARGET"
};

class program : public detail::owned<sb_program, sb_program_destroy> {
 public:
  using owned::owned;
  std::string name() const { return sb_program_name(handle_); }
  size_t slot_count() const { return sb_program_slot_count(handle_); }
  // An engine ("interp", "x86_64_native", "arm64_emu", ...) or an
  // architecture ("x86-64", "arm64", "riscv64"); see sb_engine_name.
  code compile(const std::string& engine) {
    sb_code* c = nullptr;
    detail::check(sb_program_compile(handle_, engine.c_str(), &c), vm_);
    return code(vm_, c);
  }
  springboard::stats stats() const {
    springboard::stats s;
    detail::check(sb_program_stats(handle_, &s), vm_);
    return s;
  }
  // sb_program_test_run with output buffers sized to hold everything.
  struct clone {
    uint32_t ifindex = 0;
    uint64_t flags = 0;
    std::vector<uint8_t> packet;
  };
  struct test_result {
    uint32_t retval = 0;
    std::vector<uint8_t> data, ctx;
    uint64_t duration_ns = 0;
    // A redirect's target (sb_test_run's redirect fields), bpf_clone_redirect's
    // packets and the tunnel key set.
    uint32_t redirect = SB_REDIRECT_NONE, redirect_ifindex = 0, redirect_key = 0;
    sb_map* redirect_map = nullptr;
    uint64_t redirect_flags = 0;
    std::vector<clone> clones;
    std::vector<uint8_t> tunnel_key;
  };
  test_result test_run(const std::string& engine, const std::vector<uint8_t>& data,
                       const std::vector<uint8_t>* ctx = nullptr, uint32_t repeat = 1, const char* type = nullptr) {
    test_result r;
    r.data.resize(data.size() + 4096);  // an XDP frame grows by at most its page
    r.ctx.resize(std::max<size_t>(ctx ? ctx->size() : 0, 512));  // struct __sk_buff is 192 bytes, xdp_md 24
    sb_test_run t{};
    t.data_in = data.data();
    t.data_size_in = data.size();
    t.ctx_in = ctx ? ctx->data() : nullptr;
    t.ctx_size_in = ctx ? ctx->size() : 0;
    t.repeat = repeat;
    t.data_out = r.data.data();
    t.data_size_out = r.data.size();
    t.ctx_out = r.ctx.data();
    t.ctx_size_out = r.ctx.size();
    t.on_clone = &program::collect_clone;
    t.on_clone_ctx = &r.clones;
    detail::check(sb_program_test_run(handle_, engine.c_str(), type, &t), vm_);
    r.redirect = t.redirect;
    r.redirect_ifindex = t.redirect_ifindex;
    r.redirect_map = t.redirect_map;
    r.redirect_key = t.redirect_key;
    r.redirect_flags = t.redirect_flags;
    r.tunnel_key.assign(t.tunnel_key, t.tunnel_key + t.tunnel_key_size);
    r.data.resize(t.data_size_out);
    r.ctx.resize(t.ctx_size_out);
    r.retval = t.retval;
    r.duration_ns = t.duration_ns;
    return r;
  }

  // Around a function found by name ("NAME" or "OBJECT:NAME"), or at an
  // address, with its signature ("i64, i64 -> i64"): see sb_program_attach.
  springboard::link attach(sb_attach_kind kind, const std::string& symbol, const std::string& signature,
                           uint64_t cookie = 0) {
    return attach_opts(kind, nullptr, symbol.c_str(), signature, cookie);
  }
  springboard::link attach_at(sb_attach_kind kind, const void* target, const std::string& signature,
                              uint64_t cookie = 0) {
    return attach_opts(kind, target, nullptr, signature, cookie);
  }
  // A uprobe at SYMBOL+offset (the offset must start an instruction), or a
  // uretprobe on SYMBOL: ctx is the pt_regs there, no signature needed.
  springboard::link attach_uprobe(const std::string& symbol, uint64_t offset = 0, uint64_t cookie = 0) {
    return attach_opts(SB_ATTACH_UPROBE, nullptr, symbol.c_str(), "", cookie, offset);
  }
  springboard::link attach_uprobe_at(const void* address, uint64_t cookie = 0) {
    return attach_opts(SB_ATTACH_UPROBE, address, nullptr, "", cookie);
  }
  springboard::link attach_uretprobe(const std::string& symbol, uint64_t cookie = 0) {
    return attach_opts(SB_ATTACH_URETPROBE, nullptr, symbol.c_str(), "", cookie);
  }
  // Every site of a USDT probe ("PROVIDER:NAME" or "OBJECT:PROVIDER:NAME");
  // `usdt_cookie` is what bpf_usdt_cookie() gives the program.
  springboard::link attach_usdt(const std::string& probe, uint64_t usdt_cookie = 0) {
    return attach_opts(SB_ATTACH_USDT, nullptr, probe.c_str(), "", usdt_cookie);
  }

 private:
  static void collect_clone(void* ctx, uint32_t ifindex, uint64_t flags, const void* packet, size_t size) {
    auto* bytes = static_cast<const uint8_t*>(packet);
    try {
      static_cast<std::vector<clone>*>(ctx)->push_back({ifindex, flags, std::vector<uint8_t>(bytes, bytes + size)});
    } catch (...) {
      // Never unwind through the C library; the copy is lost.
    }
  }
  springboard::link attach_opts(sb_attach_kind kind, const void* target, const char* symbol,
                                const std::string& signature, uint64_t cookie, uint64_t offset = 0) {
    sb_attach_opts o{};
    o.kind = kind;
    o.target = target;
    o.symbol = symbol;
    o.signature = detail::c_str_or_null(signature);
    o.cookie = cookie;
    o.offset = offset;
    sb_link* l = nullptr;
    detail::check(sb_program_attach(handle_, &o, &l), vm_);
    return springboard::link(vm_, l);
  }
};

class vm {
 public:
  explicit vm(const sb_vm_options& options = sb_vm_options{}) { detail::check(sb_vm_create(&options, &vm_), nullptr); }
  vm(vm&& o) noexcept : vm_(std::exchange(o.vm_, nullptr)) {}
  vm& operator=(vm&& o) noexcept {
    if (this != &o) {
      sb_vm_destroy(vm_);
      vm_ = std::exchange(o.vm_, nullptr);
    }
    return *this;
  }
  vm(const vm&) = delete;
  vm& operator=(const vm&) = delete;
  ~vm() { sb_vm_destroy(vm_); }

  sb_vm* get() const noexcept { return vm_; }

  program load_bytecode(const void* bytes, size_t size, const std::string& name = "") {
    sb_program* p = nullptr;
    detail::check(sb_vm_load_bytecode(vm_, detail::c_str_or_null(name), bytes, size, &p), vm_);
    return program(vm_, p);
  }
  program load_asm(const std::string& source, const std::string& name = "") {
    sb_program* p = nullptr;
    detail::check(sb_vm_load_asm(vm_, detail::c_str_or_null(name), source.c_str(), &p), vm_);
    return program(vm_, p);
  }
  program load_elf(const void* bytes, size_t size, const std::string& section = "", const std::string& function = "",
                   const std::string& name = "") {
    sb_program* p = nullptr;
    detail::check(sb_vm_load_elf(vm_, detail::c_str_or_null(name), bytes, size, detail::c_str_or_null(section),
                                 detail::c_str_or_null(function), &p),
                  vm_);
    return program(vm_, p);
  }
  program load_file(const std::string& path, const std::string& section = "", const std::string& function = "") {
    sb_program* p = nullptr;
    detail::check(
        sb_vm_load_file(vm_, path.c_str(), detail::c_str_or_null(section), detail::c_str_or_null(function), &p), vm_);
    return program(vm_, p);
  }

  // Every program of an ELF object, sharing its maps (sb_vm_load_object).
  std::vector<program> load_object(const std::string& path) {
    size_t n = 0;
    sb_status s = sb_vm_load_object(vm_, path.c_str(), nullptr, 0, &n);
    if (s == SB_OK) return {};
    if (s != SB_ERR_INVALID_ARGUMENT || n == 0) detail::check(s, vm_);
    std::vector<sb_program*> handles(n);
    detail::check(sb_vm_load_object(vm_, path.c_str(), handles.data(), n, &n), vm_);
    std::vector<program> out;
    for (sb_program* p : handles) out.emplace_back(vm_, p);
    return out;
  }
  // Loads the object and attaches every program whose section names a
  // target ("uprobe/PATH:FUNC+OFF", "uretprobe/PATH:FUNC"): the links, in
  // section order (sb_vm_attach_object). What the `trace` command builds on.
  std::vector<springboard::link> attach_object(const std::string& path) {
    std::vector<sb_link*> handles(16);
    size_t n = 0;
    sb_status s = sb_vm_attach_object(vm_, path.c_str(), handles.data(), handles.size(), &n);
    if (s == SB_ERR_INVALID_ARGUMENT && n > handles.size()) {  // more than 16: again with room for all
      handles.resize(n);
      s = sb_vm_attach_object(vm_, path.c_str(), handles.data(), handles.size(), &n);
    }
    detail::check(s, vm_);
    std::vector<springboard::link> out;
    for (size_t i = 0; i < n; ++i) out.emplace_back(vm_, handles[i]);
    return out;
  }

  void register_helper(uint32_t id, sb_helper_fn fn, const std::string& name = "") {
    detail::check(sb_vm_register_helper(vm_, id, detail::c_str_or_null(name), fn), vm_);
  }

  map create_map(const std::string& name, sb_map_type type, uint32_t key_size, uint32_t value_size,
                 uint32_t max_entries) {
    sb_map* m = nullptr;
    detail::check(sb_vm_create_map(vm_, name.c_str(), type, key_size, value_size, max_entries, &m), vm_);
    return map(vm_, m);
  }
  map create_map_of_maps(const std::string& name, sb_map_type type, uint32_t key_size, uint32_t max_entries,
                         const map& inner) {
    sb_map* m = nullptr;
    detail::check(sb_vm_create_map_of_maps(vm_, name.c_str(), type, key_size, max_entries, inner.get(), &m), vm_);
    return map(vm_, m);
  }
  std::optional<map> find_map(const std::string& name) {
    sb_map* m = nullptr;
    sb_status s = sb_vm_find_map(vm_, name.c_str(), &m);
    if (s == SB_ERR_NOT_FOUND) return std::nullopt;
    detail::check(s, vm_);
    return map(vm_, m);
  }
  std::vector<map> maps() {
    std::vector<map> all;
    for (size_t i = 0, n = sb_vm_map_count(vm_); i < n; ++i) all.emplace_back(vm_, sb_vm_map_at(vm_, i));
    return all;
  }

  std::string take_trace() { return sb_vm_take_trace(vm_); }
  void set_user_data(void* p) noexcept { sb_vm_set_user_data(vm_, p); }
  void* user_data() const noexcept { return sb_vm_user_data(vm_); }

 private:
  sb_vm* vm_ = nullptr;
};

// The engines of this build on this host.
inline std::vector<std::string> engines() {
  std::vector<std::string> names;
  for (size_t i = 0, n = sb_engine_count(); i < n; ++i) names.emplace_back(sb_engine_name(i));
  return names;
}

}  // namespace springboard

#endif  // SPRINGBOARD_HPP
