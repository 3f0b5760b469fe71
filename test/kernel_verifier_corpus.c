// Compiles the kernel's verifier selftests (see kernel_verifier_corpus.h).
// The build unpacks tools/testing/selftests/bpf/verifier/*.c and the
// instruction macros (tools/include/linux/filter.h) from the kernel source
// tarball and generates kv_tests.inc, which includes each file inside an
// array of `struct bpf_test` and lists the arrays (cmake/
// kernel_verifier_corpus.cmake). Below: the struct those initialisers fill,
// with the members they name, and the constants of test_verifier.c they use.
#include "test/kernel_verifier_corpus.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <linux/btf.h>
#include <linux/if_ether.h>
#include <linux/types.h>

#include "filter.h"  // BPF_MOV64_IMM and the other instruction macros
#include "test_btf.h"  // BTF_TYPE_INT_ENC and friends (one test builds BTF)

// test_verifier.c's sizes and values, as its tests expect them.
#define MAX_INSNS 512
#define MAX_EXPECTED_INSNS 32
#define MAX_UNEXPECTED_INSNS 32
#define MAX_FIXUPS 8
#define MAX_TEST_RUNS 8
#define MAX_FUNC_INFOS 8
#define MAX_BTF_STRINGS 256
#define MAX_BTF_TYPES 256
#define TEST_DATA_LEN 64
#define MAX_ENTRIES 11
#define POINTER_VALUE 0xcafe4all
#define INSN_OFF_MASK ((__s16)0xFFFF)
#define INSN_IMM_MASK ((__s32)0xFFFFFFFF)
#define SKIP_INSNS() BPF_RAW_INSN(0xde, 0xa, 0xd, 0xbeef, 0xdeadbeef)
#define F_NEEDS_EFFICIENT_UNALIGNED_ACCESS (1 << 0)
#define F_LOAD_WITH_STRICT_ALIGNMENT (1 << 1)

#ifndef offsetofend
#define offsetofend(TYPE, FIELD) (offsetof(TYPE, FIELD) + sizeof(((TYPE*)0)->FIELD))
#endif

// Instruction sequences test_verifier.c's tests use by name; their jump
// offsets count these instructions, so each expands to the same sequence.
// A socket lookup over a zeroed struct bpf_sock_tuple at fp-48 (13 insns).
#define BPF_SK_LOOKUP(func)                                                                        \
  BPF_MOV64_IMM(BPF_REG_2, 0), BPF_STX_MEM(BPF_W, BPF_REG_10, BPF_REG_2, -8),                      \
      BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_2, -16), BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_2, -24), \
      BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_2, -32), BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_2, -40), \
      BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_2, -48), BPF_MOV64_REG(BPF_REG_2, BPF_REG_10),          \
      BPF_ALU64_IMM(BPF_ADD, BPF_REG_2, -48), BPF_MOV64_IMM(BPF_REG_3, sizeof(struct bpf_sock_tuple)), \
      BPF_MOV64_IMM(BPF_REG_4, 0), BPF_MOV64_IMM(BPF_REG_5, 0), BPF_EMIT_CALL(BPF_FUNC_##func)
// r0 = 0, r2 = skb->data with 8 bytes proven against data_end, else exit (7 insns).
#define BPF_DIRECT_PKT_R2                                                                         \
  BPF_MOV64_IMM(BPF_REG_0, 0), BPF_LDX_MEM(BPF_W, BPF_REG_2, BPF_REG_1, offsetof(struct __sk_buff, data)), \
      BPF_LDX_MEM(BPF_W, BPF_REG_3, BPF_REG_1, offsetof(struct __sk_buff, data_end)),                 \
      BPF_MOV64_REG(BPF_REG_4, BPF_REG_2), BPF_ALU64_IMM(BPF_ADD, BPF_REG_4, 8),                     \
      BPF_JMP_REG(BPF_JLE, BPF_REG_4, BPF_REG_3, 1), BPF_EXIT_INSN()
// r7 = a random u32 < 2^31, zero-extended (4 insns).
#define BPF_RAND_UEXT_R7                                                                          \
  BPF_RAW_INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_prandom_u32), BPF_MOV64_REG(BPF_REG_7, BPF_REG_0), \
      BPF_ALU64_IMM(BPF_LSH, BPF_REG_7, 33), BPF_ALU64_IMM(BPF_RSH, BPF_REG_7, 33)
