// libFuzzer target: the verifier's soundness. Every input becomes a
// program; the verifier must refuse it with an sb::Error or accept it, and
// an accepted program is then run on the interpreter, bounds-checked
// (rt::Safety::bounds_check), with an instruction budget and with reads of
// unwritten registers faulting (InterpOptions::check_uninit). An accepted
// program that
//   - faults at an access the verifier proved in bounds (VerifyResult::proven),
//   - faults in any other way (a register read before it was written, the
//     call depth, running off the end),
//   - or runs past the instruction budget, where the verifier's walk
//     bounds the run: a run makes no more instructions than were processed
//     but for bpf_loop's iterations, which the harness caps at kLoopCap
//     (InterpOptions::max_loops; more gets -E2BIG, which a verified
//     program must handle) per level of VerifyResult::loop_depth
// is a verifier bug: the target aborts with the program. Bounds faults at
// accesses the verifier did not prove are the design (raw programs' r1 is
// checked at run time, see frontend/verifier/verifier.h).
//
// Input: after a first byte 0x00, raw bytecode (seeds: the conformance
// corpus's programs); otherwise a generated program (test/random_program.h)
// from the seed in bytes 1-8, kernel-compatible when byte 0 is odd, then
// mutated by each following 4 bytes (instruction, field, 16-bit value), so
// the fuzzer explores the edge between what verifies and what does not.
// With byte 0's bit 2 set, raw programs call bpf_loop with generated
// callbacks (RandomProgramOptions::callbacks), so the verifier's callback
// frames and their widening are checked against the rewrite's runs.
// With byte 0's bit 1 set, every function but the entry is a global
// function (bpf::GlobalFunc) with a prototype drawn from the seed: numbers
// and pointers to 1-64 bytes, so the checks at its calls must hold for
// whatever the function was proven against.
//   tools/fuzz.sh verifier 600
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>

#include "frontend/decoder.h"
#include "frontend/disassembler.h"
#include "frontend/validator.h"
#include "frontend/verifier/verifier.h"
#include "ir/diag.h"
#include "runtime/exec/interpreter.h"
#include "test/random_program.h"

