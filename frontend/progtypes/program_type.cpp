// The registry of program types and libbpf's section names for them.
#include "frontend/progtypes/program_type.h"

#include <algorithm>
#include <array>

#include "frontend/bpf.h"
#include "frontend/progtypes/probe.h"
#include "frontend/progtypes/skb.h"
#include "frontend/progtypes/xdp.h"

namespace sb::bpf {

const CtxField* ContextLayout::field_at(uint32_t offset) const {
  for (const CtxField& f : fields)
    if (offset >= f.offset && offset < uint32_t(f.offset) + f.size) return &f;
  return nullptr;
}

NativeAccess native_access(const CtxField& f, uint32_t offset, unsigned size, bool store) {
  if (f.value != CtxValue::Scalar) return {f.native_offset, f.native_size};  // read whole (the verifier saw to it)
  const unsigned n = store && f.store_size ? std::min<unsigned>(size, f.store_size) : size;
  return {uint16_t(f.native_offset + (offset - f.offset)), uint8_t(n)};
}

bool needs_context_rewrite(const Program& p) { return p.type && p.type->ctx.rewritten; }

bool base_helper_allowed(uint32_t id) {
  switch (id) {
    case 1: case 2: case 3:                  // map_lookup/update/delete_elem
    case 5:                                  // ktime_get_ns
    case 6:                                  // trace_printk
    case 7:                                  // get_prandom_u32
    case 8:                                  // get_smp_processor_id
    case 12:                                 // tail_call
    case 42:                                 // get_numa_node_id
    case 87: case 88: case 89:               // map_push/pop/peek_elem
    case 93: case 94:                        // spin_lock, spin_unlock
    case 125:                                // ktime_get_boot_ns
    case 130: case 131: case 132: case 133:  // ringbuf_*
      return true;
    default:
      return false;
  }
}

bool packet_helper(uint32_t id) {
  switch (id) {
    case 9:    // skb_store_bytes
    case 10:   // l3_csum_replace
    case 11:   // l4_csum_replace
    case 13:   // clone_redirect
    case 18:   // skb_vlan_push
    case 19:   // skb_vlan_pop
    case 21:   // skb_set_tunnel_key
    case 23:   // redirect
    case 25:   // perf_event_output
    case 26:   // skb_load_bytes
    case 34:   // get_hash_recalc
    case 38:   // skb_change_tail
    case 43:   // skb_change_head
    case 51:   // redirect_map
    case 69:   // fib_lookup
    case 44:   // xdp_adjust_head
    case 54:   // xdp_adjust_meta
    case 65:   // xdp_adjust_tail
    case 188:  // xdp_get_buff_len
      return true;
    default:
      return false;
  }
}

bool regs_stack_helper(uint32_t id) { return id == 27 || id == 67; }
bool regs_write_helper(uint32_t id) { return id == 58; }

namespace {

// r1 = memory of r2 bytes, no context; any helper but those that need a
// packet context or pt_regs; any return value.
constexpr ProgramType kRaw{.name = "raw",
                           .kernel_type = 0,
                           .ctx = {},
                           .raw_memory = true,
                           .direct_packet_access = false,
                           .ret_range = std::nullopt,
                           .helper_allowed = [](uint32_t id) {
                             return !packet_helper(id) && !regs_stack_helper(id) && !regs_write_helper(id);
                           }};

// Every type, in the order listings show them. A new type: its table in
// its own file, declared here.
const std::array<const ProgramType*, 10> kTypes = {
    &kRaw,
    &xdp_program_type(),
    &tc_program_type(),
    &socket_program_type(),
    &probe_program_type(Arch::X86_64),
    &probe_program_type(Arch::Arm64),
    &probe_program_type(Arch::Riscv64),
    &tracing_program_type(Arch::X86_64),
    &tracing_program_type(Arch::Arm64),
    &tracing_program_type(Arch::Riscv64)};

// libbpf's section names (libbpf.c section_defs): an exact name, or a
// prefix followed by '/' and an attach point. Longer prefixes first where
// one is a prefix of another.
struct SectionRule {
  std::string_view prefix;
  const ProgramType* type;
  bool takes_attach;  // "prefix/ATTACH" (and the bare prefix where libbpf allows it)
};
// The probe sections give the host's pt_regs (x86-64; a guest's program
// is given its type by the embedder).
const std::array<SectionRule, 15> kSections = {{
    {"uprobe", &probe_program_type(Arch::X86_64), true},
    {"uretprobe", &probe_program_type(Arch::X86_64), true},
    {"kprobe", &probe_program_type(Arch::X86_64), true},
    {"kretprobe", &probe_program_type(Arch::X86_64), true},
    {"usdt", &probe_program_type(Arch::X86_64), true},  // usdt/PATH:PROVIDER:NAME
    {"fentry", &tracing_program_type(), true},
    {"fexit", &tracing_program_type(), true},
    {"fmod_ret", &tracing_program_type(), true},
    {"xdp.frags", &xdp_program_type(), true},
    {"xdp", &xdp_program_type(), true},
    {"tcx/ingress", &tc_program_type(), false},
    {"tcx/egress", &tc_program_type(), false},
    {"tc", &tc_program_type(), true},  // tc, tc/ingress, tc/egress
    {"classifier", &tc_program_type(), true},
    {"socket", &socket_program_type(), true},
}};

}  // namespace

const ProgramType& raw_program_type() { return kRaw; }

const ProgramType* find_program_type(std::string_view name) {
  for (const ProgramType* t : kTypes)
    if (t->name == name) return t;
  return nullptr;
}

std::optional<SectionType> program_type_for_section(std::string_view section) {
  for (const SectionRule& r : kSections) {
    if (section == r.prefix) return SectionType{r.type, {}};
    if (r.takes_attach && section.size() > r.prefix.size() && section.substr(0, r.prefix.size()) == r.prefix &&
        section[r.prefix.size()] == '/')
      return SectionType{r.type, std::string(section.substr(r.prefix.size() + 1))};
  }
  return std::nullopt;
}

std::span<const ProgramType* const> program_types() { return kTypes; }

std::string program_type_names() {
  std::string out;
  for (const ProgramType* t : kTypes) {
    if (!out.empty()) out += ", ";
    out += t->name;
  }
  return out;
}

}  // namespace sb::bpf
