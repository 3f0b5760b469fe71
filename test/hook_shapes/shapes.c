/* Target functions of the shapes that entry hooking must handle or refuse
 * (issue 16), compiled by gcc and clang with several flag sets into the
 * hook tests (test/hook_shapes_test.cpp) and into shared libraries. Each
 * build names its functions with its own prefix, SB_SHAPE(name), and
 * exports one table of them, so every build can live in one program. */
#include "test/hook_shapes/shapes.h"

#define SB_CAT2(a, b) a##b
#define SB_CAT(a, b) SB_CAT2(a, b)
#define SB_SHAPE(name) SB_CAT(SB_SHAPE_PREFIX, name)
#if defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE __attribute__((noinline, noipa))
#endif

/* Tiny: shorter than the 5-byte jump on x86-64 (4, 3 and 1 bytes without
 * -fcf-protection): hooked over the alignment padding after them when
 * there is enough of it before the next function, refused otherwise. */
NOINLINE int SB_SHAPE(tiny)(int x) { return x + 1; }
NOINLINE int SB_SHAPE(zero)(void) { return 0; }
NOINLINE void SB_SHAPE(empty)(void) { __asm__ volatile(""); }

/* The first instruction reads a global through rip. */
int SB_SHAPE(global) = 5;
NOINLINE int SB_SHAPE(rip_first)(int x) { return SB_SHAPE(global) * x + 3; }

/* An early conditional branch. */
NOINLINE long SB_SHAPE(early_branch)(const long* p, long k) {
  if (!p) return -1;
  return *p * k + 7;
}

/* A switch that compilers turn into a jump table. */
NOINLINE long SB_SHAPE(jump_table)(unsigned op, long a, long b) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a ^ b;
    case 4: return a | (b << 3);
    case 5: return a & b;
    case 6: return a << (b & 7);
    case 7: return (a >> (b & 7)) + 11;
    case 8: return a * 3 + b * 5;
    case 9: return -a;
    default: return 99;
  }
}

/* A spin on a word: gcc emits mov (%rdi),%eax; test %eax,%eax; je <entry>. */
NOINLINE int SB_SHAPE(spin)(volatile int* p) {
  int v;
  while (!(v = *p)) {
  }
  return v;
}

/* A loop at the entry (a dec; jne loop). */
NOINLINE unsigned SB_SHAPE(count_down)(unsigned n, unsigned a) {
  do {
    a = a * 3 + n;
  } while (--n);
  return a;
}

/* clang -Os: the loop head is the second instruction. */
NOINLINE int SB_SHAPE(sumto)(const int* a, int n) {
  int s = 0;
  while (n) s += a[--n];
  return s;
}

/* A loop at the entry whose back-edge needs a 32-bit displacement (the
 * body is longer than 127 bytes): re-aimed at the relocated copy. */
NOINLINE unsigned SB_SHAPE(long_loop)(unsigned n, unsigned a) {
  do {
    a = (a ^ (a >> 7)) * 0x9E3779B1u + n;
    a = (a ^ (a >> 11)) * 0x85EBCA77u + 3;
    a = (a ^ (a >> 5)) * 0xC2B2AE3Du + n * 5;
    a = (a ^ (a >> 13)) * 0x27D4EB2Fu + 7;
    a = (a ^ (a >> 9)) * 0x165667B1u + n * 9;
    a = (a ^ (a >> 3)) * 0xD3A2646Cu + 11;
    a = (a ^ (a >> 15)) * 0xFD7046C5u + n * 13;
    a = (a ^ (a >> 6)) * 0xB55A4F09u + 17;
    a = (a ^ (a >> 10)) * 0x9E3779B9u + n * 19;
    a = (a ^ (a >> 4)) * 0x7FEB352Du + 23;
  } while (--n);
  return a;
}

/* Recursion through the entry: each level is a call the hook sees. */
int (*volatile SB_SHAPE(self))(int);
NOINLINE int SB_SHAPE(recurse)(int n) { return n <= 0 ? 1 : n + SB_SHAPE(self)(n - 1) * 2; }

/* Integer arguments beyond the registers. */
NOINLINE long SB_SHAPE(many)(long a, int b, short c, signed char d, long e, long f, long g, unsigned h, long i,
                             long j, long k, long l) {
  return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * (long)h + 9 * i + 10 * j + 11 * k + 12 * l;
}

/* Floating point. */
NOINLINE double SB_SHAPE(floats)(double a, float b, double c, int n) { return a * b - c / (n + 0.5); }

/* A 16-byte struct by value. */
NOINLINE long SB_SHAPE(pair)(struct sb_shape_pair p, long k) { return p.a * k - p.b; }

const struct sb_shape_table SB_CAT(SB_SHAPE_PREFIX, table) = {
    SB_SHAPE(tiny),  SB_SHAPE(zero),      SB_SHAPE(empty),
    SB_SHAPE(rip_first), SB_SHAPE(early_branch), SB_SHAPE(jump_table),
    SB_SHAPE(spin),  SB_SHAPE(count_down), SB_SHAPE(sumto),       SB_SHAPE(long_loop), SB_SHAPE(recurse),
    &SB_SHAPE(self), SB_SHAPE(many),       SB_SHAPE(floats),      SB_SHAPE(pair),
};
