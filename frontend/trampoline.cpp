// Trampoline descriptions -> IR. The frame and call logic of every
// trampoline lives here, once; backends only spill native arguments and
// marshal CallSig (backends/<arch>/abi.cpp).
#include "frontend/trampoline.h"

#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backends/native_abi.h"
#include "frontend/assembler.h"
#include "frontend/decoder.h"
#include "frontend/progtypes/program_type.h"
#include "ir/diag.h"

namespace sb::tramp {

using nlohmann::json;

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Fentry: return "fentry";
    case Kind::FmodRet: return "fmod_ret";
    case Kind::Fexit: return "fexit";
    case Kind::Uprobe: return "uprobe";
    case Kind::Uretprobe: return "uretprobe";
  }
  return "?";
}

std::vector<size_t> Description::of_kind(Kind k) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < programs.size(); ++i)
    if (programs[i].kind == k) out.push_back(i);
  return out;
}

namespace {

// Walks the JSON document keeping the path of the current field, so every
// error names it: "desc.json: field programs[2].kind: ...".
class Parser {
 public:
  Parser(const std::string& file, std::string base_dir) : file_(file), base_(std::move(base_dir)) {}

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw Error(fmt::format("{}: field {}", file_, path), what);
  }

  const json& member(const json& obj, const std::string& path, const char* key, bool required) const {
    static const json kNull;
    if (!obj.is_object()) fail(path, "expected an object");
    auto it = obj.find(key);
    if (it == obj.end()) {
      if (required) fail(join(path, key), "is required");
      return kNull;
    }
    return *it;
  }
  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  void only_keys(const json& obj, const std::string& path, std::initializer_list<const char*> keys) const {
    if (!obj.is_object()) fail(path.empty() ? "(top level)" : path, "expected an object");
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      bool known = false;
      for (const char* k : keys) known |= it.key() == k;
      if (!known) fail(join(path, it.key()), "unknown field");
    }
  }
  bool flag(const json& flags, const std::string& path, const char* key, bool def) const {
    const json& v = member(flags, path, key, false);
    if (v.is_null()) return def;
    if (!v.is_boolean()) fail(join(path, key), "expected true or false");
    return v.get<bool>();
  }

  ir::NativeValue scalar(const json& v, const std::string& path, bool allow_void) const {
    if (!v.is_string()) fail(path, "expected a type name");
    const std::string name = v.get<std::string>();
    static constexpr struct { const char* name; ir::Type type; uint8_t size; } kScalars[] = {
#define SB_TYPE_ROW(n, text, size) {text, ir::Type::n, size},
        SB_IR_TYPES(SB_TYPE_ROW)
#undef SB_TYPE_ROW
    };
    for (const auto& s : kScalars)
      if (name == s.name && s.type != ir::Type::Struct && (allow_void || s.type != ir::Type::Void))
        return {s.type, s.size};
    fail(path, fmt::format("unknown type '{}' (i8 u8 i16 u16 i32 u32 i64 u64 ptr f32 f64{})", name,
                           allow_void ? " void" : ""));
  }

  // {"struct": [field types]}: natural C layout, integer fields, <= 16 bytes.
  ir::NativeValue value(const json& v, const std::string& path, bool allow_void) const {
    if (!v.is_object()) return scalar(v, path, allow_void);
    only_keys(v, path, {"struct"});
    const json& fields = member(v, path, "struct", true);
    const std::string fpath = join(path, "struct");
    if (!fields.is_array() || fields.empty()) fail(fpath, "expected a non-empty list of field types");
    uint32_t size = 0, align = 1;
    for (size_t f = 0; f < fields.size(); ++f) {
      const std::string p = fmt::format("{}[{}]", fpath, f);
      ir::NativeValue field = scalar(fields[f], p, false);
      if (field.is_fp())
        fail(p, "floating-point struct fields are not supported (their registers differ per ABI)");
      size = (size + field.size - 1) / field.size * field.size + field.size;
      align = std::max<uint32_t>(align, field.size);
    }
    size = (size + align - 1) / align * align;
    if (size > 16) fail(fpath, fmt::format("struct of {} bytes; at most 16 are passed by value", size));
    return {ir::Type::Struct, uint8_t(size)};
  }

  bpf::Program program(const json& p, const std::string& path) const {
    const json& file = member(p, path, "file", false);
    const json& text = member(p, path, "asm", false);
    if (file.is_null() == text.is_null()) fail(path, "give exactly one of \"file\" and \"asm\"");
    if (!text.is_null()) {
      if (!text.is_string()) fail(join(path, "asm"), "expected a string");
      return bpf::assemble(text.get<std::string>(), fmt::format("{}: {}", file_, join(path, "asm")));
    }
    if (!file.is_string()) fail(join(path, "file"), "expected a path");
    std::filesystem::path fpath = file.get<std::string>();
    if (fpath.is_relative()) fpath = std::filesystem::path(base_) / fpath;
    const std::string name = fpath.string();
    if (fpath.extension() == ".s" || fpath.extension() == ".asm") {
      std::ifstream in(fpath);
      if (!in) fail(join(path, "file"), "cannot open " + name);
      return bpf::assemble(std::string(std::istreambuf_iterator<char>(in), {}), name);
    }
    return bpf::read_program_file(name);
  }

  Description parse(std::string_view text) const {
    json doc;
    try {
      doc = json::parse(text);
    } catch (const json::parse_error& e) {
      throw Error(file_, fmt::format("invalid JSON at byte {}: {}", e.byte, e.what()));
    } catch (const json::exception& e) {  // e.g. a number too large for a double
      throw Error(file_, fmt::format("invalid JSON: {}", e.what()));
    }
    Description d;
    d.file = file_;
    if (!doc.is_object()) fail("(top level)", "expected an object");
    only_keys(doc, "", {"arch", "target", "flags", "programs"});
    const json& arch = member(doc, "", "arch", false);
    if (!arch.is_null()) {
      if (!arch.is_string()) fail("arch", "expected x86-64, arm64 or riscv64");
      d.arch = arch.get<std::string>();
    }
    const json& target = member(doc, "", "target", true);
    only_keys(target, "target", {"name", "args", "ret"});
    const json& name = member(target, "target", "name", false);
    if (!name.is_null() && !name.is_string()) fail("target.name", "expected a string");
    d.target = name.is_string() ? name.get<std::string>() : "target";
    const json& args = member(target, "target", "args", true);
    if (!args.is_array()) fail("target.args", "expected a list of types");
    if (args.size() > kMaxArgs) fail("target.args", fmt::format("{} arguments; at most {}", args.size(), kMaxArgs));
    for (size_t a = 0; a < args.size(); ++a) d.signature.args.push_back(value(args[a], fmt::format("target.args[{}]", a), false));
    const json& ret = member(target, "target", "ret", false);
    d.signature.ret = ret.is_null() ? ir::NativeValue{} : value(ret, "target.ret", true);
    if (d.signature.ret.type == ir::Type::Struct) fail("target.ret", "struct return values are not supported");

    const json& flags = member(doc, "", "flags", false);
    if (!flags.is_null()) {
      only_keys(flags, "flags", {"call_original", "ip_arg", "stats", "recursion_guard"});
      d.call_original = flag(flags, "flags", "call_original", true);
      d.ip_arg = flag(flags, "flags", "ip_arg", false);
      d.stats = flag(flags, "flags", "stats", false);
      d.recursion_guard = flag(flags, "flags", "recursion_guard", true);
    }
    const json& programs = member(doc, "", "programs", true);
    if (!programs.is_array()) fail("programs", "expected a list");
    if (programs.size() > kMaxPrograms)
      fail("programs", fmt::format("{} programs; at most {} may be attached", programs.size(), kMaxPrograms));
    for (size_t i = 0; i < programs.size(); ++i) {
      const std::string path = fmt::format("programs[{}]", i);
      const json& p = programs[i];
      only_keys(p, path, {"kind", "file", "asm", "cookie"});
      AttachedProgram prog;
      const json& kind = member(p, path, "kind", true);
      const std::string k = kind.is_string() ? kind.get<std::string>() : "";
      if (k == "fentry") prog.kind = Kind::Fentry;
      else if (k == "fmod_ret") prog.kind = Kind::FmodRet;
      else if (k == "fexit") prog.kind = Kind::Fexit;
      else if (k == "uprobe") prog.kind = Kind::Uprobe;
      else if (k == "uretprobe") prog.kind = Kind::Uretprobe;
      else fail(path + ".kind", "expected fentry, fmod_ret, fexit, uprobe or uretprobe");
      if (!d.programs.empty() && is_probe(prog.kind) != is_probe(d.programs.front().kind))
        fail(path + ".kind", fmt::format("a {} cannot share a trampoline with the {} of programs[0]: a probe saves "
                                         "every register at an instruction, the others wrap a call",
                                         k, kind_name(d.programs.front().kind)));
      const json& cookie = member(p, path, "cookie", false);
      if (!cookie.is_null()) {
        if (!cookie.is_number_integer()) fail(path + ".cookie", "expected an integer");
        prog.cookie = cookie.is_number_unsigned() ? cookie.get<uint64_t>() : uint64_t(cookie.get<int64_t>());
      }
      prog.program = program(p, path);
      d.programs.push_back(std::move(prog));
    }
    return d;
  }

  // "i64, {i64, i32}, f64 -> i32": what parse_signature reads, as the
  // target's JSON would give it, so both share the type rules and errors.
  ir::Signature signature(std::string_view text) const {
    auto trim = [](std::string_view s) {
      while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
      while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
      return s;
    };
    const size_t arrow = text.find("->");
    std::string_view args = trim(text.substr(0, arrow));
    const std::string_view ret = arrow == std::string_view::npos ? "void" : trim(text.substr(arrow + 2));
    if (args.size() >= 2 && args.front() == '(' && args.back() == ')') args = trim(args.substr(1, args.size() - 2));
    auto type = [&](std::string_view t, const std::string& path) -> json {
      t = trim(t);
      if (t.empty()) fail(path, "expected a type name");
      if (t.front() != '{') return std::string(t);
      if (t.back() != '}') fail(path, "a struct is written {type, type, ...}");
      json fields = json::array();
      std::string_view body = t.substr(1, t.size() - 2);
      for (size_t at = 0; at <= body.size();) {
        const size_t comma = std::min(body.find(',', at), body.size());
        fields.push_back(std::string(trim(body.substr(at, comma - at))));
        at = comma + 1;
      }
      return json{{"struct", fields}};
    };
    ir::Signature sig;
    if (!args.empty() && args != "void") {
      size_t depth = 0, start = 0, index = 0;
      for (size_t i = 0; i <= args.size(); ++i) {
        if (i < args.size() && args[i] == '{') ++depth;
        if (i < args.size() && args[i] == '}' && depth) --depth;
        if (i < args.size() && (args[i] != ',' || depth)) continue;
        const std::string path = fmt::format("signature.args[{}]", index++);
        if (index > kMaxArgs) fail("signature.args", fmt::format("more than {} arguments", kMaxArgs));
        sig.args.push_back(value(type(args.substr(start, i - start), path), path, false));
        start = i + 1;
      }
    }
    sig.ret = value(type(ret, "signature.ret"), "signature.ret", true);
    if (sig.ret.type == ir::Type::Struct) fail("signature.ret", "struct return values are not supported");
    return sig;
  }

 private:
  const std::string& file_;
  std::string base_;
};

