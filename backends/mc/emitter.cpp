#include "backends/mc/emitter.h"

#include <algorithm>

#include <llvm/BinaryFormat/ELF.h>
#include <llvm/MC/MCAsmBackend.h>
#include <llvm/MC/MCAsmInfo.h>
#include <llvm/MC/MCAssembler.h>
#include <llvm/MC/MCCodeEmitter.h>
#include <llvm/MC/MCContext.h>
#include <llvm/MC/MCInstPrinter.h>
#include <llvm/MC/MCObjectFileInfo.h>
#include <llvm/MC/MCObjectStreamer.h>
#include <llvm/MC/MCObjectWriter.h>
#include <llvm/MC/MCSectionELF.h>
#include <llvm/MC/MCStreamer.h>
#include <llvm/MC/MCSymbol.h>
#include <llvm/MC/MCValue.h>
#include <llvm/Support/FormattedStream.h>
#include <llvm/Support/raw_ostream.h>

#include "ir/diag.h"

namespace sb::mc {

namespace {

// The object writer behind OutputKind::Bytes: the code is read from the
// assembler's layout (MCAssembler::writeSectionData), so no object file is
// written; a fixup the assembler could not resolve itself would become a
// relocation, which JIT code cannot have, so they are only counted.
class JitWriter final : public llvm::MCObjectWriter {
 public:
  unsigned relocations = 0;
  void reset() override {
    relocations = 0;
    MCObjectWriter::reset();
  }
  void recordRelocation(llvm::MCAssembler&, const llvm::MCFragment*, const llvm::MCFixup&, llvm::MCValue,
                        uint64_t&) override {
    ++relocations;
  }
  uint64_t writeObject(llvm::MCAssembler&) override { return 0; }
};

}  // namespace

struct Emitter::State {
  const McTarget* target = nullptr;
  std::unique_ptr<llvm::MCContext> ctx;
  std::unique_ptr<llvm::MCObjectFileInfo> mofi;  // Asm and Object only
  llvm::SmallVector<char, 0> buffer;
  std::unique_ptr<llvm::raw_svector_ostream> os;
  std::unique_ptr<llvm::MCStreamer> streamer;
  llvm::MCSection* text = nullptr;
  JitWriter* jit_writer = nullptr;  // Bytes: owned by the streamer's assembler
  std::vector<std::pair<uint32_t, llvm::MCSymbol*>> origins;
  std::vector<llvm::MCSymbol*> functions;
  llvm::MCSymbol* open_global = nullptr;  // the global function being emitted
  std::vector<std::pair<std::string, llvm::MCSymbol*>> symbols;
  llvm::SmallVector<llvm::MCFixup, 4> fixups;  // Bytes: scratch of encode()

