#include "runtime/progtypes/xdp_helpers.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "frontend/progtypes/xdp.h"
#include "frontend/verifier/helper_protos.h"

namespace sb::rt {

namespace {

using bpf::XdpBuff;

XdpBuff& buff(uint64_t ctx) { return *reinterpret_cast<XdpBuff*>(uintptr_t(ctx)); }
uint64_t error(int e) { return uint64_t(-int64_t(e)); }
uint8_t* ptr(uint64_t a) { return reinterpret_cast<uint8_t*>(uintptr_t(a)); }

// bpf_xdp_adjust_head(ctx, int offset)
uint64_t xdp_adjust_head(uint64_t ctx, uint64_t offset, uint64_t, uint64_t, uint64_t) {
  XdpBuff& x = buff(ctx);
  const int64_t delta = int32_t(uint32_t(offset));
  const uint64_t metalen = x.data - x.data_meta;
  const uint64_t data_start = x.data_hard_start + kXdpFrameHeader + metalen;
  const uint64_t data = x.data + uint64_t(delta);
  if (data < data_start || data > x.data_end - kEthHeaderLen) return error(EINVAL);
  if (metalen) std::memmove(ptr(x.data_meta + uint64_t(delta)), ptr(x.data_meta), metalen);
  x.data_meta += uint64_t(delta);
  x.data = data;
  return 0;
}

// bpf_xdp_adjust_meta(ctx, int offset)
uint64_t xdp_adjust_meta(uint64_t ctx, uint64_t offset, uint64_t, uint64_t, uint64_t) {
  XdpBuff& x = buff(ctx);
  const int64_t delta = int32_t(uint32_t(offset));
  const uint64_t meta = x.data_meta + uint64_t(delta);
  if (meta < x.data_hard_start + kXdpFrameHeader || meta > x.data) return error(EINVAL);
  const uint64_t metalen = x.data - meta;
  if ((metalen & 3) || metalen > kXdpMaxMeta) return error(EACCES);
  x.data_meta = meta;
  return 0;
}

uint8_t* frag(const XdpBuff& x, uint32_t i) { return ptr(x.data_hard_start + uint64_t(x.frame_sz) * (i + 1)); }

// bpf_xdp_frags_shrink_tail: fragments shrink from the last; what they
// cannot give comes off the linear part (as the 6.18 kernel does; 6.1
// ignored it).
uint64_t frags_shrink_tail(XdpBuff& x, int64_t by) {
  if (by > int64_t(x.data_end - x.data) + int64_t(x.frags_size) - int64_t(kEthHeaderLen)) return error(EINVAL);
  while (x.nr_frags > 0 && by > 0) {
    uint32_t& len = x.frag_len[x.nr_frags - 1];
    const uint32_t shrink = uint32_t(std::min<int64_t>(by, len));
    len -= shrink;
    x.frags_size -= shrink;
    by -= shrink;
    if (len) break;
    --x.nr_frags;
  }
  x.data_end -= uint64_t(by);
  return 0;
}

// bpf_xdp_frags_increase_tail: the last fragment grows into its page, zeroed.
uint64_t frags_increase_tail(XdpBuff& x, int64_t by) {
  uint32_t& len = x.frag_len[x.nr_frags - 1];
  if (by > int64_t(x.frame_sz) - int64_t(len)) return error(EINVAL);
  std::memset(frag(x, x.nr_frags - 1) + len, 0, size_t(by));
  len += uint32_t(by);
  x.frags_size += uint32_t(by);
  return 0;
}

// bpf_xdp_adjust_tail(ctx, int offset)
uint64_t xdp_adjust_tail(uint64_t ctx, uint64_t offset, uint64_t, uint64_t, uint64_t) {
  XdpBuff& x = buff(ctx);
  const int64_t delta = int32_t(uint32_t(offset));
  if (x.nr_frags > bpf::kXdpMaxFrags) return error(EINVAL);  // not a block the runtime built
  if (x.nr_frags) return delta < 0 ? frags_shrink_tail(x, -delta) : frags_increase_tail(x, delta);
  const uint64_t hard_end = x.data_hard_start + x.frame_sz - kXdpTailroom;
  const uint64_t data_end = x.data_end + uint64_t(delta);
  if (data_end > hard_end || data_end < x.data + kEthHeaderLen) return error(EINVAL);
  if (delta > 0) std::memset(ptr(x.data_end), 0, size_t(delta));
  x.data_end = data_end;
  return 0;
}

// bpf_xdp_get_buff_len(ctx)
uint64_t xdp_get_buff_len(uint64_t ctx, uint64_t, uint64_t, uint64_t, uint64_t) {
  const XdpBuff& x = buff(ctx);
  return x.data_end - x.data + x.frags_size;
}

}  // namespace

void add_xdp_helpers(HelperTable& t) {
  constexpr KernelHelper kHelpers[] = {{44, "xdp_adjust_head", xdp_adjust_head},
                                {54, "xdp_adjust_meta", xdp_adjust_meta},
                                {65, "xdp_adjust_tail", xdp_adjust_tail},
                                {188, "xdp_get_buff_len", xdp_get_buff_len}};
  t.add_kernel(kHelpers);
}

}  // namespace sb::rt
