// springboard: the command-line front of the library.
//
//   springboard run PROGRAM [--arch ARCH] [--engine interp|jit|emu]
//                   [--mem FILE | --mem-hex HEX] [--mem-out FILE] [HARDENING]
//   springboard compile PROGRAM --arch ARCH [--emit bin|asm|ir|listing|obj] [--symbol NAME] -o OUT
//                   [--bounds-check] [--blind-constants]
//   springboard diff PROGRAM [--mem FILE | --mem-hex HEX] [HARDENING]
//   springboard diff PROGRAM --data-in PKT [--ctx-in CTX] [--type T] [--repeat N] [--engine NAME...]
//                   a typed program's test run on every engine (or those named), and
//                   with --engine kernel also in the kernel (BPF_PROG_TEST_RUN via
//                   libbpf, as root): retval, output packet, context and maps side
//                   by side, exit 1 on any difference
//
// HARDENING, for untrusted programs (runtime/exec/hardening.h): --bounds-check,
// --blind-constants, --time-limit-ms MS, --insn-budget N. run and diff verify
// the program first (frontend/verifier/); --no-verify skips that for trusted code.
//   springboard trace OBJ.o -- PROGRAM [ARGS...]
//                   runs PROGRAM with OBJ's uprobe / uretprobe / fentry / fexit /
//                   fmod_ret programs attached to its functions (trace_command.h):
//                   bpf_printk lines and ring-buffer records as they come, each
//                   program's statistics and the maps at exit, on standard error;
//                   exits with PROGRAM's status
//   springboard verify PROGRAM [--log]   the verifier alone (frontend/verifier/):
//                   "verified" with the instructions processed, the states
//                   kept and each function's stack, or its error (exit 1);
//                   --log prints the state before each instruction processed
//                   (the kernel's log_level 2)
//   springboard trampoline DESC.json [--arch ARCH] [--emit asm|bin|listing|ir] -o OUT
//   springboard conformance-plugin [MEM] [--engine interp|jit]
//   springboard inspect OBJ.o [--json]    its programs (section, function,
//                   type, instructions, helpers called) and maps
//   springboard test-run PROGRAM --data-in PKT [--ctx-in CTX] [--repeat N]
//                   [--data-out FILE] [--ctx-out FILE] [--type TYPE] [--engine E] [--arch A]
//                   [--dump-maps] [--json]
//                   BPF_PROG_TEST_RUN (runtime/progtypes/test_run.h): the program
//                   as its section's type (or --type), on the packet with the
//                   kernel's context; prints retval, the output packet's size,
//                   the context, the duration per run and, with --dump-maps,
//                   the maps after the runs as JSON
//
// ARCH is x86-64 (default), arm64 or riscv64. The jit engine runs x86-64
// code natively on an x86-64 host and everything else in Unicorn (emu).
//
// PROGRAM is raw bytecode ("-" reads standard input); a file ending in .s
// or .asm is assembled first, one ending in .data is a conformance test
// (its program, and its memory unless --mem is given), one ending in .o is
// an object from `clang -target bpf -c`: run, compile and diff take
// --section NAME / --function NAME to choose its program, which then runs
// with the standard helpers (runtime/helpers/std_helpers.h) and its own maps, and
// its trace_printk output goes to standard error.
// --emit obj writes a relocatable ELF object that C programs link, with
// the program as `uint64_t NAME(void *mem, size_t len)` (backends/aot.h).
// Every error prints "springboard: FILE: instruction N: what" and exits 1.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "backends/aot.h"
#include "backends/compile.h"
#include "backends/listing.h"
#include "backends/mc/disasm.h"
#include "frontend/assembler.h"
#include "frontend/conformance_file.h"
#include "frontend/decoder.h"
#include "frontend/elf_loader.h"
#include "frontend/progtypes/program_type.h"
#include "frontend/trampoline.h"
#include "frontend/validator.h"
#include "frontend/verifier/verifier.h"
#include "ir/diag.h"
#include "runtime/exec/engines.h"
#include "runtime/exec/hardening.h"
#include "runtime/helpers/std_helpers.h"
#include "runtime/maps/maps.h"
#include "runtime/maps/perf_event_array.h"
#include "runtime/progtypes/kernel_test_run.h"
#include "runtime/progtypes/test_run.h"
#include "tools/trace_command.h"

