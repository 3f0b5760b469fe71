// libbpf side of the kernel as an engine (runtime/progtypes/kernel_test_run.h).
#include "runtime/progtypes/kernel_test_run.h"

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <sched.h>
#include <utility>

#ifdef SB_HAVE_LIBBPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#endif

namespace sb::rt {

#ifdef SB_HAVE_LIBBPF

struct KernelObject::Impl {
  bpf_object* obj = nullptr;
  bpf_program* prog = nullptr;
  perf_buffer* perf = nullptr;
  std::vector<std::vector<uint8_t>> records;
  // Every run of this object on one CPU: a per-CPU map then holds what a
  // single CPU's runs leave, as in Springboard's one-CPU environment,
  // instead of whatever the scheduler's migrations between steps spread.
  int cpu = -1;
  ~Impl() {
    if (perf) perf_buffer__free(perf);
    if (obj) bpf_object__close(obj);
  }
};

KernelObject::~KernelObject() = default;

namespace {
// libbpf's messages during one load (the verifier's log among them), for
// the reason a load failed. One load at a time (load_mutex).
std::string* libbpf_log = nullptr;
int capture_libbpf(enum libbpf_print_level, const char* format, va_list args) {
  if (!libbpf_log) return 0;
  char line[4096];
  const int n = vsnprintf(line, sizeof line, format, args);
  if (n > 0) libbpf_log->append(line, std::min<size_t>(size_t(n), sizeof line - 1));
  return n;
}
}  // namespace

std::unique_ptr<KernelObject> KernelObject::load(const std::string& path, const std::string& function,
                                                 std::string* why) {
  static std::mutex load_mutex;
  std::lock_guard lock(load_mutex);
  std::string log;
  libbpf_log = &log;
  libbpf_print_fn_t old = libbpf_set_print(capture_libbpf);
  struct Restore {
    libbpf_print_fn_t old;
    ~Restore() {
      libbpf_set_print(old);
      libbpf_log = nullptr;
    }
  } restore{old};
  std::unique_ptr<KernelObject> k(new KernelObject);
  k->impl_ = std::make_unique<Impl>();
  Impl& i = *k->impl_;
  i.obj = bpf_object__open_file(path.c_str(), nullptr);
  if (!i.obj) {
    *why = path + ": bpf_object__open_file: " + std::strerror(errno);
    return nullptr;
  }
  i.prog = function.empty() ? bpf_object__next_program(i.obj, nullptr)
                            : bpf_object__find_program_by_name(i.obj, function.c_str());
  if (!i.prog) {
    *why = path + ": no program " + function;
    return nullptr;
  }
  // Only the chosen program (and the functions it calls), as Springboard
  // loads it: another program of the object the kernel refuses is not its business.
  bpf_program* other;
  bpf_object__for_each_program(other, i.obj) bpf_program__set_autoload(other, other == i.prog);
  if (const int err = bpf_object__load(i.obj)) {
    *why = path + ": bpf_object__load: " + std::strerror(-err) + "\n" + log;
    return nullptr;
  }
  return k;
}

bool KernelObject::update(const std::string& map, const std::vector<uint8_t>& key, const std::vector<uint8_t>& value) {
  bpf_map* m = bpf_object__find_map_by_name(impl_->obj, map.c_str());
  return m && bpf_map_update_elem(bpf_map__fd(m), key.data(), value.data(), BPF_ANY) == 0;
}

KernelObject::Run KernelObject::test_run(const std::vector<uint8_t>& data,
                                         const std::optional<std::vector<uint8_t>>& ctx, uint32_t repeat) {
  Run r;
  r.data.resize(data.size() + 4096);
  r.ctx.resize(ctx ? std::max<size_t>(ctx->size(), 256) : 0);
  LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = data.data(), .data_out = r.data.data(),
              .data_size_in = uint32_t(data.size()), .data_size_out = uint32_t(r.data.size()),
              .ctx_in = ctx ? ctx->data() : nullptr, .ctx_out = ctx ? r.ctx.data() : nullptr,
              .ctx_size_in = ctx ? uint32_t(ctx->size()) : 0u, .ctx_size_out = uint32_t(r.ctx.size()),
              .repeat = int(repeat));
  if (impl_->cpu < 0) impl_->cpu = std::max(sched_getcpu(), 0);
  cpu_set_t saved, one;
  const bool pinned = sched_getaffinity(0, sizeof saved, &saved) == 0;
  CPU_ZERO(&one);
  CPU_SET(impl_->cpu, &one);
  if (pinned) sched_setaffinity(0, sizeof one, &one);
  const int rc = bpf_prog_test_run_opts(bpf_program__fd(impl_->prog), &run);
  const int err = errno;
  if (pinned) sched_setaffinity(0, sizeof saved, &saved);
  if (rc != 0) {
    r.error = err;
    return r;
  }
  r.retval = run.retval;
  r.duration_ns = run.duration;
  r.data.resize(run.data_size_out);
  r.ctx.resize(ctx ? run.ctx_size_out : 0);
  return r;
}

