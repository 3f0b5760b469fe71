// Golden tests (design example 6): each test/golden/*.golden file holds a
// program in the conformance assembler syntax, or a trampoline description,
// followed by the expected IR and the expected disassembly for every built
// architecture:
//
//   -- asm            the input: a program
//   -- trampoline     or the input: a trampoline description (JSON, programs
//                     inline as "asm"), lowered with the placeholder addresses
//                     `springboard trampoline` prints (0x10.. original, 0x20..
//                     enter/exit, 0x30..+0x100*i program i, 0x40.. its state)
//   -- aot            or the input: a program compiled as an ahead-of-time
//                     object (backends/aot.h); the ir section is then the
//                     linked module and each architecture's section LLVM's
//                     assembly of the object. `lddw %rN, 0xMMOOOOOOOO` names
//                     map MM of kAotMaps at offset OOOOOOOO (0 counts, a hash
//                     map; 1 .bss and 2 .rodata, global data)
//   -- ir             ir::print of the lowered module
//   -- x86-64         one instruction per line (backends/mc/disasm.h)
//   -- arm64 / -- riscv64
//
// A header line `# type: NAME` runs the program as that program type
// (frontend/progtypes/): its context loads are rewritten to the native
// context. A header line `# in-flight: on` binds a trampoline as this
// process binds its own (runtime/hook/trampoline.cpp): the in-flight stack
// at thread pointer - 0x500, image token 0x50...
// A header line `# passes: off` selects the IR as lowered, without the IR
// passes (ir/passes.h: constant propagation, dead-code removal, address
// folding...) a JIT compile runs: for files that show how single
// instructions are selected, whose results nothing reads.
//
// Run with UPDATE_GOLDEN=1 to rewrite the expected sections from the
// current output (then review the diff before committing it).
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "backends/aot.h"
#include "backends/compile.h"
#include "runtime/helpers/tail_call.h"
#include "backends/mc/disasm.h"
#include "frontend/assembler.h"
#include "frontend/progtypes/program_type.h"
#include "frontend/trampoline.h"
#include "ir/diag.h"

namespace sb::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> golden_files() {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(SB_GOLDEN_DIR))
    if (e.path().extension() == ".golden") files.push_back(e.path().stem().string());
  std::sort(files.begin(), files.end());
  return files;
}

// Sections in file order; the text before the first one is kept as a header.
struct GoldenFile {
  std::string header;
  std::vector<std::pair<std::string, std::string>> sections;
  const std::string* find(const std::string& name) const {
    for (const auto& [n, body] : sections)
      if (n == name) return &body;
    return nullptr;
  }
};

GoldenFile parse(const std::string& text) {
  GoldenFile g;
  std::istringstream in(text);
  std::string line;
  std::string* body = &g.header;
  while (std::getline(in, line)) {
    if (line.rfind("-- ", 0) == 0) {
      g.sections.emplace_back(line.substr(3), "");
      body = &g.sections.back().second;
      continue;
    }
    *body += line + "\n";
  }
  return g;
}

// Deterministic helper addresses, so call sequences are stable.
uint64_t fake_helper_address(uint32_t id) { return 0x10000 + 0x100 * uint64_t(id); }

std::map<std::string, std::string> generate_all(const bpf::Program& p, bool optimize) {
  std::map<std::string, std::string> out;
  rt::HelperTable helpers = rt::HelperTable::conformance();
  helpers.add_tail_call(rt::kTailCallHelperId, "tail_call", nullptr);
  out["ir"] = ir::print(to_ir(p, helpers, optimize));
  for (const backend::TargetDesc* t : backend::targets()) {
    CompileOptions opts;
    opts.arch = t->arch;
    opts.helper_address = fake_helper_address;
    opts.optimize = optimize;
    mc::CodeImage image = compile(p, helpers, opts).image;
    out[t->name] = mc::disassemble_text(t->arch, image.text);
  }
  return out;
}


std::map<std::string, std::string> generate_trampoline(const std::string& json, const std::string& file,
                                                       bool in_flight) {
  const tramp::Description d = tramp::parse_description(json, file);
  tramp::Bindings b = tramp::placeholder_bindings(d);
  if (in_flight) {  // as runtime/hook/trampoline.cpp binds an in-process image
    b.in_flight_tls = -0x500;
    b.in_flight_capacity = 63;
    b.image_token = 0x5000000000;
    b.guard_tls = -0x600;  // every program plain: enter and exit inline
    b.plain.assign(d.programs.size(), 1);
  }
  ir::Module m = tramp::lower(d, b);
  ir::check(m);
  std::map<std::string, std::string> out;
  out["ir"] = ir::print(m);
  for (const backend::TargetDesc* t : backend::targets()) {
    CompileOptions opts;
    opts.arch = t->arch;
    try {
      out[t->name] = mc::disassemble_text(t->arch, generate(m, opts).text);
    } catch (const Error& e) {  // a shape a backend does not have yet (probes on arm64, riscv64) says so
      out[t->name] = std::string("error: ") + e.what() + "\n";
    }
  }
  return out;
}

