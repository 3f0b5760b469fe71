// The TC helpers beyond loads and stores, each result into `seen` in order:
// checksum updates after rewriting an IPv4 TTL and destination
// (bpf_l3_csum_replace / bpf_l4_csum_replace for 2- and 4-byte fields and
// by a bpf_csum_diff, with BPF_F_PSEUDO_HDR and BPF_F_MARK_MANGLED_0, and
// their errors), VLAN tags (two pushes, pops, the __sk_buff fields after
// each), bpf_skb_set_tunnel_key's accepted and refused keys, bpf_redirect's
// verdicts, bpf_skb_change_tail / change_head, the CPU / NUMA /
// boot-time helpers, and bpf_get_hash_recalc's properties. The frame's last byte
// chooses the part; the program returns TC_ACT_OK, or bpf_redirect's verdict.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "seen.h"

#define out(v) out_at(&at, (v))
static __always_inline void out_at(__u32 *at, __s64 v) {
  put(*at, (__u64)v);
  *at += 1;
}

static __always_inline void fields(__u32 *at_p, struct __sk_buff *skb) {
  __u32 at = *at_p;
  out(skb->vlan_present);
  out(skb->vlan_tci);
  out(skb->vlan_proto);
  out(skb->protocol);
  out(skb->len);
  *at_p = at;
}

enum { kIpCsum = 24, kTtl = 22, kDaddr = 30, kUdpCsum = 40 };

