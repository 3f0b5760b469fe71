// Ahead-of-time objects (backends/aot.h), linked and run for real: per
// architecture, every conformance file, the clang-built test programs that
// use maps, helpers and global data, and a faulting callx become objects
// (aot::compile_object), which the architecture's gcc links -- with
// test/aot/driver.c, the runtime runtime/aot/sb_aot.c and a generated
// cases.c -- into one executable, run natively (x86-64) or under
// qemu-user (arm64, riscv64; linked -static so no sysroot is needed). Its
// output (r0 and memory per run, trace lines, faults, final maps and
// global data) must equal the interpreter's on the same runs.
//
// Also: the object `springboard compile --emit obj` writes, read back with
// llvm-readelf: the program's symbol, its global data and the relocations
// of the documented names for each architecture.
#include <algorithm>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "backends/aot.h"
#include "backends/target.h"
#include "frontend/assembler.h"
#include "frontend/conformance_file.h"
#include "ir/diag.h"
#include "runtime/helpers/std_helpers.h"
#include "test/corpus.h"
#include "test/engines.h"

namespace sb::test {
namespace {

namespace fs = std::filesystem;

struct ArchCase {
  Arch arch;
  const char* name;      // test parameter
  const char* compiler;  // links the executable
  const char* flags;
  const char* runner;    // empty: run natively
  // llvm-readelf's relocation names: a helper call, a map's address
  const char* call_reloc;
  const char* address_reloc;
};

const ArchCase kArchs[] = {
    {Arch::X86_64, "x86_64", "gcc", "", "", "R_X86_64_PLT32", "R_X86_64_PC32"},
    {Arch::Arm64, "arm64", "aarch64-linux-gnu-gcc", "-static", "qemu-aarch64", "R_AARCH64_CALL26", "R_AARCH64_PREL32"},
    {Arch::Riscv64, "riscv64", "riscv64-linux-gnu-gcc", "-static", "qemu-riscv64", "R_RISCV_32_PCREL",
     "R_RISCV_32_PCREL"},
};

bool have(const std::string& tool) { return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0; }

std::string run_command(const std::string& cmd, int& status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  status = pclose(p);
  return out;
}

std::string hex(std::span<const uint8_t> bytes) {
  std::string s;
  for (uint8_t b : bytes) s += fmt::format("{:02x}", b);
  return s;
}

std::string c_bytes(std::span<const uint8_t> bytes) {
  std::string s = "{";
  for (size_t i = 0; i < bytes.size(); ++i) s += fmt::format("{}{}", i ? "," : "", bytes[i]);
  return bytes.empty() ? "{0}" : s + "}";
}

std::string identifier(std::string s) {
  for (char& c : s)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

// printf's %#llx, as the driver prints r0.
std::string c_hex(uint64_t v) { return v ? fmt::format("{:#x}", v) : "0"; }

// ---------------------------------------------------------------------------
// The cases.

using Bytes = std::vector<uint8_t>;

struct ElfCase {
  const char* name;
  const char* object;
  bpf::ElfSelection which;
  std::vector<Bytes> steps;
  std::vector<size_t> consume = {};  // steps after which the ring buffers are read (and after the last)
};

Bytes udp(uint8_t proto, uint16_t ethertype = 0x0800) {
  Bytes p = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, uint8_t(ethertype >> 8), uint8_t(ethertype)};
  Bytes ip = {0x45, 0, 0, 28, 0, 0, 0, 0, 64, proto, 0, 0, 192, 168, 0, 1, 10, 0, 0, 2};
  p.insert(p.end(), ip.begin(), ip.end());
  Bytes u = {0x04, 0xd2, 0x00, 0x35, 0, 8, 0, 0};
  p.insert(p.end(), u.begin(), u.end());
  return p;
}

std::vector<ElfCase> elf_cases() {
  Bytes big(300);
  for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 7 + 1);
  Bytes hundred(100);
  for (size_t i = 0; i < hundred.size(); ++i) hundred[i] = uint8_t(i % 7);
  Bytes short_udp = udp(17);
  short_udp.resize(short_udp.size() - 4);
  std::vector<Bytes> ring;
  for (int i = 0; i < 30; ++i) ring.push_back({uint8_t(i), 1, 2, 3, 4});
  for (int i = 0; i < 60; ++i) ring.push_back({uint8_t(100 + i), 9, 8, 7, 6, 5});  // fills up, then wraps
  return {
      {"ringbuf", "ringbuf", {"tp/produce", ""}, ring, {29}},
      {"packet", "packet", {"xdp", ""}, {udp(17), udp(17), udp(6), udp(17, 0x0806), short_udp, {}}},
      {"counters", "counters", {"tc", ""}, {{1, 2, 2, 3}, {0, 1, 5}, {}, {0}, hundred, {1, 1, 1}}},
      {"legacy", "legacy", {"socket", ""}, {{1}, {1, 2}, {1, 2, 3, 4, 5}, {5, 4, 3, 2, 1}}},
      {"subprog", "subprog", {"xdp", ""}, {{}, {1, 2, 3, 4, 5}, big}},
      {"fnv64", "fnv", {"socket/fnv64", ""}, {{}, {'f', 'o', 'o', 'b', 'a', 'r'}, big}},
      {"fnv32", "fnv", {"socket/fnv32", ""}, {{'f', 'o', 'o', 'b', 'a', 'r'}, big}},
      {"globals", "globals", {"xdp", ""}, {{1, 2, 3}, {1, 2, 3, 4}, {1, 2, 3, 4, 5}}},
  };
}

// callx of a helper id the table lacks (a fault: sb_trap, from a
// bpf-to-bpf callee's frame), and of the conformance table's unwind helper.
constexpr const char* kCallxSource = R"(
ldxb %r1, [%r1]
mov %r0, 7
call local f
add %r0, 1
exit
f:
call %r1
exit
)";