namespace {

using namespace sb;

std::string read_text(const std::string& path) {
  if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, "cannot open file");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct Input {
  bpf::Program program;
  std::vector<uint8_t> memory;
  bool has_memory = false;
  std::unique_ptr<rt::Environment> env;  // an ELF object's maps and trace output
  rt::HelperTable helpers = rt::HelperTable::conformance();
  std::string function;               // an ELF object: the program's symbol
  std::string section;                // and its section
  std::vector<bpf::MapDef> maps;      // an ELF object: its maps
  std::vector<bpf::MapRef> map_refs;  // and the lddw instructions naming them
};

// --section NAME / --function NAME: which program of an ELF object.
struct SelectionOptions {
  bpf::ElfSelection which;
  void add_to(CLI::App* cmd) {
    cmd->add_option("--section", which.section, "ELF object: the program's section");
    cmd->add_option("--function", which.function, "ELF object: the program's function");
  }
};

Input load_input(const std::string& path, const bpf::ElfSelection& which = {}) {
  Input in;
  if (ends_with(path, ".o")) {
    in.env = std::make_unique<rt::Environment>();
    bpf::ElfProgram elf = in.env->load_elf(path, which);
    in.program = std::move(elf.program);
    in.function = std::move(elf.function);
    in.section = std::move(elf.section);
    in.maps = std::move(elf.maps);
    in.map_refs = std::move(elf.map_refs);
    in.helpers = rt::standard_helpers(*in.env);
  } else if (ends_with(path, ".data")) {
    bpf::ConformanceTest t = bpf::read_conformance_file(path);
    in.program = std::move(t.program);
    in.memory = std::move(t.memory);
    in.has_memory = t.has_memory;
  } else if (ends_with(path, ".s") || ends_with(path, ".asm")) {
    in.program = bpf::assemble(read_text(path), path);
  } else {
    in.program = bpf::read_program_file(path);
  }
  return in;
}

enum class EngineChoice { Interp, Jit, Emu };

const rt::Engine& choose_engine(EngineChoice choice, Arch arch) {
  const rt::Engine* e = nullptr;
  if (choice == EngineChoice::Interp) e = rt::find_engine(rt::EngineKind::Interp, arch);
  if (choice == EngineChoice::Jit) e = rt::find_engine(rt::EngineKind::Native, arch);
  if (!e) e = rt::find_engine(rt::EngineKind::Emulated, arch);
  if (!e) throw Error("--arch", std::string("no engine runs ") + backend::arch_name(arch) + " in this build");
  return *e;
}

const backend::TargetDesc& parse_arch(const std::string& name) {
  const backend::TargetDesc* target = backend::find_target(name);
  if (!target) throw Error("--arch", "unknown architecture '" + name + "' (x86-64, arm64, riscv64)");
  return *target;
}

// --mem FILE / --mem-hex HEX, shared by run and diff.
struct MemoryOptions {
  std::string path, hex;
  void add_to(CLI::App* cmd) {
    auto* file = cmd->add_option("--mem", path, "file whose bytes are the program's memory");
    cmd->add_option("--mem-hex", hex, "the program's memory as hex bytes")->excludes(file);
  }
  void apply(Input& in) const;
};

// The hardening an untrusted program gets (runtime/exec/hardening.h).
struct SafetyOptions {
  rt::RunOptions opts;
  double time_limit_ms = 0;
  bool no_verify = false;
  void add_to(CLI::App* cmd, bool running) {
    cmd->add_flag("--bounds-check", opts.safety.bounds_check,
                  "check every load and store against the memory, the stack and map values");
    cmd->add_flag("--blind-constants", opts.safety.blind_constants, "no program immediate in the machine code");
    if (!running) return;
    cmd->add_flag("--no-verify", no_verify, "trusted code: run without the verifier's proof (frontend/verifier/)");
    cmd->add_option("--time-limit-ms", time_limit_ms, "stop the program after this many milliseconds")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--insn-budget", opts.insn_budget, "interpreter and emulator: stop after this many instructions");
  }
  const rt::RunOptions& get() {
    opts.safety.time_budget_ns = uint64_t(time_limit_ms * 1e6);
    opts.safety.verify = !no_verify;
    return opts;
  }
};

void write_output(const std::string& path, const void* data, size_t size) {
  if (path == "-") {
    std::fwrite(data, 1, size, stdout);
    return;
  }
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error(path, "cannot create file");
  out.write(static_cast<const char*>(data), std::streamsize(size));
  if (!out) throw Error(path, "write failed");
}

const std::map<std::string, EngineChoice> kEngines = {
    {"interp", EngineChoice::Interp}, {"jit", EngineChoice::Jit}, {"emu", EngineChoice::Emu}};

void MemoryOptions::apply(Input& in) const {
  if (!path.empty()) {
    std::string bytes = read_text(path);
    in.memory.assign(bytes.begin(), bytes.end());
  } else if (!hex.empty()) {
    in.memory = bpf::parse_hex_bytes(hex, "--mem-hex");
  }
}

// prog-v2.data -> prog_v2: a C identifier from a file name.
std::string default_symbol(const std::string& path) {
  std::string stem = path == "-" ? "program" : path.substr(path.find_last_of('/') + 1);
  stem = stem.substr(0, stem.find('.'));
  for (char& c : stem)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  if (stem.empty() || std::isdigit(static_cast<unsigned char>(stem[0]))) stem = "p_" + stem;
  return stem;
}

// FNV-1a over the final memory: the diff table's memory column.
uint64_t memory_hash(const std::vector<uint8_t>& mem) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : mem) h = (h ^ b) * 0x100000001b3ull;
  return h;
}

// Runs every engine; prints one row each; returns 1 if any row differs.
// An ELF object is loaded again for each engine (`reload`), so that every
// engine starts from the object's initial maps.
int diff(const Input& first_input, const std::function<Input()>& reload, const rt::RunOptions& opts) {
  std::string first;
  bool differ = false;
  fmt::print("{:<16} {:<20} {}\n", "engine", "r0", "memory (fnv-1a)");
  for (const rt::Engine& e : rt::engines()) {
    Input fresh;
    const Input& in = first_input.env && &e != &rt::engines().front() ? (fresh = reload()) : first_input;
    std::vector<uint8_t> mem = in.memory;
    std::string row;
    try {
      uint64_t r0 = e.run(in.program, in.helpers, mem, opts);
      row = fmt::format("{:<20} {:016x}", fmt::format("{:#x}", r0), memory_hash(mem));
    } catch (const Error& err) {
      row = "error: " + err.message();
    }
    if (first.empty()) first = row;
    const bool same = row == first;
    differ |= !same;
    fmt::print("{:<16} {}{}\n", e.name, row, same ? "" : "   <-- differs");
  }
  return differ ? 1 : 0;
}


