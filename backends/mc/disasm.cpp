#include "backends/mc/disasm.h"

#include <capstone/capstone.h>
#include <llvm/MC/MCContext.h>
#include <llvm/MC/MCDisassembler/MCDisassembler.h>
#include <llvm/MC/MCInst.h>
#include <llvm/MC/MCInstPrinter.h>
#include <llvm/Support/raw_ostream.h>

#include <fmt/format.h>

#include "ir/diag.h"

namespace sb::mc {

namespace {

std::string squeeze(std::string s) {  // tabs and runs of spaces -> one space
  std::string out;
  for (char c : s) {
    if (c == '\t') c = ' ';
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::vector<DisasmLine> with_capstone(cs_arch arch, cs_mode mode, bool att,
                                      std::span<const uint8_t> code, uint64_t address) {
  csh handle;
  if (cs_open(arch, mode, &handle) != CS_ERR_OK) throw Error("capstone", "cs_open failed");
  if (att) cs_option(handle, CS_OPT_SYNTAX, CS_OPT_SYNTAX_ATT);
  std::vector<DisasmLine> lines;
  const uint8_t* p = code.data();
  size_t left = code.size();
  uint64_t addr = address;
  cs_insn* insn = cs_malloc(handle);
  while (left > 0) {
    if (!cs_disasm_iter(handle, &p, &left, &addr, insn)) {
      cs_free(insn, 1);
      cs_close(&handle);
      throw Error("capstone", fmt::format("cannot decode the bytes at {:#x}", addr));
    }
    std::string text = insn->mnemonic;
    if (insn->op_str[0]) text += std::string(" ") + insn->op_str;
    lines.push_back({insn->address, insn->size, squeeze(text)});
  }
  cs_free(insn, 1);
  cs_close(&handle);
  return lines;
}

std::vector<DisasmLine> with_llvm(const McTarget& t, std::span<const uint8_t> code, uint64_t address) {
  llvm::MCContext ctx(t.triple(), &t.mai(), &t.mri(), &t.sti(), nullptr, &t.options());
  std::unique_ptr<llvm::MCDisassembler> dis = t.create_disassembler(ctx);
  std::unique_ptr<llvm::MCInstPrinter> printer(
      t.target().createMCInstPrinter(t.triple(), 0, t.mai(), t.mii(), t.mri()));
  if (!dis || !printer) throw Error("LLVM", "no disassembler for " + t.triple().str());
  printer->setPrintBranchImmAsAddress(true);  // absolute targets, as Capstone prints them
  std::vector<DisasmLine> lines;
  llvm::ArrayRef<uint8_t> bytes(code.data(), code.size());
  uint64_t offset = 0;
  while (offset < bytes.size()) {
    llvm::MCInst inst;
    uint64_t size = 0;
    if (dis->getInstruction(inst, size, bytes.slice(offset), address + offset, llvm::nulls()) !=
        llvm::MCDisassembler::Success) {
      throw Error("LLVM", fmt::format("cannot decode the bytes at {:#x}", address + offset));
    }
    std::string text;
    llvm::raw_string_ostream os(text);
    printer->printInst(&inst, address + offset, "", t.sti(), os);
    os.flush();
    lines.push_back({address + offset, uint32_t(size), squeeze(text.substr(text.find_first_not_of(" \t")))});
    offset += size;
  }
  return lines;
}

}  // namespace

std::vector<DisasmLine> disassemble(Arch arch, std::span<const uint8_t> code, uint64_t address) {
  switch (arch) {
    case Arch::X86_64: return with_capstone(CS_ARCH_X86, CS_MODE_64, true, code, address);
    case Arch::Arm64: return with_capstone(CS_ARCH_ARM64, CS_MODE_LITTLE_ENDIAN, false, code, address);
    case Arch::Riscv64: {
      // The backend's spec and C: hooked functions (runtime/hook/hook_guest.h) may be compressed.
      constexpr TargetSpec kRiscv64C = {"riscv64-unknown-linux-gnu", "generic-rv64", "+m,+a,+f,+d,+c"};
      return with_llvm(McTarget::get(kRiscv64C), code, address);
    }
  }
  return {};
}

std::string disassemble_text(Arch arch, std::span<const uint8_t> code) {
  std::string out;
  for (const DisasmLine& l : disassemble(arch, code)) out += l.text + "\n";
  return out;
}

}  // namespace sb::mc