// Emits IR through small helpers so the lowering below reads like the
// kernel's arch_prepare_bpf_trampoline, once, for every architecture.
class Builder {
 public:
  explicit Builder(ir::Function& fn) : fn_(fn) {}
  void add(ir::Inst i) { fn_.code.push_back(i); }
  void mov_imm(uint8_t r, uint64_t v) {
    ir::Inst i;
    i.op = ir::Op::LoadImm, i.dst = r, i.imm = int64_t(v);
    add(i);
  }
  void frame_addr(uint8_t r, int32_t off) {  // r = r10 + off
    add(ir::alu(ir::Op::Mov, 64, r, ir::kFP));
    add(ir::alu_imm(ir::Op::Add, 64, r, off));
  }
  // A C function of `args` integer arguments, in r1..r{args}.
  void call(uint64_t address, uint8_t args) {
    ir::Inst i;
    i.op = ir::Op::CallAddr, i.imm = int64_t(address), i.args = args;
    add(i);
  }
  uint32_t label() { return fn_.new_label(); }
  void bind(uint32_t l) { add(ir::label(l)); }

 private:
  ir::Function& fn_;
};

// Small integers are normalized in their slot (sign- or zero-extended to 64
// bits), since ABIs leave a register's upper bits unspecified.
void normalize(Builder& b, const ir::NativeValue& v, int32_t slot) {
  if (v.is_fp() || v.type == ir::Type::Struct || v.size >= 8 || v.size == 0) return;
  const bool sext = v.type == ir::Type::I8 || v.type == ir::Type::I16 || v.type == ir::Type::I32;
  b.add(ir::load(v.size, sext, 1, ir::kFP, slot));
  b.add(ir::store(8, ir::kFP, slot, 1));
}

}  // namespace