// The bpf_conformance runner starts "PLUGIN [MEM] [options...]", so the
// memory argument may come before the subcommand name: move the name first.
std::vector<std::string> normalize_args(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 1; i < args.size(); ++i)
    if (args[i] == "conformance-plugin") {
      std::string name = args[i];
      args.erase(args.begin() + long(i));
      args.insert(args.begin(), name);
      break;
    }
  std::reverse(args.begin(), args.end());  // CLI11 takes them reversed
  return args;
}

// `springboard inspect`: what an object from clang -target bpf holds, as a
// new user needs it to choose --section / --function.
nlohmann::json inspect_object(const std::string& path) {
  const std::vector<uint8_t> bytes = bpf::read_file(path);
  if (!bpf::looks_like_elf(bytes)) throw Error(path, "not an ELF object (inspect reads clang -target bpf objects)");
  rt::Environment env;
  const rt::HelperTable helpers = rt::standard_helpers(env);
  nlohmann::json out = {{"file", path}, {"programs", nlohmann::json::array()}, {"maps", nlohmann::json::array()}};
  // Maps get placeholder addresses: nothing runs.
  uint64_t next_handle = 1;
  auto no_maps = [&](const bpf::MapDef&) { return bpf::MapAddress{next_handle++, 0}; };
  std::vector<bpf::MapDef> maps;
  for (const bpf::ElfSelection& which : bpf::list_elf_programs(bytes, path)) {
    next_handle = 1;
    bpf::ElfProgram elf = bpf::load_elf(bytes, path, which, no_maps);
    const auto type = bpf::program_type_for_section(elf.section);
    nlohmann::json calls = nlohmann::json::array();
    std::vector<int32_t> seen;
    for (const bpf::Insn& i : elf.program.insns) {
      if (i.opcode != bpf::make_opcode(bpf::JMP, bpf::CALL) || i.src != bpf::CALL_HELPER) continue;
      if (std::find(seen.begin(), seen.end(), i.imm) != seen.end()) continue;
      seen.push_back(i.imm);
      const rt::Helper* h = helpers.find(uint32_t(i.imm));
      calls.push_back({{"id", i.imm}, {"name", h ? h->name : "unknown"}});
    }
    out["programs"].push_back({{"section", elf.section},
                               {"function", elf.function},
                               // Sections Springboard has no type for run as raw bytecode.
                               {"type", type ? std::string(type->type->name) : "raw"},
                               {"type_known", type.has_value()},
                               {"attach", type ? type->attach : ""},
                               {"instructions", elf.program.insns.size()},
                               {"functions", bpf::function_starts(elf.program).size()},
                               {"helpers", calls}});
    if (maps.empty()) maps = elf.maps;
  }
  for (const bpf::MapDef& m : maps)
    out["maps"].push_back({{"name", m.name},
                           {"type", rt::map_type_name(m.type)},
                           {"key_size", m.key_size},
                           {"value_size", m.value_size},
                           {"max_entries", m.max_entries},
                           {"global_data", m.global_data}});
  return out;
}

std::string inspect_text(const nlohmann::json& j) {
  std::string s = fmt::format("{}: {} program{}, {} map{}\n", j["file"].get<std::string>(), j["programs"].size(),
                              j["programs"].size() == 1 ? "" : "s", j["maps"].size(), j["maps"].size() == 1 ? "" : "s");
  for (const auto& p : j["programs"]) {
    std::string calls;
    for (const auto& h : p["helpers"])
      calls += fmt::format("{}{} ({})", calls.empty() ? "" : ", ", h["name"].get<std::string>(), h["id"].get<int>());
    const std::string type = p["type_known"].get<bool>()
                                 ? p["type"].get<std::string>()
                                 : p["type"].get<std::string>() + " (no program type for this section yet)";
    s += fmt::format("  program {} in section '{}': type {}{}, {} instructions in {} function{}; calls {}\n",
                     p["function"].get<std::string>().empty() ? "(no symbol)" : p["function"].get<std::string>(),
                     p["section"].get<std::string>(), type,
                     p["attach"].get<std::string>().empty() ? "" : ", attach " + p["attach"].get<std::string>(),
                     p["instructions"].get<size_t>(), p["functions"].get<size_t>(),
                     p["functions"].get<size_t>() == 1 ? "" : "s", calls.empty() ? "no helpers" : calls);
  }
  for (const auto& m : j["maps"])
    s += fmt::format("  map {}: type {}, key {} bytes, value {} bytes, {} entries{}\n", m["name"].get<std::string>(),
                     m["type"].get<std::string>(), m["key_size"].get<uint32_t>(), m["value_size"].get<uint32_t>(),
                     m["max_entries"].get<uint32_t>(), m["global_data"].get<bool>() ? " (global data)" : "");
  return s;
}

std::string hex_of(const std::vector<uint8_t>& bytes) {
  std::string s;
  for (uint8_t b : bytes) s += fmt::format("{:02x}", b);
  return s;
}

