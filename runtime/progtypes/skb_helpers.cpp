#include "runtime/progtypes/skb_helpers.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "frontend/progtypes/skb.h"
#include "frontend/verifier/helper_protos.h"
#include "runtime/maps/jhash.h"
#include "runtime/progtypes/packet_run.h"
#include "runtime/progtypes/skb_run.h"
#include <vector>

namespace sb::rt {

namespace {

using bpf::SkBuff;

SkBuff& skb(uint64_t ctx) { return *reinterpret_cast<SkBuff*>(uintptr_t(ctx)); }
uint64_t error(int e) { return uint64_t(-int64_t(e)); }
uint8_t* ptr(uint64_t a) { return reinterpret_cast<uint8_t*>(uintptr_t(a)); }

constexpr uint64_t kRecomputeCsum = 1, kInvalidateHash = 2;

// bpf_skb_store_bytes(skb, u32 offset, const void *from, u32 len, u64 flags)
uint64_t skb_store_bytes(uint64_t ctx, uint64_t offset, uint64_t from, uint64_t len, uint64_t flags) {
  SkBuff& s = skb(ctx);
  if (flags & ~(kRecomputeCsum | kInvalidateHash)) return error(EINVAL);
  const uint64_t off = uint32_t(offset), n = uint32_t(len);
  if (off > INT_MAX || off + n > s.len) return error(EFAULT);
  std::memcpy(ptr(s.data + off), ptr(from), n);
  if (flags & kInvalidateHash) s.hash = 0;
  return 0;
}

// bpf_skb_load_bytes(skb, u32 offset, void *to, u32 len)
uint64_t skb_load_bytes(uint64_t ctx, uint64_t offset, uint64_t to, uint64_t len, uint64_t) {
  const SkBuff& s = skb(ctx);
  const uint64_t off = uint32_t(offset), n = uint32_t(len);
  if (off > INT_MAX || off + n > s.len) {
    std::memset(ptr(to), 0, n);
    return error(EFAULT);
  }
  std::memcpy(ptr(to), ptr(s.data + off), n);
  return 0;
}

constexpr uint16_t kVlan = 0x0081, kQinQ = 0xa888;  // htons(ETH_P_8021Q), htons(ETH_P_8021AD)
constexpr uint32_t kVlanHeader = 4, kVlanEthHeader = 18, kMacs = 12;
bool is_vlan(uint32_t proto) { return proto == kVlan || proto == kQinQ; }

uint16_t be16_at(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

// __skb_vlan_pop: the tag after the MACs leaves the packet; its TCI in *tci,
// skb->protocol becomes the encapsulated type (vlan_set_encap_proto).
uint64_t pop_packet_tag(SkBuff& s, uint16_t* tci) {
  if (s.len < kVlanEthHeader) return error(ENOMEM);  // skb_ensure_writable(VLAN_ETH_HLEN)
  uint8_t* d = ptr(s.data);
  *tci = be16_at(d + 14);
  const uint16_t inner = be16_at(d + 16);
  uint32_t proto = uint32_t(d[16] | d[17] << 8);  // network order, as skb->protocol
  if (inner < 0x600) proto = s.len >= 20 && d[18] == 0xff && d[19] == 0xff ? 0x0100 : 0x0400;  // 802.3 / 802.2
  std::memmove(d + kVlanHeader, d, kMacs);
  s.data += kVlanHeader;
  s.len -= kVlanHeader;
  s.data_end = s.data + s.len;
  s.data_meta = s.data;
  s.protocol = proto;
  return 0;
}

void put_tag(SkBuff& s, uint32_t proto, uint16_t tci) {
  s.vlan_proto = proto;
  s.vlan_tci = tci;
  s.vlan_present = proto || tci ? 1 : 0;
}

// bpf_skb_vlan_push(skb, __be16 vlan_proto, u16 vlan_tci): the tag goes to
// the skb's accelerated tag; a tag already there moves into the packet first.
uint64_t skb_vlan_push(uint64_t ctx, uint64_t vlan_proto, uint64_t vlan_tci, uint64_t, uint64_t) {
  SkBuff& s = skb(ctx);
  uint16_t proto = uint16_t(vlan_proto);
  if (!is_vlan(proto)) proto = kVlan;
  if (s.vlan_present) {
    if (s.data - s.head < kVlanHeader || s.len < kMacs) return error(ENOMEM);
    s.data -= kVlanHeader;
    s.len += kVlanHeader;
    uint8_t* d = ptr(s.data);
    std::memmove(d, d + kVlanHeader, kMacs);
    const uint16_t old_proto = uint16_t(s.vlan_proto), tci = uint16_t(s.vlan_tci);
    std::memcpy(d + 12, &old_proto, 2);
    d[14] = uint8_t(tci >> 8), d[15] = uint8_t(tci);
    s.protocol = old_proto;
    s.data_end = s.data + s.len;
    s.data_meta = s.data;
  }
  put_tag(s, proto, uint16_t(vlan_tci));
  return 0;
}

// bpf_skb_vlan_pop(skb): the accelerated tag, else the packet's first one;
// then a further tag in the packet becomes the accelerated one.
uint64_t skb_vlan_pop(uint64_t ctx, uint64_t, uint64_t, uint64_t, uint64_t) {
  SkBuff& s = skb(ctx);
  uint16_t tci = 0;
  if (s.vlan_present) {
    put_tag(s, 0, 0);
  } else {
    if (!is_vlan(s.protocol)) return 0;
    if (const uint64_t err = pop_packet_tag(s, &tci)) return err;
  }
  if (!is_vlan(s.protocol)) return 0;
  const uint32_t proto = s.protocol;
  if (const uint64_t err = pop_packet_tag(s, &tci)) return err;
  put_tag(s, proto, tci);
  return 0;
}

// bpf_skb_set_tunnel_key(skb, const struct bpf_tunnel_key *key, u32 size, u64 flags):
// the key (in one of the sizes the kernel accepts, older layouts padded
// with zeros) becomes the run's tunnel metadata.
constexpr uint32_t kTunnelKeySize = 44;
constexpr uint64_t kTunInfoIpv6 = 1, kZeroCsumTx = 2, kDontFragment = 4, kSeqNumber = 8, kNoTunnelKey = 16;
uint64_t skb_set_tunnel_key(uint64_t ctx, uint64_t key, uint64_t size, uint64_t flags, uint64_t) {
  if (flags & ~(kTunInfoIpv6 | kZeroCsumTx | kDontFragment | kSeqNumber | kNoTunnelKey)) return error(EINVAL);
  const uint32_t n = uint32_t(size);
  // sizeof, and offsetof local_ipv4, tunnel_label, tunnel_ext, remote_ipv6[1]
  if (n != kTunnelKeySize && n != 28 && n != 24 && n != 22 && n != 8) return error(EINVAL);
  std::vector<uint8_t> k(kTunnelKeySize, 0);
  std::memcpy(k.data(), ptr(key), n);
  uint32_t label;
  uint16_t ext;
  std::memcpy(&label, k.data() + 24, 4);
  std::memcpy(&ext, k.data() + 22, 2);
  if ((!(flags & kTunInfoIpv6) && label) || ext) return error(EINVAL);
  if (PacketRun* run = PacketRun::current()) run->tunnel_key = std::move(k);
  return 0;
}

// The least a TC program may cut the packet to: its network header's offset
// (__bpf_skb_min_len; a test run's skb has no transport header set).
constexpr uint32_t kSkbMinLen = 14;

// Makes room for `bytes` more in front of the packet (skb_cow): the packet
// moves towards the buffer's end when the headroom is short.
bool reserve_headroom(SkBuff& s, uint64_t bytes) {
  const uint64_t head = s.data - s.head, end = s.head + s.buffer_size - kSkbTailroom;
  if (head >= bytes) return true;
  const uint64_t shift = bytes - head;
  if (s.data + s.len + shift > end) return false;
  std::memmove(ptr(s.data + shift), ptr(s.data), s.len);
  s.data += shift;
  return true;
}

void packet_moved(SkBuff& s) {  // bpf_compute_data_pointers
  s.data_end = s.data + s.len;
  s.data_meta = s.data;
}

// bpf_skb_change_tail(skb, u32 new_len, u64 flags): grows with zeros or trims.
uint64_t skb_change_tail(uint64_t ctx, uint64_t new_len, uint64_t flags, uint64_t, uint64_t) {
  SkBuff& s = skb(ctx);
  const uint32_t len = uint32_t(new_len);
  if (flags || len > kSkbMaxLen || len < kSkbMinLen) return error(EINVAL);
  if (len > s.len) {
    const uint64_t end = s.head + s.buffer_size - kSkbTailroom;
    if (s.data + len > end) {  // no room behind: move the packet back into the headroom
      const uint64_t shift = s.data + len - end;
      if (s.data - s.head < shift) return error(ENOMEM);
      std::memmove(ptr(s.data - shift), ptr(s.data), s.len);
      s.data -= shift;
    }
    std::memset(ptr(s.data + s.len), 0, len - s.len);
  }
  s.len = len;
  packet_moved(s);
  return 0;
}

// bpf_skb_change_head(skb, u32 head_room, u64 flags): head_room zero bytes
// in front, the MAC header starting there.
uint64_t skb_change_head(uint64_t ctx, uint64_t head_room, uint64_t flags, uint64_t, uint64_t) {
  SkBuff& s = skb(ctx);
  const uint64_t room = uint32_t(head_room), len = s.len + room;
  if (flags || len > kSkbMaxLen || len < s.len) return error(EINVAL);
  if (!reserve_headroom(s, room)) return error(ENOMEM);
  s.data -= room;
  s.len = uint32_t(len);
  std::memset(ptr(s.data), 0, size_t(room));
  packet_moved(s);
  return 0;
}

// bpf_get_hash_recalc(skb): skb->hash, computed first when unset (the
// kernel's skb_get_hash). The flow is dissected as the kernel's flow
// dissector does for the hash (FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL):
// through VLAN tags; IPv4 or IPv6 addresses and the L4 protocol; ports of
// TCP, UDP, UDP-Lite, SCTP and DCCP (ESP's and AH's SPI) unless an IPv4
// fragment, or an IPv6 flow label in their place; other frames by their
// EtherType alone. Both directions of a flow hash alike, as the kernel's
// __flow_hash_consistentify makes them, and 0 becomes 1. The kernel hashes
// the keys with siphash under a key drawn at boot, so its numbers are its
// own (and change with every boot); here the keys go through jhash2 with
// seed 0, the same on every run.
uint32_t flow_hash(const SkBuff& s) {
  const uint8_t* d = ptr(s.data);
  const uint32_t len = s.len;
  if (len < 14) return 1;
  uint32_t at = 12;
  uint16_t proto = be16_at(d + at);
  for (int tags = 0; tags < 8 && (proto == 0x8100 || proto == 0x88a8) && at + 6 <= len; ++tags)
    at += 4, proto = be16_at(d + at);
  at += 2;
  uint32_t addrs[8] = {}, n_addr = 0, ports = 0, label = 0;
  uint8_t l4 = 0;
  bool has_ports = false;
  uint32_t l4_at = 0;
  auto word = [&](uint32_t o) {
    uint32_t w;
    std::memcpy(&w, d + o, 4);
    return w;
  };
  if (proto == 0x0800 && at + 20 <= len && (d[at] >> 4) == 4 && (d[at] & 0xf) >= 5) {
    const uint32_t ihl = (d[at] & 0xfu) * 4;
    l4 = d[at + 9];
    addrs[0] = word(at + 12), addrs[1] = word(at + 16), n_addr = 1;
    const bool fragment = (be16_at(d + at + 6) & 0x3fff) != 0;  // MF or an offset
    has_ports = !fragment && at + ihl <= len;
    l4_at = at + ihl;
  } else if (proto == 0x86dd && at + 40 <= len) {
    l4 = d[at + 6];
    for (int i = 0; i < 4; ++i) addrs[i] = word(at + 8 + 4 * i), addrs[4 + i] = word(at + 24 + 4 * i);
    n_addr = 4;
    label = (uint32_t(d[at + 1] & 0xf) << 16) | be16_at(d + at + 2);
    has_ports = label == 0;
    l4_at = at + 40;
  }
  if (has_ports) {
    int offset = -1;
    switch (l4) {
      case 6: case 17: case 136: case 132: case 33: case 50: offset = 0; break;  // TCP UDP UDP-Lite SCTP DCCP ESP
      case 51: offset = 4; break;                                               // AH
      default: break;
    }
    if (offset >= 0 && l4_at + uint32_t(offset) + 4 <= len) ports = word(l4_at + uint32_t(offset));
  }
  // Consistent: the lower address (then port) first.
  uint32_t* src = addrs;
  uint32_t* dst = addrs + (n_addr == 1 ? 1 : 4);
  const size_t bytes = n_addr * 4;
  const int order = std::memcmp(dst, src, bytes);
  const uint16_t sport = uint16_t(ports), dport = uint16_t(ports >> 16);
  if (order < 0 || (order == 0 && dport < sport)) {
    for (uint32_t i = 0; i < n_addr; ++i) std::swap(src[i], dst[i]);
    ports = uint32_t(dport) | uint32_t(sport) << 16;
  }
  uint32_t keys[12];
  uint32_t n = 0;
  keys[n++] = uint32_t(proto) << 16 | l4;
  for (uint32_t i = 0; i < n_addr; ++i) keys[n++] = src[i];
  for (uint32_t i = 0; i < n_addr; ++i) keys[n++] = dst[i];
  keys[n++] = label ? label : ports;
  const uint32_t h = jhash2(keys, n, 0);
  return h ? h : 1;
}

uint64_t get_hash_recalc(uint64_t ctx, uint64_t, uint64_t, uint64_t, uint64_t) {
  SkBuff& s = skb(ctx);
  if (!s.hash) s.hash = flow_hash(s);
  return s.hash;
}

}  // namespace

void add_skb_helpers(HelperTable& t) {
  constexpr KernelHelper kHelpers[] = {{9, "skb_store_bytes", skb_store_bytes},
                                {18, "skb_vlan_push", skb_vlan_push},
                                {19, "skb_vlan_pop", skb_vlan_pop},
                                {21, "skb_set_tunnel_key", skb_set_tunnel_key},
                                {26, "skb_load_bytes", skb_load_bytes},
                                {34, "get_hash_recalc", get_hash_recalc},
                                {38, "skb_change_tail", skb_change_tail},
                                {43, "skb_change_head", skb_change_head}};
  t.add_kernel(kHelpers);
}

}  // namespace sb::rt
