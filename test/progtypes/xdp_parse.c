// A parser in the style of xdp-tutorial's packet01-parsing: Ethernet, up to
// two VLAN tags, IPv4 (with options) or IPv6, then TCP, UDP or ICMP; counts
// packets and bytes per outcome in `stats`, keeps the last UDP destination
// port per source address in `udp_ports`, and answers UDP port 7 (echo) by
// swapping the MAC addresses and returning XDP_TX. Truncated frames drop;
// what it does not know passes.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum { OUT_SHORT, OUT_OTHER_L3, OUT_TCP, OUT_UDP, OUT_ICMP, OUT_OTHER_L4, OUT_ECHO, OUT_COUNT };

struct counts {
  __u64 packets;
  __u64 bytes;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, OUT_COUNT);
  __type(key, __u32);
  __type(value, struct counts);
} stats SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u16);
} udp_ports SEC(".maps");

struct vlan_hdr {
  __be16 tci;
  __be16 proto;
};

static __always_inline int count(struct xdp_md *ctx, __u32 what, int verdict) {
  struct counts *c = bpf_map_lookup_elem(&stats, &what);
  if (c) {
    c->packets += 1;
    c->bytes += ctx->data_end - ctx->data;
  }
  return verdict;
}

SEC("xdp")
int xdp_parse(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end) return count(ctx, OUT_SHORT, XDP_DROP);
  void *at = eth + 1;
  __u16 proto = eth->h_proto;
#pragma unroll
  for (int i = 0; i < 2; i++) {
    if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD)) break;
    struct vlan_hdr *v = at;
    if ((void *)(v + 1) > data_end) return count(ctx, OUT_SHORT, XDP_DROP);
    proto = v->proto;
    at = v + 1;
  }
  __u8 l4;
  __u32 saddr = 0;
  if (proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *ip = at;
    if ((void *)(ip + 1) > data_end) return count(ctx, OUT_SHORT, XDP_DROP);
    int hl = ip->ihl * 4;
    if (hl < (int)sizeof(*ip)) return count(ctx, OUT_OTHER_L3, XDP_PASS);
    if (at + hl > data_end) return count(ctx, OUT_SHORT, XDP_DROP);
    l4 = ip->protocol;
    saddr = ip->saddr;
    at += hl;
  } else if (proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = at;
    if ((void *)(ip6 + 1) > data_end) return count(ctx, OUT_SHORT, XDP_DROP);
    l4 = ip6->nexthdr;
    saddr = ip6->saddr.in6_u.u6_addr32[3];
    at = ip6 + 1;
  } else {
    return count(ctx, OUT_OTHER_L3, XDP_PASS);
  }
  if (l4 == IPPROTO_TCP) {
    struct tcphdr *t = at;
    if ((void *)(t + 1) > data_end) return count(ctx, OUT_SHORT, XDP_DROP);
    return count(ctx, OUT_TCP, t->syn && !t->ack ? XDP_PASS : XDP_PASS);
  }
  if (l4 == IPPROTO_UDP) {
    struct udphdr *u = at;
    if ((void *)(u + 1) > data_end) return count(ctx, OUT_SHORT, XDP_DROP);
    __u16 port = bpf_ntohs(u->dest);
    bpf_map_update_elem(&udp_ports, &saddr, &port, BPF_ANY);
    if (port == 7) {
      __u8 tmp[ETH_ALEN];
      __builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
      __builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
      __builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
      return count(ctx, OUT_ECHO, XDP_TX);
    }
    return count(ctx, OUT_UDP, XDP_PASS);
  }
  if (l4 == IPPROTO_ICMP || l4 == IPPROTO_ICMPV6) return count(ctx, OUT_ICMP, XDP_PASS);
  return count(ctx, OUT_OTHER_L4, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
