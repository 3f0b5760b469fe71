/* The program `springboard trace` is tried on (tools/examples/trace): it
 * calls compute(i, i + 1) for i = 1..N (N from its first argument, default
 * 5), prints the total and exits with its second argument (default 0).
 * demo.bpf.c probes compute's entry and return. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline, noipa)) long compute(long x, long y) { return x * y + 1; }

int main(int argc, char** argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 5;
  long total = 0;
  for (int i = 1; i <= n; ++i) total += compute(i, i + 1);
  printf("total %ld\n", total);
  return argc > 2 ? atoi(argv[2]) : 0;
}
