// Bob Jenkins' lookup3 hash as the kernel spells it (include/linux/jhash.h):
// jhash over bytes and jhash2 over 32-bit words. The kernel's bloom filter
// hashes its values with these, so the same seed sets the same bits here.
#pragma once

#include <cstdint>
#include <cstring>

namespace sb::rt {

namespace jhash_detail {
constexpr uint32_t kInitval = 0xdeadbeef;
constexpr uint32_t rol32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
inline void mix(uint32_t& a, uint32_t& b, uint32_t& c) {
  a -= c, a ^= rol32(c, 4), c += b;
  b -= a, b ^= rol32(a, 6), a += c;
  c -= b, c ^= rol32(b, 8), b += a;
  a -= c, a ^= rol32(c, 16), c += b;
  b -= a, b ^= rol32(a, 19), a += c;
  c -= b, c ^= rol32(b, 4), b += a;
}
inline void final(uint32_t& a, uint32_t& b, uint32_t& c) {
  c ^= b, c -= rol32(b, 14);
  a ^= c, a -= rol32(c, 11);
  b ^= a, b -= rol32(a, 25);
  c ^= b, c -= rol32(b, 16);
  a ^= c, a -= rol32(c, 4);
  b ^= a, b -= rol32(a, 14);
  c ^= b, c -= rol32(b, 24);
}
inline uint32_t word(const uint8_t* p) {  // little-endian, as every target here
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}
}  // namespace jhash_detail

// jhash(key, length, initval): `length` bytes.
inline uint32_t jhash(const void* key, uint32_t length, uint32_t initval) {
  using namespace jhash_detail;
  const auto* k = static_cast<const uint8_t*>(key);
  uint32_t a, b, c;
  a = b = c = kInitval + length + initval;
  for (; length > 12; length -= 12, k += 12) {
    a += word(k), b += word(k + 4), c += word(k + 8);
    mix(a, b, c);
  }
  if (!length) return c;
  // The tail's bytes, the last ones highest in each word.
  uint32_t tail[3] = {0, 0, 0};
  for (uint32_t i = 0; i < length; ++i) tail[i / 4] += uint32_t(k[i]) << (8 * (i % 4));
  a += tail[0], b += tail[1], c += tail[2];
  final(a, b, c);
  return c;
}

// jhash2(words, count, initval): `count` 32-bit words (read unaligned).
inline uint32_t jhash2(const void* words, uint32_t count, uint32_t initval) {
  using namespace jhash_detail;
  const auto* k = static_cast<const uint8_t*>(words);
  uint32_t a, b, c;
  a = b = c = kInitval + (count << 2) + initval;
  for (; count > 3; count -= 3, k += 12) {
    a += word(k), b += word(k + 4), c += word(k + 8);
    mix(a, b, c);
  }
  if (!count) return c;
  a += word(k);
  if (count > 1) b += word(k + 4);
  if (count > 2) c += word(k + 8);
  final(a, b, c);
  return c;
}

}  // namespace sb::rt
