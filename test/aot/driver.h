/* The tables test/aot_test.cpp generates (cases.c) for driver.c. */
#ifndef SB_AOT_DRIVER_H
#define SB_AOT_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "sb_aot.h"

struct sb_step {
  const char *name;
  uint64_t (*fn)(void *mem, size_t len);
  const unsigned char *mem;
  size_t len;
  int consume; /* then read every ring buffer */
};
struct sb_dump_map {
  const char *name;
  struct sb_map *map;
};
struct sb_dump_data {
  const char *name;
  const unsigned char *data;
  size_t size;
};
extern const struct sb_step sb_steps[];
extern const size_t sb_num_steps;
extern const struct sb_dump_map sb_dump_maps[];
extern const size_t sb_num_dump_maps;
extern const struct sb_dump_data sb_dump_data[];
extern const size_t sb_num_dump_data;

#endif
