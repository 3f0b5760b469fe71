// The BPF verifier: proves a validated program safe before it is lowered
// or interpreted, by abstract interpretation of every path, as the Linux
// kernel's verifier does (kernel/bpf/verifier.c). It runs after
// bpf::validate (frontend/validator.h), which has already checked the
// encoding, jump targets, function boundaries and the call graph.
//
// What it tracks (reg_state.h): each register's type (scalar, ctx, stack,
// map handle, map value, packet, helper memory, ...) with an offset; for
// scalars known bits and signed/unsigned 64/32-bit bounds. Each frame's
// 512-byte stack by 8-byte slot: a spilled register keeps its state, other
// bytes are "misc" (some number), "zero" or unwritten.
//
// What it refuses (each with the kernel's wording where the kernel has
// one): reading an unset register or unwritten stack; any load, store or
// atomic outside its object, or at an alignment the kernel refuses (stack
// accesses and atomics aligned to their size); a context access the
// program type's field table does not allow; pointer arithmetic the kernel
// forbids (on map handles, nullable pointers, packet end; bitwise ops, 32-bit
// ops, pointer - scalar reversed, pointer + pointer); dereferencing a
// nullable pointer before its null check; helper arguments against the
// prototype (helper_protos.h); a ring-buffer record neither submitted nor
// discarded on some path; a tail call with a record held; a return value
// outside the program type's range; statically unreachable instructions;
// combined stack of a call chain over 512 bytes; loops that do not end
// within the complexity limit (1,000,000 instructions processed, as the
// kernel's BPF_COMPLEXITY_LIMIT_INSNS), or that come back to an identical
// state ("infinite loop detected"). bpf_loop's callback (an lddw of a
// function's address, RegType::Func) is checked as a frame of its own on
// every iteration, returning 0 or 1; between iterations the numbers it
// wrote to its caller's stack are widened to unknown, so the iterations
// meet a state already being explored and stop there.
//
// Global functions (bpf::GlobalFunc: an ELF object's non-static, non-hidden
// .text functions, by their BTF linkage) are checked as the kernel checks
// them: each once, on its own, before the program, with its arguments as
// its BTF prototype says (numbers; the context, for a pointer to the type's
// context struct; otherwise memory of the pointee's size that may be null),
// returning a number; and a call of one is not followed: its arguments are
// checked against the prototype (memory readable and writable for the
// pointee's size, and then some number), r0 is an unknown number and r1-r5
// are clobbered. Messages from inside one name it: "global function f():
// instruction N". A raw program may pass its raw memory to a pointer
// argument; the function is then checked once more with that argument raw
// memory, whose accesses keep their run-time checks.
//
// Raw programs (bpf::raw_program_type(): plain bytecode, the conformance
// suite, the C API's runs over a buffer) have no kernel counterpart: r1 is
// memory of r2 bytes whose size is only known at run time. The rule: r1 is
// a pointer of type raw_mem, and a load, store or atomic through it (or
// through a pointer derived from it by adding scalars) is accepted at any
// offset, constant or variable, and left to the runtime: `--bounds-check`
// checks it against [r1, r1 + r2) when the program runs, an unhardened run
// trusts the embedder's buffer as before. A path that compared the entry's
// r2 (or a copy of it) knows a least length (State::raw_len): accesses
// inside it are proven, and keep no runtime check. Everything else (the stack, maps,
// helper arguments, registers) is checked as for any other type.
//
// Errors are sb::Error located "FILE: PROGRAM: instruction N" (PROGRAM is
// VerifyOptions::program, else the type's name), the message naming the
// register, its type and range, and what was expected, e.g.
//   R3 invalid access to packet, off=14 size=2, R3 range=0 (compare with data_end first)
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "frontend/bpf.h"
#include "frontend/progtypes/program_type.h"
#include "frontend/verifier/helper_protos.h"

namespace sb::bpf::verifier {

constexpr uint64_t kComplexityLimit = 1'000'000;  // BPF_COMPLEXITY_LIMIT_INSNS

// What the verifier knows of helper `id`: whether it exists, and its
// prototype (null: an embedder helper called unchecked).
struct HelperInfo {
  bool exists = false;
  const HelperProto* proto = nullptr;
};

struct VerifyOptions {
  const ProgramType* type = nullptr;  // null: the program's (Program::type), else raw_program_type()
  std::string program;                // the program's name in messages (an ELF section); empty: the type's
  // Helpers by id; null: Springboard's standard helpers (standard_helper_proto).
  std::function<HelperInfo(uint32_t id)> helper;
  uint64_t complexity_limit = kComplexityLimit;
  // A map whose handle an lddw loads as a plain number (bytecode built by
  // an embedder around its maps' handles); null, or nullopt: a number.
  std::function<std::optional<MapUse>(uint64_t imm)> map_at;
  // Raw programs: r2 at the entry is the length of r1's memory, so a
  // compare of it (`if r2 < N goto out`) proves N bytes there and accesses
  // inside them need no runtime check (VerifyResult::proven). Never for a
  // program entered by a tail call, whose r2 is its caller's. Off by
  // default: it costs verify time (a subprogram is summarised per exact
  // pointer, so a loop calling it with a moving pointer explores it per
  // iteration), and only a bounds-checked compile uses the proofs
  // (backends/compile.cpp turns it on then).
  bool raw_length_in_r2 = false;
  // Verbose mode (the kernel's log_level 2): one line per instruction
  // processed, the instruction and the state before it.
  std::function<void(const std::string& line)> log;
};

struct VerifyResult {
  uint64_t insns_processed = 0;  // as the kernel's "processed N insns"
  uint64_t states_stored = 0;    // states kept at prune points ("total_states")
  uint64_t peak_states = 0;
  // The most bpf_loop / bpf_for_each_map_elem callbacks running inside one
  // another on any path (0: none; a global function, verified on its own,
  // counts from its own frame). A run makes at most as many
  // instructions as were processed, but for the callbacks' iterations: up
  // to BPF_MAX_LOOPS (or the map's elements) per level.
  uint32_t loop_depth = 0;
  std::vector<uint32_t> stack_depth;  // per function (function_starts order), rounded as the kernel
  // Per instruction slot: 1 when the instruction is a load, store or atomic
  // whose every execution was proven inside its object (not raw memory),
  // so a runtime bounds check of it is redundant.
  std::vector<uint8_t> proven;
  // Per instruction slot, for a type whose context is `rewritten`: the
  // field a load or store through the context pointer touches (the same on
  // every path: the kernel's "same insn cannot be used with different
  // pointers"), which lowering and the interpreter turn into an access of
  // the native context (bpf::native_access); null everywhere else.
  std::vector<const CtxField*> ctx_fields;
};

// Throws sb::Error on the first violation on any path.
VerifyResult verify(const Program& p, const VerifyOptions& opts = {});

}  // namespace sb::bpf::verifier