  // Bytes: a context with one .text section and no object-file sections
  // (creating MCObjectFileInfo's hundred sections was most of a compile's
  // fixed cost), an object streamer over the JitWriter.
  static std::unique_ptr<State> for_bytes(const McTarget& t) {
    auto s = std::make_unique<State>();
    s->target = &t;
    const llvm::Target& T = t.target();
    s->ctx = std::make_unique<llvm::MCContext>(t.triple(), &t.mai(), &t.mri(), &t.sti(), nullptr, &t.options());
    auto writer = std::make_unique<JitWriter>();
    s->jit_writer = writer.get();
    s->streamer.reset(T.createMCObjectStreamer(
        t.triple(), *s->ctx, std::unique_ptr<llvm::MCAsmBackend>(T.createMCAsmBackend(t.sti(), t.mri(), t.options())),
        std::move(writer), std::unique_ptr<llvm::MCCodeEmitter>(T.createMCCodeEmitter(t.mii(), *s->ctx)), t.sti()));
    return s;
  }
  // Bytes: ready for a compile (fresh, or reset by ReusePool::give).
  void begin_bytes() {
    text = ctx->getELFSection(".text", llvm::ELF::SHT_PROGBITS, llvm::ELF::SHF_ALLOC | llvm::ELF::SHF_EXECINSTR);
    streamer->switchSection(text);
  }
  // Bytes, an instruction without symbolic operands (most of them): it
  // can need no relaxation, line entry or mapping symbol, so it is encoded
  // by the target's MCCodeEmitter straight into the current data fragment,
  // as MCELFStreamer::emitInstToData would after the streamer's checks.
  void encode(const llvm::MCInst& inst) {
    auto& os = static_cast<llvm::MCObjectStreamer&>(*streamer);
    const llvm::MCSubtargetInfo& sti = target->sti();
    llvm::MCDataFragment* df = os.getOrCreateDataFragment(&sti);
    llvm::SmallVectorImpl<char>& code = df->getContents();
    const uint32_t at = uint32_t(code.size());
    fixups.clear();
    os.getAssembler().getEmitter().encodeInstruction(inst, code, fixups, sti);
    for (llvm::MCFixup& f : fixups) {  // offsets are from the instruction's start
      f.setOffset(f.getOffset() + at);
      df->getFixups().push_back(f);
    }
    df->setHasInstructions(sti);
    text->setHasInstructions(true);
  }
  // Back to the state for_bytes() left: no sections, symbols or fragments.
  void reset_bytes() {
    streamer->reset();
    ctx->reset();
    text = nullptr;
    origins.clear();
    functions.clear();
    open_global = nullptr;
    symbols.clear();
  }
};

namespace {

// OutputKind::Bytes machinery kept between compiles on one thread, so a
// compile does not rebuild an MCContext, asm backend, code emitter and
// streamer each time (one JIT compile is a few microseconds of work; those
// objects cost more than that to create). Each Emitter takes a State for
// its target and gives it back, reset, when it is destroyed; several
// Emitters may be alive on one thread (a relocator building two pieces of
// code) and each gets its own. Nothing is shared between threads.
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
    return Emitter::State::for_bytes(t);
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
    s_->begin_bytes();
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

llvm::MCContext& Emitter::ctx() { return *s_->ctx; }

void Emitter::emit(const llvm::MCInst& inst) {
  if (kind_ == OutputKind::Bytes &&
      std::none_of(inst.begin(), inst.end(), [](const llvm::MCOperand& o) { return o.isExpr(); }))
    return s_->encode(inst);
  s_->streamer->emitInstruction(inst, target_.sti());
}

llvm::MCSymbol* Emitter::new_label() { return s_->ctx->createTempSymbol(); }

void Emitter::bind(llvm::MCSymbol* label) { s_->streamer->emitLabel(label); }

const llvm::MCExpr* Emitter::ref(const llvm::MCSymbol* sym) {
  return llvm::MCSymbolRefExpr::create(sym, *s_->ctx);
}

llvm::MCSymbol* Emitter::named_symbol(const std::string& name) {
  return s_->ctx->getOrCreateSymbol(name);
}

void Emitter::end_function() {
  if (!s_->open_global || kind_ != OutputKind::Object) return;
  llvm::MCSymbol* end = s_->ctx->createTempSymbol();
  s_->streamer->emitLabel(end);
  s_->streamer->emitELFSize(s_->open_global, llvm::MCBinaryExpr::createSub(ref(end), ref(s_->open_global), *s_->ctx));
  s_->open_global = nullptr;
}

void Emitter::begin_function(llvm::MCSymbol* sym, bool global, unsigned align) {
  end_function();
  s_->streamer->emitCodeAlignment(llvm::Align(align), &target_.sti());
  if (global) {
    s_->streamer->emitSymbolAttribute(sym, llvm::MCSA_Global);
    s_->streamer->emitSymbolAttribute(sym, llvm::MCSA_ELF_TypeFunction);
    s_->open_global = sym;
  }
  s_->streamer->emitLabel(sym);
  s_->functions.push_back(sym);
}

void Emitter::mark_origin(uint32_t insn) {
  if (kind_ == OutputKind::Asm) {
    s_->streamer->emitRawComment(insn == kOriginPrologue   ? llvm::Twine(" prologue")
                                 : insn == kOriginExitStub ? llvm::Twine(" program exit")
                                                            : " bpf " + llvm::Twine(insn));
    return;
  }
  if (!record_origins_) return;
  llvm::MCSymbol* sym = s_->ctx->createTempSymbol();
  s_->streamer->emitLabel(sym);
  s_->origins.emplace_back(insn, sym);
}

void Emitter::mark_symbol(std::string_view name) {
  if (kind_ != OutputKind::Bytes) return;
  llvm::MCSymbol* sym = s_->ctx->createTempSymbol();
  s_->streamer->emitLabel(sym);
  s_->symbols.emplace_back(std::string(name), sym);
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
  s_->streamer->emitBytes(llvm::StringRef(reinterpret_cast<const char*>(data), size));
}

void Emitter::value(const llvm::MCExpr* expr, unsigned size) { s_->streamer->emitValue(expr, size); }

void Emitter::reloc_value(const llvm::MCExpr* expr, unsigned size, const char* relocation) {
  llvm::MCSymbol* at = new_label();
  bind(at);
  if (auto err = s_->streamer->emitRelocDirective(*ref(at), relocation, expr, llvm::SMLoc(), target_.sti()))
    throw Error(std::string("LLVM .reloc ") + relocation, err->second);
  s_->streamer->emitIntValue(0, size);  // data (a mapping symbol for disassemblers)
}

void Emitter::u64(uint64_t v) { s_->streamer->emitIntValue(v, 8); }

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
  end_function();
  if (kind_ != OutputKind::Bytes) {
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
  // Bytes: lay the section out (relaxation, fixups) and copy it from the
  // assembler; there is no object file to write or read back.
  llvm::MCAssembler& assembler = static_cast<llvm::MCObjectStreamer&>(*s_->streamer).getAssembler();
  assembler.layout();
  check_no_llvm_error(*s_->ctx, target_);
  if (s_->jit_writer->relocations != 0)
    throw Error("LLVM", "JIT code has unresolved relocations (an external symbol was referenced)");
  image.origins.reserve(s_->origins.size());
  for (auto& [insn, sym] : s_->origins) image.origins.push_back({insn, assembler.getSymbolOffset(*sym)});
  for (auto* sym : s_->functions) image.function_offsets.push_back(assembler.getSymbolOffset(*sym));
  for (auto& [name, sym] : s_->symbols) image.symbols.emplace_back(name, assembler.getSymbolOffset(*sym));
  s_->buffer.clear();
  llvm::raw_svector_ostream os(s_->buffer);
  assembler.writeSectionData(os, s_->text);
  image.text.assign(s_->buffer.begin(), s_->buffer.end());
  return image;
}

}  // namespace sb::mc
