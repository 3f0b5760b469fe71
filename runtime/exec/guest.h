// A Unicorn guest in which native code of any target runs and is called the
// way a C caller of that target would call it: the harness for generated
// trampolines around cross-compiled functions (test/trampoline_test.cpp).
// runtime/exec/emulator.h runs one BPF program; a Guest holds any number of code
// blobs at addresses its user chooses, host functions that guest code may
// call, and calls guest functions with a native ir::Signature.
//
// Guest address space:
//   chosen by the user   code (map_code, read/execute) and data (map_data)
//   kHostBase            host function slots, 16 bytes each: a `return`
//                        instruction with a hook that calls the host function
//   stack_base()         the native stack, kStackSize bytes of this process's
//                        memory at their own address (so a pointer into it,
//                        a probe's pt_regs or a program's stack, means the
//                        same to host functions); sp starts at the top
//   kReturnAddr          the return address of call(): reaching it ends the call
//   map_host()           other memory of this process at its own address
//                        (maps, a target's image), as the emulator maps it
//
// Argument and result words are as a trampoline's ctx holds them
// (ir::Signature): integers sign- or zero-extended to 64 bits by their type,
// floats as their bits zero-extended, a struct as its 8-byte words. call()
// passes them as the target's C calling convention does (registers, the
// floating-point registers, the stack; backend::classify_args), extending
// narrow integers as that ABI requires, and by default filling the bits an
// ABI leaves undefined with garbage, so code relying on them fails.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "backends/target.h"
#include "ir/ir.h"

namespace sb::rt {

struct GuestCallOptions {
  uint64_t insn_budget = 10'000'000;  // native instructions; exceeding it is an error
  // Undefined bits of arguments (the upper half of a 32-bit integer on
  // x86-64 and arm64, of a float in an integer register or stack slot)
  // hold a pattern instead of zeros.
  bool poison_undefined_bits = true;
};

class Guest {
 public:
  static constexpr uint64_t kHostBase = 0x7fe00000;
  static constexpr uint64_t kHostSlots = 256;  // one page
  static constexpr uint64_t kSlotSize = 16;
  static constexpr uint64_t kStackSize = 0x10000;
  static constexpr uint64_t kReturnAddr = 0x7fff0000;

  // The host side of a slot: the guest's five helper-call argument
  // registers (BPF r1-r5) in, the return register out.
  using HostFunction = std::function<uint64_t(const std::array<uint64_t, 5>& args)>;

  explicit Guest(Arch arch);
  ~Guest();
  Guest(const Guest&) = delete;
  Guest& operator=(const Guest&) = delete;

  Arch arch() const;

  // Maps whole pages at `addr` (page-aligned) holding `code`, read/execute.
  void map_code(uint64_t addr, std::span<const uint8_t> code);
  // Maps `size` bytes (rounded up to pages) of zeroed read/write memory.
  void map_data(uint64_t addr, uint64_t size);
  // Maps this process's memory [addr, addr + size) (whole pages, which
  // must stay mapped while the guest lives) at the same guest address,
  // shared: guest stores are host stores. Read/write, and executable when
  // `executable`.
  void map_host(uint64_t addr, uint64_t size, bool executable = false);
  uint64_t stack_base() const;
  void write(uint64_t addr, const void* data, size_t size);
  // Writes over code that may have run already (a hook's entry patch):
  // also drops Unicorn's translations of it, which would otherwise still run.
  void write_code(uint64_t addr, const void* data, size_t size);
  void read(uint64_t addr, void* data, size_t size) const;
  uint64_t read_u64(uint64_t addr) const;
  void write_u64(uint64_t addr, uint64_t v) { write(addr, &v, 8); }

  // A new slot calling `fn`; returns its guest address. Throws after
  // kHostSlots functions.
  uint64_t add_host_function(HostFunction fn);

  // Calls the guest function at `addr` with `sig`'s arguments, `args` being
  // sig.words() words; returns the result word (0 for void): an integer
  // extended by its type from the return register, a float's bits from the
  // floating-point return register. Throws sb::Error on a fault, naming the
  // arch and guest address, and when the budget runs out.
  uint64_t call(uint64_t addr, const ir::Signature& sig, const std::vector<uint64_t>& args,
                const GuestCallOptions& opts = {});
  // The integer return register as the last call() left it, unextended.
  uint64_t raw_return() const { return raw_return_; }

 private:
  struct State;
  std::unique_ptr<State> s_;
  uint64_t raw_return_ = 0;
};

}  // namespace sb::rt
