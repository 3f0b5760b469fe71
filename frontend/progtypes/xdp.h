// XDP programs (BPF_PROG_TYPE_XDP): the uapi context `struct xdp_md` as
// <linux/bpf.h> declares it, and the native context the runtime builds for
// a run (runtime/progtypes/xdp_run.h), a reduced `struct xdp_buff`.
//
// A program reads xdp_md; lowering and the interpreter rewrite each access
// into one of XdpBuff (the kernel's xdp_convert_ctx_access), so the 32-bit
// uapi fields data, data_end and data_meta become the 64-bit pointers the
// verifier typed them as. The helpers that change the packet
// (xdp_adjust_head / tail / meta) work on XdpBuff too.
#pragma once

#include <cstddef>
#include <cstdint>

#include "frontend/progtypes/program_type.h"

namespace sb::bpf {

// include/uapi/linux/bpf.h
struct XdpMd {
  uint32_t data;
  uint32_t data_end;
  uint32_t data_meta;
  uint32_t ingress_ifindex;  // rxq->dev->ifindex
  uint32_t rx_queue_index;   // rxq->queue_index
  uint32_t egress_ifindex;   // txq->dev->ifindex (devmap programs only)
};
static_assert(sizeof(XdpMd) == 24);

constexpr uint32_t kXdpMaxFrags = 17;  // MAX_SKB_FRAGS

// What r1 points to when an XDP program runs. The packet lives in a frame of
// frame_sz bytes from data_hard_start: the kernel's headroom, then the
// packet [data, data_end) with metadata [data_meta, data) before it, then
// tailroom (the skb_shared_info the kernel reserves at the frame's end).
// What does not fit the frame (or lies past the data_end a ctx_in gave)
// is in fragments, as the kernel's skb_shared_info frags: fragment i is
// frag_len[i] bytes at data_hard_start + frame_sz * (i + 1).
struct XdpBuff {
  uint64_t data;
  uint64_t data_end;
  uint64_t data_meta;
  uint64_t data_hard_start;
  uint32_t frame_sz;
  uint32_t ingress_ifindex;
  uint32_t rx_queue_index;
  uint32_t egress_ifindex;
  uint32_t nr_frags;
  uint32_t frags_size;  // the sum of frag_len
  uint32_t frag_len[kXdpMaxFrags];
};
static_assert(sizeof(XdpBuff) == 128);

const ProgramType& xdp_program_type();

}  // namespace sb::bpf
