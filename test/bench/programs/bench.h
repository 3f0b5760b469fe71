// The benchmark programs' common header (test/bench/jit_bench.cpp). One C
// source per program, compiled two ways:
//
//   clang -O2 -g -target bpf -c X.c        the BPF object every engine runs
//   gcc -O2 -fno-tree-vectorize -DSB_NATIVE  the native-C baseline (a shim entry)
//
// A program is a body, `static __noinline __u64 NAME_body(void *mem)`, that
// reads (and may write) BYTES bytes at `mem` and returns a checksum, and one
// SB_BENCH(NAME, BYTES) line that adds the entries around it:
//
//   NAME_mem(r1 = mem, r2 = len)  section "socket": Springboard's JIT and
//                                 interpreter run this, over the memory in r1/r2
//   NAME_xdp(ctx)                 section "xdp": the Linux kernel runs this via
//                                 BPF_PROG_TEST_RUN; its memory is the value of
//                                 the one-element array map `input`, and the
//                                 checksum goes to the array map `result`
//   sb_native_NAME(mem, len)      SB_NATIVE: the same body as a C function
//
// Both BPF entries call the one body subprogram, so the loops every engine
// times are the same bytecode. The kernel's verifier checks every access, so
// bodies use loop bounds and offsets it can prove against BYTES (constant
// trip counts, masks, clamps) and stay under its 1M-instruction budget.
#pragma once

#ifdef SB_NATIVE

#include <stdint.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef int32_t __s32;
typedef int64_t __s64;
#define __noinline __attribute__((noinline))

#define SB_BENCH(name, bytes)                                         \
  uint64_t sb_native_##name(void *mem, uint64_t len);                 \
  uint64_t sb_native_##name(void *mem, uint64_t len) {                \
    return len < (bytes) ? 0 : name##_body(mem);                      \
  }

#else  // BPF

// Types, SEC, the BTF map macros and the helpers: the test programs' header.
#include "../../programs/sb_bpf.h"

#define SB_BENCH(name, bytes)                                         \
  struct sb_input {                                                   \
    __u8 data[bytes];                                                   \
  };                                                                  \
  struct {                                                            \
    __uint(type, 2 /* BPF_MAP_TYPE_ARRAY */);                         \
    __uint(max_entries, 1);                                           \
    __type(key, __u32);                                               \
    __type(value, struct sb_input);                                   \
  } input SEC(".maps");                                               \
  struct {                                                            \
    __uint(type, 2 /* BPF_MAP_TYPE_ARRAY */);                         \
    __uint(max_entries, 1);                                           \
    __type(key, __u32);                                               \
    __type(value, __u64);                                             \
  } result SEC(".maps");                                              \
  SEC("socket") __u64 name##_mem(void *mem, __u64 len) {              \
    return len < (bytes) ? 0 : name##_body(mem);                      \
  }                                                                   \
  SEC("xdp") int name##_xdp(void *ctx) {                              \
    __u32 zero = 0;                                                   \
    void *mem = bpf_map_lookup_elem(&input, &zero);                   \
    __u64 *out = bpf_map_lookup_elem(&result, &zero);                 \
    if (!mem || !out) return 0; /* XDP_ABORTED */                     \
    *out = name##_body(mem);                                          \
    return 2; /* XDP_PASS */                                          \
  }

#endif
