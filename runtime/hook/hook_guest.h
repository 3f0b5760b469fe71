// Hooking the entry of a guest function (arm64, riscv64; run in Unicorn,
// runtime/exec/guest.h), or for a probe any instruction of it (below):
// the function's first instructions are replaced by a
// jump to a destination (a trampoline), and the instructions displaced by
// it are relocated into a stub that runs the original function when
// called (tramp::Bindings::original). runtime/hook/hook_x86_64.h does the same
// for x86-64 functions of this process.
//
// The entry patch, the shortest that reaches the destination:
//
//   arm64, destination within +-128 MiB (4 bytes)
//     target:      b     destination
//   arm64, farther (16 bytes)
//     target:      ldr   x16, 1f        x16 (IP0), the intra-procedure-call
//                  br    x16            scratch register: no caller expects it
//               1: .quad destination    kept and no function reads it at entry
//   riscv64, within +-1 MiB (4 bytes)
//     target:      jal   x0, destination
//   riscv64, within +-2 GiB (8 bytes)
//     target:      auipc t1, hi20(destination - target)
//                  jalr  x0, lo12(destination - target)(t1)
//                  t1 (x6): caller-saved and not an argument register; not
//                  t0 (the alternate link register of millicode calls) nor
//                  t2 (the static chain), which may be live at entry
//   (riscv64 refuses destinations beyond +-2 GiB.)
// Bytes of the last displaced instruction beyond the patch (riscv64 with
// compressed instructions) become c.ebreak: no branch may reach them.
//
// The stub, at a guest address the caller chooses:
//
//   stub:        <displaced instruction 1, relocated>
//                ...
//                <displaced instruction n, relocated>
//                jump  target + displaced         (absolute, through S; left out
//                                                  when instruction n never falls through)
//   arm64 only:  .p2align 3
//                literal pool: the absolute addresses the jumps load
//
// S, the stub's scratch register, is the first of x16, x17, x9..x15 (arm64;
// caller-saved temporaries, dead at entry) or t1, t3..t6 (riscv64) that no
// displaced instruction writes; a hook is refused when all of them are.
// Relocations (old_pc: the instruction's address in the function):
//
//   arm64                                  becomes
//   adr   xd, L / adrp xd, L               movz/movk xd, #L (absolute, the
//                                          backend's materializer)
//   ldr   xt|wt|ldrsw xt, L                movz/movk xt, #L; ldr xt|wt|ldrsw xt, [xt]
//   ldr   st|dt|qt, L / prfm op, L         movz/movk S, #L; ldr st|dt|qt, [S] / prfm op, [S]
//   b L / bl L                             ldr S, =L; br S / blr S   (bl's link: the stub's
//                                          next instruction, so the call returns into the stub)
//   b.cc L, cbz/cbnz rt, L, tbz/tbnz rt,#b,L   the inverse condition over: ldr S, =L; br S
//                                          (b.al / b.nv: the jump alone)
//   riscv64
//   auipc rd, imm                          li rd, old_pc + (imm << 12) (LUI/ADDI(W)/SLLI,
//                                          the backend's materializer)
//   jal rd, L / c.j L                      li S, L; jalr rd, 0(S)   (the link is the stub's
//                                          next instruction, so a call returns into the stub)
//   beq/bne/blt/bge/bltu/bgeu, c.beqz/c.bnez   the inverse branch over: li S, L; jalr x0, 0(S)
//   everything else (incl. other compressed instructions) is copied.
//
// Probes (GuestHookRequest::probe; frontend/trampoline.h, lower_probe)
// may go at any instruction of the function (`offset`, a uprobe at
// FUNC+OFF), where no register is dead, so nothing on the way from the
// probed instruction back into the function may write one:
//
//   - The patch is only the short one: arm64 `b` (+-128 MiB), riscv64
//     `jal x0` (+-1 MiB); the far ones, which write x16 / t1, only at the
//     entry. The guest's layout is Springboard's own (runtime/exec/guest.h):
//     the caller puts the probe and the stub near the function.
//   - The probe entry (backends/arm64/abi.cpp, backends/riscv64/abi.cpp,
//     ir::Function::Probe::next) saves every register in the pt_regs on
//     the stack, runs the programs, restores every register but x16 / t1,
//     which it needs for the indirect jump, and jumps to the stub with sp
//     still at the pt_regs. The stub starts by taking them back:
//
//       arm64:    ldr x16, [sp, #128]      regs[16]
//                 add sp, sp, #272         sizeof(user_pt_regs); flags kept
//       riscv64:  ld  t1, 48(sp)           x6 in user_regs_struct
//                 addi sp, sp, 256
//
//     Reading the saved value while the frame is still allocated (rather
//     than below sp after freeing it) stays right even where something may
//     write below sp between the two (a signal handler natively).
//   - The stub's jumps are direct, relative to stub_address: b / bl (arm64,
//     the inverse-condition skip then b), jal (riscv64, after the inverse
//     branch); a stub beyond their reach of its targets is refused. The one
//     relocation needing a scratch register, arm64's ldr (literal) of a
//     vector register or prfm, keeps S below sp around it (str S, [sp,
//     #-16]! ... ldr S, [sp], #16; AAPCS64 has no red zone).
//   - The offset must start an instruction: the function is decoded from
//     its start (bytes that do not decode stepped over) and an offset inside
//     an instruction is refused, naming the function and the offset.
//   - A probe fires whenever its instruction runs, as a breakpoint there
//     would: branches to it (a loop's head, the entry) are left going to
//     it, displaced ones too; branches to the later displaced bytes are
//     refused as for any hook, with the branch's address.
//   - The pt_regs hold the interrupted code's registers: pc the probed
//     address, sp as it was, every x / a register (at an entry reached
//     through a far patch, x16 / t1 hold what the patch wrote: dead there).
//     Programs do not write them (kprobe ctx is read-only); only ret_enter
//     (GuestReturnStack) replaces the link register, at an entry.
//
// Refused, with an sb::Error naming the function's address and the
// instruction (offset and disassembly): a function that ends (return,
// unconditional jump, trap) before the patch size or whose `size` is
// smaller; a branch targeting the displaced bytes after the first, among
// the displaced instructions and, when `size` is given, the rest of the
// function; a jump (not a call) from the rest of the function back to the
// entry itself, which would run the trampoline once per iteration of the
// loop it closes (a displaced jump to the entry goes to the stub's start);
// load-exclusive / load-reserved instructions (their sequence
// would be split); bytes that do not decode.
//
// Not detected: an indirect branch into the displaced bytes, or code that
// reads them as data. Not handled: arm64 BTI. A `bti c` at entry moves into
// the stub (which the trampoline enters with blr, as it should), but the
// patched entry no longer starts with a landing pad, so on a core that
// enforces BTI an indirect call to the function would fault; Unicorn does
// not enforce it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backends/target.h"

