// The socket-buffer helpers, with the kernel's semantics and error codes
// (net/core/filter.c), on the native context (bpf::SkBuff,
// runtime/progtypes/skb_run.h); offsets count from skb->data:
//
//   id   helper            meaning
//   9    skb_store_bytes   copy len bytes from the program's memory to offset: -EINVAL
//                          for flags other than BPF_F_RECOMPUTE_CSUM (1) and
//                          BPF_F_INVALIDATE_HASH (2), -EFAULT past skb->len
//   26   skb_load_bytes    copy len bytes at offset to the program's memory; past
//                          skb->len the memory is zeroed and it returns -EFAULT
//   18   skb_vlan_push     the tag becomes the skb's accelerated tag (vlan_present,
//                          vlan_tci, vlan_proto); one already there moves into the
//                          packet after the MACs first (the packet grows 4 bytes at
//                          the front); a protocol other than 802.1Q/802.1ad is 802.1Q
//   19   skb_vlan_pop      the accelerated tag goes, or else the packet's first tag
//                          (-ENOMEM for a frame shorter than 18 bytes); a further tag
//                          in the packet then becomes the accelerated one
//   21   skb_set_tunnel_key  checks the key as the kernel (size 44, or 28, 24, 22, 8 for
//                          older layouts; flags; tunnel_label only with BPF_F_TUNINFO_IPV6;
//                          tunnel_ext 0: else -EINVAL) and records it as the run's tunnel
//                          metadata (PacketRun::tunnel_key); the packet is unchanged
//   38   skb_change_tail   the packet becomes new_len bytes (grown with zeros), from the
//                          network header's offset (14) to the device's mtu +
//                          hard_header_len (kSkbMaxLen), else -EINVAL; flags must be 0
//   43   skb_change_head   head_room zero bytes in front (-EINVAL past kSkbMaxLen or
//                          with flags)
//
// Springboard's sk_buff carries no checksum state, so BPF_F_RECOMPUTE_CSUM
// has nothing to update; BPF_F_INVALIDATE_HASH clears skb->hash.
#pragma once

#include "runtime/helpers/helpers.h"

namespace sb::rt {

// Adds helpers 9, 18, 19, 21, 26, 38 and 43 with their prototypes.
void add_skb_helpers(HelperTable& t);

}  // namespace sb::rt