// trace_printk of the input memory as its format (r1, r2 are mem, len),
// with three fixed arguments: the conversions sb_aot.c shares with the
// standard helper, and formats both reject (-EINVAL, no line).
constexpr const char* kPrintkSource = R"(
mov %r3, -5
mov %r4, 0
mov %r5, 255
call 6
exit
)";
const char* const kPrintkFormats[] = {
    "%d %u %x", "%i|%X|%c", "%p %px %%", "[%5d] [%-5d] [%05x]", "%lld %llu %llx", "%hhd %zu %lx", "%+d % d %#x",
    "%.3d %8.4x", "no newline\n", "", "%q", "%d %d %d %d", "%",
};

// One program as the executable runs it, and what the interpreter says.
struct Program {
  std::string symbol;
  mc::CodeImage object;
  std::vector<std::string> maps;  // SB_MAP lines
  std::vector<std::string> dump_maps;  // map names to dump
  std::vector<std::pair<std::string, size_t>> dump_data;  // global data symbols and sizes
  std::vector<Bytes> steps;
  std::vector<bool> consume;  // per step: read the ring buffers after it
  std::string expected_runs;  // trace and run lines, in order
  std::vector<std::string> expected_state;  // map and data lines, any order
};

void interpret(Program& prog, const bpf::Program& p, const rt::HelperTable& helpers, rt::Environment* env) {
  const Engine* interp = rt::find_engine(rt::EngineKind::Interp, Arch::X86_64);
  prog.consume.resize(prog.steps.size(), false);
  prog.consume.back() = true;  // every program leaves its ring buffers empty
  for (size_t s = 0; s < prog.steps.size(); ++s) {
    Bytes mem = prog.steps[s];
    std::string run;
    try {
      const uint64_t r0 = interp->run(p, helpers, mem);  // before hex(mem)
      run = "r0=" + c_hex(r0) + " mem=" + hex(mem);
    } catch (const Error& e) {  // "FILE: instruction N": the fault's place
      const std::string& where = e.where();
      run = "r0=0 mem=" + hex(mem) + " trap=1:" + where.substr(where.find_last_of(' ') + 1);
    }
    if (env) {
      std::istringstream trace(env->take_trace());
      for (std::string line; std::getline(trace, line);) prog.expected_runs += "trace " + prog.symbol + ": " + line + "\n";
    }
    prog.expected_runs += "run " + prog.symbol + " " + run + "\n";
    if (env && prog.consume[s])
      for (rt::Map* m : env->maps())
        if (auto* ring = dynamic_cast<rt::RingBufMap*>(m))
          ring->consume([&](std::span<const uint8_t> r) { prog.expected_runs += "ring " + m->name() + " " + hex(r) + "\n"; });
  }
}