Description parse_description(std::string_view json_text, const std::string& file, const std::string& base_dir) {
  try {
    return Parser(file, base_dir).parse(json_text);
  } catch (const json::exception& e) {  // a shape the parser's checks missed: an error, never a crash
    throw Error(file, std::string("malformed description: ") + e.what());
  }
}

ir::Signature parse_signature(std::string_view text, const std::string& where) {
  try {
    return Parser(where, ".").signature(text);
  } catch (const json::exception& e) {
    throw Error(where, std::string("malformed signature: ") + e.what());
  }
}

Description read_description(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path, "cannot open");
  std::string text(std::istreambuf_iterator<char>(in), {});
  return parse_description(text, path, std::filesystem::path(path).parent_path().string());
}

Bindings placeholder_bindings(const Description& d) {
  Bindings b;
  b.ip = 0x1000000000;
  b.original = 0x1000000010;
  b.prog_enter = 0x2000000000;
  b.prog_exit = 0x2000000010;
  b.ret_enter = 0x2000000020;
  b.ret_site = 0x1000000020;
  b.ret_landing = 0x1000000030;
  b.ret_pop = 0x2000000030;
  for (size_t i = 0; i < d.programs.size(); ++i) {
    b.entries.push_back(0x3000000000 + 0x100 * i);
    b.states.push_back(0x4000000000 + 0x100 * i);
  }
  return b;
}

