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

// What r1 points to when an XDP program runs. The packet lives in a frame of
// frame_sz bytes from data_hard_start: the kernel's headroom, then the
// packet [data, data_end) with metadata [data_meta, data) before it, then
// tailroom (the skb_shared_info the kernel reserves at the frame's end).
struct XdpBuff {
  uint64_t data;
  uint64_t data_end;
  uint64_t data_meta;
  uint64_t data_hard_start;
  uint32_t frame_sz;
  uint32_t ingress_ifindex;
  uint32_t rx_queue_index;
  uint32_t egress_ifindex;
};
static_assert(sizeof(XdpBuff) == 48);

const ProgramType& xdp_program_type();

}  // namespace sb::bpf
