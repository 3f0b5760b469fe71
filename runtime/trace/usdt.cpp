// USDT notes and argument specs; see usdt.h.
#include "runtime/trace/usdt.h"

#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>

#include <fmt/format.h>

#include "backends/native_abi.h"
#include "ir/diag.h"
#include "runtime/hook/symbols.h"

namespace sb::rt {

namespace {

// x86-64 registers by every name an argument may use, at their offset in
// struct pt_regs (arch/x86/include/uapi/asm/ptrace.h, as BPF sees it).
struct RegNames {
  const char* names[4];  // 64, 32, 16, 8 bits
  int16_t offset;
};
constexpr RegNames kX86Regs[] = {
    {{"r15", "r15d", "r15w", "r15b"}, 0},  {{"r14", "r14d", "r14w", "r14b"}, 8},
    {{"r13", "r13d", "r13w", "r13b"}, 16}, {{"r12", "r12d", "r12w", "r12b"}, 24},
    {{"rbp", "ebp", "bp", "bpl"}, 32},     {{"rbx", "ebx", "bx", "bl"}, 40},
    {{"r11", "r11d", "r11w", "r11b"}, 48}, {{"r10", "r10d", "r10w", "r10b"}, 56},
    {{"r9", "r9d", "r9w", "r9b"}, 64},     {{"r8", "r8d", "r8w", "r8b"}, 72},
    {{"rax", "eax", "ax", "al"}, 80},      {{"rcx", "ecx", "cx", "cl"}, 88},
    {{"rdx", "edx", "dx", "dl"}, 96},      {{"rsi", "esi", "si", "sil"}, 104},
    {{"rdi", "edi", "di", "dil"}, 112},    {{"rip", "eip", nullptr, nullptr}, 128},
    {{"rsp", "esp", "sp", "spl"}, 152},
};
static_assert(backend::kProbeRegs[0].sp == 152 && backend::kProbeRegs[0].ip == 128, "pt_regs layout");

std::optional<int16_t> x86_reg_offset(std::string_view name) {
  for (const RegNames& r : kX86Regs)
    for (const char* n : r.names)
      if (n && name == n) return r.offset;
  return std::nullopt;
}

// A decimal (or 0x hex) integer with an optional sign, all of `s`.
std::optional<int64_t> parse_int(std::string_view s) {
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return std::nullopt;
    if (v > (UINT64_MAX - uint64_t(d)) / uint64_t(base)) return std::nullopt;
    v = v * uint64_t(base) + uint64_t(d);
  }
  if (neg ? v > uint64_t(INT64_MAX) + 1 : v > uint64_t(INT64_MAX)) {
    if (!neg && base == 16) return int64_t(v);  // 0xffff...: the bit pattern
    return std::nullopt;
  }
  return neg ? int64_t(0 - v) : int64_t(v);
}

// N of a register named LETTER + N (x30, w7, x5): decimal, no leading
// zero, at most `max`.
std::optional<int> register_number(std::string_view digits, int max) {
  if (digits.empty() || digits.size() > 2 || digits.find_first_not_of("0123456789") != std::string_view::npos ||
      (digits.size() == 2 && digits[0] == '0'))
    return std::nullopt;
  const int n = digits.size() == 1 ? digits[0] - '0' : (digits[0] - '0') * 10 + (digits[1] - '0');
  if (n > max) return std::nullopt;
  return n;
}

// arm64 (user_pt_regs: regs[31], sp, pc) and riscv64 (user_regs_struct:
// pc, then x1..x31) registers by the names gcc and clang write.
std::optional<int16_t> arm64_reg_offset(std::string_view name) {
  if (name == "sp") return int16_t(backend::probe_regs(Arch::Arm64).sp);
  if (name.empty() || (name[0] != 'x' && name[0] != 'w')) return std::nullopt;
  const std::optional<int> n = register_number(name.substr(1), 30);
  if (!n) return std::nullopt;
  return int16_t(8 * *n);
}
std::optional<int16_t> riscv64_reg_offset(std::string_view name) {
  static constexpr const char* kAbi[32] = {"zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0",
                                           "a1",   "a2", "a3", "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5",
                                           "s6",   "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"};
  std::optional<int> index = name == "fp" ? std::optional<int>(8) : std::nullopt;
  if (!index && name.starts_with("x")) index = register_number(name.substr(1), 31);
  for (int i = 1; i < 32 && !index; ++i)
    if (name == kAbi[i]) index = i;
  if (!index || *index == 0) return std::nullopt;  // x0 / zero has no slot: the constant 0 is written as 0
  static_assert(backend::kProbeRegs[size_t(Arch::Riscv64)].ip == 0, "user_regs_struct starts with pc");
  return int16_t(8 * *index);
}

std::optional<int16_t> reg_offset(Arch arch, std::string_view name) {
  switch (arch) {
    case Arch::X86_64: return x86_reg_offset(name);
    case Arch::Arm64: return arm64_reg_offset(name);
    default: return riscv64_reg_offset(name);
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// SYM[+-N] into a.symbol and a.value (N until the symbol is resolved).
void symbol_plus(UsdtArg& a, std::string_view text, const char* where,
                 const std::function<Error(const std::string&)>& bad) {
  const size_t sign = text.find_first_of("+-", 1);
  const std::string_view sym = text.substr(0, sign);
  const bool name_ok = !sym.empty() && !(sym[0] >= '0' && sym[0] <= '9') &&
                       sym.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$") ==
                           std::string_view::npos;
  if (!name_ok) throw bad(fmt::format("'{}' {} is not a symbol (a number there is not supported)", text, where));
  const std::optional<int64_t> n =
      sign == std::string_view::npos ? std::optional<int64_t>(0) : parse_int(text.substr(sign));
  if (!n) throw bad(fmt::format("'{}' after the symbol is not a number", text.substr(sign)));
  a.symbol = std::string(sym);
  a.value = *n;
}

// The x86-64 locations (AT&T syntax): %REG, $IMM, [OFF](%REG), SYM[+-N](%rip).
void parse_x86_location(UsdtArg& a, std::string_view loc, const std::function<Error(const std::string&)>& bad) {
  if (loc.starts_with("$")) {
    const std::optional<int64_t> v = parse_int(loc.substr(1));
    if (!v) throw bad(fmt::format("constant '{}' is not an integer", loc.substr(1)));
    a.kind = UsdtArgKind::Const;
    a.value = *v;
    return;
  }
  auto reg = [&](std::string_view r) {
    if (!r.starts_with("%")) throw bad(fmt::format("'{}' is not a register (%name)", r));
    const std::optional<int16_t> off = x86_reg_offset(r.substr(1));
    if (!off) throw bad(fmt::format("unknown x86-64 register '{}'", r));
    return *off;
  };
  if (loc.starts_with("%")) {
    a.kind = UsdtArgKind::Reg;
    a.reg_off = reg(loc);
    return;
  }
  const size_t open = loc.find('(');
  if (open == std::string_view::npos || !loc.ends_with(")"))
    throw bad("expected %REG, $CONSTANT or OFFSET(%REG)");
  const std::string_view base = loc.substr(open + 1, loc.size() - open - 2);
  if (base.find(',') != std::string_view::npos) throw bad("an index register (base, index, scale) is not supported");
  const std::string_view off_text = loc.substr(0, open);
  a.kind = UsdtArgKind::RegDeref;
  a.reg_off = reg(base);
  if (base == "%rip") {  // SYM[+-N](%rip): the symbol's memory
    symbol_plus(a, off_text, "before (%rip)", bad);
    a.symbol_use = UsdtArg::SymbolUse::FromSite;
    return;
  }
  if (base == "%eip") throw bad("an %eip-relative argument is not supported");
  std::optional<int64_t> off = off_text.empty() ? std::optional<int64_t>(0) : parse_int(off_text);
  if (!off) throw bad(fmt::format("offset '{}' is not a number", off_text));
  a.value = *off;
}

// The arm64 and riscv64 locations, as libbpf's parsers take them: a
// register, a bare constant, and memory at a register plus an offset,
// arm64 "[REG]" / "[REG, OFF]" (OFF also as #OFF), riscv64 "OFF(REG)".
void parse_risc_location(Arch arch, UsdtArg& a, std::string_view loc,
                         const std::function<Error(const std::string&)>& bad) {
  const char* arch_name = arch == Arch::Arm64 ? "arm64" : "riscv64";
  auto reg = [&](std::string_view r) {
    const std::optional<int16_t> off = reg_offset(arch, trim(r));
    if (!off) throw bad(fmt::format("unknown {} register '{}'", arch_name, trim(r)));
    return *off;
  };
  auto offset = [&](std::string_view t) {
    t = trim(t);
    if (t.starts_with("#")) t.remove_prefix(1);
    const std::optional<int64_t> v = t.empty() ? std::optional<int64_t>(0) : parse_int(t);
    if (!v) throw bad(fmt::format("offset '{}' is not a number", t));
    return *v;
  };
  if (const std::optional<int64_t> v = parse_int(loc)) {
    a.kind = UsdtArgKind::Const;
    a.value = *v;
    return;
  }
  if (arch == Arch::Arm64 && loc.starts_with("[")) {
    if (!loc.ends_with("]")) throw bad("expected [REG] or [REG, OFFSET]");
    const std::string_view inside = loc.substr(1, loc.size() - 2);
    const size_t comma = inside.find(',');
    a.kind = UsdtArgKind::RegDeref;
    a.reg_off = reg(inside.substr(0, comma));
    a.value = comma == std::string_view::npos ? 0 : offset(inside.substr(comma + 1));
    return;
  }
  const size_t open = loc.find('(');
  if (arch == Arch::Riscv64 && loc.starts_with("%lo(")) {  // %lo(SYM[+-N])(REG): non-PIC code's lui + offset
    const size_t close = loc.find(')');
    if (close == std::string_view::npos || loc.substr(close + 1).size() < 3 || loc[close + 1] != '(' ||
        !loc.ends_with(")"))
      throw bad("expected %lo(SYMBOL)(REG)");
    symbol_plus(a, loc.substr(4, close - 4), "in %lo()", bad);
    a.symbol_use = UsdtArg::SymbolUse::Lo12;
    a.kind = UsdtArgKind::RegDeref;
    a.reg_off = reg(loc.substr(close + 2, loc.size() - close - 3));
    return;
  }
  if (arch == Arch::Riscv64 && open != std::string_view::npos) {
    if (!loc.ends_with(")")) throw bad("expected OFFSET(REG)");
    a.kind = UsdtArgKind::RegDeref;
    a.reg_off = reg(loc.substr(open + 1, loc.size() - open - 2));
    a.value = offset(loc.substr(0, open));
    return;
  }
  const std::optional<int16_t> r = reg_offset(arch, loc);
  if (!r)
    throw bad(arch == Arch::Arm64 ? "expected an arm64 register, a constant, [REG] or [REG, OFFSET]"
                                  : "expected a riscv64 register, a constant or OFFSET(REG)");
  a.kind = UsdtArgKind::Reg;
  a.reg_off = *r;
}

UsdtArg parse_arg(Arch arch, std::string_view tok, const std::string& where) {
  const std::function<Error(const std::string&)> bad = [&](const std::string& why) {
    return Error(where, fmt::format("'{}': {}", tok, why));
  };
  const size_t at = tok.find('@');
  if (at == std::string_view::npos)
    throw bad(arch == Arch::X86_64 ? "expected SIZE@LOCATION (e.g. -4@%edi)" : "expected SIZE@LOCATION (e.g. -4@x0)");
  const std::optional<int64_t> size = parse_int(tok.substr(0, at));
  if (!size || (std::abs(*size) != 1 && std::abs(*size) != 2 && std::abs(*size) != 4 && std::abs(*size) != 8))
    throw bad(fmt::format("size '{}' is not 1, 2, 4 or 8 bytes (negative: signed)", tok.substr(0, at)));
  UsdtArg a;
  a.size = uint8_t(std::abs(*size));
  a.is_signed = *size < 0;
  if (arch == Arch::X86_64) parse_x86_location(a, tok.substr(at + 1), bad);
  else parse_risc_location(arch, a, tok.substr(at + 1), bad);
  return a;
}

// A defined symbol's link-time value (.symtab, else .dynsym).
std::optional<uint64_t> symbol_value(Elf* elf, const std::string& name) {
  for (const uint32_t type : {uint32_t(SHT_SYMTAB), uint32_t(SHT_DYNSYM)})
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh) || sh.sh_type != type || !sh.sh_entsize) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data) continue;
      for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; ++i) {
        GElf_Sym sym;
        if (!gelf_getsym(data, int(i), &sym) || sym.st_shndx == SHN_UNDEF) continue;
        const char* n = elf_strptr(elf, sh.sh_link, sym.st_name);
        if (n && name == n) return sym.st_value;
      }
    }
  return std::nullopt;
}

}  // namespace

