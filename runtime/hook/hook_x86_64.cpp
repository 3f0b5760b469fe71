// x86-64 function entry hooking: decode the first instructions with
// Capstone, relocate them into a stub built with LLVM MC, patch the entry.
#include "runtime/hook/hook_x86_64.h"

#include <capstone/capstone.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sys/uio.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include <fmt/format.h>
#include <llvm/MC/MCExpr.h>

#include "backends/mc/emitter.h"
#include "backends/mc/inst.h"
#include "backends/x86_64/x86_64.h"
#include "ir/diag.h"
#include "runtime/hook/live_patch.h"
#include "runtime/hook/symbols.h"

namespace sb::rt {

namespace {

constexpr size_t kJumpSize = 5;  // jmp rel32: what the entry is replaced by

// A refusal because the 5-byte jump does not fit where it would go (too
// short before a return, a branch into the bytes after the probed
// instruction): a probe then takes a breakpoint there instead.
struct NoRoom : Error {
  using Error::Error;
};

struct Insn {
  uint64_t address = 0;
  std::vector<uint8_t> bytes;
  unsigned id = 0;
  bool relative_branch = false;  // jmp/jcc/call rel, target in `branch_target`
  uint64_t branch_target = 0;
  int rel_size = 0;              // relative branches: 1 or 4, the displacement's bytes (at the end)
  bool is_call = false;
  int disp_offset = -1;          // rip-relative: where its disp32 is; -1 otherwise
  uint64_t rip_target = 0;       // rip-relative: the address it names
  bool ends_flow = false;        // ret, unconditional jmp, ud2, int3, hlt
  // For jump tables: lea reg, [rip+T] (T in rip_target) and movsxd r,
  // [reg + index*4] (relative entries); jmp [T + index*8] (absolute).
  unsigned def_reg = 0;   // lea's destination
  unsigned mem_base = 0;  // movsxd's memory base
  bool jmp_abs_table = false;
  uint64_t table_disp = 0;
  uint64_t end() const { return address + bytes.size(); }
};

class Decoder {
 public:
  Decoder() {
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &h_) != CS_ERR_OK) throw Error("capstone", "cs_open failed");
    cs_option(h_, CS_OPT_DETAIL, CS_OPT_ON);
    insn_ = cs_malloc(h_);
  }
  ~Decoder() {
    cs_free(insn_, 1);
    cs_close(&h_);
  }
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
  // Decodes one instruction at `code` (its runtime address), or returns false.
  bool next(const uint8_t* code, size_t size, Insn& out) {
    const uint8_t* p = code;
    uint64_t addr = reinterpret_cast<uint64_t>(code);
    if (!cs_disasm_iter(h_, &p, &size, &addr, insn_)) return false;
    out = Insn{};
    out.address = insn_->address;
    out.bytes.assign(insn_->bytes, insn_->bytes + insn_->size);
    out.id = insn_->id;
    out.relative_branch = cs_insn_group(h_, insn_, CS_GRP_BRANCH_RELATIVE);
    out.is_call = insn_->id == X86_INS_CALL;
    const cs_x86& x = insn_->detail->x86;
    const uint8_t opcode = x.opcode[0];
    if (out.relative_branch) out.rel_size = opcode == 0xEB || (opcode & 0xF0) == 0x70 || (opcode >= 0xE0 && opcode <= 0xE3) ? 1 : 4;
    for (uint8_t i = 0; i < x.op_count; ++i) {
      const cs_x86_op& o = x.operands[i];
      if (out.relative_branch && o.type == X86_OP_IMM) out.branch_target = uint64_t(o.imm);
      if (o.type == X86_OP_MEM && o.mem.base == X86_REG_RIP) {
        out.disp_offset = x.encoding.disp_offset;
        out.rip_target = out.end() + uint64_t(o.mem.disp);
      }
    }
    if (x.op_count == 2 && x.operands[0].type == X86_OP_REG && x.operands[1].type == X86_OP_MEM) {
      const x86_op_mem& m = x.operands[1].mem;
      if (out.id == X86_INS_LEA && m.base == X86_REG_RIP) out.def_reg = x.operands[0].reg;
      if (out.id == X86_INS_MOVSXD && m.index != X86_REG_INVALID && m.scale == 4 && m.disp == 0) out.mem_base = m.base;
    }
    if (out.id == X86_INS_JMP && x.op_count == 1 && x.operands[0].type == X86_OP_MEM) {
      const x86_op_mem& m = x.operands[0].mem;
      if (m.base == X86_REG_INVALID && m.index != X86_REG_INVALID && m.scale == 8) {
        out.jmp_abs_table = true;
        out.table_disp = uint64_t(m.disp);
      }
    }
    out.ends_flow = cs_insn_group(h_, insn_, CS_GRP_RET) || insn_->id == X86_INS_JMP || insn_->id == X86_INS_UD2 ||
                    insn_->id == X86_INS_INT3 || insn_->id == X86_INS_HLT;
    return true;
  }
  // "jne 0x401000", for messages.
  std::string text(const Insn& in) {
    const uint8_t* p = in.bytes.data();
    size_t size = in.bytes.size();
    uint64_t addr = in.address;
    if (!cs_disasm_iter(h_, &p, &size, &addr, insn_)) return "?";
    return std::string(insn_->mnemonic) + (insn_->op_str[0] ? " " : "") + insn_->op_str;
  }