std::vector<MapEntry> KernelObject::entries(const std::string& name) const {
  std::vector<MapEntry> out;
  bpf_map* m = bpf_object__find_map_by_name(impl_->obj, name.c_str());
  if (!m) return out;
  const int fd = bpf_map__fd(m);
  const uint32_t key_size = bpf_map__key_size(m), value_size = bpf_map__value_size(m);
  const bpf_map_type type = bpf_map__type(m);
  const bool per_cpu = type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
                       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
  const size_t cpus = per_cpu ? size_t(libbpf_num_possible_cpus()) : 1;
  const size_t stride = per_cpu ? (value_size + 7) / 8 * 8 : value_size;
  std::vector<uint8_t> key(key_size), next(key_size), value(stride * cpus);
  auto add = [&](const std::vector<uint8_t>& k) {
    if (bpf_map_lookup_elem(fd, k.data(), value.data()) != 0) return;
    MapEntry e{k, {}};
    for (size_t c = 0; c < cpus; ++c)
      e.values.emplace_back(value.begin() + long(c * stride), value.begin() + long(c * stride + value_size));
    out.push_back(std::move(e));
  };
  if (type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY) {
    for (uint32_t i = 0; i < bpf_map__max_entries(m); ++i) {
      std::memcpy(key.data(), &i, 4);
      add(key);
    }
    return out;
  }
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    add(next);
    key = next;
    prev = key.data();
  }
  std::sort(out.begin(), out.end(), [](const MapEntry& a, const MapEntry& b) { return a.key < b.key; });
  return out;
}

std::vector<std::string> KernelObject::map_names() const {
  std::vector<std::string> out;
  bpf_map* m = nullptr;
  bpf_object__for_each_map(m, impl_->obj) out.push_back(bpf_map__name(m));
  return out;
}

bool KernelObject::open_perf_buffer(const std::string& name) {
  bpf_map* m = bpf_object__find_map_by_name(impl_->obj, name.c_str());
  if (!m || impl_->perf) {
    errno = EINVAL;
    return false;
  }
  auto sample = [](void* ctx, int, void* data, __u32 size) {
    const auto* p = static_cast<const uint8_t*>(data);
    static_cast<Impl*>(ctx)->records.emplace_back(p, p + size);
  };
  impl_->perf = perf_buffer__new(bpf_map__fd(m), 8, sample, nullptr, impl_.get(), nullptr);
  if (!impl_->perf) return false;
  return true;
}

std::vector<std::vector<uint8_t>> KernelObject::perf_records() {
  if (impl_->perf) perf_buffer__consume(impl_->perf);
  return std::exchange(impl_->records, {});
}

#else  // !SB_HAVE_LIBBPF

struct KernelObject::Impl {};
KernelObject::~KernelObject() = default;
std::unique_ptr<KernelObject> KernelObject::load(const std::string&, const std::string&, std::string* why) {
  *why = "built without libbpf (apt-get install libbpf-dev, then reconfigure)";
  return nullptr;
}
bool KernelObject::update(const std::string&, const std::vector<uint8_t>&, const std::vector<uint8_t>&) {
  return false;
}
KernelObject::Run KernelObject::test_run(const std::vector<uint8_t>&, const std::optional<std::vector<uint8_t>>&,
                                         uint32_t) {
  return Run{ENOSYS, 0, {}, {}, 0};
}
std::vector<MapEntry> KernelObject::entries(const std::string&) const { return {}; }
std::vector<std::string> KernelObject::map_names() const { return {}; }
bool KernelObject::open_perf_buffer(const std::string&) {
  errno = ENOSYS;
  return false;
}
std::vector<std::vector<uint8_t>> KernelObject::perf_records() { return {}; }

#endif

}  // namespace sb::rt
