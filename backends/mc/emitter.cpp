#include "backends/mc/emitter.h"

#include <algorithm>
#include <optional>

#include <llvm/BinaryFormat/ELF.h>
#include <llvm/MC/MCAsmBackend.h>
#include <llvm/MC/MCAsmInfo.h>
#include <llvm/MC/MCAssembler.h>
#include <llvm/MC/MCCodeEmitter.h>
#include <llvm/MC/MCContext.h>
#include <llvm/MC/MCFixupKindInfo.h>
#include <llvm/MC/MCInstPrinter.h>
#include <llvm/MC/MCObjectFileInfo.h>
#include <llvm/MC/MCObjectStreamer.h>
#include <llvm/MC/MCObjectWriter.h>
#include <llvm/MC/MCSectionELF.h>
#include <llvm/MC/MCStreamer.h>
#include <llvm/MC/MCSymbol.h>
#include <llvm/MC/MCValue.h>
#include <llvm/ADT/SmallString.h>
#include <llvm/Support/Casting.h>
#include <llvm/Support/Alignment.h>
#include <llvm/Support/FormattedStream.h>
#include <llvm/Support/MathExtras.h>
#include <llvm/Support/raw_ostream.h>

#include "ir/diag.h"

namespace sb::mc {

namespace {

// The object writer the JIT assembler's MCAssembler is built with: the
// backends' fixup hooks take an MCAssembler (for its context), but no
// object file is ever written.
class NoObjectWriter final : public llvm::MCObjectWriter {
 public:
  void recordRelocation(llvm::MCAssembler&, const llvm::MCFragment*, const llvm::MCFixup&, llvm::MCValue,
                        uint64_t&) override {}
  uint64_t writeObject(llvm::MCAssembler&) override { return 0; }
};

// OutputKind::Bytes: a one-section assembler over the target's
// MCCodeEmitter and MCAsmBackend, without MCObjectStreamer's fragments.
// Each instruction is encoded once, straight into `code_`; what layout
// decides (relaxable instructions: x86 short jumps, riscv branches; code
// alignment) is an Item at its place in `code_`. Labels, fixups and the
// relaxation loop follow LLVM 19's MCAssembler::layout, so the bytes are
// the ones its object streamer produced:
//   - an instruction goes to an Item only if it has a symbolic operand and
//     MCAsmBackend::mayNeedRelaxation says so (MCObjectStreamer::
//     emitInstructionImpl);
//   - layout: every Item's offset from the sizes so far, an alignment's
//     size from its offset (computeFragmentSize); then every relaxable
//     Item whose fixup does not fit with those offsets is relaxed and
//     re-encoded, and layout runs again, until nothing changes;
//   - fixups are evaluated as MCAssembler::evaluateFixup does (a label
//     difference folds, a PC-relative fixup needs one defined label) and
//     applied with MCAsmBackend::applyFixup; one left unresolved would be a
//     relocation, which JIT code cannot have.
// Positions are "code_ position + the bytes of the Items before it", so a
// layout pass only walks the Items, not the instructions.
class JitAssembler {
 public:
  explicit JitAssembler(const McTarget& t)
      : t_(t),
        ctx_(t.triple(), &t.mai(), &t.mri(), &t.sti(), nullptr, &t.options()),
        asm_(ctx_, std::unique_ptr<llvm::MCAsmBackend>(t.target().createMCAsmBackend(t.sti(), t.mri(), t.options())),
             std::unique_ptr<llvm::MCCodeEmitter>(t.target().createMCCodeEmitter(t.mii(), ctx_)),
             std::make_unique<NoObjectWriter>()),
        backend_(asm_.getBackend()),
        encoder_(asm_.getEmitter()) {}

  const McTarget& target() const { return t_; }
  llvm::MCContext& ctx() { return ctx_; }

  // A place in the code: `pos` bytes of code_ with `items` Items before it.
  struct Place {
    uint32_t pos = 0, items = 0;
  };
  Place here() const { return {uint32_t(code_.size()), uint32_t(items_.size())}; }
  // Its offset in .text (after layout).
  uint64_t offset(Place p) const { return p.pos + (p.items ? items_[p.items - 1].end_shift : 0); }

