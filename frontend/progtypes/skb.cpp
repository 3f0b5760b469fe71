// The TC and socket-filter program types: __sk_buff's fields with each
// type's rights (net/core/filter.c bpf_skb_is_valid_access and the per-type
// checks before it), where each lives in SkBuff, and the helpers each
// type's func_proto gives, as far as Springboard has them.
#include "frontend/progtypes/skb.h"

namespace sb::bpf {

namespace {

enum Rights : uint8_t { None = 0, Read = 1, Write = 2, ReadWrite = 3 };

// A u32 (or cb's 20 bytes) read narrowly as the kernel allows
// (bpf_ctx_narrow_access_ok), written whole.
constexpr CtxField scalar(std::string_view name, size_t uapi, size_t size, size_t native, Rights r,
                          bool narrow = true) {
  return {.name = name, .offset = uint16_t(uapi), .size = uint8_t(size), .read = (r & Read) != 0,
          .write = (r & Write) != 0, .narrow = narrow, .narrow_write = false, .value = CtxValue::Scalar,
          .native_offset = uint16_t(native), .native_size = uint8_t(size)};
}
constexpr CtxField pointer(std::string_view name, size_t uapi, size_t native, CtxValue v, bool readable) {
  return {.name = name, .offset = uint16_t(uapi), .size = 4, .read = readable, .write = false, .narrow = false,
          .narrow_write = false, .value = v, .native_offset = uint16_t(native), .native_size = 8};
}
// A u32 the kernel keeps as a u16 (sk_buff's tc_index and queue_mapping,
// qdisc_skb_cb's tc_classid).
constexpr CtxField u16_backed(CtxField f) {
  f.store_size = 2;
  return f;
}
constexpr CtxField cb_field() {
  CtxField f = scalar("cb", offsetof(SkBuffMd, cb), 20, offsetof(SkBuff, cb), ReadWrite);
  f.narrow_write = true;  // any aligned access inside cb[]
  return f;
}

#define SB_SKB(field) #field, offsetof(SkBuffMd, field), sizeof(SkBuffMd::field), offsetof(SkBuff, field)

// tc_cls_act_is_valid_access: writes to mark, tc_index, priority,
// tc_classid, cb[], tstamp and queue_mapping; direct packet access;
// family..local_port (socket lookups) refused.
constexpr CtxField kTcFields[] = {
    scalar(SB_SKB(len), Read),
    scalar(SB_SKB(pkt_type), Read),
    scalar(SB_SKB(mark), ReadWrite),
    u16_backed(scalar(SB_SKB(queue_mapping), ReadWrite)),
    scalar(SB_SKB(protocol), Read),
    scalar(SB_SKB(vlan_present), Read),
    scalar(SB_SKB(vlan_tci), Read),
    scalar(SB_SKB(vlan_proto), Read),
    scalar(SB_SKB(priority), ReadWrite),
    scalar(SB_SKB(ingress_ifindex), Read),
    scalar(SB_SKB(ifindex), Read),
    u16_backed(scalar(SB_SKB(tc_index), ReadWrite)),
    cb_field(),
    scalar(SB_SKB(hash), Read),
    u16_backed(scalar(SB_SKB(tc_classid), ReadWrite)),
    pointer("data", offsetof(SkBuffMd, data), offsetof(SkBuff, data), CtxValue::PacketData, true),
    pointer("data_end", offsetof(SkBuffMd, data_end), offsetof(SkBuff, data_end), CtxValue::PacketEnd, true),
    scalar(SB_SKB(napi_id), Read),
    pointer("data_meta", offsetof(SkBuffMd, data_meta), offsetof(SkBuff, data_meta), CtxValue::PacketMeta, true),
    scalar(SB_SKB(tstamp), ReadWrite, false),
    scalar(SB_SKB(wire_len), Read),
    scalar(SB_SKB(gso_segs), Read),
    scalar(SB_SKB(gso_size), Read),
    scalar(SB_SKB(hwtstamp), Read, false),
};

// sk_filter_is_valid_access: reads, writes to cb[] only; no packet pointers,
// no tc_classid, tstamp, wire_len or hwtstamp.
constexpr CtxField kSocketFields[] = {
    scalar(SB_SKB(len), Read),
    scalar(SB_SKB(pkt_type), Read),
    scalar(SB_SKB(mark), Read),
    scalar(SB_SKB(queue_mapping), Read),
    scalar(SB_SKB(protocol), Read),
    scalar(SB_SKB(vlan_present), Read),
    scalar(SB_SKB(vlan_tci), Read),
    scalar(SB_SKB(vlan_proto), Read),
    scalar(SB_SKB(priority), Read),
    scalar(SB_SKB(ingress_ifindex), Read),
    scalar(SB_SKB(ifindex), Read),
    scalar(SB_SKB(tc_index), Read),
    cb_field(),
    scalar(SB_SKB(hash), Read),
    scalar(SB_SKB(tc_classid), None),
    pointer("data", offsetof(SkBuffMd, data), offsetof(SkBuff, data), CtxValue::PacketData, false),
    pointer("data_end", offsetof(SkBuffMd, data_end), offsetof(SkBuff, data_end), CtxValue::PacketEnd, false),
    scalar(SB_SKB(napi_id), Read),
    pointer("data_meta", offsetof(SkBuffMd, data_meta), offsetof(SkBuff, data_meta), CtxValue::PacketMeta, false),
    scalar(SB_SKB(tstamp), None, false),
    scalar(SB_SKB(wire_len), None),
    scalar(SB_SKB(gso_segs), Read),
    scalar(SB_SKB(gso_size), Read),
    scalar(SB_SKB(hwtstamp), None, false),
};

#undef SB_SKB

// tc_cls_act_func_proto, as far as Springboard has its helpers.
bool tc_helper_allowed(uint32_t id) {
  switch (id) {
    case 9:   // skb_store_bytes
    case 10:  // l3_csum_replace
    case 11:  // l4_csum_replace
    case 13:  // clone_redirect
    case 18:  // skb_vlan_push
    case 19:  // skb_vlan_pop
    case 21:  // skb_set_tunnel_key
    case 23:  // redirect
    case 25:  // perf_event_output (bpf_skb_event_output)
    case 26:  // skb_load_bytes
    case 28:  // csum_diff
    case 34:  // get_hash_recalc
    case 38:  // skb_change_tail
    case 43:  // skb_change_head
    case 69:  // fib_lookup
      return true;
    default:
      return base_helper_allowed(id);
  }
}
// sk_filter_func_proto: skb_load_bytes, perf_event_output and the base set.
bool socket_helper_allowed(uint32_t id) { return id == 26 || id == 25 || base_helper_allowed(id); }

constexpr ProgramType kTc{.name = "tc",
                          .kernel_type = 3,  // BPF_PROG_TYPE_SCHED_CLS
                          .ctx = {.size = sizeof(SkBuffMd), .fields = kTcFields, .rewritten = true, .btf_name = "__sk_buff"},
                          .direct_packet_access = true,
                          .ret_range = std::nullopt,
                          .helper_allowed = tc_helper_allowed};

constexpr ProgramType kSocket{.name = "socket",
                              .kernel_type = 1,  // BPF_PROG_TYPE_SOCKET_FILTER
                              .ctx = {.size = sizeof(SkBuffMd), .fields = kSocketFields, .rewritten = true, .btf_name = "__sk_buff"},
                              .direct_packet_access = false,
                              .ret_range = std::nullopt,
                              .helper_allowed = socket_helper_allowed};

}  // namespace

const ProgramType& tc_program_type() { return kTc; }
const ProgramType& socket_program_type() { return kSocket; }

}  // namespace sb::bpf
