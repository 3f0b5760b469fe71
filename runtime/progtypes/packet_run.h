// What a packet program's run leaves besides its return value, as the
// kernel keeps it per CPU (struct bpf_redirect_info, the skb's tunnel
// metadata): the redirect target bpf_redirect / bpf_redirect_map recorded,
// and the tunnel key bpf_skb_set_tunnel_key set. test_run makes one
// PacketRun current for each run (PacketRunScope, the runtime's
// per-thread state of runtime/helpers/helpers.h); helpers without a
// context argument (redirect, redirect_map) find it there, and helpers
// that take the context learn from it what r1 points to (an XdpBuff or an
// SkBuff). Outside a test run there is none, and those helpers fail as a
// kernel helper given no packet would (-EINVAL, or the type's "drop").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/helpers/helpers.h"

namespace sb::rt {

struct RedirectTarget {
  enum class Kind : uint8_t { Ifindex, Map };
  Kind kind = Kind::Ifindex;
  uint32_t ifindex = 0;  // Ifindex: bpf_redirect's device
  std::string map;       // Map: its name, type and key
  uint32_t map_type = 0;
  uint32_t key = 0;
  uint64_t flags = 0;    // BPF_F_INGRESS, BPF_F_BROADCAST, ...
};

// A copy of the packet bpf_clone_redirect sent (the kernel transmits it
// at once; a test run keeps it).
struct ClonedPacket {
  uint32_t ifindex = 0;
  uint64_t flags = 0;  // BPF_F_INGRESS: received on ifindex rather than sent
  std::vector<uint8_t> packet;
};

struct PacketRun {
  bool xdp = false;  // r1 is a bpf::XdpBuff, else a bpf::SkBuff
  std::optional<RedirectTarget> redirect;
  std::vector<ClonedPacket> clones;
  std::optional<std::vector<uint8_t>> tunnel_key;  // struct bpf_tunnel_key (44 bytes) as set
  static PacketRun* current();
};
using PacketRunScope = CurrentScope<PacketRun>;

// XDP_REDIRECT and TC_ACT_REDIRECT: the retvals a recorded target goes with.
constexpr uint32_t kXdpRedirect = 4, kTcActRedirect = 7;

// Adds bpf_clone_redirect (13), bpf_redirect (23), bpf_redirect_map (51)
// and bpf_perf_event_output (25) with their prototypes. clone_redirect
// takes BPF_F_INGRESS only and an ifindex other than 0 (user space has no
// device list; the kernel: -EINVAL for one that does not exist); it returns
// 0 and records the packet as it is at the call.
void add_packet_run_helpers(HelperTable& t);

}  // namespace sb::rt
