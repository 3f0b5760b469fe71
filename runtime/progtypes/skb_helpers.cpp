#include "runtime/progtypes/skb_helpers.h"

#include <cerrno>
#include <climits>
#include <cstring>

#include "frontend/progtypes/skb.h"
#include "frontend/verifier/helper_protos.h"

namespace sb::rt {

namespace {

using bpf::SkBuff;

SkBuff& skb(uint64_t ctx) { return *reinterpret_cast<SkBuff*>(uintptr_t(ctx)); }
uint64_t error(int e) { return uint64_t(-int64_t(e)); }
uint8_t* ptr(uint64_t a) { return reinterpret_cast<uint8_t*>(uintptr_t(a)); }

constexpr uint64_t kRecomputeCsum = 1, kInvalidateHash = 2;

// bpf_skb_store_bytes(skb, u32 offset, const void *from, u32 len, u64 flags)
uint64_t skb_store_bytes(uint64_t ctx, uint64_t offset, uint64_t from, uint64_t len, uint64_t flags) {
  SkBuff& s = skb(ctx);
  if (flags & ~(kRecomputeCsum | kInvalidateHash)) return error(EINVAL);
  const uint64_t off = uint32_t(offset), n = uint32_t(len);
  if (off > INT_MAX || off + n > s.len) return error(EFAULT);
  std::memcpy(ptr(s.data + off), ptr(from), n);
  if (flags & kInvalidateHash) s.hash = 0;
  return 0;
}

// bpf_skb_load_bytes(skb, u32 offset, void *to, u32 len)
uint64_t skb_load_bytes(uint64_t ctx, uint64_t offset, uint64_t to, uint64_t len, uint64_t) {
  const SkBuff& s = skb(ctx);
  const uint64_t off = uint32_t(offset), n = uint32_t(len);
  if (off > INT_MAX || off + n > s.len) {
    std::memset(ptr(to), 0, n);
    return error(EFAULT);
  }
  std::memcpy(ptr(to), ptr(s.data + off), n);
  return 0;
}

}  // namespace

void add_skb_helpers(HelperTable& t) {
  constexpr KernelHelper kHelpers[] = {{9, "skb_store_bytes", skb_store_bytes}, {26, "skb_load_bytes", skb_load_bytes}};
  t.add_kernel(kHelpers);
}

}  // namespace sb::rt