Frame frame_of(const ir::Signature& sig) {
  Frame f;
  f.ret = -8;
  f.ctx = -8 * int32_t(sig.words() + 1);
  f.nr_args = f.ctx - 8;
  f.ip = f.ctx - 16;
  f.run_ctx = f.ip - kRunCtxBytes;
  f.size = uint32_t((-f.run_ctx + 15) / 16 * 16);
  return f;
}

namespace {

// The parts every trampoline shape shares: the in-flight stack push and
// pop (Bindings::in_flight_tls) and one program's run between enter and
// exit. r6 holds enter's result across the program.
class Shared {
 public:
  // `call`: a call trampoline (fentry & co.), whose r10 the run context
  // records for the stack helpers; a probe records 0.
  Shared(Builder& b, const Description& d, const Bindings& bind, int32_t run_ctx, bool call)
      : b_(b), d_(d), bind_(bind), run_ctx_(run_ctx), call_(call),
        guarded_(d.stats || d.recursion_guard || d.run_context) {}
  bool guarded() const { return guarded_; }

  // This thread's in-flight stack: r1 = its address, r2 = its depth.
  void in_flight_depth() {
    b_.add(ir::thread_ptr(1));
    b_.add(ir::alu_imm(ir::Op::Add, 64, 1, *bind_.in_flight_tls));
    b_.add(ir::load(8, false, 2, 1, 0));
  }
  // Pushes the image's token (only the depth once the stack is full) and,
  // where a run context is made current, records the frame in it.
  void enter() {
    if (guarded_ && call_) {
      b_.add(ir::alu(ir::Op::Mov, 64, 1, ir::kFP));
      b_.add(ir::store(8, ir::kFP, run_ctx_ + kRunCtxFrame, 1));
    } else if (guarded_) {
      b_.add(ir::store_imm(8, ir::kFP, run_ctx_ + kRunCtxFrame, 0));
    }
    if (!bind_.in_flight_tls) return;
    in_flight_depth();
    const uint32_t full = b_.label();
    b_.add(ir::branch_imm(ir::Cond::Ge, 64, 2, bind_.in_flight_capacity, full));
    b_.add(ir::alu(ir::Op::Mov, 64, 3, 2));
    b_.add(ir::alu_imm(ir::Op::Shl, 64, 3, 3));
    b_.add(ir::alu(ir::Op::Add, 64, 3, 1));
    b_.mov_imm(4, bind_.image_token);
    b_.add(ir::store(8, 3, 8, 4));
    b_.bind(full);
    b_.add(ir::alu_imm(ir::Op::Add, 64, 2, 1));
    b_.add(ir::store(8, 1, 0, 2));
  }
  void leave() {  // only the epilogue remains
    if (!bind_.in_flight_tls) return;
    in_flight_depth();
    b_.add(ir::alu_imm(ir::Op::Sub, 64, 2, 1));
    b_.add(ir::store(8, 1, 0, 2));
  }
  // Runs program `index` with r1 = what `ctx` loads into r1; `after` runs
  // right after the program (with its r0), inside the guard.
  template <typename Ctx, typename After>
  void invoke(size_t index, Ctx&& ctx, After&& after) {
    const AttachedProgram& p = d_.programs[index];
    b_.mov_imm(1, p.cookie);
    b_.add(ir::store(8, ir::kFP, run_ctx_ + kRunCtxCookie, 1));
    if (guarded_) {  // get_func_ip's answer, with the run context current
      b_.mov_imm(1, bind_.ip);
      b_.add(ir::store(8, ir::kFP, run_ctx_ + kRunCtxFuncIp, 1));
    }
    const uint32_t after_run = b_.label();
    const bool fast = guarded_ && bind_.guard_tls && index < bind_.plain.size() && bind_.plain[index];
    if (fast) inline_enter(index, after_run);
    else if (guarded_) slow_enter(index, after_run);
    ctx();
    b_.call(bind_.entries[index], 1);
    after();
    if (fast) {
      inline_exit(index);
      b_.bind(after_run);
    } else if (guarded_) {
      b_.bind(after_run);
      slow_exit(index);
    } else {
      b_.bind(after_run);
    }
  }

