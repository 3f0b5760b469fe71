// x86-64 function entry hooking: decode the first instructions with
// Capstone, relocate them into a stub built with LLVM MC, patch the entry.
#include "runtime/hook/hook_x86_64.h"

#include <capstone/capstone.h>
#include <dlfcn.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <llvm/MC/MCExpr.h>

#include "backends/mc/emitter.h"
#include "backends/mc/inst.h"
#include "backends/x86_64/x86_64.h"
#include "ir/diag.h"

namespace sb::rt {

namespace {

constexpr size_t kJumpSize = 5;  // jmp rel32: what the entry is replaced by

struct Insn {
  uint64_t address;
  std::vector<uint8_t> bytes;
  unsigned id;
  bool relative_branch;  // jmp/jcc/call rel, target in `branch_target`
  uint64_t branch_target;
  int disp_offset;       // rip-relative: where its disp32 is; -1 otherwise
  bool ends_flow;        // ret, unconditional jmp, ud2, int3, hlt
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
  // Decodes one instruction at `code` (its runtime address), or returns false.
  bool next(const uint8_t* code, size_t size, Insn& out) {
    const uint8_t* p = code;
    uint64_t addr = reinterpret_cast<uint64_t>(code);
    if (!cs_disasm_iter(h_, &p, &size, &addr, insn_)) return false;
    out.address = insn_->address;
    out.bytes.assign(insn_->bytes, insn_->bytes + insn_->size);
    out.id = insn_->id;
    out.relative_branch = cs_insn_group(h_, insn_, CS_GRP_BRANCH_RELATIVE);
    out.branch_target = 0;
    out.disp_offset = -1;
    const cs_x86& x = insn_->detail->x86;
    for (uint8_t i = 0; i < x.op_count; ++i) {
      if (out.relative_branch && x.operands[i].type == X86_OP_IMM) out.branch_target = uint64_t(x.operands[i].imm);
      if (x.operands[i].type == X86_OP_MEM && x.operands[i].mem.base == X86_REG_RIP) out.disp_offset = x.encoding.disp_offset;
    }
    out.ends_flow = cs_insn_group(h_, insn_, CS_GRP_RET) || insn_->id == X86_INS_JMP || insn_->id == X86_INS_UD2 ||
                    insn_->id == X86_INS_INT3 || insn_->id == X86_INS_HLT;
    return true;
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

// The function's size from the symbol table, when the loader knows it.
size_t function_size(void* target) {
  Dl_info info;
  void* extra = nullptr;
  if (!dladdr1(target, &info, &extra, RTLD_DL_SYMENT) || !extra || info.dli_saddr != target) return 0;
  return static_cast<const ElfW(Sym)*>(extra)->st_size;
}

struct Opcodes {
  unsigned jmp_m, call_m, jmp_1, jcc_1, jmp_4, mov_ri, int3, rip, r11;
};
const Opcodes& opcodes() {
  static const Opcodes o = [] {
    const mc::McTarget& t = mc::McTarget::get(x86_64::kSpec);
    return Opcodes{t.opcode("JMP64m"), t.opcode("CALL64m"), t.opcode("JMP_1"), t.opcode("JCC_1"),
                   t.opcode("JMP_4"),  t.opcode("MOV64ri"), t.opcode("INT3"),  t.reg("RIP"), t.reg("R11")};
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

std::unique_ptr<Hook> Hook::install(void* target) {
  auto* code = static_cast<uint8_t*>(target);
  Decoder dec;
  std::vector<Insn> displaced;
  size_t n = 0;
  while (n < kJumpSize) {
    Insn in;
    if (!dec.next(code + n, 16, in))
      throw Error(where(target), fmt::format("cannot decode the instruction at +{}", n));
    if (in.id == X86_INS_LOOP || in.id == X86_INS_LOOPE || in.id == X86_INS_LOOPNE || in.id == X86_INS_JRCXZ ||
        in.id == X86_INS_JECXZ)
      throw Error(where(target), fmt::format("the instruction at +{} (loop/jrcxz) cannot be relocated", n));
    n += in.bytes.size();
    displaced.push_back(std::move(in));
    if (displaced.back().ends_flow && n < kJumpSize)
      throw Error(where(target), fmt::format("the function is too short to hook: it ends after {} bytes", n));
  }
  const uint64_t lo = reinterpret_cast<uint64_t>(code), hi = lo + n;
  auto into_displaced = [&](const Insn& in) {
    return in.relative_branch && in.branch_target > lo && in.branch_target < hi;
  };
  for (const Insn& in : displaced)
    if (into_displaced(in))
      throw Error(where(target), fmt::format("the instruction at +{} branches into the displaced bytes (+{})",
                                             in.address - lo, in.branch_target - lo));
  // The rest of the function must not branch back into the bytes replaced.
  if (size_t size = function_size(target); size > n) {
    for (size_t off = n; off < size;) {
      Insn in;
      if (!dec.next(code + off, size - off, in)) break;  // data or padding: stop
      if (into_displaced(in))
        throw Error(where(target), fmt::format("the instruction at +{} branches into the displaced bytes (+{})",
                                               off, in.branch_target - lo));
      off += in.bytes.size();
    }
  }

  std::unique_ptr<Hook> hook(new Hook());
  hook->target_ = code;
  hook->displaced_ = n;
  hook->saved_.assign(code, code + n);
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
  out.emit(mc::I(op.mov_ri).r(op.r11).i(int64_t(reinterpret_cast<uint64_t>(hook->slot_))));  // r11 is dead at entry
  out.emit(mc::I(op.jmp_m).r(op.r11).i(1).r(0).i(0).r(0));
  llvm::MCSymbol* stub = out.named_symbol("stub");
  out.begin_function(stub, false, 16);
  auto jump_abs = [&](uint64_t dest, unsigned opcode) {  // jmp/call [rip+data]; data: .quad dest
    llvm::MCSymbol* data = out.new_label();
    out.emit(mc::I(opcode).r(op.rip).i(1).r(0).e(out.ref(data)).r(0));
    if (opcode == op.call_m) {  // a call returns here: step over the data
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
  for (const Insn& in : displaced) {
    const int cc = condition_of(in.id);
    if (in.relative_branch && cc >= 0) {  // jcc: inverted jcc over an absolute jump
      llvm::MCSymbol* skip = out.new_label();
      out.emit(mc::I(op.jcc_1).e(out.ref(skip)).i(cc ^ 1));
      jump_abs(in.branch_target, op.jmp_m);
      out.bind(skip);
    } else if (in.relative_branch) {
      jump_abs(in.branch_target, in.id == X86_INS_CALL ? op.call_m : op.jmp_m);
    } else if (in.disp_offset >= 0) {
      // Same instruction, its disp32 re-aimed at the same absolute address:
      // disp = (destination - base) - (end of instruction - start).
      int32_t old_disp;
      std::memcpy(&old_disp, &in.bytes[size_t(in.disp_offset)], 4);
      const int64_t dest = int64_t(in.address + in.bytes.size()) + old_disp;
      llvm::MCSymbol* end = out.new_label();
      out.bytes(in.bytes.data(), size_t(in.disp_offset));
      out.value(llvm::MCBinaryExpr::createSub(
                    llvm::MCConstantExpr::create(dest - int64_t(base), ctx),
                    llvm::MCBinaryExpr::createSub(out.ref(end), out.ref(start), ctx), ctx),
                4);
      out.bytes(in.bytes.data() + in.disp_offset + 4, in.bytes.size() - size_t(in.disp_offset) - 4);
      out.bind(end);
    } else {
      out.bytes(in.bytes.data(), in.bytes.size());
    }
  }
  jump_abs(hi, op.jmp_m);
  mc::CodeImage image = out.finish();
  if (image.text.size() > 4096) throw Error(where(target), "relocated stub does not fit in a page");
  std::memcpy(hook->stub_.writable(), image.text.data(), image.text.size());
  hook->stub_.seal();
  hook->stub_offset_ = image.function_offsets[1];
  hook->slot_->store(reinterpret_cast<uint64_t>(hook->original()));

  // The entry: jmp rel32 to the thunk, the rest of the displaced bytes int3.
  mc::Emitter patch(mc::McTarget::get(x86_64::kSpec), mc::OutputKind::Bytes);
  llvm::MCSymbol* entry = patch.named_symbol("patch");
  patch.begin_function(entry, false, 1);
  // The thunk as "this entry + distance", so MC resolves the rel32 itself.
  patch.emit(mc::I(op.jmp_4).e(llvm::MCBinaryExpr::createAdd(
      patch.ref(entry), llvm::MCConstantExpr::create(int64_t(base) - int64_t(lo), patch.ctx()), patch.ctx())));
  for (size_t k = kJumpSize; k < n; ++k) patch.emit(mc::I(op.int3));
  mc::CodeImage bytes = patch.finish();
  if (bytes.text.size() != n) throw Error(where(target), "internal: entry patch has the wrong size");
  patch_code(code, bytes.text.data(), n);
  hook->attached_ = true;
  return hook;
}

void Hook::redirect(const void* destination) {
  slot_->store(reinterpret_cast<uint64_t>(destination), std::memory_order_release);
}

void Hook::detach() {
  if (!attached_) return;
  redirect(original());
  patch_code(target_, saved_.data(), saved_.size());
  attached_ = false;
}

Hook::~Hook() { detach(); }

}  // namespace sb::rt
