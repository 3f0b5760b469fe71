/* A small portable C runtime for Springboard's ahead-of-time objects
 * (`springboard compile PROGRAM --emit obj`, backends/aot.h): the helpers
 * and maps those objects refer to by symbol, in C11, for any Linux target
 * (tests build it with gcc for x86-64, arm64 and riscv64).
 *
 *   SB_MAP(name, type, key_size, value_size, max_entries);
 *
 * defines the map `name` of a program (its symbol sb_map_<name>), with the
 * kernel's numbering of types: 1 hash, 2 array, 6 per-CPU array (one copy
 * here: the runtime has a single "CPU"), 27 ring buffer (max_entries bytes,
 * a power of two). Storage is allocated on first use.
 *
 * Helpers, by the standard table's names (runtime/helpers/std_helpers.h):
 *   sb_helper_map_lookup_elem / map_update_elem / map_delete_elem   ids 1-3,
 *       the kernel's semantics and errors (-EEXIST, -ENOENT, -E2BIG, -EINVAL)
 *   sb_helper_trace_printk        id 6: the kernel's conversions (as
 *       runtime/helpers/std_helpers.h), each call one line to sb_trace_sink
 *   sb_helper_ringbuf_output / reserve / submit / discard   ids 130-133, the
 *       kernel's record format and accounting; sb_ringbuf_consume reads them
 *   sb_helper_unwind              id 5 of the conformance table: returns r1
 *       (a result of 0 ends the program; the object does that itself)
 * and sb_trap, which records the fault (sb_last_trap) and returns 0.
 *
 * Not thread-safe: one program run at a time.
 */
#ifndef SB_AOT_H
#define SB_AOT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sb_map {
  uint32_t type, key_size, value_size, max_entries;
  unsigned char *storage; /* max_entries slots: [used byte, key, value] for a hash */
};

#define SB_MAP(name, type, key_size, value_size, max_entries) \
  struct sb_map sb_map_##name = {(type), (key_size), (value_size), (max_entries), 0}

/* Where one program's fault went: code (1: callx of an unregistered
 * helper), the bytecode instruction, the program's function. */
struct sb_trap_info {
  uint64_t code, insn;
  void *program;
  uint64_t count; /* faults so far */
};
extern struct sb_trap_info sb_last_trap;

/* trace_printk output, one call per line (default: standard error). */
extern void (*sb_trace_sink)(const char *text, size_t len);

/* Helpers' address and value views of a map (for embedders and tests). */
void *sb_map_lookup(struct sb_map *map, const void *key);
/* Hash maps: calls fn for every element, in slot order. */
void sb_map_for_each(struct sb_map *map, void (*fn)(const void *key, void *value, void *arg), void *arg);
/* Ring buffers: calls fn for every submitted record, oldest first, and
 * frees their space; returns how many. */
size_t sb_ringbuf_consume(struct sb_map *map, void (*fn)(const void *record, size_t size, void *arg), void *arg);

uint64_t sb_helper_map_lookup_elem(uint64_t map, uint64_t key, uint64_t, uint64_t, uint64_t);
uint64_t sb_helper_map_update_elem(uint64_t map, uint64_t key, uint64_t value, uint64_t flags, uint64_t);
uint64_t sb_helper_map_delete_elem(uint64_t map, uint64_t key, uint64_t, uint64_t, uint64_t);
uint64_t sb_helper_trace_printk(uint64_t fmt, uint64_t fmt_size, uint64_t a1, uint64_t a2, uint64_t a3);
uint64_t sb_helper_ringbuf_output(uint64_t ring, uint64_t data, uint64_t size, uint64_t flags, uint64_t);
uint64_t sb_helper_ringbuf_reserve(uint64_t ring, uint64_t size, uint64_t flags, uint64_t, uint64_t);
uint64_t sb_helper_ringbuf_submit(uint64_t sample, uint64_t flags, uint64_t, uint64_t, uint64_t);
uint64_t sb_helper_ringbuf_discard(uint64_t sample, uint64_t flags, uint64_t, uint64_t, uint64_t);
uint64_t sb_helper_unwind(uint64_t r1, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t sb_trap(uint64_t code, uint64_t insn, void *program);

#ifdef __cplusplus
}
#endif

#endif
