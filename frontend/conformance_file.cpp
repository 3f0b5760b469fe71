// The bpf_conformance `.data` format: sections introduced by `-- NAME` lines
// (see ../shared/conformance/README.md). The suite skips a file with an
// unknown section; so do we, with the reason.
#include "frontend/conformance_file.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "frontend/assembler.h"
#include "frontend/decoder.h"
#include "ir/diag.h"

namespace sb::bpf {

namespace {

enum class Section { Asm, Raw, Mem, Result, Error, Ignored };

struct SectionName {
  std::string_view name;
  Section section;
};
constexpr SectionName kSections[] = {
    {"asm", Section::Asm},       {"raw", Section::Raw},
    {"mem", Section::Mem},       {"result", Section::Result},
    {"error", Section::Error},   {"c", Section::Ignored},
    {"no register offset", Section::Ignored},  // the suite's note for some runtimes
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(uint8_t(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(uint8_t(s.back()))) s.remove_suffix(1);
  return s;
}

std::string_view strip_comment(std::string_view s) { return s.substr(0, s.find('#')); }

struct Line {
  size_t number;
  std::string_view text;
};

std::string line_location(const std::string& file, size_t line) { return fmt::format("{}: line {}", file, line); }

// "0x1f" (hex) or "31" (decimal) as an unsigned 64-bit value.
std::optional<uint64_t> parse_u64(std::string_view token) {
  int base = 10;
  if (token.size() > 2 && token[0] == '0' && (token[1] == 'x' || token[1] == 'X')) {
    base = 16;
    token.remove_prefix(2);
  }
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), v, base);
  if (token.empty() || ec != std::errc() || end != token.data() + token.size()) return std::nullopt;
  return v;
}

// Calls f(line, token) for each whitespace-separated token outside comments.
template <typename F>
void for_each_token(const std::vector<Line>& lines, F f) {
  for (const Line& l : lines) {
    std::istringstream in{std::string(strip_comment(l.text))};
    for (std::string token; in >> token;) f(l, token);
  }
}

}  // namespace

std::vector<uint8_t> parse_hex_bytes(std::string_view text, const std::string& where) {
  std::vector<uint8_t> bytes;
  std::istringstream in{std::string(text)};
  for (std::string token; in >> token;) {
    if (token.size() % 2 != 0) throw Error(where, fmt::format("odd number of hex digits in '{}'", token));
    for (size_t i = 0; i < token.size(); i += 2) {
      uint8_t byte = 0;
      auto [end, ec] = std::from_chars(token.data() + i, token.data() + i + 2, byte, 16);
      if (ec != std::errc() || end != token.data() + i + 2)
        throw Error(where, fmt::format("invalid hex byte '{}'", token.substr(i, 2)));
      bytes.push_back(byte);
    }
  }
  return bytes;
}

ConformanceTest parse_conformance(std::string_view text, std::string name) {
  ConformanceTest test;
  test.name = std::filesystem::path(name).stem().string();

  // Split into sections; lines before the first one are the file's header.
  std::map<Section, std::vector<Line>> sections;
  std::map<Section, size_t> header_line;
  std::optional<Section> current;
  size_t number = 0;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    ++number;
    if (line.ends_with('\r')) line.remove_suffix(1);

    if (line.starts_with("--")) {
      std::string_view title = trim(line.substr(2));
      const SectionName* known = nullptr;
      for (const SectionName& s : kSections)
        if (s.name == title) known = &s;
      if (!known) {
        test.skipped = true;
        test.skip_reason = fmt::format("unknown section '-- {}' at line {}", title, number);
        return test;
      }
      if (known->section != Section::Ignored && header_line.count(known->section))
        throw Error(line_location(name, number), fmt::format("duplicate section '-- {}'", title));
      header_line[known->section] = number;
      current = known->section;
      sections[known->section];
      continue;
    }
    if (current) {
      sections[*current].push_back({number, line});
    } else if (!trim(strip_comment(line)).empty()) {
      throw Error(line_location(name, number), "text before the first '--' section");
    }
  }

  if (auto it = sections.find(Section::Asm); it != sections.end()) {
    std::string source;
    for (const Line& l : it->second) (source += l.text) += '\n';
    test.asm_program = assemble(source, name, header_line[Section::Asm] + 1);
  }

  if (auto it = sections.find(Section::Raw); it != sections.end()) {
    test.program.name = name;
    for_each_token(it->second, [&](const Line& l, const std::string& token) {
      std::optional<uint64_t> word = parse_u64(token);
      if (!word)
        throw Error(line_location(name, l.number), fmt::format("invalid instruction word '{}'", token));
      test.program.insns.push_back(from_word(*word));
    });
  } else if (test.asm_program) {
    test.program = *test.asm_program;
  }

  if (auto it = sections.find(Section::Mem); it != sections.end()) {
    std::string joined;
    for (const Line& l : it->second) (joined += strip_comment(l.text)) += ' ';
    test.memory = parse_hex_bytes(joined, line_location(name, header_line[Section::Mem]));
    test.has_memory = true;
  }

  if (auto it = sections.find(Section::Result); it != sections.end()) {
    for_each_token(it->second, [&](const Line& l, const std::string& token) {
      std::optional<uint64_t> value = parse_u64(token);
      if (!value) throw Error(line_location(name, l.number), fmt::format("invalid result '{}'", token));
      if (test.result) throw Error(line_location(name, l.number), fmt::format("extra result '{}'", token));
      test.result = value;
    });
    if (!test.result) throw Error(line_location(name, header_line[Section::Result]), "empty result section");
  }

  if (auto it = sections.find(Section::Error); it != sections.end()) {
    std::string message;  // the text as written: '#' is not a comment here
    for (const Line& l : it->second) {
      if (trim(l.text).empty()) continue;
      if (!message.empty()) message += '\n';
      message += trim(l.text);
    }
    test.error = message;
  }

  if (test.program.insns.empty()) {
    test.skipped = true;
    test.skip_reason = "no program (neither '-- asm' nor '-- raw')";
  } else if (!test.result && !test.error) {
    test.skipped = true;
    test.skip_reason = "no '-- result' or '-- error' section";
  }
  return test;
}

ConformanceTest read_conformance_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, std::string("cannot open: ") + std::strerror(errno));
  std::string text(std::istreambuf_iterator<char>(in), {});
  return parse_conformance(text, path);
}

}  // namespace sb::bpf