 private:
  // start = enter(state, run_ctx) in r6; 0: skip the program (to `skip`).
  void slow_enter(size_t index, uint32_t skip) {
    b_.mov_imm(1, bind_.states[index]);
    b_.frame_addr(2, run_ctx_);
    b_.call(bind_.prog_enter, 2);
    b_.add(ir::alu(ir::Op::Mov, 64, 6, 0));
    b_.add(ir::branch_imm(ir::Cond::Eq, 64, 0, 0, skip));
  }
  void slow_exit(size_t index) {
    b_.mov_imm(1, bind_.states[index]);
    b_.add(ir::alu(ir::Op::Mov, 64, 2, 6));
    b_.frame_addr(3, run_ctx_);
    b_.call(bind_.prog_exit, 3);
  }
  // r1 = this thread's ThreadGuard.
  void guard_state() {
    b_.add(ir::thread_ptr(1));
    b_.add(ir::alu_imm(ir::Op::Add, 64, 1, *bind_.guard_tls));
  }
  // A plain program (Bindings::plain) with no program running on this
  // thread: push it on the running stack and make the run context current,
  // as prog_enter does; otherwise call prog_enter, which finds recursion.
  void inline_enter(size_t index, uint32_t skip) {
    const uint32_t slow = b_.label(), run = b_.label();
    guard_state();
    b_.add(ir::load(4, false, 2, 1, kGuardDepth));
    b_.add(ir::branch_imm(ir::Cond::Ne, 64, 2, 0, slow));
    b_.mov_imm(3, bind_.states[index]);
    b_.add(ir::store(8, 1, kGuardRunning, 3));
    b_.add(ir::store_imm(4, 1, kGuardDepth, 1));
    b_.add(ir::load(8, false, 2, 1, kGuardRunCtx));
    b_.add(ir::store(8, ir::kFP, run_ctx_ + kRunCtxPrev, 2));
    b_.frame_addr(2, run_ctx_);
    b_.add(ir::store(8, 1, kGuardRunCtx, 2));
    b_.mov_imm(6, 1);  // what prog_enter returns without statistics
    b_.add(ir::jump(run));
    b_.bind(slow);
    slow_enter(index, skip);
    b_.bind(run);
  }
  // The program the only one running on this thread: pop it and restore
  // the run context, as prog_exit does; otherwise call prog_exit.
  void inline_exit(size_t index) {
    const uint32_t slow = b_.label(), done = b_.label();
    guard_state();
    b_.add(ir::load(4, false, 2, 1, kGuardDepth));
    b_.add(ir::branch_imm(ir::Cond::Ne, 64, 2, 1, slow));
    b_.add(ir::load(8, false, 2, 1, kGuardRunning));
    b_.mov_imm(3, bind_.states[index]);
    b_.add(ir::branch(ir::Cond::Ne, 64, 2, 3, slow));
    b_.add(ir::store_imm(4, 1, kGuardDepth, 0));
    b_.add(ir::load(8, false, 2, ir::kFP, run_ctx_ + kRunCtxPrev));
    b_.add(ir::store(8, 1, kGuardRunCtx, 2));
    b_.add(ir::jump(done));
    b_.bind(slow);
    slow_exit(index);
    b_.bind(done);
  }

