// The checksum helpers, with the kernel's arithmetic (net/core/filter.c,
// include/net/checksum.h, x86-64's csum_partial):
//
//   id   helper            meaning
//   28   csum_diff         seed + the sum of `to` - the sum of `from` (one's complement,
//                          any sizes), folded to 16 bits (csum_from32to16), as the
//                          kernel since 6.13 computes it on every CPU (before, x86-64
//                          returned the unfolded 32-bit sum and wanted sizes in words)
//   10   l3_csum_replace   the 16-bit checksum at skb offset: replaced for a 2- or
//                          4-byte field (flags' low 4 bits) changing from -> to, or
//                          (size 0) by the diff `to`; offset odd or past the packet:
//                          -EFAULT; other flags: -EINVAL
//   11   l4_csum_replace   the same for a TCP/UDP checksum, with BPF_F_PSEUDO_HDR,
//                          BPF_F_MARK_MANGLED_0 (a zero checksum stays zero; one that
//                          becomes zero is written 0xffff), BPF_F_MARK_ENFORCE, BPF_F_IPV6
//
// A test run's sk_buff is CHECKSUM_NONE (no skb->csum to keep up to date),
// as the kernel's. Sums are over the bytes as they lie in memory, as the
// kernel's on a little-endian CPU.
#pragma once

#include <cstdint>
#include <span>

#include "runtime/helpers/helpers.h"

namespace sb::rt {

// csum_partial: 32-bit words (little-endian loads, the last one zero-padded)
// and `seed` added with end-around carry, as x86-64's.
uint32_t csum_partial(std::span<const uint8_t> bytes, uint32_t seed);
// csum_fold: the 16-bit one's-complement checksum of a 32-bit sum.
uint16_t csum_fold(uint32_t sum);

// Adds helpers 10, 11 and 28 with their prototypes.
void add_csum_helpers(HelperTable& t);

}  // namespace sb::rt
