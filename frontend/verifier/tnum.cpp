// Tristate-number arithmetic, the algorithms of the kernel's tnum.c
// (Edward Cree's known-bits domain; tnum_mul as in Harishankar
// Vishwanathan et al., "Sound, Precise, and Fast Abstract Interpretation
// with Tristate Numbers", CGO 2022).
#include "frontend/verifier/tnum.h"

#include <bit>

#include <fmt/format.h>

namespace sb::bpf::verifier {

Tnum Tnum::range(uint64_t min, uint64_t max) {
  const uint64_t chi = min ^ max;
  const unsigned bits = 64 - unsigned(std::countl_zero(chi));
  // min and max differ in a bit at or above `bits`: nothing is known.
  if (bits > 63) return unknown();
  const uint64_t delta = (uint64_t(1) << bits) - 1;
  return {min & ~delta, delta};
}

bool Tnum::contains(const Tnum& b) const {
  if (b.mask & ~mask) return false;  // b is unknown where this is known
  return value == (b.value & ~mask);
}

Tnum Tnum::subreg() const { return cast(4); }
Tnum Tnum::clear_subreg() const { return tnum_lshift(tnum_rshift(*this, 32), 32); }
Tnum Tnum::with_subreg(const Tnum& low) const { return tnum_or(clear_subreg(), low.cast(4)); }

Tnum Tnum::cast(unsigned bytes) const {
  if (bytes >= 8) return *this;
  const uint64_t keep = (uint64_t(1) << (bytes * 8)) - 1;
  return {value & keep, mask & keep};
}

std::string Tnum::str() const { return fmt::format("({:#x}; {:#x})", value, mask); }

Tnum tnum_add(Tnum a, Tnum b) {
  const uint64_t sm = a.mask + b.mask;
  const uint64_t sv = a.value + b.value;
  const uint64_t sigma = sm + sv;
  const uint64_t chi = sigma ^ sv;
  const uint64_t mu = chi | a.mask | b.mask;
  return {sv & ~mu, mu};
}

Tnum tnum_sub(Tnum a, Tnum b) {
  const uint64_t dv = a.value - b.value;
  const uint64_t alpha = dv + a.mask;
  const uint64_t beta = dv - b.mask;
  const uint64_t chi = alpha ^ beta;
  const uint64_t mu = chi | a.mask | b.mask;
  return {dv & ~mu, mu};
}

Tnum tnum_neg(Tnum a) { return tnum_sub(Tnum::constant(0), a); }

Tnum tnum_and(Tnum a, Tnum b) {
  const uint64_t alpha = a.value | a.mask;
  const uint64_t beta = b.value | b.mask;
  const uint64_t v = a.value & b.value;
  return {v, alpha & beta & ~v};
}

Tnum tnum_or(Tnum a, Tnum b) {
  const uint64_t v = a.value | b.value;
  const uint64_t mu = a.mask | b.mask;
  return {v, mu & ~v};
}

Tnum tnum_xor(Tnum a, Tnum b) {
  const uint64_t v = a.value ^ b.value;
  const uint64_t mu = a.mask | b.mask;
  return {v & ~mu, mu};
}

// Shift-and-add over a's bits: a known 1 adds b, an unknown bit adds b's
// bits as unknown (accumulated separately, then added once).
Tnum tnum_mul(Tnum a, Tnum b) {
  Tnum acc_v = Tnum::constant(a.value * b.value);
  Tnum acc_m = Tnum::constant(0);
  while (a.value || a.mask) {
    if (a.value & 1)
      acc_m = tnum_add(acc_m, Tnum{0, b.mask});
    else if (a.mask & 1)
      acc_m = tnum_add(acc_m, Tnum{0, b.value | b.mask});
    a = tnum_rshift(a, 1);
    b = tnum_lshift(b, 1);
  }
  return tnum_add(acc_v, acc_m);
}

Tnum tnum_lshift(Tnum a, unsigned shift) {
  if (shift >= 64) return Tnum::constant(0);
  return {a.value << shift, a.mask << shift};
}

Tnum tnum_rshift(Tnum a, unsigned shift) {
  if (shift >= 64) return Tnum::constant(0);
  return {a.value >> shift, a.mask >> shift};
}

Tnum tnum_arshift(Tnum a, unsigned shift, unsigned bits) {
  if (bits == 32) {
    const uint32_t v = uint32_t(int32_t(uint32_t(a.value)) >> (shift & 31));
    const uint32_t m = uint32_t(int32_t(uint32_t(a.mask)) >> (shift & 31));
    return {v, m};
  }
  return {uint64_t(int64_t(a.value) >> (shift & 63)), uint64_t(int64_t(a.mask) >> (shift & 63))};
}

Tnum tnum_intersect(Tnum a, Tnum b) {
  const uint64_t v = a.value | b.value;
  const uint64_t mu = a.mask & b.mask;
  return {v & ~mu, mu};
}

bool tnum_overlap(Tnum a, Tnum b) {
  const uint64_t known_both = ~a.mask & ~b.mask;
  return ((a.value ^ b.value) & known_both) == 0;
}

}  // namespace sb::bpf::verifier
