#include "backends/listing.h"

#include <fmt/format.h>

#include "backends/mc/disasm.h"
#include "frontend/disassembler.h"

namespace sb {

std::string listing(const bpf::Program& p, Arch arch, const mc::CodeImage& image) {
  std::vector<mc::DisasmLine> lines = mc::disassemble(arch, image.text);
  std::string out;
  size_t line = 0, next_insn = 0;
  auto bpf_text = [&](size_t k) {
    const bpf::Insn* second = bpf::is_lddw(p.insns[k]) && k + 1 < p.insns.size() ? &p.insns[k + 1] : nullptr;
    return bpf::disassemble(p.insns[k], second);
  };
  auto skip_to = [&](size_t k) {  // instructions that produced no code (le64, ...)
    for (; next_insn < k && next_insn < p.insns.size(); ++next_insn) {
      out += fmt::format("; {:4}: {:<32} (no code)\n", next_insn, bpf_text(next_insn));
      if (bpf::is_lddw(p.insns[next_insn])) ++next_insn;
    }
  };
  for (size_t o = 0; o < image.origins.size(); ++o) {
    const mc::Origin& origin = image.origins[o];
    const uint64_t end = o + 1 < image.origins.size() ? image.origins[o + 1].offset : image.text.size();
    if (origin.insn == mc::kOriginPrologue) {
      out += "; prologue\n";
    } else if (origin.insn == mc::kOriginExitStub) {
      out += "; program exit\n";
    } else {
      skip_to(origin.insn);
      out += fmt::format("; {:4}: {}\n", origin.insn, bpf_text(origin.insn));
      next_insn = std::max<size_t>(next_insn, origin.insn + (bpf::is_lddw(p.insns[origin.insn]) ? 2 : 1));
    }
    for (; line < lines.size() && lines[line].address < end; ++line) {
      const mc::DisasmLine& l = lines[line];
      std::string bytes;
      for (uint32_t b = 0; b < l.size; ++b) bytes += fmt::format("{:02x}", image.text[l.address + b]);
      out += fmt::format("    {:6x}:  {:<20} {}\n", l.address, bytes, l.text);
    }
  }
  skip_to(p.insns.size());
  return out;
}

}  // namespace sb