 private:
  csh h_ = 0;
  cs_insn* insn_ = nullptr;
};

// The x86 condition code of a conditional jump (the JCC_1 operand); -1 for
// other instructions. Pairs differ in the low bit, so cc ^ 1 inverts.
int condition_of(unsigned id) {
  static constexpr struct { unsigned id; int cc; } kJcc[] = {
      {X86_INS_JO, 0},  {X86_INS_JNO, 1}, {X86_INS_JB, 2},  {X86_INS_JAE, 3}, {X86_INS_JE, 4},  {X86_INS_JNE, 5},
      {X86_INS_JBE, 6}, {X86_INS_JA, 7},  {X86_INS_JS, 8},  {X86_INS_JNS, 9}, {X86_INS_JP, 10}, {X86_INS_JNP, 11},
      {X86_INS_JL, 12}, {X86_INS_JGE, 13}, {X86_INS_JLE, 14}, {X86_INS_JG, 15},
  };
  for (const auto& j : kJcc)
    if (j.id == id) return j.cc;
  return -1;
}

std::string where(const void* target) { return fmt::format("hook of the function at {}", target); }

// Reads memory that may not be mapped (a jump table's end is a guess):
// process_vm_readv on this process fails instead of faulting.
bool safe_read(uint64_t address, void* out, size_t size) {
  iovec local{out, size};
  iovec remote{reinterpret_cast<void*>(address), size};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == ssize_t(size);
}

// ---- which branches reach the displaced bytes ----------------------------
//
// The code searched: the function's extent from the symbol table and the
// parts the compiler split off it ("name.cold", "name.part.0", reached by
// a jump from it), swept linearly; without a symbol, the code reachable
// from the entry by direct jumps and visible jump tables (kFlowBudget
// instructions within kFlowWindow of it, or the hook is refused).
constexpr uint64_t kFlowWindow = 1 << 20;
constexpr size_t kFlowBudget = 1 << 15;
constexpr size_t kMaxTableEntries = 4096;

struct Reach {
  std::vector<Insn> into;              // branches outside [lo, hi) that land in it
  std::vector<std::string> refusals;   // what cannot be re-aimed, named
};

class BranchScan {
 public:
  BranchScan(Decoder& dec, const std::optional<SymbolIndex>& index, const std::vector<Insn>& displaced, Reach& reach)
      : dec_(dec), index_(index), displaced_(displaced), reach_(reach), lo_(displaced.front().address),
        hi_(displaced.back().end()) {}

  void run() {
    std::optional<FunctionSymbol> f = index_ ? index_->function_at(lo_) : std::nullopt;
    if (f && f->start <= lo_) {  // the entry, or an instruction inside (a probe at FUNC+OFF)
      name_ = f->name;
      sweep(*f);
    } else {
      flow();
    }
  }
  // A sweep of the function from its start met no instruction starting at
  // the hooked address (it is inside one), or none was swept.
  bool off_boundary() const { return !name_.empty() && !hit_lo_; }
  const std::string& function_name() const { return name_; }

 private:
  bool in_regions(uint64_t a) const {
    for (const FunctionSymbol& r : regions_)
      if (a >= r.start && a < r.start + r.size) return true;
    return false;
  }