// r7 = a random negative 32-bit number, sign-extended (5 insns).
#define BPF_RAND_SEXT_R7                                                                          \
  BPF_RAW_INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_prandom_u32), BPF_MOV64_REG(BPF_REG_7, BPF_REG_0), \
      BPF_ALU64_IMM(BPF_OR, BPF_REG_7, 0x80000000), BPF_ALU64_IMM(BPF_LSH, BPF_REG_7, 32),           \
      BPF_ALU64_IMM(BPF_ARSH, BPF_REG_7, 32)

_Static_assert(sizeof(struct bpf_insn) == sizeof(struct kv_insn), "bpf_insn layout");

struct test_val {
  unsigned int index;
  int foo[MAX_ENTRIES];
};

struct other_val {
  long long foo;
  long long bar;
};

struct kfunc_btf_id_pair {
  const char* kfunc;
  int insn_idx;
};

struct bpf_test;
typedef void (*fill_fn)(struct bpf_test*);

struct bpf_test {
  const char* descr;
  struct bpf_insn insns[MAX_INSNS];
  struct bpf_insn expected_insns[MAX_EXPECTED_INSNS];
  struct bpf_insn unexpected_insns[MAX_UNEXPECTED_INSNS];
  int fixup_map_hash_8b[MAX_FIXUPS];
  int fixup_map_hash_48b[MAX_FIXUPS];
  int fixup_map_hash_16b[MAX_FIXUPS];
  int fixup_map_array_48b[MAX_FIXUPS];
  int fixup_map_sockmap[MAX_FIXUPS];
  int fixup_map_sockhash[MAX_FIXUPS];
  int fixup_map_xskmap[MAX_FIXUPS];
  int fixup_map_stacktrace[MAX_FIXUPS];
  int fixup_prog1[MAX_FIXUPS];
  int fixup_prog2[MAX_FIXUPS];
  int fixup_map_in_map[MAX_FIXUPS];
  int fixup_cgroup_storage[MAX_FIXUPS];
  int fixup_percpu_cgroup_storage[MAX_FIXUPS];
  int fixup_map_spin_lock[MAX_FIXUPS];
  int fixup_map_array_ro[MAX_FIXUPS];
  int fixup_map_array_wo[MAX_FIXUPS];
  int fixup_map_array_small[MAX_FIXUPS];
  int fixup_sk_storage_map[MAX_FIXUPS];
  int fixup_map_event_output[MAX_FIXUPS];
  int fixup_map_reuseport_array[MAX_FIXUPS];
  int fixup_map_ringbuf[MAX_FIXUPS];
  int fixup_map_timer[MAX_FIXUPS];
  int fixup_map_kptr[MAX_FIXUPS];
  struct kfunc_btf_id_pair fixup_kfunc_btf_id[MAX_FIXUPS];
  const char* errstr;
  const char* errstr_unpriv;
  uint32_t insn_processed;
  int prog_len;
  enum { UNDEF, ACCEPT, REJECT, VERBOSE_ACCEPT } result, result_unpriv;
  enum bpf_prog_type prog_type;
  uint8_t flags;
  fill_fn fill_helper;
  int runs;
  // The run's expectations (not used here: only accept/refuse is compared).
  uint32_t retval, retval_unpriv;
  union {
    __u8 data[TEST_DATA_LEN];
    __u64 data64[TEST_DATA_LEN / 8];
  };
  struct {
    uint32_t retval, retval_unpriv;
    union {
      __u8 data[TEST_DATA_LEN];
      __u64 data64[TEST_DATA_LEN / 8];
    };
  } retvals[MAX_TEST_RUNS];
  enum bpf_attach_type expected_attach_type;
  const char* kfunc;
  struct bpf_func_info func_info[MAX_FUNC_INFOS];
  int func_info_cnt;
  char btf_strings[MAX_BTF_STRINGS];
  __u32 btf_types[MAX_BTF_TYPES];
};

// The fill helpers of test_verifier.c build their programs at run time;
// the table marks those tests (`generated`) and the agreement test skips them.
static void kv_generated(struct bpf_test* t) { (void)t; }
#define bpf_fill_big_prog_with_loop_1 kv_generated
#define bpf_fill_jump_around_ld_abs kv_generated
#define bpf_fill_ld_abs_vlan_push_pop kv_generated
#define bpf_fill_rand_ld_dw kv_generated
#define bpf_fill_scale kv_generated
#define bpf_fill_torturous_jumps kv_generated