Program conformance_program(const bpf::ConformanceTest& t, Arch arch) {
  Program prog;
  prog.symbol = "c_" + identifier(t.name);
  rt::HelperTable helpers = rt::HelperTable::conformance();
  prog.object = aot::compile_object(t.program, helpers, {}, {arch, prog.symbol});
  prog.steps = {t.memory};
  interpret(prog, t.program, helpers, nullptr);
  return prog;
}

Program elf_program(const ElfCase& c, Arch arch) {
  Program prog;
  prog.symbol = std::string("p_") + c.name;
  rt::EnvironmentOptions o;
  o.num_cpus = 1;  // sb_aot.c keeps one copy of a per-CPU array
  o.current_cpu = [] { return 0u; };
  rt::Environment env(o);
  bpf::ElfProgram elf = env.load_elf(std::string(SB_BPF_PROGRAMS) + "/" + c.object + ".o", c.which);
  rt::HelperTable helpers = rt::standard_helpers(env);
  prog.object = aot::compile_object(elf.program, helpers, {elf.maps, elf.map_refs}, {arch, prog.symbol});
  prog.steps = c.steps;
  prog.consume.assign(c.steps.size(), false);
  for (size_t k : c.consume) prog.consume.at(k) = true;
  interpret(prog, elf.program, helpers, &env);
  for (size_t k = 0; k < elf.maps.size(); ++k) {
    const bpf::MapDef& d = elf.maps[k];
    rt::Map* m = env.find_map(d.name);
    if (d.global_data) {
      const bool used = std::any_of(elf.map_refs.begin(), elf.map_refs.end(),
                                    [&](const bpf::MapRef& r) { return r.map == k && r.value; });
      if (!used) continue;
      const std::string sym = aot::data_symbol(prog.symbol, d);
      prog.dump_data.emplace_back(sym, d.value_size);
      prog.expected_state.push_back("data " + sym + " " + hex(dynamic_cast<rt::ArrayMap*>(m)->value(0)));
      continue;
    }
    prog.maps.push_back(fmt::format("SB_MAP({}, {}, {}, {}, {});", d.name, d.type, d.key_size, d.value_size, d.max_entries));
    prog.dump_maps.push_back(d.name);
    if (auto* h = dynamic_cast<rt::HashMap*>(m)) {
      h->for_each([&](auto k, auto v) { prog.expected_state.push_back(fmt::format("map {} {} -> {}", d.name, hex(k), hex(v))); });
    } else if (auto* a = dynamic_cast<rt::ArrayMap*>(m)) {
      for (uint32_t i = 0; i < d.max_entries; ++i)
        prog.expected_state.push_back(fmt::format("map {} [{}] {}", d.name, i, hex(a->value(i))));
    } else if (auto* pc = dynamic_cast<rt::PerCpuArrayMap*>(m)) {
      for (uint32_t i = 0; i < d.max_entries; ++i)
        prog.expected_state.push_back(fmt::format("map {} [{}] {}", d.name, i, hex(pc->value(i, 0))));
    }
  }
  return prog;
}

