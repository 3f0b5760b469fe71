// Springboard's verifier against the Linux kernel's, on the kernel's own
// verifier selftests (tools/testing/selftests/bpf/verifier/*.c of the
// Debian kernel source, see test/kernel_verifier_corpus.h): every test
// whose program type, helpers, maps and instructions Springboard has is
// loaded into the running kernel (BPF_PROG_LOAD) and verified by
// Springboard, and the two verdicts, accept or refuse, must agree, except
// for the differences listed in kKnownDifferences with the reason. The
// tests' own annotations (.result = ACCEPT / REJECT, written for the 6.1
// kernel the corpus comes from) are compared too and reported, not
// asserted: the running kernel is the oracle. Program types: test/
// kernel_prog_types.h. Prints the agreement per
// source file (the README's table). Skips, with the reason, when not root
// or without BPF; `SB_KV_VERBOSE=1` prints every disagreement with both
// messages, `SB_KV_TRACE=TEXT` Springboard's verbose log of the tests
// whose description contains TEXT.
#include <linux/bpf.h>

#include <cstddef>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "frontend/bpf.h"
#include "frontend/progtypes/program_type.h"
#include "frontend/validator.h"
#include "frontend/verifier/helper_protos.h"
#include "frontend/verifier/verifier.h"
#include "ir/diag.h"
#include "test/kernel_oracle.h"
#include "test/kernel_prog_types.h"
#include "test/kernel_verifier_corpus.h"

