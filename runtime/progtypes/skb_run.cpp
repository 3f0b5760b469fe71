#include "runtime/progtypes/skb_run.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "ir/diag.h"

namespace sb::rt {

namespace {

using bpf::SkBuffMd;

constexpr uint32_t kEthHeaderLen = 14;
constexpr uint32_t kLoopbackIfindex = 1;
constexpr uint32_t kGsoLegacyMaxSize = 65536;  // GSO_LEGACY_MAX_SIZE
constexpr uint32_t kGsoMaxSegs = 65535;        // GSO_MAX_SEGS

uint64_t addr(std::vector<uint8_t>& block, size_t offset) { return uint64_t(uintptr_t(block.data() + offset)); }

// convert___skb_to_skb: the fields a test run may set; the rest must be zero.
void check_settable(const SkBuffMd& md, const std::string& name) {
  struct Range {
    size_t from, to;
    const char* fields;
  };
  const Range zero[] = {
      {0, offsetof(SkBuffMd, mark), "len, pkt_type"},
      {offsetof(SkBuffMd, queue_mapping), offsetof(SkBuffMd, priority), "queue_mapping, protocol, vlan_*"},
      {offsetof(SkBuffMd, tc_index), offsetof(SkBuffMd, cb), "tc_index"},
      {offsetof(SkBuffMd, hash), offsetof(SkBuffMd, tstamp), "hash, tc_classid, data, data_end, napi_id, the socket "
                                                             "fields, data_meta, flow_keys"},
      {offsetof(SkBuffMd, sk), offsetof(SkBuffMd, gso_size), "sk"},
      {offsetof(SkBuffMd, tstamp_type), offsetof(SkBuffMd, hwtstamp), "tstamp_type"},
  };
  std::vector<uint8_t> bytes(sizeof md);
  std::memcpy(bytes.data(), &md, sizeof md);
  for (const Range& r : zero)
    for (size_t i = r.from; i < r.to; ++i)
      if (bytes[i] != 0)
        throw Error(name, fmt::format("byte {} is not zero: a test run sets only mark, priority, ingress_ifindex, "
                                      "ifindex, cb, tstamp, wire_len, gso_segs, gso_size and hwtstamp ({} must be 0) "
                                      "(the kernel: EINVAL)",
                                      i, r.fields));
}

}  // namespace

bpf::SkBuff& skb_of(std::vector<uint8_t>& block) { return *reinterpret_cast<bpf::SkBuff*>(block.data()); }

std::vector<uint8_t> build_skb_context(const TestRunInput& in, bool l2) {
  const size_t size = in.data.size();
  if (size < kEthHeaderLen)
    throw Error(in.data_name, fmt::format("{} bytes: a socket buffer's test run needs at least an Ethernet header ({} "
                                          "bytes) (the kernel: EINVAL)",
                                          size, kEthHeaderLen));
  if (size > kSkbMaxData)
    throw Error(in.data_name, fmt::format("{} bytes: more than the {} a test run's linear sk_buff holds (the kernel: "
                                          "EINVAL)",
                                          size, kSkbMaxData));
  SkBuffMd md{};
  if (in.ctx) {
    md = read_context_in<SkBuffMd>(*in.ctx, in.ctx_name, "struct __sk_buff");
    check_settable(md, in.ctx_name);
    if (md.ifindex > kLoopbackIfindex)
      throw Error(in.ctx_name + ": field ifindex",
                  fmt::format("{}: a test run here has only the loopback device (ifindex 1)", md.ifindex));
  }
  const size_t room = std::max<size_t>(size, kSkbMaxLen);
  std::vector<uint8_t> block(kSkBuffBytes + kSkbHeadroom + room + kSkbTailroom, 0);
  std::memcpy(block.data() + kSkBuffBytes + kSkbHeadroom, in.data.data(), size);
  const uint8_t* eth = in.data.data();
  bpf::SkBuff& s = skb_of(block);
  s.head = addr(block, kSkBuffBytes);
  s.buffer_size = uint32_t(kSkbHeadroom + room + kSkbTailroom);

  // eth_type_trans on loopback: its address and its "broadcast" address
  // are both zero (loopback_setup sets no broadcast), so ff:ff:ff:ff:ff:ff
  // is multicast like any group address.
  const bool to_us = std::all_of(eth, eth + 6, [](uint8_t b) { return b == 0; });
  s.pkt_type = to_us ? 0 : (eth[0] & 1) ? 2 : 3;  // PACKET_HOST, PACKET_MULTICAST, PACKET_OTHERHOST
  const uint16_t proto = uint16_t(eth[12] << 8 | eth[13]);
  uint16_t be = uint16_t(eth[12] | eth[13] << 8);  // network order, as skb->protocol holds it
  if (proto < 0x600) be = size >= 16 && eth[14] == 0xff && eth[15] == 0xff ? 0x0100 : 0x0400;  // 802.3 / 802.2
  s.protocol = be;
  const size_t l3 = size - kEthHeaderLen;
  if (proto == 0x0800 && l3 < 20)
    throw Error(in.data_name, fmt::format("{} bytes: an IPv4 frame needs a 20-byte IP header after the Ethernet header "
                                          "(the kernel: EINVAL)",
                                          size));
  if (proto == 0x86dd && l3 < 40)
    throw Error(in.data_name, fmt::format("{} bytes: an IPv6 frame needs a 40-byte IPv6 header after the Ethernet "
                                          "header (the kernel: EINVAL)",
                                          size));

  s.data = addr(block, kSkBuffBytes + kSkbHeadroom + (l2 ? 0 : kEthHeaderLen));
  s.len = uint32_t(l2 ? size : l3);
  s.data_end = s.data + s.len;
  s.data_meta = s.data;
  s.ifindex = kLoopbackIfindex;
  s.mark = md.mark;
  s.priority = md.priority;
  s.ingress_ifindex = md.ingress_ifindex;
  s.tstamp = md.tstamp;
  std::memcpy(s.cb, md.cb, sizeof s.cb);
  if (md.wire_len != 0 && (md.wire_len < s.len || md.wire_len > kGsoLegacyMaxSize))
    throw Error(in.ctx_name + ": field wire_len",
                fmt::format("{}: it must be 0 or from len ({}) to {} (the kernel: EINVAL)", md.wire_len, s.len,
                            kGsoLegacyMaxSize));
  s.wire_len = md.wire_len ? md.wire_len : s.len;
  if (md.gso_segs > kGsoMaxSegs)
    throw Error(in.ctx_name + ": field gso_segs",
                fmt::format("{}: at most {} (the kernel: EINVAL)", md.gso_segs, kGsoMaxSegs));
  s.gso_segs = md.gso_segs;
  s.gso_size = md.gso_size;
  s.hwtstamp = md.hwtstamp;
  return block;
}

void finish_skb(std::vector<uint8_t>& block, const TestRunInput& in, bool l2, TestRunOutput& out) {
  bpf::SkBuff& s = skb_of(block);
  if (!l2) {  // the Ethernet header comes back, zeroed
    s.data -= kEthHeaderLen;
    s.len += kEthHeaderLen;
    std::memset(reinterpret_cast<void*>(uintptr_t(s.data)), 0, kEthHeaderLen);
  }
  const uint64_t begin = addr(block, kSkBuffBytes);
  if (s.data < begin || s.data + s.len > begin + s.buffer_size) throw Error("sk_buff", "the packet left the buffer");
  const uint8_t* d = reinterpret_cast<const uint8_t*>(uintptr_t(s.data));
  out.data.assign(d, d + s.len);
  SkBuffMd md{};
  if (in.ctx) md = read_context_in<SkBuffMd>(*in.ctx, in.ctx_name, "struct __sk_buff");
  // convert_skb_to___skb
  md.mark = s.mark;
  md.priority = s.priority;
  md.ingress_ifindex = s.ingress_ifindex;
  md.ifindex = s.ifindex;
  md.tstamp = s.tstamp;
  std::memcpy(md.cb, s.cb, sizeof md.cb);
  md.wire_len = s.wire_len;
  md.gso_segs = s.gso_segs;
  md.hwtstamp = s.hwtstamp;
  out.ctx.resize(sizeof md);
  std::memcpy(out.ctx.data(), &md, sizeof md);
}

}  // namespace sb::rt