  Builder& b_;
  const Description& d_;
  const Bindings& bind_;
  int32_t run_ctx_;
  bool call_;
  bool guarded_;
};

void check_bindings(const Description& d, const Bindings& bind) {
  if (bind.entries.size() != d.programs.size() || bind.states.size() != d.programs.size())
    throw Error(d.file, "internal: bindings do not cover every program");
}

void exit(Builder& b) {
  ir::Inst exit;
  exit.op = ir::Op::Exit;
  b.add(exit);
}

// A probe's body and a return probe's: native (ptr) -> ptr, the argument
// (the pt_regs the programs read) kept at r10 - 8, the run context below it.
constexpr int32_t kProbeRegsSlot = -8, kProbeRunCtx = -8 - kRunCtxBytes;
ir::Function& probe_function(ir::Module& m, const std::string& name) {
  ir::Function& fn = m.functions.emplace_back();
  fn.name = name;
  fn.frame_size = uint32_t(-kProbeRunCtx + 15) / 16 * 16;
  fn.native = ir::Signature{{{ir::Type::Ptr, 8}}, {ir::Type::Ptr, 8}, kProbeRegsSlot};
  return fn;
}

// Runs the programs of `kind` with r1 = the pt_regs.
void run_probes(Shared& sh, Builder& b, const Description& d, Kind kind) {
  for (size_t i : d.of_kind(kind))
    sh.invoke(i, [&] { b.add(ir::load(8, false, 1, ir::kFP, kProbeRegsSlot)); }, [] {});
}

}  // namespace