std::vector<Program> all_programs(Arch arch) {
  std::vector<Program> out;
  for (const std::string& f : conformance_files()) {
    bpf::ConformanceTest t = bpf::read_conformance_file(f);
    if (t.skipped || t.error) continue;
    out.push_back(conformance_program(t, arch));
  }
  if (SB_BPF_HAVE_CLANG)
    for (const ElfCase& c : elf_cases()) out.push_back(elf_program(c, arch));
  {
    Program printk;
    printk.symbol = "t_printk";
    bpf::Program p = bpf::assemble(kPrintkSource, "printk.s");
    rt::Environment env;
    rt::HelperTable helpers = rt::standard_helpers(env);
    printk.object = aot::compile_object(p, helpers, {}, {arch, printk.symbol});
    for (const char* f : kPrintkFormats) printk.steps.emplace_back(f, f + std::strlen(f) + 1);
    interpret(printk, p, helpers, &env);
    out.push_back(std::move(printk));
  }
  Program callx;
  callx.symbol = "t_callx";
  bpf::Program p = bpf::assemble(kCallxSource, "callx.s");
  rt::HelperTable helpers = rt::HelperTable::conformance();
  callx.object = aot::compile_object(p, helpers, {}, {arch, callx.symbol});
  callx.steps = {{99}, {5}, {0}};
  interpret(callx, p, helpers, nullptr);
  out.push_back(std::move(callx));
  return out;
}

std::string cases_c(const std::vector<Program>& programs) {
  std::string c = "#include \"sb_aot.h\"\n#include \"driver.h\"\n";
  std::string steps, maps, data;
  for (size_t k = 0; k < programs.size(); ++k) {
    const Program& p = programs[k];
    c += fmt::format("uint64_t {}(void *mem, size_t len);\n", p.symbol);
    for (const std::string& m : p.maps) c += m + "\n";
    for (const auto& [sym, size] : p.dump_data) {
      c += fmt::format("extern const unsigned char {}[];\n", sym);
      data += fmt::format("  {{\"{}\", {}, {}}},\n", sym, sym, size);
    }
    for (const std::string& m : p.dump_maps) maps += fmt::format("  {{\"{}\", &sb_map_{}}},\n", m, m);
    for (size_t s = 0; s < p.steps.size(); ++s) {
      c += fmt::format("static const unsigned char in_{}_{}[] = {};\n", k, s, c_bytes(p.steps[s]));
      steps += fmt::format("  {{\"{}\", {}, in_{}_{}, {}, {}}},\n", p.symbol, p.symbol, k, s, p.steps[s].size(),
                           p.consume[s] ? 1 : 0);
    }
  }
  c += "const struct sb_step sb_steps[] = {\n" + steps + "};\n";
  c += "const size_t sb_num_steps = sizeof sb_steps / sizeof sb_steps[0];\n";
  c += "const struct sb_dump_map sb_dump_maps[] = {\n" + maps + "  {0, 0}};\n";
  c += fmt::format("const size_t sb_num_dump_maps = {};\n", std::count(maps.begin(), maps.end(), '\n'));
  c += "const struct sb_dump_data sb_dump_data[] = {\n" + data + "  {0, 0, 0}};\n";
  c += fmt::format("const size_t sb_num_dump_data = {};\n", std::count(data.begin(), data.end(), '\n'));
  return c;
}

