// Register abstract values: construction, the bounds deduction of the
// kernel's reg_bounds_sync (__update_reg_bounds, __reg_deduce_bounds,
// __reg_bound_offset) and the log form.
#include "frontend/verifier/reg_state.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

namespace sb::bpf::verifier {

namespace {
constexpr int64_t kS64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kS64Max = std::numeric_limits<int64_t>::max();
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
constexpr int32_t kS32Min = std::numeric_limits<int32_t>::min();
constexpr int32_t kS32Max = std::numeric_limits<int32_t>::max();
constexpr uint32_t kU32Max = std::numeric_limits<uint32_t>::max();
}  // namespace

const char* reg_type_name(RegType t) {
  switch (t) {
    case RegType::NotInit: return "not_init";
    case RegType::Scalar: return "scalar";
    case RegType::Ctx: return "ctx";
    case RegType::RawMem: return "raw_mem";
    case RegType::Stack: return "fp";
    case RegType::MapHandle: return "map_ptr";
    case RegType::MapValue: return "map_value";
    case RegType::MapValueOrNull: return "map_value_or_null";
    case RegType::MapHandleOrNull: return "map_ptr_or_null";
    case RegType::Packet: return "pkt";
    case RegType::PacketMeta: return "pkt_meta";
    case RegType::PacketEnd: return "pkt_end";
    case RegType::Mem: return "mem";
    case RegType::MemOrNull: return "mem_or_null";
    case RegType::Func: return "func";
  }
  return "?";
}

RegState RegState::unknown() {
  RegState r;
  r.type = RegType::Scalar;
  r.var_off = Tnum::unknown();
  r.mark_unbounded();
  return r;
}

RegState RegState::known(uint64_t v) {
  RegState r;
  r.type = RegType::Scalar;
  r.mark_known(v);
  return r;
}

RegState RegState::pointer(RegType t) {
  RegState r;
  r.type = t;
  r.mark_known(0);
  return r;
}

Bounds RegState::bounds(unsigned bits) const {
  if (bits == 64) return {smin, smax, umin, umax};
  return {s32_min, s32_max, u32_min, u32_max};
}

void RegState::set_bounds(unsigned bits, const Bounds& b) {
  if (bits == 64) {
    smin = b.smin, smax = b.smax, umin = b.umin, umax = b.umax;
  } else {
    s32_min = int32_t(b.smin), s32_max = int32_t(b.smax), u32_min = uint32_t(b.umin), u32_max = uint32_t(b.umax);
  }
}

void RegState::mark_unbounded() {
  smin = kS64Min, smax = kS64Max, umin = 0, umax = kU64Max;
  mark_unbounded32();
}

void RegState::mark_unbounded32() { s32_min = kS32Min, s32_max = kS32Max, u32_min = 0, u32_max = kU32Max; }

void RegState::mark_known(uint64_t v) {
  var_off = Tnum::constant(v);
  smin = smax = int64_t(v);
  umin = umax = v;
  s32_min = s32_max = int32_t(uint32_t(v));
  u32_min = u32_max = uint32_t(v);
}

namespace {

// __update_reg32_bounds / __update_reg64_bounds: what var_off says.
void update_bounds(RegState& r) {
  const Tnum lo = r.var_off.subreg();
  r.s32_min = std::max<int32_t>(r.s32_min, int32_t(uint32_t(lo.value | (lo.mask & 0x80000000u))));
  r.s32_max = std::min<int32_t>(r.s32_max, int32_t(uint32_t(lo.value | (lo.mask & 0x7fffffffu))));
  r.u32_min = std::max<uint32_t>(r.u32_min, uint32_t(lo.value));
  r.u32_max = std::min<uint32_t>(r.u32_max, uint32_t(lo.value | lo.mask));
  const Tnum& t = r.var_off;
  r.smin = std::max<int64_t>(r.smin, int64_t(t.value | (t.mask & uint64_t(kS64Min))));
  r.smax = std::min<int64_t>(r.smax, int64_t(t.value | (t.mask & uint64_t(kS64Max))));
  r.umin = std::max<uint64_t>(r.umin, t.value);
  r.umax = std::min<uint64_t>(r.umax, t.value | t.mask);
}

// Signed and unsigned bounds of one width learn from each other: when the
// signed range does not cross the sign boundary the two are one range.
template <typename S, typename U>
void deduce_sign(S& smin, S& smax, U& umin, U& umax) {
  if (smin >= 0 || smax < 0) {
    U lo = std::max<U>(U(smin), umin), hi = std::min<U>(U(smax), umax);
    smin = S(lo), umin = lo, smax = S(hi), umax = hi;
    return;
  }
  if (S(umax) >= 0) {  // all of [umin, umax] non-negative
    smin = S(umin);
    U hi = std::min<U>(U(smax), umax);
    smax = S(hi), umax = hi;
  } else if (S(umin) < 0) {  // all negative
    U lo = std::max<U>(U(smin), umin);
    smin = S(lo), umin = lo;
    smax = S(umax);
  }
}

// The 64-bit and 32-bit bounds learn from each other where the upper half
// is fixed.
void deduce_across(RegState& r) {
  if ((r.umin >> 32) == (r.umax >> 32)) {  // upper 32 bits the same: the low halves are a range
    r.u32_min = std::max<uint32_t>(r.u32_min, uint32_t(r.umin));
    r.u32_max = std::min<uint32_t>(r.u32_max, uint32_t(r.umax));
    if (int32_t(uint32_t(r.umin)) <= int32_t(uint32_t(r.umax))) {
      r.s32_min = std::max<int32_t>(r.s32_min, int32_t(uint32_t(r.umin)));
      r.s32_max = std::min<int32_t>(r.s32_max, int32_t(uint32_t(r.umax)));
    }
  }
  if ((uint64_t(r.smin) >> 32) == (uint64_t(r.smax) >> 32)) {
    r.u32_min = std::max<uint32_t>(r.u32_min, uint32_t(r.smin));
    r.u32_max = std::min<uint32_t>(r.u32_max, uint32_t(r.smax));
    if (int32_t(uint32_t(r.smin)) <= int32_t(uint32_t(r.smax))) {
      r.s32_min = std::max<int32_t>(r.s32_min, int32_t(uint32_t(r.smin)));
      r.s32_max = std::min<int32_t>(r.s32_max, int32_t(uint32_t(r.smax)));
    }
  }
  // The upper half fixed: the 64-bit range is that half with the 32-bit range below it.
  if ((r.umin >> 32) == (r.umax >> 32)) {
    const uint64_t hi = r.umin & ~uint64_t(kU32Max);
    r.umin = std::max<uint64_t>(r.umin, hi | r.u32_min);
    r.umax = std::min<uint64_t>(r.umax, hi | r.u32_max);
  }
  if ((uint64_t(r.smin) >> 32) == (uint64_t(r.smax) >> 32)) {
    const uint64_t hi = uint64_t(r.smin) & ~uint64_t(kU32Max);
    r.smin = std::max<int64_t>(r.smin, int64_t(hi | r.u32_min));
    r.smax = std::min<int64_t>(r.smax, int64_t(hi | r.u32_max));
  }
}

// __reg_bound_offset: var_off learns from the unsigned ranges.
void bound_offset(RegState& r) {
  const Tnum t64 = tnum_intersect(r.var_off, Tnum::range(r.umin, r.umax));
  const Tnum t32 = tnum_intersect(r.var_off.subreg(), Tnum::range(r.u32_min, r.u32_max));
  r.var_off = t64.with_subreg(t32);
}

bool consistent(const RegState& r) {
  return r.smin <= r.smax && r.umin <= r.umax && r.s32_min <= r.s32_max && r.u32_min <= r.u32_max &&
         tnum_overlap(r.var_off, Tnum::range(r.umin, r.umax));
}

}  // namespace

bool RegState::sync() {
  // An empty range or tnum/range conflict: no value satisfies both.
  if ((var_off.value & var_off.mask) != 0) return false;
  update_bounds(*this);
  deduce_sign(s32_min, s32_max, u32_min, u32_max);
  deduce_sign(smin, smax, umin, umax);
  deduce_across(*this);
  deduce_sign(s32_min, s32_max, u32_min, u32_max);
  deduce_sign(smin, smax, umin, umax);
  if (smin > smax || umin > umax || s32_min > s32_max || u32_min > u32_max) return false;
  if (!tnum_overlap(var_off, Tnum::range(umin, umax))) return false;
  bound_offset(*this);
  update_bounds(*this);
  deduce_sign(s32_min, s32_max, u32_min, u32_max);
  deduce_sign(smin, smax, umin, umax);
  if (smin > smax || umin > umax || s32_min > s32_max || u32_min > u32_max) return false;
  if (var_off.min() > umax || var_off.max() < umin) return false;
  return consistent(*this);
}

void RegState::zext32() {
  var_off = var_off.subreg();
  umin = u32_min, umax = u32_max;
  smin = int64_t(u32_min), smax = int64_t(u32_max);
}

void RegState::combine_64_into_32() {
  mark_unbounded32();
  if (umax <= kU32Max) {
    u32_min = uint32_t(umin), u32_max = uint32_t(umax);
  }
  if (smin >= kS32Min && smax <= kS32Max) {
    s32_min = int32_t(smin), s32_max = int32_t(smax);
  }
}

bool range_within(const RegState& o, const RegState& c) {
  return o.umin <= c.umin && o.umax >= c.umax && o.smin <= c.smin && o.smax >= c.smax && o.u32_min <= c.u32_min &&
         o.u32_max >= c.u32_max && o.s32_min <= c.s32_min && o.s32_max >= c.s32_max;
}

std::string RegState::str(const char* map_name, uint32_t value_size) const {
  auto scalar_part = [this](std::string& out) {
    auto add = [&out](const std::string& s) {
      if (!out.empty() && out.back() != '(') out += ',';
      out += s;
    };
    if (smin != kS64Min && smin != int64_t(umin)) add(fmt::format("smin={}", smin));
    if (smax != kS64Max && smax != int64_t(umax)) add(fmt::format("smax={}", smax));
    if (umin != 0) add(fmt::format("umin={}", umin));
    if (umax != kU64Max) add(fmt::format("umax={}", umax));
    if (s32_min != kS32Min && int64_t(s32_min) != smin) add(fmt::format("smin32={}", s32_min));
    if (s32_max != kS32Max && int64_t(s32_max) != smax) add(fmt::format("smax32={}", s32_max));
    if (u32_min != 0 && uint64_t(u32_min) != umin) add(fmt::format("umin32={}", u32_min));
    if (u32_max != kU32Max && uint64_t(u32_max) != umax) add(fmt::format("umax32={}", u32_max));
    if (!var_off.is_unknown() && !var_off.is_const()) add("var_off=" + var_off.str());
  };
  switch (type) {
    case RegType::NotInit: return "not_init";
    case RegType::Scalar: {
      if (var_off.is_const()) return fmt::format("{}", int64_t(var_off.value));
      std::string s = "scalar(";
      scalar_part(s);
      return s + ")";
    }
    case RegType::Stack:
      if (var_off.is_const() && var_off.value == 0) return fmt::format("fp{}", off);
      break;
    default: break;
  }
  std::string s = fmt::format("{}(", reg_type_name(type));
  auto add = [&s](const std::string& part) {
    if (s.back() != '(') s += ',';
    s += part;
  };
  if (id) add(fmt::format("id={}", id));
  if (ref_obj_id) add(fmt::format("ref_obj_id={}", ref_obj_id));
  if (map_name) add(fmt::format("map={}", map_name));
  if (type == RegType::MapValue || type == RegType::MapValueOrNull) add(fmt::format("vs={}", value_size));
  if (type == RegType::Mem || type == RegType::MemOrNull) add(fmt::format("sz={}", mem_size));
  if (type == RegType::Stack) add(fmt::format("frame={}", frame));
  add(fmt::format("off={}", off));
  if (is_packet(type)) add(fmt::format("r={}", range));
  if (!var_off.is_const()) {
    std::string v;
    scalar_part(v);
    if (!v.empty()) add(v);
  }
  return s + ")";
}

}  // namespace sb::bpf::verifier
