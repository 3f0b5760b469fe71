// Program types: what a program may assume about its context, which
// helpers it may call and what it may return, one descriptor per type (as
// the kernel's `struct bpf_verifier_ops` plus its uapi context struct).
//
// Three layers read a descriptor and nothing else about a type:
//   the verifier (frontend/verifier/)  types r1 as a pointer to the context,
//                 checks every context access against `ctx.fields` (offset,
//                 size, read/write), gives a load of a packet field the
//                 packet pointer type, checks helper ids and the return value;
//   lowering (frontend/lower.cpp)      rewrites each context access the
//                 verifier found (a `rewritten` context: the kernel's
//                 convert_ctx_access) into a load or store of the field's
//                 place in the native context the runtime builds;
//   the runtime (runtime/progtypes/)   builds that native context for a run
//                 (an xdp_buff-like block for XDP, an sk_buff-like one for
//                 TC and socket filters, pt_regs for probes).
//
// A context that is not `rewritten` (pt_regs, a tracepoint's record,
// fentry's argument array) is real memory of `ctx.size` bytes laid out as
// its uapi struct; its fields only say what may be read or written.
//
// The descriptors are constant tables registered in program_type.cpp
// (design example 2); a new type is one table and one line there.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sb::bpf {

struct Program;  // frontend/bpf.h

// What a context field holds, as the verifier types the register a load
// of it writes.
enum class CtxValue : uint8_t {
  Scalar,      // a number
  PacketData,  // PTR_TO_PACKET: xdp_md.data, __sk_buff.data
  PacketEnd,   // PTR_TO_PACKET_END: xdp_md.data_end, __sk_buff.data_end
  PacketMeta,  // PTR_TO_PACKET_META: xdp_md.data_meta, __sk_buff.data_meta
};

// One field of a uapi context struct.
struct CtxField {
  std::string_view name;    // as <linux/bpf.h> spells it ("data", "cb[2]"): error messages name it
  uint16_t offset = 0;      // in the uapi struct
  uint8_t size = 0;         // bytes in the uapi struct
  bool read = true;
  bool write = false;
  // Loads narrower than `size` (the kernel's narrow loads, at any offset
  // inside the field) are allowed for scalar fields that say so; pointer
  // fields are read whole, as the kernel requires.
  bool narrow = true;
  // Stores narrower than `size` (the kernel allows them for cb[] only).
  bool narrow_write = false;
  CtxValue value = CtxValue::Scalar;
  // Where a rewritten context keeps the field in the native context:
  // `native_size` bytes (1, 2, 4 or 8) at `native_offset`, zero-extended on
  // load. Pointer fields are 8 bytes there although the uapi field is 4.
  uint16_t native_offset = 0;
  uint8_t native_size = 0;
  // A field the kernel keeps narrower than its uapi u32 (tc_index,
  // queue_mapping and tc_classid are u16 there): stores write only this
  // many bytes of it, so what reads back is truncated as in the kernel; 0:
  // the whole field.
  uint8_t store_size = 0;
};

struct ContextLayout {
  uint32_t size = 0;                  // sizeof the uapi struct (0: no context)
  std::span<const CtxField> fields;   // every field a program may touch, by offset
  bool rewritten = false;             // accesses become native-context accesses (see above)
  // A context that is not rewritten and has no field table: any aligned
  // access inside [0, size) may read; writes only when `writable`.
  bool writable = false;
  // The struct's name as a program's BTF spells it ("xdp_md", "__sk_buff",
  // "pt_regs"): a global function's parameter that points to it is the
  // context (the kernel's btf_get_prog_ctx_type); empty: no such struct.
  std::string_view btf_name = {};
  const CtxField* field_at(uint32_t offset) const;  // the field containing `offset`, or null
};

struct ProgramType {
  std::string_view name;       // "raw", "xdp", "tc", "socket", "kprobe", ...
  uint32_t kernel_type = 0;    // BPF_PROG_TYPE_* (include/uapi/linux/bpf.h); 0 for raw
  ContextLayout ctx;
  // Today's bytecode runs (raw bytecode, .s and .data files, the
  // conformance suite, the C API's runs over a buffer): r1 is memory of r2
  // bytes rather than a context.
  bool raw_memory = false;
  bool direct_packet_access = false;  // PacketData fields may be dereferenced after range checks
  // The kernel's return-value range for the type (check_return_code),
  // inclusive; unset: any value.
  std::optional<std::pair<int64_t, int64_t>> ret_range;
  // Whether a program of this type may call helper `id` (the kernel's
  // get_func_proto per type); null: every helper Springboard has.
  bool (*helper_allowed)(uint32_t id) = nullptr;
};

// Where an access of `size` bytes at uapi `offset` inside field `f` of a
// rewritten context goes in the native context: a scalar field keeps its
// size (narrow loads at the same place inside it; native and uapi sizes
// are equal for scalars), a pointer field is read whole, 8 bytes.
struct NativeAccess {
  uint16_t offset = 0;
  uint8_t size = 0;
};
NativeAccess native_access(const CtxField& f, uint32_t offset, unsigned size, bool store = false);

// bpf_base_func_proto: the helpers every networking type may call, as far
// as Springboard has them (maps with push/pop/peek, ktime and boot time,
// trace_printk, prandom, the CPU and NUMA node, tail calls, ring buffers).
bool base_helper_allowed(uint32_t id);

// Helpers that only mean something on a packet context or a packet run
// (skb_load_bytes, xdp_adjust_head, redirect, perf_event_output, ...):
// raw programs may not call them.
bool packet_helper(uint32_t id);

// Helpers that walk the stack of the code a program interrupted (get_stack,
// get_stackid: runtime/helpers/tracing_helpers.h): only the x86-64 probe
// and tracing types may call them, which run natively at a probe or a
// trampoline (a raw or packet program interrupts nothing; a guest's stack
// is Unicorn memory).
bool regs_stack_helper(uint32_t id);
// bpf_override_return (58): writes a probe's pt_regs, so only the native
// x86-64 kprobe type (the kernel's kprobe_prog_func_proto; not tracing).
bool regs_write_helper(uint32_t id);

// Whether `p`'s type has a rewritten context: lowering and the interpreter
// then need the verifier's VerifyResult::ctx_fields.
bool needs_context_rewrite(const Program& p);

// The type of raw bytecode and of everything that ran before program types.
const ProgramType& raw_program_type();

// By --type name ("xdp", "tc", ...); null when unknown.
const ProgramType* find_program_type(std::string_view name);

// An ELF section as libbpf names it ("xdp", "xdp.frags", "tc",
// "classifier/ingress", "tcx/egress", "socket", "uprobe/PATH:FUNC+OFF",
// ...): the type, and what follows the type's prefix (the attach point).
struct SectionType {
  const ProgramType* type = nullptr;
  std::string attach;  // "PATH:FUNC+OFF" for "uprobe/PATH:FUNC+OFF"; empty when none
};
std::optional<SectionType> program_type_for_section(std::string_view section);

// Every registered type, for listings and error messages ("xdp, tc, ...").
std::span<const ProgramType* const> program_types();
std::string program_type_names();

}  // namespace sb::bpf