namespace {

using namespace sb;

constexpr uint64_t kComplexityLimit = 20'000;  // far below the kernel's 1,000,000: fuzzing wants many short runs
constexpr uint64_t kRunBudget = 2'000'000;
constexpr uint32_t kLoopCap = 8;  // the generator's loops make 0-7 iterations

// The most instructions a run of a verified program can make: each level of
// callbacks runs its body (no longer than what was processed) and the
// rewrite's loop (a dozen instructions) up to kLoopCap times.
uint64_t run_bound(const bpf::verifier::VerifyResult& r) {
  uint64_t bound = r.insns_processed + 16;
  for (uint32_t d = 0; d < r.loop_depth && bound <= kRunBudget; ++d) bound *= kLoopCap + 1;
  return bound;
}

// Applies one 4-byte mutation: which instruction, which field, the value.
void mutate(bpf::Program& p, const uint8_t* m) {
  if (p.insns.empty()) return;
  bpf::Insn& in = p.insns[m[0] % p.insns.size()];
  const uint16_t v = uint16_t(m[2] | m[3] << 8);
  switch (m[1] % 8) {
    case 0: in.opcode = uint8_t(v); break;
    case 1: in.dst = v & 0xf; break;
    case 2: in.src = v & 0xf; break;
    case 3: in.off = int16_t(v); break;
    case 4: in.imm = int16_t(v); break;  // small immediates, sign-extended
    case 5: in.imm = int32_t(uint32_t(v) << 16 | uint32_t(v)); break;
    case 6: in.off = int16_t(in.off + int8_t(v & 0xff)); break;  // nudge a jump or an offset
    default: in.imm = int32_t(uint32_t(in.imm) + uint32_t(int32_t(int8_t(v & 0xff)))); break;  // wraps
  }
}

// Makes every function of `p` but the entry global, its prototype from `seed`.
void make_global(bpf::Program& p, uint64_t seed) {
  const std::vector<size_t> starts = bpf::function_starts(p);
  for (size_t f = 1; f < starts.size(); ++f) {
    uint64_t x = seed + 0x9e3779b97f4a7c15ull * f;  // splitmix64
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    bpf::GlobalFunc g{starts[f], "f" + std::to_string(f), {}, true};
    const unsigned params = unsigned(x % 6);
    for (unsigned i = 0; i < params; ++i) {
      const unsigned bits = unsigned(x >> (8 + 8 * i)) & 0xff;
      if (bits & 1) g.params.push_back({bpf::GlobalFuncParam::Kind::Pointer, "", (bits >> 1) % 64 + 1, "struct"});
      else g.params.push_back({});
    }
    p.globals.push_back(std::move(g));
  }
}

// The instruction an error names ("NAME: instruction N"), or -1.
long insn_of(const Error& e) {
  const std::string& w = e.where();
  const size_t at = w.rfind("instruction ");
  return at == std::string::npos ? -1 : std::strtol(w.c_str() + at + 12, nullptr, 10);
}

[[noreturn]] void verifier_bug(const bpf::Program& p, const std::string& what) {
  std::fprintf(stderr, "verifier bug: an accepted program %s\n%s", what.c_str(), bpf::disassemble(p).c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  bpf::Program p;
  uint64_t seed = 0;
  std::vector<uint8_t> memory(64);
  for (size_t i = 0; i < memory.size(); ++i) memory[i] = uint8_t(i * 37 + 11);
  try {
    if (data[0] == 0) {
      p = bpf::decode(std::span(data + 1, size - 1), "fuzz.bin");
    } else {
      std::memcpy(&seed, data + 1, std::min<size_t>(size - 1, 8));
      test::RandomProgramOptions o;
      o.kernel_compatible = data[0] & 1;
      o.callbacks = data[0] & 4;
      test::RandomProgram rp = test::random_program(seed, o);
      p = std::move(rp.program);
      memory = std::move(rp.memory);
      for (size_t at = 9; at + 4 <= size; at += 4) mutate(p, data + at);

    }
  } catch (const Error&) {
    return 0;
  }
  if (p.insns.size() > 4096) return 0;
  const rt::HelperTable helpers = rt::HelperTable::conformance();
  bpf::ValidateOptions v;
  v.helper_exists = [&](uint32_t id) { return helpers.find(id) != nullptr; };
  bpf::verifier::VerifyResult proof;
  try {
    bpf::validate(p, v);
    if (data[0] != 0 && (data[0] & 2)) make_global(p, seed);  // after validation: the function starts are sound
    bpf::verifier::VerifyOptions vo = helpers.verify_options();
    vo.complexity_limit = kComplexityLimit;
    vo.raw_length_in_r2 = true;  // as a bounds-checked compile verifies: raw accesses get proven too
    proof = bpf::verifier::verify(p, vo);
  } catch (const Error&) {
    return 0;  // refused, with an error (anything else escapes and is a crash)
  }

  rt::InterpOptions io;
  io.safety.bounds_check = true;
  io.insn_budget = kRunBudget;
  io.check_uninit = true;
  io.max_loops = kLoopCap;
  try {
    rt::interpret(p, helpers, memory.data(), memory.size(), io);
  } catch (const Error& e) {
    const std::string& m = e.message();
    const long at = insn_of(e);
    const bool bounds = m.starts_with("out-of-bounds access");
    if (bounds && at >= 0 && size_t(at) < proof.proven.size() && !proof.proven[size_t(at)]) return 0;  // raw memory
    if (m.starts_with("instruction budget") && run_bound(proof) > kRunBudget) return 0;  // nested loops
    verifier_bug(p, "faulted: " + std::string(e.what()));
  }
  return 0;
}
