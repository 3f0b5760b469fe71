// The C API (runtime/api/springboard.h) and its C++ wrapper (springboard.hpp),
// linked through the shared library as installed users link it: status
// codes and messages for bad bytecode, assembly, ELF objects, engine names
// and NULL handles; helpers, maps, statistics, machine code; every engine
// giving the same r0 and memory.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <time.h>

#include "runtime/api/springboard.h"
#include "runtime/api/springboard.hpp"

// Functions of this executable that the attach tests hook, found by name.
extern "C" __attribute__((noinline, noipa, used)) int64_t sb_capi_target(int64_t a, int64_t b) {
  return a * 10 + b;
}
extern "C" __attribute__((noinline, noipa, used)) int64_t sb_capi_other(int64_t a) { return a + 1000; }

namespace {

using ::testing::HasSubstr;

std::vector<std::string> engine_names() { return springboard::engines(); }

// A VM per test, destroyed at the end.
class Capi : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(sb_vm_create(nullptr, &vm), SB_OK); }
  void TearDown() override { sb_vm_destroy(vm); }
  std::string error() const { return sb_vm_last_error(vm); }

  sb_program* asm_program(const std::string& source, const char* name = "test.s") {
    sb_program* p = nullptr;
    EXPECT_EQ(sb_vm_load_asm(vm, name, source.c_str(), &p), SB_OK) << error();
    return p;
  }
  // `p` gives `r0` on every engine, with no memory.
  void expect_on_every_engine(sb_program* p, const std::string& r0) {
    for (const std::string& e : engine_names()) {
      std::vector<uint8_t> mem;
      EXPECT_EQ(run_on(p, e, mem), r0) << e;
    }
  }
  // r0 of `p` on `engine` over `mem`, or the status name and message.
  std::string run_on(sb_program* p, const std::string& engine, std::vector<uint8_t>& mem) {
    sb_code* c = nullptr;
    if (sb_status s = sb_program_compile(p, engine.c_str(), &c); s != SB_OK)
      return std::string(sb_status_name(s)) + ": " + error();
    uint64_t r0 = 0;
    sb_status s = sb_code_run(c, mem.empty() ? nullptr : mem.data(), mem.size(), &r0);
    sb_code_destroy(c);
    if (s != SB_OK) return std::string(sb_status_name(s)) + ": " + error();
    return std::to_string(r0);
  }

  sb_vm* vm = nullptr;
};

const std::vector<uint8_t> kHeader = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                                      0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};

// ---------------------------------------------------------------------------
// Version, status names, engines.

TEST(CapiBasics, VersionMatchesHeaderAndProject) {
  EXPECT_STREQ(sb_version(), SPRINGBOARD_VERSION_STRING);
  EXPECT_STREQ(SPRINGBOARD_VERSION_STRING, SB_PROJECT_VERSION);  // CMakeLists.txt's project(VERSION)
  EXPECT_EQ(SPRINGBOARD_VERSION, SPRINGBOARD_VERSION_MAJOR * 10000 + SPRINGBOARD_VERSION_MINOR * 100 +
                                     SPRINGBOARD_VERSION_PATCH);
}

TEST(CapiBasics, StatusNames) {
  EXPECT_STREQ(sb_status_name(SB_OK), "SB_OK");
  EXPECT_STREQ(sb_status_name(SB_ERR_BAD_PROGRAM), "SB_ERR_BAD_PROGRAM");
  EXPECT_STREQ(sb_status_name(SB_ERR_INTERNAL), "SB_ERR_INTERNAL");
  EXPECT_STREQ(sb_status_name(sb_status(999)), "SB_UNKNOWN_STATUS");
  EXPECT_STREQ(sb_status_name(SB_STATUS_MAX_ENUM), "SB_UNKNOWN_STATUS");
}

TEST(CapiBasics, EngineListStartsWithTheInterpreter) {
  std::vector<std::string> names = engine_names();
  ASSERT_GE(names.size(), 2u);
  EXPECT_EQ(names[0], "interp");
  EXPECT_EQ(sb_engine_name(names.size()), nullptr);
}

// Every entry point takes NULL handles without crashing.
TEST(CapiBasics, NullHandles) {
  sb_program* p = nullptr;
  sb_code* c = nullptr;
  sb_map* m = nullptr;
  sb_stats st;
  uint64_t r0;
  EXPECT_EQ(sb_vm_create(nullptr, nullptr), SB_ERR_NULL);
  sb_vm_destroy(nullptr);
  sb_program_destroy(nullptr);
  sb_code_destroy(nullptr);
  EXPECT_THAT(sb_vm_last_error(nullptr), HasSubstr("NULL"));
  EXPECT_EQ(sb_vm_last_status(nullptr), SB_ERR_NULL);
  EXPECT_EQ(sb_vm_load_bytecode(nullptr, "x", "", 0, &p), SB_ERR_NULL);
  EXPECT_EQ(sb_vm_load_asm(nullptr, "x", "exit", &p), SB_ERR_NULL);
  EXPECT_EQ(sb_vm_load_elf(nullptr, "x", "", 0, nullptr, nullptr, &p), SB_ERR_NULL);
  EXPECT_EQ(sb_vm_load_file(nullptr, "x", nullptr, nullptr, &p), SB_ERR_NULL);
  EXPECT_EQ(sb_vm_register_helper(nullptr, 1, "x", nullptr), SB_ERR_NULL);
  EXPECT_EQ(sb_vm_create_map(nullptr, "m", SB_MAP_ARRAY, 4, 8, 1, &m), SB_ERR_NULL);
  EXPECT_EQ(sb_vm_find_map(nullptr, "m", &m), SB_ERR_NULL);
  EXPECT_EQ(sb_vm_map_count(nullptr), 0u);
  EXPECT_EQ(sb_vm_map_at(nullptr, 0), nullptr);
  EXPECT_EQ(sb_map_get_info(nullptr, nullptr), SB_ERR_NULL);
  EXPECT_EQ(sb_map_lookup(nullptr, &r0, 4, &r0, 8), SB_ERR_NULL);
  EXPECT_EQ(sb_map_update(nullptr, &r0, 4, &r0, 8, 0), SB_ERR_NULL);
  EXPECT_EQ(sb_map_delete(nullptr, &r0, 4), SB_ERR_NULL);
  EXPECT_EQ(sb_map_consume(nullptr, nullptr, nullptr, nullptr), SB_ERR_NULL);
  EXPECT_EQ(sb_program_compile(nullptr, "interp", &c), SB_ERR_NULL);
  EXPECT_EQ(sb_code_run(nullptr, nullptr, 0, &r0), SB_ERR_NULL);
  sb_native_fn fn = nullptr;
  EXPECT_EQ(sb_code_function(nullptr, &fn), SB_ERR_NULL);
  EXPECT_EQ(sb_code_function(nullptr, nullptr), SB_ERR_NULL);
  EXPECT_EQ(sb_code_stats(nullptr, &st), SB_ERR_NULL);
  EXPECT_EQ(sb_program_stats(nullptr, &st), SB_ERR_NULL);
  EXPECT_EQ(sb_code_disassembly(nullptr), nullptr);
  size_t size = 1;
  EXPECT_EQ(sb_code_machine_code(nullptr, &size), nullptr);
  EXPECT_EQ(size, 0u);
  EXPECT_STREQ(sb_program_name(nullptr), "");
  EXPECT_STREQ(sb_code_engine(nullptr), "");
  EXPECT_EQ(sb_current_vm(), nullptr);
}

TEST_F(Capi, NullArgumentsAreNamed) {
  EXPECT_EQ(sb_vm_load_asm(vm, "x", "exit", nullptr), SB_ERR_NULL);
  EXPECT_EQ(error(), "sb_vm_load_asm: out is NULL");
  EXPECT_EQ(sb_vm_last_status(vm), SB_ERR_NULL);
  sb_program* p = nullptr;
  EXPECT_EQ(sb_vm_load_asm(vm, "x", nullptr, &p), SB_ERR_NULL);
  EXPECT_EQ(error(), "sb_vm_load_asm: source is NULL");
  EXPECT_EQ(sb_vm_load_bytecode(vm, "x", nullptr, 8, &p), SB_ERR_NULL);
  EXPECT_EQ(error(), "sb_vm_load_bytecode: bytes is NULL");
  EXPECT_EQ(sb_vm_register_helper(vm, 1000, "h", nullptr), SB_ERR_NULL);
  EXPECT_EQ(error(), "sb_vm_register_helper: fn is NULL");
  p = asm_program("mov %r0, 1\nexit");
  sb_code* c = nullptr;
  EXPECT_EQ(sb_program_compile(p, nullptr, &c), SB_ERR_NULL);
  EXPECT_EQ(error(), "sb_program_compile: engine is NULL");
  ASSERT_EQ(sb_program_compile(p, "interp", &c), SB_OK);
  EXPECT_EQ(sb_code_run(c, nullptr, 4, nullptr), SB_ERR_NULL);
  EXPECT_EQ(error(), "sb_code_run: mem is NULL");
  EXPECT_EQ(sb_code_run(c, nullptr, 0, nullptr), SB_OK);  // r0 may be NULL
}

// ---------------------------------------------------------------------------
// Bad input: codes and messages naming the file and instruction.

