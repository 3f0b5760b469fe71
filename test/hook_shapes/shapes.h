/* The table of target functions each build of shapes.c exports (see there). */
#ifndef SB_TEST_HOOK_SHAPES_H
#define SB_TEST_HOOK_SHAPES_H

#ifdef __cplusplus
extern "C" {
#endif

struct sb_shape_pair {
  long a, b;
};

struct sb_shape_table {
  int (*tiny)(int);
  int (*zero)(void);
  void (*empty)(void);
  int (*rip_first)(int);
  long (*early_branch)(const long*, long);
  long (*jump_table)(unsigned, long, long);
  int (*spin)(volatile int*);
  unsigned (*count_down)(unsigned, unsigned);
  int (*sumto)(const int*, int);
  unsigned (*long_loop)(unsigned, unsigned);
  int (*recurse)(int);
  int (*volatile* self)(int);
  long (*many)(long, int, short, signed char, long, long, long, unsigned, long, long, long, long);
  double (*floats)(double, float, double, int);
  long (*pair)(struct sb_shape_pair, long);
};

#ifdef __cplusplus
}
#endif

#endif
