/* USDT probes the USDT tests attach to (usdt_test.cpp), built by gcc and
 * clang at -O0 and -O2 (test/CMakeLists.txt), each build its own provider
 * (SB_USDT_PROVIDER) so a test picks one build's sites:
 *   PROVIDER:args     eight arguments of every width and signedness, in
 *                     registers, on the stack and as constants, as each
 *                     compiler places them
 *   PROVIDER:guarded  behind its semaphore: fires only while attached
 *   PROVIDER:twice    two sites (an inlined function, used twice)
 *   PROVIDER:tail     a site right before a function's ret
 *   PROVIDER:global   a static variable (gcc -O2: SYM(%rip)) */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

#define SB_CAT2(a, b) a##b
#define SB_CAT(a, b) SB_CAT2(a, b)
#define SB_F(name) SB_CAT(SB_USDT_PROVIDER, name)

__extension__ unsigned short SB_F(_args_semaphore) __attribute__((unused, section(".probes")));
__extension__ unsigned short SB_F(_guarded_semaphore) __attribute__((unused, section(".probes")));
__extension__ unsigned short SB_F(_twice_semaphore) __attribute__((unused, section(".probes")));
__extension__ unsigned short SB_F(_tail_semaphore) __attribute__((unused, section(".probes")));
__extension__ unsigned short SB_F(_global_semaphore) __attribute__((unused, section(".probes")));

long SB_F(_table)[8];

/* The arguments: i (int), i * 1000 (long), -i (signed char), 0x7000 + i
 * (short), 0xfffffff0 + i (unsigned), a long from memory, the constant -5,
 * the table's address. Returns a sum the compiler must compute. */
__attribute__((noinline)) long SB_F(_fire_args)(int i) {
  long r = (long)i * 1000;
  signed char c = (signed char)-i;
  short s = (short)(0x7000 + i);
  unsigned u = 0xfffffff0u + (unsigned)i;
  SB_F(_table)[i & 7] = r + 1;
  STAP_PROBE8(SB_USDT_PROVIDER, args, i, r, c, s, u, SB_F(_table)[i & 7], -5, &SB_F(_table)[0]);
  return r + c + s + (long)u;
}

/* 1 when the probe's semaphore said someone listens. */
__attribute__((noinline)) int SB_F(_fire_guarded)(long x) {
  if (SB_F(_guarded_semaphore)) {
    STAP_PROBE1(SB_USDT_PROVIDER, guarded, x);
    return 1;
  }
  return 0;
}

static inline __attribute__((always_inline)) void SB_F(_twice_site)(long x) {
  STAP_PROBE1(SB_USDT_PROVIDER, twice, x);
}
__attribute__((noinline)) long SB_F(_fire_twice)(long x) {
  SB_F(_twice_site)(x);
  SB_F(_twice_site)(x + 1);
  __asm__ volatile("" : "+r"(x));  /* code after the second site */
  return x * 3;
}

/* A static variable as the argument: gcc -O2 writes "-8@counter(%rip)". */
static long SB_F(_counter);
__attribute__((noinline)) void SB_F(_set_global)(long x) { SB_F(_counter) = x; }
__attribute__((noinline)) long SB_F(_fire_global)(long x) {
  SB_F(_set_global)(x);
  __asm__ volatile("" ::: "memory"); /* the probe reads the variable from memory */
  STAP_PROBE1(SB_USDT_PROVIDER, global, SB_F(_counter));
  long r = x;
  __asm__ volatile("" : "+r"(r)); /* code after the site */
  return r * 2;
}

/* A site just before the function's return: the 5-byte jump a probe
 * patches in may not fit before the next function. */
__attribute__((noinline)) void SB_F(_fire_tail)(long x) { STAP_PROBE1(SB_USDT_PROVIDER, tail, x); }
