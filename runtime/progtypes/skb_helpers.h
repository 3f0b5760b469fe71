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
//
// Springboard's sk_buff carries no checksum state, so BPF_F_RECOMPUTE_CSUM
// has nothing to update; BPF_F_INVALIDATE_HASH clears skb->hash.
#pragma once

#include "runtime/helpers/helpers.h"

namespace sb::rt {

// Adds helpers 9 and 26 with their prototypes.
void add_skb_helpers(HelperTable& t);

}  // namespace sb::rt
