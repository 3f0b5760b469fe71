// The XDP helpers, with the kernel's semantics and error codes
// (net/core/filter.c), on the native context the runtime builds
// (bpf::XdpBuff, runtime/progtypes/xdp_run.h):
//
//   id   helper             meaning
//   44   xdp_adjust_head    data += delta, within [hard_start + sizeof(xdp_frame) + metalen,
//                           data_end - ETH_HLEN], the metadata moving with it; else -EINVAL
//   54   xdp_adjust_meta    data_meta += delta, within [hard_start + sizeof(xdp_frame), data]
//                           (else -EINVAL), the metadata a multiple of 4 and at most
//                           32 bytes (else -EACCES)
//   65   xdp_adjust_tail    data_end += delta, at most the frame's end less the
//                           tailroom, at least data + ETH_HLEN (else -EINVAL); grown
//                           bytes are zeroed. With fragments, the last fragment grows
//                           within its page, or fragments shrink from the last
//   188  xdp_get_buff_len   data_end - data, plus the fragments' bytes
//
// They are plain functions of r1 (the native context) and r2, so they run
// the same under every engine.
#pragma once

#include <cstdint>

#include "runtime/helpers/helpers.h"

namespace sb::rt {

// Layout constants of the kernel's XDP frame on x86-64 (BPF_PROG_TEST_RUN
// builds one page: XDP_PACKET_HEADROOM, the packet, then
// SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) of tailroom).
constexpr uint32_t kXdpFrameSize = 4096;    // PAGE_SIZE: xdp_buff.frame_sz
constexpr uint32_t kXdpHeadroom = 256;      // XDP_PACKET_HEADROOM
constexpr uint32_t kXdpTailroom = 320;      // SKB_DATA_ALIGN(sizeof(struct skb_shared_info))
constexpr uint32_t kXdpFrameHeader = 40;    // sizeof(struct xdp_frame), kept at the headroom's start
constexpr uint32_t kXdpMaxMeta = 32;        // xdp_metalen_invalid
constexpr uint32_t kEthHeaderLen = 14;      // ETH_HLEN
constexpr uint32_t kXdpMaxLinear = kXdpFrameSize - kXdpHeadroom - kXdpTailroom;  // 3520

// Adds helpers 44, 54, 65 and 188 with their prototypes.
void add_xdp_helpers(HelperTable& t);

}  // namespace sb::rt
