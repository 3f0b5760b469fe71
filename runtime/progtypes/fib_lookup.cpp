#include "runtime/progtypes/fib_lookup.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "runtime/exec/hardening.h"
#include "runtime/helpers/std_helpers.h"

namespace sb::rt {

namespace {

// struct bpf_fib_lookup (include/uapi/linux/bpf.h), 64 bytes.
struct FibParams {
  uint8_t family, l4_protocol;
  uint16_t sport, dport;
  uint16_t tot_len;  // in; out: mtu_result
  uint32_t ifindex;
  uint32_t tos;      // in: tos / flowinfo; out: rt_metric
  uint8_t src[16];
  uint8_t dst[16];
  uint16_t h_vlan_proto, h_vlan_tci;
  uint8_t smac[6], dmac[6];
};
static_assert(sizeof(FibParams) == 64);

constexpr uint64_t kKnownFlags = 0x3f;  // DIRECT, OUTPUT, SKIP_NEIGH, TBID, SRC, MARK
constexpr uint64_t kSkipNeigh = 4;
constexpr uint8_t kInet = 2, kInet6 = 10;
constexpr uint32_t kLoopback = 1;
enum : uint64_t { kSuccess, kBlackhole, kUnreachable, kProhibit, kNotFwded, kFwdDisabled, kUnsuppLwt, kNoNeigh,
                  kFragNeeded };

uint64_t error(int e) { return uint64_t(-int64_t(e)); }

bool matches(const FibRoute& r, const uint8_t* addr) {
  const unsigned whole = r.prefixlen / 8, bits = r.prefixlen % 8;
  if (std::memcmp(r.prefix.data(), addr, whole) != 0) return false;
  return bits == 0 || ((r.prefix[whole] ^ addr[whole]) & uint8_t(0xff00u >> bits)) == 0;
}

// bpf_fib_lookup(ctx, struct bpf_fib_lookup *params, int plen, u32 flags)
uint64_t fib_lookup(uint64_t, uint64_t params, uint64_t plen, uint64_t flags, uint64_t) {
  auto* env = dynamic_cast<Environment*>(HelperContext::current());
  if (int32_t(plen) < int32_t(sizeof(FibParams)) || (flags & ~kKnownFlags)) return error(EINVAL);
  if (!access_allowed(params, sizeof(FibParams))) return error(EFAULT);
  FibParams p;
  std::memcpy(&p, reinterpret_cast<const void*>(uintptr_t(params)), sizeof p);
  if (p.family != kInet && p.family != kInet6) return error(EAFNOSUPPORT);
  const std::vector<FibRoute> routes = env ? env->fib_routes() : std::vector<FibRoute>{};
  bool device = p.ifindex == kLoopback;
  for (const FibRoute& r : routes) device = device || r.ifindex == p.ifindex;
  if (!device) return error(ENODEV);
  if (p.ifindex == kLoopback) return kFwdDisabled;  // checked before BPF_FIB_LOOKUP_OUTPUT is looked at
  const unsigned addr_bytes = p.family == kInet ? 4 : 16;
  const FibRoute* best = nullptr;
  for (const FibRoute& r : routes)
    if (r.family == p.family && r.prefixlen <= addr_bytes * 8 && matches(r, p.dst) &&
        (!best || r.prefixlen > best->prefixlen))
      best = &r;
  if (!best) return kNotFwded;
  switch (best->kind) {
    case FibRoute::Kind::Blackhole: return kBlackhole;
    case FibRoute::Kind::Unreachable: return kUnreachable;
    case FibRoute::Kind::Prohibit: return kProhibit;
    case FibRoute::Kind::Unicast: break;
  }
  auto* out = reinterpret_cast<FibParams*>(uintptr_t(params));
  if (p.tot_len > best->mtu) {
    out->tot_len = best->mtu;  // mtu_result
    return kFragNeeded;
  }
  out->tos = best->metric;  // rt_metric
  out->ifindex = best->ifindex;
  const bool via_gateway = std::any_of(best->gateway.begin(), best->gateway.end(), [](uint8_t b) { return b != 0; });
  if (via_gateway) std::memcpy(out->dst, best->gateway.data(), addr_bytes);
  if (!(flags & kSkipNeigh)) {
    if (!best->has_neighbour) return kNoNeigh;
    std::memcpy(out->dmac, best->dmac.data(), 6);
    std::memcpy(out->smac, best->smac.data(), 6);
  }
  out->tot_len = best->mtu;  // mtu_result
  return kSuccess;
}

}  // namespace

void add_fib_helpers(HelperTable& t) {
  constexpr KernelHelper kHelpers[] = {{69, "fib_lookup", fib_lookup}};
  t.add_kernel(kHelpers);
}

}  // namespace sb::rt
