// The Linux kernel's own verifier selftests (tools/testing/selftests/bpf/
// verifier/*.c of the kernel tree, the test_verifier corpus), as a table
// the agreement test (test/kernel_verifier_test.cpp) reads. The tests are
// C initialisers of the kernel's `struct bpf_test`; test/
// kernel_verifier_corpus.c compiles them (unpacked from the Debian kernel
// source tarball at build time, never vendored) and flattens them to this.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// The maps a test asks the harness to create: for each kind, the indexes of
// the lddw instructions that load its fd (the kernel's fixup_* fields).
enum kv_map_kind {
  KV_HASH_8B,       // hash, key 8, value 8
  KV_HASH_48B,      // hash, key 8, value 48 (struct test_val)
  KV_HASH_16B,      // hash, key 8, value 16 (struct other_val)
  KV_ARRAY_48B,     // array, value 48
  KV_PROG1,         // program array
  KV_PROG2,         // program array
  KV_RINGBUF,       // ring buffer
  KV_ARRAY_RO,      // array, BPF_F_RDONLY_PROG
  KV_ARRAY_WO,      // array, BPF_F_WRONLY_PROG
  KV_ARRAY_SMALL,   // array, value 1
  KV_OTHER,         // any map kind the harness does not create (sockmap, cgroup storage, spin lock, timer, kptr, ...)
  KV_MAP_KINDS
};

enum { KV_MAX_FIXUPS = 8 };

struct kv_insn {  // struct bpf_insn's layout
  uint8_t code;
  uint8_t regs;  // dst:4 | src:4 (little endian)
  int16_t off;
  int32_t imm;
};

struct kv_case {
  const char* file;   // the source file without ".c": "and", "bounds", ...
  const char* descr;
  const struct kv_insn* insns;
  size_t len;
  int accept;         // .result == ACCEPT or VERBOSE_ACCEPT (privileged)
  const char* errstr; // the expected log text (may be empty)
  uint32_t prog_type; // 0: the kernel's harness loads BPF_PROG_TYPE_SOCKET_FILTER
  uint32_t expected_attach_type;
  uint32_t prog_flags;   // BPF_F_* flags to load with
  int fixups[KV_MAP_KINDS][KV_MAX_FIXUPS];  // 0-terminated lddw indexes per map kind
  int generated;      // the program is built by a fill helper in test_verifier.c (not in the table)
  int kfunc;          // calls a kernel function by BTF id or needs BTF (func_info, btf_types)
};

// Every test of every file, in file order (the file names sorted).
size_t kv_cases(const struct kv_case** out);

#ifdef __cplusplus
}
#endif