  llvm::MCSymbol* new_label() { return track(ctx_.createTempSymbol()); }
  llvm::MCSymbol* named(const std::string& name) { return track(ctx_.getOrCreateSymbol(name)); }
  void bind(const llvm::MCSymbol* sym) {
    Label& l = label(sym);
    l.at = here();
    l.bound = true;
  }
  void emit(const llvm::MCInst& inst) {
    const llvm::MCSubtargetInfo& sti = t_.sti();
    const bool symbolic = std::any_of(inst.begin(), inst.end(), [](const llvm::MCOperand& o) { return o.isExpr(); });
    if (symbolic && backend_.mayNeedRelaxation(inst, sti)) {
      Item& item = items_.emplace_back();
      item.pos = uint32_t(code_.size());
      item.relax = uint32_t(relaxable_.size());
      Relaxable& r = relaxable_.emplace_back();
      r.inst = inst;
      encoder_.encodeInstruction(r.inst, r.code, r.fixups, sti);
      item.size = uint32_t(r.code.size());
      return;
    }
    const Place at = here();
    scratch_.clear();
    encoder_.encodeInstruction(inst, code_, scratch_, sti);
    for (llvm::MCFixup& f : scratch_) {  // offsets are from the instruction's start
      f.setOffset(f.getOffset() + at.pos);
      fixups_.push_back({f, at.items});
    }
  }
  // MCObjectStreamer::emitCodeAlignment: nops up to the alignment.
  void align(unsigned alignment, unsigned max_skip = 0) {
    Item& item = items_.emplace_back();
    item.pos = uint32_t(code_.size());
    item.align = alignment;
    item.max_skip = max_skip ? max_skip : alignment;
  }
  void bytes(const void* data, size_t size) {
    code_.append(static_cast<const char*>(data), static_cast<const char*>(data) + size);
  }
  void int_value(uint64_t v, unsigned size) {
    for (unsigned i = 0; i < size; ++i) code_.push_back(char(v >> (8 * i)));  // every target is little-endian
  }
  // MCObjectStreamer::emitValueImpl: a constant is written, anything else
  // is a data fixup.
  void value(const llvm::MCExpr* expr, unsigned size) {
    int64_t constant;
    if (expr->evaluateAsAbsolute(constant)) {
      if (!llvm::isUIntN(8 * size, uint64_t(constant)) && !llvm::isIntN(8 * size, constant))
        ctx_.reportError(llvm::SMLoc(), "value evaluated as " + llvm::Twine(constant) + " is out of range.");
      else
        int_value(uint64_t(constant), size);
      return;
    }
    fixups_.push_back({llvm::MCFixup::create(uint32_t(code_.size()), expr, llvm::MCFixup::getKindForSize(size, false)),
                       uint32_t(items_.size())});
    code_.resize(code_.size() + size, 0);
  }
  // A .reloc directive is always a relocation.
  void reloc(unsigned size, const char* relocation) {
    if (!backend_.getFixupKind(relocation))
      throw Error(std::string("LLVM .reloc ") + relocation, "unknown relocation name");
    ++relocations_;
    int_value(0, size);
  }

  // Lays the code out, relaxes, applies the fixups; `text` gets the bytes.
  // Returns the number of fixups left unresolved (relocations).
  unsigned finish(std::vector<uint8_t>& text) {
    layout();
    // MCAssembler gives up after as many rounds as there are fragments.
    for (size_t round = 0; round <= items_.size() && !ctx_.hadError(); ++round) {
      bool changed = false;
      for (Item& item : items_)
        if (item.relax != kNone && relax(item)) changed = true;
      if (!changed) break;
      layout();
    }
    const uint64_t total = offset(here());
    text.assign(total, 0);
    uint8_t* out = text.data();
    uint32_t pos = 0;
    uint64_t shift = 0;
    llvm::SmallString<64> nops;
    for (const Item& item : items_) {
      std::copy(code_.begin() + pos, code_.begin() + item.pos, out + pos + shift);
      if (item.relax != kNone) {
        const llvm::SmallVectorImpl<char>& code = relaxable_[item.relax].code;
        std::copy(code.begin(), code.end(), out + item.offset);
      } else if (item.size) {
        nops.clear();
        llvm::raw_svector_ostream os(nops);
        if (!backend_.writeNopData(os, item.size, &t_.sti()))
          throw Error("LLVM " + t_.triple().str(), "no nop sequence of " + std::to_string(item.size) + " bytes");
        std::copy(nops.begin(), nops.end(), out + item.offset);
      }
      pos = item.pos;
      shift = item.end_shift;
    }
    std::copy(code_.begin() + pos, code_.end(), out + pos + shift);

    unsigned relocations = relocations_;
    llvm::MutableArrayRef<char> data(reinterpret_cast<char*>(out), total);
    auto apply = [&](llvm::MCFixup f, uint64_t at) {
      f.setOffset(uint32_t(at));
      llvm::MCValue target;
      uint64_t value;
      bool forced;
      if (!evaluate(f, at, target, value, forced)) {
        ++relocations;
        return;
      }
      backend_.applyFixup(asm_, f, target, data, value, true, &t_.sti());
    };
    for (const Fixup& f : fixups_) apply(f.fixup, offset({f.fixup.getOffset(), f.items}));
    for (const Item& item : items_)
      if (item.relax != kNone)
        for (const llvm::MCFixup& f : relaxable_[item.relax].fixups) apply(f, item.offset + f.getOffset());
    return relocations;
  }

