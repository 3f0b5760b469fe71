// The XDP program type: xdp_md's fields as the kernel's xdp_is_valid_access
// allows them (every field read whole as a u32, nothing written,
// egress_ifindex only for devmap programs, which Springboard does not run),
// where each lives in XdpBuff, and the helpers xdp_func_proto gives.
#include "frontend/progtypes/xdp.h"

#include <array>

namespace sb::bpf {

namespace {

constexpr CtxField kXdpFields[] = {
    {.name = "data", .offset = offsetof(XdpMd, data), .size = 4, .narrow = false, .value = CtxValue::PacketData,
     .native_offset = offsetof(XdpBuff, data), .native_size = 8},
    {.name = "data_end", .offset = offsetof(XdpMd, data_end), .size = 4, .narrow = false,
     .value = CtxValue::PacketEnd, .native_offset = offsetof(XdpBuff, data_end), .native_size = 8},
    {.name = "data_meta", .offset = offsetof(XdpMd, data_meta), .size = 4, .narrow = false,
     .value = CtxValue::PacketMeta, .native_offset = offsetof(XdpBuff, data_meta), .native_size = 8},
    {.name = "ingress_ifindex", .offset = offsetof(XdpMd, ingress_ifindex), .size = 4, .narrow = false,
     .native_offset = offsetof(XdpBuff, ingress_ifindex), .native_size = 4},
    {.name = "rx_queue_index", .offset = offsetof(XdpMd, rx_queue_index), .size = 4, .narrow = false,
     .native_offset = offsetof(XdpBuff, rx_queue_index), .native_size = 4},
    // Readable by BPF_XDP_DEVMAP programs only.
    {.name = "egress_ifindex", .offset = offsetof(XdpMd, egress_ifindex), .size = 4, .read = false,
     .narrow = false, .native_offset = offsetof(XdpBuff, egress_ifindex), .native_size = 4},
};

// xdp_func_proto (net/core/filter.c): the packet helpers and the base set.
bool xdp_helper_allowed(uint32_t id) {
  switch (id) {
    case 44:   // xdp_adjust_head
    case 54:   // xdp_adjust_meta
    case 65:   // xdp_adjust_tail
    case 188:  // xdp_get_buff_len
    case 23:   // redirect
    case 25:   // perf_event_output (bpf_xdp_event_output)
    case 28:   // csum_diff
    case 51:   // redirect_map
    case 69:   // fib_lookup
      return true;
    default:
      return base_helper_allowed(id);
  }
}

constexpr ProgramType kXdp{.name = "xdp",
                           .kernel_type = 6,  // BPF_PROG_TYPE_XDP
                           .ctx = {.size = sizeof(XdpMd), .fields = kXdpFields, .rewritten = true, .btf_name = "xdp_md"},
                           .direct_packet_access = true,
                           // The kernel's verifier leaves XDP's return value open
                           // (check_return_code); an unknown action drops the packet.
                           .ret_range = std::nullopt,
                           .helper_allowed = xdp_helper_allowed};

}  // namespace

const ProgramType& xdp_program_type() { return kXdp; }

}  // namespace sb::bpf
