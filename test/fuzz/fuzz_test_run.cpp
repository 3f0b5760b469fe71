// libFuzzer target: arbitrary test-run input (runtime/progtypes/test_run.h)
// through an XDP program that reads every context field, moves the head,
// tail and metadata by amounts taken from the packet and reads the packet
// after each move: bad input must be an sb::Error, never a crash, and the
// interpreter and the native JIT must agree on every output.
//   tools/fuzz.sh test_run 60
// Input: byte 0 is the context's length + 1 (0: no ctx_in), then the
// context, then the packet.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "frontend/assembler.h"
#include "frontend/progtypes/xdp.h"
#include "ir/diag.h"
#include "runtime/exec/engines.h"
#include "runtime/helpers/std_helpers.h"
#include "runtime/progtypes/test_run.h"

namespace {

// r6 = ctx; each step reloads data/data_end, checks 4 bytes, and uses
// them as the next helper's offset; r7 sums what it read.
constexpr const char* kProgram = R"(
mov %r6, %r1
ldxw %r7, [%r6+12]
ldxw %r2, [%r6+16]
add %r7, %r2
ldxw %r2, [%r6+0]
ldxw %r3, [%r6+4]
mov %r4, %r2
add %r4, 4
jgt %r4, %r3, out
ldxb %r8, [%r2+0]
ldxb %r9, [%r2+1]
lsh %r8, 56
arsh %r8, 56
mov %r1, %r6
mov %r2, %r8
call 44
add %r7, %r0
ldxw %r2, [%r6+0]
ldxw %r3, [%r6+4]
mov %r4, %r2
add %r4, 2
jgt %r4, %r3, out
ldxb %r8, [%r2+1]
lsh %r8, 56
arsh %r8, 50
mov %r1, %r6
mov %r2, %r8
call 65
add %r7, %r0
lsh %r9, 60
arsh %r9, 60
lsh %r9, 2
mov %r1, %r6
mov %r2, %r9
call 54
add %r7, %r0
ldxw %r2, [%r6+8]
ldxw %r3, [%r6+0]
mov %r4, %r2
add %r4, 4
jgt %r4, %r3, nometa
ldxw %r5, [%r2+0]
add %r7, %r5
nometa:
mov %r1, %r6
call 188
add %r7, %r0
out:
mov %r0, %r7
exit
)";

struct Setup {
  sb::rt::Environment env;
  sb::rt::HelperTable helpers = sb::rt::standard_helpers(env);
  sb::bpf::Program program = [] {
    sb::bpf::Program p = sb::bpf::assemble(kProgram, "fuzz.s");
    p.type = &sb::bpf::xdp_program_type();
    return p;
  }();
  sb::rt::Engine::Runner interp, native;
  Setup() {
    interp = sb::rt::find_engine(sb::rt::EngineKind::Interp, sb::Arch::X86_64)->prepare(program, helpers, {});
    if (const sb::rt::Engine* n = sb::rt::find_engine(sb::rt::EngineKind::Native, sb::Arch::X86_64))
      native = n->prepare(program, helpers, {});
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Setup s;
  if (size == 0) return 0;
  sb::rt::TestRunInput in;
  size_t at = 1;
  if (data[0]) {
    const size_t n = std::min<size_t>(data[0] - 1u, size - 1);
    in.ctx.emplace(data + 1, data + 1 + n);
    at += n;
  }
  in.data.assign(data + at, data + size);
  in.repeat = 1 + (size % 3);
  sb::rt::TestRunOutput a, b;
  try {
    a = sb::rt::test_run(s.program, in, s.interp);
  } catch (const sb::Error&) {
    return 0;  // refused input: the native side would refuse it the same way
  }
  if (!s.native) return 0;
  b = sb::rt::test_run(s.program, in, s.native);
  if (a.retval != b.retval || a.data != b.data || a.ctx != b.ctx) std::abort();
  return 0;
}
