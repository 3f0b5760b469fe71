// Conformance assembler syntax -> bytecode. Each line is
//   { label ':' } [ mnemonic [ operand { ',' operand } ] ]   [ '#' comment ]
// The mnemonic (possibly several words: "lock fetch add", "call local") and
// its operand kinds come from the shared table in frontend/mnemonics.h; rows
// with the same name ("call 5" / "call %r2") are told apart by operand shape.
// Labels are resolved after the last line.
#include "frontend/assembler.h"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include <fmt/format.h>

#include "frontend/decoder.h"
#include "frontend/mnemonics.h"
#include "ir/diag.h"

namespace sb::bpf {

namespace {

constexpr std::string_view kRawDirective = ".raw";

struct Token {
  enum Kind { Word, Reg, Number, Punct } kind;
  std::string_view text;
};

// A number as written: sign and magnitude, range-checked per field later.
struct Number {
  bool negative = false;
  uint64_t magnitude = 0;

  // Immediates: [-2^(bits-1), 2^bits), so 0xfffffffd fits 32 bits as -3.
  bool fits_imm(unsigned bits) const {
    if (negative) return magnitude <= uint64_t(1) << (bits - 1);
    return bits >= 64 || magnitude < uint64_t(1) << bits;
  }
  // Offsets and relative targets: [-2^(bits-1), 2^(bits-1)).
  bool fits_signed(unsigned bits) const {
    return negative ? magnitude <= uint64_t(1) << (bits - 1) : magnitude < uint64_t(1) << (bits - 1);
  }
  int64_t value() const { return int64_t(negative ? uint64_t(0) - magnitude : magnitude); }
};

// One operand's syntax.
struct Parsed {
  enum Kind { Reg, Num, Label, Mem } kind;
  std::string_view text;  // the whole operand, for messages
  uint8_t reg = 0;        // Reg, Mem
  Number num;             // Num, Mem (offset)
};

bool is_word_start(char c) { return std::isalpha(uint8_t(c)) || c == '_' || c == '.'; }
bool is_word_char(char c) { return std::isalnum(uint8_t(c)) || c == '_' || c == '.'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool names_row(std::string_view name) {
  for (const Mnemonic& m : kMnemonics)
    if (m.name == name) return true;
  return false;
}

// Whether some multi-word mnemonic starts with `word` ("lock", "call").
bool starts_long_name(std::string_view word) {
  for (const Mnemonic& m : kMnemonics)
    if (m.name.size() > word.size() && m.name.starts_with(word) && m.name[word.size()] == ' ')
      return true;
  return false;
}

class Assembler {
 public:
  Assembler(std::string name, size_t first_line) : name_(std::move(name)), first_line_(first_line) {}

  Program run(std::string_view source) {
    size_t index = 0;
    while (!source.empty()) {
      size_t eol = source.find('\n');
      std::string_view line = source.substr(0, eol);
      source = eol == std::string_view::npos ? std::string_view{} : source.substr(eol + 1);
      line_ = first_line_ + index++;
      if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
      assemble_line(tokenize(line));
    }
    resolve_labels();
    return Program{name_, std::move(insns_)};
  }

 private:
  struct Fixup {
    size_t slot;
    std::string label;
    Operand kind;  // OffTarget or ImmTarget
    size_t line;
  };

  [[noreturn]] void fail(const std::string& what) const { fail_at(line_, what); }
  [[noreturn]] void fail_at(size_t line, const std::string& what) const {
    throw Error(fmt::format("{}: line {}", name_, line), what);
  }

  std::vector<Token> tokenize(std::string_view line) const {
    std::vector<Token> tokens;
    size_t i = 0;
    auto take = [&](Token::Kind kind, size_t start) {
      tokens.push_back({kind, line.substr(start, i - start)});
    };
    while (i < line.size()) {
      char c = line[i];
      size_t start = i;
      if (std::isspace(uint8_t(c))) {
        ++i;
      } else if (c == '%') {
        for (++i; i < line.size() && is_word_char(line[i]); ++i) {}
        take(Token::Reg, start);
      } else if (is_digit(c) || ((c == '+' || c == '-') && i + 1 < line.size() && is_digit(line[i + 1]))) {
        for (++i; i < line.size() && is_word_char(line[i]); ++i) {}
        take(Token::Number, start);
      } else if (is_word_start(c)) {
        for (++i; i < line.size() && is_word_char(line[i]); ++i) {}
        take(Token::Word, start);
      } else if (std::string_view("[],:+-").find(c) != std::string_view::npos) {
        ++i;
        take(Token::Punct, start);
      } else {
        fail(std::isprint(uint8_t(c)) ? fmt::format("unexpected character '{}'", c)
                                      : fmt::format("unexpected character {:#04x}", uint8_t(c)));
      }
    }
    return tokens;
  }

  Number parse_number(std::string_view text) const {
    Number n;
    std::string_view digits = text;
    if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
      n.negative = digits[0] == '-';
      digits.remove_prefix(1);
    }
    int base = 10;
    if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
      base = 16;
      digits.remove_prefix(2);
    }
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n.magnitude, base);
    if (ec == std::errc::result_out_of_range) fail(fmt::format("number '{}' out of range", text));
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty())
      fail(fmt::format("invalid number '{}'", text));
    return n;
  }

  uint8_t parse_register(std::string_view text) const {
    unsigned r = 0;
    if (text.size() > 2 && text.starts_with("%r")) {
      auto [end, ec] = std::from_chars(text.data() + 2, text.data() + text.size(), r);
      // %r0..%r15 are encodable; the validator rejects r11..r15.
      if (ec == std::errc() && end == text.data() + text.size() && r <= 15) return uint8_t(r);
    }
    fail(fmt::format("invalid register '{}'", text));
  }

  // One comma-separated operand: %rN | number | label | [%rN] | [%rN+off].
  Parsed parse_operand(std::span<const Token> t) const {
    std::string_view text(t.front().text.data(),
                          size_t(t.back().text.data() + t.back().text.size() - t.front().text.data()));
    auto is = [&](size_t k, std::string_view punct) {
      return k < t.size() && t[k].kind == Token::Punct && t[k].text == punct;
    };
    if (t.size() == 1 && t[0].kind == Token::Reg) return {Parsed::Reg, text, parse_register(t[0].text), {}};
    if (t.size() == 1 && t[0].kind == Token::Number) return {Parsed::Num, text, 0, parse_number(t[0].text)};
    if (t.size() == 1 && t[0].kind == Token::Word) return {Parsed::Label, text, 0, {}};
    if (is(0, "[") && t.size() >= 3 && t[1].kind == Token::Reg && is(t.size() - 1, "]")) {
      Parsed mem{Parsed::Mem, text, parse_register(t[1].text), {}};
      std::span<const Token> rest = t.subspan(2, t.size() - 3);  // between the register and ']'
      if (rest.empty()) return mem;
      if (rest.size() == 1 && rest[0].kind == Token::Number && (rest[0].text[0] == '+' || rest[0].text[0] == '-')) {
        mem.num = parse_number(rest[0].text);
        return mem;
      }
      if (rest.size() == 2 && (is(2, "+") || is(2, "-")) && rest[1].kind == Token::Number) {
        mem.num = parse_number(rest[1].text);
        if (rest[0].text == "-") mem.num.negative = !mem.num.negative;
        return mem;
      }
    }
    fail(fmt::format("invalid operand '{}'", text));
  }

  // Fills `out` from `ops` for row `m`; returns the first mismatch, if any.
  std::optional<std::string> convert(const Mnemonic& m, const std::vector<Parsed>& ops,
                                     OperandValues& out, std::optional<Fixup>& fixup) const {
    for (size_t k = 0; k < ops.size(); ++k) {
      const Parsed& o = ops[k];
      OperandValue& v = out[k];
      switch (m.operands[k]) {
        case Operand::None:
          break;
        case Operand::Dst:
        case Operand::Src:
          if (o.kind != Parsed::Reg) return fmt::format("expected a register, got '{}'", o.text);
          v = {true, o.reg, 0};
          break;
        case Operand::SrcOrImm:
          if (o.kind == Parsed::Reg) {
            v = {true, o.reg, 0};
            break;
          }
          [[fallthrough]];
        case Operand::Imm:
        case Operand::Imm64: {
          unsigned bits = m.operands[k] == Operand::Imm64 ? 64 : 32;
          if (o.kind != Parsed::Num)
            return fmt::format("expected {}, got '{}'",
                               m.operands[k] == Operand::SrcOrImm ? "a register or an immediate" : "an immediate",
                               o.text);
          if (!o.num.fits_imm(bits)) return fmt::format("immediate '{}' does not fit in {} bits", o.text, bits);
          v = {false, 0, o.num.value()};
          break;
        }
        case Operand::DstMem:
        case Operand::SrcMem:
          if (o.kind != Parsed::Mem) return fmt::format("expected a memory operand [%rN+offset], got '{}'", o.text);
          if (!o.num.fits_signed(16)) return fmt::format("offset in '{}' does not fit in 16 bits", o.text);
          v = {true, o.reg, o.num.value()};
          break;
        case Operand::OffTarget:
        case Operand::ImmTarget: {
          unsigned bits = m.operands[k] == Operand::OffTarget ? 16 : 32;
          if (o.kind == Parsed::Label) {
            fixup = Fixup{insns_.size(), std::string(o.text), m.operands[k], line_};
          } else if (o.kind == Parsed::Num) {
            if (!o.num.fits_signed(bits)) return fmt::format("jump offset '{}' does not fit in {} bits", o.text, bits);
            v = {false, 0, o.num.value()};
          } else {
            return fmt::format("expected a label or +N/-N offset, got '{}'", o.text);
          }
          break;
        }
      }
    }
    return std::nullopt;
  }

  void define_label(std::string_view label) {
    auto [it, inserted] = labels_.try_emplace(std::string(label), Label{insns_.size(), line_});
    if (!inserted) fail(fmt::format("duplicate label '{}' (first defined at line {})", label, it->second.line));
  }

  void assemble_line(const std::vector<Token>& t) {
    size_t pos = 0;
    while (pos + 1 < t.size() && t[pos].kind == Token::Word && t[pos + 1].kind == Token::Punct &&
           t[pos + 1].text == ":") {
      define_label(t[pos].text);
      pos += 2;
    }
    if (pos == t.size()) return;
    if (t[pos].kind != Token::Word) fail(fmt::format("expected a mnemonic, got '{}'", t[pos].text));

    // The longest run of leading words that names a row.
    std::string name, words;
    size_t end = pos;
    for (size_t k = pos; k < t.size() && t[k].kind == Token::Word; ++k) {
      words += (k > pos ? " " : "") + std::string(t[k].text);
      if (names_row(words) || words == kRawDirective) {
        name = words;
        end = k + 1;
      }
    }
    if (name.empty())
      fail(fmt::format("unknown mnemonic '{}'", starts_long_name(t[pos].text) ? words : t[pos].text));

    std::vector<Parsed> ops;
    for (size_t k = end; k < t.size();) {
      size_t comma = k;
      while (comma < t.size() && !(t[comma].kind == Token::Punct && t[comma].text == ",")) ++comma;
      if (comma == k) fail(fmt::format("missing operand for '{}'", name));
      ops.push_back(parse_operand(std::span(t).subspan(k, comma - k)));
      k = comma + 1;
      if (comma + 1 == t.size()) fail(fmt::format("missing operand after ',' for '{}'", name));
    }

    if (name == kRawDirective) return emit_raw(ops);
    emit_row(name, ops);
  }

  // ".raw WORD": one slot given as its 64-bit word.
  void emit_raw(const std::vector<Parsed>& ops) {
    if (ops.size() != 1 || ops[0].kind != Parsed::Num)
      fail("'.raw' takes one 64-bit instruction word");
    if (!ops[0].num.fits_imm(64)) fail(fmt::format("'{}' does not fit in 64 bits", ops[0].text));
    insns_.push_back(from_word(uint64_t(ops[0].num.value())));
  }

  void emit_row(const std::string& name, const std::vector<Parsed>& ops) {
    std::optional<std::string> first_error;
    size_t arity = 0;
    for (const Mnemonic& m : kMnemonics) {
      if (m.name != name) continue;
      arity = m.arity();
      if (arity != ops.size()) continue;
      OperandValues values{};
      std::optional<Fixup> fixup;
      if (auto error = convert(m, ops, values, fixup)) {
        if (!first_error) first_error = std::move(error);
        continue;
      }
      if (fixup) fixups_.push_back(std::move(*fixup));
      if (m.opcode == make_opcode(JMP, EXIT, K) && !first_exit_) first_exit_ = insns_.size();
      Encoding e = encode_row(m, values);
      insns_.insert(insns_.end(), e.slots.begin(), e.slots.begin() + e.count);
      return;
    }
    if (first_error) fail(*first_error);
    fail(fmt::format("'{}' takes {} operand{}, got {}", name, arity, arity == 1 ? "" : "s", ops.size()));
  }

  void resolve_labels() {
    for (const Fixup& f : fixups_) {
      std::optional<size_t> target;
      if (auto it = labels_.find(f.label); it != labels_.end()) target = it->second.slot;
      else if (f.label == "exit") target = first_exit_;  // the suite's implicit label
      if (!target) fail_at(f.line, fmt::format("undefined label '{}'", f.label));
      int64_t rel = int64_t(*target) - int64_t(f.slot) - 1;
      Insn& insn = insns_[f.slot];
      if (f.kind == Operand::OffTarget) {
        if (rel < INT16_MIN || rel > INT16_MAX)
          fail_at(f.line, fmt::format("label '{}' is out of range of a 16-bit jump offset", f.label));
        insn.off = int16_t(rel);
      } else {
        insn.imm = int32_t(rel);
      }
    }
  }

  struct Label {
    size_t slot;
    size_t line;
  };

  std::string name_;
  size_t first_line_;
  size_t line_ = 0;
  std::vector<Insn> insns_;
  std::map<std::string, Label, std::less<>> labels_;
  std::vector<Fixup> fixups_;
  std::optional<size_t> first_exit_;
};

}  // namespace

Program assemble(std::string_view source, std::string name) {
  return assemble(source, std::move(name), 1);
}

Program assemble(std::string_view source, std::string name, size_t first_line) {
  return Assembler(std::move(name), first_line).run(source);
}

}  // namespace sb::bpf
