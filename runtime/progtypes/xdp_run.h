// The native context of an XDP run, built as the kernel's
// bpf_prog_test_run_xdp builds its xdp_buff: one block of memory holding
// the bpf::XdpBuff r1 points to, then one 4096-byte frame with
// XDP_PACKET_HEADROOM (256 bytes, so xdp_adjust_head can grow the front)
// before the packet and the skb_shared_info tailroom at the end. The
// engines run over that block like any other memory, so its pointers mean
// the same thing natively, in the interpreter and in Unicorn.
//
//   block:  [XdpBuff | pad to 128] [frame: 40 xdp_frame | headroom ... | meta | packet ... | ... | 320 tailroom]
//                                   ^data_hard_start              ^data_meta ^data  ^data_end
//           then a 4096-byte page per fragment
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "frontend/progtypes/xdp.h"
#include "runtime/progtypes/test_run.h"

namespace sb::rt {

constexpr uint32_t kXdpBuffBytes = 128;  // the XdpBuff, padded: the frame starts 128 bytes in

// The block for `in` (its packet and xdp_md). Throws sb::Error for input
// the kernel refuses, naming the input and field.
std::vector<uint8_t> build_xdp_context(const TestRunInput& in);
bpf::XdpBuff& xdp_buff(std::vector<uint8_t>& block);

// After the runs: data_out is [data_meta, data_end) and the fragments, ctx_out the xdp_md
// with data and data_end relative to data_meta (xdp_convert_buff_to_md).
void finish_xdp(std::vector<uint8_t>& block, const TestRunInput& in, TestRunOutput& out);

}  // namespace sb::rt