namespace sb::test {
namespace {

// --- the known differences -------------------------------------------------
// Each test (file, description) where Springboard's verdict is not the
// running kernel's, and why. "stricter": Springboard refuses on purpose
// what the kernel accepts; "gap": the kernel proves something Springboard
// does not yet; "looser": Springboard accepts what the kernel refuses.
struct KnownDifference {
  const char* file;
  const char* descr;
  const char* why;
};
constexpr KnownDifference kKnownDifferences[] = {
#include "test/kernel_verifier_known.inc"
};

// --- one test ---------------------------------------------------------------

struct Case {
  const kv_case* kc = nullptr;
  std::string skip;  // why the test is not taken; empty: taken
  bpf::Program program;
  std::vector<uint32_t> map_flags;
  const bpf::ProgramType* type = nullptr;
  uint32_t kernel_type = 0;
};

uint8_t dst_of(const kv_insn& in) { return in.regs & 0xf; }
uint8_t src_of(const kv_insn& in) { return in.regs >> 4; }

// The map each fixup kind stands for, as test_verifier.c creates it.
struct MapKindInfo {
  uint32_t type, key_size, value_size, max_entries;
  const char* name;
};
constexpr MapKindInfo kMapKinds[] = {
    /* KV_HASH_8B */ {BPF_MAP_TYPE_HASH, 8, 8, 1, "map_hash_8b"},
    /* KV_HASH_48B */ {BPF_MAP_TYPE_HASH, 8, 48, 1, "map_hash_48b"},
    /* KV_HASH_16B */ {BPF_MAP_TYPE_HASH, 8, 16, 1, "map_hash_16b"},
    /* KV_ARRAY_48B */ {BPF_MAP_TYPE_ARRAY, 4, 48, 1, "map_array_48b"},
    /* KV_PROG1 */ {BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 4, "prog1"},
    /* KV_PROG2 */ {BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 4, "prog2"},
    /* KV_RINGBUF */ {BPF_MAP_TYPE_RINGBUF, 0, 0, 4096, "map_ringbuf"},
    /* KV_ARRAY_RO */ {BPF_MAP_TYPE_ARRAY, 4, 48, 1, "map_array_ro"},
    /* KV_ARRAY_WO */ {BPF_MAP_TYPE_ARRAY, 4, 48, 1, "map_array_wo"},
    /* KV_ARRAY_SMALL */ {BPF_MAP_TYPE_ARRAY, 4, 1, 1, "map_array_small"},
};
static_assert(std::size(kMapKinds) == KV_OTHER);

Case prepare(const kv_case& kc) {
  Case c;
  c.kc = &kc;
  c.kernel_type = kc.prog_type ? kc.prog_type : uint32_t(BPF_PROG_TYPE_SOCKET_FILTER);
  if (kc.generated) return c.skip = "built at run time by a fill helper", c;
  if (kc.kfunc) return c.skip = "kernel functions or BTF", c;
  c.type = kernel_program_type(c.kernel_type);
  if (!c.type) return c.skip = "program type not in Springboard", c;
  if (kc.expected_attach_type) return c.skip = "an attach type", c;
  if (kc.prog_flags & BPF_F_STRICT_ALIGNMENT) return c.skip = "strict alignment", c;
  if (kc.fixups[KV_OTHER][0]) return c.skip = "a map kind not in Springboard", c;
  if (kc.fixups[KV_ARRAY_RO][0] || kc.fixups[KV_ARRAY_WO][0]) return c.skip = "read-only or write-only maps", c;
  if (kc.len == 0) return c.skip = "an empty program", c;
  for (size_t i = 0; i < kc.len; ++i) {
    const kv_insn& in = kc.insns[i];
    const uint8_t cls = in.code & 7, mode = in.code & 0xe0;
    if (cls == BPF_LD && (mode == BPF_ABS || mode == BPF_IND)) return c.skip = "legacy packet access (LD_ABS, LD_IND)", c;
    if (in.code == (BPF_JMP | BPF_CALL) && src_of(in) == BPF_PSEUDO_KFUNC_CALL) return c.skip = "kernel functions or BTF", c;
    if (in.code == (BPF_JMP | BPF_CALL) && src_of(in) == 0 && !bpf::verifier::standard_helper_proto(uint32_t(in.imm)))
      return c.skip = "a helper not in Springboard", c;
    if (in.code == (BPF_LD | BPF_DW | BPF_IMM) && src_of(in) > BPF_PSEUDO_MAP_VALUE)
      return c.skip = "a BTF, function or map-index lddw", c;
  }
  c.program.name = kc.file;
  for (size_t i = 0; i < kc.len; ++i) {
    const kv_insn& in = kc.insns[i];
    bpf::Insn out;
    out.opcode = in.code;
    out.dst = dst_of(in);
    out.src = src_of(in);
    out.off = in.off;
    out.imm = in.imm;
    c.program.insns.push_back(out);
  }
  for (int k = 0; k < KV_OTHER; ++k) {
    for (int f = 0; f < KV_MAX_FIXUPS && kc.fixups[k][f]; ++f) {
      const size_t at = size_t(kc.fixups[k][f]);
      if (at + 1 >= kc.len) return c.skip = "a map fixup outside the program", c;
      const MapKindInfo& m = kMapKinds[k];
      const bool value = src_of(kc.insns[at]) == BPF_PSEUDO_MAP_VALUE;
      c.program.maps.push_back({at, m.name, m.type, m.key_size, m.value_size, m.max_entries, value,
                                value ? uint64_t(uint32_t(kc.insns[at + 1].imm)) : 0});
      c.map_flags.push_back(0);
    }
  }
  return c;
}

// Springboard's verdict: empty when accepted, else the error.
std::string springboard_verdict(const Case& c) {
  try {
    bpf::ValidateOptions vo;
    vo.helper_exists = [](uint32_t id) { return bpf::verifier::standard_helper_proto(id) != nullptr; };
    bpf::validate(c.program, vo);
    bpf::verifier::VerifyOptions o;
    o.type = c.type;
    o.program = c.kc->descr;
    // SB_KV_TRACE=TEXT: the verbose log of the tests whose description contains TEXT.
    const char* trace = getenv("SB_KV_TRACE");
    if (trace && std::string(c.kc->descr).find(trace) != std::string::npos)
      o.log = [](const std::string& line) { std::printf("%s\n", line.c_str()); };
    bpf::verifier::verify(c.program, o);
    return "";
  } catch (const Error& e) {
    return e.message();
  }
}

struct Tally {
  size_t tests = 0, taken = 0, agree = 0, known = 0, unexplained = 0, kernel_vs_annotation = 0,
         springboard_vs_annotation = 0, kernel_failed = 0;
};

TEST(KernelVerifierCorpus, AgreesWithTheKernel) {
  if (std::optional<std::string> why = kernel_unavailable()) GTEST_SKIP() << "no kernel oracle: " << *why;
  const kv_case* cases = nullptr;
  const size_t n = kv_cases(&cases);
  ASSERT_GT(n, 1000u) << "the corpus is the kernel's ~1,300 verifier tests";
  const bool verbose = getenv("SB_KV_VERBOSE") != nullptr;

  std::map<std::pair<std::string, std::string>, const KnownDifference*> known;
  for (const KnownDifference& k : kKnownDifferences) known[{k.file, k.descr}] = &k;
  std::set<std::pair<std::string, std::string>> differing;

  std::map<std::string, Tally> per_file;
  std::map<std::string, size_t> skipped;
  Tally all;
  for (size_t i = 0; i < n; ++i) {
    const kv_case& kc = cases[i];
    Tally& t = per_file[kc.file];
    ++t.tests;
    ++all.tests;
    const Case c = prepare(kc);
    if (!c.skip.empty()) {
      ++skipped[c.skip];
      continue;
    }
    KernelLoad how;
    how.prog_type = c.kernel_type;
    how.prog_flags = kc.prog_flags;
    how.map_flags = c.map_flags;
    const KernelVerdict kv = kernel_verify(c.program, how);
    if (kv.status == KernelVerdict::Status::Failed) {
      ++skipped["the kernel could not load it (" + kv.message + ")"];
      ++t.kernel_failed;
      continue;
    }
    ++t.taken;
    ++all.taken;
    const bool kernel_accepts = kv.status == KernelVerdict::Status::Accepted;
    const std::string sb = springboard_verdict(c);
    const bool sb_accepts = sb.empty();
    if (kernel_accepts != bool(kc.accept)) ++t.kernel_vs_annotation, ++all.kernel_vs_annotation;
    if (sb_accepts != bool(kc.accept)) ++t.springboard_vs_annotation, ++all.springboard_vs_annotation;
    if (kernel_accepts == sb_accepts) {
      ++t.agree;
      ++all.agree;
      continue;
    }
    const std::pair<std::string, std::string> key{kc.file, kc.descr};
    differing.insert(key);
    const std::string detail =
        fmt::format("{}: \"{}\": kernel {}, Springboard {}", kc.file, kc.descr,
                    kernel_accepts ? "accepts" : "refuses (" + kv.message + ")", sb_accepts ? "accepts" : "refuses (" + sb + ")");
    if (verbose) std::printf("DIFF %s\n", detail.c_str());
    if (known.count(key)) {
      ++t.known;
      ++all.known;
    } else {
      ++t.unexplained;
      ++all.unexplained;
      ADD_FAILURE() << "unexplained disagreement: " << detail;
    }
  }
  for (const KnownDifference& k : kKnownDifferences)
    EXPECT_TRUE(differing.count({k.file, k.descr}))
        << k.file << ": \"" << k.descr << "\" is listed as a known difference but the verdicts agree now (or it was not taken)";

  std::printf("\nKernel verifier selftests (linux-source-6.1 tools/testing/selftests/bpf/verifier/*.c) against this kernel:\n\n");
  std::printf("| file | tests | compared | agree | known differences | kernel vs 6.1 annotation | Springboard vs annotation |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& [file, t] : per_file) {
    if (!t.taken) continue;
    std::printf("| %s | %zu | %zu | %zu | %zu | %zu | %zu |\n", file.c_str(), t.tests, t.taken, t.agree,
                t.known + t.unexplained, t.kernel_vs_annotation, t.springboard_vs_annotation);
  }
  std::printf("| **all %zu files** | %zu | %zu | %zu (%.1f%%) | %zu | %zu | %zu |\n\n", per_file.size(), all.tests, all.taken,
              all.agree, all.taken ? 100.0 * double(all.agree) / double(all.taken) : 0.0, all.known + all.unexplained,
              all.kernel_vs_annotation, all.springboard_vs_annotation);
  std::printf("Not compared (%zu):\n", all.tests - all.taken);
  for (const auto& [why, count] : skipped) std::printf("  %5zu  %s\n", count, why.c_str());
  EXPECT_GT(all.taken, 500u);
}

}  // namespace
}  // namespace sb::test
