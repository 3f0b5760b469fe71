/* The runtime of sb_aot.h: maps and helpers for ahead-of-time objects. */
#include "sb_aot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HASH = 1, ARRAY = 2, PERCPU_ARRAY = 6, RINGBUF = 27 };
enum { ANY = 0, NOEXIST = 1, EXIST = 2 };

struct sb_trap_info sb_last_trap;

static void trace_to_stderr(const char *text, size_t len) { fwrite(text, 1, len, stderr); }
void (*sb_trace_sink)(const char *text, size_t len) = trace_to_stderr;

static size_t round8(size_t n) { return (n + 7) / 8 * 8; }
static size_t key_stride(const struct sb_map *m) { return round8(m->key_size); }
static size_t slot_size(const struct sb_map *m) {
  return m->type == HASH ? 8 + key_stride(m) + round8(m->value_size) : round8(m->value_size);
}

static unsigned char *storage(struct sb_map *m) {
  if (!m->storage) {
    /* A ring buffer: producer and consumer positions, then twice its size,
     * so that a record that wraps stays contiguous where it was written. */
    m->storage = m->type == RINGBUF ? calloc(1, 16 + 2 * (size_t)m->max_entries)
                                    : calloc(m->max_entries ? m->max_entries : 1, slot_size(m));
    if (!m->storage) abort();
  }
  return m->storage;
}

static unsigned char *slot(struct sb_map *m, uint32_t i) { return storage(m) + (size_t)i * slot_size(m); }
static unsigned char *hash_key(struct sb_map *m, uint32_t i) { return slot(m, i) + 8; }
static unsigned char *hash_value(struct sb_map *m, uint32_t i) { return slot(m, i) + 8 + key_stride(m); }

static int64_t hash_find(struct sb_map *m, const void *key) {
  for (uint32_t i = 0; i < m->max_entries; ++i)
    if (slot(m, i)[0] && memcmp(hash_key(m, i), key, m->key_size) == 0) return i;
  return -1;
}

static int is_array(const struct sb_map *m) { return m->type == ARRAY || m->type == PERCPU_ARRAY; }

void *sb_map_lookup(struct sb_map *m, const void *key) {
  if (!m || !key) return NULL;
  if (is_array(m)) {
    uint32_t i;
    memcpy(&i, key, 4);
    return i < m->max_entries ? slot(m, i) : NULL;
  }
  if (m->type == HASH) {
    int64_t i = hash_find(m, key);
    return i < 0 ? NULL : hash_value(m, (uint32_t)i);
  }
  return NULL;
}

void sb_map_for_each(struct sb_map *m, void (*fn)(const void *, void *, void *), void *arg) {
  if (m->type != HASH) return;
  for (uint32_t i = 0; i < m->max_entries; ++i)
    if (slot(m, i)[0]) fn(hash_key(m, i), hash_value(m, i), arg);
}

static struct sb_map *map_of(uint64_t handle) { return (struct sb_map *)(uintptr_t)handle; }
static const void *ptr(uint64_t v) { return (const void *)(uintptr_t)v; }
static uint64_t err(int64_t e) { return (uint64_t)e; }

uint64_t sb_helper_map_lookup_elem(uint64_t map, uint64_t key, uint64_t r3, uint64_t r4, uint64_t r5) {
  (void)r3, (void)r4, (void)r5;
  return (uint64_t)(uintptr_t)sb_map_lookup(map_of(map), ptr(key));
}

uint64_t sb_helper_map_update_elem(uint64_t map, uint64_t key, uint64_t value, uint64_t flags, uint64_t r5) {
  (void)r5;
  struct sb_map *m = map_of(map);
  if (!m || !key || !value || flags > EXIST) return err(-EINVAL);
  if (is_array(m)) {
    uint32_t i;
    memcpy(&i, ptr(key), 4);
    if (i >= m->max_entries) return err(-E2BIG);
    if (flags == NOEXIST) return err(-EEXIST); /* every element of an array exists */
    memcpy(slot(m, i), ptr(value), m->value_size);
    return 0;
  }
  if (m->type != HASH) return err(-EINVAL);
  int64_t i = hash_find(m, ptr(key));
  if (i >= 0) {
    if (flags == NOEXIST) return err(-EEXIST);
    memcpy(hash_value(m, (uint32_t)i), ptr(value), m->value_size);
    return 0;
  }
  if (flags == EXIST) return err(-ENOENT);
  for (uint32_t k = 0; k < m->max_entries; ++k)
    if (!slot(m, k)[0]) {
      slot(m, k)[0] = 1;
      memcpy(hash_key(m, k), ptr(key), m->key_size);
      memcpy(hash_value(m, k), ptr(value), m->value_size);
      return 0;
    }
  return err(-E2BIG);
}

