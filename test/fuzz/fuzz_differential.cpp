// libFuzzer target: the interpreter against the native x86-64 JIT on every
// input that validates, compared on r0, memory and faults. Both run in
// bounds-check mode (ir/harden.h), which makes an arbitrary program safe to
// run and deterministic: wild accesses end it with the same error on both
// engines, and it starts from zeroed registers and stack on both. The
// interpreter runs first with an instruction budget; a program that does
// not end within it is skipped, so the JIT never loops.
//
// Input: a conformance test file or assembly text (seeds: the corpus's
// .data files), or, after a first byte 0x00, raw bytecode. The program's
// memory is the file's own or 64 pattern bytes.
//
// Values that depend on where the engines keep their stacks differ between
// them by design (r10 is a host address), so programs that use r10 other
// than as the base of a memory access are skipped.
//   tools/fuzz.sh differential 600
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "frontend/assembler.h"
#include "frontend/conformance_file.h"
#include "frontend/decoder.h"
#include "frontend/disassembler.h"
#include "frontend/validator.h"
#include "ir/diag.h"
#include "runtime/exec/interpreter.h"
#include "runtime/exec/native.h"

namespace {

using namespace sb;

// r10 only as a load/store/atomic base.
bool frame_pointer_stays_hidden(const bpf::Program& p) {
  for (const bpf::Insn& in : p.insns) {
    const uint8_t cls = bpf::class_of(in.opcode);
    const bool reg_source = bpf::is_reg_source(in);
    if ((cls == bpf::ALU || cls == bpf::ALU64 || cls == bpf::JMP || cls == bpf::JMP32) &&
        (in.dst == bpf::kFramePointer || (reg_source && in.src == bpf::kFramePointer)))
      return false;
    if (cls == bpf::STX && in.src == bpf::kFramePointer) return false;  // storing r10's value
  }
  return true;
}

struct Outcome {
  bool ok = false;
  uint64_t r0 = 0;
  std::string error, fault;
  std::vector<uint8_t> memory;
};

template <typename Run>
Outcome outcome(std::vector<uint8_t>& buffer, const std::vector<uint8_t>& initial, Run run) {
  Outcome o;
  buffer = initial;  // the same buffer (and so the same address) for both engines
  try {
    o.r0 = run(buffer.empty() ? nullptr : buffer.data(), buffer.size());
    o.ok = true;
  } catch (const Error& e) {
    o.error = e.what();
    // The fault without its address, which differs for stack addresses.
    o.fault = e.where() + ": " + e.message().substr(0, e.message().find(" at "));
  }
  o.memory = buffer;
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bpf::Program p;
  std::vector<uint8_t> memory(64);
  for (size_t i = 0; i < memory.size(); ++i) memory[i] = uint8_t(i * 37 + 11);
  try {
    if (size > 0 && data[0] == 0) {
      p = bpf::decode(std::span(data + 1, size - 1), "fuzz.bin");
    } else {
      std::string_view text(reinterpret_cast<const char*>(data), size);
      if (text.find("-- asm") != std::string_view::npos) {
        bpf::ConformanceTest t = bpf::parse_conformance(text, "fuzz.data");
        p = t.program;
        if (!t.memory.empty()) memory = t.memory;
      } else {
        p = bpf::assemble(text, "fuzz.s");
      }
    }
  } catch (const Error&) {
    return 0;
  }
  if (p.insns.size() > 4096 || !frame_pointer_stays_hidden(p)) return 0;
  const rt::HelperTable helpers = rt::HelperTable::conformance();
  bpf::ValidateOptions v;
  v.helper_exists = [&](uint32_t id) { return helpers.find(id) != nullptr; };
  try {
    bpf::validate(p, v);
  } catch (const Error&) {
    return 0;
  }

  rt::Safety safety;
  safety.bounds_check = true;
  std::vector<uint8_t> buffer;
  rt::InterpOptions io;
  io.safety = safety;
  io.insn_budget = 20000;
  const Outcome want = outcome(buffer, memory, [&](void* m, size_t n) { return rt::interpret(p, helpers, m, n, io); });
  if (!want.ok && want.error.find("instruction budget") != std::string::npos) return 0;

  std::optional<rt::NativeProgram> jit;
  try {
    jit.emplace(p, helpers, safety);
  } catch (const Error& e) {
    std::fprintf(stderr, "the JIT rejected a valid program: %s\n%s", e.what(), bpf::disassemble(p).c_str());
    std::abort();
  }
  const Outcome got = outcome(buffer, memory, [&](void* m, size_t n) { return jit->run(m, n); });

  // Faults: both must fault; a bounds fault must name the same instruction
  // and size (the address of a stack access differs: each engine has its
  // own stack). Other faults (callx to an unknown helper) are worded per
  // engine.
  const bool bounds_fault = !want.ok && want.error.find("out-of-bounds") != std::string::npos;
  const bool agree = want.ok == got.ok && (!want.ok || (want.r0 == got.r0 && want.memory == got.memory)) &&
                     (!bounds_fault || want.fault == got.fault);
  if (!agree) {
    std::fprintf(stderr, "interpreter: %s %s\nx86-64 JIT:  %s %s\n%s", want.ok ? "r0 =" : "error:",
                 want.ok ? std::to_string(want.r0).c_str() : want.error.c_str(), got.ok ? "r0 =" : "error:",
                 got.ok ? std::to_string(got.r0).c_str() : got.error.c_str(), bpf::disassemble(p).c_str());
    std::abort();
  }
  return 0;
}
