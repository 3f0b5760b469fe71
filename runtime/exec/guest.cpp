#include "runtime/exec/guest.h"

#include <unicorn/unicorn.h>

#include <cstring>
#include <deque>
#include <exception>

#include <fmt/format.h>

#include "backends/native_abi.h"
#include "ir/diag.h"
#include "runtime/maps/maps.h"

namespace sb::rt {

namespace {

// What a C caller on each architecture does, in one table (one row per
// Arch, checked below). The calling conventions are System V x86-64,
// AAPCS64 and RISC-V LP64D, as backends/native_abi.h describes them.
struct GuestFacts {
  Arch arch;
  uc_arch uc;
  uc_mode mode;
  int pc, sp;
  int link;  // link register, or -1 when the return address is on the stack (x86)
  backend::CallingConvention cc;
  int int_args[8];  // the first cc.int_regs; the first five are BPF r1-r5 of a helper call
  int fp_args[8];   // the first cc.fp_regs
  int int_ret, fp_ret;
  // RISC-V LP64: integers narrower than 64 bits are extended to 64 bits,
  // 32-bit ones (unsigned too) sign-extended. Otherwise (x86-64, arm64) they
  // are extended to 32 bits and the upper half is undefined.
  bool lp64_extension;
  // RISC-V: a float in an F register is NaN-boxed (upper half all ones);
  // elsewhere the bits above it are undefined.
  bool f32_nan_boxed;
  uint8_t ret_insn[4];  // fills a host function slot: return to the caller
  uint8_t ret_size;
};

constexpr int kNone = -1;

constexpr GuestFacts kFacts[] = {
    {Arch::X86_64, UC_ARCH_X86, UC_MODE_64, UC_X86_REG_RIP, UC_X86_REG_RSP, -1,
     backend::calling_convention(Arch::X86_64),
     {UC_X86_REG_RDI, UC_X86_REG_RSI, UC_X86_REG_RDX, UC_X86_REG_RCX, UC_X86_REG_R8, UC_X86_REG_R9, kNone, kNone},
     {UC_X86_REG_XMM0, UC_X86_REG_XMM1, UC_X86_REG_XMM2, UC_X86_REG_XMM3, UC_X86_REG_XMM4, UC_X86_REG_XMM5,
      UC_X86_REG_XMM6, UC_X86_REG_XMM7},
     UC_X86_REG_RAX, UC_X86_REG_XMM0, false, false, {0xc3}, 1},  // ret
    {Arch::Arm64, UC_ARCH_ARM64, UC_MODE_ARM, UC_ARM64_REG_PC, UC_ARM64_REG_SP, UC_ARM64_REG_LR,
     backend::calling_convention(Arch::Arm64),
     {UC_ARM64_REG_X0, UC_ARM64_REG_X1, UC_ARM64_REG_X2, UC_ARM64_REG_X3, UC_ARM64_REG_X4, UC_ARM64_REG_X5,
      UC_ARM64_REG_X6, UC_ARM64_REG_X7},
     {UC_ARM64_REG_D0, UC_ARM64_REG_D1, UC_ARM64_REG_D2, UC_ARM64_REG_D3, UC_ARM64_REG_D4, UC_ARM64_REG_D5,
      UC_ARM64_REG_D6, UC_ARM64_REG_D7},
     UC_ARM64_REG_X0, UC_ARM64_REG_D0, false, false, {0xc0, 0x03, 0x5f, 0xd6}, 4},  // ret
    {Arch::Riscv64, UC_ARCH_RISCV, UC_MODE_RISCV64, UC_RISCV_REG_PC, UC_RISCV_REG_SP, UC_RISCV_REG_RA,
     backend::calling_convention(Arch::Riscv64),
     {UC_RISCV_REG_A0, UC_RISCV_REG_A1, UC_RISCV_REG_A2, UC_RISCV_REG_A3, UC_RISCV_REG_A4, UC_RISCV_REG_A5,
      UC_RISCV_REG_A6, UC_RISCV_REG_A7},
     {UC_RISCV_REG_F10, UC_RISCV_REG_F11, UC_RISCV_REG_F12, UC_RISCV_REG_F13, UC_RISCV_REG_F14, UC_RISCV_REG_F15,
      UC_RISCV_REG_F16, UC_RISCV_REG_F17},
     UC_RISCV_REG_A0, UC_RISCV_REG_F10, true, true, {0x67, 0x80, 0x00, 0x00}, 4},  // jalr x0, 0(ra)
};
static_assert([] {
  for (size_t i = 0; i < std::size(kFacts); ++i)
    if (size_t(kFacts[i].arch) != i) return false;
  return std::size(kFacts) == size_t(Arch::Riscv64) + 1;
}(), "kFacts is indexed by Arch");
static_assert([] {
  for (const GuestFacts& f : kFacts) {
    if (f.cc.int_regs < 5 || f.cc.int_regs > 8 || f.cc.fp_regs > 8) return false;
    for (int i = 0; i < f.cc.int_regs; ++i)
      if (f.int_args[i] == kNone) return false;
  }
  return true;
}(), "every argument register the convention uses is named");

constexpr uint64_t kPage = 0x1000;
constexpr uint64_t kPoison = 0xdeadbeef5a5a5a5aull;
uint64_t pages(uint64_t n) { return std::max<uint64_t>(kPage, (n + kPage - 1) / kPage * kPage); }

uint64_t sext(uint64_t v, unsigned bits) { return uint64_t(int64_t(v << (64 - bits)) >> (64 - bits)); }
uint64_t zext(uint64_t v, unsigned bits) { return bits >= 64 ? v : v & ((uint64_t(1) << bits) - 1); }

bool is_signed(ir::Type t) { return t == ir::Type::I8 || t == ir::Type::I16 || t == ir::Type::I32; }

// Word `w` of argument `v` as the caller leaves it in a register or stack slot.
uint64_t pass_word(const GuestFacts& f, const ir::NativeValue& v, uint32_t w, uint64_t word, bool poison) {
  const uint64_t junk_above32 = poison ? kPoison << 32 : 0;
  if (v.type == ir::Type::Struct) {  // bytes beyond the struct are undefined
    const uint32_t used = std::min<uint32_t>(8, v.size - 8 * w);
    return used == 8 ? word : zext(word, 8 * used) | (poison ? kPoison << (8 * used) : 0);
  }
  if (v.type == ir::Type::F32) return zext(word, 32) | junk_above32;
  if (v.is_fp() || v.size == 8) return word;
  const unsigned bits = 8 * v.size;
  const uint64_t extended = is_signed(v.type) ? sext(word, bits) : zext(word, bits);
  if (f.lp64_extension) return v.size == 4 ? sext(word, 32) : extended;
  return zext(extended, 32) | junk_above32;
}

// The result word from the return register: extended by type, as a ctx holds it.
uint64_t result_word(const ir::NativeValue& v, uint64_t raw) {
  switch (v.type) {
    case ir::Type::Void: return 0;
    case ir::Type::I8: case ir::Type::I16: case ir::Type::I32: return sext(raw, 8 * v.size);
    case ir::Type::U8: case ir::Type::U16: case ir::Type::U32: case ir::Type::F32: return zext(raw, 8 * v.size);
    default: return raw;
  }
}

}  // namespace

struct Guest::State {
  struct Slot {
    State* state;
    HostFunction fn;
  };
  const GuestFacts& f;
  uc_engine* uc = nullptr;
  PageMemory stack{kStackSize};  // freed after ~State closes uc
  std::deque<Slot> slots;  // stable addresses: hooks point at them
  std::exception_ptr hook_error;