TEST_F(Capi, BadBytecodeNamesTheInstruction) {
  sb_program* p = reinterpret_cast<sb_program*>(1);
  // ja +1 into the second slot of a lddw.
  const uint8_t jump_into_lddw[] = {0x05, 0, 1, 0, 0, 0, 0, 0, 0x18, 0, 0, 0, 0, 0, 0, 0,
                                    0,    0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(sb_vm_load_bytecode(vm, "bad.bin", jump_into_lddw, sizeof jump_into_lddw, &p), SB_ERR_BAD_PROGRAM);
  EXPECT_EQ(p, nullptr);
  EXPECT_THAT(error(), HasSubstr("bad.bin: instruction 0: jump into the middle of lddw"));

  const uint8_t ragged[12] = {0x95};
  EXPECT_EQ(sb_vm_load_bytecode(vm, "ragged.bin", ragged, sizeof ragged, &p), SB_ERR_BAD_PROGRAM);
  EXPECT_THAT(error(), HasSubstr("ragged.bin"));

  EXPECT_EQ(sb_vm_load_bytecode(vm, "empty.bin", "", 0, &p), SB_ERR_BAD_PROGRAM);
  EXPECT_THAT(error(), HasSubstr("empty.bin"));

  const uint8_t unknown_opcode[] = {0xff, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(sb_vm_load_bytecode(vm, nullptr, unknown_opcode, sizeof unknown_opcode, &p), SB_ERR_BAD_PROGRAM);
  EXPECT_THAT(error(), HasSubstr("<bytecode>: instruction 0"));

  const uint8_t no_exit[] = {0xb7, 0, 0, 0, 1, 0, 0, 0};  // mov r0, 1 and falls off the end
  EXPECT_EQ(sb_vm_load_bytecode(vm, "fall.bin", no_exit, sizeof no_exit, &p), SB_ERR_BAD_PROGRAM);
  EXPECT_THAT(error(), HasSubstr("fall.bin: instruction 0"));
}

TEST_F(Capi, BadAssemblyNamesTheLine) {
  sb_program* p = nullptr;
  EXPECT_EQ(sb_vm_load_asm(vm, "x.s", "mov %r0, 1\nfrobnicate %r1\nexit", &p), SB_ERR_BAD_PROGRAM);
  EXPECT_THAT(error(), HasSubstr("x.s: line 2"));
}

TEST_F(Capi, FilesAndElfErrors) {
  sb_program* p = nullptr;
  EXPECT_EQ(sb_vm_load_file(vm, "/nonexistent/prog.o", nullptr, nullptr, &p), SB_ERR_IO);
  EXPECT_EQ(error(), "/nonexistent/prog.o: cannot open file");

  std::vector<uint8_t> garbage = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0};
  EXPECT_EQ(sb_vm_load_elf(vm, "junk.o", garbage.data(), garbage.size(), nullptr, nullptr, &p), SB_ERR_BAD_ELF);
  EXPECT_THAT(error(), HasSubstr("junk.o"));
  EXPECT_EQ(p, nullptr);

  // The same bytes from a file are recognized as ELF by their magic.
  std::string path = ::testing::TempDir() + "capi_junk.o";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(garbage.data()), garbage.size());
  EXPECT_EQ(sb_vm_load_file(vm, path.c_str(), nullptr, nullptr, &p), SB_ERR_BAD_ELF);
  EXPECT_THAT(error(), HasSubstr(path));
}

TEST_F(Capi, EngineNames) {
  sb_program* p = asm_program("mov %r0, 1\nexit");
  sb_code* c = nullptr;
  EXPECT_EQ(sb_program_compile(p, "sparc", &c), SB_ERR_UNKNOWN_ENGINE);
  EXPECT_EQ(c, nullptr);
  EXPECT_THAT(error(), HasSubstr("unknown engine or architecture 'sparc'"));
  EXPECT_THAT(error(), HasSubstr("interp"));
  // Aliases resolve to listed engines.
  for (const char* alias : {"x86-64", "arm64", "riscv64", "jit"}) {
    sb_status s = sb_program_compile(p, alias, &c);
    if (s == SB_ERR_UNAVAILABLE) {
      EXPECT_THAT(error(), HasSubstr("not available")) << alias;
      continue;
    }
    ASSERT_EQ(s, SB_OK) << alias << ": " << error();
    std::vector<std::string> names = engine_names();
    EXPECT_NE(std::find(names.begin(), names.end(), sb_code_engine(c)), names.end()) << alias;
  }
  // A known engine this build lacks is unavailable, not unknown.
  for (const char* name : {"x86_64_native", "x86_64_emu", "arm64_emu", "riscv64_emu"}) {
    std::vector<std::string> names = engine_names();
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      EXPECT_EQ(sb_program_compile(p, name, &c), SB_ERR_UNAVAILABLE) << name;
    }
  }
}

TEST_F(Capi, UnknownHelperIsACompileError) {
  sb_program* p = asm_program("call 4242\nexit", "helper.s");  // loads: helpers are checked per compile
  for (const std::string& e : engine_names()) {
    sb_code* c = nullptr;
    EXPECT_EQ(sb_program_compile(p, e.c_str(), &c), SB_ERR_COMPILE) << e;
    EXPECT_THAT(error(), HasSubstr("helper.s: instruction 0: unknown helper 4242")) << e;
  }
}

TEST_F(Capi, RunTimeFaultNamesTheInstruction) {
  // Trusted code (the verifier refuses the call to helper 77 before it runs).
  sb_vm_destroy(vm);
  sb_vm_options o{};
  o.flags = SB_VM_NO_VERIFY;
  ASSERT_EQ(sb_vm_create(&o, &vm), SB_OK);
  sb_program* p = asm_program("mov %r0, 1\nmov %r2, 77\ncall %r2\nexit", "callx.s");
  for (const std::string& e : engine_names()) {
    std::vector<uint8_t> mem;
    EXPECT_THAT(run_on(p, e, mem), HasSubstr("SB_ERR_EXEC: callx.s: instruction 2")) << e;
  }
}

// The last message is per thread: a failure elsewhere leaves ours alone.
TEST_F(Capi, LastErrorIsPerThread) {
  sb_program* p = nullptr;
  EXPECT_EQ(sb_vm_load_asm(vm, "mine.s", "nope", &p), SB_ERR_BAD_PROGRAM);
  std::thread other([&] {
    EXPECT_STREQ(sb_vm_last_error(vm), "");
    EXPECT_EQ(sb_vm_last_status(vm), SB_OK);
    sb_program* q = nullptr;
    EXPECT_EQ(sb_vm_load_asm(vm, "theirs.s", "nope", &q), SB_ERR_BAD_PROGRAM);
    EXPECT_THAT(sb_vm_last_error(vm), HasSubstr("theirs.s"));
  });
  other.join();
  EXPECT_THAT(error(), HasSubstr("mine.s"));
  // Success leaves the message as it was.
  asm_program("exit");
  EXPECT_THAT(error(), HasSubstr("mine.s"));
}

// ---------------------------------------------------------------------------
// Every engine gives the same r0 and memory.

TEST_F(Capi, EveryEngineRunsTheBundledChecksum) {
  sb_program* p = nullptr;
  ASSERT_EQ(sb_vm_load_file(vm, SB_EXAMPLES_DIR "/checksum.s", nullptr, nullptr, &p), SB_OK) << error();
  EXPECT_THAT(sb_program_name(p), HasSubstr("checksum.s"));
  for (const std::string& e : engine_names()) {
    std::vector<uint8_t> mem = kHeader;
    EXPECT_EQ(run_on(p, e, mem), std::to_string(0xb861)) << e;
  }
}

TEST_F(Capi, EveryEngineWritesMemoryInPlace) {
  sb_program* p = asm_program("ldxw %r0, [%r1+0]\nadd %r0, 1\nstxw [%r1+4], %r0\nstb [%r1+0], 9\nexit");
  for (const std::string& e : engine_names()) {
    std::vector<uint8_t> mem = {1, 2, 3, 4, 0, 0, 0, 0};
    EXPECT_EQ(run_on(p, e, mem), std::to_string(0x04030202)) << e;
    EXPECT_EQ(mem, (std::vector<uint8_t>{9, 2, 3, 4, 2, 2, 3, 4})) << e;
  }
}

TEST_F(Capi, RawBytecode) {
  const uint8_t prog[] = {0xb7, 0, 0, 0, 42, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0};  // mov r0, 42; exit
  sb_program* p = nullptr;
  ASSERT_EQ(sb_vm_load_bytecode(vm, "answer.bin", prog, sizeof prog, &p), SB_OK) << error();
  EXPECT_EQ(sb_program_slot_count(p), 2u);
  EXPECT_STREQ(sb_program_name(p), "answer.bin");
  // The same bytes from a file (neither ELF nor .s: raw bytecode).
  std::string path = ::testing::TempDir() + "capi_answer.bin";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(prog), sizeof prog);
  sb_program* from_file = nullptr;
  ASSERT_EQ(sb_vm_load_file(vm, path.c_str(), nullptr, nullptr, &from_file), SB_OK) << error();
  for (const std::string& e : engine_names()) {
    std::vector<uint8_t> mem;
    EXPECT_EQ(run_on(p, e, mem), "42") << e;
    EXPECT_EQ(run_on(from_file, e, mem), "42") << e;
  }
}

// ---------------------------------------------------------------------------
// Helpers.

uint64_t add_three(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t, uint64_t) { return r1 + r2 * 10 + r3 * 100; }
uint64_t times_two(uint64_t r1, uint64_t, uint64_t, uint64_t, uint64_t) { return r1 * 2; }
// Reads the VM's user data: helpers reach their embedder through the VM.
uint64_t user_value(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  sb_vm* vm = sb_current_vm();
  return vm ? *static_cast<const uint64_t*>(sb_vm_user_data(vm)) : 0;
}