SEC("tc")
int tc_helpers(struct __sk_buff *skb) {
  __u32 at = 0;
  __u8 sel = 0;
  if (skb->len < 43 || bpf_skb_load_bytes(skb, skb->len - 1, &sel, 1)) return TC_ACT_SHOT;
  if (sel == 0) {
    __u16 old16 = 0, new16;
    out(bpf_skb_load_bytes(skb, kTtl, &old16, 2));
    new16 = old16 - 1;  // the TTL's byte, in memory order
    out(bpf_skb_store_bytes(skb, kTtl, &new16, 2, 0));
    out(bpf_l3_csum_replace(skb, kIpCsum, old16, new16, 2));
    __u32 old32 = 0, new32 = bpf_htonl(0x0a000063);
    out(bpf_skb_load_bytes(skb, kDaddr, &old32, 4));
    out(bpf_skb_store_bytes(skb, kDaddr, &new32, 4, 0));
    out(bpf_l3_csum_replace(skb, kIpCsum, old32, new32, 4));
    // A zero UDP checksum stays zero with BPF_F_MARK_MANGLED_0 ...
    out(bpf_l4_csum_replace(skb, kUdpCsum, old32, new32, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4));
    // ... unless enforced; then by a diff.
    out(bpf_l4_csum_replace(skb, kUdpCsum, old32, new32,
                            BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE | 4));
    __s64 diff = bpf_csum_diff(&old32, 4, &new32, 4, 0);
    out(diff);
    out(bpf_l4_csum_replace(skb, kUdpCsum, 0, diff, BPF_F_PSEUDO_HDR));
    out(bpf_l3_csum_replace(skb, kIpCsum, 0, (__u32)bpf_csum_diff(&new32, 4, &old32, 4, 0), 0));
    out(bpf_csum_diff(0, 0, &new32, 4, 0x1234));
    out(bpf_csum_diff(&old32, 4, 0, 0, 0xffffffff));
    // Errors: an odd or past-the-end offset, a field size of 3, from with a diff, unknown flags.
    out(bpf_l3_csum_replace(skb, 25, 0, 0, 2));
    out(bpf_l3_csum_replace(skb, skb->len - 1, 0, 0, 2));
    out(bpf_l3_csum_replace(skb, kIpCsum, 0, 0, 3));
    out(bpf_l3_csum_replace(skb, kIpCsum, 1, 0, 0));
    out(bpf_l3_csum_replace(skb, kIpCsum, 0, 0, 0x10));
    out(bpf_l4_csum_replace(skb, kUdpCsum, 0, 0, 0x100));
    out(bpf_csum_diff(&old32, 3, &new32, 4, 0));
  } else if (sel == 1) {
    fields(&at, skb);
    out(bpf_skb_vlan_push(skb, bpf_htons(0x8100), 5));
    fields(&at, skb);
    out(bpf_skb_vlan_push(skb, bpf_htons(0x88a8), 0x1007));
    fields(&at, skb);
    out(bpf_skb_vlan_push(skb, bpf_htons(0x1234), 9));  // not a VLAN protocol: 802.1Q
    fields(&at, skb);
    for (int i = 0; i < 4; i++) {
      out(bpf_skb_vlan_pop(skb));
      fields(&at, skb);
    }
  } else if (sel == 2) {
    struct bpf_tunnel_key k = {.tunnel_id = 5, .remote_ipv4 = 0x0a000001, .tunnel_ttl = 64};
    out(bpf_skb_set_tunnel_key(skb, &k, sizeof k, 0));
    out(bpf_skb_set_tunnel_key(skb, &k, 8, BPF_F_ZERO_CSUM_TX));  // an older, shorter layout
    out(bpf_skb_set_tunnel_key(skb, &k, 12, 0));                   // not a layout: -EINVAL
    out(bpf_skb_set_tunnel_key(skb, &k, sizeof k, 1 << 8));        // -EINVAL
    k.tunnel_label = 3;
    out(bpf_skb_set_tunnel_key(skb, &k, sizeof k, 0));  // a label needs IPv6: -EINVAL
    out(bpf_skb_set_tunnel_key(skb, &k, sizeof k, BPF_F_TUNINFO_IPV6));
    out(bpf_clone_redirect(skb, 1, 0));  // a copy out of the loopback
    out(bpf_clone_redirect(skb, 1, 4));  // an unknown flag: -EINVAL
    out(bpf_redirect(1, 2));  // an unknown flag: TC_ACT_SHOT
    out(bpf_redirect(1, BPF_F_INGRESS));
    return bpf_redirect(1, 0);
  } else if (sel == 4) {
    __u32 len = skb->len;
    out(bpf_skb_change_tail(skb, len + 20, 0));
    out(skb->len);
    out(bpf_skb_change_tail(skb, len - 10, 0));
    out(skb->len);
    out(bpf_skb_change_tail(skb, 13, 0));         // shorter than the Ethernet header: -EINVAL
    out(bpf_skb_change_tail(skb, 65551, 0));      // past lo's mtu + header: -EINVAL
    out(bpf_skb_change_tail(skb, len, 1));        // flags: -EINVAL
    out(bpf_skb_change_head(skb, 8, 0));
    out(skb->len);
    out(bpf_skb_change_head(skb, 100, 0));        // more than the headroom
    out(skb->len);
    out(bpf_skb_change_head(skb, 4, 1));          // -EINVAL
    out(bpf_skb_change_head(skb, 0x7fffffff, 0));  // -EINVAL
    out(bpf_skb_change_tail(skb, skb->len + 3000, 0));
    out(skb->len);
    __u8 tag = 0x5a;
    out(bpf_skb_store_bytes(skb, 0, &tag, 1, 0));
  } else if (sel == 5) {
    // bpf_get_hash_recalc: the numbers are the kernel's own (siphash, keyed
    // at boot), so only what holds for any key is recorded: non-zero,
    // stored in skb->hash, stable, cleared by BPF_F_INVALIDATE_HASH, the
    // same for the flow's other direction, another for another port.
    __u32 h = bpf_get_hash_recalc(skb);
    out(h != 0);
    out(skb->hash == h);
    out(bpf_get_hash_recalc(skb) == h);
    __u8 a[8], p[4];
    if (bpf_skb_load_bytes(skb, 26, a, 8) || bpf_skb_load_bytes(skb, 34, p, 4)) return TC_ACT_SHOT;
    __u8 b[8] = {a[4], a[5], a[6], a[7], a[0], a[1], a[2], a[3]}, q[4] = {p[2], p[3], p[0], p[1]};
    out(bpf_skb_store_bytes(skb, 26, b, 8, BPF_F_INVALIDATE_HASH));
    out(skb->hash);
    out(bpf_skb_store_bytes(skb, 34, q, 4, 0));
    out(bpf_get_hash_recalc(skb) == h);
    q[0] ^= 0x40;
    out(bpf_skb_store_bytes(skb, 34, q, 4, BPF_F_INVALIDATE_HASH));
    out(bpf_get_hash_recalc(skb) != h);
  } else if (sel == 3) {
    out(bpf_get_smp_processor_id() < 4096);
    out(bpf_get_numa_node_id());
    out(bpf_ktime_get_boot_ns() > 0);
  }
  return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