  // One instruction outside the displaced bytes. `follow`: the flow walk's
  // work list (null in a sweep).
  void visit(const Insn& in, std::vector<uint64_t>* follow) {
    if (in.relative_branch) {
      const uint64_t t = in.branch_target;
      if (t >= lo_ && t < hi_ && !(in.is_call && t == lo_)) reach_.into.push_back(in);  // calling the entry is a call
      if (!in.is_call && follow) follow->push_back(t);
      if (!in.is_call && !follow && !in_regions(t) && index_)
        if (std::optional<FunctionSymbol> part = index_->function_at(t);
            part && part->name.size() > name_.size() && part->name.starts_with(name_ + "."))
          pending_.push_back(*part);
    }
    if (in.def_reg) lea_[in.def_reg] = in.rip_target;
    if (in.mem_base)
      if (auto it = lea_.find(in.mem_base); it != lea_.end()) table(it->second, 4, in, follow);
    if (in.jmp_abs_table) table(in.table_disp, 8, in, follow);
  }

  // The entries of a jump table at `at`, `width` bytes each (4: relative to
  // the table; 8: absolute), as long as they point into the code searched.
  void table(uint64_t at, int width, const Insn& user, std::vector<uint64_t>* follow) {
    if (!tables_.insert(at).second) return;
    for (size_t k = 0; k < kMaxTableEntries; ++k) {
      uint64_t target;
      if (width == 4) {
        int32_t e;
        if (!safe_read(at + 4 * k, &e, 4)) break;
        target = at + uint64_t(int64_t(e));
      } else if (!safe_read(at + 8 * k, &target, 8)) {
        break;
      }
      const bool inside = follow ? target + kFlowWindow > lo_ && target < lo_ + kFlowWindow : in_regions(target);
      if (!inside) break;
      if (target >= lo_ && target < hi_)
        reach_.refusals.push_back(fmt::format(
            "entry {} of the jump table at {:#x} (used by {} at {:#x}) jumps into the displaced bytes (+{})", k, at,
            dec_.text(user), user.address, target - lo_));
      if (follow) follow->push_back(target);
    }
  }

  void sweep(const FunctionSymbol& f) {
    pending_.push_back(f);
    while (!pending_.empty()) {
      FunctionSymbol r = pending_.back();
      pending_.pop_back();
      if (in_regions(r.start)) continue;
      regions_.push_back(r);
      lea_.clear();
      if (r.start == lo_) hit_lo_ = true;
      if (r.start == lo_)
        for (const Insn& in : displaced_)
          if (in.def_reg) lea_[in.def_reg] = in.rip_target;
      for (uint64_t a = r.start == lo_ ? hi_ : r.start; a < r.start + r.size;) {
        if (a == lo_) {  // an instruction boundary: the displaced bytes are checked on their own
          hit_lo_ = true;
          a = hi_;
          continue;
        }
        if (a > lo_ && a < hi_) {  // decoding from the start ran into the displaced bytes mid-instruction
          a = hi_;
          continue;
        }
        Insn in;
        if (!dec_.next(reinterpret_cast<const uint8_t*>(a), size_t(r.start + r.size - a), in)) {
          ++a;  // data or padding in the code: step over
          continue;
        }
        visit(in, nullptr);
        a = in.end();
      }
    }
  }

  void flow() {
    std::vector<uint64_t> work{hi_};
    std::set<uint64_t> seen;
    size_t budget = kFlowBudget;
    while (!work.empty()) {
      uint64_t a = work.back();
      work.pop_back();
      if (a >= lo_ && a < hi_) continue;                               // displaced: checked on their own
      if (a + kFlowWindow <= lo_ || a >= lo_ + kFlowWindow) continue;  // a tail call far away
      lea_.clear();
      while (!(a >= lo_ && a < hi_) && seen.insert(a).second) {
        if (!budget--)
          throw Error(where(reinterpret_cast<void*>(lo_)),
                      fmt::format("the function has no symbol and following its control flow did not end within {} "
                                  "instructions, so its branches into the displaced bytes cannot all be found",
                                  kFlowBudget));
        uint8_t buf[16];
        size_t avail = sizeof buf;
        while (avail && !safe_read(a, buf, avail)) --avail;
        Insn in;
        if (!avail || !dec_.next(reinterpret_cast<const uint8_t*>(a), avail, in)) break;
        std::vector<uint64_t> next;
        visit(in, &next);
        work.insert(work.end(), next.begin(), next.end());
        if (in.ends_flow) break;
        a = in.end();
      }
    }
  }

  Decoder& dec_;
  const std::optional<SymbolIndex>& index_;
  const std::vector<Insn>& displaced_;
  Reach& reach_;
  uint64_t lo_, hi_;
  std::string name_;
  std::vector<FunctionSymbol> regions_, pending_;
  std::map<unsigned, uint64_t> lea_;  // register -> the rip-relative address a lea put in it
  std::set<uint64_t> tables_;
  bool hit_lo_ = false;
};

