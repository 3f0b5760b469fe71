// `springboard trace` (trace_command.h).
#include "tools/trace_command.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "frontend/elf_loader.h"
#include "ir/diag.h"

#if defined(__SANITIZE_ADDRESS__)
#include <dlfcn.h>
extern "C" void __asan_init();
#endif

#ifndef SB_AGENT_INSTALLED
#define SB_AGENT_INSTALLED ""
#endif

namespace sb::cli {

namespace {
constexpr const char* kAgentName = "libspringboard-agent.so";

bool readable(const std::string& path) { return !path.empty() && access(path.c_str(), R_OK) == 0; }
}  // namespace

std::string find_trace_agent() {
  if (const char* env = getenv("SPRINGBOARD_AGENT")) {
    if (!readable(env)) throw Error("SPRINGBOARD_AGENT", fmt::format("'{}' cannot be read", env));
    return env;
  }
  std::vector<std::string> tried;
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) tried.push_back((self.parent_path() / kAgentName).string());
  if (*SB_AGENT_INSTALLED) tried.push_back(SB_AGENT_INSTALLED);
  for (const std::string& p : tried)
    if (readable(p)) return std::filesystem::absolute(p).string();
  std::string where;
  for (const std::string& p : tried) where += (where.empty() ? "" : ", ") + p;
  throw Error("trace", fmt::format("the agent {} is not at {} (set SPRINGBOARD_AGENT)", kAgentName, where));
}

int run_traced(const std::string& object, const std::vector<std::string>& command) {
  if (command.empty()) throw Error("trace", "no program to run: springboard trace OBJ -- PROGRAM [ARGS...]");
  // The object is read here too, so that a file that is not an object is
  // named before anything runs.
  std::ifstream f(object, std::ios::binary);
  if (!f) throw Error(object, std::string("cannot open: ") + strerror(errno));
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  (void)bpf::list_elf_programs(bytes, object);
  const std::string agent = find_trace_agent();
  const std::string path = std::filesystem::absolute(object).string();

  // The report goes to this command's standard error even when the program
  // redirects its own: a copy of it, inherited.
  const int report_fd = fcntl(2, F_DUPFD, 100);
  if (report_fd < 0) throw Error("trace", std::string("cannot duplicate standard error: ") + strerror(errno));
  // The user's own preloads first, then the agent.
  std::string preload;
  if (const char* old = getenv("LD_PRELOAD"); old && *old) preload = std::string(old) + ":";
  preload += agent;
#if defined(__SANITIZE_ADDRESS__)
  // A sanitizer build's agent needs ASan's runtime loaded before anything
  // else in the traced program: the one this command runs with. The agent
  // keeps its VM at exit on purpose, which LeakSanitizer would report.
  Dl_info asan{};
  if (dladdr(reinterpret_cast<void*>(&__asan_init), &asan) && asan.dli_fname)
    preload = std::string(asan.dli_fname) + ":" + preload;
  const std::string asan_options = std::string(getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "") +
                                   ":detect_leaks=0:verify_asan_link_order=0";
#endif

  const pid_t child = fork();
  if (child < 0) throw Error("trace", std::string("fork failed: ") + strerror(errno));
  if (child == 0) {
    setenv("LD_PRELOAD", preload.c_str(), 1);
#if defined(__SANITIZE_ADDRESS__)
    setenv("ASAN_OPTIONS", asan_options.c_str(), 1);
#endif
    setenv("SPRINGBOARD_TRACE_OBJECT", path.c_str(), 1);
    setenv("SPRINGBOARD_TRACE_FD", std::to_string(report_fd).c_str(), 1);
    std::vector<char*> argv;
    for (const std::string& a : command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    const std::string msg = fmt::format("springboard: trace: cannot run '{}': {}\n", command[0], strerror(errno));
    (void)!write(2, msg.data(), msg.size());
    _exit(127);
  }
  close(report_fd);
  int status = 0;
  while (waitpid(child, &status, 0) < 0)
    if (errno != EINTR) throw Error("trace", std::string("waitpid failed: ") + strerror(errno));
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

}  // namespace sb::cli