// Every map of an environment after a run, as JSON: keys and values in hex.
nlohmann::json dump_maps(const rt::Environment& env) {
  nlohmann::json out = nlohmann::json::array();
  for (rt::Map* m : env.maps()) {
    nlohmann::json entries = nlohmann::json::array();
    for (const rt::MapEntry& e : rt::map_entries(*m)) {
      nlohmann::json values = nlohmann::json::array();
      for (const auto& v : e.values) values.push_back(hex_of(v));
      nlohmann::json row = {{"key", hex_of(e.key)}};
      if (e.values.size() == 1) row["value"] = values[0];
      else row["values"] = values;  // one per CPU
      entries.push_back(row);
    }
    out.push_back({{"name", m->name()}, {"type", rt::map_type_name(m->spec().type)}, {"entries", entries}});
  }
  return out;
}

// The type a test run gives `in`: --type, else its ELF section's.
const bpf::ProgramType& test_run_type(const std::string& path, const std::string& type_name,
                                      const std::string& section) {
  if (!type_name.empty()) {
    const bpf::ProgramType* t = bpf::find_program_type(type_name);
    if (!t) throw Error("--type", fmt::format("unknown program type '{}' (types: {})", type_name,
                                              bpf::program_type_names()));
    return *t;
  }
  if (section.empty()) throw Error(path, "raw bytecode has no program type: give --type (" + rt::test_run_types() + ")");
  const auto t = bpf::program_type_for_section(section);
  if (!t)
    throw Error(path, fmt::format("section '{}' names no program type Springboard knows (types: {}); give --type",
                                  section, bpf::program_type_names()));
  return *t->type;
}

// retval and what else the kernel's test run reports, for people.
std::string test_run_text(const bpf::ProgramType& type, const rt::TestRunOutput& o) {
  static constexpr const char* kXdpActions[] = {"XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT"};
  std::string action;
  if (type.kernel_type == 6 && o.retval < std::size(kXdpActions)) action = fmt::format(" ({})", kXdpActions[o.retval]);
  std::string ctx;
  for (const bpf::CtxField& f : type.ctx.fields) {
    if (f.size != 4 || size_t(f.offset) + 4 > o.ctx.size()) continue;
    uint32_t v;
    std::memcpy(&v, o.ctx.data() + f.offset, 4);
    ctx += fmt::format("{}{} {}", ctx.empty() ? "" : ", ", f.name, v);
  }
  return fmt::format("retval: {}{}\ndata_out: {} bytes\nctx_out: {}\nduration: {} ns per run ({} run{})\n", o.retval,
                     action, o.data.size(), ctx, o.duration_ns, o.runs, o.runs == 1 ? "" : "s");
}

// What a run leaves besides the packet (runtime/progtypes/packet_run.h):
// the redirect target, the tunnel key and the records written to the
// object's perf event arrays (taken from them).
nlohmann::json run_outcome(const rt::TestRunOutput& o, rt::Environment* env) {
  nlohmann::json j = nlohmann::json::object();
  if (o.redirect) {
    const rt::RedirectTarget& r = *o.redirect;
    j["redirect"] = r.kind == rt::RedirectTarget::Kind::Ifindex
                        ? nlohmann::json{{"ifindex", r.ifindex}, {"flags", r.flags}}
                        : nlohmann::json{{"map", r.map}, {"map_type", rt::map_type_name(r.map_type)},
                                         {"key", r.key}, {"flags", r.flags}};
  }
  if (o.tunnel_key) j["tunnel_key"] = hex_of(*o.tunnel_key);
  for (const rt::ClonedPacket& c : o.clones)
    j["clones"].push_back({{"ifindex", c.ifindex}, {"flags", c.flags}, {"packet", hex_of(c.packet)}});
  nlohmann::json records = nlohmann::json::array();
  if (env)
    for (rt::Map* m : env->maps())
      if (auto* events = dynamic_cast<rt::PerfEventArrayMap*>(m))
        for (const rt::PerfEventArrayMap::Record& r : events->take_records())
          records.push_back({{"map", m->name()}, {"slot", r.slot}, {"data", hex_of(r.bytes)}});
  if (!records.empty()) j["perf_events"] = records;
  return j;
}

std::string run_outcome_text(const nlohmann::json& j) {
  std::string out;
  if (j.contains("redirect")) {
    const nlohmann::json& r = j["redirect"];
    out += r.contains("ifindex") ? fmt::format("redirect: ifindex {} (flags {:#x})\n", r["ifindex"].get<uint32_t>(),
                                               r["flags"].get<uint64_t>())
                                 : fmt::format("redirect: {} '{}' key {} (flags {:#x})\n",
                                               r["map_type"].get<std::string>(), r["map"].get<std::string>(),
                                               r["key"].get<uint32_t>(), r["flags"].get<uint64_t>());
  }
  if (j.contains("tunnel_key")) out += "tunnel_key: " + j["tunnel_key"].get<std::string>() + "\n";
  if (j.contains("clones"))
    for (const nlohmann::json& c : j["clones"])
      out += fmt::format("clone to ifindex {} (flags {:#x}): {}\n", c["ifindex"].get<uint32_t>(),
                         c["flags"].get<uint64_t>(), c["packet"].get<std::string>());
  if (j.contains("perf_events"))
    for (const nlohmann::json& r : j["perf_events"])
      out += fmt::format("perf event {}[{}]: {}\n", r["map"].get<std::string>(), r["slot"].get<uint32_t>(),
                         r["data"].get<std::string>());
  return out;
}

// An object's program whose section names a type with a context (xdp, tc,
// socket) reads that context from r1: run over raw memory it would read the
// packet as the context and answer wrongly without a word.
void refuse_typed_as_raw(const std::string& path, const Input& in) {
  if (!in.env) return;
  const auto t = bpf::program_type_for_section(in.section);
  if (!t || !rt::has_test_run(*t->type)) return;
  throw Error(path, fmt::format("section '{}' holds a {} program: its r1 is the kernel's context, not memory; run it "
                                "with `springboard test-run {} --data-in PACKET` (diff: --data-in PACKET), or with "
                                "--type raw to run it over --mem as raw bytecode",
                                in.section, t->type->name, path));
}