  // Ready for the next compile. The context keeps its symbols (a temp
  // symbol is a few bytes of its allocator) until kResetSymbols were made
  // or an error was reported: MCContext::reset costs about as much as a
  // small compile.
  void reset() {
    if (ctx_.hadError() || symbols_made_ >= kResetSymbols) {
      ctx_.reset();
      symbols_made_ = 0;
    }
    labels_.clear();
    items_.clear();
    relaxable_.clear();
    fixups_.clear();
    code_.clear();
    relocations_ = 0;
  }

 private:
  static constexpr uint32_t kNone = ~0u;
  static constexpr size_t kResetSymbols = 1 << 14;

  struct Label {
    const llvm::MCSymbol* sym;
    Place at;
    bool bound = false;
  };
  struct Item {
    uint32_t pos = 0;        // in code_
    uint32_t relax = kNone;  // index in relaxable_, or kNone for an alignment
    unsigned align = 0;
    unsigned max_skip = 0;   // an alignment needing more nops than this has none
    uint32_t size = 0;
    uint64_t offset = 0;     // layout: in .text
    uint64_t end_shift = 0;  // layout: bytes of this and the earlier Items
  };
  struct Relaxable {
    llvm::MCInst inst;
    llvm::SmallVector<char, 16> code;
    llvm::SmallVector<llvm::MCFixup, 1> fixups;  // offsets from the instruction's start
  };
  struct Fixup {
    llvm::MCFixup fixup;  // offset: in code_
    uint32_t items;       // Items before it
  };

  // A symbol's label is labels_[index - 1] (MCSymbol's index is free: no
  // object writer sees these symbols). A named symbol outlives a compile,
  // so its index is checked against the label it names.
  llvm::MCSymbol* track(llvm::MCSymbol* sym) {
    if (!find(sym)) {
      ++symbols_made_;
      labels_.push_back({sym, {}, false});
      sym->setIndex(uint32_t(labels_.size()));
    }
    return sym;
  }
  const Label* find(const llvm::MCSymbol* sym) const {
    const uint32_t i = sym->getIndex();
    return i && i <= labels_.size() && labels_[i - 1].sym == sym ? &labels_[i - 1] : nullptr;
  }
  Label& label(const llvm::MCSymbol* sym) {
    if (!find(sym)) track(const_cast<llvm::MCSymbol*>(sym));
    return labels_[sym->getIndex() - 1];
  }
  const Label* defined(const llvm::MCSymbolRefExpr* ref) const {
    const Label* l = ref ? find(&ref->getSymbol()) : nullptr;
    return l && l->bound ? l : nullptr;
  }