  explicit State(const GuestFacts& facts) : f(facts) {}
  ~State() {
    if (uc) uc_close(uc);
  }
  std::string where() const { return fmt::format("{} guest", backend::arch_name(f.arch)); }
  void check(uc_err e, const std::string& what) const {
    if (e != UC_ERR_OK) throw Error(where(), fmt::format("{}: {}", what, uc_strerror(e)));
  }
  void set(int reg, uint64_t v) const { check(uc_reg_write(uc, reg, &v), "register write"); }
  uint64_t get(int reg) const {
    uint64_t v = 0;
    check(uc_reg_read(uc, reg, &v), "register read");
    return v;
  }
  // Floating-point registers through a 16-byte buffer (x86's XMM registers
  // are read and written whole); the low 8 bytes are the value.
  void set_fp(int reg, uint64_t lo, uint64_t hi) const {
    uint64_t v[2] = {lo, hi};
    check(uc_reg_write(uc, reg, v), "register write");
  }
  uint64_t get_fp(int reg) const {
    uint64_t v[2] = {0, 0};
    check(uc_reg_read(uc, reg, v), "register read");
    return v[0];
  }

  static void on_slot(uc_engine* uc, uint64_t, uint32_t, void* user) {
    auto* slot = static_cast<Slot*>(user);
    State& s = *slot->state;
    try {
      std::array<uint64_t, 5> args;
      for (size_t i = 0; i < args.size(); ++i) args[i] = s.get(s.f.int_args[i]);
      s.set(s.f.int_ret, slot->fn(args));
    } catch (...) {  // no exception crosses Unicorn's C frames
      s.hook_error = std::current_exception();
      uc_emu_stop(uc);
    }
  }
};

Guest::Guest(Arch arch) : s_(std::make_unique<State>(kFacts[size_t(arch)])) {
  const GuestFacts& f = s_->f;
  s_->check(uc_open(f.uc, f.mode, &s_->uc), "open");
  if (arch == Arch::Riscv64) {  // the F and D registers start off (mstatus.FS = 0): turn them on
    const uint64_t kMstatusFsDirty = uint64_t(3) << 13;
    s_->set(UC_RISCV_REG_MSTATUS, s_->get(UC_RISCV_REG_MSTATUS) | kMstatusFsDirty);
  }
  std::vector<uint8_t> slots(kHostSlots * kSlotSize, 0);
  for (uint64_t i = 0; i < kHostSlots; ++i) std::memcpy(&slots[i * kSlotSize], f.ret_insn, f.ret_size);
  map_code(kHostBase, slots);
  map_host(s_->stack.range().addr, kStackSize);
  map_code(kReturnAddr, {});
}

Guest::~Guest() = default;

Arch Guest::arch() const { return s_->f.arch; }

void Guest::map_code(uint64_t addr, std::span<const uint8_t> code) {
  s_->check(uc_mem_map(s_->uc, addr, pages(code.size()), UC_PROT_READ | UC_PROT_EXEC),
            fmt::format("map {:#x} bytes of code at {:#x}", code.size(), addr));
  if (!code.empty()) write(addr, code.data(), code.size());
}

void Guest::map_data(uint64_t addr, uint64_t size) {
  s_->check(uc_mem_map(s_->uc, addr, pages(size), UC_PROT_READ | UC_PROT_WRITE),
            fmt::format("map {:#x} bytes of data at {:#x}", size, addr));
}

void Guest::map_host(uint64_t addr, uint64_t size, bool executable) {
  const uint32_t perms = UC_PROT_READ | UC_PROT_WRITE | (executable ? UC_PROT_EXEC : 0);
  s_->check(uc_mem_map_ptr(s_->uc, addr, pages(size), perms, reinterpret_cast<void*>(addr)),
            fmt::format("map {:#x} bytes of this process at {:#x}", size, addr));
}

uint64_t Guest::stack_base() const { return s_->stack.range().addr; }

void Guest::write(uint64_t addr, const void* data, size_t size) {
  s_->check(uc_mem_write(s_->uc, addr, data, size), fmt::format("write {} bytes at {:#x}", size, addr));
}

void Guest::write_code(uint64_t addr, const void* data, size_t size) {
  write(addr, data, size);
  s_->check(uc_ctl_remove_cache(s_->uc, addr, addr + size), fmt::format("drop translations at {:#x}", addr));
}

void Guest::read(uint64_t addr, void* data, size_t size) const {
  s_->check(uc_mem_read(s_->uc, addr, data, size), fmt::format("read {} bytes at {:#x}", size, addr));
}

uint64_t Guest::read_u64(uint64_t addr) const {
  uint64_t v = 0;
  read(addr, &v, 8);
  return v;
}

uint64_t Guest::add_host_function(HostFunction fn) {
  if (s_->slots.size() == kHostSlots)
    throw Error(s_->where(), fmt::format("more than {} host functions", kHostSlots));
  const uint64_t addr = kHostBase + kSlotSize * s_->slots.size();
  State::Slot& slot = s_->slots.emplace_back(State::Slot{s_.get(), std::move(fn)});
  uc_hook hook;
  s_->check(uc_hook_add(s_->uc, &hook, UC_HOOK_CODE, reinterpret_cast<void*>(&State::on_slot), &slot, addr,
                        addr + kSlotSize - 1),
            "hook");
  return addr;
}

uint64_t Guest::call(uint64_t addr, const ir::Signature& sig, const std::vector<uint64_t>& args,
                     const GuestCallOptions& opts) {
  State& s = *s_;
  const GuestFacts& f = s.f;
  if (args.size() != sig.words())
    throw Error(s.where(), fmt::format("{} argument words given, the signature has {}", args.size(), sig.words()));
  const std::vector<backend::WordLocation> locs = backend::classify_args(sig, f.cc);
  const bool poison = opts.poison_undefined_bits;

  // Registers the call does not use hold garbage too.
  for (int i = 0; i < f.cc.int_regs; ++i) s.set(f.int_args[i], poison ? kPoison + uint64_t(i) : 0);
  for (int i = 0; i < f.cc.fp_regs; ++i) s.set_fp(f.fp_args[i], poison ? kPoison : 0, poison ? kPoison : 0);

  // The outgoing stack area, 16-byte aligned at the call.
  uint64_t sp = stack_base() + kStackSize - 64;
  sp -= (8 * backend::stack_slots(locs) + 15) / 16 * 16;
  size_t w = 0;
  for (const ir::NativeValue& v : sig.args) {
    for (uint32_t k = 0; k < v.words(); ++k, ++w) {
      const backend::WordLocation& l = locs[w];
      const uint64_t word = pass_word(f, v, k, args[w], poison);
      switch (l.kind) {
        case backend::WordLocation::IntReg:
          s.set(f.int_args[l.index], word);
          break;
        case backend::WordLocation::FpReg: {
          uint64_t lo = args[w];
          if (l.f32) lo = zext(lo, 32) | (f.f32_nan_boxed ? 0xffffffffull << 32 : poison ? kPoison << 32 : 0);
          s.set_fp(f.fp_args[l.index], lo, poison ? kPoison : 0);
          break;
        }
        case backend::WordLocation::Stack:
          write_u64(sp + 8 * l.index, word);
          break;
      }
    }
  }
  if (f.link < 0) {  // x86: the return address is pushed
    sp -= 8;
    write_u64(sp, kReturnAddr);
  } else {
    s.set(f.link, kReturnAddr);
  }
  s.set(f.sp, sp);

  s.hook_error = nullptr;
  const uc_err err = uc_emu_start(s.uc, addr, kReturnAddr, 0, opts.insn_budget);
  if (s.hook_error) std::rethrow_exception(s.hook_error);
  const uint64_t pc = s.get(f.pc);
  if (err != UC_ERR_OK) throw Error(s.where(), fmt::format("{} at guest address {:#x}", uc_strerror(err), pc));
  if (pc != kReturnAddr)
    throw Error(s.where(), fmt::format("instruction budget of {} exhausted at {:#x}", opts.insn_budget, pc));
  raw_return_ = s.get(f.int_ret);
  if (sig.ret.is_fp()) return result_word(sig.ret, s.get_fp(f.fp_ret));
  return result_word(sig.ret, raw_return_);
}

}  // namespace sb::rt
