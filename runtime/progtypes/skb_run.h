// The native context of a TC or socket-filter run, built as the kernel's
// bpf_prog_test_run_skb builds its sk_buff on the loopback device: the
// packet after NET_SKB_PAD (64 bytes) of headroom with the skb_shared_info
// tailroom after it; eth_type_trans's protocol (network order) and
// pkt_type (from the destination MAC against loopback's zero address);
// ifindex 1; for TC the packet from the Ethernet header (skb->data at L2),
// for socket filters from the network header, with the Ethernet header
// put back as zeros after the run; a ctx_in's mark, priority,
// ingress_ifindex, cb[], tstamp, wire_len, gso_segs, gso_size and hwtstamp,
// every other field of it zero (else EINVAL, as the kernel).
//
//   block:  [SkBuff | pad to 192] [64 headroom | packet ... | room to kSkbMaxLen | 320 tailroom]
//                                  ^head        ^data (TC)  ^data_end
#pragma once

#include <cstdint>
#include <vector>

#include "frontend/progtypes/skb.h"
#include "runtime/progtypes/test_run.h"

namespace sb::rt {

constexpr uint32_t kSkbHeadroom = 64;     // NET_SKB_PAD + NET_IP_ALIGN on x86-64
constexpr uint32_t kSkbTailroom = 320;    // SKB_DATA_ALIGN(sizeof(struct skb_shared_info))
constexpr uint32_t kSkbMaxData = 4096 - kSkbHeadroom - kSkbTailroom;  // bpf_test_init's limit: 3712
constexpr uint32_t kSkBuffBytes = 192;    // the SkBuff, padded
// The longest packet bpf_skb_change_tail / change_head may make: the
// loopback device's mtu + hard_header_len (__bpf_skb_max_len). The buffer
// has room for it, so the helpers grow the packet in place (moving it
// within the buffer when the headroom is short, where the kernel would
// reallocate the head: no packet pointer survives those helpers).
constexpr uint32_t kSkbMaxLen = 65536 + 14;

// `l2`: the program sees the Ethernet header (TC) or starts at the network
// header (socket filters). Throws sb::Error for input the kernel refuses.
std::vector<uint8_t> build_skb_context(const TestRunInput& in, bool l2);
bpf::SkBuff& skb_of(std::vector<uint8_t>& block);
void finish_skb(std::vector<uint8_t>& block, const TestRunInput& in, bool l2, TestRunOutput& out);

}  // namespace sb::rt