// A function that ends `n` (< kJumpSize) bytes after `lo` (its entry, or a
// probe near its end: a USDT site is often the nop before the last ret)
// can still take the jump when the bytes after it up to the next symbol
// are alignment padding, which no one runs: nops or int3 only, decoded as
// such. Returns why not, or "" when it can.
std::string padding_refusal(Decoder& dec, const std::optional<SymbolIndex>& index, uint64_t lo, size_t n) {
  if (!index) return "its object has no symbol table to bound the padding after it";
  const std::optional<FunctionSymbol> f = index->function_at(lo);
  if (!f) return "no function symbol holds it to bound the padding after it";
  if (f->start + f->size != lo + n)
    return fmt::format("its symbol ({}) ends {} bytes after it, so more than padding follows", f->name,
                       f->start + f->size - lo);
  const uint64_t end = index->next_symbol(lo);
  if (end < lo + kJumpSize)
    return fmt::format("the next symbol, at {:#x}, leaves {} bytes for the {}-byte jump", end, end - lo, kJumpSize);
  for (uint64_t a = lo + n; a < end;) {
    Insn in;
    if (!dec.next(reinterpret_cast<const uint8_t*>(a), size_t(end - a), in) ||
        (in.id != X86_INS_NOP && in.id != X86_INS_INT3))
      return fmt::format("the bytes after it at +{} are not padding (nop or int3) up to the next symbol at {:#x}",
                         a - lo, end);
    a = in.end();
  }
  return "";
}

// The code bytes the attached hooks of this process have patched (each
// one's entry and the branches it re-aimed). A hook that would patch any of
// them again (a probe inside another hook's entry or on a branch it
// re-aimed, or the reverse) is refused: each hook's detach writes back the
// bytes it saw, over the other's. Process-wide, as the code is; like
// live_patch.h's table of regions.
class PatchedBytes {
 public:
  static PatchedBytes& get() {
    static PatchedBytes* p = new PatchedBytes;  // never destroyed: hooks may outlive static destructors
    return *p;
  }
  void claim(const void* owner, uint64_t owner_at, const std::vector<std::pair<uint64_t, uint64_t>>& ranges,
             const std::string& at) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto [lo, hi] : ranges) refuse_overlap(lo, hi, at);
    for (auto [lo, hi] : ranges) ranges_.push_back({lo, hi, owner, owner_at});
  }
  // Throws when [lo, hi) holds bytes a hook patched (checked first, before
  // the patched code is decoded).
  void check(uint64_t lo, uint64_t hi, const std::string& at) {
    std::lock_guard<std::mutex> lock(mu_);
    refuse_overlap(lo, hi, at);
  }
  void release(const void* owner) {
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(ranges_, [&](const Range& r) { return r.owner == owner; });
  }

 private:
  struct Range {
    uint64_t lo, hi;
    const void* owner;
    uint64_t owner_at;
  };
  void refuse_overlap(uint64_t lo, uint64_t hi, const std::string& at) const {
    for (const Range& r : ranges_)
      if (lo < r.hi && r.lo < hi)
        throw Error(at, fmt::format("bytes [{:#x}, {:#x}) are already patched by the hook at {:#x} (its entry or a "
                                    "branch it re-aimed): two hooks may not patch the same bytes",
                                    std::max(lo, r.lo), std::min(hi, r.hi), r.owner_at));
  }
  std::mutex mu_;
  std::vector<Range> ranges_;
};

struct Opcodes {
  unsigned jmp_m, call_m, push_m, jmp_1, jcc_1, jmp_4, jcc_4, mov_ri, int3, rip, r11;
};
const Opcodes& opcodes() {
  static const Opcodes o = [] {
    const mc::McTarget& t = mc::McTarget::get(x86_64::kSpec);
    return Opcodes{t.opcode("JMP64m"), t.opcode("CALL64m"), t.opcode("PUSH64rmm"), t.opcode("JMP_1"), t.opcode("JCC_1"),
                   t.opcode("JMP_4"),  t.opcode("JCC_4"), t.opcode("MOV64ri"), t.opcode("INT3"),  t.reg("RIP"), t.reg("R11")};
  }();
  return o;
}

}  // namespace

