// Trampoline descriptions: what parses, and an error naming the field for
// each way a description can be wrong.
#include <gtest/gtest.h>

#include "frontend/attach_point.h"
#include "frontend/trampoline.h"
#include "ir/diag.h"

namespace sb::test {
namespace {

tramp::Description parse(const std::string& json) { return tramp::parse_description(json, "d.json"); }

// Expects the error "d.json: field FIELD: WHAT" (or "d.json: WHAT" for a
// document-level error when `field` is empty); `what` may be a prefix.
void expect_error(const std::string& json, const std::string& field, const std::string& what) {
  try {
    parse(json);
    ADD_FAILURE() << "accepted: " << json;
  } catch (const Error& e) {
    EXPECT_EQ(e.where(), field.empty() ? "d.json" : "d.json: field " + field) << json;
    EXPECT_EQ(e.message().substr(0, what.size()), what) << json;
  }
}

const std::string kProg = R"({"kind": "fentry", "asm": "mov %r0, 0\nexit"})";
std::string with_target(const std::string& target) {
  return R"({"target": )" + target + R"(, "programs": [)" + kProg + "]}";
}

TEST(TrampolineDescription, ParsesEveryPart) {
  tramp::Description d = parse(R"({
    "arch": "arm64",
    "target": {"name": "f", "args": ["i8", "ptr", "f32", {"struct": ["i32", "i64"]}], "ret": "f64"},
    "flags": {"call_original": false, "ip_arg": true, "stats": false, "recursion_guard": false},
    "programs": [
      {"kind": "fentry", "asm": "mov %r0, 0\nexit", "cookie": 7},
      {"kind": "fmod_ret", "asm": "mov %r0, 1\nexit", "cookie": -1},
      {"kind": "fexit", "asm": "mov %r0, 0\nexit"}
    ]})");
  EXPECT_EQ(d.arch, "arm64");
  EXPECT_EQ(d.target, "f");
  ASSERT_EQ(d.signature.args.size(), 4u);
  EXPECT_EQ(d.signature.args[0].type, ir::Type::I8);
  EXPECT_EQ(d.signature.args[3].type, ir::Type::Struct);
  EXPECT_EQ(d.signature.args[3].size, 16u);  // i32, 4 bytes padding, i64
  EXPECT_EQ(d.signature.words(), 5u);
  EXPECT_EQ(d.signature.ret.type, ir::Type::F64);
  EXPECT_FALSE(d.call_original);
  EXPECT_TRUE(d.ip_arg);
  EXPECT_FALSE(d.stats);
  ASSERT_EQ(d.programs.size(), 3u);
  EXPECT_EQ(d.programs[0].cookie, 7u);
  EXPECT_EQ(d.programs[1].cookie, ~uint64_t(0));
  EXPECT_EQ(d.of_kind(tramp::Kind::Fexit), std::vector<size_t>{2});
  ir::Module m = tramp::lower(d, tramp::placeholder_bindings(d));
  EXPECT_NO_THROW(ir::check(m));
}

TEST(TrampolineDescription, StructLayoutFollowsC) {
  tramp::Description d = parse(with_target(R"({"args": [{"struct": ["u8", "i32", "u16"]}]})"));
  EXPECT_EQ(d.signature.args[0].size, 12u);  // 1, pad 3, 4, 2, pad 2
}

TEST(TrampolineDescription, NamesTheFieldOfEachError) {
  expect_error("{", "", "invalid JSON at byte");
  expect_error("1e701", "", "invalid JSON");  // found by fuzz_trampoline: a number too large
  expect_error("[]", "(top level)", "expected an object");
  // found by fuzz_trampoline: a list where an object belongs escaped as a JSON library exception
  expect_error(R"({"target": [{"kind": "fentry"}], "programs": []})", "target", "expected an object");
  expect_error(R"({"target": {"args": []}, "flags": [1], "programs": []})", "flags", "expected an object");
  expect_error(R"({"target": {"args": []}, "programs": [[]]})", "programs[0]", "expected an object");
  expect_error(R"({"programs": []})", "target", "is required");
  expect_error(R"({"target": {"args": []}})", "programs", "is required");
  expect_error(R"({"target": {"args": []}, "programs": [], "colour": 1})", "colour", "unknown field");
  expect_error(with_target(R"({"args": [], "foo": 1})"), "target.foo", "unknown field");
  expect_error(with_target(R"({"args": "i32"})"), "target.args", "expected a list of types");
  expect_error(with_target(R"({"args": ["i64", "i128"]})"), "target.args[1]", "unknown type 'i128'");
  expect_error(with_target(R"({"args": ["void"]})"), "target.args[0]", "unknown type 'void'");
  expect_error(with_target(R"({"args": [{"struct": ["i32", "f32"]}]})"), "target.args[0].struct[1]",
               "floating-point struct fields are not supported");
  expect_error(with_target(R"({"args": [{"struct": ["i64", "i64", "i8"]}]})"), "target.args[0].struct",
               "struct of 24 bytes");
  expect_error(with_target(R"({"args": [{"struct": []}]})"), "target.args[0].struct", "expected a non-empty list");
  expect_error(with_target(R"({"args": [], "ret": {"struct": ["i32"]}})"), "target.ret",
               "struct return values are not supported");
  std::string thirteen = R"({"args": [)";
  for (int i = 0; i < 13; ++i) thirteen += std::string(i ? "," : "") + R"("i64")";
  expect_error(with_target(thirteen + "]}"), "target.args", "13 arguments; at most 12");
  expect_error(R"({"target": {"args": []}, "flags": {"stats": 1}, "programs": []})", "flags.stats",
               "expected true or false");
  expect_error(R"({"target": {"args": []}, "programs": [{"kind": "kprobe", "asm": "exit"}]})", "programs[0].kind",
               "expected fentry, fmod_ret, fexit, uprobe or uretprobe");
  expect_error(R"({"target": {"args": []}, "programs": [{"kind": "fentry"}]})", "programs[0]",
               "give exactly one of");
  expect_error(R"({"target": {"args": []}, "programs": [{"kind": "fentry", "asm": "exit", "cookie": 1.5}]})",
               "programs[0].cookie", "expected an integer");
  expect_error(R"({"target": {"args": []}, "programs": [{"kind": "fentry", "file": "missing.s"}]})",
               "programs[0].file", "cannot open");
  std::string many = R"({"target": {"args": []}, "programs": [)";
  for (int i = 0; i < 39; ++i) many += std::string(i ? "," : "") + kProg;
  expect_error(many + "]}", "programs", "39 programs; at most 38");
}

TEST(TrampolineDescription, BadProgramSourceNamesTheField) {
  try {
    parse(R"({"target": {"args": []}, "programs": [{"kind": "fentry", "asm": "bogus %r0"}]})");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("programs[0].asm"), std::string::npos) << e.what();
  }
}