std::vector<UsdtArg> parse_usdt_args(std::string_view text, const std::string& where, Arch arch) {
  std::vector<UsdtArg> out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ' || text[i] == '\t') {
      ++i;
      continue;
    }
    // An argument ends at a blank outside brackets (arm64's "[sp, 16]").
    size_t end = i;
    for (int depth = 0; end < text.size() && (depth > 0 || (text[end] != ' ' && text[end] != '\t')); ++end)
      depth += text[end] == '[' ? 1 : text[end] == ']' ? -1 : 0;
    if (out.size() == kUsdtMaxArgs)
      throw Error(where, fmt::format("more than {} arguments (libbpf's BPF_USDT_MAX_ARG_CNT)", kUsdtMaxArgs));
    out.push_back(parse_arg(arch, text.substr(i, end - i), fmt::format("{}: argument {}", where, out.size() + 1)));
    i = end;
  }
  return out;
}

std::vector<UsdtProbe> read_usdt_notes(const std::string& path, uint64_t bias, std::string_view provider,
                                       std::string_view name) {
  std::vector<UsdtProbe> out;
  ElfFile file;
  if (!file.open(path) || gelf_getclass(file.elf) != ELFCLASS64) return out;
  GElf_Ehdr eh;
  if (!gelf_getehdr(file.elf, &eh)) return out;
  const Arch arch = eh.e_machine == EM_AARCH64 ? Arch::Arm64 : eh.e_machine == EM_RISCV ? Arch::Riscv64 : Arch::X86_64;
  if (eh.e_machine != EM_X86_64 && eh.e_machine != EM_AARCH64 && eh.e_machine != EM_RISCV) return out;
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(file.elf, &shstrndx) != 0) return out;
  uint64_t base_section = 0;  // .stapsdt.base's address
  std::vector<Elf_Scn*> notes;
  for (Elf_Scn* scn = elf_nextscn(file.elf, nullptr); scn; scn = elf_nextscn(file.elf, scn)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) continue;
    const char* name = elf_strptr(file.elf, shstrndx, sh.sh_name);
    if (!name) continue;
    if (std::strcmp(name, ".stapsdt.base") == 0) base_section = sh.sh_addr;
    if (sh.sh_type == SHT_NOTE && std::strcmp(name, ".note.stapsdt") == 0) notes.push_back(scn);
  }
  for (Elf_Scn* scn : notes) {
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data) continue;
    GElf_Nhdr nh;
    size_t name_off = 0, desc_off = 0;
    size_t index = 0;
    for (size_t off = 0; (off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) != 0; ++index) {
      const auto* bytes = static_cast<const uint8_t*>(data->d_buf);
      if (nh.n_type != 3 || nh.n_namesz != 8 || std::memcmp(bytes + name_off, "stapsdt", 8) != 0) continue;
      const std::string where = fmt::format("{}: .note.stapsdt note {}", path, index);
      if (nh.n_descsz < 24 + 3) throw Error(where, fmt::format("descriptor of {} bytes, need at least 27", nh.n_descsz));
      const uint8_t* d = bytes + desc_off;
      uint64_t pc, note_base, sema;
      std::memcpy(&pc, d, 8);
      std::memcpy(&note_base, d + 8, 8);
      std::memcpy(&sema, d + 16, 8);
      std::string_view strings(reinterpret_cast<const char*>(d + 24), nh.n_descsz - 24);
      std::string_view fields[3];
      for (std::string_view& f : fields) {
        const size_t nul = strings.find('\0');
        if (nul == std::string_view::npos) throw Error(where, "provider, name and arguments are not NUL-terminated");
        f = strings.substr(0, nul);
        strings.remove_prefix(nul + 1);
      }
      if (fields[0] != provider || fields[1] != name) continue;
      UsdtProbe p;
      p.object = path;
      p.provider = std::string(fields[0]);
      p.name = std::string(fields[1]);
      p.args_text = std::string(fields[2]);
      // prelink moved the file: the note still has the old .stapsdt.base
      p.address = bias + pc + (base_section && note_base ? base_section - note_base : 0);
      p.semaphore = sema ? bias + sema : 0;
      const std::string at = fmt::format("{}: USDT {}:{} at {:#x}", path, p.provider, p.name, pc);
      p.arch = arch;
      p.args = parse_usdt_args(p.args_text, at, arch);
      for (size_t i = 0; i < p.args.size(); ++i) {
        UsdtArg& a = p.args[i];
        if (a.symbol.empty()) continue;
        const std::optional<uint64_t> sym = symbol_value(file.elf, a.symbol);
        if (!sym)
          throw Error(fmt::format("{}: argument {}", at, i + 1),
                      fmt::format("'{}': no symbol '{}' in the object's symbol table", p.args_text, a.symbol));
        if (a.symbol_use == UsdtArg::SymbolUse::FromSite)
          a.value = int64_t(bias + *sym + uint64_t(a.value) - p.address);  // from the site (pt_regs ip)
        else  // the low 12 bits, sign-extended, as the linker fills the load's offset
          a.value = int64_t((*sym + uint64_t(a.value)) << 52) >> 52;
      }
      out.push_back(std::move(p));
    }
  }
  return out;
}

