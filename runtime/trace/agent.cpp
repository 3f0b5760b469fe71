// The agent of `springboard trace` (tools/springboard.cpp): a shared
// library the command preloads (LD_PRELOAD) into the program it runs. Before
// the program's main it loads the BPF object named by SPRINGBOARD_TRACE_OBJECT
// and attaches every program whose ELF section names a target
// (sb_vm_attach_object: uprobe/, uretprobe/, fentry/, fexit/, fmod_ret/);
// while the program runs, a thread streams bpf_printk lines, ring-buffer
// records and perf event records to the file descriptor SPRINGBOARD_TRACE_FD (the command's
// stderr); when the program exits, each link's statistics and every map's
// elements follow, and the links are detached.
//
// It uses the public C API only (runtime/api/springboard.h), as any
// embedder would. It takes itself out of LD_PRELOAD, so the programs the
// traced one executes run untraced; a child it forks without exec keeps
// the probes in its copy of the process but reports nothing.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "springboard.h"

namespace {

constexpr size_t kMaxLinks = 256;

struct Agent {
  pid_t pid = 0;  // the traced process (a forked child has another)
  int fd = 2;
  sb_vm* vm = nullptr;
  std::vector<sb_link*> links;
  std::thread drainer;
  std::atomic<bool> stop{false};
};
Agent* g_agent = nullptr;

void out(int fd, const std::string& s) {
  for (size_t done = 0; done < s.size();) {
    const ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n <= 0) return;
    done += size_t(n);
  }
}

std::string hex(const void* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t b = static_cast<const uint8_t*>(p)[i];
    if (i) s += ' ';
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

// A little-endian integer of 1, 2, 4 or 8 bytes, as a number too.
std::string shown(const void* p, size_t n) {
  std::string s = hex(p, n);
  if (n == 1 || n == 2 || n == 4 || n == 8) {
    uint64_t v = 0;
    std::memcpy(&v, p, n);
    s += " (" + std::to_string(v) + ")";
  }
  return s;
}

void each_record(void* ctx, const void* data, size_t size) {
  auto* line = static_cast<std::string*>(ctx);
  *line += hex(data, size);
  *line += '\n';
}

// bpf_printk lines and ring-buffer records since the last call.
void drain(Agent& a) {
  out(a.fd, sb_vm_take_trace(a.vm));
  for (size_t i = 0; i < sb_vm_map_count(a.vm); ++i) {
    sb_map* m = sb_vm_map_at(a.vm, i);
    sb_map_info info{};
    if (sb_map_get_info(m, &info) != SB_OK || (info.type != SB_MAP_RINGBUF && info.type != SB_MAP_PERF_EVENT_ARRAY))
      continue;
    const char* kind = info.type == SB_MAP_RINGBUF ? "ringbuf " : "perf ";
    std::string records;
    sb_map_consume(m, each_record, &records, nullptr);
    if (records.empty()) continue;
    // One prefix per record line.
    std::string lines;
    for (size_t at = 0; at < records.size();) {
      const size_t end = records.find('\n', at);
      lines += kind + std::string(info.name) + ": " + records.substr(at, end - at) + "\n";
      at = end + 1;
    }
    out(a.fd, lines);
  }
}

void each_entry(void* ctx, const void* key, size_t key_size, const void* values, size_t value_size,
                size_t value_count) {
  auto* text = static_cast<std::string*>(ctx);
  *text += "  " + shown(key, key_size) + ":";
  for (size_t k = 0; k < value_count; ++k)
    *text += (value_count > 1 ? " [cpu " + std::to_string(k) + "] " : " ") +
             shown(static_cast<const uint8_t*>(values) + k * value_size, value_size);
  *text += '\n';
}

void report(Agent& a) {
  std::string text = "springboard trace: at exit\n";
  for (sb_link* l : a.links) {
    sb_stats s{};
    sb_link_stats(l, &s);
    text += std::string("  ") + sb_link_name(l) + ": " + std::to_string(s.run_count) + " runs, " +
            std::to_string(s.run_time_ns) + " ns\n";
  }
  for (size_t i = 0; i < sb_vm_map_count(a.vm); ++i) {
    sb_map* m = sb_vm_map_at(a.vm, i);
    sb_map_info info{};
    if (sb_map_get_info(m, &info) != SB_OK || info.type == SB_MAP_RINGBUF || info.type == SB_MAP_PERF_EVENT_ARRAY)
      continue;
    // libbpf's usdt.bpf.h bookkeeping (its "internal implementation details") and the kconfig values.
    if (std::string_view(info.name).starts_with("__bpf_usdt_") || std::string_view(info.name) == ".kconfig") continue;
    std::string entries;
    size_t n = 0;
    if (sb_map_for_each(m, each_entry, &entries, &n) != SB_OK || (n == 0 && info.name[0] == '.')) continue;
    text += std::string("map ") + info.name + " (" + std::to_string(n) + " elements)\n" + entries;
  }
  out(a.fd, text);
}

void finish() {
  Agent* a = g_agent;
  if (!a) return;
  // A child the program forked (and that exits without exec) shares none
  // of the agent's thread; its probes kept running in its copy of the
  // process, but the report is the traced process's alone.
  if (getpid() != a->pid) return;
  g_agent = nullptr;
  a->stop = true;
  if (a->drainer.joinable()) a->drainer.join();
  drain(*a);
  report(*a);
  // The VM stays: preloaded, the agent ran its constructor before the C
  // runtime registered its own exit work, so this runs after the static
  // destructors of the libraries (LLVM's among them), which detaching
  // would need to rebuild a trampoline. The process is ending; the links
  // keep working for any thread still running, and the system takes the
  // memory back.
  if (a->fd != 2) close(a->fd);
}

// Runs before the program's main.
__attribute__((constructor)) void start() {
  const char* object = getenv("SPRINGBOARD_TRACE_OBJECT");
  if (!object) return;  // loaded some other way: nothing to do
  const std::string path = object;
  int fd = 2;
  if (const char* f = getenv("SPRINGBOARD_TRACE_FD")) fd = atoi(f);
  unsetenv("SPRINGBOARD_TRACE_OBJECT");
  unsetenv("SPRINGBOARD_TRACE_FD");
  unsetenv("LD_PRELOAD");
  auto* a = new Agent;
  a->pid = getpid();
  a->fd = fd;
  if (sb_vm_create(nullptr, &a->vm) != SB_OK) {
    out(fd, "springboard trace: cannot create a VM\n");
    _exit(1);
  }
  std::vector<sb_link*> links(kMaxLinks);
  size_t count = 0;
  if (sb_vm_attach_object(a->vm, path.c_str(), links.data(), links.size(), &count) != SB_OK) {
    out(fd, std::string("springboard trace: ") + sb_vm_last_error(a->vm) + "\n");
    _exit(1);
  }
  links.resize(count);
  a->links = links;
  std::string attached = "springboard trace: " + path + ": " + std::to_string(count) + " programs attached\n";
  for (sb_link* l : links) attached += std::string("  ") + sb_link_name(l) + "\n";
  out(fd, attached);
  g_agent = a;
  a->drainer = std::thread([a] {
    while (!a->stop.load()) {
      drain(*a);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  atexit(finish);
}

}  // namespace
