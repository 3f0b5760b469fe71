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
//   -- ir             ir::print of the lowered module
//   -- x86-64         one instruction per line (backends/mc/disasm.h)
//   -- arm64 / -- riscv64
//
// Run with UPDATE_GOLDEN=1 to rewrite the expected sections from the
// current output (then review the diff before committing it).
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "backends/compile.h"
#include "runtime/tail_call.h"
#include "backends/mc/disasm.h"
#include "frontend/assembler.h"
#include "frontend/trampoline.h"

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

std::map<std::string, std::string> generate_all(const bpf::Program& p) {
  std::map<std::string, std::string> out;
  rt::HelperTable helpers = rt::HelperTable::conformance();
  helpers.add_tail_call(rt::kTailCallHelperId, "tail_call", nullptr);
  out["ir"] = ir::print(to_ir(p, helpers));
  for (const backend::TargetDesc* t : backend::targets()) {
    CompileOptions opts;
    opts.arch = t->arch;
    opts.helper_address = fake_helper_address;
    mc::CodeImage image = compile(p, helpers, opts).image;
    out[t->name] = mc::disassemble_text(t->arch, image.text);
  }
  return out;
}


std::map<std::string, std::string> generate_trampoline(const std::string& json, const std::string& file) {
  const tramp::Description d = tramp::parse_description(json, file);
  ir::Module m = tramp::lower(d, tramp::placeholder_bindings(d));
  ir::verify(m);
  std::map<std::string, std::string> out;
  out["ir"] = ir::print(m);
  for (const backend::TargetDesc* t : backend::targets()) {
    CompileOptions opts;
    opts.arch = t->arch;
    out[t->name] = mc::disassemble_text(t->arch, generate(m, opts).text);
  }
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
  ASSERT_TRUE((source != nullptr) != (description != nullptr))
      << path << " needs one input section: -- asm or -- trampoline";
  const std::string input_name = source ? "asm" : "trampoline";
  const std::string& input = source ? *source : *description;
  std::map<std::string, std::string> actual =
      source ? generate_all(bpf::assemble(*source, path.string())) : generate_trampoline(input, path.string());

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
