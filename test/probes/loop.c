/* A loop for probes inside a function (probe_arch_test.cpp), built by gcc
 * -O2 for this process and cross-compiled for the arm64 and riscv64
 * guests (test/CMakeLists.txt). SB_SITE marks an instruction of the loop
 * without adding any: the next one, whose address it records in section
 * sb_probe_sites with the registers the compiler keeps i, s, n and k in
 * there (as the asm operands name them: "x2 x0 x4 x1", "a5 a0 a2 a1",
 * "%rdx %rax %rdi %rsi"). At -O2 it is the loop's head, the target of its
 * back-edge, so a probe there fires once per iteration. */
#define SB_SITE(i, s, n, k)                                                          \
  __asm__ volatile(".pushsection sb_probe_sites,\"aw\"\n\t.balign 8\n\t.quad 1f\n\t" \
                   ".asciz \"%0 %1 %2 %3\"\n\t.balign 8\n\t.popsection\n1:"            \
                   :                                                                 \
                   : "r"(i), "r"(s), "r"(n), "r"(k))

__attribute__((noinline)) long sb_probe_loop(long n, long k) {
  long s = 0;
  for (long i = 0; i < n; ++i) {
    SB_SITE(i, s, n, k);
    s += i * k ^ (s >> 3);
  }
  return s;
}
