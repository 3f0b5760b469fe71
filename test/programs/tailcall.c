// A pipeline of programs chained by tail calls through a program array
// that the object initialises itself (libbpf's `__array(values, ...)`):
// parse -> sum -> verdict, state passed in the packet's header (the ctx),
// which is all a tail call keeps. Slot 0 is empty (a fall-through), and
// slot 3 is a program that tail-calls itself until the kernel's limit.
#include "sb_bpf.h"

struct pkt {
  __u32 len;    // bytes of data used
  __u32 trail;  // one bit per stage that ran
  __u64 sum;
  __u32 loops;
  __u32 pad;
  __u8 data[32];
};

int sum(struct pkt *p);
int verdict(struct pkt *p);
int loop(struct pkt *p);

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, 4);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
  __array(values, int(struct pkt *));
} jmp_table SEC(".maps") = {
    .values = {[1] = (void *)&sum, [2] = (void *)&verdict, [3] = (void *)&loop},
};

enum { SLOT_EMPTY = 0, SLOT_SUM = 1, SLOT_VERDICT = 2, SLOT_LOOP = 3 };

// The first byte chooses the next stage; a failed tail call goes on here.
SEC("xdp") int parse(struct pkt *p) {
  if (p->len > sizeof(p->data)) p->len = sizeof(p->data);
  p->trail |= 1;
  __u32 next = p->data[0] & 3;
  bpf_tail_call(p, &jmp_table, next);
  return 1000 + next;
}

SEC("xdp/sum") int sum(struct pkt *p) {
  __u64 s = 0;
  for (__u32 i = 0; i < sizeof(p->data); i++)
    if (i < p->len) s = s * 31 + p->data[i];
  p->sum = s;
  p->trail |= 2;
  bpf_tail_call(p, &jmp_table, SLOT_VERDICT);
  return 2000;
}

SEC("xdp/verdict") int verdict(struct pkt *p) {
  p->trail |= 4;
  return (int)((p->sum & 0xffff) | (__u64)p->trail << 16);
}

// Entered by parse's tail call, it runs 33 times: the 33rd tail call into
// itself falls through (MAX_TAIL_CALL_CNT, counting parse's).
SEC("xdp/loop") int loop(struct pkt *p) {
  p->loops++;
  p->trail |= 8;
  bpf_tail_call(p, &jmp_table, SLOT_LOOP);
  return (int)(p->loops | p->trail << 16);
}