uint64_t sb_helper_map_delete_elem(uint64_t map, uint64_t key, uint64_t r3, uint64_t r4, uint64_t r5) {
  (void)r3, (void)r4, (void)r5;
  struct sb_map *m = map_of(map);
  if (!m || !key || m->type != HASH) return err(-EINVAL);
  int64_t i = hash_find(m, ptr(key));
  if (i < 0) return err(-ENOENT);
  memset(slot(m, (uint32_t)i), 0, slot_size(m));
  return 0;
}

/* Ring buffers: the kernel's 8-byte record header (length with busy and
 * discard bits, then a page offset, unused here), records rounded up to 8
 * bytes, at most size - 1 bytes not yet consumed. */
enum { BUSY = 1u << 31, DISCARD = 1u << 30, HEADER = 8 };

static int is_ring(const struct sb_map *m) {
  return m && m->type == RINGBUF && m->max_entries && (m->max_entries & (m->max_entries - 1)) == 0;
}
static uint64_t *ring_pos(struct sb_map *m) { return (uint64_t *)(void *)storage(m); } /* [0] producer, [1] consumer */
static unsigned char *ring_data(struct sb_map *m) { return storage(m) + 16; }

uint64_t sb_helper_ringbuf_reserve(uint64_t ring, uint64_t size, uint64_t flags, uint64_t r4, uint64_t r5) {
  (void)r4, (void)r5;
  struct sb_map *m = map_of(ring);
  if (!is_ring(m) || flags != 0 || size > UINT32_MAX / 4) return 0;
  uint64_t *pos = ring_pos(m);
  const uint64_t len = round8(size + HEADER);
  if (pos[0] + len - pos[1] > m->max_entries - 1) return 0;
  unsigned char *hdr = ring_data(m) + (pos[0] & (m->max_entries - 1));
  const uint32_t header[2] = {(uint32_t)size | BUSY, 0};
  memcpy(hdr, header, sizeof header);
  pos[0] += len;
  return (uint64_t)(uintptr_t)(hdr + HEADER);
}

static void ring_commit(uint64_t sample, int discard) {
  if (!sample) return;
  unsigned char *hdr = (unsigned char *)(uintptr_t)sample - HEADER;
  uint32_t len;
  memcpy(&len, hdr, 4);
  len = (len & ~(uint32_t)BUSY) | (discard ? DISCARD : 0);
  memcpy(hdr, &len, 4);
}

uint64_t sb_helper_ringbuf_submit(uint64_t sample, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5) {
  (void)r2, (void)r3, (void)r4, (void)r5;
  ring_commit(sample, 0);
  return 0;
}

uint64_t sb_helper_ringbuf_discard(uint64_t sample, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5) {
  (void)r2, (void)r3, (void)r4, (void)r5;
  ring_commit(sample, 1);
  return 0;
}

uint64_t sb_helper_ringbuf_output(uint64_t ring, uint64_t data, uint64_t size, uint64_t flags, uint64_t r5) {
  (void)r5;
  if (!is_ring(map_of(ring)) || (!data && size) || (flags & ~(uint64_t)3)) return err(-EINVAL);
  const uint64_t rec = sb_helper_ringbuf_reserve(ring, size, 0, 0, 0);
  if (!rec) return err(-EAGAIN);
  if (size) memcpy((void *)(uintptr_t)rec, ptr(data), size);
  ring_commit(rec, 0);
  return 0;
}

size_t sb_ringbuf_consume(struct sb_map *m, void (*fn)(const void *, size_t, void *), void *arg) {
  if (!is_ring(m)) return 0;
  uint64_t *pos = ring_pos(m);
  size_t seen = 0;
  while (pos[1] < pos[0]) {
    const unsigned char *hdr = ring_data(m) + (pos[1] & (m->max_entries - 1));
    uint32_t len;
    memcpy(&len, hdr, 4);
    if (len & BUSY) break;
    const uint32_t size = len & ~(uint32_t)(BUSY | DISCARD);
    pos[1] += round8((size_t)size + HEADER);
    if (!(len & DISCARD)) {
      fn(hdr + HEADER, size, arg);
      ++seen;
    }
  }
  return seen;
}

/* trace_printk: the conversions of runtime/helpers/std_helpers.cpp. */
enum { MAX_FORMAT = 1024, MAX_STRING = 512, MAX_ARGS = 3, MAX_LINE = 4096 };

struct line {
  char text[MAX_LINE];
  size_t len;
};

