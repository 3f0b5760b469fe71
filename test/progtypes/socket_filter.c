// A socket filter: the __sk_buff fields it may read go to the map `seen`,
// cb[] is written, the packet (from the network header) is read with
// bpf_skb_load_bytes only; it keeps IPv4 UDP (the whole packet, returning
// skb->len), keeps 64 bytes of IPv4 TCP and drops the rest (0).
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "seen.h"

SEC("socket")
int socket_filter(struct __sk_buff *skb) {
  SEE(len);
  SEE(pkt_type);
  SEE(mark);
  SEE(protocol);
  SEE(priority);
  SEE(ingress_ifindex);
  SEE(ifindex);
  SEE(cb[0]);
  SEE(hash);
  SEE(gso_segs);
  skb->cb[2] = skb->len;
  struct iphdr ip;
  long r = bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip));
  put(40, (__u64)r);
  if (r || skb->protocol != bpf_htons(ETH_P_IP)) return 0;
  put(41, ip.protocol);
  put(42, ip.ttl);
  if (ip.protocol == IPPROTO_UDP) return skb->len;
  if (ip.protocol == IPPROTO_TCP) return 64;
  return 0;
}

char _license[] SEC("license") = "GPL";
