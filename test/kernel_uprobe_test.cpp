// The kernel's uprobes as the oracle of `springboard trace`: the bundled
// example's object (tools/examples/trace/demo.bpf.c) is attached once with
// real kernel uprobes (libbpf's bpf_program__attach_uprobe_opts, any pid,
// the demo's binary) and once by Springboard's agent (the `trace` command),
// the same demo binary runs under each, and the maps must agree: the number
// of calls the entry probe counted, each result the return probe saw, and
// the total at each round of the demo:step USDT probe (the kernel attached
// through libbpf's bpf_program__attach_usdt).
// Kernel uprobes are set on a file (its inode), in every process that maps
// it: the kernel's runs use a private copy of the demo, so the breakpoints
// it plants never reach the demo other tests (cli.trace) run meanwhile.
// Needs root and a kernel with uprobes; skipped with the reason otherwise.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>

namespace {

using Counts = std::map<int64_t, uint64_t>;  // result -> times seen
struct Seen {
  uint64_t calls = 0;
  Counts results;
  std::map<int64_t, int64_t> steps;  // the USDT probe demo:step: round -> total
};

// Every element of the object's hash map `name` (8-byte keys and values).
std::map<int64_t, int64_t> kernel_hash(bpf_object* obj, const char* name) {
  std::map<int64_t, int64_t> out;
  const int fd = bpf_object__find_map_fd_by_name(obj, name);
  int64_t key, next;
  int64_t* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    int64_t v = 0;
    bpf_map_lookup_elem(fd, &next, &v);
    out[next] = v;
    key = next;
    prev = &key;
  }
  return out;
}

int run_demo(const std::vector<std::string>& argv) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> a;
    for (const std::string& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// Attaches the object with kernel uprobes, runs the demo, reads the maps.
// nullopt (with `why`) when the kernel cannot.
std::optional<Seen> with_kernel(const std::string& object, const std::string& demo, int n, std::string& why) {
  if (geteuid() != 0) {
    why = "not root";
    return std::nullopt;
  }
  libbpf_set_print(nullptr);
  bpf_object* obj = bpf_object__open_file(object.c_str(), nullptr);
  if (!obj) {
    why = "libbpf cannot open " + object;
    return std::nullopt;
  }
  std::unique_ptr<bpf_object, void (*)(bpf_object*)> own(obj, bpf_object__close);
  bpf_program* p;
  bpf_object__for_each_program(p, obj) bpf_program__set_autoattach(p, false);
  if (bpf_object__load(obj) != 0) {
    why = "the kernel refused to load the object";
    return std::nullopt;
  }
  std::vector<std::unique_ptr<bpf_link, int (*)(bpf_link*)>> links;
  bpf_object__for_each_program(p, obj) {
    const std::string section = bpf_program__section_name(p);
    LIBBPF_OPTS(bpf_uprobe_opts, o, .retprobe = section.rfind("uretprobe", 0) == 0, .func_name = "compute");
    bpf_link* l = section.rfind("usdt", 0) == 0 ? bpf_program__attach_usdt(p, -1, demo.c_str(), "demo", "step", nullptr)
                                                : bpf_program__attach_uprobe_opts(p, -1, demo.c_str(), 0, &o);
    if (!l) {
      why = "the kernel cannot attach a uprobe here (" + std::string(bpf_program__name(p)) + ")";
      return std::nullopt;
    }
    links.emplace_back(l, bpf_link__destroy);
  }
  if (run_demo({demo, std::to_string(n)}) != 0) {
    why = "the demo failed";
    return std::nullopt;
  }
  Seen s;
  const int calls = bpf_object__find_map_fd_by_name(obj, "calls");
  const uint32_t zero = 0;
  bpf_map_lookup_elem(calls, &zero, &s.calls);
  for (auto [k, v] : kernel_hash(obj, "results")) s.results[k] = uint64_t(v);
  s.steps = kernel_hash(obj, "steps");
  return s;
}

// The rows of map `name` in a `springboard trace` report: "KEY (k): VALUE (v)".
std::map<int64_t, int64_t> report_rows(const std::string& text, const std::string& name) {
  std::map<int64_t, int64_t> out;
  const size_t at = text.find("map " + name + " (");
  if (at == std::string::npos) return out;
  const size_t end = text.find("\nmap ", at + 1);
  const std::string rest = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
  std::regex row(R"(\n  [0-9a-f ]+ \((-?\d+)\): [0-9a-f ]+ \((-?\d+)\))");
  for (auto it = std::sregex_iterator(rest.begin(), rest.end(), row); it != std::sregex_iterator(); ++it)
    out[std::stoll((*it)[1])] = std::stoll((*it)[2]);
  return out;
}

// The same through `springboard trace`, read from its report.
Seen with_springboard(const std::string& cli, const std::string& object, const std::string& demo, int n) {
  const std::string cmd = cli + " trace " + object + " -- " + demo + " " + std::to_string(n) + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  std::string text;
  std::array<char, 4096> buf;
  while (size_t got = fread(buf.data(), 1, buf.size(), pipe.get())) text.append(buf.data(), got);
  Seen s;
  // "map calls (1 elements)\n  00 00 00 00 (0): ... (N)"
  std::smatch m;
  if (std::regex_search(text, m, std::regex(R"(map calls \(1 elements\)\n  [0-9a-f ]+ \(0\): [0-9a-f ]+ \((\d+)\))")))
    s.calls = std::stoull(m[1]);
  for (auto [k, v] : report_rows(text, "results")) s.results[k] = uint64_t(v);
  s.steps = report_rows(text, "steps");
  return s;
}

// A copy of `path` in a fresh directory, removed with this object.
struct PrivateCopy {
  std::filesystem::path dir, file;
  explicit PrivateCopy(const std::filesystem::path& path) {
    std::string templ = (std::filesystem::temp_directory_path() / "sb_kernel_uprobes.XXXXXX").string();
    if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
    dir = templ;
    file = dir / path.filename();
    std::filesystem::copy_file(path, file);
  }
  ~PrivateCopy() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
};

TEST(KernelUprobes, TraceCountsAndResultsAgreeWithTheKernel) {
  const PrivateCopy copy(SB_TRACE_DEMO);
  const std::string object = SB_TRACE_DIR "/demo.bpf.o", demo = copy.file.string(), cli = SB_CLI;
  for (int n : {1, 4, 9}) {
    std::string why;
    const std::optional<Seen> kernel = with_kernel(object, demo, n, why);
    if (!kernel) GTEST_SKIP() << "kernel uprobes unavailable: " << why;
    const Seen ours = with_springboard(cli, object, demo, n);
    EXPECT_EQ(kernel->calls, uint64_t(n)) << "n=" << n;
    EXPECT_EQ(ours.calls, kernel->calls) << "n=" << n;
    EXPECT_EQ(ours.results, kernel->results) << "n=" << n;
    EXPECT_EQ(kernel->results.size(), size_t(n)) << "n=" << n;
    EXPECT_EQ(kernel->steps.size(), size_t(n)) << "n=" << n;  // USDT, through libbpf's bpf_program__attach_usdt
    EXPECT_EQ(ours.steps, kernel->steps) << "n=" << n;
  }
}

}  // namespace
