// The tracing helpers; see tracing_helpers.h.
#include "runtime/helpers/tracing_helpers.h"

#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/exec/hardening.h"
#include "runtime/hook/tramp_runtime.h"

namespace sb::rt {

namespace {

constexpr size_t kCommLen = 16;  // TASK_COMM_LEN

uint64_t err(int e) { return uint64_t(-int64_t(e)); }

// Copies [src, src+size) of this process into dst without faulting: the
// number of bytes read (process_vm_readv stops at the first unmapped page).
size_t read_process(void* dst, uint64_t src, size_t size) {
  iovec local{dst, size};
  iovec remote{reinterpret_cast<void*>(uintptr_t(src)), size};
  const ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  return n < 0 ? 0 : size_t(n);
}

uint64_t get_current_pid_tgid(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return uint64_t(uint32_t(getpid())) << 32 | uint32_t(gettid());
}

uint64_t get_current_uid_gid(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return uint64_t(getgid()) << 32 | getuid();
}

uint64_t get_current_comm(uint64_t buf, uint64_t size, uint64_t, uint64_t, uint64_t) {
  if (size == 0) return 0;  // the verifier proves size > 0
  auto* out = reinterpret_cast<char*>(uintptr_t(buf));
  if (!access_allowed(buf, size)) return err(EFAULT);
  char comm[kCommLen + 1] = {};
  if (prctl(PR_GET_NAME, comm) != 0) {
    std::memset(out, 0, size);
    return err(EINVAL);
  }
  const size_t n = std::min<size_t>(strnlen(comm, kCommLen), size - 1);  // strscpy
  std::memcpy(out, comm, n);
  out[n] = '\0';
  return 0;
}

uint64_t probe_read_memory(uint64_t dst, uint64_t size, uint64_t src, uint64_t, uint64_t) {
  if (size == 0) return 0;
  if (!access_allowed(dst, size)) return err(EFAULT);
  void* to = reinterpret_cast<void*>(uintptr_t(dst));
  if (read_process(to, src, size) == size) return 0;
  std::memset(to, 0, size);
  return err(EFAULT);
}

uint64_t probe_read_memory_str(uint64_t dst, uint64_t size, uint64_t src, uint64_t, uint64_t) {
  if (size == 0) return 0;
  if (!access_allowed(dst, size)) return err(EFAULT);
  auto* to = reinterpret_cast<char*>(uintptr_t(dst));
  if (const std::optional<size_t> n = read_process_string(to, src, size)) return *n;
  std::memset(to, 0, size);
  return err(EFAULT);
}

uint64_t get_func_ip(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  const RunCtx* rc = current_run_ctx();
  return rc ? rc->func_ip : 0;
}

uint64_t get_attach_cookie(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  const RunCtx* rc = current_run_ctx();
  return rc ? rc->cookie : 0;
}

constexpr KernelHelper kTracingHelpers[] = {
    {14, "get_current_pid_tgid", get_current_pid_tgid},
    {15, "get_current_uid_gid", get_current_uid_gid},
    {16, "get_current_comm", get_current_comm},
    {112, "probe_read_user", probe_read_memory},
    {113, "probe_read_kernel", probe_read_memory},
    {114, "probe_read_user_str", probe_read_memory_str},
    {115, "probe_read_kernel_str", probe_read_memory_str},
    {173, "get_func_ip", get_func_ip},
    {174, "get_attach_cookie", get_attach_cookie},
};

}  // namespace

// strncpy_from_user_nofault: page by page up to the NUL, so that a string
// ending just before an unmapped page reads.
std::optional<size_t> read_process_string(char* to, uint64_t src, size_t size) {
  const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  size_t done = 0;
  while (done < size) {
    const uint64_t at = src + done;
    const size_t chunk = size_t(std::min<uint64_t>(size - done, page - at % page));
    if (read_process(to + done, at, chunk) != chunk) return std::nullopt;
    if (const void* nul = std::memchr(to + done, 0, chunk))
      return size_t(static_cast<const char*>(nul) - to + 1);  // the length with its NUL
    done += chunk;
  }
  to[size - 1] = '\0';  // cut: size bytes, the last one the NUL
  return size;
}

void add_tracing_helpers(HelperTable& t) { t.add_kernel(kTracingHelpers); }

}  // namespace sb::rt