// --data-in / --ctx-in / --repeat, with the files' names for errors.
rt::TestRunInput test_run_input(const std::string& data, const std::string& ctx, uint32_t repeat) {
  rt::TestRunInput in;
  in.data = bpf::read_file(data);
  in.data_name = data;
  if (!ctx.empty()) {
    in.ctx = bpf::read_file(ctx);
    in.ctx_name = ctx;
  }
  in.repeat = repeat;
  return in;
}

// FNV-1a over a map's contents, per-CPU values totalled (rt::map_entry_total).
uint64_t maps_hash(const std::vector<std::pair<std::string, std::vector<rt::MapEntry>>>& maps) {
  std::vector<uint8_t> all;
  for (const auto& [name, entries] : maps) {
    all.insert(all.end(), name.begin(), name.end());
    for (const rt::MapEntry& e : entries) {
      const std::vector<uint8_t> v = rt::map_entry_total(e);
      all.insert(all.end(), e.key.begin(), e.key.end());
      all.insert(all.end(), v.begin(), v.end());
    }
  }
  return memory_hash(all);
}

// One row of a typed diff: what is compared, and what is shown.
struct TypedRow {
  std::string key, text;
};

TypedRow typed_row(bool refused, const std::string& error, uint32_t retval, const std::vector<uint8_t>& data,
                   const std::vector<uint8_t>& ctx, uint64_t maps) {
  if (refused) return {"refused", "refused: " + error};
  const std::string row = fmt::format("{:<10} {:016x} {:<6} {:016x} {:016x}", retval, memory_hash(data), data.size(),
                                      ctx.empty() ? 0 : memory_hash(ctx), maps);
  return {row, row};
}