TEST_F(Capi, HelpersOnEveryEngine) {
  ASSERT_EQ(sb_vm_register_helper(vm, 1000, "add_three", add_three), SB_OK);
  ASSERT_EQ(sb_vm_register_helper(vm, 1001, nullptr, user_value), SB_OK);
  uint64_t secret = 0x1234;
  sb_vm_set_user_data(vm, &secret);
  sb_program* p = asm_program(
      "mov %r1, 1\nmov %r2, 2\nmov %r3, 3\ncall 1000\nmov %r6, %r0\ncall 1001\nadd %r0, %r6\nexit");
  for (const std::string& e : engine_names()) {
    std::vector<uint8_t> mem;
    EXPECT_EQ(run_on(p, e, mem), std::to_string(321 + 0x1234)) << e;
  }
  // Registering an id again replaces the helper for later compiles.
  ASSERT_EQ(sb_vm_register_helper(vm, 1000, "times_two", times_two), SB_OK);
  for (const std::string& e : engine_names()) {
    std::vector<uint8_t> mem;
    EXPECT_EQ(run_on(p, e, mem), std::to_string(2 + 0x1234)) << e;
  }
}

// ---------------------------------------------------------------------------
// Maps.

TEST_F(Capi, MapOperationsAndErrors) {
  sb_map* hash = nullptr;
  ASSERT_EQ(sb_vm_create_map(vm, "h", SB_MAP_HASH, 4, 8, 2, &hash), SB_OK) << error();
  uint32_t k1 = 1, k2 = 2, k3 = 3;
  uint64_t v = 10, out = 0;
  EXPECT_EQ(sb_map_lookup(hash, &k1, 4, &out, 8), SB_ERR_NOT_FOUND);
  EXPECT_EQ(error(), "map 'h': lookup: no such key");
  EXPECT_EQ(sb_map_update(hash, &k1, 4, &v, 8, SB_UPDATE_ANY), SB_OK);
  EXPECT_EQ(sb_map_lookup(hash, &k1, 4, &out, 8), SB_OK);
  EXPECT_EQ(out, 10u);
  EXPECT_EQ(sb_map_update(hash, &k1, 4, &v, 8, SB_UPDATE_NOEXIST), SB_ERR_MAP);
  EXPECT_THAT(error(), HasSubstr("map 'h': update: EEXIST"));
  EXPECT_EQ(sb_map_update(hash, &k2, 4, &v, 8, SB_UPDATE_EXIST), SB_ERR_NOT_FOUND);
  EXPECT_EQ(sb_map_update(hash, &k2, 4, &v, 8, SB_UPDATE_ANY), SB_OK);
  EXPECT_EQ(sb_map_update(hash, &k3, 4, &v, 8, SB_UPDATE_ANY), SB_ERR_MAP);
  EXPECT_THAT(error(), HasSubstr("E2BIG"));
  EXPECT_EQ(sb_map_delete(hash, &k2, 4), SB_OK);
  EXPECT_EQ(sb_map_delete(hash, &k2, 4), SB_ERR_NOT_FOUND);
  EXPECT_EQ(sb_map_lookup(hash, &k1, 8, &out, 8), SB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(error(), "map 'h': key size is 4, not 8");
  EXPECT_EQ(sb_map_update(hash, &k1, 4, &v, 4, 0), SB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(error(), "map 'h': value size is 8, not 4");

  sb_map* m = nullptr;
  EXPECT_EQ(sb_vm_create_map(vm, "h", SB_MAP_ARRAY, 4, 8, 1, &m), SB_ERR_MAP);
  EXPECT_THAT(error(), HasSubstr("'h'"));
  EXPECT_EQ(sb_vm_create_map(vm, "odd", sb_map_type(77), 4, 8, 1, &m), SB_ERR_MAP);
  EXPECT_THAT(error(), HasSubstr("odd"));
  EXPECT_EQ(sb_vm_create_map(vm, "", SB_MAP_ARRAY, 4, 8, 1, &m), SB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(sb_vm_find_map(vm, "absent", &m), SB_ERR_NOT_FOUND);
  EXPECT_EQ(error(), "no map named 'absent'");
  ASSERT_EQ(sb_vm_find_map(vm, "h", &m), SB_OK);
  EXPECT_EQ(m, hash);  // one handle per map
  EXPECT_EQ(sb_vm_map_count(vm), 1u);
  EXPECT_EQ(sb_vm_map_at(vm, 0), hash);
  EXPECT_EQ(sb_vm_map_at(vm, 1), nullptr);
  EXPECT_EQ(sb_map_consume(hash, [](void*, const void*, size_t) {}, nullptr, nullptr), SB_ERR_MAP);
  EXPECT_EQ(error(), "map 'h': not a ring buffer or perf event array");

  sb_map* ring = nullptr;
  ASSERT_EQ(sb_vm_create_map(vm, "ring", SB_MAP_RINGBUF, 0, 0, 4096, &ring), SB_OK) << error();
  size_t n = 99;
  EXPECT_EQ(sb_map_consume(ring, [](void*, const void*, size_t) {}, nullptr, &n), SB_OK);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(sb_map_lookup(ring, &k1, 0, &out, 0), SB_ERR_MAP);
  EXPECT_THAT(error(), HasSubstr("no elements to look up"));
}

// A program updates a map through the handle sb_map_info gives.
TEST_F(Capi, ProgramsSeeTheEmbeddersMaps) {
  sb_map* counts = nullptr;
  ASSERT_EQ(sb_vm_create_map(vm, "counts", SB_MAP_ARRAY, 4, 8, 4, &counts), SB_OK);
  sb_map_info info;
  ASSERT_EQ(sb_map_get_info(counts, &info), SB_OK);
  EXPECT_STREQ(info.name, "counts");
  EXPECT_EQ(info.type, uint32_t(SB_MAP_ARRAY));
  EXPECT_EQ(info.key_size, 4u);
  EXPECT_EQ(info.value_size, 8u);
  EXPECT_EQ(info.max_entries, 4u);
  char source[256];
  std::snprintf(source, sizeof source,
                "lddw %%r1, %#llx\nmov %%r2, %%r10\nadd %%r2, -4\nstw [%%r10-4], 2\ncall 1\n"
                "jeq %%r0, 0, +3\nmov %%r1, 5\nlock add [%%r0+0], %%r1\nmov %%r0, 1\nexit",
                static_cast<unsigned long long>(info.handle));
  sb_program* p = asm_program(source);
  expect_on_every_engine(p, "1");
  uint32_t key = 2;
  uint64_t value = 0;
  ASSERT_EQ(sb_map_lookup(counts, &key, 4, &value, 8), SB_OK);
  EXPECT_EQ(value, 5 * engine_names().size());
}

// Arrays and hashes of maps from the C API: the kernel's rules for filling
// their slots from user space (each errno is the kernel's, compared in
// KernelMaps.MapOfMapsSlotsFromUserSpace), and a program that finds an
// inner map through each and counts into it, on every engine.
TEST_F(Capi, MapsOfMaps) {
  sb_map *a = nullptr, *b = nullptr, *unlike = nullptr, *outer = nullptr, *hash = nullptr, *m = nullptr;
  ASSERT_EQ(sb_vm_create_map(vm, "a", SB_MAP_ARRAY, 4, 8, 4, &a), SB_OK) << error();
  ASSERT_EQ(sb_vm_create_map(vm, "b", SB_MAP_ARRAY, 4, 8, 4, &b), SB_OK);
  ASSERT_EQ(sb_vm_create_map(vm, "unlike", SB_MAP_ARRAY, 4, 8, 5, &unlike), SB_OK);  // other max_entries
  ASSERT_EQ(sb_vm_create_map_of_maps(vm, "outer", SB_MAP_ARRAY_OF_MAPS, 4, 3, a, &outer), SB_OK) << error();
  ASSERT_EQ(sb_vm_create_map_of_maps(vm, "hash", SB_MAP_HASH_OF_MAPS, 8, 2, a, &hash), SB_OK) << error();
  sb_map_info info;
  ASSERT_EQ(sb_map_get_info(outer, &info), SB_OK);
  EXPECT_EQ(info.type, uint32_t(SB_MAP_ARRAY_OF_MAPS));
  EXPECT_EQ(info.value_size, 4u);  // a file descriptor's, as the kernel's

  EXPECT_EQ(sb_vm_create_map_of_maps(vm, "bad", SB_MAP_HASH, 4, 3, a, &m), SB_ERR_INVALID_ARGUMENT);
  EXPECT_THAT(error(), HasSubstr("map 'bad': type 1 is not an array or hash of maps"));
  EXPECT_EQ(sb_vm_create_map_of_maps(vm, "bad", SB_MAP_ARRAY_OF_MAPS, 8, 3, a, &m), SB_ERR_MAP);  // key 4 bytes
  EXPECT_EQ(sb_vm_create_map_of_maps(vm, "bad", SB_MAP_ARRAY_OF_MAPS, 4, 3, nullptr, &m), SB_ERR_NULL);
  EXPECT_THAT(error(), HasSubstr("inner is NULL"));

  uint32_t i = 0;
  EXPECT_EQ(sb_map_get_inner(outer, &i, 4, &m), SB_ERR_NOT_FOUND);
  ASSERT_EQ(sb_map_set_inner(outer, &i, 4, a, SB_UPDATE_ANY), SB_OK) << error();
  i = 2;
  ASSERT_EQ(sb_map_set_inner(outer, &i, 4, b, SB_UPDATE_ANY), SB_OK);
  EXPECT_EQ(sb_map_set_inner(outer, &i, 4, b, SB_UPDATE_NOEXIST), SB_ERR_MAP);
  EXPECT_THAT(error(), HasSubstr("map 'outer': set: EINVAL: flags 1 (an array of maps takes only SB_UPDATE_ANY)"));
  EXPECT_EQ(sb_map_set_inner(outer, &i, 4, unlike, SB_UPDATE_ANY), SB_ERR_MAP);
  EXPECT_THAT(error(), HasSubstr("map 'outer': set: EINVAL: map 'unlike' is unlike the template"));
  i = 3;
  EXPECT_EQ(sb_map_set_inner(outer, &i, 4, a, SB_UPDATE_ANY), SB_ERR_MAP);
  EXPECT_THAT(error(), HasSubstr("map 'outer': set: E2BIG"));
  EXPECT_EQ(sb_map_set_inner(a, &i, 4, b, SB_UPDATE_ANY), SB_ERR_MAP);
  EXPECT_THAT(error(), HasSubstr("sb_map_set_inner: map 'a' is a array map, not an array or hash of maps"));
  i = 0;
  ASSERT_EQ(sb_map_get_inner(outer, &i, 4, &m), SB_OK);
  EXPECT_EQ(m, a);
  uint32_t fd = 0;
  EXPECT_EQ(sb_map_lookup(outer, &i, 4, &fd, 4), SB_ERR_MAP);
  EXPECT_THAT(error(), HasSubstr("holds maps: use sb_map_get_inner"));
  EXPECT_EQ(sb_map_update(outer, &i, 4, &fd, 4, 0), SB_ERR_MAP);
  EXPECT_THAT(error(), HasSubstr("holds maps: use sb_map_set_inner"));

  uint64_t k = 7;
  EXPECT_EQ(sb_map_set_inner(hash, &k, 8, b, SB_UPDATE_EXIST), SB_ERR_NOT_FOUND);
  ASSERT_EQ(sb_map_set_inner(hash, &k, 8, b, SB_UPDATE_NOEXIST), SB_OK);
  EXPECT_EQ(sb_map_set_inner(hash, &k, 8, b, SB_UPDATE_NOEXIST), SB_ERR_MAP);
  EXPECT_THAT(error(), HasSubstr("EEXIST"));
  EXPECT_EQ(sb_map_set_inner(hash, &k, 8, b, 9), SB_ERR_MAP);
  EXPECT_THAT(error(), HasSubstr("flags 9 (not SB_UPDATE_ANY, _NOEXIST or _EXIST)"));
  uint64_t k2 = 8, k3 = 9;
  ASSERT_EQ(sb_map_set_inner(hash, &k2, 8, a, SB_UPDATE_ANY), SB_OK);
  EXPECT_EQ(sb_map_set_inner(hash, &k3, 8, a, SB_UPDATE_ANY), SB_ERR_MAP);  // full
  EXPECT_THAT(error(), HasSubstr("E2BIG"));
  EXPECT_EQ(sb_map_set_inner(hash, &k3, 4, a, SB_UPDATE_ANY), SB_ERR_INVALID_ARGUMENT);  // the key's size
  EXPECT_EQ(sb_map_delete(hash, &k2, 8), SB_OK);
  EXPECT_EQ(sb_map_delete(hash, &k2, 8), SB_ERR_NOT_FOUND);
  size_t entries = 0;
  ASSERT_EQ(sb_map_for_each(hash, [](void*, const void*, size_t, const void*, size_t, size_t) {}, nullptr, &entries),
            SB_OK);
  EXPECT_EQ(entries, 1u);

  // outer[2][1] += 5 (r0 = 1), the inner map found through the outer one; r0 = 0 for an empty slot.
  ASSERT_EQ(sb_map_get_info(outer, &info), SB_OK);
  char source[512];
  std::snprintf(source, sizeof source,
                "lddw %%r1, %#llx\nmov %%r2, %%r10\nadd %%r2, -4\nstw [%%r10-4], 2\ncall 1\n"
                "jeq %%r0, 0, +9\nmov %%r1, %%r0\nmov %%r2, %%r10\nadd %%r2, -8\nstw [%%r10-8], 1\ncall 1\n"
                "jeq %%r0, 0, +3\nmov %%r1, 5\nlock add [%%r0+0], %%r1\nmov %%r0, 1\nexit",
                static_cast<unsigned long long>(info.handle));
  sb_program* p = asm_program(source);
  expect_on_every_engine(p, "1");
  uint64_t value = 0;
  i = 1;
  ASSERT_EQ(sb_map_lookup(b, &i, 4, &value, 8), SB_OK);
  EXPECT_EQ(value, 5 * engine_names().size());
  i = 2;  // an array's slot empties too, as the kernel's fd_array_map_delete_elem
  EXPECT_EQ(sb_map_delete(outer, &i, 4), SB_OK);
  EXPECT_EQ(sb_map_delete(outer, &i, 4), SB_ERR_NOT_FOUND);
  i = 5;
  EXPECT_EQ(sb_map_delete(outer, &i, 4), SB_ERR_MAP);
  EXPECT_THAT(error(), HasSubstr("E2BIG"));
  expect_on_every_engine(p, "0");  // the program finds the slot empty

  // The C++ wrapper.
  springboard::vm cpp;
  springboard::map inner = cpp.create_map("inner", SB_MAP_HASH, 4, 4, 8);
  springboard::map of = cpp.create_map_of_maps("of", SB_MAP_ARRAY_OF_MAPS, 4, 2, inner);
  EXPECT_FALSE(of.inner(uint32_t(1)));
  of.set_inner(uint32_t(1), inner);
  ASSERT_TRUE(of.inner(uint32_t(1)));
  EXPECT_EQ(of.inner(uint32_t(1))->get(), inner.get());
  EXPECT_THROW(of.set_inner(uint32_t(2), inner), springboard::error);
}

// ---------------------------------------------------------------------------
// Statistics, machine code, disassembly.

TEST_F(Capi, StatisticsCountEveryRun) {
  // Trusted code: the faulting program below fails at run time, not at compile time.
  sb_vm_destroy(vm);
  sb_vm_options o{};
  o.flags = SB_VM_NO_VERIFY;
  ASSERT_EQ(sb_vm_create(&o, &vm), SB_OK);
  sb_program* p = asm_program("mov %r0, 1\nexit");
  sb_program* faulting = asm_program("mov %r2, 77\ncall %r2\nexit");
  uint64_t total = 0;
  for (const std::string& e : engine_names()) {
    sb_code* c = nullptr;
    ASSERT_EQ(sb_program_compile(p, e.c_str(), &c), SB_OK) << error();
    for (int i = 0; i < 3; ++i) ASSERT_EQ(sb_code_run(c, nullptr, 0, nullptr), SB_OK) << e;
    sb_stats st;
    ASSERT_EQ(sb_code_stats(c, &st), SB_OK);
    EXPECT_EQ(st.run_count, 3u) << e;
    EXPECT_GT(st.run_time_ns, 0u) << e;
    total += 3;
    sb_code* f = nullptr;
    ASSERT_EQ(sb_program_compile(faulting, e.c_str(), &f), SB_OK) << error();
    EXPECT_EQ(sb_code_run(f, nullptr, 0, nullptr), SB_ERR_EXEC);
    ASSERT_EQ(sb_code_stats(f, &st), SB_OK);
    EXPECT_EQ(st.run_count, 1u) << e;
  }
  sb_stats st;
  ASSERT_EQ(sb_program_stats(p, &st), SB_OK);
  EXPECT_EQ(st.run_count, total);
  EXPECT_EQ(sb_program_stats(p, nullptr), SB_ERR_NULL);
}

TEST(CapiStats, NoStatistics) {
  sb_vm_options o{};
  o.flags = SB_VM_NO_STATS;
  springboard::vm vm(o);
  springboard::program p = vm.load_asm("mov %r0, 1\nexit");
  for (const std::string& e : engine_names()) {
    springboard::code c = p.compile(e);
    EXPECT_EQ(c.run(), 1u) << e;
    EXPECT_EQ(c.stats().run_count, 0u) << e;
    EXPECT_EQ(c.stats().run_time_ns, 0u) << e;
  }
  EXPECT_EQ(p.stats().run_count, 0u);
}

// A program's statistics keep the runs of its destroyed codes.
TEST_F(Capi, ProgramStatisticsOutliveCodes) {
  sb_program* p = asm_program("mov %r0, 1\nexit");
  sb_code *a = nullptr, *b = nullptr;
  ASSERT_EQ(sb_program_compile(p, "interp", &a), SB_OK);
  ASSERT_EQ(sb_program_compile(p, engine_names().back().c_str(), &b), SB_OK);
  for (int i = 0; i < 2; ++i) ASSERT_EQ(sb_code_run(a, nullptr, 0, nullptr), SB_OK);
  ASSERT_EQ(sb_code_run(b, nullptr, 0, nullptr), SB_OK);
  sb_stats st;
  ASSERT_EQ(sb_program_stats(p, &st), SB_OK);
  EXPECT_EQ(st.run_count, 3u);
  const uint64_t ns = st.run_time_ns;
  sb_code_destroy(a);
  ASSERT_EQ(sb_program_stats(p, &st), SB_OK);
  EXPECT_EQ(st.run_count, 3u);
  EXPECT_EQ(st.run_time_ns, ns);
  ASSERT_EQ(sb_code_run(b, nullptr, 0, nullptr), SB_OK);
  ASSERT_EQ(sb_program_stats(p, &st), SB_OK);
  EXPECT_EQ(st.run_count, 4u);
}

// Timing is the cycle counter converted to nanoseconds: a program that
// spins for about 2 ms of CLOCK_MONOTONIC reads as about 2 ms.
// The loop runs 3,000,000 times, past the verifier's complexity limit: trusted code.
TEST(CapiTiming, RunTimeIsCalibratedNanoseconds) {
  sb_vm_options o{};
  o.flags = SB_VM_NO_VERIFY;
  sb_vm* vm = nullptr;
  ASSERT_EQ(sb_vm_create(&o, &vm), SB_OK);
  sb_program* p = nullptr;
  ASSERT_EQ(sb_vm_load_asm(vm, "spin.s", "mov %r0, 0\nadd %r0, 1\njlt %r0, 3000000, -2\nexit", &p), SB_OK);
  sb_code* c = nullptr;
  ASSERT_EQ(sb_program_compile(p, "jit", &c) == SB_OK ? SB_OK : sb_program_compile(p, "interp", &c), SB_OK);
  timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ASSERT_EQ(sb_code_run(c, nullptr, 0, nullptr), SB_OK);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const double wall = double(t1.tv_sec - t0.tv_sec) * 1e9 + double(t1.tv_nsec - t0.tv_nsec);
  sb_stats st;
  ASSERT_EQ(sb_code_stats(c, &st), SB_OK);
  EXPECT_GT(double(st.run_time_ns), 0.8 * wall);
  EXPECT_LT(double(st.run_time_ns), 1.2 * wall);
  sb_vm_destroy(vm);
}

// sb_code_function: the compiled function, for code that needs nothing
// around its run.
TEST_F(Capi, CodeFunction) {
  sb_program* p = asm_program("ldxdw %r0, [%r1+0]\nadd %r0, %r2\nexit");
  sb_code* c = nullptr;
  sb_native_fn fn = reinterpret_cast<sb_native_fn>(1);
  ASSERT_EQ(sb_program_compile(p, "interp", &c), SB_OK);
  EXPECT_EQ(sb_code_function(c, &fn), SB_ERR_UNAVAILABLE);
  EXPECT_EQ(fn, nullptr);
  EXPECT_EQ(error(), "sb_code_function: 'interp' code is not native; use sb_code_run");
  EXPECT_EQ(sb_code_function(c, nullptr), SB_ERR_NULL);
  EXPECT_EQ(error(), "sb_code_function: out is NULL");
  if (sb_program_compile(p, "jit", &c) != SB_OK) GTEST_SKIP() << "no native engine: " << error();
  ASSERT_EQ(sb_code_function(c, &fn), SB_OK) << error();
  uint64_t mem = 40;
  sb_native_result r = fn(&mem, 2);
  EXPECT_EQ(r.status, 0u);
  EXPECT_EQ(r.r0, 42u);
  springboard::vm cpp;
  springboard::program helper = cpp.load_asm("call 5\nexit", "helper.s");  // bpf_ktime_get_ns
  springboard::code h = helper.compile("jit");
  try {
    h.function();
    ADD_FAILURE() << "a program that calls helpers has no plain function";
  } catch (const springboard::error& e) {
    EXPECT_EQ(e.code(), SB_ERR_UNAVAILABLE);
    EXPECT_STREQ(e.what(), "sb_code_function: helper.s calls helpers, which need sb_code_run");
  }
  EXPECT_EQ(sb_code_run(c, nullptr, 8, nullptr), SB_ERR_NULL);  // the fast path checks too
  EXPECT_EQ(error(), "sb_code_run: mem is NULL");
}

// Programs are verified when compiled, unless the vm is told the code is trusted.
TEST(CapiVerify, RefusesUnsafeUnlessTrusted) {
  const char* unsafe = "ldxdw %r0, [%r10-8]\nexit";  // unwritten stack
  sb_vm* vm = nullptr;
  ASSERT_EQ(sb_vm_create(nullptr, &vm), SB_OK);
  sb_program* p = nullptr;
  ASSERT_EQ(sb_vm_load_asm(vm, "u.s", unsafe, &p), SB_OK);
  for (size_t e = 0; e < sb_engine_count(); ++e) {
    sb_code* c = nullptr;
    EXPECT_NE(sb_program_compile(p, sb_engine_name(e), &c), SB_OK) << sb_engine_name(e);
    EXPECT_EQ(c, nullptr);
    EXPECT_NE(std::string(sb_vm_last_error(vm)).find("invalid read from stack R10 off -8+0 size 8"), std::string::npos)
        << sb_vm_last_error(vm);
  }
  sb_vm_destroy(vm);
  sb_vm_options o{};
  o.flags = SB_VM_NO_VERIFY;
  ASSERT_EQ(sb_vm_create(&o, &vm), SB_OK);
  ASSERT_EQ(sb_vm_load_asm(vm, "u.s", unsafe, &p), SB_OK);
  sb_code* c = nullptr;
  EXPECT_EQ(sb_program_compile(p, "interp", &c), SB_OK) << sb_vm_last_error(vm);
  sb_vm_destroy(vm);
}

TEST(CapiStats, CountingWithoutTiming) {
  sb_vm_options o{};
  o.flags = SB_VM_NO_TIMING;
  springboard::vm vm(o);
  springboard::program p = vm.load_asm("mov %r0, 1\nexit");
  springboard::code c = p.compile(springboard::engines().back());
  c.run();
  c.run();
  EXPECT_EQ(c.stats().run_count, 2u);
  EXPECT_EQ(c.stats().run_time_ns, 0u);
  EXPECT_EQ(p.stats().run_count, 2u);
}

// Runs of one code from several threads at once, counted exactly.
TEST_F(Capi, ConcurrentRuns) {
  sb_program* p = asm_program("ldxdw %r0, [%r1+0]\nadd %r0, 1\nexit");
  for (const std::string& e : engine_names()) {
    if (e.find("_emu") != std::string::npos && e != "arm64_emu") continue;  // Unicorn is slow; one is enough
    sb_code* c = nullptr;
    ASSERT_EQ(sb_program_compile(p, e.c_str(), &c), SB_OK) << error();
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        for (uint64_t i = 0; i < 25; ++i) {
          uint64_t mem = t * 1000 + i, r0 = 0;
          if (sb_code_run(c, &mem, sizeof mem, &r0) != SB_OK || r0 != mem + 1) ++wrong;
        }
      });
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(wrong, 0) << e;
    sb_stats st;
    ASSERT_EQ(sb_code_stats(c, &st), SB_OK);
    EXPECT_EQ(st.run_count, 100u) << e;
  }
}

TEST_F(Capi, CodeOutlivesItsProgram) {
  sb_program* p = asm_program("mov %r0, 7\nexit");
  sb_code* c = nullptr;
  ASSERT_EQ(sb_program_compile(p, "interp", &c), SB_OK);
  sb_program_destroy(p);
  uint64_t r0 = 0;
  ASSERT_EQ(sb_code_run(c, nullptr, 0, &r0), SB_OK);
  EXPECT_EQ(r0, 7u);
}

TEST_F(Capi, MachineCodeAndDisassembly) {
  sb_program* p = asm_program("mov %r0, 7\nexit");
  for (const std::string& e : engine_names()) {
    sb_code* c = nullptr;
    ASSERT_EQ(sb_program_compile(p, e.c_str(), &c), SB_OK) << error();
    size_t size = 0;
    const uint8_t* bytes = sb_code_machine_code(c, &size);
    const char* text = sb_code_disassembly(c);
    ASSERT_NE(text, nullptr) << error();
    if (e == "interp") {
      EXPECT_EQ(bytes, nullptr);
      EXPECT_EQ(size, 0u);
      EXPECT_THAT(text, HasSubstr("mov %r0, 7"));
    } else {
      EXPECT_NE(bytes, nullptr) << e;
      EXPECT_GT(size, 4u) << e;
      EXPECT_THAT(text, HasSubstr("    0: ")) << e;
      EXPECT_THAT(text, HasSubstr("ret")) << e;
    }
    EXPECT_EQ(sb_code_disassembly(c), text);  // computed once
  }
}

// ---------------------------------------------------------------------------
// ELF objects from clang (test/programs).

#define SB_REQUIRE_PROGRAMS() \
  if (!SB_BPF_HAVE_CLANG) GTEST_SKIP() << "no BPF clang found at configure time: test/programs were not built"

TEST_F(Capi, ElfObjectWithItsMapsOnEveryEngine) {
  SB_REQUIRE_PROGRAMS();
  const std::string path = std::string(SB_BPF_PROGRAMS) + "/counters.o";
  sb_program* p = nullptr;
  EXPECT_EQ(sb_vm_load_file(vm, path.c_str(), "nope", nullptr, &p), SB_ERR_BAD_ELF);
  EXPECT_THAT(error(), HasSubstr(path));
  EXPECT_THAT(error(), HasSubstr("nope"));
  // A fresh VM: the failed load may have created the object's maps.
  sb_vm_destroy(vm);
  ASSERT_EQ(sb_vm_create(nullptr, &vm), SB_OK);
  ASSERT_EQ(sb_vm_load_file(vm, path.c_str(), "tc", "count_bytes", &p), SB_OK) << error();
  sb_map* totals = nullptr;
  ASSERT_EQ(sb_vm_find_map(vm, "totals", &totals), SB_OK) << error();
  EXPECT_GE(sb_vm_map_count(vm), 4u);
  for (const std::string& e : engine_names()) {
    std::vector<uint8_t> mem = {5, 6, 7};
    run_on(p, e, mem);
  }
  uint32_t runs_key = 0;  // totals[RUNS]
  int64_t runs = 0;
  ASSERT_EQ(sb_map_lookup(totals, &runs_key, 4, &runs, 8), SB_OK) << error();
  EXPECT_EQ(runs, int64_t(engine_names().size()));
  sb_map* counts = nullptr;
  ASSERT_EQ(sb_vm_find_map(vm, "byte_counts", &counts), SB_OK);
  uint32_t byte = 6;
  uint64_t count = 0;
  ASSERT_EQ(sb_map_lookup(counts, &byte, 4, &count, 8), SB_OK) << error();
  EXPECT_EQ(count, engine_names().size());
}

// bpf_printk output collects in the VM until taken.
TEST_F(Capi, TraceOutput) {
  SB_REQUIRE_PROGRAMS();
  const std::string path = std::string(SB_BPF_PROGRAMS) + "/globals.o";
  sb_program* p = nullptr;
  ASSERT_EQ(sb_vm_load_file(vm, path.c_str(), "xdp", nullptr, &p), SB_OK) << error();
  std::vector<uint8_t> mem(4);
  run_on(p, "interp", mem);
  EXPECT_THAT(sb_vm_take_trace(vm), HasSubstr("call 1 len 4"));
  EXPECT_STREQ(sb_vm_take_trace(vm), "");
}

// BPF_PROG_TEST_RUN through the C API: the XDP example passes IPv4
// on every engine; bad input, a raw program and small buffers are errors.
TEST_F(Capi, TestRun) {
  SB_REQUIRE_PROGRAMS();
  const std::string path = std::string(SB_PROGTYPES_OBJECTS) + "/xdp_eth.o";
  sb_program* p = nullptr;
  ASSERT_EQ(sb_vm_load_file(vm, path.c_str(), nullptr, nullptr, &p), SB_OK) << error();
  std::vector<uint8_t> pkt(16, 0);
  pkt[12] = 0x08;  // ETH_P_IP
  for (const std::string& e : engine_names()) {
    std::vector<uint8_t> out(64), ctx(24);
    sb_test_run t{};
    t.data_in = pkt.data();
    t.data_size_in = pkt.size();
    t.repeat = 3;
    t.data_out = out.data();
    t.data_size_out = out.size();
    t.ctx_out = ctx.data();
    t.ctx_size_out = ctx.size();
    ASSERT_EQ(sb_program_test_run(p, e.c_str(), nullptr, &t), SB_OK) << e << ": " << error();
    EXPECT_EQ(t.retval, 2u) << e;  // XDP_PASS
    EXPECT_EQ(t.data_size_out, 16u);
    EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + 16), pkt);
    EXPECT_EQ(t.ctx_size_out, 24u);
    EXPECT_EQ(ctx[4], 16);  // data_end
  }
  sb_test_run t{};
  t.data_in = pkt.data();
  t.data_size_in = 10;
  EXPECT_EQ(sb_program_test_run(p, "interp", nullptr, &t), SB_ERR_INVALID_ARGUMENT);
  EXPECT_THAT(error(), HasSubstr("data_in: 10 bytes: an XDP frame holds at least an Ethernet header"));
  t.data_size_in = 16;
  EXPECT_EQ(sb_program_test_run(p, "interp", nullptr, &t), SB_OK);  // no buffers: nothing wanted, as the kernel's
  EXPECT_EQ(t.data_size_out, 16u);
  EXPECT_EQ(t.retval, 2u);
  std::vector<uint8_t> small(8);
  t.data_out = small.data();
  t.data_size_out = small.size();
  EXPECT_EQ(sb_program_test_run(p, "interp", nullptr, &t), SB_ERR_INVALID_ARGUMENT);  // no room for the packet
  EXPECT_THAT(error(), HasSubstr("run->data_out holds 8 bytes of the 16 out"));
  EXPECT_EQ(t.data_size_out, 16u);
  EXPECT_EQ(std::vector<uint8_t>(small.begin(), small.end()), std::vector<uint8_t>(pkt.begin(), pkt.begin() + 8));
  t.data_out = nullptr;
  t.data_size_out = 0;
  EXPECT_EQ(sb_program_test_run(p, "interp", "kprobe", &t), SB_ERR_INVALID_ARGUMENT);
  EXPECT_THAT(error(), HasSubstr("kprobe program, which has no test run"));
  EXPECT_EQ(sb_program_test_run(p, "interp", "no_such_type", &t), SB_ERR_INVALID_ARGUMENT);
  EXPECT_THAT(error(), HasSubstr("unknown program type 'no_such_type'"));
  EXPECT_EQ(sb_program_test_run(p, "interp", "raw", &t), SB_ERR_INVALID_ARGUMENT);
  EXPECT_THAT(error(), HasSubstr("raw program, which has no test run (types with one: xdp, tc, socket)"));
  EXPECT_EQ(sb_program_test_run(p, "nope", nullptr, &t), SB_ERR_UNKNOWN_ENGINE);
  EXPECT_EQ(sb_program_test_run(nullptr, "interp", nullptr, &t), SB_ERR_NULL);
  EXPECT_EQ(sb_program_test_run(p, nullptr, nullptr, &t), SB_ERR_NULL);
  EXPECT_EQ(sb_program_test_run(p, "interp", nullptr, nullptr), SB_ERR_NULL);
  // The C++ wrapper.
  springboard::vm cpp;
  springboard::program q = cpp.load_file(path);
  const springboard::program::test_result r = q.test_run("jit", pkt);
  EXPECT_EQ(r.retval, 2u);
  EXPECT_EQ(r.data, pkt);
  EXPECT_EQ(r.ctx.size(), 24u);
}

