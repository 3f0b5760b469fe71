#include "runtime/progtypes/xdp_run.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "ir/diag.h"
#include "runtime/progtypes/xdp_helpers.h"

namespace sb::rt {

namespace {

constexpr uint32_t kLoopbackIfindex = 1;  // the kernel's test run receives on the loopback device

uint64_t addr(std::vector<uint8_t>& block, size_t offset) { return uint64_t(uintptr_t(block.data() + offset)); }

}  // namespace

bpf::XdpBuff& xdp_buff(std::vector<uint8_t>& block) { return *reinterpret_cast<bpf::XdpBuff*>(block.data()); }

std::vector<uint8_t> build_xdp_context(const TestRunInput& in) {
  const size_t size_in = in.data.size();
  uint32_t meta = 0;
  size_t linear = size_in;
  bpf::XdpMd md{};
  if (in.ctx) {
    md = read_context_in<bpf::XdpMd>(*in.ctx, in.ctx_name, "struct xdp_md");
    auto bad = [&](const char* field, const std::string& why) {
      throw Error(in.ctx_name + ": field " + field, why + " (the kernel: EINVAL)");
    };
    if (md.data_meta != 0) bad("data_meta", fmt::format("is {}; it must be 0 (no data before the metadata)", md.data_meta));
    if (md.data_end > size_in)
      bad("data_end", fmt::format("{} is past the {} bytes of {}", md.data_end, size_in, in.data_name));
    if (md.data > md.data_end) bad("data", fmt::format("{} is past data_end {}", md.data, md.data_end));
    if ((md.data & 3) || md.data > kXdpMaxMeta)
      bad("data", fmt::format("{} bytes of metadata; it must be a multiple of 4, at most {}", md.data, kXdpMaxMeta));
    if (md.egress_ifindex != 0) bad("egress_ifindex", "must be 0 (a test run has no egress device)");
    if (md.ingress_ifindex == 0 && md.rx_queue_index != 0)
      bad("rx_queue_index", fmt::format("{} without an ingress_ifindex", md.rx_queue_index));
    meta = md.data;
    linear = md.data_end;
  }
  linear = std::min<size_t>(linear, kXdpMaxLinear);  // the rest goes into fragments
  if (size_in - meta < kEthHeaderLen)
    throw Error(in.data_name, fmt::format("{} bytes{}: an XDP frame holds at least an Ethernet header ({} bytes) (the "
                                          "kernel: EINVAL)",
                                          size_in, meta ? fmt::format(" after {} bytes of metadata", meta) : "",
                                          kEthHeaderLen));
  const size_t rest = size_in - linear;
  const size_t frags = (rest + kXdpFrameSize - 1) / kXdpFrameSize;
  if (frags > bpf::kXdpMaxFrags)
    throw Error(in.data_name, fmt::format("{} bytes: {} in the frame and {} fragments of {}; at most {} fragments (the "
                                          "kernel: ENOMEM)",
                                          size_in, linear, frags, kXdpFrameSize, bpf::kXdpMaxFrags));

  std::vector<uint8_t> block(kXdpBuffBytes + kXdpFrameSize * (1 + frags), 0);
  const size_t hard_start = kXdpBuffBytes;
  const size_t meta_at = hard_start + kXdpHeadroom - meta;
  std::memcpy(block.data() + meta_at, in.data.data(), linear);
  bpf::XdpBuff& x = xdp_buff(block);
  x.data_hard_start = addr(block, hard_start);
  x.data_meta = addr(block, meta_at);
  x.data = x.data_meta + meta;
  x.data_end = x.data_meta + linear;
  x.frame_sz = kXdpFrameSize;
  x.ingress_ifindex = md.ingress_ifindex ? md.ingress_ifindex : kLoopbackIfindex;
  x.rx_queue_index = md.rx_queue_index;
  x.egress_ifindex = 0;
  x.nr_frags = uint32_t(frags);
  x.frags_size = uint32_t(rest);
  for (size_t i = 0; i < frags; ++i) {
    const size_t at = linear + i * kXdpFrameSize;
    x.frag_len[i] = uint32_t(std::min<size_t>(kXdpFrameSize, size_in - at));
    std::memcpy(block.data() + hard_start + kXdpFrameSize * (i + 1), in.data.data() + at, x.frag_len[i]);
  }
  return block;
}

void finish_xdp(std::vector<uint8_t>& block, const TestRunInput& in, TestRunOutput& out) {
  const bpf::XdpBuff& x = xdp_buff(block);
  const uint64_t begin = addr(block, kXdpBuffBytes), end = begin + kXdpFrameSize;
  // The helpers keep the pointers inside the frame; a program cannot write them.
  if (x.data_meta < begin || x.data_meta > x.data || x.data > x.data_end || x.data_end > end)
    throw Error("xdp_buff", "the packet pointers left the frame");
  const uint8_t* meta = reinterpret_cast<const uint8_t*>(uintptr_t(x.data_meta));
  out.data.assign(meta, meta + (x.data_end - x.data_meta));
  if (x.nr_frags > bpf::kXdpMaxFrags) throw Error("xdp_buff", "more fragments than the block has");
  for (uint32_t i = 0; i < x.nr_frags; ++i) {
    const uint8_t* f = block.data() + kXdpBuffBytes + size_t(kXdpFrameSize) * (i + 1);
    out.data.insert(out.data.end(), f, f + std::min(x.frag_len[i], kXdpFrameSize));
  }
  bpf::XdpMd md{};
  if (in.ctx) md = read_context_in<bpf::XdpMd>(*in.ctx, in.ctx_name, "struct xdp_md");
  md.data = uint32_t(x.data - x.data_meta);
  md.data_end = uint32_t(x.data_end - x.data_meta);
  out.ctx.resize(sizeof md);
  std::memcpy(out.ctx.data(), &md, sizeof md);
}

}  // namespace sb::rt
