// The example, as a new user writes it: pass IPv4, bounce the rest.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("xdp")
int xdp_eth(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if (eth + 1 > data_end) return XDP_DROP;
  return eth->h_proto == bpf_htons(ETH_P_IP) ? XDP_PASS : XDP_TX;
}

char _license[] SEC("license") = "GPL";