// A test run's records through the C API: the redirect's target (a device,
// a map's slot), bpf_clone_redirect's packets and the tunnel key.
TEST_F(Capi, TestRunRecordsRedirectsClonesAndTunnelKey) {
  SB_REQUIRE_PROGRAMS();
  const std::string path = std::string(SB_PROGTYPES_OBJECTS) + "/tc_helpers.o";
  sb_program* p = nullptr;
  ASSERT_EQ(sb_vm_load_file(vm, path.c_str(), nullptr, nullptr, &p), SB_OK) << error();
  std::vector<uint8_t> pkt(60, 0);
  pkt[12] = 0x08;
  pkt[14] = 0x45;
  pkt.back() = 2;  // tunnel keys, clone_redirect, then bpf_redirect(1, 0)
  struct Clones {
    std::vector<std::vector<uint8_t>> packets;
    std::vector<uint32_t> ifindexes;
  };
  for (const std::string& e : engine_names()) {
    std::vector<uint8_t> out(256), ctx(256);
    Clones clones;
    sb_test_run t{};
    t.data_in = pkt.data();
    t.data_size_in = pkt.size();
    t.data_out = out.data();
    t.data_size_out = out.size();
    t.ctx_out = ctx.data();
    t.ctx_size_out = ctx.size();
    t.on_clone = [](void* c, uint32_t ifindex, uint64_t, const void* packet, size_t size) {
      auto* bytes = static_cast<const uint8_t*>(packet);
      static_cast<Clones*>(c)->packets.emplace_back(bytes, bytes + size);
      static_cast<Clones*>(c)->ifindexes.push_back(ifindex);
    };
    t.on_clone_ctx = &clones;
    ASSERT_EQ(sb_program_test_run(p, e.c_str(), nullptr, &t), SB_OK) << e << ": " << error();
    EXPECT_EQ(t.retval, 7u) << e;  // TC_ACT_REDIRECT
    EXPECT_EQ(t.redirect, uint32_t(SB_REDIRECT_IFINDEX)) << e;
    EXPECT_EQ(t.redirect_ifindex, 1u);
    EXPECT_EQ(t.redirect_flags, 0u);
    EXPECT_EQ(t.redirect_map, nullptr);
    EXPECT_EQ(t.clone_count, 1u);
    ASSERT_EQ(clones.packets.size(), 1u) << e;
    EXPECT_EQ(clones.packets[0], pkt);
    EXPECT_EQ(clones.ifindexes[0], 1u);
    ASSERT_EQ(t.tunnel_key_size, 44u);
    EXPECT_EQ(t.tunnel_key[0], 5);   // tunnel_id
    EXPECT_EQ(t.tunnel_key[24], 3);  // tunnel_label: the last key set
  }

  // bpf_redirect_map into the embedder's devmap from an XDP program.
  sb_map* devs = nullptr;
  ASSERT_EQ(sb_vm_create_map(vm, "devs", SB_MAP_DEVMAP, 4, 4, 4, &devs), SB_OK) << error();
  const uint32_t slot = 3, ifindex = 1;
  ASSERT_EQ(sb_map_update(devs, &slot, 4, &ifindex, 4, 0), SB_OK) << error();
  sb_map_info info;
  ASSERT_EQ(sb_map_get_info(devs, &info), SB_OK);
  char source[256];
  std::snprintf(source, sizeof source, "lddw %%r1, %#llx\nmov %%r2, 3\nmov %%r3, 0\ncall 51\nexit",
                static_cast<unsigned long long>(info.handle));
  sb_program* x = asm_program(source);
  for (const std::string& e : engine_names()) {
    std::vector<uint8_t> out(256);
    sb_test_run t{};
    t.data_in = pkt.data();
    t.data_size_in = pkt.size();
    t.data_out = out.data();
    t.data_size_out = out.size();
    ASSERT_EQ(sb_program_test_run(x, e.c_str(), "xdp", &t), SB_OK) << e << ": " << error();
    EXPECT_EQ(t.retval, 4u) << e;  // XDP_REDIRECT
    EXPECT_EQ(t.redirect, uint32_t(SB_REDIRECT_MAP)) << e;
    EXPECT_EQ(t.redirect_map, devs);
    EXPECT_EQ(t.redirect_key, 3u);
    EXPECT_EQ(t.clone_count, 0u);
    EXPECT_EQ(t.tunnel_key_size, 0u);
  }

  // The C++ wrapper.
  springboard::vm cpp;
  springboard::program q = cpp.load_file(path);
  const springboard::program::test_result r = q.test_run("interp", pkt);
  EXPECT_EQ(r.retval, 7u);
  EXPECT_EQ(r.redirect, uint32_t(SB_REDIRECT_IFINDEX));
  EXPECT_EQ(r.redirect_ifindex, 1u);
  ASSERT_EQ(r.clones.size(), 1u);
  EXPECT_EQ(r.clones[0].packet, pkt);
  EXPECT_EQ(r.tunnel_key.size(), 44u);
}

