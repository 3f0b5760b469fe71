#include "runtime/helpers/csum_helpers.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "frontend/progtypes/skb.h"
#include "frontend/verifier/helper_protos.h"
#include "runtime/exec/hardening.h"

namespace sb::rt {

namespace {

uint64_t error(int e) { return uint64_t(-int64_t(e)); }

constexpr uint64_t kHdrFieldMask = 0xf;  // BPF_F_HDR_FIELD_MASK
constexpr uint64_t kPseudoHdr = 1 << 4, kMarkMangled0 = 1 << 5, kMarkEnforce = 1 << 6, kIpv6 = 1 << 7;
constexpr uint16_t kCsumMangled0 = 0xffff;

uint32_t add32(uint32_t a, uint32_t b) {  // csum_add
  const uint32_t r = a + b;
  return r + (r < b);
}
uint16_t add16(uint16_t a, uint16_t b) {  // csum16_add
  const uint16_t r = uint16_t(a + b);
  return uint16_t(r + (r < b));
}

// The checksum a 2-byte field of the packet at `offset`, after the checks
// both replace helpers make; null with the error in *err.
uint16_t* field(uint64_t ctx, uint64_t offset, uint64_t* err) {
  const auto& s = *reinterpret_cast<const bpf::SkBuff*>(uintptr_t(ctx));
  if (offset > 0xffff || (offset & 1) || offset + 2 > s.len) {
    *err = error(EFAULT);
    return nullptr;
  }
  return reinterpret_cast<uint16_t*>(uintptr_t(s.data + offset));
}

uint16_t load16(const uint16_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
void store16(uint16_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

// csum_from32to16: the 32-bit sum folded to 16 bits, not complemented.
uint16_t from32to16(uint32_t x) {
  x += (x >> 16) | (x << 16);
  return uint16_t(x >> 16);
}

std::span<const uint8_t> mem(uint64_t addr, uint64_t size) {
  return {reinterpret_cast<const uint8_t*>(uintptr_t(addr)), size_t(size)};
}

// bpf_csum_diff(from, from_size, to, to_size, seed), as the kernel computes
// it since 6.13 (the same on every CPU): any sizes, the result folded to 16 bits.
uint64_t csum_diff(uint64_t from, uint64_t from_size, uint64_t to, uint64_t to_size, uint64_t seed) {
  const uint32_t fs = uint32_t(from_size), ts = uint32_t(to_size);
  if ((fs && !access_allowed(from, fs)) || (ts && !access_allowed(to, ts))) return error(EFAULT);
  uint32_t ret = uint32_t(seed);
  if (fs && ts) ret = add32(csum_partial(mem(to, ts), ret), ~csum_partial(mem(from, fs), 0));
  else if (ts) ret = csum_partial(mem(to, ts), ret);
  else if (fs) ret = ~csum_partial(mem(from, fs), ~ret);
  return from32to16(ret);
}

// bpf_l3_csum_replace(skb, u32 offset, u64 from, u64 to, u64 flags)
uint64_t l3_csum_replace(uint64_t ctx, uint64_t offset, uint64_t from, uint64_t to, uint64_t flags) {
  if (flags & ~kHdrFieldMask) return error(EINVAL);
  uint64_t err = 0;
  uint16_t* sum = field(ctx, uint32_t(offset), &err);
  if (!sum) return err;
  const uint16_t old = load16(sum);
  switch (flags & kHdrFieldMask) {
    case 0:  // csum_replace_by_diff
      if (from != 0) return error(EINVAL);
      store16(sum, csum_fold(add32(uint32_t(to), ~uint32_t(old))));
      break;
    case 2:  // csum_replace2
      store16(sum, uint16_t(~add16(add16(uint16_t(~old), uint16_t(~uint16_t(from))), uint16_t(to))));
      break;
    case 4:  // csum_replace4
      store16(sum, csum_fold(add32(add32(~uint32_t(old), ~uint32_t(from)), uint32_t(to))));
      break;
    default: return error(EINVAL);
  }
  return 0;
}

// bpf_l4_csum_replace(skb, u32 offset, u64 from, u64 to, u64 flags): the
// inet_proto_csum_replace* of a CHECKSUM_NONE skb (the pseudo-header flag
// changes only skb->csum, which such an skb does not keep).
uint64_t l4_csum_replace(uint64_t ctx, uint64_t offset, uint64_t from, uint64_t to, uint64_t flags) {
  if (flags & ~(kMarkMangled0 | kMarkEnforce | kPseudoHdr | kHdrFieldMask | kIpv6)) return error(EINVAL);
  uint64_t err = 0;
  uint16_t* sum = field(ctx, uint32_t(offset), &err);
  if (!sum) return err;
  const bool mangled0 = flags & kMarkMangled0, enforce = flags & kMarkEnforce;
  const uint16_t old = load16(sum);
  if (mangled0 && !enforce && old == 0) return 0;
  switch (flags & kHdrFieldMask) {
    case 0:
      if (from != 0) return error(EINVAL);
      store16(sum, csum_fold(add32(uint32_t(to), ~uint32_t(old))));
      break;
    case 2:
    case 4: {
      const uint32_t f = (flags & kHdrFieldMask) == 2 ? uint16_t(from) : uint32_t(from);
      const uint32_t t = (flags & kHdrFieldMask) == 2 ? uint16_t(to) : uint32_t(to);
      const uint32_t diff[2] = {~f, t};
      store16(sum, csum_fold(csum_partial({reinterpret_cast<const uint8_t*>(diff), sizeof diff}, ~uint32_t(old))));
      break;
    }
    default: return error(EINVAL);
  }
  if (mangled0 && load16(sum) == 0) store16(sum, kCsumMangled0);
  return 0;
}

}  // namespace

uint32_t csum_partial(std::span<const uint8_t> bytes, uint32_t seed) {
  uint64_t s = seed;
  for (size_t i = 0; i < bytes.size(); i += 4) {
    uint32_t w = 0;  // the last word zero-padded (x86-64's tail load)
    std::memcpy(&w, bytes.data() + i, std::min<size_t>(4, bytes.size() - i));
    s += w;
  }
  while (s >> 32) s = (s & 0xffffffff) + (s >> 32);
  return uint32_t(s);
}

uint16_t csum_fold(uint32_t sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

void add_csum_helpers(HelperTable& t) {
  constexpr KernelHelper kHelpers[] = {
      {10, "l3_csum_replace", l3_csum_replace}, {11, "l4_csum_replace", l4_csum_replace}, {28, "csum_diff", csum_diff}};
  t.add_kernel(kHelpers);
}

}  // namespace sb::rt
