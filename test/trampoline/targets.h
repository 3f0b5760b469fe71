/* Target functions for trampolines run in Unicorn (test/trampoline_test.cpp).
 * targets.c is compiled three ways: into the test binary (the expected
 * values), and at test time by each architecture's cross compiler (the code
 * the trampolines call in the guest). So every function is a leaf that uses
 * no globals and no constant pool: the object's .text needs no relocation.
 * Floating-point constants would be loaded from .rodata; there are none. */
#ifndef SB_TEST_TRAMPOLINE_TARGETS_H
#define SB_TEST_TRAMPOLINE_TARGETS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sb_tt_s16 { int64_t a, b; };          /* two integer words */
struct sb_tt_s12 { int32_t a, b, c; };       /* two words, the second half used */
struct sb_tt_s8 { int32_t a; int16_t b; };   /* one word */

int64_t sb_tt_add(int64_t a, int64_t b);
/* 12 integer arguments of mixed widths: some on the stack everywhere. */
int64_t sb_tt_many(int8_t a, uint16_t b, int32_t c, uint64_t d, int64_t e, int8_t f, int16_t g, uint32_t h,
                   int64_t i, const int64_t* j, int32_t k, uint8_t l);
/* Ten floating-point arguments among two integers: on riscv64 the ninth and
 * tenth go to integer registers, on x86-64 to the stack. */
double sb_tt_fmix(float a, int32_t n, double b, float c, double d, float e, double f, float g, double h, float i,
                  double j, int64_t m);
float sb_tt_fmul(float a, float b);
double sb_tt_fdiv(double a, double b);
int64_t sb_tt_structs(struct sb_tt_s16 x, struct sb_tt_s12 y, int64_t k);
/* A struct after seven integers: split between a7 and the stack on riscv64,
 * wholly on the stack on x86-64. */
int64_t sb_tt_split(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, int64_t f, int64_t g, struct sb_tt_s16 s,
                    int64_t h);
/* A struct that does not fit in the last integer register: on x86-64 it
 * goes to the stack and the next integer still takes that register. */
int64_t sb_tt_backfill(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, struct sb_tt_s16 s, int64_t h,
                       struct sb_tt_s8 t);
void sb_tt_store(int64_t* p, int64_t v);
int64_t sb_tt_side(int64_t* p, int64_t v);
/* Narrow integers: results the ABI extends, and a compare whose constant
 * riscv64 code keeps sign-extended (it relies on the caller sign-extending
 * a 32-bit unsigned argument, as LP64 requires). */
uint32_t sb_tt_u32(uint32_t a, int8_t b);
int16_t sb_tt_i16(int16_t a, uint8_t b);
int32_t sb_tt_below(uint32_t a);

#ifdef __cplusplus
}
#endif

#endif