namespace sb::rt {

class Guest;

struct GuestHookRequest {
  Arch arch = Arch::Arm64;        // Arm64 or Riscv64
  uint64_t address = 0;           // the function's guest address
  std::span<const uint8_t> code;  // its bytes from `address`: at least the displaced
                                  // ones (16 suffice), the whole function with `size`
  uint64_t size = 0;              // the function's size when known, else 0
  uint64_t destination = 0;       // where the patched entry jumps: a trampoline
  uint64_t stub_address = 0;      // where the stub will be placed; 8-byte aligned
  // A probe (frontend/trampoline.h, lower_probe, whose Bindings::original
  // is the stub): the stub starts by taking back the probe's frame, and
  // the patch may be at `offset` inside the function (a probe at FUNC+OFF).
  bool probe = false;
  uint64_t offset = 0;  // the probed instruction, from `address`; 0 but for probes
};

enum class EntryPatch : uint8_t { Arm64B, Arm64LdrBr, Riscv64Jal, Riscv64AuipcJalr };
const char* entry_patch_name(EntryPatch p);

struct GuestHook {
  Arch arch;
  uint64_t address;       // what the patch replaces: the function's entry, or FUNC+OFF
  uint64_t stub_address;  // the stub; calling it runs the original function
  EntryPatch form;
  std::vector<uint8_t> patch;  // replaces patch.size() bytes at `address`
  std::vector<uint8_t> saved;  // those bytes before: writing them back unhooks
  std::vector<uint8_t> stub;   // to be placed at stub_address
  uint64_t original() const { return stub_address; }
  size_t displaced() const { return patch.size(); }
};

// Return probes in a guest (frontend/trampoline.h, lower_probe with
// lower_return_probe), as runtime/hook/tramp_runtime.h does them in this
// process: the probe at a function's entry calls `enter` (ret_enter),
// which keeps the return address (arm64 x30, riscv64 ra, x86-64 the word
// at sp, read from the pt_regs in guest memory) on this stack and puts the
// function's return probe (`landing`) in its place; the return probe
// calls `pop` (ret_pop), which gives it back and makes it the pt_regs'
// ip. Entries whose frame is gone (their sp below the current one) are
// dropped, as in this process. One guest runs one thread, so one stack.
class GuestReturnStack {
 public:
  GuestReturnStack(Guest& guest, Arch arch);
  uint64_t enter() const { return enter_; }  // guest addresses of the host functions
  uint64_t pop() const { return pop_; }
  size_t depth() const { return pending_.size(); }

 private:
  struct Pending {
    uint64_t ret, sp;
  };
  Guest& guest_;
  Arch arch_;
  std::vector<Pending> pending_;
  uint64_t enter_ = 0, pop_ = 0;
};

// Builds the patch and the stub; nothing is written. Throws sb::Error.
GuestHook build_guest_hook(const GuestHookRequest& req);

// Maps the stub at stub_address (page-aligned, not mapped yet) and writes
// the patch at hook.address (Guest::write_code: code that
// already ran is retranslated).
void install(Guest& guest, const GuestHook& hook);
// Writes the saved bytes back; the stub stays mapped (and callable).
void uninstall(Guest& guest, const GuestHook& hook);

}  // namespace sb::rt
