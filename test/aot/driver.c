/* The driver test/aot_test.cpp links with ahead-of-time objects, the
 * runtime (runtime/aot/sb_aot.c) and the cases it generates (cases.c, the
 * declarations below): runs each step and prints, one line each,
 *
 *   trace NAME: TEXT           a trace_printk line, as it happens
 *   run NAME r0=0x.. mem=HEX   after each step, with " trap=CODE:INSN" when
 *                              the program faulted (sb_trap)
 *   ring NAME HEX              each ring buffer record, after the steps that
 *                              consume and at the end
 *   map NAME [i] HEX           at the end: arrays by index,
 *   map NAME KEY -> VALUE      hash maps by slot (the test sorts them),
 *   data NAME HEX              and global data,
 *
 * which the test compares with the interpreter's run of the same steps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "sb_aot.h"


static const char *current;

static void print_hex(const void *p, size_t n) {
  for (size_t i = 0; i < n; ++i) printf("%02x", ((const unsigned char *)p)[i]);
}

static void trace_line(const char *text, size_t len) {
  printf("trace %s: ", current);
  fwrite(text, 1, len, stdout); /* ends in a newline */
}

struct each {
  const char *name;
  const struct sb_map *map;
};
static void print_element(const void *key, void *value, void *arg) {
  const struct each *e = arg;
  printf("map %s ", e->name);
  print_hex(key, e->map->key_size);
  printf(" -> ");
  print_hex(value, e->map->value_size);
  printf("\n");
}

static void print_record(const void *record, size_t size, void *arg) {
  printf("ring %s ", (const char *)arg);
  print_hex(record, size);
  printf("\n");
}

static void consume_rings(void) {
  for (size_t m = 0; m < sb_num_dump_maps; ++m)
    if (sb_dump_maps[m].map->type == 27)
      sb_ringbuf_consume(sb_dump_maps[m].map, print_record, (void *)sb_dump_maps[m].name);
}

int main(void) {
  sb_trace_sink = trace_line;
  for (size_t s = 0; s < sb_num_steps; ++s) {
    const struct sb_step *st = &sb_steps[s];
    unsigned char *mem = malloc(st->len ? st->len : 1);
    if (!mem) return 2;
    if (st->len) memcpy(mem, st->mem, st->len);
    current = st->name;
    const uint64_t traps = sb_last_trap.count;
    const uint64_t r0 = st->fn(mem, st->len);
    printf("run %s r0=%#llx mem=", st->name, (unsigned long long)r0);
    print_hex(mem, st->len);
    if (sb_last_trap.count != traps)
      printf(" trap=%llu:%llu", (unsigned long long)sb_last_trap.code, (unsigned long long)sb_last_trap.insn);
    printf("\n");
    free(mem);
    if (st->consume) consume_rings();
  }
  consume_rings();
  for (size_t m = 0; m < sb_num_dump_maps; ++m) {
    struct sb_map *map = sb_dump_maps[m].map;
    if (map->type == 27) continue;
    if (map->type == 1) {
      struct each e = {sb_dump_maps[m].name, map};
      sb_map_for_each(map, print_element, &e);
      continue;
    }
    for (uint32_t i = 0; i < map->max_entries; ++i) {
      printf("map %s [%u] ", sb_dump_maps[m].name, i);
      print_hex(sb_map_lookup(map, &i), map->value_size);
      printf("\n");
    }
  }
  for (size_t d = 0; d < sb_num_dump_data; ++d) {
    printf("data %s ", sb_dump_data[d].name);
    print_hex(sb_dump_data[d].data, sb_dump_data[d].size);
    printf("\n");
  }
  return 0;
}
