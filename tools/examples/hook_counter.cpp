// Attaches BPF programs to one of this program's own functions and prints
// their statistics: an fentry program counting calls into a counter, and
// an fexit program keeping the largest result seen.
//
//   build/springboard-hook-demo
#include <cstdint>
#include <cstdio>

#include <fmt/format.h>

#include "frontend/assembler.h"
#include "ir/diag.h"
#include "runtime/hook/trampoline.h"

extern "C" __attribute__((noinline, noipa)) int64_t collatz_steps(int64_t n) {
  int64_t steps = 0;
  while (n > 1) {
    n = (n % 2) ? 3 * n + 1 : n / 2;
    ++steps;
  }
  return steps;
}

int main() {
  using namespace sb;
  uint64_t calls = 0, longest = 0;
  try {
    ir::Signature sig;
    sig.args = {{ir::Type::I64, 8}};
    sig.ret = {ir::Type::I64, 8};
    rt::TrampolineTable table;
    rt::TrampolineOptions opts;
    opts.stats = true;  // run counts and times (off by default)
    rt::Trampoline& t = table.get(reinterpret_cast<void*>(&collatz_steps), sig, opts, "collatz_steps");
    rt::HelperTable helpers;
    // fentry: calls += 1 (ctx is r1; the counter's address is a constant).
    rt::LinkId count = t.link(tramp::Kind::Fentry,
                              bpf::assemble(fmt::format("lddw %r2, {:#x}\nmov %r3, 1\nlock add [%r2+0], %r3\n"
                                                        "mov %r0, 0\nexit",
                                                        reinterpret_cast<uint64_t>(&calls)),
                                            "count"),
                              0, helpers);
    // fexit: longest = max(longest, return value), the return value being ctx[1].
    rt::LinkId keep = t.link(tramp::Kind::Fexit,
                             bpf::assemble(fmt::format("ldxdw %r3, [%r1+8]\nlddw %r2, {:#x}\nldxdw %r4, [%r2+0]\n"
                                                       "jge %r4, %r3, +1\nstxdw [%r2+0], %r3\nmov %r0, 0\nexit",
                                                       reinterpret_cast<uint64_t>(&longest)),
                                           "longest"),
                             0, helpers);
    int64_t (*volatile fn)(int64_t) = &collatz_steps;
    int64_t total = 0;
    for (int64_t n = 1; n <= 100000; ++n) total += fn(n);
    rt::ProgStats a = t.stats(count), b = t.stats(keep);
    fmt::print("collatz_steps called {} times (counted by BPF: {}), longest run {} steps, total {}\n", 100000, calls,
               longest, total);
    fmt::print("fentry 'count':   {} runs, {} ns, {} misses\n", a.run_count, a.run_time_ns, a.misses);
    fmt::print("fexit  'longest': {} runs, {} ns, {} misses\n", b.run_count, b.run_time_ns, b.misses);
    table.put(reinterpret_cast<void*>(&collatz_steps));
  } catch (const Error& e) {
    fmt::print(stderr, "hook-demo: {}\n", e.what());
    return 1;
  }
  return calls == 100000 ? 0 : 1;
}