// The compact signature of sb_program_attach: the description's types.
TEST(TrampolineDescription, CompactSignatures) {
  ir::Signature s = tramp::parse_signature("i64, {i64, i32}, f64 -> u32", "t");
  ASSERT_EQ(s.args.size(), 3u);
  EXPECT_EQ(s.args[0].type, ir::Type::I64);
  EXPECT_EQ(s.args[1].type, ir::Type::Struct);
  EXPECT_EQ(s.args[1].size, 16u);
  EXPECT_EQ(s.args[2].type, ir::Type::F64);
  EXPECT_EQ(s.ret.type, ir::Type::U32);
  s = tramp::parse_signature("(ptr)", "t");
  ASSERT_EQ(s.args.size(), 1u);
  EXPECT_EQ(s.ret.type, ir::Type::Void);
  s = tramp::parse_signature(" -> f32", "t");
  EXPECT_TRUE(s.args.empty());
  EXPECT_EQ(s.ret.type, ir::Type::F32);
  EXPECT_TRUE(tramp::parse_signature("void -> void", "t").args.empty());
  auto error = [](const char* text) {
    try {
      tramp::parse_signature(text, "sig");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error("i64, , i64"), "sig: field signature.args[1]: expected a type name");
  EXPECT_EQ(error("i64 -> {i64}"), "sig: field signature.ret: struct return values are not supported");
  EXPECT_EQ(error("{f64, i64}"), "sig: field signature.args[0].struct[0]: floating-point struct fields are not "
                                 "supported (their registers differ per ABI)");
  EXPECT_EQ(error("{i64, i64"), "sig: field signature.args[0]: a struct is written {type, type, ...}");
  EXPECT_EQ(error("void -> i65"), "sig: field signature.ret: unknown type 'i65' (i8 u8 i16 u16 i32 u32 i64 u64 ptr "
                                  "f32 f64 void)");
  EXPECT_NE(error("i64,i64,i64,i64,i64,i64,i64,i64,i64,i64,i64,i64,i64").find("more than"), std::string::npos);
}

}  // namespace
}  // namespace sb::test

