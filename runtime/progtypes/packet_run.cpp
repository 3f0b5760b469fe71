// bpf_redirect, bpf_redirect_map and bpf_perf_event_output with the
// kernel's rules (net/core/filter.c, kernel/trace/bpf_trace.c).
#include "runtime/progtypes/packet_run.h"

#include <cerrno>

#include "frontend/progtypes/skb.h"
#include "frontend/progtypes/xdp.h"
#include "frontend/verifier/helper_protos.h"
#include "runtime/exec/hardening.h"
#include "runtime/helpers/std_helpers.h"
#include "runtime/maps/perf_event_array.h"
#include "runtime/maps/redirect_maps.h"

namespace sb::rt {

PacketRun* PacketRun::current() { return PacketRunScope::current(); }

namespace {

constexpr uint64_t kIngress = 1;                        // BPF_F_INGRESS
constexpr uint64_t kActionMask = 3;                     // BPF_F_ACTION_MASK: XDP_ABORTED..XDP_TX
constexpr uint64_t kBroadcast = 8, kExcludeIngress = 16;  // BPF_F_BROADCAST, BPF_F_EXCLUDE_INGRESS
constexpr uint64_t kXdpAborted = 0, kTcActShot = 2;

uint64_t error(int e) { return uint64_t(-int64_t(e)); }

// bpf_redirect(u32 ifindex, u64 flags): XDP takes no flags (else
// XDP_ABORTED), TC only BPF_F_INGRESS (else TC_ACT_SHOT).
uint64_t redirect(uint64_t ifindex, uint64_t flags, uint64_t, uint64_t, uint64_t) {
  PacketRun* run = PacketRun::current();
  if (!run) return kTcActShot;
  if (run->xdp ? flags != 0 : (flags & ~kIngress) != 0) return run->xdp ? kXdpAborted : kTcActShot;
  run->redirect = RedirectTarget{RedirectTarget::Kind::Ifindex, uint32_t(ifindex), {}, 0, 0, flags};
  return run->xdp ? kXdpRedirect : kTcActRedirect;
}

// bpf_clone_redirect(skb, u32 ifindex, u64 flags)
uint64_t clone_redirect(uint64_t ctx, uint64_t ifindex, uint64_t flags, uint64_t, uint64_t) {
  PacketRun* run = PacketRun::current();
  if ((flags & ~kIngress) || uint32_t(ifindex) == 0 || !run || run->xdp) return error(EINVAL);
  const auto& s = *reinterpret_cast<const bpf::SkBuff*>(uintptr_t(ctx));
  const auto* p = reinterpret_cast<const uint8_t*>(uintptr_t(s.data));
  run->clones.push_back({uint32_t(ifindex), flags, std::vector<uint8_t>(p, p + s.len)});
  return 0;
}

// bpf_redirect_map(map, u64 key, u64 flags): XDP_REDIRECT when the slot is
// set (or, for a devmap, with BPF_F_BROADCAST), else the fallback action in
// flags' low bits; flags beyond what the map allows: XDP_ABORTED.
uint64_t redirect_map(uint64_t map, uint64_t key, uint64_t flags, uint64_t, uint64_t) {
  auto* m = dynamic_cast<RedirectMap*>(current_map(map));
  PacketRun* run = PacketRun::current();
  if (!m || !run) return kXdpAborted;
  const bool devmap = m->type() == MapType::DevMap || m->type() == MapType::DevMapHash;
  const uint64_t allowed = kActionMask | (devmap ? kBroadcast | kExcludeIngress : 0);
  if (flags & ~allowed) return kXdpAborted;
  const uint32_t k = uint32_t(key);
  if (!(flags & kBroadcast) && (key > UINT32_MAX || !m->has(k))) return flags & kActionMask;
  run->redirect = RedirectTarget{RedirectTarget::Kind::Map, 0, m->name(), uint32_t(m->type()), k, flags};
  return kXdpRedirect;
}

// bpf_perf_event_output(ctx, map, u64 flags, void *data, u64 size): the
// data, then (flags bits 32-51) that many bytes of the packet.
uint64_t perf_event_output(uint64_t ctx, uint64_t map, uint64_t flags, uint64_t data, uint64_t size) {
  auto* m = dynamic_cast<PerfEventArrayMap*>(current_map(map));
  if (!m) return error(EINVAL);
  if (size && !access_allowed(data, size)) return error(EFAULT);
  const uint64_t extra = (flags >> 32) & 0xfffff;
  std::span<const uint8_t> packet;
  if (extra) {
    PacketRun* run = PacketRun::current();
    if (!run) return error(EINVAL);  // no packet: a tracing program's flags are the index only
    uint64_t begin, end;
    if (run->xdp) {
      const auto& x = *reinterpret_cast<const bpf::XdpBuff*>(uintptr_t(ctx));
      begin = x.data, end = x.data_end;
    } else {
      const auto& s = *reinterpret_cast<const bpf::SkBuff*>(uintptr_t(ctx));
      begin = s.data, end = s.data + s.len;
    }
    if (extra > end - begin) return error(EFAULT);
    packet = {reinterpret_cast<const uint8_t*>(uintptr_t(begin)), size_t(extra)};
  }
  return uint64_t(m->output(flags, {reinterpret_cast<const uint8_t*>(uintptr_t(data)), size_t(size)}, packet));
}

}  // namespace

void add_packet_run_helpers(HelperTable& t) {
  constexpr KernelHelper kHelpers[] = {
      {13, "clone_redirect", clone_redirect},
      {23, "redirect", redirect},
      {25, "perf_event_output", perf_event_output},
      {51, "redirect_map", redirect_map}};
  t.add_kernel(kHelpers);
}

}  // namespace sb::rt