TEST(CapiElf, FromMemory) {
  SB_REQUIRE_PROGRAMS();
  std::ifstream in(std::string(SB_BPF_PROGRAMS) + "/counters.o", std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  springboard::vm vm;
  springboard::program p = vm.load_elf(bytes.data(), bytes.size(), "tc", "", "counters.o");
  std::vector<uint8_t> mem = {1, 2};
  EXPECT_EQ(p.compile("interp").run(mem), 2u);  // two fresh keys
  // Loading the object again would create its maps twice.
  try {
    vm.load_elf(bytes.data(), bytes.size(), "tc", "", "counters.o");
    ADD_FAILURE() << "loaded twice";
  } catch (const springboard::error& e) {
    EXPECT_EQ(e.code(), SB_ERR_BAD_ELF);
    EXPECT_THAT(e.what(), HasSubstr("counters.o"));
  }
}

// ---------------------------------------------------------------------------
// The C++ wrapper.

TEST(CapiCpp, ErrorsCarryCodeAndMessage) {
  springboard::vm vm;
  try {
    vm.load_asm("jmp nowhere", "bad.s");
    ADD_FAILURE() << "accepted";
  } catch (const springboard::error& e) {
    EXPECT_EQ(e.code(), SB_ERR_BAD_PROGRAM);
    EXPECT_THAT(e.what(), HasSubstr("bad.s: line 1"));
  }
  springboard::program p = vm.load_asm("mov %r0, 1\nexit");
  try {
    p.compile("vax");
    ADD_FAILURE() << "compiled";
  } catch (const springboard::error& e) {
    EXPECT_EQ(e.code(), SB_ERR_UNKNOWN_ENGINE);
  }
}

TEST(CapiCpp, EveryEngineThroughTheWrapper) {
  springboard::vm vm;
  vm.register_helper(1000, times_two, "times_two");
  springboard::map m = vm.create_map("m", SB_MAP_HASH, 4, 8, 8);
  m.set(uint32_t(3), uint64_t(20));
  EXPECT_EQ(m.value<uint64_t>(uint32_t(3)), 20u);
  EXPECT_FALSE(m.value<uint64_t>(uint32_t(4)).has_value());
  EXPECT_TRUE(m.erase(uint32_t(3)));
  EXPECT_FALSE(m.erase(uint32_t(3)));
  EXPECT_TRUE(vm.find_map("m").has_value());
  EXPECT_FALSE(vm.find_map("n").has_value());
  EXPECT_EQ(vm.maps().size(), 1u);
  springboard::program p = vm.load_asm("mov %r1, 21\ncall 1000\nexit", "twice.s");
  EXPECT_EQ(p.name(), "twice.s");
  for (const std::string& e : springboard::engines()) {
    springboard::code c = p.compile(e);
    EXPECT_EQ(c.run(), 42u) << e;
    EXPECT_EQ(c.engine(), e);
    EXPECT_EQ(c.stats().run_count, 1u);
    EXPECT_FALSE(c.disassembly().empty());
    springboard::code moved = std::move(c);
    EXPECT_EQ(moved.run(), 42u);
  }
  EXPECT_EQ(p.stats().run_count, 2 * springboard::engines().size());
}

// ---------------------------------------------------------------------------
// Attaching to functions of this process.

#if defined(__x86_64__)
template <typename F>
F through_volatile(F f) {  // calls the hooked entry, never a copy the compiler made
  F volatile p = f;
  return p;
}

class CapiAttach : public Capi {
 protected:
  void SetUp() override {
    Capi::SetUp();
    ASSERT_EQ(sb_vm_create_map(vm, "seen", SB_MAP_ARRAY, 4, 8, 8, &seen), SB_OK);
    sb_map_info info;
    ASSERT_EQ(sb_map_get_info(seen, &info), SB_OK);
    handle = info.handle;
  }
  // A program that adds ctx[word] to seen[key] (a helper call: the VM's maps).
  sb_program* adds(int word, int key) {
    char source[320];
    std::snprintf(source, sizeof source,
                  "ldxdw %%r6, [%%r1+%d]\nlddw %%r1, %#llx\nmov %%r2, %%r10\nadd %%r2, -4\nstw [%%r10-4], %d\n"
                  "call 1\njeq %%r0, 0, +1\nlock add [%%r0+0], %%r6\nmov %%r0, 0\nexit",
                  8 * word, static_cast<unsigned long long>(handle), key);
    return asm_program(source);
  }
  uint64_t at(uint32_t key) {
    uint64_t v = 0;
    EXPECT_EQ(sb_map_lookup(seen, &key, 4, &v, 8), SB_OK);
    return v;
  }
  sb_link* attach(sb_program* p, sb_attach_kind kind, const char* symbol, const char* sig, uint64_t cookie = 0) {
    sb_attach_opts o{};
    o.kind = kind;
    o.symbol = symbol;
    o.signature = sig;
    o.cookie = cookie;
    sb_link* link = nullptr;
    EXPECT_EQ(sb_program_attach(p, &o, &link), SB_OK) << error();
    return link;
  }
  sb_map* seen = nullptr;
  uint64_t handle = 0;
};

// fentry sees the arguments, fexit the result, both through helpers that
// reach the VM's map; the link counts its runs; destroyed, it is gone.
TEST_F(CapiAttach, FentryAndFexitBySymbol) {
  sb_link* entry = attach(adds(0, 0), SB_ATTACH_FENTRY, "sb_capi_target", "i64, i64 -> i64");
  sb_link* exit = attach(adds(2, 1), SB_ATTACH_FEXIT, "sb_capi_target", "i64, i64 -> i64");
  ASSERT_TRUE(entry && exit);
  int64_t sum = 0;
  for (int64_t i = 1; i <= 3; ++i) sum += through_volatile(&sb_capi_target)(i, 5);
  EXPECT_EQ(sum, 75);
  EXPECT_EQ(at(0), 6u);   // 1 + 2 + 3
  EXPECT_EQ(at(1), 75u);  // 15 + 25 + 35
  sb_stats st;
  ASSERT_EQ(sb_link_stats(entry, &st), SB_OK);
  EXPECT_EQ(st.run_count, 3u);
  sb_link_destroy(entry);
  sb_link_destroy(exit);
  EXPECT_EQ(through_volatile(&sb_capi_target)(4, 5), 45);
  EXPECT_EQ(at(0), 6u) << "a destroyed link still ran";
}

// fmod_ret: a non-zero r0 is the result and the function is skipped; by
// address; destroying the VM detaches its links.
TEST_F(CapiAttach, FmodRetByAddressAndVmDestroyDetaches) {
  sb_attach_opts o{};
  o.kind = SB_ATTACH_FMOD_RET;
  o.target = reinterpret_cast<const void*>(&sb_capi_other);
  o.signature = "i64 -> i64";
  sb_link* link = nullptr;
  ASSERT_EQ(sb_program_attach(asm_program("mov %r0, 77\nexit"), &o, &link), SB_OK) << error();
  EXPECT_EQ(through_volatile(&sb_capi_other)(1), 77);
  sb_vm_destroy(vm);
  vm = nullptr;
  EXPECT_EQ(through_volatile(&sb_capi_other)(1), 1001);
  ASSERT_EQ(sb_vm_create(nullptr, &vm), SB_OK);
}

// Threads keep calling while links come and go: every call returns the
// function's value, and each link counts exactly the calls it saw.
TEST_F(CapiAttach, LinksMadeAndDestroyedWhileThreadsCall) {
  sb_program* p = adds(0, 2);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> wrong{0};
  std::vector<std::thread> threads;
  for (int n = 0; n < 3; ++n)
    threads.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed))
        if (through_volatile(&sb_capi_target)(1, 2) != 12) wrong.fetch_add(1);
    });
  uint64_t counted = 0;
  for (int cycle = 0; cycle < 50; ++cycle) {
    sb_link* link = attach(p, SB_ATTACH_FENTRY, "sb_capi_target", "i64, i64 -> i64");
    ASSERT_NE(link, nullptr);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    sb_stats st;
    ASSERT_EQ(sb_link_stats(link, &st), SB_OK);
    sb_link_destroy(link);
    counted += st.run_count;
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GE(at(2), counted) << "runs after the last stats read are counted in the map only";
  EXPECT_GT(counted, 0u);
}