bool is_probe(Kind k) { return k == Kind::Uprobe || k == Kind::Uretprobe; }

bool Description::probe() const {
  for (const AttachedProgram& p : programs)
    if (is_probe(p.kind)) return true;
  return false;
}

// r7 holds an fmod_ret result.
ir::Module lower(const Description& d, const Bindings& bind) {
  check_bindings(d, bind);
  if (d.probe()) return lower_probe(d, bind);
  ir::Module m;
  ir::Function& fn = m.functions.emplace_back();
  fn.name = "trampoline_" + d.target;
  const Frame fr = frame_of(d.signature);
  fn.frame_size = fr.size;
  fn.native = d.signature;
  fn.native->spill_off = fr.ctx;
  Builder b(fn);
  Shared sh(b, d, bind, fr.run_ctx, true);
  sh.enter();

  // The prologue has spilled the argument words to ctx[0..words).
  int32_t slot = fr.ctx;
  for (const ir::NativeValue& a : d.signature.args) {
    normalize(b, a, slot);
    slot += 8 * int32_t(a.words());
  }
  b.mov_imm(1, d.signature.words());
  b.add(ir::store(8, ir::kFP, fr.nr_args, 1));
  if (d.ip_arg) {
    b.mov_imm(1, bind.ip);
    b.add(ir::store(8, ir::kFP, fr.ip, 1));
  }
  b.add(ir::store_imm(8, ir::kFP, fr.ret, 0));

  const uint32_t do_fexit = b.label();
  auto invoke = [&](size_t index) {
    const bool mod_ret = d.programs[index].kind == Kind::FmodRet;
    sh.invoke(index, [&] { b.frame_addr(1, fr.ctx); },  // the program's r1 is ctx
              [&] {
                if (!mod_ret) return;
                b.add(ir::store(8, ir::kFP, fr.ret, 0));
                b.add(ir::alu(ir::Op::Mov, 64, 7, 0));
              });
    if (mod_ret) b.add(ir::branch_imm(ir::Cond::Ne, 64, 7, 0, do_fexit));
  };

  for (size_t i : d.of_kind(Kind::Fentry)) invoke(i);
  for (size_t i : d.of_kind(Kind::FmodRet)) {
    if (sh.guarded()) b.add(ir::alu_imm(ir::Op::Mov, 64, 7, 0));  // a skipped program returns nothing
    invoke(i);
  }
  if (d.call_original) {
    ir::Inst call;
    call.op = ir::Op::CallSig, call.imm = int64_t(bind.original), call.off = fr.ctx;
    b.add(call);
    b.add(ir::store(8, ir::kFP, fr.ret, 0));
    normalize(b, d.signature.ret, fr.ret);
  }
  b.bind(do_fexit);
  for (size_t i : d.of_kind(Kind::Fexit)) invoke(i);
  sh.leave();
  b.add(ir::load(8, false, 0, ir::kFP, fr.ret));
  exit(b);
  return m;
}

bool overrides_return(const bpf::Program& p) {
  for (const bpf::Insn& in : p.insns)
    if (in.opcode == bpf::make_opcode(bpf::JMP, bpf::CALL) && in.src == bpf::CALL_HELPER &&
        bpf::regs_write_helper(uint32_t(in.imm)))
      return true;
  return false;
}