void patch_code(void* address, const uint8_t* bytes, size_t size) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t first = reinterpret_cast<uintptr_t>(address) & ~(page - 1);
  const uintptr_t last = (reinterpret_cast<uintptr_t>(address) + size + page - 1) & ~(page - 1);
  const size_t len = last - first;
  void* copy = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (copy == MAP_FAILED) throw Error("runtime", std::string("mmap for patching failed: ") + strerror(errno));
  std::memcpy(copy, reinterpret_cast<void*>(first), len);
  std::memcpy(static_cast<uint8_t*>(copy) + (reinterpret_cast<uintptr_t>(address) - first), bytes, size);
  if (mprotect(copy, len, PROT_READ | PROT_EXEC) != 0 ||
      mremap(copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, reinterpret_cast<void*>(first)) == MAP_FAILED) {
    int e = errno;
    munmap(copy, len);
    throw Error("runtime", std::string("replacing the code pages failed: ") + strerror(e));
  }
  __builtin___clear_cache(reinterpret_cast<char*>(address), reinterpret_cast<char*>(address) + size);
}

// Whether [address, address + size) is mapped readable and executable
// (/proc/self/maps): what may be decoded and patched. Data, unmapped or
// write-protected-only memory is refused before a byte of it is read.
static bool executable(uint64_t address, size_t size) {
  FILE* maps = std::fopen("/proc/self/maps", "re");
  if (!maps) return false;
  bool ok = false;
  char line[512];
  uint64_t covered = address;  // [address, covered) is known executable
  while (!ok && std::fgets(line, sizeof line, maps)) {
    unsigned long long lo = 0, hi = 0;
    char perms[5] = {};
    if (std::sscanf(line, "%llx-%llx %4s", &lo, &hi, perms) != 3) continue;
    if (perms[0] != 'r' || perms[2] != 'x' || covered < lo || covered >= hi) continue;
    covered = hi;  // mappings come sorted: a range may span two
    ok = covered >= address + size;
  }
  std::fclose(maps);
  return ok;
}

std::unique_ptr<Hook> Hook::install(void* target, bool probe) {
  auto* code = static_cast<uint8_t*>(target);
  const std::string at = where(target);
  if (!executable(reinterpret_cast<uint64_t>(code), kJumpSize + 16))
    throw Error(at, "not executable code of this process (/proc/self/maps): nothing to hook");
  PatchedBytes::get().check(reinterpret_cast<uint64_t>(code), reinterpret_cast<uint64_t>(code) + 1, at);
  // Our own patches were refused just above; an int3 where code starts is
  // someone else's breakpoint, and the instruction it covers is unknown.
  if (code[0] == 0xCC)
    throw Error(at,
                "it starts with int3: a breakpoint another tool placed (a debugger, or a kernel uprobe on this file, "
                "which the kernel plants in every process mapping it); the instruction under it is unknown");
  bool room = true;
  try {
    PatchedBytes::get().check(reinterpret_cast<uint64_t>(code), reinterpret_cast<uint64_t>(code) + kJumpSize, at);
  } catch (const Error&) {
    if (!probe) throw;
    room = false;  // another hook's bytes within the jump's reach: a probe still has its own instruction's
  }
  if (room) try {
      return build(code, at, probe, false);
    } catch (const NoRoom&) {
      if (!probe) throw;
    }
  return build(code, at, probe, true);
}