// The C++ wrapper: a link object detaches when it goes out of scope.
TEST(CppAttach, LinkDetachesAtScopeEnd) {
  springboard::vm vm;
  springboard::program p = vm.load_asm("mov %r0, 5\nexit", "five.s");
  {
    springboard::link l = p.attach(SB_ATTACH_FMOD_RET, "sb_capi_other", "i64 -> i64");
    EXPECT_EQ(through_volatile(&sb_capi_other)(1), 5);
    EXPECT_EQ(l.stats().run_count, 1u);
  }
  EXPECT_EQ(through_volatile(&sb_capi_other)(1), 1001);
  try {
    p.attach(SB_ATTACH_FENTRY, "sb_capi_other", "i64 ->");
    ADD_FAILURE() << "an empty return type was accepted";
  } catch (const springboard::error& e) {
    EXPECT_THAT(e.what(), HasSubstr("signature.ret"));
  }
}

// A uprobe sees the arguments in pt_regs (di at 112), a uretprobe the
// result (ax at 80); no signature is needed; the cookie is the link's.
TEST_F(CapiAttach, UprobeAndUretprobeBySymbol) {
  sb_link* entry = attach(adds(112 / 8, 3), SB_ATTACH_UPROBE, "sb_capi_target", nullptr);
  sb_link* exit = attach(adds(80 / 8, 4), SB_ATTACH_URETPROBE, "sb_capi_target", nullptr);
  ASSERT_TRUE(entry && exit);
  int64_t sum = 0;
  for (int64_t i = 1; i <= 3; ++i) sum += through_volatile(&sb_capi_target)(i, 5);
  EXPECT_EQ(sum, 75);
  EXPECT_EQ(at(3), 6u);
  EXPECT_EQ(at(4), 75u);
  sb_stats st;
  ASSERT_EQ(sb_link_stats(exit, &st), SB_OK);
  EXPECT_EQ(st.run_count, 3u);
  sb_link_destroy(entry);
  sb_link_destroy(exit);
  EXPECT_EQ(through_volatile(&sb_capi_target)(4, 5), 45);
  EXPECT_EQ(at(3), 6u) << "a destroyed link still ran";
  // A probe and a trampoline cannot share a function; a uretprobe needs its entry.
  sb_link* fentry = attach(adds(0, 5), SB_ATTACH_FENTRY, "sb_capi_target", "i64, i64 -> i64");
  sb_attach_opts o{};
  o.kind = SB_ATTACH_UPROBE;
  o.symbol = "sb_capi_target";
  sb_link* link = nullptr;
  EXPECT_EQ(sb_program_attach(adds(0, 5), &o, &link), SB_ERR_INVALID_ARGUMENT);
  EXPECT_THAT(error(), HasSubstr("already has a trampoline"));
  sb_link_destroy(fentry);
  o.kind = SB_ATTACH_URETPROBE;
  o.offset = 4;
  EXPECT_EQ(sb_program_attach(adds(0, 5), &o, &link), SB_ERR_INVALID_ARGUMENT);
  EXPECT_THAT(error(), HasSubstr("a uretprobe attaches at a function's entry"));
  o.symbol = nullptr;  // an address inside the function, by its symbol
  o.offset = 0;
  o.target = reinterpret_cast<const uint8_t*>(&sb_capi_target) + 4;
  EXPECT_EQ(sb_program_attach(adds(0, 5), &o, &link), SB_ERR_INVALID_ARGUMENT);
  EXPECT_THAT(error(), HasSubstr("+0x4 into sb_capi_target: a uretprobe attaches at a function's entry"));
  EXPECT_EQ(through_volatile(&sb_capi_target)(4, 5), 45);
}

