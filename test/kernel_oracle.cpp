#include "test/kernel_oracle.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#ifdef SB_HAVE_LIBBPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <unistd.h>
#endif

namespace sb::test {

#ifdef SB_HAVE_LIBBPF

namespace {

// The same bit layout: opcode, dst:4 | src:4, off, imm.
static_assert(sizeof(bpf_insn) == sizeof(bpf::Insn));

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::vector<bpf_insn> to_kernel(const bpf::Program& p) {
  std::vector<bpf_insn> out(p.insns.size());
  for (size_t i = 0; i < p.insns.size(); ++i) {
    const bpf::Insn& in = p.insns[i];
    out[i].code = in.opcode;
    out[i].dst_reg = in.dst;
    out[i].src_reg = in.src;
    out[i].off = in.off;
    out[i].imm = in.imm;
  }
  return out;
}

// Returns the program fd (>= 0) or -errno; `log` gets the verifier's log
// when asked for (level 1 keeps the log's tail when it overflows).
int load(const std::vector<bpf_insn>& insns, std::string* log, bpf_prog_type type = BPF_PROG_TYPE_SYSCALL) {
  std::vector<char> buf(log ? 1 << 20 : 0);
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .prog_flags = type == BPF_PROG_TYPE_SYSCALL ? BPF_F_SLEEPABLE : 0u);
  if (log) {
    opts.log_buf = buf.data();
    opts.log_size = uint32_t(buf.size());
    opts.log_level = 1;
  }
  const int fd = bpf_prog_load(type, "sb_diff", "GPL", insns.data(), insns.size(), &opts);
  if (log) *log = buf.data();
  return fd >= 0 ? fd : (fd < -1 ? fd : -errno);
}

// The last two non-empty lines of a verifier log (its error and summary).
std::string tail(const std::string& log) {
  std::vector<std::string> lines;
  size_t at = 0;
  while (at < log.size()) {
    size_t end = log.find('\n', at);
    if (end == std::string::npos) end = log.size();
    if (end > at) lines.push_back(log.substr(at, end - at));
    at = end + 1;
  }
  std::string out;
  for (size_t i = lines.size() >= 3 ? lines.size() - 3 : 0; i < lines.size(); ++i) {
    if (lines[i].rfind("processed ", 0) == 0) continue;  // the statistics line
    out += (out.empty() ? "" : " / ") + lines[i];
  }
  return out;
}

}  // namespace

std::optional<std::string> kernel_unavailable() {
  const bpf::Insn trivial[] = {{0xb7, 0, 0, 0, 7}, {0x95, 0, 0, 0, 0}};  // mov r0, 7; exit
  std::vector<uint8_t> mem(8);
  KernelRun r = kernel_run(bpf::Program{"probe", {std::begin(trivial), std::end(trivial)}}, mem);
  if (r.status == KernelRun::Status::Ran && r.retval == 7) return std::nullopt;
  return "cannot run BPF_PROG_TYPE_SYSCALL programs: " + r.message;
}

KernelRun kernel_run(const bpf::Program& p, std::vector<uint8_t>& memory) {
  KernelRun r;
  const std::vector<bpf_insn> insns = to_kernel(p);
  Fd fd(load(insns, nullptr));
  if (fd.get() < 0) {
    const int err = -fd.get();
    std::string log;
    load(insns, &log);  // again, for the verifier's reason
    const bool verifier = (err == EINVAL || err == EACCES || err == E2BIG) && !log.empty();
    r.status = verifier ? KernelRun::Status::Rejected : KernelRun::Status::Failed;
    r.message = std::string("BPF_PROG_LOAD: ") + std::strerror(err) + (log.empty() ? "" : ": " + tail(log));
    return r;
  }
  LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = memory.empty() ? nullptr : memory.data(),
              .ctx_size_in = uint32_t(memory.size()));
  if (bpf_prog_test_run_opts(fd.get(), &run) != 0) {
    r.message = std::string("BPF_PROG_TEST_RUN: ") + std::strerror(errno);
    return r;
  }
  r.status = KernelRun::Status::Ran;
  r.retval = run.retval;
  return r;
}