namespace sb::test {
namespace {

// ELF section names as libbpf writes them (frontend/attach_point.h).
TEST(AttachPoint, ParsesLibbpfSectionNames) {
  using bpf::parse_attach_point;
  auto at = [](const char* section) { return *parse_attach_point(section, "o.o: section"); };
  const bpf::AttachPoint bare = at("uprobe");
  EXPECT_EQ(bare.kind, tramp::Kind::Uprobe);
  EXPECT_FALSE(bare.has_target);
  EXPECT_EQ(at("uretprobe").kind, tramp::Kind::Uretprobe);
  const bpf::AttachPoint self = at("uprobe//proc/self/exe:main");
  EXPECT_TRUE(self.has_target);
  EXPECT_EQ(self.path, "/proc/self/exe");
  EXPECT_EQ(self.function, "main");
  EXPECT_EQ(self.offset, 0u);
  const bpf::AttachPoint off = at("uprobe/libc.so.6:malloc+0x1f");
  EXPECT_EQ(off.path, "libc.so.6");
  EXPECT_EQ(off.function, "malloc");
  EXPECT_EQ(off.offset, 0x1fu);
  EXPECT_EQ(at("uprobe/a/b:f.cold+12").offset, 12u);
  EXPECT_EQ(at("uprobe/a/b:f.cold+12").function, "f.cold");
  EXPECT_EQ(at("uprobe/lib.so:memcpy@GLIBC_2.14").function, "memcpy@GLIBC_2.14");
  const bpf::AttachPoint ret = at("uretprobe//usr/bin/x:parse");
  EXPECT_EQ(ret.kind, tramp::Kind::Uretprobe);
  EXPECT_EQ(ret.path, "/usr/bin/x");
  EXPECT_EQ(at("fentry/do_work").kind, tramp::Kind::Fentry);
  EXPECT_EQ(at("fentry/do_work").function, "do_work");
  EXPECT_EQ(at("fexit/do_work").kind, tramp::Kind::Fexit);
  EXPECT_EQ(at("fmod_ret/do_work").kind, tramp::Kind::FmodRet);
  // Not tracing sections: left alone.
  for (const char* s : {"xdp", "tc/ingress", "uprobe.s/x:f", "fentry.s/f", "socket", "uprobes/x:f"})
    EXPECT_EQ(parse_attach_point(s, "o.o: section"), std::nullopt) << s;
}

TEST(AttachPoint, NamesWhatIsWrong) {
  auto error = [](const char* section) -> std::string {
    try {
      bpf::parse_attach_point(section, "o.o: section");
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(error("uprobe/nocolon"), "o.o: section: 'uprobe/nocolon': expected uprobe/PATH:FUNCTION[+OFFSET]");
  EXPECT_EQ(error("uprobe/:f"), "o.o: section: 'uprobe/:f': expected uprobe/PATH:FUNCTION[+OFFSET]");
  EXPECT_EQ(error("uprobe/p:"), "o.o: section: 'uprobe/p:': expected a function name");
  EXPECT_EQ(error("uprobe/p:f+"), "o.o: section: 'uprobe/p:f+': expected an offset after '+'");
  EXPECT_EQ(error("uprobe/p:f+0xzz"), "o.o: section: 'uprobe/p:f+0xzz': offset '0xzz' is not a hex number");
  EXPECT_EQ(error("uprobe/p:f+12a"), "o.o: section: 'uprobe/p:f+12a': offset '12a' is not a decimal number");
  EXPECT_EQ(error("uprobe/p:f+99999999999999999999"),
            "o.o: section: 'uprobe/p:f+99999999999999999999': offset '99999999999999999999' is too large");
  EXPECT_EQ(error("uprobe/p:a$b"), "o.o: section: 'uprobe/p:a$b': 'a$b' is not a function name (letters, digits, _ . @)");
  EXPECT_EQ(error("uretprobe/p:f+4"), "o.o: section: 'uretprobe/p:f+4': a uretprobe attaches at a function's entry, not at +0x4");
  EXPECT_EQ(error("fentry"), "o.o: section: 'fentry': expected fentry/FUNCTION");
  EXPECT_EQ(error("fexit/"), "o.o: section: 'fexit/': expected a function name");
}

}  // namespace
}  // namespace sb::test