const std::vector<bpf::MapDef> kAotMaps = {
    {"counts", 1, 4, 8, 16, 0, false, {}, {}, 0},
    {".bss", 2, 4, 16, 1, 0, true, {}, {}, 0},
    {".rodata", 2, 4, 4, 1, 0x80, true, {1, 2, 3, 4}, {}, 0},
};

std::map<std::string, std::string> generate_aot(const bpf::Program& p) {
  std::vector<bpf::MapRef> refs;
  for (size_t i = 0; i + 1 < p.insns.size(); ++i)
    if (p.insns[i].opcode == 0x18) {
      const uint64_t v = uint64_t(uint32_t(p.insns[i].imm)) | uint64_t(uint32_t(p.insns[i + 1].imm)) << 32;
      const size_t map = size_t(v >> 32);
      if (map >= kAotMaps.size()) throw Error("golden", "lddw names no map of kAotMaps");
      refs.push_back({i, map, v & 0xffffffffu, kAotMaps[map].global_data});
      ++i;
    }
  const aot::Links links{kAotMaps, refs};
  rt::HelperTable helpers = rt::HelperTable::conformance();
  std::map<std::string, std::string> out;
  ir::Module m = to_ir(p, helpers);
  aot::link_symbols(m, "prog", helpers, links, p.name);
  out["ir"] = ir::print(m);
  for (const backend::TargetDesc* t : backend::targets())
    out[t->name] = aot::compile_object(p, helpers, links, {t->arch, "prog", mc::OutputKind::Asm}).asm_text;
  return out;
}

class Golden : public testing::TestWithParam<std::string> {};

TEST_P(Golden, MatchesExpectedOutput) {
  const fs::path path = fs::path(SB_GOLDEN_DIR) / (GetParam() + ".golden");
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  GoldenFile g = parse(std::string(std::istreambuf_iterator<char>(in), {}));
  const std::string* source = g.find("asm");
  const std::string* description = g.find("trampoline");
  const std::string* aot_source = g.find("aot");
  ASSERT_EQ((source != nullptr) + (description != nullptr) + (aot_source != nullptr), 1)
      << path << " needs one input section: -- asm, -- trampoline or -- aot";
  const std::string input_name = source ? "asm" : description ? "trampoline" : "aot";
  const std::string& input = source ? *source : description ? *description : *aot_source;
  auto typed = [&](bpf::Program p) {
    const size_t at = g.header.find("# type: ");
    if (at != std::string::npos) {
      const std::string name = g.header.substr(at + 8, g.header.find('\n', at) - at - 8);
      p.type = bpf::find_program_type(name);
      if (!p.type) throw Error(path.string(), "unknown program type '" + name + "'");
    }
    return p;
  };
  std::map<std::string, std::string> actual =
      source        ? generate_all(typed(bpf::assemble(*source, path.string())),
                                   g.header.find("# passes: off\n") == std::string::npos)
      : description ? generate_trampoline(input, path.string(), g.header.find("# in-flight: on\n") != std::string::npos)
                    : generate_aot(bpf::assemble(input, path.string()));

  const char* bless = std::getenv("UPDATE_GOLDEN");
  if (bless && std::string(bless) == "1") {
    std::ofstream out(path);
    out << g.header << "-- " << input_name << "\n" << input;
    out << "-- ir\n" << actual["ir"];
    for (const backend::TargetDesc* t : backend::targets()) out << "-- " << t->name << "\n" << actual[t->name];
    return;
  }
  for (const auto& [name, text] : actual) {
    const std::string* expected = g.find(name);
    if (!expected) {
      ADD_FAILURE() << path << ": no -- " << name << " section; run with UPDATE_GOLDEN=1";
      continue;
    }
    EXPECT_EQ(text, *expected) << path << ": -- " << name << " differs (UPDATE_GOLDEN=1 rewrites it)";
  }
}

INSTANTIATE_TEST_SUITE_P(Files, Golden, testing::ValuesIn(golden_files()),
                         [](const testing::TestParamInfo<std::string>& i) {
                           std::string n = i.param;
                           for (char& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
}  // namespace sb::test
