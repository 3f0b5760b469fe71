#include "test/kernel_oracle.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>


#ifdef SB_HAVE_LIBBPF
#include <bpf/bpf.h>
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

#else  // !SB_HAVE_LIBBPF

KernelVerdict kernel_verify(const bpf::Program&, const KernelLoad&) {
  KernelVerdict v;
  v.message = *kernel_unavailable();
  return v;
}

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
