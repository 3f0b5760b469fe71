// Structural checks run between pipeline stages (design example 5): they
// catch a lowering bug at the stage that made it, not as wrong machine code.
#include <fmt/format.h>

#include "ir/diag.h"
#include "ir/ir.h"

namespace sb::ir {

namespace {
[[noreturn]] void fail(const Function& fn, size_t index, const std::string& what) {
  throw Error(fmt::format("IR function {}: instruction {}", fn.name, index), what);
}
// The message is built only on failure: check runs on every compile.
void require(bool ok, const Function& fn, size_t index, const char* what) {
  if (!ok) fail(fn, index, what);
}
bool writes_dst(Form form) {
  switch (form) {
    case Form::Alu: case Form::Unary: case Form::Ext: case Form::Imm64: case Form::Load: case Form::Def:
      return true;
    default:
      return false;
  }
}
bool legal_size(uint8_t s) { return s == 1 || s == 2 || s == 4 || s == 8; }
}  // namespace

void check(const Module& m) {
  if (m.functions.empty()) throw Error("IR", "module has no functions");
  for (size_t f = 0; f < m.functions.size(); ++f) {
    const Function& fn = m.functions[f];
    if (f > 0 && fn.frame_size != kCallFrame)  // a callee's r10 is its caller's minus kCallFrame (see ir.h)
      fail(fn, 0, fmt::format("a callee's frame must be {} bytes", kCallFrame));
    std::vector<int> defined(fn.num_labels, 0);
    for (const Inst& i : fn.code)
      if (i.op == Op::Label && i.target < fn.num_labels) defined[i.target]++;
    require(!fn.code.empty(), fn, 0, "empty function");
    if (fn.native) {
      const int64_t lo = fn.native->spill_off, hi = lo + 8 * int64_t(fn.native->words());
      require(lo >= -int64_t(fn.frame_size) && hi <= 0, fn, 0, "argument spill area outside the frame");
    }
    if (fn.probe) {  // the backend's probe entry passes the pt_regs and continues at the result
      require(f == 0, fn, 0, "only the entry function can be a probe");
      require(fn.native && fn.native->args.size() == 1 && fn.native->args[0].type == Type::Ptr &&
                  fn.native->ret.type == Type::Ptr,
              fn, 0, "a probe's body must be native (ptr) -> ptr");
    }
    for (size_t n = 0; n < fn.code.size(); ++n) {
      const Inst& i = fn.code[n];
      const Form form = op_form(i.op);
      require(i.dst < kNumRegs && i.src < kNumRegs, fn, n, "register out of range");
      require(!(writes_dst(form) && i.dst == kFP), fn, n, "writes the frame pointer r10");
      if (form == Form::Alu || form == Form::Unary || form == Form::Branch || form == Form::Atomic ||
          form == Form::Ext)
        require(i.width == 32 || i.width == 64, fn, n, "width must be 32 or 64");
      if (form == Form::Load || form == Form::Store || form == Form::Atomic)
        require(legal_size(i.size), fn, n, "access size must be 1, 2, 4 or 8");
      if (form == Form::Atomic) require(i.size == 4 || i.size == 8, fn, n, "atomic size must be 4 or 8");
      if (i.index != kNoIndex)
        require((form == Form::Load || form == Form::Store) && i.index < kNumRegs, fn, n,
              "an index register needs a load or store and a register in range");
      if (i.op == Op::MovSx) require(i.ext == 8 || i.ext == 16 || i.ext == 32, fn, n, "bad movsx width");
      if (i.op == Op::Bswap) require(i.ext == 16 || i.ext == 32 || i.ext == 64, fn, n, "bad bswap width");
      const bool label_ok = i.target < fn.num_labels && defined[i.target] == 1;
      if ((form == Form::Jump || form == Form::Branch) && !label_ok)
        fail(fn, n, fmt::format("target L{} is not defined exactly once", i.target));
      if (i.op == Op::Label && !label_ok)
        fail(fn, n, fmt::format("label L{} defined more than once or out of range", i.target));
      if (i.op == Op::CallLocal && i.target >= m.functions.size())
        fail(fn, n, fmt::format("no function {}", i.target));
      if ((i.op == Op::LoadSym || i.op == Op::CallSym) && i.target >= m.symbols.size())
        fail(fn, n, fmt::format("no symbol @{}", i.target));
      if (i.op == Op::CallSig) require(fn.native.has_value(), fn, n, "call.sig in a function without a native signature");
    }
    require(is_terminator(fn.code.back().op), fn, fn.code.size() - 1,
          "function does not end in a terminator");
  }
}

}  // namespace sb::ir