KernelRun kernel_run_self_tail_call(const bpf::Program& p, uint64_t prog_array, uint64_t counter) {
  KernelRun r;
  Fd array(bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "sb_self", 4, 4, 1, nullptr));
  Fd count(bpf_map_create(BPF_MAP_TYPE_ARRAY, "sb_count", 4, 8, 1, nullptr));
  if (array.get() < 0 || count.get() < 0) {
    r.message = std::string("BPF_MAP_CREATE: ") + std::strerror(errno);
    return r;
  }
  std::vector<bpf_insn> insns = to_kernel(p);
  for (size_t i = 0; i + 1 < insns.size(); ++i) {
    if (insns[i].code != (BPF_LD | BPF_DW | BPF_IMM)) continue;
    const uint64_t v = uint64_t(uint32_t(insns[i].imm)) | uint64_t(uint32_t(insns[i + 1].imm)) << 32;
    if (v != prog_array && v != counter) continue;
    insns[i].src_reg = BPF_PSEUDO_MAP_FD;
    insns[i].imm = v == prog_array ? array.get() : count.get();
    insns[i + 1].imm = 0;
  }
  std::string log;
  Fd fd(load(insns, &log, BPF_PROG_TYPE_SOCKET_FILTER));
  if (fd.get() < 0) {
    r.status = KernelRun::Status::Rejected;
    r.message = std::string("BPF_PROG_LOAD: ") + std::strerror(-fd.get()) + ": " + tail(log);
    return r;
  }
  const uint32_t slot = 0;
  const int prog_fd = fd.get();
  if (bpf_map_update_elem(array.get(), &slot, &prog_fd, BPF_ANY) != 0) {
    r.message = std::string("BPF_MAP_UPDATE_ELEM: ") + std::strerror(errno);
    return r;
  }
  std::vector<uint8_t> packet(64, 0);
  LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = packet.data(), .data_size_in = uint32_t(packet.size()));
  const int ran = bpf_prog_test_run_opts(fd.get(), &run);
  const int run_errno = errno;
  bpf_map_delete_elem(array.get(), &slot);  // the array no longer holds the program
  uint64_t value = 0;
  if (ran != 0 || bpf_map_lookup_elem(count.get(), &slot, &value) != 0) {
    r.message = std::string(ran ? "BPF_PROG_TEST_RUN: " : "BPF_MAP_LOOKUP_ELEM: ") +
                std::strerror(ran ? run_errno : errno);
    return r;
  }
  r.status = KernelRun::Status::Ran;
  r.retval = uint32_t(value);
  return r;
}

namespace {

// The number after `key` in a BPF_LOG_STATS log ("verification time 41 usec").
uint64_t stat(const std::string& log, const char* key) {
  const size_t at = log.find(key);
  return at == std::string::npos ? 0 : std::strtoull(log.c_str() + at + std::strlen(key), nullptr, 10);
}

}  // namespace

