#include "backends/mc/emitter.h"

#include <llvm/MC/MCAsmBackend.h>
#include <llvm/MC/MCAsmInfo.h>
#include <llvm/MC/MCAssembler.h>
#include <llvm/MC/MCCodeEmitter.h>
#include <llvm/MC/MCContext.h>
#include <llvm/MC/MCInstPrinter.h>
#include <llvm/MC/MCObjectFileInfo.h>
#include <llvm/MC/MCObjectStreamer.h>
#include <llvm/MC/MCObjectWriter.h>
#include <llvm/MC/MCStreamer.h>
#include <llvm/MC/MCSymbol.h>
#include <llvm/Object/ObjectFile.h>
#include <llvm/Support/FormattedStream.h>
#include <llvm/Support/raw_ostream.h>

#include "ir/diag.h"

namespace sb::mc {

struct Emitter::State {
  std::unique_ptr<llvm::MCContext> ctx;
  std::unique_ptr<llvm::MCObjectFileInfo> mofi;
  llvm::SmallVector<char, 0> buffer;
  std::unique_ptr<llvm::raw_svector_ostream> os;
  std::unique_ptr<llvm::MCStreamer> streamer;
  std::vector<std::pair<uint32_t, llvm::MCSymbol*>> origins;
  std::vector<llvm::MCSymbol*> functions;
  llvm::MCSymbol* open_global = nullptr;  // the global function being emitted
  std::vector<std::pair<std::string, llvm::MCSymbol*>> symbols;
};

Emitter::Emitter(const McTarget& t, OutputKind kind, bool record_origins)
    : target_(t), kind_(kind), record_origins_(record_origins), s_(std::make_unique<State>()) {
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
  s_->streamer->switchSection(s_->mofi->getTextSection());
}

Emitter::~Emitter() = default;

llvm::MCContext& Emitter::ctx() { return *s_->ctx; }

void Emitter::emit(const llvm::MCInst& inst) { s_->streamer->emitInstruction(inst, target_.sti()); }

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
  st.switchSection(s_->mofi->getTextSection());
}

CodeImage Emitter::finish() {
  CodeImage image;
  end_function();
  // An object says its stack is not executable, or linkers warn (and make it so).
  if (kind_ == OutputKind::Object)
    if (llvm::MCSection* note = target_.mai().getNonexecutableStackSection(*s_->ctx)) s_->streamer->switchSection(note);
  s_->streamer->finish();
  // LLVM reports problems such as an out-of-range fixup by printing them
  // and carrying on; code produced after one must never be used.
  if (s_->ctx->hadError())
    throw Error("LLVM " + target_.triple().str(),
                "the assembler rejected the generated code (its message is printed above)");
  if (kind_ == OutputKind::Asm) {
    image.asm_text.assign(s_->buffer.begin(), s_->buffer.end());
    return image;
  }
  if (kind_ == OutputKind::Object) {
    image.object.assign(s_->buffer.begin(), s_->buffer.end());
    return image;
  }
  auto& assembler = static_cast<llvm::MCObjectStreamer&>(*s_->streamer).getAssembler();
  for (auto& [insn, sym] : s_->origins) image.origins.push_back({insn, assembler.getSymbolOffset(*sym)});
  for (auto* sym : s_->functions) image.function_offsets.push_back(assembler.getSymbolOffset(*sym));
  for (auto& [name, sym] : s_->symbols) image.symbols.emplace_back(name, assembler.getSymbolOffset(*sym));

  llvm::StringRef data(s_->buffer.data(), s_->buffer.size());
  auto obj = llvm::object::ObjectFile::createObjectFile(llvm::MemoryBufferRef(data, "jit"));
  if (!obj) throw Error("LLVM", "cannot read the object it just wrote: " + llvm::toString(obj.takeError()));
  for (const auto& section : (*obj)->sections()) {
    auto name = section.getName();
    if (!name || *name != ".text") continue;
    if (section.relocation_begin() != section.relocation_end())
      throw Error("LLVM", "JIT code has unresolved relocations (an external symbol was referenced)");
    auto contents = section.getContents();
    if (!contents) throw Error("LLVM", "cannot read .text");
    image.text.assign(contents->begin(), contents->end());
  }
  return image;
}

}  // namespace sb::mc
