/* The program `springboard trace` is tried on (tools/examples/trace): it
 * calls compute(i, i + 1) for i = 1..N (N from its first argument, default
 * 5), prints the total and exits with its second argument (default 0);
 * with a third, it first forks a child that calls compute once more.
 * demo.bpf.c probes compute's entry and return, and the USDT probe
 * demo:step (<sys/sdt.h>) each round passes with the round and the total. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline, noipa)) long compute(long x, long y) { return x * y + 1; }

int main(int argc, char** argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 5;
  long total = 0;
  for (int i = 1; i <= n; ++i) {
    total += compute(i, i + 1);
    DTRACE_PROBE2(demo, step, i, total);
  }
  printf("total %ld\n", total);
  fflush(stdout);
  if (argc > 3) { /* "fork": a child that computes once more and exits */
    const pid_t child = fork();
    if (child == 0) exit(compute(10, 10) == 101 ? 0 : 1);
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 9;
  }
  return argc > 2 ? atoi(argv[2]) : 0;
}