KernelVerdict kernel_verify(const bpf::Program& p, const KernelLoad& how) {
  KernelVerdict v;
  std::vector<std::unique_ptr<Fd>> maps;
  std::vector<bpf_insn> insns = to_kernel(p);
  for (size_t m = 0; m < p.maps.size(); ++m) {
    const bpf::MapUse& u = p.maps[m];
    LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = m < how.map_flags.size() ? how.map_flags[m] : 0u);
    if (u.type == BPF_MAP_TYPE_HASH) mo.map_flags |= BPF_F_NO_PREALLOC;  // as test_verifier.c: no memory per entry up front
    maps.push_back(std::make_unique<Fd>(
        bpf_map_create(bpf_map_type(u.type), "sb_verify", u.key_size, u.value_size, u.max_entries, &mo)));
    if (maps.back()->get() < 0) {
      v.message = std::string("BPF_MAP_CREATE: ") + std::strerror(errno);
      return v;
    }
    if (u.insn + 1 >= insns.size() || insns[u.insn].code != (BPF_LD | BPF_DW | BPF_IMM)) {
      v.message = "map use at instruction " + std::to_string(u.insn) + " is not an lddw";
      return v;
    }
    insns[u.insn].src_reg = u.value ? BPF_PSEUDO_MAP_VALUE : BPF_PSEUDO_MAP_FD;
    insns[u.insn].imm = maps.back()->get();
    insns[u.insn + 1].imm = u.value ? int32_t(u.offset) : 0;
  }
  std::vector<char> buf(1 << 16);
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = bpf_attach_type(how.expected_attach_type),
              .prog_flags = how.prog_flags, .log_level = 4,
              .log_size = uint32_t(buf.size()), .log_buf = buf.data());
  const int fd = bpf_prog_load(bpf_prog_type(how.prog_type), "sb_verify", "GPL", insns.data(), insns.size(), &opts);
  const int err = errno;
  if (fd >= 0) {
    close(fd);
    v.status = KernelVerdict::Status::Accepted;
    const std::string log = buf.data();
    v.verification_usec = stat(log, "verification time ");
    v.insns_processed = stat(log, "processed ");
    return v;
  }
  // Again with the verifier's full log (its tail, when it overflows), for the reason.
  std::vector<char> big(1 << 24);
  opts.log_level = 1;
  opts.log_size = uint32_t(big.size());
  opts.log_buf = big.data();
  const int again = bpf_prog_load(bpf_prog_type(how.prog_type), "sb_verify", "GPL", insns.data(), insns.size(), &opts);
  if (again >= 0) close(again);
  const std::string log = big.data();
  v.status = log.empty() ? KernelVerdict::Status::Failed : KernelVerdict::Status::Refused;
  v.message = std::string("BPF_PROG_LOAD: ") + std::strerror(err) + (log.empty() ? "" : ": " + tail(log));
  return v;
}

struct KernelObject::Impl {
  bpf_object* obj = nullptr;
  bpf_program* prog = nullptr;
  ~Impl() {
    if (obj) bpf_object__close(obj);
  }
};

KernelObject::~KernelObject() = default;

namespace {
// libbpf's messages during one load (the verifier's log among them), for
// the reason a load failed. Loads in this test support run on one thread.
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
  if (bpf_prog_test_run_opts(bpf_program__fd(impl_->prog), &run) != 0) {
    r.error = errno;
    return r;
  }
  r.retval = run.retval;
  r.data.resize(run.data_size_out);
  r.ctx.resize(ctx ? run.ctx_size_out : 0);
  return r;
}

std::vector<KernelObject::Entry> KernelObject::entries(const std::string& name) const {
  std::vector<Entry> out;
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
    Entry e{k, {}};
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
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.key < b.key; });
  return out;
}

std::vector<std::string> KernelObject::map_names() const {
  std::vector<std::string> out;
  bpf_map* m = nullptr;
  bpf_object__for_each_map(m, impl_->obj) out.push_back(bpf_map__name(m));
  return out;
}

#else  // !SB_HAVE_LIBBPF

KernelVerdict kernel_verify(const bpf::Program&, const KernelLoad&) {
  KernelVerdict v;
  v.message = *kernel_unavailable();
  return v;
}
struct KernelObject::Impl {};
KernelObject::~KernelObject() = default;
std::unique_ptr<KernelObject> KernelObject::load(const std::string&, const std::string&, std::string* why) {
  *why = *kernel_unavailable();
  return nullptr;
}
bool KernelObject::update(const std::string&, const std::vector<uint8_t>&, const std::vector<uint8_t>&) {
  return false;
}
KernelObject::Run KernelObject::test_run(const std::vector<uint8_t>&, const std::optional<std::vector<uint8_t>>&,
                                         uint32_t) {
  return Run{ENOSYS, 0, {}, {}};
}
std::vector<KernelObject::Entry> KernelObject::entries(const std::string&) const { return {}; }
std::vector<std::string> KernelObject::map_names() const { return {}; }

std::optional<std::string> kernel_unavailable() {
  return std::string("built without libbpf (apt-get install libbpf-dev, then reconfigure)");
}

KernelRun kernel_run(const bpf::Program&, std::vector<uint8_t>&) {
  KernelRun r;
  r.message = *kernel_unavailable();
  return r;
}

KernelRun kernel_run_self_tail_call(const bpf::Program&, uint64_t, uint64_t) {
  KernelRun r;
  r.message = *kernel_unavailable();
  return r;
}

#endif

}  // namespace sb::test
