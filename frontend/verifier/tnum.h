// Tristate numbers ("tnums"), the verifier's known-bits domain, with the
// kernel's arithmetic (kernel/bpf/tnum.c): a 64-bit value some of whose bits
// are known. A bit set in `mask` is unknown; a bit clear in `mask` is the
// corresponding bit of `value` (so value & mask == 0 always).
//
// Every operation over-approximates: for x in a and y in b, op(x, y) is in
// op(a, b). The 32-bit helpers work on the low half (a register's subreg).
#pragma once

#include <cstdint>
#include <string>

namespace sb::bpf::verifier {

struct Tnum {
  uint64_t value = 0;
  uint64_t mask = ~uint64_t(0);

  static constexpr Tnum constant(uint64_t v) { return {v, 0}; }
  static constexpr Tnum unknown() { return {0, ~uint64_t(0)}; }
  // The smallest tnum holding every value of [min, max] (unsigned).
  static Tnum range(uint64_t min, uint64_t max);

  bool is_const() const { return mask == 0; }
  bool is_unknown() const { return mask == ~uint64_t(0); }
  // Whether every value of `b` is a value of this tnum.
  bool contains(const Tnum& b) const;
  bool contains_value(uint64_t v) const { return (v & ~mask) == value; }
  bool operator==(const Tnum&) const = default;
  uint64_t min() const { return value; }         // smallest unsigned member
  uint64_t max() const { return value | mask; }  // largest unsigned member

  // The low 32 bits (upper bits known zero), and a tnum with this one's
  // upper 32 bits and `low`'s lower 32.
  Tnum subreg() const;
  Tnum with_subreg(const Tnum& low) const;
  Tnum clear_subreg() const;  // upper 32 bits only, low bits known zero
  // Truncated to `bytes` bytes, zero-extended.
  Tnum cast(unsigned bytes) const;

  std::string str() const;  // "(0x0; 0xff)" as the kernel's log prints var_off
};

Tnum tnum_add(Tnum a, Tnum b);
Tnum tnum_sub(Tnum a, Tnum b);
Tnum tnum_mul(Tnum a, Tnum b);
Tnum tnum_and(Tnum a, Tnum b);
Tnum tnum_or(Tnum a, Tnum b);
Tnum tnum_xor(Tnum a, Tnum b);
Tnum tnum_neg(Tnum a);
Tnum tnum_lshift(Tnum a, unsigned shift);
Tnum tnum_rshift(Tnum a, unsigned shift);
// Arithmetic right shift of the low `bits` (32 or 64) bits by `shift`.
Tnum tnum_arshift(Tnum a, unsigned shift, unsigned bits);
// Values in both (the caller knows they share at least one).
Tnum tnum_intersect(Tnum a, Tnum b);
// Whether a and b share a value: no bit known in both with different values.
bool tnum_overlap(Tnum a, Tnum b);

}  // namespace sb::bpf::verifier
