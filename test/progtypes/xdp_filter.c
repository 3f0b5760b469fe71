// A packet filter written for these tests in the manner of xdp-tools'
// xdp-filter (whose GPL source is not vendored here): Ethernet with up to
// two VLAN tags, IPv4 (options included) or IPv6, then the TCP or UDP
// ports; each of the source and destination MAC address, IP address and
// port is looked up in its map, whose value says which directions (and,
// for ports, which protocols) match. Two programs share the body: in
// xdp_filter_deny a match drops and the rest passes, in xdp_filter_allow a
// match passes and the rest drops. Every verdict is counted, packets and
// bytes, in a per-CPU array indexed by the XDP action, as xdp-filter's
// xdp_stats_map. Frames too short for the header they announce are
// aborted (counted as XDP_ABORTED), as xdp-filter's parser gives up.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// What a map's value matches.
#define MATCH_SRC 1u
#define MATCH_DST 2u
#define MATCH_TCP 4u  // ports: the protocol the port is for
#define MATCH_UDP 8u

struct ethaddr {
  __u8 addr[ETH_ALEN];
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, struct ethaddr);
  __type(value, __u32);
} filter_ethernet SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u32);
} filter_ipv4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, struct in6_addr);
  __type(value, __u32);
} filter_ipv6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 256);
  __type(key, __u16);  // host order
  __type(value, __u32);
} filter_ports SEC(".maps");

struct datarec {
  __u64 rx_packets;
  __u64 rx_bytes;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, XDP_REDIRECT + 1);
  __type(key, __u32);
  __type(value, struct datarec);
} xdp_stats_map SEC(".maps");

struct vlan_hdr {
  __be16 tci;
  __be16 proto;
};

static __always_inline int record(struct xdp_md *ctx, __u32 action) {
  struct datarec *rec = bpf_map_lookup_elem(&xdp_stats_map, &action);
  if (rec) {
    rec->rx_packets++;
    rec->rx_bytes += ctx->data_end - ctx->data;
  }
  return action;
}

static __always_inline int matches(void *map, void *key, __u32 want) {
  __u32 *v = bpf_map_lookup_elem(map, key);
  return v && (*v & want) == want;
}

static __always_inline int filter(struct xdp_md *ctx, int deny) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return record(ctx, XDP_ABORTED);
  const int hit_verdict = deny ? XDP_DROP : XDP_PASS, miss_verdict = deny ? XDP_PASS : XDP_DROP;

  struct ethaddr a;
  __builtin_memcpy(a.addr, eth->h_source, ETH_ALEN);
  if (matches(&filter_ethernet, &a, MATCH_SRC)) return record(ctx, hit_verdict);
  __builtin_memcpy(a.addr, eth->h_dest, ETH_ALEN);
  if (matches(&filter_ethernet, &a, MATCH_DST)) return record(ctx, hit_verdict);

  void *at = eth + 1;
  __u16 proto = eth->h_proto;
#pragma unroll
  for (int i = 0; i < 2; i++) {
    if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD)) break;
    struct vlan_hdr *vlan = at;
    if ((void *)(vlan + 1) > end) return record(ctx, XDP_ABORTED);
    proto = vlan->proto;
    at = vlan + 1;
  }

  __u8 l4 = 0;
  if (proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *ip = at;
    if ((void *)(ip + 1) > end) return record(ctx, XDP_ABORTED);
    const __u32 hdr = ip->ihl * 4;
    if (hdr < sizeof(*ip) || at + hdr > end) return record(ctx, XDP_ABORTED);
    __u32 addr = ip->saddr;
    if (matches(&filter_ipv4, &addr, MATCH_SRC)) return record(ctx, hit_verdict);
    addr = ip->daddr;
    if (matches(&filter_ipv4, &addr, MATCH_DST)) return record(ctx, hit_verdict);
    l4 = ip->protocol;
    at += hdr;
  } else if (proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = at;
    if ((void *)(ip6 + 1) > end) return record(ctx, XDP_ABORTED);
    struct in6_addr addr = ip6->saddr;
    if (matches(&filter_ipv6, &addr, MATCH_SRC)) return record(ctx, hit_verdict);
    addr = ip6->daddr;
    if (matches(&filter_ipv6, &addr, MATCH_DST)) return record(ctx, hit_verdict);
    l4 = ip6->nexthdr;
    at = ip6 + 1;
  } else {
    return record(ctx, miss_verdict);
  }

  __u16 sport, dport;
  __u32 kind;
  if (l4 == IPPROTO_TCP) {
    struct tcphdr *tcp = at;
    if ((void *)(tcp + 1) > end) return record(ctx, XDP_ABORTED);
    sport = bpf_ntohs(tcp->source), dport = bpf_ntohs(tcp->dest), kind = MATCH_TCP;
  } else if (l4 == IPPROTO_UDP) {
    struct udphdr *udp = at;
    if ((void *)(udp + 1) > end) return record(ctx, XDP_ABORTED);
    sport = bpf_ntohs(udp->source), dport = bpf_ntohs(udp->dest), kind = MATCH_UDP;
  } else {
    return record(ctx, miss_verdict);
  }
  if (matches(&filter_ports, &sport, MATCH_SRC | kind)) return record(ctx, hit_verdict);
  if (matches(&filter_ports, &dport, MATCH_DST | kind)) return record(ctx, hit_verdict);
  return record(ctx, miss_verdict);
}

SEC("xdp")
int xdp_filter_deny(struct xdp_md *ctx) { return filter(ctx, 1); }

SEC("xdp")
int xdp_filter_allow(struct xdp_md *ctx) { return filter(ctx, 0); }

char _license[] SEC("license") = "GPL";
