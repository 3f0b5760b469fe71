// Socket buffer programs: TC classifiers (BPF_PROG_TYPE_SCHED_CLS, sections
// tc, classifier, tc/ingress, tc/egress, tcx/ingress, tcx/egress) and socket
// filters (BPF_PROG_TYPE_SOCKET_FILTER, section socket). Both see the uapi
// `struct __sk_buff` as <linux/bpf.h> declares it, each with the kernel's
// read and write rights (tc_cls_act_is_valid_access, sk_filter_is_valid_access);
// lowering and the interpreter rewrite each access into one of SkBuff, the
// native context the runtime builds (runtime/progtypes/skb_run.h) as the
// kernel's test run builds its sk_buff.
#pragma once

#include <cstddef>
#include <cstdint>

#include "frontend/progtypes/program_type.h"

namespace sb::bpf {

// include/uapi/linux/bpf.h struct __sk_buff, byte for byte.
struct SkBuffMd {
  uint32_t len, pkt_type, mark, queue_mapping, protocol, vlan_present, vlan_tci, vlan_proto, priority,
      ingress_ifindex, ifindex, tc_index;
  uint32_t cb[5];
  uint32_t hash, tc_classid, data, data_end, napi_id;
  uint32_t family, remote_ip4, local_ip4, remote_ip6[4], local_ip6[4], remote_port, local_port;
  uint32_t data_meta;
  uint64_t flow_keys;
  uint64_t tstamp;
  uint32_t wire_len, gso_segs;
  uint64_t sk;
  uint32_t gso_size;
  uint8_t tstamp_type;
  uint8_t pad[3];
  uint64_t hwtstamp;
};
static_assert(sizeof(SkBuffMd) == 192 && offsetof(SkBuffMd, data) == 76 && offsetof(SkBuffMd, data_meta) == 140 &&
              offsetof(SkBuffMd, tstamp) == 152 && offsetof(SkBuffMd, gso_size) == 176 &&
              offsetof(SkBuffMd, hwtstamp) == 184);

// What r1 points to: the packet [data, data_end) inside a buffer from head,
// and every field a program may touch, scalars at their uapi sizes.
struct SkBuff {
  uint64_t data;
  uint64_t data_end;
  uint64_t data_meta;
  uint64_t head;  // the buffer's start (data - head: the headroom)
  uint64_t tstamp;
  uint64_t hwtstamp;
  uint32_t len, pkt_type, mark, queue_mapping, protocol, vlan_present, vlan_tci, vlan_proto, priority,
      ingress_ifindex, ifindex, tc_index;
  uint32_t cb[5];
  uint32_t hash, tc_classid, napi_id, wire_len, gso_segs, gso_size;
  uint32_t buffer_size;  // bytes from head
};

const ProgramType& tc_program_type();
const ProgramType& socket_program_type();

}  // namespace sb::bpf
