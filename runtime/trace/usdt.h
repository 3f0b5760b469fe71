// USDT probes (<sys/sdt.h>, systemtap's "statically defined tracing"):
// found in the loaded objects of this process by provider and name, with
// their argument locations turned into libbpf's `struct __bpf_usdt_spec`
// (<bpf/usdt.bpf.h>), which `bpf_usdt_arg()` and `BPF_USDT()` in a
// program read.
//
// Each STAP_PROBE site is an ELF note in `.note.stapsdt` (type 3, owner
// "stapsdt"): the site's address, the link-time address of
// `.stapsdt.base` (prelink moves it; the difference corrects the site),
// the semaphore's address (0: none), then "provider\0name\0args\0". The
// site is a `nop`; a probe at it sees the registers the arguments are in.
//
// Arguments, as gcc writes them for x86-64 ("-4@%edi 8@-8(%rbp) -4@$-5"):
//   SIZE@%REG           the register (any width: rax eax ax al, r8 r8d r8w r8b, ...)
//   SIZE@OFF(%REG)      memory at REG + OFF ("(%REG)": OFF 0)
//   SIZE@$IMM           a constant
//   SIZE@SYM[+-N](%rip) memory at a symbol of the object (gcc -O2 writes this
//                       for a static variable; libbpf 1.1 refuses it): read
//                       as memory at pt_regs' ip (the site) + (SYM + N - site),
//                       SYM from the object's symbol table
// and as gcc and clang write them for arm64 and riscv64 (libbpf's syntax):
//   arm64    SIZE@xN / wN / sp, SIZE@[REG], SIZE@[REG, OFF], SIZE@IMM
//   riscv64  SIZE@REG (a0, s1, sp, ra, x5, ...), SIZE@OFF(REG), SIZE@IMM,
//            SIZE@%lo(SYM[+-N])(REG) (gcc for a static variable in non-PIC
//            code: REG holds %hi(SYM); libbpf refuses it), the offset from
//            the object's symbol table
// SIZE is the byte count, negative for a signed value; the spec keeps the
// register's offset in the architecture's pt_regs as BPF sees it (x86-64
// `struct pt_regs`, arm64 `user_pt_regs`, riscv64 `user_regs_struct`:
// backend::probe_regs), the offset or constant,
// signedness and the shift that narrows the 8 bytes read to SIZE. Other
// forms (a number before (%rip), an index register) are refused naming
// the argument.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backends/arch.h"

namespace sb::rt {

// enum __bpf_usdt_arg_type
enum class UsdtArgKind : uint32_t { Const = 0, Reg = 1, RegDeref = 2 };

struct UsdtArg {
  UsdtArgKind kind = UsdtArgKind::Const;
  int64_t value = 0;     // Const: the value; RegDeref: the offset from the register
  int16_t reg_off = 0;   // Reg, RegDeref: the register's offset in struct pt_regs
  bool is_signed = false;
  uint8_t size = 8;      // bytes: 1, 2, 4 or 8
  // SYM(%rip), %lo(SYM)(REG): `value` is N until the symbol is resolved,
  // then SYM + N - site (FromSite) or the low 12 bits of SYM + N (Lo12).
  std::string symbol;
  enum class SymbolUse : uint8_t { FromSite, Lo12 } symbol_use = SymbolUse::FromSite;
};

inline constexpr size_t kUsdtMaxArgs = 12;  // BPF_USDT_MAX_ARG_CNT

// The arguments of a note's argument string. Throws sb::Error located at
// `where` naming the argument ("argument 2 '8@sym(%rip)': ...").
std::vector<UsdtArg> parse_usdt_args(std::string_view text, const std::string& where, Arch arch = Arch::X86_64);

struct UsdtProbe {
  std::string object;  // the file it is in
  Arch arch = Arch::X86_64;  // its machine (e_machine): the syntax of its arguments
  std::string provider, name;
  uint64_t address = 0;    // the site, in this process
  uint64_t semaphore = 0;  // the semaphore's address in this process, 0: none
  std::string args_text;
  std::vector<UsdtArg> args;
};

// Every site of PROVIDER:NAME in the loaded objects (`object` empty: all of
// them, else the one whose path or file name it is), in load order.
// Throws sb::Error naming the object and site for a note that does not
// parse.
std::vector<UsdtProbe> find_usdt_probes(std::string_view object, std::string_view provider, std::string_view name);

// The USDT notes of PROVIDER:NAME in one ELF file (x86-64, arm64 or
// riscv64; another machine's has none) loaded with `bias`. Only
// their argument strings are parsed: another probe's note that does not
// parse does not stop this one.
std::vector<UsdtProbe> read_usdt_notes(const std::string& path, uint64_t bias, std::string_view provider,
                                       std::string_view name);

// `struct __bpf_usdt_spec` as <bpf/usdt.bpf.h> lays it out (208 bytes):
// args[12] of {u64 val_off; u32 arg_type; s16 reg_off; bool arg_signed;
// char arg_bitshift}, u64 usdt_cookie, s16 arg_cnt.
inline constexpr size_t kUsdtSpecSize = 208;
std::vector<uint8_t> usdt_spec(const std::vector<UsdtArg>& args, uint64_t usdt_cookie);

}  // namespace sb::rt