std::vector<UsdtProbe> find_usdt_probes(std::string_view object, std::string_view provider, std::string_view name) {
  std::vector<UsdtProbe> out;
  for (const LoadedObject& o : loaded_objects(object))
    for (UsdtProbe& p : read_usdt_notes(o.path, o.bias, provider, name)) out.push_back(std::move(p));
  return out;
}

std::vector<uint8_t> usdt_spec(const std::vector<UsdtArg>& args, uint64_t usdt_cookie) {
  std::vector<uint8_t> out(kUsdtSpecSize, 0);
  for (size_t i = 0; i < args.size() && i < kUsdtMaxArgs; ++i) {
    const UsdtArg& a = args[i];
    uint8_t* p = out.data() + 16 * i;
    const uint64_t val_off = uint64_t(a.value);
    const uint32_t type = uint32_t(a.kind);
    const uint8_t bitshift = uint8_t(64 - 8 * a.size);
    std::memcpy(p, &val_off, 8);
    std::memcpy(p + 8, &type, 4);
    std::memcpy(p + 12, &a.reg_off, 2);
    p[14] = a.is_signed;
    p[15] = bitshift;
  }
  std::memcpy(out.data() + 192, &usdt_cookie, 8);
  const int16_t count = int16_t(std::min(args.size(), kUsdtMaxArgs));
  std::memcpy(out.data() + 200, &count, 2);
  return out;
}

}  // namespace sb::rt