// `springboard diff` on a typed program: the test run on each engine (a
// fresh load each, so maps start from the object's), the kernel too when
// asked for. Returns 1 when any row differs.
int typed_diff(const std::string& path, const bpf::ElfSelection& which, const std::string& type_name,
               const rt::TestRunInput& tin, const std::vector<std::string>& names, const rt::RunOptions& opts) {
  const bool kernel = std::find(names.begin(), names.end(), "kernel") != names.end();
  std::vector<const rt::Engine*> chosen;
  for (const rt::Engine& e : rt::engines())
    if (names.empty() || (names.size() == 1 && kernel) || std::find(names.begin(), names.end(), e.name) != names.end())
      chosen.push_back(&e);
  for (const std::string& n : names)
    if (n != "kernel" && std::none_of(chosen.begin(), chosen.end(), [&](const rt::Engine* e) { return e->name == n; }))
      throw Error("--engine", fmt::format("unknown engine '{}' (engines: interp, x86_64_native, x86_64_emu, "
                                          "arm64_emu, riscv64_emu, kernel)",
                                          n));
  std::vector<std::pair<std::string, TypedRow>> rows;
  for (const rt::Engine* e : chosen) {
    Input in = load_input(path, which);
    in.program.type = &test_run_type(path, type_name, in.section);
    try {
      const rt::TestRunOutput out = rt::test_run(*e, in.program, in.helpers, tin, opts);
      std::vector<std::pair<std::string, std::vector<rt::MapEntry>>> maps;
      if (in.env)
        for (rt::Map* m : in.env->maps()) maps.emplace_back(m->name(), rt::map_entries(*m));
      rows.push_back({e->name, typed_row(false, "", out.retval, out.data, tin.ctx ? out.ctx : std::vector<uint8_t>{},
                                         maps_hash(maps))});
    } catch (const Error& err) {
      const bool input = err.where().rfind(tin.data_name, 0) == 0 || err.where().rfind(tin.ctx_name, 0) == 0;
      rows.push_back({e->name, input ? typed_row(true, err.what(), 0, {}, {}, 0) : TypedRow{"error", "error: " + err.message()}});
    }
  }
  if (kernel) {
    if (!ends_with(path, ".o")) throw Error("--engine kernel", "the kernel loads ELF objects (clang -target bpf) only");
    std::string why;
    std::unique_ptr<rt::KernelObject> k = rt::KernelObject::load(path, which.function, &why);
    if (!k) {
      // The first line, and the verifier's reason: the log line before its "processed N insns".
      std::string reason = why.substr(0, why.find('\n'));
      const size_t processed = why.find("\nprocessed ");
      if (processed != std::string::npos) {
        const size_t from = why.rfind('\n', processed - 1);
        reason += ": " + why.substr(from == std::string::npos ? 0 : from + 1, processed - (from == std::string::npos ? 0 : from + 1));
      }
      rows.push_back({"kernel", {"error", "error: " + reason}});
    } else {
      const rt::KernelObject::Run r = k->test_run(tin.data, tin.ctx, tin.repeat ? tin.repeat : 1);
      // The kernel's map names are its own (global data: "OBJ.bss"); Springboard's match by suffix.
      Input names_from = load_input(path, which);
      std::vector<std::pair<std::string, std::vector<rt::MapEntry>>> maps;
      const std::vector<std::string> kernel_maps = k->map_names();
      if (names_from.env)
        for (rt::Map* m : names_from.env->maps())
          for (const std::string& kn : kernel_maps)
            if (kn == m->name() || (m->name().front() == '.' && ends_with(kn, m->name())))
              maps.emplace_back(m->name(), k->entries(kn));
      rows.push_back({"kernel", r.error ? typed_row(true, std::string("BPF_PROG_TEST_RUN: ") + std::strerror(r.error), 0,
                                                    {}, {}, 0)
                                        : typed_row(false, "", r.retval, r.data, r.ctx, maps_hash(maps))});
    }
  }
  fmt::print("{:<16} {:<10} {:<16} {:<6} {:<16} {}\n", "engine", "retval", "data_out", "bytes", "ctx_out",
             "maps (fnv-1a)");
  bool differ = false;
  for (const auto& [name, row] : rows) {
    const bool same = row.key == rows.front().second.key;
    differ |= !same;
    fmt::print("{:<16} {}{}\n", name, row.text, same ? "" : "   <-- differs");
  }
  return differ ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Springboard: BPF bytecode to x86-64, arm64 and riscv64 machine code"};
  app.require_subcommand(1);

  // run
  std::string run_path, run_arch = "x86-64", mem_out;
  MemoryOptions run_mem;
  EngineChoice run_engine = EngineChoice::Jit;
  auto* run = app.add_subcommand("run", "Run a program and print r0");
  run->add_option("PROGRAM", run_path, "bytecode file (- for stdin), .s/.asm source or .data test")->required();
  run->add_option("--arch", run_arch, "x86-64, arm64 or riscv64");
  run->add_option("--engine", run_engine, "interp, jit or emu")->transform(CLI::CheckedTransformer(kEngines));
  run_mem.add_to(run);
  SelectionOptions run_sel;
  run_sel.add_to(run);
  run->add_option("--mem-out", mem_out, "write the final memory to this file");
  SafetyOptions run_safety;
  run_safety.add_to(run, true);
  std::string run_type;
  run->add_option("--type", run_type, "raw: run an object's typed program over --mem anyway")
      ->check(CLI::IsMember({"raw"}));

  // verify
  std::string verify_path;
  bool verify_log = false;
  auto* verify = app.add_subcommand("verify", "Verify a program as the kernel's verifier would, and say what it proved");
  verify->add_option("PROGRAM", verify_path, "bytecode file (- for stdin), .s/.asm source, .data test or ELF object")
      ->required();
  verify->add_flag("--log", verify_log, "print the state before each instruction processed (log_level 2)");
  SelectionOptions verify_sel;
  verify_sel.add_to(verify);

  // trace
  std::string trace_object;
  std::vector<std::string> trace_command;
  auto* trace = app.add_subcommand("trace", "Run a program with an object's uprobe and fentry programs attached");
  trace->add_option("OBJECT", trace_object, "object from clang -target bpf")->required();
  trace->add_option("COMMAND", trace_command, "the program and its arguments, after --")->required();

  // diff
  std::string diff_path;
  MemoryOptions diff_mem;
  auto* diff_cmd = app.add_subcommand("diff", "Run on every engine and compare r0 and memory");
  diff_cmd->add_option("PROGRAM", diff_path, "bytecode file (- for stdin), .s/.asm source or .data test")->required();
  diff_mem.add_to(diff_cmd);
  SelectionOptions diff_sel;
  diff_sel.add_to(diff_cmd);
  SafetyOptions diff_safety;
  diff_safety.add_to(diff_cmd, true);
  std::string diff_data_in, diff_ctx_in, diff_type;
  uint32_t diff_repeat = 1;
  std::vector<std::string> diff_engines;
  diff_cmd->add_option("--data-in", diff_data_in, "a typed program: the packet of its test run (a file)");
  diff_cmd->add_option("--ctx-in", diff_ctx_in, "a typed program: its uapi context (a file)");
  diff_cmd->add_option("--type", diff_type, "program type (default: the ELF section's)");
  diff_cmd->add_option("--repeat", diff_repeat, "runs on the same context");
  diff_cmd->add_option("--engine", diff_engines, "only these engines; 'kernel' adds the kernel (BPF_PROG_TEST_RUN)");

  // compile
  std::string compile_path, out_path = "-", arch_name = "x86-64", emit = "bin";
  auto* compile = app.add_subcommand("compile", "Compile a program to machine code, assembly or IR");
  compile->add_option("PROGRAM", compile_path, "bytecode file (- for stdin), .s/.asm or .data")->required();
  compile->add_option("--arch", arch_name, "x86-64, arm64 or riscv64");
  compile->add_option("--emit", emit, "bin, asm, ir, listing or obj (a relocatable ELF object to link)")
      ->check(CLI::IsMember({"bin", "asm", "ir", "listing", "obj"}));
  std::string symbol;
  compile->add_option("--symbol", symbol,
                      "--emit obj: the C function's name (default: the ELF function, else the file's stem)");
  compile->add_option("-o,--output", out_path, "output file (- for stdout)");
  SelectionOptions compile_sel;
  compile_sel.add_to(compile);
  SafetyOptions compile_safety;
  compile_safety.add_to(compile, false);

  // trampoline
  std::string tramp_path, tramp_arch, tramp_emit = "asm", tramp_out = "-";
  auto* tramp = app.add_subcommand("trampoline", "Generate a trampoline from a JSON description");
  tramp->add_option("DESC", tramp_path, "trampoline description (JSON)")->required();
  tramp->add_option("--arch", tramp_arch, "x86-64, arm64 or riscv64 (default: the description's)");
  tramp->add_option("--emit", tramp_emit, "asm, bin, listing or ir")
      ->check(CLI::IsMember({"asm", "bin", "listing", "ir"}));
  tramp->add_option("-o,--output", tramp_out, "output file (- for stdout)");

  // conformance-plugin
  std::string plugin_mem;
  EngineChoice plugin_engine = EngineChoice::Jit;
  auto* plugin = app.add_subcommand("conformance-plugin", "Speak the bpf_conformance plugin contract");
  plugin->add_option("MEM", plugin_mem, "input memory as hex bytes");
  plugin->add_option("--engine", plugin_engine, "interp, jit or emu")->transform(CLI::CheckedTransformer(kEngines));

  // inspect
  std::string inspect_path;
  bool inspect_json = false;
  auto* inspect = app.add_subcommand("inspect", "List an object's programs (section, function, type, helpers) and maps");
  inspect->add_option("OBJECT", inspect_path, "ELF object from clang -target bpf")->required();
  inspect->add_flag("--json", inspect_json, "print JSON instead of text");

  // test-run
  std::string tr_path, tr_data_in, tr_ctx_in, tr_data_out, tr_ctx_out, tr_type, tr_arch = "x86-64";
  uint32_t tr_repeat = 1;
  bool tr_dump_maps = false, tr_json = false;
  EngineChoice tr_engine = EngineChoice::Jit;
  auto* test_run = app.add_subcommand("test-run", "Run a typed program on a packet as BPF_PROG_TEST_RUN does");
  test_run->add_option("PROGRAM", tr_path, "ELF object (or bytecode with --type)")->required();
  test_run->add_option("--data-in", tr_data_in, "the packet (a file)")->required();
  test_run->add_option("--ctx-in", tr_ctx_in, "the context as its uapi struct (xdp_md), a file");
  test_run->add_option("--repeat", tr_repeat, "runs on the same context (the duration is per run)");
  test_run->add_option("--data-out", tr_data_out, "write the output packet to this file");
  test_run->add_option("--ctx-out", tr_ctx_out, "write the output context to this file");
  test_run->add_option("--type", tr_type, "program type (default: the ELF section's)");
  test_run->add_option("--arch", tr_arch, "x86-64, arm64 or riscv64");
  test_run->add_option("--engine", tr_engine, "interp, jit or emu")->transform(CLI::CheckedTransformer(kEngines));
  test_run->add_flag("--dump-maps", tr_dump_maps, "print every map after the runs (JSON)");
  test_run->add_flag("--json", tr_json, "print the result as JSON");
  SelectionOptions tr_sel;
  tr_sel.add_to(test_run);
  SafetyOptions tr_safety;
  tr_safety.add_to(test_run, true);

  try {
    app.parse(normalize_args(argc, argv));
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  try {
    if (*run) {
      const rt::Engine& engine = choose_engine(run_engine, parse_arch(run_arch).arch);
      Input in = load_input(run_path, run_sel.which);
      if (run_type.empty()) refuse_typed_as_raw(run_path, in);
      run_mem.apply(in);
      uint64_t r0 = engine.run(in.program, in.helpers, in.memory, run_safety.get());
      if (in.env) fmt::print(stderr, "{}", in.env->take_trace());
      if (!mem_out.empty()) write_output(mem_out, in.memory.data(), in.memory.size());
      fmt::print("{:#x}\n", r0);
      return 0;
    }
    if (*verify) {
      Input in = load_input(verify_path, verify_sel.which);
      if (in.env) {  // an object's program is verified as its section's type, as the kernel loads it
        if (const auto t = bpf::program_type_for_section(in.section)) in.program.type = t->type;
      }
      bpf::ValidateOptions v;
      v.helper_exists = [&](uint32_t id) { return in.helpers.find(id) != nullptr; };
      bpf::validate(in.program, v);
      bpf::verifier::VerifyOptions vo = in.helpers.verify_options();
      if (verify_log) vo.log = [](const std::string& line) { fmt::print("{}\n", line); };
      const bpf::verifier::VerifyResult r = bpf::verifier::verify(in.program, vo);
      fmt::print("verified: {} instructions processed, {} states kept (peak {}), stack {}\n", r.insns_processed,
                 r.states_stored, r.peak_states, fmt::join(r.stack_depth, " + "));
      return 0;
    }
    if (*diff_cmd && (!diff_data_in.empty() || !diff_type.empty() || !diff_engines.empty())) {
      if (diff_data_in.empty()) throw Error("diff", "a typed program's diff needs --data-in (the packet)");
      const rt::TestRunInput tin = test_run_input(diff_data_in, diff_ctx_in, diff_repeat);
      return typed_diff(diff_path, diff_sel.which, diff_type, tin, diff_engines, diff_safety.get());
    }
    if (*diff_cmd) {
      Input in = load_input(diff_path, diff_sel.which);
      refuse_typed_as_raw(diff_path, in);
      diff_mem.apply(in);
      return diff(in, [&] {
        Input again = load_input(diff_path, diff_sel.which);
        diff_mem.apply(again);
        return again;
      }, diff_safety.get());
    }
    if (*compile) {
      const backend::TargetDesc* target = &parse_arch(arch_name);
      Input in = load_input(compile_path, compile_sel.which);
      const ir::HardenOptions harden = compile_safety.get().safety.harden();
      const rt::HelperTable helpers = harden.any() ? rt::with_hardening_helpers(in.helpers) : in.helpers;
      if (emit == "ir") {
        ir::Module m = to_ir(in.program, helpers);
        ir::harden(m, harden);
        std::string text = ir::print(m);
        write_output(out_path, text.data(), text.size());
        return 0;
      }
      if (emit == "obj") {
        // Hardened code calls the runtime's reserved helpers, which an
        // object linked into a plain C program does not have.
        if (harden.any()) throw Error("--emit obj", "--bounds-check and --blind-constants need the runtime; use run");
        aot::ObjectOptions o;
        o.arch = target->arch;
        o.name = !symbol.empty() ? symbol : !in.function.empty() ? in.function : default_symbol(compile_path);
        mc::CodeImage image = aot::compile_object(in.program, helpers, {in.maps, in.map_refs}, o);
        write_output(out_path, image.object.data(), image.object.size());
        return 0;
      }
      CompileOptions opts;
      opts.arch = target->arch;
      opts.output = emit == "asm" ? mc::OutputKind::Asm : mc::OutputKind::Bytes;
      opts.record_origins = emit == "listing";
      opts.harden = harden;
      mc::CodeImage image = sb::compile(in.program, helpers, opts).image;
      if (emit == "listing") {
        std::string text = listing(in.program, target->arch, image);
        write_output(out_path, text.data(), text.size());
      } else if (emit == "asm")
        write_output(out_path, image.asm_text.data(), image.asm_text.size());
      else
        write_output(out_path, image.text.data(), image.text.size());
      return 0;
    }
    if (*tramp) {
      tramp::Description d = tramp::read_description(tramp_path);
      const std::string arch = !tramp_arch.empty() ? tramp_arch : !d.arch.empty() ? d.arch : "x86-64";
      const backend::TargetDesc& target = parse_arch(arch);
      // Standalone output: symbolic addresses an embedder patches or links.
      tramp::Bindings b = tramp::placeholder_bindings(d);
      ir::Module m = tramp::lower(d, b);
      ir::check(m);
      if (tramp_emit == "ir") {
        std::string text = ir::print(m);
        write_output(tramp_out, text.data(), text.size());
        return 0;
      }
      CompileOptions opts;
      opts.arch = target.arch;
      opts.output = tramp_emit == "asm" ? mc::OutputKind::Asm : mc::OutputKind::Bytes;
      opts.record_origins = tramp_emit == "listing";
      mc::CodeImage image = generate(m, opts);
      if (tramp_emit == "asm") write_output(tramp_out, image.asm_text.data(), image.asm_text.size());
      else if (tramp_emit == "bin") write_output(tramp_out, image.text.data(), image.text.size());
      else {
        std::string text = mc::disassemble_text(target.arch, image.text);
        write_output(tramp_out, text.data(), text.size());
      }
      return 0;
    }
    if (*test_run) {
      const rt::Engine& engine = choose_engine(tr_engine, parse_arch(tr_arch).arch);
      Input in = load_input(tr_path, tr_sel.which);
      std::string section;
      if (in.env) section = in.section;
      const bpf::ProgramType& type = test_run_type(tr_path, tr_type, section);
      in.program.type = &type;
      const rt::TestRunInput tin = test_run_input(tr_data_in, tr_ctx_in, tr_repeat);
      const rt::TestRunOutput out = rt::test_run(engine, in.program, in.helpers, tin, tr_safety.get());
      if (in.env) fmt::print(stderr, "{}", in.env->take_trace());
      if (!tr_data_out.empty()) write_output(tr_data_out, out.data.data(), out.data.size());
      if (!tr_ctx_out.empty()) write_output(tr_ctx_out, out.ctx.data(), out.ctx.size());
      if (tr_json) {
        nlohmann::json j = {{"engine", engine.name}, {"type", std::string(type.name)}, {"retval", out.retval},
                            {"data_out", hex_of(out.data)}, {"ctx_out", hex_of(out.ctx)},
                            {"duration_ns", out.duration_ns}, {"runs", out.runs}};
        j.update(run_outcome(out, in.env.get()));
        if (tr_dump_maps) j["maps"] = in.env ? dump_maps(*in.env) : nlohmann::json::array();
        fmt::print("{}\n", j.dump(2));
      } else {
        fmt::print("{}{}", test_run_text(type, out), run_outcome_text(run_outcome(out, in.env.get())));
        if (tr_dump_maps) fmt::print("{}\n", (in.env ? dump_maps(*in.env) : nlohmann::json::array()).dump(2));
      }
      return 0;
    }
    if (*trace) return cli::run_traced(trace_object, trace_command);
    if (*inspect) {
      const nlohmann::json j = inspect_object(inspect_path);
      fmt::print("{}", inspect_json ? j.dump(2) + "\n" : inspect_text(j));
      return 0;
    }
    if (*plugin) {
      std::string line;
      std::getline(std::cin, line);
      bpf::Program p = bpf::decode(bpf::parse_hex_bytes(line, "<stdin>"), "<stdin>");
      std::vector<uint8_t> mem = bpf::parse_hex_bytes(plugin_mem, "MEM");
      rt::HelperTable helpers = rt::HelperTable::conformance();
      fmt::print("{:#x}\n", choose_engine(plugin_engine, Arch::X86_64).run(p, helpers, mem));
      return 0;
    }
  } catch (const Error& e) {
    fmt::print(stderr, "springboard: {}\n", e.what());
    // The conformance contract wants the bare error text on standard output.
    if (*plugin) fmt::print("{}\n", e.message());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "springboard: {}\n", e.what());
    return 1;
  }
  return 0;
}