  void layout() {
    uint64_t shift = 0;
    for (Item& item : items_) {
      item.offset = item.pos + shift;
      if (item.relax == kNone) item.size = align_size(item.offset, item.align, item.max_skip);
      shift += item.size;
      item.end_shift = shift;
    }
  }
  // MCAssembler::computeFragmentSize of a code alignment (nops, at most
  // `max_skip` bytes; no target here inserts extra nops for linker
  // relaxation).
  uint32_t align_size(uint64_t at, unsigned alignment, unsigned max_skip) const {
    uint64_t size = llvm::offsetToAlignment(at, llvm::Align(alignment));
    if (size > 0)
      while (size % backend_.getMinimumNopSize()) size += alignment;
    return size > max_skip ? 0 : uint32_t(size);
  }
  // MCAssembler::relaxInstruction.
  bool relax(Item& item) {
    Relaxable& r = relaxable_[item.relax];
    const llvm::MCSubtargetInfo& sti = t_.sti();
    if (!backend_.mayNeedRelaxation(r.inst, sti)) return false;
    const bool needed = std::any_of(r.fixups.begin(), r.fixups.end(), [&](const llvm::MCFixup& f) {
      llvm::MCValue target;
      uint64_t value;
      bool forced;
      const bool resolved = evaluate(f, item.offset + f.getOffset(), target, value, forced);
      return backend_.fixupNeedsRelaxationAdvanced(asm_, f, resolved, value, nullptr, forced);
    });
    if (!needed) return false;
    backend_.relaxInstruction(r.inst, sti);
    r.code.clear();
    r.fixups.clear();
    encoder_.encodeInstruction(r.inst, r.code, r.fixups, sti);
    item.size = uint32_t(r.code.size());
    return true;
  }
  // The shapes branches and calls use (a label plus constants, as the code
  // emitters write them), with the result MCExpr::evaluateAsRelocatable
  // gives them; false for anything else, which LLVM evaluates.
  static bool fold(const llvm::MCExpr* e, llvm::MCValue& target) {
    const llvm::MCSymbolRefExpr* sym = nullptr;
    int64_t constant = 0;
    auto walk = [&](auto& self, const llvm::MCExpr* x) -> bool {
      if (auto* c = llvm::dyn_cast<llvm::MCConstantExpr>(x)) {
        constant += c->getValue();
        return true;
      }
      if (auto* r = llvm::dyn_cast<llvm::MCSymbolRefExpr>(x)) {
        if (sym || r->getKind() != llvm::MCSymbolRefExpr::VK_None || r->getSymbol().isVariable()) return false;
        sym = r;
        return true;
      }
      auto* b = llvm::dyn_cast<llvm::MCBinaryExpr>(x);
      return b && b->getOpcode() == llvm::MCBinaryExpr::Add && self(self, b->getLHS()) && self(self, b->getRHS());
    };
    if (!walk(walk, e)) return false;
    target = llvm::MCValue::get(sym, nullptr, constant);
    return true;
  }

  // MCAssembler::evaluateFixup, for fixup `f` at offset `at` of .text.
  bool evaluate(const llvm::MCFixup& f, uint64_t at, llvm::MCValue& target, uint64_t& value, bool& forced) {
    value = 0;
    forced = false;
    if (!fold(f.getValue(), target) && !f.getValue()->evaluateAsRelocatable(target, nullptr, &f)) {
      ctx_.reportError(f.getLoc(), "expected relocatable expression");
      return true;
    }
    const llvm::MCSymbolRefExpr* a = target.getSymA();
    const llvm::MCSymbolRefExpr* b = target.getSymB();
    if (b && b->getKind() != llvm::MCSymbolRefExpr::VK_None) {
      ctx_.reportError(f.getLoc(), "unsupported subtraction of qualified symbol");
      return true;
    }
    // With a layout, the difference of two labels is a constant.
    if (a && b && a->getKind() == llvm::MCSymbolRefExpr::VK_None && defined(a) && defined(b)) {
      target = llvm::MCValue::get(nullptr, nullptr,
                                  target.getConstant() + int64_t(offset(defined(a)->at)) - int64_t(offset(defined(b)->at)),
                                  target.getRefKind());
      a = b = nullptr;
    }
    const unsigned flags = backend_.getFixupKindInfo(f.getKind()).Flags;
    if (flags & llvm::MCFixupKindInfo::FKF_IsTarget)
      throw Error("LLVM " + t_.triple().str(), "a target-specific fixup in JIT code");
    const bool pc_relative = flags & llvm::MCFixupKindInfo::FKF_IsPCRel;
    bool resolved = pc_relative ? a && !b && a->getKind() == llvm::MCSymbolRefExpr::VK_None && defined(a)
                                : target.isAbsolute();
    value = uint64_t(target.getConstant());
    if (defined(a)) value += offset(defined(a)->at);
    if (defined(b)) value -= offset(defined(b)->at);
    if (pc_relative) value -= (flags & llvm::MCFixupKindInfo::FKF_IsAlignedDownTo32Bits) ? at & ~uint64_t(3) : at;
    if (resolved && backend_.shouldForceRelocation(asm_, f, target, &t_.sti())) {
      resolved = false;
      forced = true;
    }
    return resolved;
  }