static void append(struct line *l, const char *s, size_t n) {
  if (n > MAX_LINE - 1 - l->len) n = MAX_LINE - 1 - l->len;
  memcpy(l->text + l->len, s, n);
  l->len += n;
}

/* One conversion at f[*i] (after the '%'); 0 when malformed. */
static int convert(const char *f, size_t n, size_t *i, uint64_t arg, struct line *out) {
  char spec[24] = "%";
  size_t s = 1, k, longs = 0;
  for (k = 0; *i < n && f[*i] && strchr("-+ #0", f[*i]); ++k, ++*i) {
    if (k == 5) return 0;
    spec[s++] = f[*i];
  }
  for (k = 0; *i < n && f[*i] >= '0' && f[*i] <= '9'; ++k, ++*i) {
    if (k == 3) return 0;
    spec[s++] = f[*i];
  }
  if (*i < n && f[*i] == '.') {
    spec[s++] = f[(*i)++];
    for (k = 0; *i < n && f[*i] >= '0' && f[*i] <= '9'; ++k, ++*i) {
      if (k == 3) return 0;
      spec[s++] = f[*i];
    }
  }
  for (; *i < n && (f[*i] == 'l' || f[*i] == 'h' || f[*i] == 'z'); ++*i)
    if (f[*i] != 'h' && ++longs > 2) return 0;
  if (*i >= n) return 0;
  const char conv = f[*i];
  char buf[MAX_STRING + 1024];
  int w = -1;
  switch (conv) {
    case 'd': case 'i':
      strcpy(spec + s, longs ? "lld" : "d");
      w = longs ? snprintf(buf, sizeof buf, spec, (long long)arg) : snprintf(buf, sizeof buf, spec, (int)(uint32_t)arg);
      break;
    case 'u': case 'x': case 'X': {
      const char tail[4] = {longs ? 'l' : conv, longs ? 'l' : 0, longs ? conv : 0, 0};
      strcpy(spec + s, tail);
      w = longs ? snprintf(buf, sizeof buf, spec, (unsigned long long)arg)
                : snprintf(buf, sizeof buf, spec, (unsigned)(uint32_t)arg);
      break;
    }
    case 'c':
      strcpy(spec + s, "c");
      w = snprintf(buf, sizeof buf, spec, (int)(uint8_t)arg);
      break;
    case 's': {
      char str[MAX_STRING + 1] = "";
      if (arg) strncpy(str, (const char *)ptr(arg), MAX_STRING);
      strcpy(spec + s, "s");
      w = snprintf(buf, sizeof buf, spec, str);
      break;
    }
    case 'p':
      if (*i + 1 < n && f[*i + 1] == 'x') ++*i; /* %px: the raw value, as %p */
      w = snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)arg); /* as fmt {:#x}: 0 is 0x0 */
      break;
    default:
      return 0;
  }
  if (w < 0) return 0;
  append(out, buf, (size_t)w < sizeof buf ? (size_t)w : sizeof buf - 1);
  return 1;
}

uint64_t sb_helper_trace_printk(uint64_t fmt, uint64_t fmt_size, uint64_t a1, uint64_t a2, uint64_t a3) {
  if (!fmt || !fmt_size || fmt_size > MAX_FORMAT) return err(-EINVAL);
  const char *f = (const char *)ptr(fmt);
  const char *nul = memchr(f, 0, fmt_size);
  if (!nul) return err(-EINVAL);
  const size_t n = (size_t)(nul - f);
  const uint64_t args[MAX_ARGS] = {a1, a2, a3};
  int used = 0;
  static struct line out; /* one run at a time (see sb_aot.h) */
  out.len = 0;
  for (size_t i = 0; i < n; ++i) {
    if (f[i] != '%') {
      append(&out, f + i, 1);
      continue;
    }
    if (i + 1 < n && f[i + 1] == '%') {
      append(&out, "%", 1);
      ++i;
      continue;
    }
    if (used == MAX_ARGS) return err(-EINVAL);
    ++i;
    if (!convert(f, n, &i, args[used++], &out)) return err(-EINVAL);
  }
  const size_t written = out.len;
  if (out.len == 0 || out.text[out.len - 1] != '\n') append(&out, "\n", 1);
  sb_trace_sink(out.text, out.len);
  return written;
}

uint64_t sb_helper_unwind(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5) {
  (void)r2, (void)r3, (void)r4, (void)r5;
  return r1;
}

uint64_t sb_trap(uint64_t code, uint64_t insn, void *program) {
  sb_last_trap.code = code;
  sb_last_trap.insn = insn;
  sb_last_trap.program = program;
  ++sb_last_trap.count;
  return 0;
}
