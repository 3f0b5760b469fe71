// A TC classifier over struct __sk_buff: every readable field goes to the
// map `seen` (index = the field's __sk_buff offset / 4, tstamp and hwtstamp
// whole at their offsets), the writable ones are written (mark, priority,
// tc_index, tc_classid, cb[], tstamp), the packet is read directly and
// through bpf_skb_load_bytes, and an IPv4 TTL is decremented with
// bpf_skb_store_bytes (the verifier then forgets the packet pointers).
// Verdicts: TC_ACT_SHOT for frames without an IPv4 or IPv6 header,
// TC_ACT_OK otherwise; the error codes of out-of-range loads and stores go
// to seen[47], seen[46].
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "seen.h"

SEC("tc")
int tc_classify(struct __sk_buff *skb) {
  SEE(len);
  SEE(pkt_type);
  SEE(mark);
  SEE(queue_mapping);
  SEE(protocol);
  SEE(vlan_present);
  SEE(vlan_tci);
  SEE(priority);
  SEE(ingress_ifindex);
  SEE(ifindex);
  SEE(tc_index);
  SEE(cb[0]);
  SEE(cb[4]);
  SEE(hash);
  SEE(tc_classid);
  SEE(napi_id);
  SEE(wire_len);
  SEE(gso_segs);
  SEE(gso_size);
  put(38, skb->tstamp);
  put(39, skb->hwtstamp);
  put(40, *((volatile __u8 *)&skb->protocol + 1));  // a narrow load
  skb->mark = skb->mark * 3 + 1;
  skb->priority = 7;
  skb->tc_index = 5;
  skb->tc_classid = 0x10002;
  skb->cb[1] = skb->cb[0] + 100;
  skb->cb[4] = 0xabcdef;
  skb->tstamp = skb->tstamp + 1000;

  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end) return TC_ACT_SHOT;
  put(41, eth->h_proto);
  __u8 buf[4] = {};
  put(47, (__u64)bpf_skb_load_bytes(skb, skb->len - 2, buf, 4));  // past the end: -EFAULT, zeroed
  put(45, *(__u32 *)buf);
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr ip;
    if (bpf_skb_load_bytes(skb, sizeof(*eth), &ip, sizeof(ip))) return TC_ACT_SHOT;
    put(42, ip.ttl);
    __u8 ttl = ip.ttl - 1;
    put(43, (__u64)bpf_skb_store_bytes(skb, sizeof(*eth) + offsetof(struct iphdr, ttl), &ttl, 1, 0));
    put(46, (__u64)bpf_skb_store_bytes(skb, skb->len - 1, &ttl, 2, 0));  // -EFAULT
    put(44, (__u64)bpf_skb_store_bytes(skb, 0, &ttl, 1, 4));            // bad flags: -EINVAL
    data = (void *)(long)skb->data;
    data_end = (void *)(long)skb->data_end;
    if (data + sizeof(*eth) + sizeof(ip) > data_end) return TC_ACT_SHOT;
    return ((struct iphdr *)(data + sizeof(*eth)))->ttl == ttl ? TC_ACT_OK : TC_ACT_UNSPEC;
  }
  if (eth->h_proto == bpf_htons(ETH_P_IPV6)) return TC_ACT_OK;
  return TC_ACT_SHOT;
}

char _license[] SEC("license") = "GPL";