// The probe at bind.ip: uprobe programs with the pt_regs the backend's
// probe entry saved, then (with uretprobe programs) ret_enter(regs,
// ret_site, ret_landing) to catch the return, then on at bind.original;
// or, when a program called bpf_override_return (x86-64 only, which set
// the pt_regs' ip to a return instruction), there.
ir::Module lower_probe(const Description& d, const Bindings& bind) {
  check_bindings(d, bind);
  ir::Module m;
  ir::Function& fn = probe_function(m, "probe_" + d.target);
  bool overriding = false;
  for (size_t i : d.of_kind(Kind::Uprobe))
    overriding = overriding || d.programs[i].overrides_return || overrides_return(d.programs[i].program);
  fn.probe = ir::Function::Probe{bind.ip, overriding ? std::nullopt : std::optional<uint64_t>(bind.original),
                                 d.no_vector_use ? ir::Function::Probe::Vectors::None : ir::Function::Probe::Vectors::All};
  Builder b(fn);
  Shared sh(b, d, bind, kProbeRunCtx, false);
  sh.enter();
  run_probes(sh, b, d, Kind::Uprobe);
  if (!d.of_kind(Kind::Uretprobe).empty()) {
    b.add(ir::load(8, false, 1, ir::kFP, kProbeRegsSlot));
    b.mov_imm(2, bind.ret_site);
    b.mov_imm(3, bind.ret_landing);
    b.call(bind.ret_enter, 3);
  }
  sh.leave();
  b.mov_imm(0, bind.original);
  if (overriding) {  // the ip the programs left, unless it is still the probed one
    const uint32_t on = b.label();
    b.add(ir::load(8, false, 1, ir::kFP, kProbeRegsSlot));
    b.add(ir::load(8, false, 1, 1, backend::probe_regs(Arch::X86_64).ip));
    b.mov_imm(2, bind.ip);
    b.add(ir::branch(ir::Cond::Eq, 64, 1, 2, on));
    b.add(ir::alu(ir::Op::Mov, 64, 0, 1));
    b.bind(on);
  }
  exit(b);
  return m;
}

// What runs when a probed function returns: its uretprobe programs with
// the pt_regs at the return (called by the return landing's dispatch).
ir::Module lower_return(const Description& d, const Bindings& bind) {
  check_bindings(d, bind);
  ir::Module m;
  ir::Function& fn = probe_function(m, "return_" + d.target);
  Builder b(fn);
  Shared sh(b, d, bind, kProbeRunCtx, false);
  sh.enter();
  run_probes(sh, b, d, Kind::Uretprobe);
  sh.leave();
  b.mov_imm(0, 0);
  exit(b);
  return m;
}

// A return probe that is its own landing (one per probed function, for a
// guest): ret_enter made the function return here; ret_pop(regs) gives
// the real return address (and sets regs' ip to it), the uretprobe
// programs run, and the probe goes on there. r7 keeps the address.
ir::Module lower_return_probe(const Description& d, const Bindings& bind) {
  check_bindings(d, bind);
  ir::Module m;
  ir::Function& fn = probe_function(m, "return_probe_" + d.target);
  fn.probe = ir::Function::Probe{0, std::nullopt,
                                 d.no_vector_use ? ir::Function::Probe::Vectors::None
                                                 : ir::Function::Probe::Vectors::ReturnValues};
  Builder b(fn);
  Shared sh(b, d, bind, kProbeRunCtx, false);
  b.add(ir::load(8, false, 1, ir::kFP, kProbeRegsSlot));
  b.call(bind.ret_pop, 1);
  b.add(ir::alu(ir::Op::Mov, 64, 7, 0));
  sh.enter();
  run_probes(sh, b, d, Kind::Uretprobe);
  sh.leave();
  b.add(ir::alu(ir::Op::Mov, 64, 0, 7));
  exit(b);
  return m;
}

// Where a probed function returns to while a uretprobe waits for it: a
// probe whose body asks dispatch(regs) where to go on.
ir::Module lower_return_landing(uint64_t dispatch) {
  ir::Module m;
  ir::Function& fn = probe_function(m, "return_landing");
  fn.probe = ir::Function::Probe{0, std::nullopt, ir::Function::Probe::Vectors::ReturnValues};
  Builder b(fn);
  b.add(ir::load(8, false, 1, ir::kFP, kProbeRegsSlot));
  b.call(dispatch, 1);
  exit(b);
  return m;
}

}  // namespace sb::tramp
