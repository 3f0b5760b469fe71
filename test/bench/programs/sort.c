// Insertion sort of 256 u32. The first 1 KiB of the input is the unsorted
// array, left as it is; each of its elements is inserted into the sorted
// prefix of the array in the second 1 KiB. Returns a checksum of the
// sorted array and the insertion positions.
//
// The insertion is a global function, which the kernel's verifier checks
// once for any prefix length: inline, it would follow every (i, j) pair of
// the nested loops and run out of its instruction budget.
#include "bench.h"

#define SORT_N 256
#define SORT_BYTES (2 * SORT_N * 4)

struct sort_array {
  __u32 v[SORT_N];
};

// Inserts `key` into the sorted a->v[0..n); returns where it went. (The
// masks cost an AND each; without them clang walks a pointer down the
// array, whose offset the verifier cannot tie to the count that bounds it.)
#define SORT_AT(i) a->v[(i) & (SORT_N - 1)]
__noinline __u64 sort_insert(struct sort_array *a, __u64 n, __u32 key) {
  if (!a || n >= SORT_N) return 0;
  __u64 j = n;
  while (j > 0 && SORT_AT(j - 1) > key) {
    SORT_AT(j) = SORT_AT(j - 1);
    j--;
  }
  SORT_AT(j) = key;
  return j;
}

static __noinline __u64 sort_body(void *mem) {
  const __u32 *in = mem;
  struct sort_array *a = (struct sort_array *)(in + SORT_N);
  __u64 h = 0;
  for (__u64 i = 0; i < SORT_N; i++) h += sort_insert(a, i, in[i]);
  for (__u32 i = 0; i < SORT_N; i++) h = h * 31 + a->v[i];
  return h;
}

SB_BENCH(sort, SORT_BYTES)
