// Helper prototypes: what the verifier checks at `call N` (the kernel's
// struct bpf_func_proto). One table for every helper Springboard has
// (runtime/helpers/std_helpers.h, tail_call.h, the conformance suite's
// "unwind"); rt::Helper carries a pointer to its prototype. An embedder's
// helper registered without one is "unchecked": its arguments may be
// anything (even unset) and it returns an unknown scalar.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace sb::bpf::verifier {

// What a helper expects in one argument register (the kernel's
// enum bpf_arg_type).
enum class ArgKind : uint8_t {
  None,           // not an argument: the register is not read
  Anything,       // any initialised value, pointer or scalar (ARG_ANYTHING)
  Scalar,         // a number
  Ctx,            // the program's context (ARG_PTR_TO_CTX)
  Map,            // a map handle (ARG_CONST_MAP_PTR) of a kind `maps` has
  MapKey,         // readable memory of the map's key_size (ARG_PTR_TO_MAP_KEY)
  MapValue,       // readable memory of the map's value_size (ARG_PTR_TO_MAP_VALUE)
  MapValueOut,    // writable memory of the map's value_size (ARG_PTR_TO_MAP_VALUE | MEM_UNINIT)
  ReadMem,        // readable memory, its size in the next argument (ARG_PTR_TO_MEM | MEM_RDONLY)
  ReadMemOrNull,  // ... or null with a size of 0 (ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY)
  WriteMem,       // writable memory, its size in the next argument (ARG_PTR_TO_UNINIT_MEM)
  ReadWriteMem,   // initialised memory the helper reads and writes (ARG_PTR_TO_MEM)
  Size,           // the size of the memory before it, > 0 (ARG_CONST_SIZE)
  SizeOrZero,     // ... or 0 (ARG_CONST_SIZE_OR_ZERO)
  AllocSize,      // a constant size to allocate (ARG_CONST_ALLOC_SIZE_OR_ZERO)
  RingbufRecord,  // a record ringbuf_reserve returned, released by the call (ARG_PTR_TO_ALLOC_MEM | OBJ_RELEASE)
  SpinLock,       // a map value's struct bpf_spin_lock, taken (ARG_PTR_TO_SPIN_LOCK of bpf_spin_lock)
  SpinUnlock,     // ... released (bpf_spin_unlock)
};

enum class RetKind : uint8_t {
  Integer,         // an unknown scalar (RET_INTEGER)
  Void,            // r0 unset after the call (RET_VOID)
  MapValueOrNull,  // the map argument's value or null (RET_PTR_TO_MAP_VALUE_OR_NULL)
  RecordOrNull,    // AllocSize bytes of ring buffer, a reference to release, or null
};

// Map types grouped by the helpers that take them (the kernel's
// check_map_func_compatibility, both ways): Data maps take the element
// helpers (lookup, update, delete), a DevMap also lookup and redirect_map,
// Queue push/pop/peek, Bloom push/peek, StackTrace only get_stackid, ...
enum class MapKind : uint8_t {
  None,
  Data,  // (per-CPU) arrays and (LRU, per-CPU) hashes: also walked by bpf_for_each_map_elem
  Trie,  // LPM trie: lookups, updates and deletes, not walked
  RingBuf,
  ProgArray,
  Queue,
  Bloom,
  DevMap,
  CpuMap,
  XskMap,
  PerfEvents,
  StackTrace,
  MapInMap  // array and hash of maps: lookup only, giving an inner map
};

// A set of MapKinds: which maps an ArgKind::Map argument accepts.
struct MapKinds {
  uint16_t bits = 0;
  constexpr MapKinds() = default;
  constexpr MapKinds(MapKind k) : bits(k == MapKind::None ? 0 : uint16_t(1u << unsigned(k))) {}  // NOLINT: implicit
  constexpr MapKinds operator|(MapKinds o) const {
    MapKinds r;
    r.bits = uint16_t(bits | o.bits);
    return r;
  }
  constexpr bool has(MapKind k) const { return (bits & MapKinds(k).bits) != 0; }
};
constexpr MapKinds operator|(MapKind a, MapKind b) { return MapKinds(a) | MapKinds(b); }

struct HelperProto {
  std::string_view name;
  RetKind ret = RetKind::Integer;
  std::array<ArgKind, 5> args{};  // r1..r5
  MapKinds maps;
  bool tail_call = false;  // bpf_tail_call: may not run with references held
  // The helper may move or resize the packet (bpf_helper_changes_pkt_data):
  // packet pointers are invalid after the call.
  bool changes_packet = false;
  // Its memory arguments may point into the packet (bpf_func_proto's
  // pkt_access: the map helpers); otherwise "helper access to the packet
  // is not allowed".
  bool pkt_access = false;
};

// Springboard's helpers by the kernel's ids (std_helpers.h): null for an id
// Springboard does not have.
const HelperProto* standard_helper_proto(uint32_t id);
const HelperProto& tail_call_proto();
// The conformance suite's helper 5, "unwind" (HelperTable::conformance()).
const HelperProto& unwind_helper_proto();

// Map types by the kernel's numbering, as MapKind groups them.
MapKind map_kind_of_type(uint32_t map_type);

}  // namespace sb::bpf::verifier
