// The bpf_conformance corpus on every engine, plain and hardened (bounds
// checks and constant blinding must not change a valid program's result). The corpus directory is the
// CMake cache variable SPRINGBOARD_CONFORMANCE_DIR (default: ../shared/
// conformance beside the checkout); without it the test skips, saying so.
#include <filesystem>

#include <gtest/gtest.h>

#include "frontend/conformance_file.h"
#include "ir/diag.h"
#include "test/corpus.h"
#include "test/engines.h"

namespace sb::test {
namespace {

namespace fs = std::filesystem;

struct Case {
  std::string engine;
  std::string file;  // empty: the corpus is absent
  bool hardened;     // with bounds checks and constant blinding: same results
};

std::vector<Case> cases() {
  std::vector<Case> out;
  std::vector<std::string> files = conformance_files();
  if (files.empty()) files.push_back("");
  for (bool hardened : {false, true})
    for (const Engine& engine : engines())
      for (const auto& f : files) out.push_back({engine.name, f, hardened});
  return out;
}

std::string case_name(const testing::TestParamInfo<Case>& info) {
  std::string stem = info.param.file.empty() ? "corpus_absent" : fs::path(info.param.file).stem().string();
  std::string name = info.param.engine + (info.param.hardened ? "_hardened_" : "_") + stem;
  for (char& c : name)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

class Conformance : public testing::TestWithParam<Case> {};

TEST_P(Conformance, MatchesExpectedResult) {
  const Case& c = GetParam();
  if (c.file.empty()) GTEST_SKIP() << "no conformance corpus at " << SB_CONFORMANCE_DIR;
  bpf::ConformanceTest t = bpf::read_conformance_file(c.file);
  if (t.skipped) GTEST_SKIP() << t.skip_reason;
  const Engine* engine = nullptr;
  for (const Engine& e : engines())
    if (e.name == c.engine) engine = &e;
  ASSERT_NE(engine, nullptr);
  rt::HelperTable helpers = rt::HelperTable::conformance();
  std::vector<uint8_t> mem = t.memory;
  rt::RunOptions opts;
  opts.safety.bounds_check = opts.safety.blind_constants = c.hardened;
  if (t.error) {
    try {
      engine->run(t.program, helpers, mem, opts);
      FAIL() << "expected error: " << *t.error;
    } catch (const Error& e) {
      EXPECT_EQ(e.message(), *t.error);
    }
    return;
  }
  ASSERT_TRUE(t.result.has_value()) << "test has neither result nor error";
  EXPECT_EQ(engine->run(t.program, helpers, mem, opts), *t.result);
}

INSTANTIATE_TEST_SUITE_P(Corpus, Conformance, testing::ValuesIn(cases()), case_name);

}  // namespace
}  // namespace sb::test
