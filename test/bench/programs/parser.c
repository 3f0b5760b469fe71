// A branchy packet parser over 256 synthetic packets (test/bench/jit_bench.cpp
// makes them): Ethernet, optional VLAN tag, then IPv4 (with options and
// fragments) or IPv6 (extension headers end the parse), ARP or other, then
// TCP (by flags), UDP (DNS or not) or ICMP/ICMPv6 (echo or not), each
// header checked against the packet's length. Returns a hash of every
// packet's verdict and flow fields.
//
// Input: 256 slots of 128 bytes; a slot is the packet's length (u16, little
// endian, at most 126) and then the packet. One packet is parsed by a global
// function, which the kernel's verifier checks once (inline, its paths
// times the packets would exceed the verifier's budget).
#include "bench.h"

#define PKT_SLOTS 256
#define PKT_SLOT 128
#define PKT_MAX (PKT_SLOT - 2)
#define PKT_BYTES (PKT_SLOTS * PKT_SLOT)

enum verdict {
  V_SHORT = 1, V_NOT_IP, V_ARP, V_BAD_IP, V_FRAG, V_IPV6_EXT,
  V_TCP, V_TCP_SYN, V_TCP_FIN, V_TCP_RST, V_UDP, V_UDP_DNS, V_ICMP, V_ICMP_ECHO, V_OTHER_L4,
};

static inline __attribute__((always_inline)) __u32 be16(const __u8 *p) { return (__u32)p[0] << 8 | p[1]; }
static inline __attribute__((always_inline)) __u32 be32(const __u8 *p) {
  return (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
}

static inline __attribute__((always_inline)) __u32 parse(const __u8 *pkt, __u32 len, __u64 *flow) {
  if (len < 14) return V_SHORT;
  __u32 off = 12;
  __u32 proto = be16(pkt + 12);
  if (proto == 0x8100 || proto == 0x88a8) {
    if (len < 18) return V_SHORT;
    proto = be16(pkt + 16);
    off = 16;
  }
  off += 2;

  __u32 l4, l4proto;
  if (proto == 0x0800) {
    if (len < off + 20) return V_SHORT;
    const __u8 *ip = pkt + off;
    if ((ip[0] >> 4) != 4) return V_BAD_IP;
    __u32 ihl = (ip[0] & 0xf) * 4;
    if (ihl < 20 || len < off + ihl) return V_BAD_IP;
    if (be16(ip + 6) & 0x3fff) return V_FRAG;
    l4proto = ip[9];
    *flow = (__u64)be32(ip + 12) << 32 | be32(ip + 16);
    l4 = off + ihl;
  } else if (proto == 0x86dd) {
    if (len < off + 40) return V_SHORT;
    const __u8 *ip6 = pkt + off;
    l4proto = ip6[6];
    if (l4proto == 0 || l4proto == 43 || l4proto == 44 || l4proto == 60) return V_IPV6_EXT;
    *flow = (__u64)be32(ip6 + 20) << 32 | be32(ip6 + 36);
    l4 = off + 40;
  } else if (proto == 0x0806) {
    return V_ARP;
  } else {
    return V_NOT_IP;
  }

  const __u8 *t = pkt + l4;
  if (l4proto == 6) {
    if (len < l4 + 20) return V_SHORT;
    *flow ^= (__u64)be32(t) << 16;
    __u32 flags = t[13];
    if (flags & 0x04) return V_TCP_RST;
    if (flags & 0x02) return V_TCP_SYN;
    if (flags & 0x01) return V_TCP_FIN;
    return V_TCP;
  }
  if (l4proto == 17) {
    if (len < l4 + 8) return V_SHORT;
    __u32 sport = be16(t), dport = be16(t + 2);
    *flow ^= (__u64)(sport << 16 | dport) << 16;
    if (sport == 53 || dport == 53) return V_UDP_DNS;
    return V_UDP;
  }
  if (l4proto == 1 || l4proto == 58) {
    if (len < l4 + 4) return V_SHORT;
    __u32 type = t[0];
    *flow ^= type;
    if (type == 0 || type == 8 || type == 128 || type == 129) return V_ICMP_ECHO;
    return V_ICMP;
  }
  return V_OTHER_L4;
}

struct pkt_slot {
  __u8 len[2];
  __u8 data[PKT_MAX];
};

// One packet's verdict and flow fields, mixed.
__noinline __u64 parse_packet(const struct pkt_slot *slot) {
  if (!slot) return 0;
  __u32 len = slot->len[0] | (__u32)slot->len[1] << 8;
  if (len > PKT_MAX) len = PKT_MAX;
  __u64 flow = 0;
  __u32 v = parse(slot->data, len, &flow);
  return flow + v;
}

static __noinline __u64 parser_body(void *mem) {
  const struct pkt_slot *slots = mem;
  __u64 h = 0;
  for (__u32 i = 0; i < PKT_SLOTS; i++) h = (h ^ parse_packet(&slots[i])) * 0x100000001b3ULL;
  return h;
}

SB_BENCH(parser, PKT_BYTES)
