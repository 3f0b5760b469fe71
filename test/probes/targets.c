/* Functions the probe tests attach to (probe_test.cpp), built by gcc and
 * clang at several flag sets (test/CMakeLists.txt); SB_PROBE_PREFIX names
 * each build's copies apart. */
#define SB_CAT2(a, b) a##b
#define SB_CAT(a, b) SB_CAT2(a, b)
#define SB_F(name) SB_CAT(SB_PROBE_PREFIX, name)

__attribute__((noinline)) long SB_F(add)(long a, long b) { return a + b; }

/* Recursion: every level's entry and return are probed. */
__attribute__((noinline)) long SB_F(fact)(long n) {
  if (n <= 1) return 1;
  long r = SB_F(fact)(n - 1);
  __asm__ volatile("" : "+r"(r));  /* keeps the call a call */
  return n * r;
}

/* Six arguments: PT_REGS_PARM1..6. */
__attribute__((noinline)) long SB_F(mix)(long a, long b, long c, long d, long e, long f) {
  return a - b + c * d - e + f;
}

/* Deep recursion (at -O0 every level is a call): more pending returns than
 * a uretprobe keeps per thread. */
__attribute__((noinline)) long SB_F(depth)(long n) {
  if (n <= 0) return 0;
  long r = SB_F(depth)(n - 1);
  __asm__ volatile("" : "+r"(r));
  return n + r;
}
