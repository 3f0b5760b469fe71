/* The register structs a probe's ctx is, as user space sees them (each
 * architecture's <asm/ptrace.h>; vmlinux.h would give the kernel's), for
 * the BPF programs built with -D__TARGET_ARCH_x86, _arm64 or _riscv on
 * this (x86-64) machine, whose <asm/ptrace.h> has only x86's. */
#if defined(__TARGET_ARCH_x86)
struct pt_regs {
  unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags,
      rsp, ss;
};
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
  __u64 regs[31];
  __u64 sp, pc, pstate;
};
#elif defined(__TARGET_ARCH_riscv)
struct user_regs_struct {
  unsigned long pc, ra, sp, gp, tp, t0, t1, t2, s0, s1, a0, a1, a2, a3, a4, a5, a6, a7, s2, s3, s4, s5, s6, s7, s8,
      s9, s10, s11, t3, t4, t5, t6;
};
#endif
