// Packet parsing: Ethernet -> IPv4 (with options) -> UDP from the input
// memory, every header bounds-checked against the end of the packet.
// Returns ttl << 32 | source port << 16 | destination port for UDP, and
// 0xffff0000 | verdict otherwise. Counts verdicts in an array map and UDP
// packets per IPv4 source address in a hash map.
#include "sb_bpf.h"

struct ethhdr {
  __u8 h_dest[6];
  __u8 h_source[6];
  __u16 h_proto;
} __attribute__((packed));

struct iphdr {
  __u8 ihl_version;
  __u8 tos;
  __u16 tot_len;
  __u16 id;
  __u16 frag_off;
  __u8 ttl;
  __u8 protocol;
  __u16 check;
  __u32 saddr;
  __u32 daddr;
};

struct udphdr {
  __u16 source;
  __u16 dest;
  __u16 len;
  __u16 check;
};

enum verdict { PASS_UDP = 0, DROP_SHORT = 1, NOT_IPV4 = 2, NOT_UDP = 3, NUM_VERDICTS = 4 };

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, NUM_VERDICTS);
  __type(key, __u32);
  __type(value, __u64);
} verdicts SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u64);
} udp_by_source SEC(".maps");

static __always_inline __u64 verdict(__u32 v) {
  __u64 *count = bpf_map_lookup_elem(&verdicts, &v);
  if (count) __sync_fetch_and_add(count, 1);
  return v == PASS_UDP ? 0 : 0xffff0000 | v;
}

SEC("xdp") __u64 parse_udp(void *data, __u64 len) {
  void *end = data + len;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return verdict(DROP_SHORT);
  if (eth->h_proto != bpf_htons(0x0800)) return verdict(NOT_IPV4);

  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > end) return verdict(DROP_SHORT);
  if ((ip->ihl_version >> 4) != 4) return verdict(NOT_IPV4);
  __u32 ihl = (ip->ihl_version & 0xf) * 4;
  if (ihl < sizeof(*ip)) return verdict(DROP_SHORT);
  if (ip->protocol != 17) return verdict(NOT_UDP);

  struct udphdr *udp = (void *)ip + ihl;
  if ((void *)(udp + 1) > end) return verdict(DROP_SHORT);

  __u32 src = ip->saddr;
  __u64 one = 1;
  __u64 *n = bpf_map_lookup_elem(&udp_by_source, &src);
  if (n)
    __sync_fetch_and_add(n, 1);
  else
    bpf_map_update_elem(&udp_by_source, &src, &one, BPF_NOEXIST);
  verdict(PASS_UDP);
  return (__u64)ip->ttl << 32 | (__u64)bpf_ntohs(udp->source) << 16 | bpf_ntohs(udp->dest);
}
