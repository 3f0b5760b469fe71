// The kernel's program types the tests and benchmarks load (see
// kernel_prog_types.h).
#include "test/kernel_prog_types.h"

#include <linux/bpf.h>

#include <cstddef>

namespace sb::test {
namespace {

using bpf::CtxField;
using bpf::CtxValue;

#define SKB(field) static_cast<uint16_t>(offsetof(struct __sk_buff, field))
constexpr uint8_t kCbSize = sizeof(((struct __sk_buff*)nullptr)->cb);

// Socket filters: __sk_buff's plain numbers, cb[] read and written at any
// size, no packet pointers (bpf_skb_is_valid_access's rules).
constexpr CtxField kSocketFields[] = {
    {.name = "len", .offset = SKB(len), .size = 4},
    {.name = "pkt_type", .offset = SKB(pkt_type), .size = 4},
    {.name = "mark", .offset = SKB(mark), .size = 4},
    {.name = "queue_mapping", .offset = SKB(queue_mapping), .size = 4},
    {.name = "protocol", .offset = SKB(protocol), .size = 4},
    {.name = "vlan_present", .offset = SKB(vlan_present), .size = 4},
    {.name = "vlan_tci", .offset = SKB(vlan_tci), .size = 4},
    {.name = "vlan_proto", .offset = SKB(vlan_proto), .size = 4},
    {.name = "priority", .offset = SKB(priority), .size = 4},
    {.name = "ingress_ifindex", .offset = SKB(ingress_ifindex), .size = 4},
    {.name = "ifindex", .offset = SKB(ifindex), .size = 4},
    {.name = "tc_index", .offset = SKB(tc_index), .size = 4},
    {.name = "cb", .offset = SKB(cb), .size = kCbSize, .write = true},
    {.name = "hash", .offset = SKB(hash), .size = 4},
    {.name = "napi_id", .offset = SKB(napi_id), .size = 4},
    {.name = "gso_segs", .offset = SKB(gso_segs), .size = 4},
    {.name = "gso_size", .offset = SKB(gso_size), .size = 4},
};

// TC classifiers and actions: the same plus the packet pointers, the
// socket fields' neighbours tc may read, and the fields it may write.
constexpr CtxField kTcFields[] = {
    {.name = "len", .offset = SKB(len), .size = 4},
    {.name = "pkt_type", .offset = SKB(pkt_type), .size = 4},
    {.name = "mark", .offset = SKB(mark), .size = 4, .write = true},
    {.name = "queue_mapping", .offset = SKB(queue_mapping), .size = 4, .write = true},
    {.name = "protocol", .offset = SKB(protocol), .size = 4},
    {.name = "vlan_present", .offset = SKB(vlan_present), .size = 4},
    {.name = "vlan_tci", .offset = SKB(vlan_tci), .size = 4},
    {.name = "vlan_proto", .offset = SKB(vlan_proto), .size = 4},
    {.name = "priority", .offset = SKB(priority), .size = 4, .write = true},
    {.name = "ingress_ifindex", .offset = SKB(ingress_ifindex), .size = 4},
    {.name = "ifindex", .offset = SKB(ifindex), .size = 4},
    {.name = "tc_index", .offset = SKB(tc_index), .size = 4, .write = true},
    {.name = "cb", .offset = SKB(cb), .size = kCbSize, .write = true},
    {.name = "hash", .offset = SKB(hash), .size = 4},
    {.name = "tc_classid", .offset = SKB(tc_classid), .size = 4, .write = true},
    {.name = "data", .offset = SKB(data), .size = 4, .narrow = false, .value = CtxValue::PacketData},
    {.name = "data_end", .offset = SKB(data_end), .size = 4, .narrow = false, .value = CtxValue::PacketEnd},
    {.name = "napi_id", .offset = SKB(napi_id), .size = 4},
    {.name = "data_meta", .offset = SKB(data_meta), .size = 4, .narrow = false, .value = CtxValue::PacketMeta},
    {.name = "tstamp", .offset = SKB(tstamp), .size = 8, .write = true, .narrow = false},
    {.name = "wire_len", .offset = SKB(wire_len), .size = 4},
    {.name = "gso_segs", .offset = SKB(gso_segs), .size = 4},
    {.name = "gso_size", .offset = SKB(gso_size), .size = 4},
    {.name = "hwtstamp", .offset = SKB(hwtstamp), .size = 8, .narrow = false},
};
#undef SKB

// XDP: xdp_md read 4 bytes at a time, nothing written (egress_ifindex is
// for devmap programs only).
#define XDP(field) static_cast<uint16_t>(offsetof(struct xdp_md, field))
constexpr CtxField kXdpFields[] = {
    {.name = "data", .offset = XDP(data), .size = 4, .narrow = false, .value = CtxValue::PacketData},
    {.name = "data_end", .offset = XDP(data_end), .size = 4, .narrow = false, .value = CtxValue::PacketEnd},
    {.name = "data_meta", .offset = XDP(data_meta), .size = 4, .narrow = false, .value = CtxValue::PacketMeta},
    {.name = "ingress_ifindex", .offset = XDP(ingress_ifindex), .size = 4, .narrow = false},
    {.name = "rx_queue_index", .offset = XDP(rx_queue_index), .size = 4, .narrow = false},
};
#undef XDP

// Every helper Springboard has but bpf_probe_read (4), which the kernel
// gives tracing programs only.
bool net_helper(uint32_t id) { return id != 4; }

constexpr bpf::ProgramType kSocketFilter{.name = "socket",
                                         .kernel_type = BPF_PROG_TYPE_SOCKET_FILTER,
                                         .ctx = {.size = sizeof(struct __sk_buff), .fields = kSocketFields},
                                         .ret_range = std::nullopt,
                                         .helper_allowed = net_helper};
constexpr bpf::ProgramType kSchedCls{.name = "tc",
                                     .kernel_type = BPF_PROG_TYPE_SCHED_CLS,
                                     .ctx = {.size = sizeof(struct __sk_buff), .fields = kTcFields},
                                     .direct_packet_access = true,
                                     .ret_range = std::nullopt,
                                     .helper_allowed = net_helper};
constexpr bpf::ProgramType kSchedAct{.name = "action",
                                     .kernel_type = BPF_PROG_TYPE_SCHED_ACT,
                                     .ctx = {.size = sizeof(struct __sk_buff), .fields = kTcFields},
                                     .direct_packet_access = true,
                                     .ret_range = std::nullopt,
                                     .helper_allowed = net_helper};
constexpr bpf::ProgramType kXdp{.name = "xdp",
                                .kernel_type = BPF_PROG_TYPE_XDP,
                                .ctx = {.size = sizeof(struct xdp_md), .fields = kXdpFields},
                                .direct_packet_access = true,
                                .ret_range = std::nullopt,
                                .helper_allowed = net_helper};

}  // namespace

const bpf::ProgramType* kernel_program_type(uint32_t kernel_type) {
  for (const bpf::ProgramType* t : bpf::program_types())
    if (!t->raw_memory && t->kernel_type == kernel_type) return t;
  for (const bpf::ProgramType* t : {&kSocketFilter, &kSchedCls, &kSchedAct, &kXdp})
    if (t->kernel_type == kernel_type) return t;
  return nullptr;
}

}  // namespace sb::test