void write_file(const fs::path& path, std::span<const uint8_t> bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::string missing_tools(const ArchCase& a) {
  for (std::string tool : {std::string(a.compiler), std::string(a.runner)})
    if (!tool.empty() && !have(tool)) return "no " + tool + " (tools/install-deps.sh installs it)";
  if (a.arch == Arch::X86_64 && !(SB_HOST_X86_64)) return "not an x86-64 host";
  if (!backend::find_target(backend::arch_name(a.arch))) return "backend not built";
  return "";
}

void PrintTo(const ArchCase& a, std::ostream* os) { *os << a.name; }

class AotRun : public testing::TestWithParam<ArchCase> {};

TEST_P(AotRun, LinkedObjectsMatchTheInterpreter) {
  const ArchCase& a = GetParam();
  if (std::string why = missing_tools(a); !why.empty()) GTEST_SKIP() << why;
  const fs::path dir = fs::path(SB_AOT_WORK_DIR) / a.name;
  fs::remove_all(dir);
  fs::create_directories(dir);

  std::vector<Program> programs = all_programs(a.arch);
  ASSERT_GT(programs.size(), 1u);
  std::string objects;
  for (const Program& p : programs) {
    const fs::path o = dir / (p.symbol + ".o");
    write_file(o, p.object.object);
    objects += " " + o.string();
  }
  const std::string cases = cases_c(programs);
  write_file(dir / "cases.c", std::span(reinterpret_cast<const uint8_t*>(cases.data()), cases.size()));
  const fs::path exe = dir / "run";
  const std::string link = fmt::format("{} {} -O1 -std=c11 -I{} -I{} {}/driver.c {} {}/sb_aot.c{} -o {} 2>&1", a.compiler,
                                       a.flags, SB_AOT_RUNTIME_DIR, SB_AOT_DRIVER_DIR, SB_AOT_DRIVER_DIR,
                                       (dir / "cases.c").string(), SB_AOT_RUNTIME_DIR, objects, exe.string());
  int status = 0;
  std::string out = run_command(link, status);
  ASSERT_EQ(status, 0) << link << "\n" << out;
  EXPECT_EQ(out, "") << "the linker warned: " << link;
  out = run_command(fmt::format("{} {}", a.runner, exe.string()), status);
  ASSERT_EQ(status, 0) << out;

  std::string expected_runs;
  std::vector<std::string> expected_state;
  for (const Program& p : programs) {
    expected_runs += p.expected_runs;
    expected_state.insert(expected_state.end(), p.expected_state.begin(), p.expected_state.end());
  }
  std::string runs;
  std::vector<std::string> state;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("map ", 0) == 0 || line.rfind("data ", 0) == 0) state.push_back(line);
    else runs += line + "\n";
  }
  std::sort(state.begin(), state.end());
  std::sort(expected_state.begin(), expected_state.end());
  // Line by line, so that a difference names its program.
  std::istringstream want(expected_runs), got(runs);
  std::string w, g;
  size_t n = 0;
  while (std::getline(want, w)) {
    ++n;
    ASSERT_TRUE(std::getline(got, g)) << "output ends before line " << n << ": " << w;
    EXPECT_EQ(g, w) << "line " << n;
  }
  EXPECT_FALSE(std::getline(got, g)) << "extra output: " << g;
  EXPECT_EQ(state, expected_state);
  EXPECT_GT(n, 300u);  // the corpus and the programs all ran
}