  const McTarget& t_;
  llvm::MCContext ctx_;
  llvm::MCAssembler asm_;  // for the backend hooks; it holds no fragments
  llvm::MCAsmBackend& backend_;
  llvm::MCCodeEmitter& encoder_;
  size_t symbols_made_ = 0;
  std::vector<Label> labels_;
  std::vector<Item> items_;
  std::vector<Relaxable> relaxable_;
  std::vector<Fixup> fixups_;
  llvm::SmallVector<char, 0> code_;
  llvm::SmallVector<llvm::MCFixup, 4> scratch_;
  unsigned relocations_ = 0;
};

}  // namespace

struct Emitter::State {
  const McTarget* target = nullptr;
  // Asm and Object: an MC streamer.
  std::unique_ptr<llvm::MCContext> ctx;
  std::unique_ptr<llvm::MCObjectFileInfo> mofi;
  llvm::SmallVector<char, 0> buffer;
  std::unique_ptr<llvm::raw_svector_ostream> os;
  std::unique_ptr<llvm::MCStreamer> streamer;
  llvm::MCSection* text = nullptr;
  llvm::MCSymbol* open_global = nullptr;  // the global function being emitted
  // Bytes: the JIT assembler, and where the image's offsets are.
  std::unique_ptr<JitAssembler> jit;
  std::vector<std::pair<uint32_t, JitAssembler::Place>> origins;
  std::vector<JitAssembler::Place> functions;
  std::vector<std::pair<std::string, JitAssembler::Place>> symbols;

  // Back to a fresh Bytes state, for the next compile on this thread.
  void reset_bytes() {
    jit->reset();
    origins.clear();
    functions.clear();
    symbols.clear();
  }
};

namespace {

// OutputKind::Bytes machinery kept between compiles on one thread, so a
// compile does not rebuild an MCContext, asm backend and code emitter each
// time (one JIT compile is a few microseconds of work; those objects cost
// more than that to create). Each Emitter takes a State for its target and
// gives it back, reset, when it is destroyed; several Emitters may be alive
// on one thread (a relocator building two pieces of code) and each gets its
// own. Nothing is shared between threads.
class ReusePool {
 public:
  static ReusePool& this_thread() {
    thread_local ReusePool pool;
    return pool;
  }

  std::unique_ptr<Emitter::State> take(const McTarget& t) {
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if ((*it)->target != &t) continue;
      std::unique_ptr<Emitter::State> s = std::move(*it);
      free_.erase(it);
      return s;
    }
    auto s = std::make_unique<Emitter::State>();
    s->target = &t;
    s->jit = std::make_unique<JitAssembler>(t);
    return s;
  }

  void give(std::unique_ptr<Emitter::State> s) {
    s->reset_bytes();
    if (free_.size() < kMaxKept) free_.push_back(std::move(s));
  }

 private:
  static constexpr size_t kMaxKept = 8;  // a few per target
  std::vector<std::unique_ptr<Emitter::State>> free_;
};

}  // namespace

Emitter::Emitter(const McTarget& t, OutputKind kind, bool record_origins)
    : target_(t), kind_(kind), record_origins_(record_origins) {
  if (kind == OutputKind::Bytes) {
    s_ = ReusePool::this_thread().take(t);
    return;
  }
  s_ = std::make_unique<State>();
  s_->target = &t;
  const llvm::Target& T = t.target();
  s_->ctx = std::make_unique<llvm::MCContext>(t.triple(), &t.mai(), &t.mri(), &t.sti(), nullptr,
                                              &t.options());
  s_->mofi.reset(T.createMCObjectFileInfo(*s_->ctx, /*PIC=*/false));
  s_->ctx->setObjectFileInfo(s_->mofi.get());
  s_->os = std::make_unique<llvm::raw_svector_ostream>(s_->buffer);
  if (kind == OutputKind::Asm) {
    // The asm streamer takes ownership of the printer.
    s_->streamer.reset(T.createAsmStreamer(
        *s_->ctx, std::make_unique<llvm::formatted_raw_ostream>(*s_->os),
        T.createMCInstPrinter(t.triple(), 0, t.mai(), t.mii(), t.mri()), nullptr, nullptr));
  } else {
    auto* backend = T.createMCAsmBackend(t.sti(), t.mri(), t.options());
    auto writer = backend->createObjectWriter(*s_->os);
    s_->streamer.reset(T.createMCObjectStreamer(
        t.triple(), *s_->ctx, std::unique_ptr<llvm::MCAsmBackend>(backend), std::move(writer),
        std::unique_ptr<llvm::MCCodeEmitter>(T.createMCCodeEmitter(t.mii(), *s_->ctx)), t.sti()));
  }
  s_->streamer->initSections(false, t.sti());
  s_->text = s_->mofi->getTextSection();
  s_->streamer->switchSection(s_->text);
}