TEST_F(Capi, ObjectsLoadAndAttachEveryProgram) {
  size_t n = 7;
  sb_program* programs[16];
  sb_link* links[4];
  EXPECT_EQ(sb_vm_load_object(nullptr, "x.o", programs, 16, &n), SB_ERR_NULL);
  EXPECT_EQ(sb_vm_load_object(vm, nullptr, programs, 16, &n), SB_ERR_NULL);
  EXPECT_EQ(sb_vm_load_object(vm, "x.o", programs, 16, nullptr), SB_ERR_NULL);
  EXPECT_EQ(sb_vm_load_object(vm, "x.o", nullptr, 16, &n), SB_ERR_NULL);
  EXPECT_EQ(sb_vm_attach_object(nullptr, "x.o", links, 4, &n), SB_ERR_NULL);
  EXPECT_EQ(sb_vm_attach_object(vm, nullptr, links, 4, &n), SB_ERR_NULL);
  EXPECT_EQ(sb_vm_attach_object(vm, "x.o", links, 4, nullptr), SB_ERR_NULL);
  EXPECT_EQ(sb_vm_attach_object(vm, "/nonexistent/x.o", links, 4, &n), SB_ERR_IO);
  EXPECT_THAT(error(), HasSubstr("/nonexistent/x.o"));
#if SB_BPF_HAVE_CLANG
  const std::string path = std::string(SB_BPF_PROGRAMS) + "/multi.o";
  ASSERT_EQ(sb_vm_load_object(vm, path.c_str(), programs, 0, &n), SB_ERR_INVALID_ARGUMENT);
  ASSERT_GT(n, 1u) << "too small a buffer still says how many";
  const size_t count = n;
  ASSERT_EQ(sb_vm_load_object(vm, path.c_str(), programs, 16, &n), SB_OK) << error();
  EXPECT_EQ(n, count);
  // No section of it names a probe target: nothing attached, no error.
  sb_vm* other = nullptr;
  ASSERT_EQ(sb_vm_create(nullptr, &other), SB_OK);
  EXPECT_EQ(sb_vm_attach_object(other, path.c_str(), links, 4, &n), SB_OK) << sb_vm_last_error(other);
  EXPECT_EQ(n, 0u);
  sb_vm_destroy(other);
#endif
}
#endif

