// Prototypes in BTF for fentry/fexit sections (elf_test.cpp,
// btf_signature): static stubs that nothing calls, each the prototype of a
// user-space function, as a tracing object declares its targets.
#include "sb_bpf.h"

struct pair {
  int a;
  long b;
};
struct nested {
  struct pair p;
};
typedef unsigned short port_t;

__attribute__((used, noinline)) static long two_args(long a, int b) { return a + b; }
__attribute__((used, noinline)) static void mixed(const char* s, port_t p, double d, _Bool flag) {}
__attribute__((used, noinline)) static int by_value(struct pair p, float f) { return p.a; }
__attribute__((used, noinline)) static int nests(struct nested n) { return n.p.a; }

SEC("xdp")
int prog(void* ctx) { return 2; }
