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
    {1, {"map_lookup_elem", R::MapValueOrNull, {A::Map, A::MapKey}, MapKind::Data | MapKind::Trie | MapKind::DevMap | MapKind::MapInMap,
         false, false,
         true}},
    {2, {"map_update_elem", R::Integer, {A::Map, A::MapKey, A::MapValue, A::Anything}, MapKind::Data | MapKind::Trie, false, false, true}},
    {3, {"map_delete_elem", R::Integer, {A::Map, A::MapKey}, MapKind::Data | MapKind::Trie, false, false, true}},
    {4, {"probe_read", R::Integer, {A::WriteMem, A::SizeOrZero, A::Anything}, MapKind::None}},
    {5, {"ktime_get_ns", R::Integer, {}, MapKind::None}},
    // r3-r5 unchecked, as the kernel's bpf_trace_printk_proto: bpf_printk passes only the ones its format uses.
    {6, {"trace_printk", R::Integer, {A::ReadMem, A::Size}, MapKind::None}},
    {7, {"get_prandom_u32", R::Integer, {}, MapKind::None}},
    {8, {"get_smp_processor_id", R::Integer, {}, MapKind::None}},
    {42, {"get_numa_node_id", R::Integer, {}, MapKind::None}},
    {125, {"ktime_get_boot_ns", R::Integer, {}, MapKind::None}},
    {93, {"spin_lock", R::Void, {A::SpinLock}, MapKind::None}},
    {94, {"spin_unlock", R::Void, {A::SpinUnlock}, MapKind::None}},
    // kernel/bpf/helpers.c: queues, stacks and bloom filters.
    {87, {"map_push_elem", R::Integer, {A::Map, A::MapValue, A::Anything}, MapKind::Queue | MapKind::Bloom}},
    {88, {"map_pop_elem", R::Integer, {A::Map, A::MapValueOut}, MapKind::Queue}},
    {89, {"map_peek_elem", R::Integer, {A::Map, A::MapValueOut}, MapKind::Queue | MapKind::Bloom}},
    // net/core/filter.c: checksums (runtime/helpers/csum_helpers.h).
    {10, {"l3_csum_replace", R::Integer, {A::Ctx, A::Anything, A::Anything, A::Anything, A::Anything}, MapKind::None,
          false, true}},
    {11, {"l4_csum_replace", R::Integer, {A::Ctx, A::Anything, A::Anything, A::Anything, A::Anything}, MapKind::None,
          false, true}},
    {28, {"csum_diff", R::Integer, {A::ReadMemOrNull, A::SizeOrZero, A::ReadMemOrNull, A::SizeOrZero, A::Anything},
          MapKind::None, false, false, true}},
    // ... redirects and events (runtime/progtypes/packet_run.h).
    {23, {"redirect", R::Integer, {A::Anything, A::Anything}, MapKind::None}},
    {13, {"clone_redirect", R::Integer, {A::Ctx, A::Anything, A::Anything}, MapKind::None, false, true}},
    {51, {"redirect_map", R::Integer, {A::Map, A::Anything, A::Anything},
          MapKind::DevMap | MapKind::CpuMap | MapKind::XskMap}},
    {25, {"perf_event_output", R::Integer, {A::Ctx, A::Map, A::Anything, A::ReadMem, A::SizeOrZero},
          MapKind::PerfEvents}},
    // ... and the socket buffer's VLAN tags and tunnel key (skb_helpers.h).
    {18, {"skb_vlan_push", R::Integer, {A::Ctx, A::Anything, A::Anything}, MapKind::None, false, true}},
    {19, {"skb_vlan_pop", R::Integer, {A::Ctx}, MapKind::None, false, true}},
    {34, {"get_hash_recalc", R::Integer, {A::Ctx}, MapKind::None}},
    {38, {"skb_change_tail", R::Integer, {A::Ctx, A::Anything, A::Anything}, MapKind::None, false, true}},
    {43, {"skb_change_head", R::Integer, {A::Ctx, A::Anything, A::Anything}, MapKind::None, false, true}},
    {69, {"fib_lookup", R::Integer, {A::Ctx, A::ReadWriteMem, A::Size, A::Anything}, MapKind::None}},
    {21, {"skb_set_tunnel_key", R::Integer, {A::Ctx, A::ReadMem, A::Size, A::Anything}, MapKind::None}},
    {12, {"tail_call", R::Integer, {A::Ctx, A::Map, A::Anything}, MapKind::ProgArray, true}},
    {130, {"ringbuf_output", R::Integer, {A::Map, A::ReadMem, A::SizeOrZero, A::Anything}, MapKind::RingBuf}},
    {131, {"ringbuf_reserve", R::RecordOrNull, {A::Map, A::AllocSize, A::Anything}, MapKind::RingBuf}},
    {132, {"ringbuf_submit", R::Void, {A::RingbufRecord, A::Anything}, MapKind::None}},
    {133, {"ringbuf_discard", R::Void, {A::RingbufRecord, A::Anything}, MapKind::None}},
    // kernel/trace/bpf_trace.c, kernel/bpf/helpers.c: the tracing helpers
    // (runtime/helpers/tracing_helpers.h).
    {14, {"get_current_pid_tgid", R::Integer, {}, MapKind::None}},
    {15, {"get_current_uid_gid", R::Integer, {}, MapKind::None}},
    {16, {"get_current_comm", R::Integer, {A::WriteMem, A::Size}, MapKind::None}},
    {112, {"probe_read_user", R::Integer, {A::WriteMem, A::SizeOrZero, A::Anything}, MapKind::None}},
    {113, {"probe_read_kernel", R::Integer, {A::WriteMem, A::SizeOrZero, A::Anything}, MapKind::None}},
    {114, {"probe_read_user_str", R::Integer, {A::WriteMem, A::SizeOrZero, A::Anything}, MapKind::None}},
    {115, {"probe_read_kernel_str", R::Integer, {A::WriteMem, A::SizeOrZero, A::Anything}, MapKind::None}},
    {67, {"get_stack", R::Integer, {A::Ctx, A::WriteMem, A::SizeOrZero, A::Anything}, MapKind::None}},
    {27, {"get_stackid", R::Integer, {A::Ctx, A::Map, A::Anything}, MapKind::StackTrace}},
    {58, {"override_return", R::Integer, {A::Ctx, A::Anything}, MapKind::None}},
    {109, {"send_signal", R::Integer, {A::Anything}, MapKind::None}},
    {117, {"send_signal_thread", R::Integer, {A::Anything}, MapKind::None}},
    {173, {"get_func_ip", R::Integer, {A::Ctx}, MapKind::None}},
    {174, {"get_attach_cookie", R::Integer, {A::Ctx}, MapKind::None}},
    // net/core/filter.c: the XDP helpers (runtime/progtypes/xdp_helpers.h).
    {44, {"xdp_adjust_head", R::Integer, {A::Ctx, A::Anything}, MapKind::None, false, true}},
    {54, {"xdp_adjust_meta", R::Integer, {A::Ctx, A::Anything}, MapKind::None, false, true}},
    {65, {"xdp_adjust_tail", R::Integer, {A::Ctx, A::Anything}, MapKind::None, false, true}},
    {188, {"xdp_get_buff_len", R::Integer, {A::Ctx}, MapKind::None}},
    // ... and the socket-buffer ones (runtime/progtypes/skb_helpers.h).
    {9, {"skb_store_bytes", R::Integer, {A::Ctx, A::Anything, A::ReadMem, A::Size, A::Anything}, MapKind::None, false,
         true}},
    {26, {"skb_load_bytes", R::Integer, {A::Ctx, A::Anything, A::WriteMem, A::Size}, MapKind::None}},
};

constexpr HelperProto kUnwind{"unwind", R::Integer, {A::Anything}, MapKind::None};

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
    case 5:   // per-CPU hash
    case 6:   // per-CPU array
    case 9:   // LRU hash
    case 10:  // LRU per-CPU hash
      return MapKind::Data;
    case 11: return MapKind::Trie;
    case 3: return MapKind::ProgArray;
    case 12:  // array of maps
    case 13:  // hash of maps
      return MapKind::MapInMap;
    case 4: return MapKind::PerfEvents;
    case 7: return MapKind::StackTrace;
    case 14:  // devmap
    case 25:  // devmap_hash
      return MapKind::DevMap;
    case 16: return MapKind::CpuMap;
    case 17: return MapKind::XskMap;
    case 22:  // queue
    case 23:  // stack
      return MapKind::Queue;
    case 27: return MapKind::RingBuf;
    case 30: return MapKind::Bloom;
    default: return MapKind::None;
  }
}

}  // namespace sb::bpf::verifier
