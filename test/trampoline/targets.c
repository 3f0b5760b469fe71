/* See targets.h. */
#include "targets.h"

int64_t sb_tt_add(int64_t a, int64_t b) { return a * 2 + b; }

int64_t sb_tt_many(int8_t a, uint16_t b, int32_t c, uint64_t d, int64_t e, int8_t f, int16_t g, uint32_t h,
                   int64_t i, const int64_t* j, int32_t k, uint8_t l) {
  return a + 2 * b + 3 * c + 4 * (int64_t)d + 5 * e + 6 * f + 7 * g + 8 * (int64_t)h + 9 * i + 10 * *j + 11 * k +
         12 * l;
}

double sb_tt_fmix(float a, int32_t n, double b, float c, double d, float e, double f, float g, double h, float i,
                  double j, int64_t m) {
  return ((((a * b - c) * d + e) * f - g) * h + i) * j + (double)n - (double)m;
}

float sb_tt_fmul(float a, float b) { return a * b + a; }
double sb_tt_fdiv(double a, double b) { return a / b - b; }

int64_t sb_tt_structs(struct sb_tt_s16 x, struct sb_tt_s12 y, int64_t k) {
  return x.a * k + x.b - y.a * 3 + y.b * 5 + y.c;
}

int64_t sb_tt_split(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, int64_t f, int64_t g, struct sb_tt_s16 s,
                    int64_t h) {
  return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * s.a + 9 * s.b + 10 * h;
}

int64_t sb_tt_backfill(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, struct sb_tt_s16 s, int64_t h,
                       struct sb_tt_s8 t) {
  return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * s.a + 7 * s.b + 8 * h + 9 * t.a + 10 * t.b;
}

void sb_tt_store(int64_t* p, int64_t v) { *p = v; }

int64_t sb_tt_side(int64_t* p, int64_t v) {
  *p += v;
  return v + 1;
}

uint32_t sb_tt_u32(uint32_t a, int8_t b) { return a + (uint32_t)b; }
int16_t sb_tt_i16(int16_t a, uint8_t b) { return (int16_t)(a * b); }
int32_t sb_tt_below(uint32_t a) { return a < 0x80000005u; }