#if defined(__x86_64__)
TEST(CppAttach, UprobeLinksDetachAtScopeEnd) {
  springboard::vm vm;
  springboard::program p = vm.load_asm("mov %r0, 0\nexit", "empty.s");
  {
    springboard::link entry = p.attach_uprobe("sb_capi_other");
    springboard::link ret = p.attach_uretprobe("sb_capi_other");
    EXPECT_EQ(through_volatile(&sb_capi_other)(1), 1001);
    EXPECT_EQ(entry.stats().run_count, 1u);
    EXPECT_EQ(ret.stats().run_count, 1u);
    EXPECT_EQ(entry.name(), "empty.s: uprobe sb_capi_other");
    EXPECT_EQ(ret.name(), "empty.s: uretprobe sb_capi_other");
  }
  EXPECT_EQ(through_volatile(&sb_capi_other)(1), 1001);
  try {
    p.attach_uprobe("no_such_function_anywhere");
    ADD_FAILURE() << "a missing symbol was accepted";
  } catch (const springboard::error& e) {
    EXPECT_EQ(e.code(), SB_ERR_NOT_FOUND);
  }
#if SB_BPF_HAVE_CLANG
  EXPECT_TRUE(vm.attach_object(std::string(SB_BPF_PROGRAMS) + "/multi.o").empty());
  springboard::vm other;
  EXPECT_GT(other.load_object(std::string(SB_BPF_PROGRAMS) + "/multi.o").size(), 1u);
#endif
}

// sb_map_for_each: an array by index, a hash's elements, a per-CPU array's
// copy per CPU; a ring buffer has no elements.
TEST(CppMaps, EntriesAsUserSpaceReadsThem) {
  springboard::vm vm;
  springboard::map array = vm.create_map("a", SB_MAP_ARRAY, 4, 8, 3);
  array.set(uint32_t(1), uint64_t(42));
  const auto a = array.entries();
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[1].key, (std::vector<uint8_t>{1, 0, 0, 0}));
  ASSERT_EQ(a[1].values.size(), 1u);
  EXPECT_EQ(a[1].values[0], (std::vector<uint8_t>{42, 0, 0, 0, 0, 0, 0, 0}));
  springboard::map hash = vm.create_map("h", SB_MAP_HASH, 4, 4, 8);
  hash.set(uint32_t(7), uint32_t(70));
  hash.set(uint32_t(8), uint32_t(80));
  EXPECT_EQ(hash.entries().size(), 2u);
  springboard::map percpu = vm.create_map("p", SB_MAP_PERCPU_ARRAY, 4, 8, 1);
  const auto p = percpu.entries();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_GE(p[0].values.size(), 1u);  // one per possible CPU
  springboard::map ring = vm.create_map("r", SB_MAP_RINGBUF, 0, 0, 4096);
  EXPECT_TRUE(ring.entries().empty());
  EXPECT_EQ(sb_map_for_each(array.get(), nullptr, nullptr, nullptr), SB_ERR_NULL);
  EXPECT_EQ(sb_map_for_each(nullptr, nullptr, nullptr, nullptr), SB_ERR_NULL);
}

TEST_F(CapiAttach, ErrorsNameTheSymbolOrField) {
  sb_program* p = asm_program("mov %r0, 0\nexit");
  sb_attach_opts o{};
  sb_link* link = reinterpret_cast<sb_link*>(1);
  EXPECT_EQ(sb_program_attach(p, nullptr, &link), SB_ERR_NULL);
  EXPECT_EQ(link, nullptr);
  o.kind = SB_ATTACH_FENTRY;
  o.signature = "i64";
  EXPECT_EQ(sb_program_attach(p, &o, &link), SB_ERR_NULL);
  EXPECT_THAT(error(), HasSubstr("opts->target and opts->symbol are both NULL"));
  o.symbol = "no_such_function_anywhere";
  EXPECT_EQ(sb_program_attach(p, &o, &link), SB_ERR_NOT_FOUND);
  EXPECT_THAT(error(), HasSubstr("symbol 'no_such_function_anywhere'"));
  o.symbol = "libc.so.6:no_such_function_anywhere";
  EXPECT_EQ(sb_program_attach(p, &o, &link), SB_ERR_NOT_FOUND);
  o.symbol = "sb_capi_other";
  o.signature = "i64, q32 -> i64";
  EXPECT_EQ(sb_program_attach(p, &o, &link), SB_ERR_INVALID_ARGUMENT);
  EXPECT_THAT(error(), HasSubstr("signature.args[1]: unknown type 'q32'"));
  o.signature = "i64 -> {i64, i64}";
  EXPECT_EQ(sb_program_attach(p, &o, &link), SB_ERR_INVALID_ARGUMENT);
  EXPECT_THAT(error(), HasSubstr("struct return values are not supported"));
  o.signature = "i64 -> i64";
  o.kind = sb_attach_kind(9);
  EXPECT_EQ(sb_program_attach(p, &o, &link), SB_ERR_INVALID_ARGUMENT);
  EXPECT_THAT(error(), HasSubstr("kind 9"));
  o.kind = SB_ATTACH_FENTRY;
  EXPECT_EQ(sb_program_attach(asm_program("ldxdw %r0, [%r10-8]\nexit"), &o, &link), SB_ERR_COMPILE);
  EXPECT_EQ(link, nullptr);
  EXPECT_EQ(through_volatile(&sb_capi_other)(1), 1001) << "a failed attach left the function hooked";
  EXPECT_EQ(sb_link_stats(nullptr, nullptr), SB_ERR_NULL);
  sb_link_destroy(nullptr);
  // Addresses that are not code: refused before a byte is read or written.
  static const char kData[64] = "not code";
  for (const void* bad : {static_cast<const void*>(kData), reinterpret_cast<const void*>(0x1000),
                          static_cast<const void*>(&o)}) {
    o.symbol = nullptr;
    o.target = bad;
    EXPECT_EQ(sb_program_attach(p, &o, &link), SB_ERR_UNAVAILABLE) << bad;
    EXPECT_THAT(error(), HasSubstr("not executable code of this process"));
  }
  EXPECT_STREQ(kData, "not code");
}
#endif

}  // namespace