// The object the CLI writes, as llvm-readelf reads it.
TEST_P(AotRun, ObjectHasTheDocumentedSymbolsAndRelocations) {
  const ArchCase& a = GetParam();
  if (!backend::find_target(backend::arch_name(a.arch))) GTEST_SKIP() << "backend not built";
  if (!SB_BPF_HAVE_CLANG) GTEST_SKIP() << "no BPF clang found: test/programs were not built";
  if (!have(SB_READELF)) GTEST_SKIP() << "no " << SB_READELF;
  const fs::path dir = fs::path(SB_AOT_WORK_DIR) / a.name;
  fs::create_directories(dir);
  const fs::path obj = dir / "globals_cli.o";
  int status = 0;
  std::string out = run_command(fmt::format("{} compile {}/globals.o --arch {} --emit obj -o {} 2>&1", SB_CLI,
                                            SB_BPF_PROGRAMS, backend::arch_name(a.arch), obj.string()),
                                status);
  ASSERT_EQ(status, 0) << out;
  const std::string elf = run_command(fmt::format("{} -h -s -r {} 2>&1", SB_READELF, obj.string()), status);
  ASSERT_EQ(status, 0) << elf;
  auto has_line = [&](std::initializer_list<std::string> words) {
    std::istringstream in(elf);
    for (std::string line; std::getline(in, line);) {
      bool all = true;
      for (const std::string& w : words) all = all && line.find(w) != std::string::npos;
      if (all) return true;
    }
    return false;
  };
  EXPECT_TRUE(has_line({"Type:", "REL (Relocatable file)"})) << elf;
  EXPECT_TRUE(has_line({"FUNC", "GLOBAL", "use_globals"})) << elf;
  for (const char* data : {"use_globals_data", "use_globals_bss", "use_globals_rodata"})
    EXPECT_TRUE(has_line({"OBJECT", "GLOBAL", data})) << data << "\n" << elf;
  EXPECT_TRUE(has_line({a.call_reloc, "sb_helper_trace_printk"})) << elf;
  EXPECT_TRUE(has_line({"UND", "sb_helper_trace_printk"})) << elf;
  // The program's global data: by section symbol or by name, PC-relative.
  EXPECT_TRUE(has_line({a.address_reloc, "use_globals_"}) || has_line({a.address_reloc, ".data"})) << elf;

  // And a map: packet.o's verdicts, an external sb_map_ symbol.
  const fs::path packet = dir / "packet_cli.o";
  out = run_command(fmt::format("{} compile {}/packet.o --arch {} --emit obj --symbol parse -o {} 2>&1", SB_CLI,
                                SB_BPF_PROGRAMS, backend::arch_name(a.arch), packet.string()),
                    status);
  ASSERT_EQ(status, 0) << out;
  const std::string pe = run_command(fmt::format("{} -s -r {} 2>&1", SB_READELF, packet.string()), status);
  std::istringstream in(pe);
  bool map_reloc = false, lookup_reloc = false, parse_sym = false;
  for (std::string line; std::getline(in, line);) {
    map_reloc |= line.find(a.address_reloc) != std::string::npos && line.find("sb_map_verdicts") != std::string::npos;
    lookup_reloc |= line.find(a.call_reloc) != std::string::npos &&
                    line.find("sb_helper_map_lookup_elem") != std::string::npos;
    parse_sym |= line.find("FUNC") != std::string::npos && line.find(" parse") != std::string::npos;
  }
  EXPECT_TRUE(map_reloc && lookup_reloc && parse_sym) << pe;
}

// Bad input gets an sb::Error naming the place, never a broken object.
TEST(AotErrors, NameTheBadSymbolOrReference) {
  const bpf::Program p = bpf::assemble("lddw %r0, 0\nexit\n", "bad.s");
  const rt::HelperTable helpers = rt::HelperTable::conformance();
  auto message = [&](const aot::Links& links, const std::string& name) -> std::string {
    try {
      aot::compile_object(p, helpers, links, {Arch::X86_64, name});
    } catch (const Error& e) {
      return e.what();
    }
    return std::string("no error");
  };
  EXPECT_EQ(message({}, "1st"), "program symbol: '1st' is not a C identifier");
  const std::vector<bpf::MapDef> maps = {{"my-map", 2, 4, 8, 1, 0, false, {}, {}}};
  std::vector<bpf::MapRef> refs = {{0, 0, 0, false}};
  EXPECT_EQ(message({maps, refs}, "prog"), "map 'my-map': 'sb_map_my-map' is not a C identifier");
  refs = {{0, 1, 0, false}};
  EXPECT_EQ(message({maps, refs}, "prog"), "bad.s: instruction 0: lddw names map 1 of 1");
  refs = {{1, 0, 0, false}};  // the second slot of the lddw
  EXPECT_EQ(message({maps, refs}, "prog"), "bad.s: 1 of 1 map references found no lddw in the lowered program");
}

INSTANTIATE_TEST_SUITE_P(Archs, AotRun, testing::ValuesIn(kArchs),
                         [](const testing::TestParamInfo<ArchCase>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace sb::test