// `breakpoint`: the probed instruction alone is displaced and its first
// byte becomes an int3 whose trap (live_patch.h) sends the thread to the
// thunk, as a kernel uprobe does with its trap; what runs then is the
// same. For probes where the jump does not fit; a trap per hit.
std::unique_ptr<Hook> Hook::build(uint8_t* code, const std::string& at, bool probe, bool breakpoint) {
  Decoder dec;
  const std::optional<SymbolIndex> index = SymbolIndex::of(code);
  std::vector<Insn> displaced;
  size_t n = 0;
  while (n < (breakpoint ? 1 : kJumpSize)) {
    Insn in;
    if (!dec.next(code + n, 16, in)) throw Error(at, fmt::format("cannot decode the instruction at +{}", n));
    if (in.id == X86_INS_LOOP || in.id == X86_INS_LOOPE || in.id == X86_INS_LOOPNE || in.id == X86_INS_JRCXZ ||
        in.id == X86_INS_JECXZ) {
      const std::string why = fmt::format("the instruction at +{} (loop/jrcxz) cannot be relocated", n);
      if (n) throw NoRoom(at, why);
      throw Error(at, why);
    }
    if (!breakpoint && in.is_call && n + in.bytes.size() < kJumpSize)
      throw NoRoom(at, fmt::format("the call at +{} would return into the middle of the entry jump", n));
    n += in.bytes.size();
    displaced.push_back(std::move(in));
    if (!breakpoint && displaced.back().ends_flow && n < kJumpSize) {
      const std::string why = padding_refusal(dec, index, reinterpret_cast<uint64_t>(code), n);
      if (!why.empty())
        throw NoRoom(at, fmt::format("the function is too short to hook: it ends after {} bytes (+{}: {}) and {}", n,
                                     displaced.back().address - reinterpret_cast<uint64_t>(code),
                                     dec.text(displaced.back()), why));
      break;  // the jump's last bytes go over the padding
    }
  }
  // The bytes the entry patch replaces: the displaced instructions, and
  // padding after a function shorter than the jump; a breakpoint's one.
  const size_t patched = breakpoint ? 1 : std::max(n, kJumpSize);
  const uint64_t lo = reinterpret_cast<uint64_t>(code), hi = lo + n;
  auto boundary = [&](uint64_t a) {  // the displaced instruction starting at `a`, or -1
    for (size_t k = 0; k < displaced.size(); ++k)
      if (displaced[k].address == a) return int(k);
    return -1;
  };
  auto named = [&](const Insn& in) {
    return fmt::format("the branch at {:#x} ({:+}: {})", in.address, int64_t(in.address - lo), dec.text(in));
  };
  for (const Insn& in : displaced)
    if (in.relative_branch && in.branch_target > lo && in.branch_target < hi &&
        (boundary(in.branch_target) < 0 || in.is_call))
      throw NoRoom(at, fmt::format("{} targets +{}, inside the displaced bytes", named(in), in.branch_target - lo));
  // Every branch from the rest of the function into [lo, hi) is re-aimed
  // at the relocated copy (also those to the entry itself: a loop's
  // back-edge, which must not run the trampoline once per iteration).
  Reach reach;
  BranchScan scan(dec, index, displaced, reach);
  scan.run();
  if (scan.off_boundary())
    throw Error(at, fmt::format("+{:#x} of {} is not the start of an instruction (decoding {} from its start "
                                "steps over it)",
                                lo - index->function_at(lo)->start, scan.function_name(), scan.function_name()));
  // A breakpoint replaces the probed instruction's first byte only: a
  // branch to it meets the breakpoint, none can land after it.
  if (breakpoint) reach = Reach{};
  if (!reach.refusals.empty()) throw NoRoom(at, reach.refusals.front());
  // A probe fires whenever its instruction runs, as a breakpoint there
  // would: a branch to it keeps going to the patched entry (and so to the
  // probe); only those to the later displaced instructions need the copy.
  if (probe) std::erase_if(reach.into, [&](const Insn& in) { return in.branch_target == lo; });
  for (const Insn& in : reach.into) {
    if (boundary(in.branch_target) < 0)
      throw NoRoom(at, fmt::format("{} lands inside a displaced instruction (+{})", named(in), in.branch_target - lo));
    if (in.rel_size != 4)
      throw NoRoom(at, fmt::format("{} jumps into the displaced bytes (+{}) with an 8-bit displacement, which cannot "
                                  "reach their relocated copy",
                                  named(in), in.branch_target - lo));
  }

  std::unique_ptr<Hook> hook(new Hook());
  hook->target_ = code;
  hook->displaced_ = patched;
  // A direct call is the last displaced instruction (one that is not is
  // refused above) and its copy returns to the original function just
  // past the patched bytes, so no thread is ever left to come back into
  // the stub; an indirect call's copy returns into the stub.
  for (const Insn& in : displaced) hook->calls_out_ = hook->calls_out_ || (in.is_call && !in.relative_branch);
  hook->saved_.assign(code, code + patched);
  hook->stub_ = ExecMemory::reserve_near(code, 4096);
  hook->slot_page_ = ExecMemory::reserve_near(code, sizeof(uint64_t));  // read-write data, never sealed
  hook->slot_ = reinterpret_cast<std::atomic<uint64_t>*>(hook->slot_page_.writable());
  const uint64_t base = reinterpret_cast<uint64_t>(hook->stub_.data());

  // Build thunk and stub with MC at their final address `base`.
  const Opcodes& op = opcodes();
  mc::Emitter out(mc::McTarget::get(x86_64::kSpec), mc::OutputKind::Bytes);
  llvm::MCContext& ctx = out.ctx();
  llvm::MCSymbol* start = out.named_symbol("thunk");
  out.begin_function(start, false, 1);
  const uint64_t slot_addr = reinterpret_cast<uint64_t>(hook->slot_);
  if (probe) {  // every register is live: jmp [rip + slot]
    const int64_t dist = int64_t(slot_addr) - int64_t(base);
    if (dist != int64_t(int32_t(dist)) || dist + 64 != int64_t(int32_t(dist + 64)))
      throw Error(at, "the jump slot is not within 2 GiB of the thunk");
    // The slot as "the thunk + distance": the rip-relative fixup subtracts the pc itself.
    out.emit(mc::I(op.jmp_m).r(op.rip).i(1).r(0).e(llvm::MCBinaryExpr::createAdd(
                 out.ref(start), llvm::MCConstantExpr::create(dist, ctx), ctx)).r(0));
  } else {
    out.emit(mc::I(op.mov_ri).r(op.r11).i(int64_t(slot_addr)));  // r11 is dead at a function's entry
    out.emit(mc::I(op.jmp_m).r(op.r11).i(1).r(0).i(0).r(0));
  }
  llvm::MCSymbol* stub = out.named_symbol("stub");
  out.begin_function(stub, false, 16);
  auto jump_abs = [&](uint64_t dest, unsigned opcode) {  // jmp/call/push [rip+data]; data: .quad dest
    llvm::MCSymbol* data = out.new_label();
    out.emit(mc::I(opcode).r(op.rip).i(1).r(0).e(out.ref(data)).r(0));
    if (opcode != op.jmp_m) {  // the next instruction follows (or a call returns here): step over the data
      llvm::MCSymbol* after = out.new_label();
      out.emit(mc::I(op.jmp_1).e(out.ref(after)));
      out.bind(data);
      out.u64(dest);
      out.bind(after);
    } else {
      out.bind(data);
      out.u64(dest);
    }
  };
  std::vector<llvm::MCSymbol*> labels;
  for (size_t k = 0; k < displaced.size(); ++k) labels.push_back(out.new_label());
  for (size_t k = 0; k < displaced.size(); ++k) {
    const Insn& in = displaced[k];
    out.bind(labels[k]);
    out.mark_symbol(fmt::format("d{}", k));
    const int cc = condition_of(in.id);
    // A branch back into the displaced bytes stays inside the copy (a
    // probe's own instruction excepted: that goes through the probe again).
    int inner = in.relative_branch && !in.is_call ? boundary(in.branch_target) : -1;
    if (probe && inner == 0) inner = -1;
    if (inner >= 0 && cc >= 0) {
      out.emit(mc::I(op.jcc_4).e(out.ref(labels[size_t(inner)])).i(cc));
    } else if (inner >= 0) {
      out.emit(mc::I(op.jmp_4).e(out.ref(labels[size_t(inner)])));
    } else if (in.relative_branch && cc >= 0) {  // jcc: inverted jcc over an absolute jump
      llvm::MCSymbol* skip = out.new_label();
      out.emit(mc::I(op.jcc_1).e(out.ref(skip)).i(cc ^ 1));
      jump_abs(in.branch_target, op.jmp_m);
      out.bind(skip);
    } else if (in.relative_branch && in.is_call) {  // push the original return address; jmp to the callee
      jump_abs(in.end(), op.push_m);
      jump_abs(in.branch_target, op.jmp_m);
    } else if (in.relative_branch) {
      jump_abs(in.branch_target, op.jmp_m);
    } else if (in.disp_offset >= 0) {
      // Same instruction, its disp32 re-aimed at the same absolute address:
      // disp = (destination - base) - (end of instruction - start).
      llvm::MCSymbol* end = out.new_label();
      out.bytes(in.bytes.data(), size_t(in.disp_offset));
      out.value(llvm::MCBinaryExpr::createSub(
                    llvm::MCConstantExpr::create(int64_t(in.rip_target) - int64_t(base), ctx),
                    llvm::MCBinaryExpr::createSub(out.ref(end), out.ref(start), ctx), ctx),
                4);
      out.bytes(in.bytes.data() + in.disp_offset + 4, in.bytes.size() - size_t(in.disp_offset) - 4);
      out.bind(end);
    } else {
      out.bytes(in.bytes.data(), in.bytes.size());
    }
  }
  if (!displaced.back().ends_flow && !(displaced.back().is_call && displaced.back().relative_branch))
    jump_abs(hi, op.jmp_m);
  mc::CodeImage image = out.finish();
  if (image.text.size() > 4096) throw Error(at, "relocated stub does not fit in a page");
  for (size_t k = 0; k < displaced.size(); ++k)
    hook->moved_.push_back({uint32_t(displaced[k].address - lo), base + *image.symbol(fmt::format("d{}", k))});

  // The branches re-aimed: the same instruction, its rel32 now reaching the copy.
  for (const Insn& in : reach.into) {
    const uint64_t dest = hook->moved_[size_t(boundary(in.branch_target))].second;
    const int64_t disp = int64_t(dest) - int64_t(in.end());
    if (disp != int64_t(int32_t(disp)))
      throw NoRoom(at, fmt::format("{} cannot reach the relocated copy at {:#x}", named(in), dest));
    CodePatch p{reinterpret_cast<uint8_t*>(in.address), in.bytes, in.bytes};
    const int32_t d32 = int32_t(disp);
    std::memcpy(p.bytes.data() + p.bytes.size() - 4, &d32, 4);
    hook->reaimed_.push_back(std::move(p));
  }

  std::memcpy(hook->stub_.writable(), image.text.data(), image.text.size());
  hook->stub_.seal();
  hook->stub_offset_ = image.function_offsets[1];
  hook->slot_->store(reinterpret_cast<uint64_t>(hook->original()));

  // The entry: jmp rel32 to the thunk, the rest of the displaced bytes
  // int3; or the breakpoint alone.
  mc::Emitter patch(mc::McTarget::get(x86_64::kSpec), mc::OutputKind::Bytes);
  llvm::MCSymbol* entry = patch.named_symbol("patch");
  patch.begin_function(entry, false, 1);
  // The thunk as "this entry + distance", so MC resolves the rel32 itself.
  if (!breakpoint)
    patch.emit(mc::I(op.jmp_4).e(llvm::MCBinaryExpr::createAdd(
        patch.ref(entry), llvm::MCConstantExpr::create(int64_t(base) - int64_t(lo), patch.ctx()), patch.ctx())));
  for (size_t k = breakpoint ? 0 : kJumpSize; k < patched; ++k) patch.emit(mc::I(op.int3));
  mc::CodeImage bytes = patch.finish();
  if (bytes.text.size() != patched) throw Error(at, "internal: entry patch has the wrong size");
  hook->breakpoint_ = breakpoint;
  // Re-aimed branches first (the copy behaves as the bytes it copies),
  // then the entry.
  // The entry by the breakpoint protocol (live_patch.h): a thread that
  // stands between two displaced instructions is moved into the copy.
  std::vector<std::pair<uint64_t, uint64_t>> mine{{lo, lo + patched}};
  for (const CodePatch& p : hook->reaimed_)
    mine.push_back({reinterpret_cast<uint64_t>(p.at), reinterpret_cast<uint64_t>(p.at) + p.bytes.size()});
  PatchedBytes::get().claim(hook.get(), lo, mine, at);
  try {
    // A trap on the breakpoint continues at the thunk, as the jump would;
    // during the jump's patching, at the copy.
    const std::vector<std::pair<uint32_t, uint64_t>> to_thunk{{0, base}};
    hook->relocated_ = breakpoint ? std::make_unique<Relocated>(lo, lo + 1, to_thunk)
                                  : std::make_unique<Relocated>(lo, hi, hook->moved_);
  } catch (...) {
    PatchedBytes::get().release(hook.get());
    throw;
  }
  for (const CodePatch& p : hook->reaimed_) patch_code(p.at, p.bytes.data(), p.bytes.size());
  try {
    poke_live(code, bytes.text.data(), patched, true);
  } catch (...) {
    for (auto it = hook->reaimed_.rbegin(); it != hook->reaimed_.rend(); ++it)
      patch_code(it->at, it->saved.data(), it->saved.size());
    PatchedBytes::get().release(hook.get());  // every byte is as it was
    // The breakpoint was in place for a while: a thread that met it may
    // still be on its way into the trap handler, which moves it into the
    // copy. With no stop round to tell when none is (one just failed), the
    // region and the copy stay, deliberately never freed.
    (void)hook.release();
    throw;
  }
  hook->attached_ = true;
  return hook;
}

void Hook::redirect(const void* destination) {
  slot_->store(reinterpret_cast<uint64_t>(destination), std::memory_order_release);
}

void Hook::detach() {
  if (!attached_) return;
  redirect(original());
  poke_live(target_, saved_.data(), saved_.size(), false);  // no thread can stand inside the jump
  for (auto it = reaimed_.rbegin(); it != reaimed_.rend(); ++it) patch_code(it->at, it->saved.data(), it->saved.size());
  PatchedBytes::get().release(this);
  attached_ = false;
}

Hook::~Hook() { detach(); }

}  // namespace sb::rt
