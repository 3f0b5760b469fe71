// bpf_fib_lookup (helper 69) over a routing table the embedder provides
// (rt::Environment::add_fib_route), with the kernel's checks and return
// codes (net/core/filter.c bpf_ipv4_fib_lookup / bpf_ipv6_fib_lookup):
//
//   -EINVAL          plen < sizeof(struct bpf_fib_lookup) (64), or unknown flags
//   -EAFNOSUPPORT    a family other than AF_INET (2) and AF_INET6 (10)
//   -ENODEV          an ifindex that is no device: the devices are the loopback
//                    (ifindex 1) and every ifindex a route leaves by
//   FWD_DISABLED (5) the loopback as ingress (its forwarding is off, as on a host
//                    by default; the kernel checks it whatever the flags); the
//                    routes' devices forward
//   NOT_FWDED (4)    no route for the destination (the longest matching prefix
//                    of the table; an empty table routes nothing)
//   BLACKHOLE (1), UNREACHABLE (2), PROHIBIT (3)  a route of that kind
//   FRAG_NEEDED (8)  tot_len above the route's mtu (mtu_result says it)
//   NO_NEIGH (7)     a route without the next hop's MAC, unless
//                    BPF_FIB_LOOKUP_SKIP_NEIGH
//   SUCCESS (0)      ifindex, smac, dmac, mtu_result (and, through a gateway,
//                    ipv4_dst / ipv6_dst) filled in as the kernel does
//
// The host's own routes are deliberately not consulted: a program's result
// must not depend on the machine it is tested on.
#pragma once

#include <array>
#include <cstdint>

#include "runtime/helpers/helpers.h"

namespace sb::rt {

struct FibRoute {
  enum class Kind : uint8_t { Unicast, Blackhole, Unreachable, Prohibit };
  uint8_t family = 2;                 // AF_INET or AF_INET6
  std::array<uint8_t, 16> prefix{};   // network order; IPv4 in the first 4 bytes
  uint8_t prefixlen = 0;
  Kind kind = Kind::Unicast;
  uint32_t ifindex = 0;               // the device the packet leaves by
  std::array<uint8_t, 16> gateway{};  // all zero: on link (the destination is the next hop)
  std::array<uint8_t, 6> smac{}, dmac{};
  bool has_neighbour = true;          // the next hop's MAC (dmac) is known
  uint16_t mtu = 1500;
  uint32_t metric = 0;                // rt_metric
};

// Adds helper 69 with its prototype.
void add_fib_helpers(HelperTable& t);

}  // namespace sb::rt