Emitter::~Emitter() {
  if (kind_ == OutputKind::Bytes && s_) ReusePool::this_thread().give(std::move(s_));
}

llvm::MCContext& Emitter::ctx() { return s_->jit ? s_->jit->ctx() : *s_->ctx; }

void Emitter::emit(const llvm::MCInst& inst) {
  if (kind_ == OutputKind::Bytes) return s_->jit->emit(inst);
  s_->streamer->emitInstruction(inst, target_.sti());
}

llvm::MCSymbol* Emitter::new_label() {
  return kind_ == OutputKind::Bytes ? s_->jit->new_label() : s_->ctx->createTempSymbol();
}

void Emitter::bind(llvm::MCSymbol* label) {
  if (kind_ == OutputKind::Bytes) return s_->jit->bind(label);
  s_->streamer->emitLabel(label);
}

void Emitter::align_code(unsigned align, unsigned max_skip) {
  if (kind_ == OutputKind::Bytes) return s_->jit->align(align, max_skip);
  s_->streamer->emitCodeAlignment(llvm::Align(align), &target_.sti(), max_skip);
}

const llvm::MCExpr* Emitter::ref(const llvm::MCSymbol* sym) { return llvm::MCSymbolRefExpr::create(sym, ctx()); }

llvm::MCSymbol* Emitter::named_symbol(const std::string& name) {
  return kind_ == OutputKind::Bytes ? s_->jit->named(name) : s_->ctx->getOrCreateSymbol(name);
}

void Emitter::end_function() {
  if (!s_->open_global || kind_ != OutputKind::Object) return;
  llvm::MCSymbol* end = s_->ctx->createTempSymbol();
  s_->streamer->emitLabel(end);
  s_->streamer->emitELFSize(s_->open_global, llvm::MCBinaryExpr::createSub(ref(end), ref(s_->open_global), *s_->ctx));
  s_->open_global = nullptr;
}

void Emitter::begin_function(llvm::MCSymbol* sym, bool global, unsigned align) {
  if (kind_ == OutputKind::Bytes) {
    s_->jit->align(align);
    s_->jit->bind(sym);
    s_->functions.push_back(s_->jit->here());
    return;
  }
  end_function();
  s_->streamer->emitCodeAlignment(llvm::Align(align), &target_.sti());
  if (global) {
    s_->streamer->emitSymbolAttribute(sym, llvm::MCSA_Global);
    s_->streamer->emitSymbolAttribute(sym, llvm::MCSA_ELF_TypeFunction);
    s_->open_global = sym;
  }
  s_->streamer->emitLabel(sym);
}

void Emitter::mark_origin(uint32_t insn) {
  if (kind_ == OutputKind::Asm) {
    s_->streamer->emitRawComment(insn == kOriginPrologue   ? llvm::Twine(" prologue")
                                 : insn == kOriginExitStub ? llvm::Twine(" program exit")
                                                            : " bpf " + llvm::Twine(insn));
    return;
  }
  if (record_origins_ && kind_ == OutputKind::Bytes) s_->origins.emplace_back(insn, s_->jit->here());
}

void Emitter::mark_symbol(std::string_view name) {
  if (kind_ == OutputKind::Bytes) s_->symbols.emplace_back(std::string(name), s_->jit->here());
}

std::optional<uint64_t> CodeImage::symbol(std::string_view name) const {
  for (const auto& [n, offset] : symbols)
    if (n == name) return offset;
  return std::nullopt;
}

void Emitter::comment(const std::string& text) {
  if (kind_ == OutputKind::Asm) s_->streamer->emitRawComment(text);
}

