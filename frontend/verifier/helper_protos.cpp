// The prototype table of Springboard's helpers, from the kernel's
// bpf_func_proto definitions of the same helpers (kernel/bpf/helpers.c,
// ringbuf.c, kernel/trace/bpf_trace.c).
#include "frontend/verifier/helper_protos.h"

namespace sb::bpf::verifier {

namespace {

using A = ArgKind;
using R = RetKind;

struct Entry {
  uint32_t id;
  HelperProto proto;
};

constexpr Entry kStandard[] = {
    {1, {"map_lookup_elem", R::MapValueOrNull, {A::Map, A::MapKey}, MapKind::Data, false, false, true}},
    {2, {"map_update_elem", R::Integer, {A::Map, A::MapKey, A::MapValue, A::Anything}, MapKind::Data, false, false, true}},
    {3, {"map_delete_elem", R::Integer, {A::Map, A::MapKey}, MapKind::Data, false, false, true}},
    {4, {"probe_read", R::Integer, {A::WriteMem, A::SizeOrZero, A::Anything}}},
    {5, {"ktime_get_ns", R::Integer, {}}},
    // r3-r5 unchecked, as the kernel's bpf_trace_printk_proto: bpf_printk passes only the ones its format uses.
    {6, {"trace_printk", R::Integer, {A::ReadMem, A::Size}}},
    {7, {"get_prandom_u32", R::Integer, {}}},
    {12, {"tail_call", R::Integer, {A::Ctx, A::Map, A::Anything}, MapKind::ProgArray, true}},
    {130, {"ringbuf_output", R::Integer, {A::Map, A::ReadMem, A::SizeOrZero, A::Anything}, MapKind::RingBuf}},
    {131, {"ringbuf_reserve", R::RecordOrNull, {A::Map, A::AllocSize, A::Anything}, MapKind::RingBuf}},
    {132, {"ringbuf_submit", R::Void, {A::RingbufRecord, A::Anything}}},
    {133, {"ringbuf_discard", R::Void, {A::RingbufRecord, A::Anything}}},
    // kernel/trace/bpf_trace.c, kernel/bpf/helpers.c: the tracing helpers
    // (runtime/helpers/tracing_helpers.h).
    {8, {"get_smp_processor_id", R::Integer, {}}},
    {14, {"get_current_pid_tgid", R::Integer, {}}},
    {15, {"get_current_uid_gid", R::Integer, {}}},
    {16, {"get_current_comm", R::Integer, {A::WriteMem, A::Size}}},
    {112, {"probe_read_user", R::Integer, {A::WriteMem, A::SizeOrZero, A::Anything}}},
    {113, {"probe_read_kernel", R::Integer, {A::WriteMem, A::SizeOrZero, A::Anything}}},
    {114, {"probe_read_user_str", R::Integer, {A::WriteMem, A::SizeOrZero, A::Anything}}},
    {115, {"probe_read_kernel_str", R::Integer, {A::WriteMem, A::SizeOrZero, A::Anything}}},
    {173, {"get_func_ip", R::Integer, {A::Ctx}}},
    {174, {"get_attach_cookie", R::Integer, {A::Ctx}}},
    // net/core/filter.c: the XDP helpers (runtime/progtypes/xdp_helpers.h).
    {44, {"xdp_adjust_head", R::Integer, {A::Ctx, A::Anything}, MapKind::None, false, true}},
    {54, {"xdp_adjust_meta", R::Integer, {A::Ctx, A::Anything}, MapKind::None, false, true}},
    {65, {"xdp_adjust_tail", R::Integer, {A::Ctx, A::Anything}, MapKind::None, false, true}},
    {188, {"xdp_get_buff_len", R::Integer, {A::Ctx}}},
    // ... and the socket-buffer ones (runtime/progtypes/skb_helpers.h).
    {9, {"skb_store_bytes", R::Integer, {A::Ctx, A::Anything, A::ReadMem, A::Size, A::Anything}, MapKind::None, false,
         true}},
    {26, {"skb_load_bytes", R::Integer, {A::Ctx, A::Anything, A::WriteMem, A::Size}}},
};

constexpr HelperProto kUnwind{"unwind", R::Integer, {A::Anything}};

}  // namespace

const HelperProto* standard_helper_proto(uint32_t id) {
  for (const Entry& e : kStandard)
    if (e.id == id) return &e.proto;
  return nullptr;
}

const HelperProto& tail_call_proto() { return *standard_helper_proto(12); }
const HelperProto& unwind_helper_proto() { return kUnwind; }

MapKind map_kind_of_type(uint32_t map_type) {
  switch (map_type) {
    case 1:   // hash
    case 2:   // array
    case 6:   // per-CPU array
      return MapKind::Data;
    case 3: return MapKind::ProgArray;
    case 27: return MapKind::RingBuf;
    default: return MapKind::None;
  }
}

}  // namespace sb::bpf::verifier
