#include "backends/aot.h"

#include <cctype>
#include <map>

#include <fmt/format.h>

#include "backends/compile.h"
#include "backends/isel.h"
#include "ir/diag.h"

namespace sb::aot {

namespace {

bool is_identifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

std::string checked(std::string symbol, const std::string& what) {
  if (!is_identifier(symbol)) throw Error(what, fmt::format("'{}' is not a C identifier", symbol));
  return symbol;
}

// .rodata.str1.1 -> rodata_str1_1
std::string section_part(const std::string& section) {
  std::string s = section;
  while (!s.empty() && s[0] == '.') s.erase(0, 1);
  for (char& c : s)
    if (c == '.') c = '_';
  return s;
}

mc::DataSection data_section(const bpf::MapDef& map) {
  if (map.name.rfind(".rodata", 0) == 0) return mc::DataSection::ReadOnly;
  if (map.name.rfind(".bss", 0) == 0) return mc::DataSection::Zero;
  return mc::DataSection::Data;
}

class SymbolTable {
 public:
  explicit SymbolTable(std::vector<std::string>& names) : names_(names) {}
  uint32_t intern(const std::string& name) {
    auto [it, fresh] = index_.try_emplace(name, uint32_t(names_.size()));
    if (fresh) names_.push_back(name);
    return it->second;
  }

 private:
  std::vector<std::string>& names_;
  std::map<std::string, uint32_t> index_;
};

}  // namespace

std::string helper_symbol(const rt::Helper& h) {
  const std::string suffix = h.name.empty() ? std::to_string(h.id) : h.name;
  return checked("sb_helper_" + suffix, fmt::format("helper {}", h.id));
}

std::string map_symbol(const bpf::MapDef& map) {
  return checked("sb_map_" + map.name, fmt::format("map '{}'", map.name));
}

std::string data_symbol(const std::string& program, const bpf::MapDef& map) {
  return checked(program + "_" + section_part(map.name), fmt::format("global data '{}'", map.name));
}

void link_symbols(ir::Module& m, const std::string& name, const rt::HelperTable& helpers, const Links& links,
                  const std::string& program_name) {
  checked(name, "program symbol");
  SymbolTable symbols(m.symbols);
  std::map<uint32_t, const bpf::MapRef*> by_insn;
  for (const bpf::MapRef& r : links.refs) {
    if (r.map >= links.maps.size())
      throw Error(insn_location(program_name, r.insn), fmt::format("lddw names map {} of {}", r.map, links.maps.size()));
    by_insn[uint32_t(r.insn)] = &r;
  }
  size_t linked = 0;
  for (ir::Function& fn : m.functions) {
    std::vector<ir::Inst> code;
    code.reserve(fn.code.size());
    for (const ir::Inst& i : fn.code) {
      ir::Inst out = i;
      switch (i.op) {
        case ir::Op::Call: {
          const rt::Helper* h = helpers.find(i.target);
          if (!h) throw Error(insn_location(program_name, i.origin), fmt::format("call to unknown helper {}", i.target));
          out.op = ir::Op::CallSym;
          out.target = symbols.intern(helper_symbol(*h));
          break;
        }
        case ir::Op::LoadImm: {
          auto it = by_insn.find(i.origin);
          if (it == by_insn.end()) break;
          const bpf::MapRef& r = *it->second;
          const bpf::MapDef& map = links.maps[r.map];
          out.op = ir::Op::LoadSym;
          out.target = symbols.intern(r.value ? data_symbol(name, map) : map_symbol(map));
          out.imm = int64_t(r.offset);
          ++linked;
          break;
        }
        case ir::Op::Trap: {  // r0 = sb_trap(code, insn, NAME); end the program
          auto add = [&](ir::Inst x) {
            x.origin = i.origin;
            code.push_back(x);
          };
          add(ir::alu_imm(ir::Op::Mov, 64, 1, int64_t(i.target)));
          add(ir::alu_imm(ir::Op::Mov, 64, 2, int64_t(i.origin)));
          ir::Inst self;
          self.op = ir::Op::LoadSym, self.dst = 3, self.target = symbols.intern(name);
          add(self);
          ir::Inst call;
          call.op = ir::Op::CallSym, call.target = symbols.intern(kTrapSymbol);
          add(call);
          out = ir::Inst{};
          out.op = ir::Op::Unwind;
          break;
        }
        default:
          break;
      }
      code.push_back(out);
    }
    fn.code = std::move(code);
  }
  if (linked != by_insn.size())
    throw Error(program_name, fmt::format("{} of {} map references found no lddw in the lowered program", by_insn.size() - linked,
                                          by_insn.size()));
}

mc::CodeImage compile_object(const bpf::Program& p, const rt::HelperTable& helpers, const Links& links,
                             const ObjectOptions& opts) {
  ir::Module m = to_ir(p, helpers);
  link_symbols(m, opts.name, helpers, links, p.name);
  ir::check(m);
  const backend::TargetDesc& target = backend::target_for(opts.arch);
  mc::Emitter out(mc::McTarget::get(target.spec), opts.output);
  backend::CodegenOptions copts;  // no helper addresses: every call is by symbol
  target.make_isel(out, copts)->run(m, opts.name);
  std::vector<bool> used(links.maps.size(), false);
  for (const bpf::MapRef& r : links.refs)
    if (r.value) used[r.map] = true;
  for (size_t k = 0; k < links.maps.size(); ++k) {
    if (!used[k]) continue;
    const bpf::MapDef& map = links.maps[k];
    out.data_object(data_symbol(opts.name, map), map.initial, map.value_size, data_section(map));
  }
  return out.finish();
}

}  // namespace sb::aot