void Emitter::bytes(const uint8_t* data, size_t size) {
  if (kind_ == OutputKind::Bytes) return s_->jit->bytes(data, size);
  s_->streamer->emitBytes(llvm::StringRef(reinterpret_cast<const char*>(data), size));
}

void Emitter::value(const llvm::MCExpr* expr, unsigned size) {
  if (kind_ == OutputKind::Bytes) return s_->jit->value(expr, size);
  s_->streamer->emitValue(expr, size);
}

void Emitter::reloc_value(const llvm::MCExpr* expr, unsigned size, const char* relocation) {
  if (kind_ == OutputKind::Bytes) return s_->jit->reloc(size, relocation);
  llvm::MCSymbol* at = new_label();
  bind(at);
  if (auto err = s_->streamer->emitRelocDirective(*ref(at), relocation, expr, llvm::SMLoc(), target_.sti()))
    throw Error(std::string("LLVM .reloc ") + relocation, err->second);
  s_->streamer->emitIntValue(0, size);  // data (a mapping symbol for disassemblers)
}

void Emitter::u64(uint64_t v) {
  if (kind_ == OutputKind::Bytes) return s_->jit->int_value(v, 8);
  s_->streamer->emitIntValue(v, 8);
}

void Emitter::data_object(const std::string& name, std::span<const uint8_t> initial, size_t size,
                          DataSection where) {
  if (initial.size() > size) throw Error("data object " + name, "initial bytes exceed its size");
  if (!s_->mofi) throw Error("data object " + name, "data objects need Asm or Object output");
  end_function();
  llvm::MCSection* section = where == DataSection::Data       ? s_->mofi->getDataSection()
                             : where == DataSection::ReadOnly ? s_->mofi->getReadOnlySection()
                                                              : s_->mofi->getBSSSection();
  auto& st = *s_->streamer;
  st.switchSection(section);
  st.emitValueToAlignment(llvm::Align(8));
  llvm::MCSymbol* sym = named_symbol(name);
  st.emitSymbolAttribute(sym, llvm::MCSA_Global);
  st.emitSymbolAttribute(sym, llvm::MCSA_ELF_TypeObject);
  st.emitLabel(sym);
  if (where != DataSection::Zero) bytes(initial.data(), initial.size());
  if (size > (where == DataSection::Zero ? 0 : initial.size()))
    st.emitZeros(size - (where == DataSection::Zero ? 0 : initial.size()));
  st.emitELFSize(sym, llvm::MCConstantExpr::create(int64_t(size), *s_->ctx));
  st.switchSection(s_->text);
}

// LLVM reports problems such as an out-of-range fixup by printing them
// and carrying on; code produced after one must never be used.
static void check_no_llvm_error(llvm::MCContext& ctx, const McTarget& t) {
  if (ctx.hadError())
    throw Error("LLVM " + t.triple().str(), "the assembler rejected the generated code (its message is printed above)");
}

CodeImage Emitter::finish() {
  CodeImage image;
  if (kind_ != OutputKind::Bytes) {
    end_function();
    // An object says its stack is not executable, or linkers warn (and make it so).
    if (kind_ == OutputKind::Object)
      if (llvm::MCSection* note = target_.mai().getNonexecutableStackSection(*s_->ctx))
        s_->streamer->switchSection(note);
    s_->streamer->finish();
    check_no_llvm_error(*s_->ctx, target_);
    if (kind_ == OutputKind::Asm)
      image.asm_text.assign(s_->buffer.begin(), s_->buffer.end());
    else
      image.object.assign(s_->buffer.begin(), s_->buffer.end());
    return image;
  }
  JitAssembler& jit = *s_->jit;
  const unsigned relocations = jit.finish(image.text);
  check_no_llvm_error(jit.ctx(), target_);
  if (relocations != 0)
    throw Error("LLVM", "JIT code has unresolved relocations (an external symbol was referenced)");
  image.origins.reserve(s_->origins.size());
  for (auto& [insn, at] : s_->origins) image.origins.push_back({insn, jit.offset(at)});
  for (const auto& at : s_->functions) image.function_offsets.push_back(jit.offset(at));
  for (auto& [name, at] : s_->symbols) image.symbols.emplace_back(name, jit.offset(at));
  return image;
}

}  // namespace sb::mc
