// The verifier's abstract value of one register (the kernel's struct
// bpf_reg_state): a type, and for pointers an offset into the object they
// point at; for scalars (and a pointer's variable offset) known bits (a
// tnum) plus signed and unsigned 64-bit and 32-bit bounds, kept consistent
// with each other by sync() (the kernel's reg_bounds_sync).
#pragma once

#include <cstdint>
#include <string>

#include "frontend/verifier/tnum.h"

namespace sb::bpf::verifier {

enum class RegType : uint8_t {
  NotInit,         // never written (or clobbered by a call): reading it is an error
  Scalar,          // a number
  Ctx,             // the program type's context (PTR_TO_CTX)
  RawMem,          // raw programs' r1: memory of r2 bytes, checked at run time (see verifier.h)
  Stack,           // into a frame's 512 bytes (PTR_TO_STACK), `frame` says whose
  MapHandle,       // an lddw of a map (CONST_PTR_TO_MAP)
  MapValue,        // a map's value (PTR_TO_MAP_VALUE)
  MapValueOrNull,  // map_lookup_elem's result before its null check
  MapHandleOrNull, // ... of a map of maps: an inner map (CONST_PTR_TO_MAP once checked)
  Packet,          // PTR_TO_PACKET: `range` bytes from it are proven readable
  PacketMeta,      // PTR_TO_PACKET_META
  PacketEnd,       // PTR_TO_PACKET_END
  Mem,             // memory of `mem_size` bytes a helper handed back (ringbuf record)
  MemOrNull,       // ... before its null check
  Func,            // PTR_TO_FUNC: an lddw of a function's address (a callback), its first slot in `off`
};

const char* reg_type_name(RegType t);  // as the kernel's log spells them ("map_value_or_null")
inline bool is_pointer(RegType t) { return t != RegType::NotInit && t != RegType::Scalar; }
inline bool is_nullable(RegType t) {
  return t == RegType::MapValueOrNull || t == RegType::MemOrNull || t == RegType::MapHandleOrNull;
}
// What a nullable type is once checked against null (itself for others).
inline RegType non_null(RegType t) {
  return t == RegType::MapValueOrNull    ? RegType::MapValue
         : t == RegType::MapHandleOrNull ? RegType::MapHandle
         : t == RegType::MemOrNull       ? RegType::Mem
                                         : t;
}
inline bool is_packet(RegType t) { return t == RegType::Packet || t == RegType::PacketMeta; }

// Signed and unsigned bounds of one width (the low 32 bits, or all 64);
// for 32 bits the values are the low half, sign- or zero-extended.
struct Bounds {
  int64_t smin, smax;
  uint64_t umin, umax;
};

struct RegState {
  RegType type = RegType::NotInit;
  // Pointers: the constant part of the offset (the kernel's `off`); the
  // variable part is in var_off and the bounds below, as for a scalar.
  int32_t off = 0;
  Tnum var_off = Tnum::constant(0);
  int64_t smin = 0, smax = 0;
  uint64_t umin = 0, umax = 0;
  int32_t s32_min = 0, s32_max = 0;
  uint32_t u32_min = 0, u32_max = 0;
  // Copies share an id: a null check of one checks all (map values, ringbuf
  // records) and a packet range learnt for one holds for all.
  uint32_t id = 0;
  uint32_t ref_obj_id = 0;  // the reference (ringbuf record) this pointer is, 0 when none
  int32_t map = -1;         // MapHandle/MapValue(OrNull): index into VerifyOptions::maps
  uint32_t range = 0;       // Packet/PacketMeta: bytes proven in bounds from the pointer
  uint32_t mem_size = 0;    // Mem(OrNull): the object's size
  uint8_t frame = 0;        // Stack: which frame's stack
  // Scalars: whether some later check depends on this value (the kernel's
  // precision marks, set by backtracking). Pruning compares only precise
  // scalars; an imprecise one matches any scalar.
  bool precise = false;

  static RegState not_init() { return {}; }
  static RegState unknown();           // a scalar, nothing known
  static RegState known(uint64_t v);   // a scalar constant
  // A pointer of type `t` at offset 0 with no variable part.
  static RegState pointer(RegType t);

  bool is_const() const { return type == RegType::Scalar && var_off.is_const(); }
  uint64_t const_value() const { return var_off.value; }
  bool is_known_zero() const { return is_const() && var_off.value == 0; }

  // Bounds of one width (64 or 32) and setting them.
  Bounds bounds(unsigned bits) const;
  void set_bounds(unsigned bits, const Bounds& b);

  void mark_unbounded();            // every bound open, var_off kept
  void mark_unbounded32();          // the 32-bit bounds open
  void mark_known(uint64_t v);      // a constant (the type is left alone)
  // Bounds and tnum agree (the kernel's reg_bounds_sync); false when they
  // cannot all hold at once (a branch that cannot be taken).
  bool sync();
  // After a 32-bit ALU op: the upper half zero, the 64-bit bounds the 32-bit
  // ones zero-extended.
  void zext32();
  // After an ALU64 op that set only 64-bit bounds and var_off: the 32-bit
  // bounds learnt from them (the kernel's __reg_combine_64_into_32).
  void combine_64_into_32();

  // The kernel's log form: "scalar(umax=255,var_off=(0x0; 0xff))", "5",
  // "map_value(map=counts,vs=8,off=4)", "fp-8".
  std::string str(const char* map_name = nullptr, uint32_t value_size = 0) const;
  bool operator==(const RegState&) const = default;
};

// The range-style bounds of a scalar or of a pointer's variable part.
bool range_within(const RegState& old_reg, const RegState& cur);

}  // namespace sb::bpf::verifier
