// Entry hooks of real functions of every shape (test/hook_shapes/shapes.c)
// as gcc and clang build them at -O2 and -Os, with -fcf-protection and with
// frame pointers, linked into this program and loaded from shared
// libraries: each is either hooked, and then its programs see the right
// arguments and result exactly once per call (never once per loop
// iteration) and detaching restores every byte of the function, or it is
// refused with an error that names the reason; it never crashes.
#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "frontend/assembler.h"
#include "ir/diag.h"
#include "runtime/hook/symbols.h"
#include "runtime/hook/trampoline.h"
#include "test/hook_shapes/shapes.h"

#define SB_VARIANT(tag, text) extern "C" const struct sb_shape_table sb_exe_##tag##_table;
#include "variants.h"
#undef SB_VARIANT
extern "C" const struct sb_shape_table sb_ref_table;  // -O0 by the project's compiler: the expected values

namespace sb::test {
namespace {

using ir::Type;

struct Build {
  std::string name;
  const sb_shape_table* table;
};

std::vector<Build> builds() {
  std::vector<Build> v;
#define SB_VARIANT(tag, text)                                                                            \
  v.push_back({std::string(text) + ", executable", &sb_exe_##tag##_table});                              \
  if (void* so = dlopen(SB_SHAPES_DIR "/libsb_shapes_" #tag ".so", RTLD_NOW | RTLD_LOCAL))               \
    v.push_back({std::string(text) + ", shared library",                                                 \
                 static_cast<const sb_shape_table*>(dlsym(so, "sb_so_" #tag "_table"))});                \
  else                                                                                                   \
    ADD_FAILURE() << dlerror();
#include "variants.h"
#undef SB_VARIANT
  return v;
}

ir::NativeValue T(Type t, uint8_t size) { return {t, size}; }
const ir::NativeValue kI32 = T(Type::I32, 4), kU32 = T(Type::U32, 4), kI64 = T(Type::I64, 8),
                      kPtr = T(Type::Ptr, 8), kF64 = T(Type::F64, 8), kF32 = T(Type::F32, 4);

struct Seen {
  uint64_t word[16] = {};
};
std::string addr(const void* p) { return fmt::format("{:#x}", reinterpret_cast<uint64_t>(p)); }

// fentry: counts its runs and copies ctx[0..n) to in; fexit: ctx[n] to out.
bpf::Program fentry_program(Seen* count, Seen* in, int n) {
  std::string src = "lddw %r2, " + addr(count) + "\nmov %r3, 1\nlock add [%r2+0], %r3\nlddw %r3, " + addr(in) + "\n";
  for (int k = 0; k < n; ++k) src += fmt::format("ldxdw %r2, [%r1+{}]\nstxdw [%r3+{}], %r2\n", 8 * k, 8 * k);
  return bpf::assemble(src + "mov %r0, 0\nexit", "fentry");
}
bpf::Program fexit_program(Seen* out, int n) {
  return bpf::assemble(fmt::format("lddw %r3, {}\nldxdw %r2, [%r1+{}]\nstxdw [%r3+0], %r2\nmov %r0, 0\nexit",
                                   addr(out), 8 * n),
                       "fexit");
}

uint64_t bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, 8);
  return b;
}
uint64_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// What one shape's calls must show: the words fentry saw in the last call,
// the word fexit saw, the calls into the entry.
struct Calls {
  std::vector<uint64_t> args;  // fentry's view of the last call
  uint64_t result = 0;         // fexit's view of the last call
  uint64_t entries = 0;        // calls of the entry (each recursion level is one)
};

struct Shape {
  const char* name;
  void* (*address)(const sb_shape_table&);
  std::vector<ir::NativeValue> args;
  ir::NativeValue ret;
  // Calls the function of `t`, checks each result against `ref`'s, returns what the programs must have seen.
  std::function<Calls(const sb_shape_table& t, const sb_shape_table& ref)> run;
  bool must_hook;  // no loop near the entry: every build must be hookable
};

template <typename F>
void* fn(F f) {
  return reinterpret_cast<void*>(f);
}

std::vector<Shape> shapes() {
  std::vector<Shape> s;
  s.push_back({"tiny", [](const sb_shape_table& t) { return fn(t.tiny); }, {kI32}, kI32,
               [](const sb_shape_table& t, const sb_shape_table& r) {
                 EXPECT_EQ(t.tiny(41), r.tiny(41));
                 return Calls{{41}, uint64_t(r.tiny(41)), 1};
               },
               false});
  s.push_back({"zero", [](const sb_shape_table& t) { return fn(t.zero); }, {}, kI32,
               [](const sb_shape_table& t, const sb_shape_table& r) {
                 EXPECT_EQ(t.zero(), r.zero());
                 return Calls{{}, 0, 1};
               },
               false});
  s.push_back({"empty", [](const sb_shape_table& t) { return fn(t.empty); }, {}, T(Type::Void, 0),
               [](const sb_shape_table& t, const sb_shape_table&) {
                 t.empty();
                 t.empty();
                 return Calls{{}, 0, 2};
               },
               false});
  s.push_back({"rip_first", [](const sb_shape_table& t) { return fn(t.rip_first); }, {kI32}, kI32,
               [](const sb_shape_table& t, const sb_shape_table& r) {
                 EXPECT_EQ(t.rip_first(4), r.rip_first(4));
                 EXPECT_EQ(t.rip_first(-6), r.rip_first(-6));
                 return Calls{{uint64_t(int64_t(-6))}, uint64_t(int64_t(r.rip_first(-6))), 2};
               },
               true});
  s.push_back({"early_branch", [](const sb_shape_table& t) { return fn(t.early_branch); }, {kPtr, kI64}, kI64,
               [](const sb_shape_table& t, const sb_shape_table& r) {
                 static const long x = 6;
                 EXPECT_EQ(t.early_branch(nullptr, 3), -1);
                 EXPECT_EQ(t.early_branch(&x, 3), r.early_branch(&x, 3));
                 return Calls{{reinterpret_cast<uint64_t>(&x), 3}, uint64_t(r.early_branch(&x, 3)), 2};
               },
               true});
  s.push_back({"jump_table", [](const sb_shape_table& t) { return fn(t.jump_table); }, {kU32, kI64, kI64}, kI64,
               [](const sb_shape_table& t, const sb_shape_table& r) {
                 for (unsigned op = 0; op <= 11; ++op) EXPECT_EQ(t.jump_table(op, 37, 5), r.jump_table(op, 37, 5)) << op;
                 return Calls{{11, 37, 5}, uint64_t(r.jump_table(11, 37, 5)), 12};
               },
               true});
  s.push_back({"spin", [](const sb_shape_table& t) { return fn(t.spin); }, {kPtr}, kI32,
               [](const sb_shape_table& t, const sb_shape_table&) {
                 // The loop spins (thousands of iterations) until another thread writes.
                 volatile int word = 0;
                 std::thread writer([&] {
                   std::this_thread::sleep_for(std::chrono::milliseconds(5));
                   word = 9;
                 });
                 const int v = t.spin(&word);
                 writer.join();
                 EXPECT_EQ(v, 9);
                 return Calls{{reinterpret_cast<uint64_t>(&word)}, 9, 1};
               },
               false});
  s.push_back({"count_down", [](const sb_shape_table& t) { return fn(t.count_down); }, {kU32, kU32}, kU32,
               [](const sb_shape_table& t, const sb_shape_table& r) {
                 EXPECT_EQ(t.count_down(1000, 1), r.count_down(1000, 1));
                 return Calls{{1000, 1}, r.count_down(1000, 1), 1};
               },
               false});
  s.push_back({"sumto", [](const sb_shape_table& t) { return fn(t.sumto); }, {kPtr, kI32}, kI32,
               [](const sb_shape_table& t, const sb_shape_table& r) {
                 static int a[100];
                 for (int i = 0; i < 100; ++i) a[i] = i * 3 - 7;
                 EXPECT_EQ(t.sumto(a, 100), r.sumto(a, 100));
                 EXPECT_EQ(t.sumto(a, 0), 0);
                 return Calls{{reinterpret_cast<uint64_t>(a), 0}, 0, 2};
               },
               false});
  s.push_back({"long_loop", [](const sb_shape_table& t) { return fn(t.long_loop); }, {kU32, kU32}, kU32,
               [](const sb_shape_table& t, const sb_shape_table& r) {
                 EXPECT_EQ(t.long_loop(500, 7), r.long_loop(500, 7));
                 return Calls{{500, 7}, r.long_loop(500, 7), 1};
               },
               false});
  s.push_back({"recurse", [](const sb_shape_table& t) { return fn(t.recurse); }, {kI32}, kI32,
               [](const sb_shape_table& t, const sb_shape_table& r) {
                 *t.self = t.recurse;
                 *r.self = r.recurse;
                 EXPECT_EQ(t.recurse(5), r.recurse(5));
                 // The last fentry is the innermost level, the last fexit the outermost.
                 return Calls{{0}, uint64_t(r.recurse(5)), 6};
               },
               true});
  s.push_back({"many", [](const sb_shape_table& t) { return fn(t.many); },
               {kI64, kI32, T(Type::I16, 2), T(Type::I8, 1), kI64, kI64, kI64, kU32, kI64, kI64, kI64, kI64}, kI64,
               [](const sb_shape_table& t, const sb_shape_table& r) {
                 const long want = r.many(-1, 2, -3, 4, 5, -6, 7, 4000000000u, 9, -10, 11, 1L << 40);
                 EXPECT_EQ(t.many(-1, 2, -3, 4, 5, -6, 7, 4000000000u, 9, -10, 11, 1L << 40), want);
                 return Calls{{uint64_t(-1), 2, uint64_t(-3), 4, 5, uint64_t(-6), 7, 4000000000u, 9, uint64_t(-10), 11,
                               1ull << 40},
                              uint64_t(want),
                              1};
               },
               true});
  s.push_back({"floats", [](const sb_shape_table& t) { return fn(t.floats); }, {kF64, kF32, kF64, kI32}, kF64,
               [](const sb_shape_table& t, const sb_shape_table& r) {
                 const double want = r.floats(1.5, 2.25f, 3.0, 4);
                 EXPECT_EQ(t.floats(1.5, 2.25f, 3.0, 4), want);
                 return Calls{{bits(1.5), bits(2.25f), bits(3.0), 4}, bits(want), 1};
               },
               true});
  s.push_back({"pair", [](const sb_shape_table& t) { return fn(t.pair); }, {T(Type::Struct, 16), kI64}, kI64,
               [](const sb_shape_table& t, const sb_shape_table& r) {
                 EXPECT_EQ(t.pair({10, -3}, 4), r.pair({10, -3}, 4));
                 return Calls{{10, uint64_t(-3), 4}, uint64_t(r.pair({10, -3}, 4)), 1};
               },
               true});
  return s;
}

// Why a hook may be refused; anything else is a failure.
bool known_refusal(const std::string& m) {
  return m.find("too short to hook") != std::string::npos || m.find("the branch at 0x") != std::string::npos ||
         m.find("of the jump table at 0x") != std::string::npos;
}

// The function's bytes and the padding after it, up to the next symbol.
std::vector<uint8_t> extent_bytes(void* f) {
  std::optional<rt::SymbolIndex> index = rt::SymbolIndex::of(f);
  const uint64_t a = reinterpret_cast<uint64_t>(f);
  std::optional<rt::FunctionSymbol> sym = index ? index->function_at(a) : std::nullopt;
  EXPECT_TRUE(sym) << "no symbol for " << f;
  const size_t n = sym ? size_t(std::max(sym->size, index->next_symbol(a) - a)) : 16;
  const auto* p = static_cast<const uint8_t*>(f);
  return {p, p + n};
}

// For a function shorter than the 5-byte entry jump: the bytes from its
// start to the next symbol (the compilers fill the gap with nops or int3);
// nullopt for longer functions.
std::optional<uint64_t> short_function_room(void* f) {
  std::optional<rt::SymbolIndex> index = rt::SymbolIndex::of(f);
  const uint64_t a = reinterpret_cast<uint64_t>(f);
  std::optional<rt::FunctionSymbol> sym = index ? index->function_at(a) : std::nullopt;
  if (!sym || sym->size >= 5) return std::nullopt;
  return index->next_symbol(a) - a;
}

TEST(HookShapes, EveryShapeOfEveryBuildIsHookedCorrectlyOrRefused) {
  const rt::HelperTable helpers;
  std::string summary;
  size_t hooked = 0, refused = 0, short_hooked = 0, short_refused = 0;
  for (const Build& b : builds()) {
    summary += b.name + ":";
    for (const Shape& shape : shapes()) {
      SCOPED_TRACE(b.name + ": " + shape.name);
      void* f = shape.address(*b.table);
      const std::vector<uint8_t> before = extent_bytes(f);
      ir::Signature sig;
      sig.args = shape.args;
      sig.ret = shape.ret;
      rt::TrampolineTable table;
      rt::Trampoline& t = table.get(f, sig, {}, shape.name);
      Seen count, in, out;
      int words = 0;
      for (const ir::NativeValue& a : shape.args) words += int(a.words());
      try {
        t.link(tramp::Kind::Fentry, fentry_program(&count, &in, words), 0, helpers);
      } catch (const Error& e) {
        // A function shorter than the jump is refused only without the room for it.
        if (std::optional<uint64_t> room = short_function_room(f)) {
          EXPECT_LT(*room, 5u) << e.what();
          ++short_refused;
        }
        EXPECT_TRUE(known_refusal(e.message())) << e.what();
        EXPECT_FALSE(shape.must_hook) << e.what();
        EXPECT_EQ(extent_bytes(f), before) << "a refused hook changed the function";
        shape.run(*b.table, sb_ref_table);  // still works
        summary += fmt::format(" {} refused ({})", shape.name, e.message().substr(0, e.message().find(' ', 20)));
        ++refused;
        table.put(f);
        continue;
      }
      if (std::optional<uint64_t> room = short_function_room(f)) {
        EXPECT_GE(*room, 5u) << "hooked over what follows a short function";
        ++short_hooked;
      }
      t.link(tramp::Kind::Fexit, fexit_program(&out, words), 0, helpers);
      const Calls want = shape.run(*b.table, sb_ref_table);
      EXPECT_EQ(count.word[0], want.entries) << "fentry runs";
      for (size_t k = 0; k < want.args.size(); ++k) {
        const uint64_t mask = shape.args.size() == want.args.size() && shape.args[k].size < 8 && shape.args[k].is_fp()
                                  ? (uint64_t(1) << (8 * shape.args[k].size)) - 1
                                  : ~uint64_t(0);
        EXPECT_EQ(in.word[k] & mask, want.args[k]) << "argument word " << k;
      }
      const uint64_t rmask = shape.ret.size < 8 ? (uint64_t(1) << (8 * shape.ret.size)) - 1 : ~uint64_t(0);
      EXPECT_EQ(out.word[0] & rmask, want.result & rmask) << "the result fexit saw";
      table.put(f);
      EXPECT_EQ(extent_bytes(f), before) << "detaching left the function changed";
      shape.run(*b.table, sb_ref_table);
      summary += fmt::format(" {} ok", shape.name);
      ++hooked;
    }
    summary += "\n";
  }
  std::printf("%s%zu hooked, %zu refused; of the functions shorter than the jump, %zu hooked over the padding "
              "after them, %zu refused\n",
              summary.c_str(), hooked, refused, short_hooked, short_refused);
  EXPECT_GT(short_hooked, 0u) << "no short function was hooked over its padding";
}

}  // namespace
}  // namespace sb::test

namespace sb::test {
namespace {

// Code without a symbol (a copy in anonymous memory): the branches are
// found by following the control flow from the entry.
TEST(HookShapes, CodeWithoutASymbolIsSearchedByItsControlFlow) {
  const rt::HelperTable helpers;
  for (const Build& b : builds()) {
    SCOPED_TRACE(b.name);
    const std::vector<uint8_t> code = extent_bytes(fn(b.table->long_loop));  // no rip-relative operands
    rt::ExecMemory copy(code, fn(b.table->long_loop));
    void* f = const_cast<uint8_t*>(copy.data());
    ASSERT_FALSE(rt::SymbolIndex::of(f));
    auto call = reinterpret_cast<unsigned (*)(unsigned, unsigned)>(f);
    ir::Signature sig;
    sig.args = {kU32, kU32};
    sig.ret = kU32;
    rt::TrampolineTable table;
    rt::Trampoline& t = table.get(f, sig);
    Seen count, in;
    try {
      t.link(tramp::Kind::Fentry, fentry_program(&count, &in, 2), 0, helpers);
    } catch (const Error& e) {
      ADD_FAILURE() << e.what();
      continue;
    }
    EXPECT_EQ(call(300, 5), sb_ref_table.long_loop(300, 5));
    EXPECT_EQ(count.word[0], 1u);
    table.put(f);
    EXPECT_EQ(std::vector<uint8_t>(copy.data(), copy.data() + code.size()), code);
  }
}

}  // namespace
}  // namespace sb::test