struct kv_file {
  const char* name;
  const struct bpf_test* tests;
  size_t count;
};

#include "kv_tests.inc"  // kv_files[], kv_file_count

static size_t program_length(const struct bpf_test* t) {
  size_t n = MAX_INSNS;
  if (t->prog_len) return (size_t)t->prog_len;
  while (n > 0) {
    const struct bpf_insn* in = &t->insns[n - 1];
    if (in->code || in->dst_reg || in->src_reg || in->off || in->imm) break;
    --n;
  }
  return n;
}

static void copy_fixups(int* to, const int* from) { memcpy(to, from, sizeof(int) * MAX_FIXUPS); }

static void convert(struct kv_case* c, const char* file, const struct bpf_test* t) {
  memset(c, 0, sizeof(*c));
  c->file = file;
  c->descr = t->descr;
  c->insns = (const struct kv_insn*)t->insns;
  c->len = program_length(t);
  c->accept = t->result == ACCEPT || t->result == VERBOSE_ACCEPT;
  c->errstr = t->errstr ? t->errstr : "";
  c->prog_type = (uint32_t)t->prog_type;
  c->expected_attach_type = (uint32_t)t->expected_attach_type;
  // As test_verifier.c loads: strict alignment on request, any alignment
  // for the tests written for CPUs with efficient unaligned access, and
  // every other bit passed through as a BPF_F_* flag.
  uint32_t flags = 0;
  if (t->flags & F_LOAD_WITH_STRICT_ALIGNMENT) flags |= BPF_F_STRICT_ALIGNMENT;
  if (t->flags & F_NEEDS_EFFICIENT_UNALIGNED_ACCESS) flags |= BPF_F_ANY_ALIGNMENT;
  if (t->flags & ~3) flags |= t->flags;
  c->prog_flags = flags;
  copy_fixups(c->fixups[KV_HASH_8B], t->fixup_map_hash_8b);
  copy_fixups(c->fixups[KV_HASH_48B], t->fixup_map_hash_48b);
  copy_fixups(c->fixups[KV_HASH_16B], t->fixup_map_hash_16b);
  copy_fixups(c->fixups[KV_ARRAY_48B], t->fixup_map_array_48b);
  copy_fixups(c->fixups[KV_PROG1], t->fixup_prog1);
  copy_fixups(c->fixups[KV_PROG2], t->fixup_prog2);
  copy_fixups(c->fixups[KV_RINGBUF], t->fixup_map_ringbuf);
  copy_fixups(c->fixups[KV_ARRAY_RO], t->fixup_map_array_ro);
  copy_fixups(c->fixups[KV_ARRAY_WO], t->fixup_map_array_wo);
  copy_fixups(c->fixups[KV_ARRAY_SMALL], t->fixup_map_array_small);
  const int* others[] = {t->fixup_map_sockmap,         t->fixup_map_sockhash,        t->fixup_map_xskmap,
                         t->fixup_map_stacktrace,      t->fixup_map_in_map,          t->fixup_cgroup_storage,
                         t->fixup_percpu_cgroup_storage, t->fixup_map_spin_lock,     t->fixup_sk_storage_map,
                         t->fixup_map_event_output,    t->fixup_map_reuseport_array, t->fixup_map_timer,
                         t->fixup_map_kptr};
  for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); ++i)
    if (others[i][0]) c->fixups[KV_OTHER][0] = others[i][0];
  c->generated = t->fill_helper != NULL;
  c->kfunc = t->kfunc != NULL || t->fixup_kfunc_btf_id[0].kfunc != NULL || t->func_info_cnt > 0 || t->btf_types[0] != 0;
}

size_t kv_cases(const struct kv_case** out) {
  static struct kv_case* cases;
  static size_t count;
  if (!cases) {
    size_t n = 0;
    for (size_t f = 0; f < kv_file_count; ++f) n += kv_files[f].count;
    static struct kv_case storage[4096];
    if (n > sizeof(storage) / sizeof(storage[0])) n = sizeof(storage) / sizeof(storage[0]);
    size_t at = 0;
    for (size_t f = 0; f < kv_file_count && at < n; ++f)
      for (size_t i = 0; i < kv_files[f].count && at < n; ++i) convert(&storage[at++], kv_files[f].name, &kv_files[f].tests[i]);
    cases = storage;
    count = at;
  }
  *out = cases;
  return count;
}
