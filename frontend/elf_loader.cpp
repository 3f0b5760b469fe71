// BPF ELF objects -> bpf::Program (see elf_loader.h for what is resolved).
//
// Steps, each a method of Loader:
//   open            ELF header checks (class, byte order, e_machine, e_type)
//   read_sections   names, kinds, contents; the symbol table; relocations
//                   (bounds-checked: offset, symbol index)
//   read_maps       legacy `maps`, BTF `.maps` (through Btf below), global
//                   data; each map created through the embedder's MapCreator
//   select          the entry: by section and/or function name
//   link            entry + every .text function it reaches, in order of
//                   discovery; calls re-aimed, lddw pseudo sources resolved
#include "frontend/elf_loader.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <llvm/BinaryFormat/ELF.h>
#include <llvm/Object/ELF.h>
#include <llvm/Support/Error.h>

#include "frontend/decoder.h"
#include "frontend/kconfig.h"
#include "frontend/progtypes/program_type.h"
#include "ir/diag.h"

namespace sb::bpf {

namespace {

using ELFT = llvm::object::ELF64LE;
using Shdr = ELFT::Shdr;

constexpr size_t kInsnBytes = 8;
constexpr uint64_t kMaxDataSection = 64ull << 20;  // a global data section (one map value)
constexpr uint32_t kMapFlagRdonlyProg = 0x80, kMapFlagMmapable = 0x400;  // BPF_F_RDONLY_PROG, BPF_F_MMAPABLE
constexpr uint32_t kMapTypeArray = 2, kMapTypeProgArray = 3, kMapTypeArrayOfMaps = 12, kMapTypeHashOfMaps = 13;

uint32_t read32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint16_t read16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

template <typename T>
T take(llvm::Expected<T> v, const std::string& where) {
  if (!v) throw Error(where, llvm::toString(v.takeError()));
  return std::move(*v);
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// ---------------------------------------------------------------------------
// BTF (include/uapi/linux/btf.h), bounds-checked. Every type is a 12-byte
// header {name_off, info (kind:5 at bit 24, vlen:16), size or type} followed
// by kind-specific data: a fixed part plus vlen entries.

enum BtfKind : uint32_t {
  kBtfInt = 1, kBtfPtr, kBtfArray, kBtfStruct, kBtfUnion, kBtfEnum, kBtfFwd, kBtfTypedef, kBtfVolatile,
  kBtfConst, kBtfRestrict, kBtfFunc, kBtfFuncProto, kBtfVar, kBtfDatasec, kBtfFloat, kBtfDeclTag,
  kBtfTypeTag, kBtfEnum64, kBtfKindCount,
};

struct BtfKindInfo {
  const char* name;
  uint32_t fixed;       // bytes after the header
  uint32_t per_member;  // bytes per vlen entry
  bool modifier;        // names another type of the same meaning (skipped when resolving)
  bool sized;           // the header's third word is the size
};

//                                         name          fixed per  mod    sized
constexpr BtfKindInfo kBtfKinds[kBtfKindCount] = {
    /* 0 */ {nullptr, 0, 0, false, false},
    /* kBtfInt */ {"int", 4, 0, false, true},
    /* kBtfPtr */ {"ptr", 0, 0, false, false},
    /* kBtfArray */ {"array", 12, 0, false, false},
    /* kBtfStruct */ {"struct", 0, 12, false, true},
    /* kBtfUnion */ {"union", 0, 12, false, true},
    /* kBtfEnum */ {"enum", 0, 8, false, true},
    /* kBtfFwd */ {"fwd", 0, 0, false, false},
    /* kBtfTypedef */ {"typedef", 0, 0, true, false},
    /* kBtfVolatile */ {"volatile", 0, 0, true, false},
    /* kBtfConst */ {"const", 0, 0, true, false},
    /* kBtfRestrict */ {"restrict", 0, 0, true, false},
    /* kBtfFunc */ {"func", 0, 0, false, false},
    /* kBtfFuncProto */ {"func_proto", 0, 8, false, false},
    /* kBtfVar */ {"var", 4, 0, false, false},
    /* kBtfDatasec */ {"datasec", 0, 12, false, true},
    /* kBtfFloat */ {"float", 0, 0, false, true},
    /* kBtfDeclTag */ {"decl_tag", 4, 0, false, false},
    /* kBtfTypeTag */ {"type_tag", 0, 0, true, false},
    /* kBtfEnum64 */ {"enum64", 0, 12, false, true},
};

class Btf {
 public:
  struct Type {
    uint32_t name_off, info, size_or_type;
    const uint8_t* extra;  // kind-specific data, bounds already checked
    uint32_t kind() const { return (info >> 24) & 0x1f; }
    uint32_t vlen() const { return info & 0xffff; }
  };
  struct Member {
    std::string_view name;
    uint32_t type;
    uint32_t bit_offset;  // without kind_flag's bitfield size (maps have no bitfields)
  };

  Btf(llvm::ArrayRef<uint8_t> data, std::string where) : where_(std::move(where)) { parse(data); }

  const Type& type(uint32_t id) const {
    if (id == 0) fail("type 0 (void) where a type is needed");
    if (id > types_.size()) fail(fmt::format("type id {} out of range ({} types)", id, types_.size()));
    return types_[id - 1];
  }
  const char* kind_name(uint32_t id) const { return kBtfKinds[type(id).kind()].name; }

  std::string_view name(uint32_t off) const {
    if (off >= str_len_) fail(fmt::format("string offset {} out of range ({} bytes)", off, str_len_));
    const void* nul = std::memchr(strs_ + off, 0, str_len_ - off);
    if (!nul) fail(fmt::format("string at offset {} is not terminated", off));
    return {strs_ + off, size_t(static_cast<const char*>(nul) - (strs_ + off))};
  }

  // Follows typedef/const/volatile/restrict/type_tag to the type they name.
  uint32_t resolve(uint32_t id) const {
    for (int depth = 0; depth < kMaxDepth; ++depth) {
      const Type& t = type(id);
      if (!kBtfKinds[t.kind()].modifier) return id;
      id = t.size_or_type;
    }
    fail(fmt::format("type {}: chain of modifiers longer than {} (a cycle?)", id, kMaxDepth));
  }

  uint64_t size_of(uint32_t id, int depth = 0) const {
    if (depth > kMaxDepth) fail(fmt::format("type {}: nested more than {} deep", id, kMaxDepth));
    id = resolve(id);
    const Type& t = type(id);
    if (kBtfKinds[t.kind()].sized) return t.size_or_type;
    if (t.kind() == kBtfPtr) return 8;
    if (t.kind() == kBtfArray) {
      const uint64_t elem = size_of(read32(t.extra), depth + 1);
      const uint64_t n = read32(t.extra + 8);
      if (elem != 0 && n > (uint64_t(1) << 40) / elem) fail(fmt::format("type {}: array too large", id));
      return elem * n;
    }
    fail(fmt::format("type {} ({}) has no size", id, kind_name(id)));
  }

  std::vector<Member> members(uint32_t id) const {
    const Type& t = type(id);
    std::vector<Member> out;
    for (uint32_t i = 0; i < t.vlen(); ++i) {
      const uint8_t* m = t.extra + 12 * i;
      out.push_back({name(read32(m)), read32(m + 4), read32(m + 8) & 0xffffff});
    }
    return out;
  }

  // The type of variable `var` in the DATASEC named `sec`, if any.
  std::optional<uint32_t> var_type(std::string_view sec, std::string_view var) const {
    for (const Type& t : types_) {
      if (t.kind() != kBtfDatasec || name(t.name_off) != sec) continue;
      for (uint32_t i = 0; i < t.vlen(); ++i) {
        const Type& v = type(read32(t.extra + 12 * i));
        if (v.kind() == kBtfVar && name(v.name_off) == var) return v.size_or_type;
      }
    }
    return std::nullopt;
  }

  // The variables of the DATASEC named `sec`: (name, type of the VAR).
  std::vector<std::pair<std::string_view, uint32_t>> datasec_vars(std::string_view sec) const {
    std::vector<std::pair<std::string_view, uint32_t>> out;
    for (const Type& t : types_) {
      if (t.kind() != kBtfDatasec || name(t.name_off) != sec) continue;
      for (uint32_t i = 0; i < t.vlen(); ++i) {
        const Type& v = type(read32(t.extra + 12 * i));
        if (v.kind() == kBtfVar) out.emplace_back(name(v.name_off), v.size_or_type);
      }
    }
    return out;
  }

  // What a __kconfig variable of type `id` holds, as libbpf's find_kcfg_type.
  std::optional<KconfigExtern> kconfig_type(uint32_t id) const {
    id = resolve(id);
    const Type& t = type(id);
    KconfigExtern e;
    const uint64_t size = size_of(id);
    if (size == 0 || size > kMaxKconfigBytes) return std::nullopt;
    e.size = uint32_t(size);
    switch (t.kind()) {
      case kBtfInt: {
        const uint32_t enc = read32(t.extra) >> 24;
        e.is_signed = enc & 1;
        if (enc & 4) {
          if (e.size != 1) return std::nullopt;
          e.type = KconfigType::Bool;
        }
        else if (e.size == 1) e.type = KconfigType::Char;
        else if (e.size == 2 || e.size == 4 || e.size == 8) e.type = KconfigType::Int;
        else return std::nullopt;
        return e;
      }
      case kBtfEnum:
        if (name(t.name_off) != "libbpf_tristate" || e.size != 4) return std::nullopt;
        e.type = KconfigType::Tristate;
        return e;
      case kBtfArray: {
        const uint32_t elem = resolve(read32(t.extra));
        if (type(elem).kind() != kBtfInt || size_of(elem) != 1) return std::nullopt;
        e.type = KconfigType::CharArray;
        return e;
      }
      default:
        return std::nullopt;
    }
  }

  [[noreturn]] void fail(const std::string& what) const { throw Error(where_, what); }

  // The FUNC named `func`, if any.
  const Type* func(std::string_view func) const {
    for (const Type& t : types_)
      if (t.kind() == kBtfFunc && name(t.name_off) == func) return &t;
    return nullptr;
  }
  // The FUNC_PROTO of the FUNC named `func`, if any.
  std::optional<uint32_t> func_proto(std::string_view func) const {
    if (const Type* t = this->func(func)) return t->size_or_type;
    return std::nullopt;
  }
  static constexpr uint32_t kFuncGlobal = 1;  // BTF_FUNC_GLOBAL, a FUNC's vlen
  // The prototype of FUNC `fn` as the verifier resolves a global
  // function's (bpf::GlobalFunc; the kernel's btf_prepare_func_args).
  GlobalFunc global_func(const Type& fn, std::string func_name, size_t start) const {
    GlobalFunc g;
    g.start = start;
    g.name = std::move(func_name);
    const Type& p = type(fn.size_or_type);
    if (p.kind() != kBtfFuncProto) fail(fmt::format("function '{}': type {} is not a func_proto", g.name, fn.size_or_type));
    auto scalar = [&](uint32_t id) {
      const uint32_t k = type(id).kind();
      return k == kBtfInt || k == kBtfEnum || k == kBtfEnum64;
    };
    g.returns_scalar = p.size_or_type != 0 && scalar(resolve(p.size_or_type));
    for (uint32_t i = 0; i < p.vlen(); ++i) {
      const uint32_t t = read32(p.extra + 8 * i + 4);
      GlobalFuncParam a;
      if (t == 0) {  // `...`
        a.kind = GlobalFuncParam::Kind::Unsupported;
        a.type = "void";
      } else if (const uint32_t r = resolve(t); scalar(r)) {
        a.kind = GlobalFuncParam::Kind::Scalar;
      } else if (type(r).kind() == kBtfPtr) {
        a.kind = GlobalFuncParam::Kind::Pointer;
        const uint32_t to = type(r).size_or_type == 0 ? 0 : resolve(type(r).size_or_type);
        const uint32_t k = to == 0 ? 0 : type(to).kind();
        a.type = to == 0 ? "void" : kBtfKinds[k].name;
        if (k == kBtfStruct || k == kBtfUnion) a.pointee = std::string(name(type(to).name_off));
        // btf_resolve_size: what has a size (not void, a function, a forward declaration)
        if (to != 0 && (kBtfKinds[k].sized || k == kBtfPtr || k == kBtfArray) && k != kBtfDatasec) {
          const uint64_t size = size_of(to);
          if (size > UINT32_MAX) fail(fmt::format("function '{}' parameter {}: a {}-byte pointee", g.name, i, size));
          a.size = uint32_t(size);
        }
      } else {
        a.kind = GlobalFuncParam::Kind::Unsupported;
        a.type = kBtfKinds[type(r).kind()].name;
      }
      g.params.push_back(std::move(a));
    }
    return g;
  }
  // A parameter's or return value's type as trampoline signatures spell it
  // (frontend/trampoline.h): "i32", "ptr", "f64", "{i32, i64}", "void".
  std::string signature_type(uint32_t id, const std::string& what) const {
    if (id == 0) return "void";
    id = resolve(id);
    const Type& t = type(id);
    switch (t.kind()) {
      case kBtfPtr: return "ptr";
      case kBtfInt: {
        const uint32_t enc = read32(t.extra) >> 24;  // BTF_INT_SIGNED 1, BTF_INT_BOOL 4
        const uint32_t bits = 8 * t.size_or_type;
        if (bits != 8 && bits != 16 && bits != 32 && bits != 64)
          fail(fmt::format("{}: a {}-byte integer has no signature type", what, t.size_or_type));
        return fmt::format("{}{}", (enc & 1) ? 'i' : 'u', bits);
      }
      case kBtfEnum: case kBtfEnum64:
        return fmt::format("{}{}", (t.info >> 31) ? 'i' : 'u', 8 * t.size_or_type);
      case kBtfFloat:
        if (t.size_or_type == 4) return "f32";
        if (t.size_or_type == 8) return "f64";
        fail(fmt::format("{}: a {}-byte float has no signature type", what, t.size_or_type));
      case kBtfStruct: case kBtfUnion: {  // by value: its integer fields in order
        std::string fields;
        for (const Member& m : members(id)) {
          const std::string f = signature_type(m.type, what + " field " + std::string(m.name));
          if (f.front() == '{') fail(fmt::format("{}: nested structs are not supported", what));
          fields += (fields.empty() ? "" : ", ") + f;
        }
        if (fields.empty()) fail(fmt::format("{}: an empty struct", what));
        return "{" + fields + "}";
      }
      default:
        fail(fmt::format("{}: a {} has no signature type", what, kind_name(id)));
    }
  }
  // "i64, ptr -> i32" for the FUNC_PROTO `proto`.
  std::string signature(uint32_t proto, std::string_view func) const {
    const Type& p = type(proto);
    if (p.kind() != kBtfFuncProto) fail(fmt::format("function '{}': type {} is not a func_proto", func, proto));
    std::string args;
    for (uint32_t i = 0; i < p.vlen(); ++i) {
      const uint8_t* param = p.extra + 8 * i;
      const uint32_t t = read32(param + 4);
      if (t == 0) fail(fmt::format("function '{}': variadic functions are not supported", func));
      args += (i ? ", " : "") + signature_type(t, fmt::format("function '{}' parameter {}", func, i));
    }
    return args + " -> " + signature_type(p.size_or_type, fmt::format("function '{}' return value", func));
  }

 private:
  static constexpr int kMaxDepth = 32;
  static constexpr size_t kHeaderSize = 24;

  void parse(llvm::ArrayRef<uint8_t> d) {
    if (d.size() < kHeaderSize) fail(fmt::format("header truncated ({} bytes, need {})", d.size(), kHeaderSize));
    const uint16_t magic = read16(d.data());
    if (magic == 0x9feb) fail("big-endian BTF is not supported");
    if (magic != 0xeb9f) fail(fmt::format("bad magic {:#06x} (expected 0xeb9f)", magic));
    if (d[2] != 1) fail(fmt::format("unsupported version {}", d[2]));
    const uint64_t hdr_len = read32(d.data() + 4);
    const uint64_t type_off = read32(d.data() + 8), type_len = read32(d.data() + 12);
    const uint64_t str_off = read32(d.data() + 16), str_len = read32(d.data() + 20);
    if (hdr_len < kHeaderSize || hdr_len > d.size())
      fail(fmt::format("hdr_len {} out of range [{}, {}]", hdr_len, kHeaderSize, d.size()));
    if (hdr_len + type_off + type_len > d.size())
      fail(fmt::format("type section [{}, +{}) goes past the end ({} bytes)", type_off, type_len, d.size() - hdr_len));
    if (hdr_len + str_off + str_len > d.size())
      fail(fmt::format("string section [{}, +{}) goes past the end ({} bytes)", str_off, str_len, d.size() - hdr_len));
    strs_ = reinterpret_cast<const char*>(d.data() + hdr_len + str_off);
    str_len_ = size_t(str_len);

    const uint8_t* p = d.data() + hdr_len + type_off;
    const uint8_t* end = p + type_len;
    while (p < end) {
      const uint32_t id = uint32_t(types_.size() + 1);
      if (end - p < 12) fail(fmt::format("type {}: header truncated", id));
      Type t{read32(p), read32(p + 4), read32(p + 8), p + 12};
      if (t.kind() == 0 || t.kind() >= kBtfKindCount) fail(fmt::format("type {}: unknown kind {}", id, t.kind()));
      const BtfKindInfo& k = kBtfKinds[t.kind()];
      const uint64_t extra = k.fixed + uint64_t(k.per_member) * t.vlen();
      if (uint64_t(end - t.extra) < extra)
        fail(fmt::format("type {} ({}): {} bytes of data go past the end of the type section", id, k.name, extra));
      types_.push_back(t);
      p = t.extra + extra;
    }
  }

  std::string where_;
  const char* strs_ = nullptr;
  size_t str_len_ = 0;
  std::vector<Type> types_;  // id - 1
};

// The offset of a `struct bpf_spin_lock` member of the map value type
// `value` (a struct's own members, as the kernel's btf_find_spin_lock
// looks), -1 when there is none; two are an error, as in the kernel.
int32_t spin_lock_offset(const Btf& btf, uint32_t value, const std::string& where) {
  const uint32_t st = btf.resolve(value);
  if (btf.type(st).kind() != kBtfStruct) return -1;
  int32_t found = -1;
  for (const Btf::Member& m : btf.members(st)) {
    const uint32_t t = btf.resolve(m.type);
    if (btf.type(t).kind() != kBtfStruct || btf.name(btf.type(t).name_off) != "bpf_spin_lock") continue;
    if (found >= 0) throw Error(where, "more than one struct bpf_spin_lock in the value");
    if (m.bit_offset % 32 != 0) throw Error(where, fmt::format("struct bpf_spin_lock at bit {} is not 4-byte aligned", m.bit_offset));
    found = int32_t(m.bit_offset / 8);
  }
  return found;
}

// ---------------------------------------------------------------------------
// The ELF side.

enum class SecKind { Other, Code, Data, LegacyMaps, BtfMaps, Btf };

struct Reloc {
  uint32_t type;
  uint32_t sym;
  size_t number;  // its position in the relocation section, for messages
};

struct Section {
  uint32_t index = 0;
  std::string name;
  const Shdr* hdr = nullptr;
  SecKind kind = SecKind::Other;
  llvm::ArrayRef<uint8_t> bytes;   // empty for SHT_NOBITS
  std::map<uint64_t, Reloc> relocs;  // by r_offset (code sections only)
  uint64_t size() const { return hdr->sh_size; }
  uint64_t insn_count() const { return size() / kInsnBytes; }
};

struct Symbol {
  std::string name;
  uint64_t value = 0, size = 0;
  uint8_t type = 0, bind = 0, visibility = 0;
  uint32_t shndx = 0;  // 0: undefined; >= SHN_LORESERVE: special
};

struct Func {
  std::string name;
  uint64_t begin, end;  // instruction indices in the section
  bool global;
  // STV_HIDDEN or STV_INTERNAL (`__hidden`, as usdt.bpf.h's functions): not
  // seen outside the object, so libbpf loads it as static (mark_btf_static).
  bool hidden = false;
};

// A map the object defines and where its definition lives (so that an lddw
// relocation against that place finds it).
struct MapSlot {
  uint32_t shndx;
  uint64_t offset;
  size_t def;  // index into ElfProgram::maps
  MapAddress addr;
};

// A run of instructions copied into the program: the entry or one .text
// function, at `base` in the result.
struct Piece {
  const Section* sec;
  uint64_t begin, end;
  size_t base;
  const Func* func;  // the function symbol it is (null: a whole section)
};

class Loader {
 public:
  Loader(std::span<const uint8_t> bytes, const std::string& name) : name_(name) {
    // A copy with 8-byte alignment: LLVM's ELF structures are read in place.
    size_ = bytes.size();
    storage_.assign(size_ / 8 + 1, 0);
    std::memcpy(storage_.data(), bytes.data(), size_);
  }

  std::optional<std::string> btf_signature(std::string_view func) {
    open();
    read_sections();
    for (const Section& c : sections_)
      if (c.kind == SecKind::Btf) {
        Btf btf(c.bytes, name_ + ": .BTF");
        if (std::optional<uint32_t> proto = btf.func_proto(func)) return btf.signature(*proto, func);
      }
    return std::nullopt;
  }

  std::vector<ElfSelection> list() {
    open();
    read_sections();
    std::vector<ElfSelection> out;
    for (const auto& [s, f] : programs()) out.push_back({s->name, f ? f->name : ""});
    return out;
  }

  ElfProgram run(const ElfSelection& which, const MapCreator& create_map) {
    open();
    read_sections();
    read_maps(create_map);
    select(which);
    link();
    return std::move(out_);
  }

 private:
  // --- diagnostics ---
  std::string at_section(const Section& s) const { return fmt::format("{}: section '{}'", name_, s.name); }
  std::string at_insn(const Section& s, uint64_t i) const {
    return fmt::format("{}: section '{}': instruction {}", name_, s.name, i);
  }
  [[noreturn]] void fail(const std::string& where, const std::string& what) const { throw Error(where, what); }

  // --- open ---
  void open() {
    const auto* b = reinterpret_cast<const uint8_t*>(storage_.data());
    if (size_ < 4 || std::memcmp(b, "\x7f" "ELF", 4) != 0) fail(name_, "not an ELF file (no \\x7fELF magic)");
    const std::string hdr = name_ + ": ELF header";
    if (size_ < sizeof(ELFT::Ehdr)) fail(hdr, fmt::format("truncated: {} bytes, need {}", size_, sizeof(ELFT::Ehdr)));
    if (b[llvm::ELF::EI_CLASS] != llvm::ELF::ELFCLASS64)
      fail(hdr, fmt::format("EI_CLASS {} is not ELFCLASS64", b[llvm::ELF::EI_CLASS]));
    if (b[llvm::ELF::EI_DATA] != llvm::ELF::ELFDATA2LSB)
      fail(hdr, fmt::format("EI_DATA {} is not little-endian (big-endian BPF is not supported)", b[llvm::ELF::EI_DATA]));
    obj_.emplace(take(llvm::object::ELFFile<ELFT>::create(
                          llvm::StringRef(reinterpret_cast<const char*>(b), size_)),
                      hdr));
    const auto& eh = obj_->getHeader();
    if (eh.e_machine != llvm::ELF::EM_BPF)
      fail(hdr, fmt::format("e_machine {} is not EM_BPF ({})", uint16_t(eh.e_machine), llvm::ELF::EM_BPF));
    if (eh.e_type != llvm::ELF::ET_REL)
      fail(hdr, fmt::format("e_type {} is not ET_REL (a relocatable object from clang -c)", uint16_t(eh.e_type)));
  }

  // --- sections, symbols, relocations ---
  void read_sections() {
    auto shdrs = take(obj_->sections(), name_ + ": section headers");
    const Shdr* symtab = nullptr;
    uint64_t data_bytes = 0;
    sections_.resize(shdrs.size());
    for (uint32_t i = 0; i < shdrs.size(); ++i) {
      Section& s = sections_[i];
      s.index = i;
      s.hdr = &shdrs[i];
      s.name = take(obj_->getSectionName(shdrs[i]), fmt::format("{}: section {}", name_, i)).str();
      s.kind = classify(s);
      if (s.hdr->sh_type == llvm::ELF::SHT_SYMTAB) {
        if (symtab) fail(at_section(s), "a second symbol table");
        symtab = s.hdr;
      }
      if (s.hdr->sh_type == llvm::ELF::SHT_RELA) fail(at_section(s), "RELA relocations are not used by BPF");
      if (s.kind == SecKind::Other) continue;
      if (s.hdr->sh_type != llvm::ELF::SHT_NOBITS) s.bytes = take(obj_->getSectionContents(*s.hdr), at_section(s));
      if (s.kind == SecKind::Code && s.size() % kInsnBytes != 0)
        fail(at_section(s), fmt::format("size {} is not a multiple of 8 (an instruction)", s.size()));
      if (s.kind == SecKind::Code && s.name == ".text") text_ = &s;
      if (s.kind == SecKind::Data && s.size() > kMaxDataSection)
        fail(at_section(s), fmt::format("size {} exceeds the {} bytes a global data map may hold", s.size(), kMaxDataSection));
      // Section headers cost nothing to repeat, but each .bss is zeroed memory:
      // the data maps together are held to the same bound as one.
      if (s.kind == SecKind::Data && (data_bytes += s.size()) > kMaxDataSection)
        fail(at_section(s), fmt::format("the global data sections hold more than {} bytes together", kMaxDataSection));
    }
    if (!symtab) fail(name_, "no symbol table (.symtab)");
    read_symbols(*symtab);
    for (Section& s : sections_)
      if (s.hdr->sh_type == llvm::ELF::SHT_REL) read_relocations(s);
    for (Section& s : sections_)
      if (s.kind == SecKind::Code) read_functions(s);
  }

  static SecKind classify(const Section& s) {
    const uint32_t type = s.hdr->sh_type;
    const bool alloc = (s.hdr->sh_flags & llvm::ELF::SHF_ALLOC) != 0;
    if (type == llvm::ELF::SHT_PROGBITS && (s.hdr->sh_flags & llvm::ELF::SHF_EXECINSTR)) return SecKind::Code;
    if (s.name == ".BTF") return SecKind::Btf;
    if (s.name == ".maps") return SecKind::BtfMaps;
    if (s.name == "maps") return SecKind::LegacyMaps;
    const bool data_name = starts_with(s.name, ".data") || starts_with(s.name, ".rodata") || starts_with(s.name, ".bss");
    if (data_name && alloc && (type == llvm::ELF::SHT_PROGBITS || type == llvm::ELF::SHT_NOBITS)) return SecKind::Data;
    return SecKind::Other;
  }

  void read_symbols(const Shdr& symtab) {
    const std::string where = name_ + ": .symtab";
    auto syms = take(obj_->symbols(&symtab), where);
    llvm::StringRef strtab = take(obj_->getStringTableForSymtab(symtab), where);
    for (size_t i = 0; i < syms.size(); ++i) {
      const auto& e = syms[i];
      Symbol s;
      s.name = take(e.getName(strtab), fmt::format("{}: symbol {}", where, i)).str();
      s.value = e.st_value;
      s.size = e.st_size;
      s.type = e.getType();
      s.bind = e.getBinding();
      s.visibility = e.getVisibility();
      s.shndx = e.st_shndx;
      if (s.shndx == llvm::ELF::SHN_XINDEX) fail(fmt::format("{}: symbol '{}'", where, s.name), "SHN_XINDEX is not supported");
      if (s.shndx != 0 && s.shndx < llvm::ELF::SHN_LORESERVE && s.shndx >= sections_.size())
        fail(fmt::format("{}: symbol '{}'", where, s.name),
             fmt::format("section index {} out of range ({} sections)", s.shndx, sections_.size()));
      if (s.type == llvm::ELF::STT_SECTION && s.name.empty() && s.shndx != 0 && s.shndx < sections_.size())
        s.name = sections_[s.shndx].name;
      symbols_.push_back(std::move(s));
    }
  }

  // A Symbol's section, or null (undefined, absolute, common).
  const Section* section_of(const Symbol& s) const {
    return s.shndx != 0 && s.shndx < sections_.size() ? &sections_[s.shndx] : nullptr;
  }

  void read_relocations(const Section& rel) {
    const std::string where = at_section(rel);
    if (rel.hdr->sh_info >= sections_.size())
      fail(where, fmt::format("sh_info {} names no section ({} sections)", rel.hdr->sh_info, sections_.size()));
    Section& target = sections_[rel.hdr->sh_info];
    if (target.kind != SecKind::Code && target.kind != SecKind::Data && target.kind != SecKind::LegacyMaps &&
        target.kind != SecKind::BtfMaps)
      return;  // debug information, BTF: nothing to apply
    auto rels = take(obj_->rels(*rel.hdr), where);
    if (rels.empty()) return;
    if (target.kind == SecKind::BtfMaps) {  // a program array's `.values` initialiser (read_btf_maps)
      for (size_t n = 0; n < rels.size(); ++n)
        map_relocs_.push_back({rels[n].r_offset, rels[n].getType(false), rels[n].getSymbol(false), n, where});
      return;
    }
    if (target.kind != SecKind::Code)
      fail(where, fmt::format("relocations in '{}' (pointers in global data or initialised map-in-map) "
                              "are not supported",
                              target.name));
    for (size_t n = 0; n < rels.size(); ++n) {
      const auto& r = rels[n];
      const std::string at = fmt::format("{}: relocation {}", where, n);
      const uint32_t type = r.getType(false), sym = r.getSymbol(false);
      const uint64_t off = r.r_offset;
      if (type == llvm::ELF::R_BPF_NONE) continue;
      if (type != llvm::ELF::R_BPF_64_64 && type != llvm::ELF::R_BPF_64_32)
        fail(at, fmt::format("unsupported relocation type {} in code", type));
      if (sym == 0 || sym >= symbols_.size())
        fail(at, fmt::format("symbol index {} out of range [1, {})", sym, symbols_.size()));
      const uint64_t need = type == llvm::ELF::R_BPF_64_64 ? 2 * kInsnBytes : kInsnBytes;
      if (off % kInsnBytes != 0 || off > target.size() || target.size() - off < need)
        fail(at, fmt::format("offset {:#x} is outside section '{}' (size {:#x}) or not on an instruction", off,
                             target.name, target.size()));
      if (!target.relocs.emplace(off, Reloc{type, sym, n}).second)
        fail(at, fmt::format("a second relocation at offset {:#x}", off));
    }
  }

  void read_functions(const Section& s) {
    std::vector<const Symbol*> fs;
    for (const Symbol& sym : symbols_)
      if (sym.type == llvm::ELF::STT_FUNC && sym.shndx == s.index) fs.push_back(&sym);
    std::sort(fs.begin(), fs.end(), [](const Symbol* a, const Symbol* b) { return a->value < b->value; });
    for (size_t i = 0; i < fs.size(); ++i) {
      const Symbol& f = *fs[i];
      const uint64_t end_bytes = f.size ? f.value + f.size : (i + 1 < fs.size() ? fs[i + 1]->value : s.size());
      if (f.value % kInsnBytes || end_bytes % kInsnBytes || end_bytes <= f.value || end_bytes > s.size())
        fail(fmt::format("{}: symbol '{}'", at_section(s), f.name),
             fmt::format("value {:#x} and size {:#x} are not whole instructions inside the section (size {:#x})",
                         f.value, f.size, s.size()));
      functions_[s.index].push_back({f.name, f.value / kInsnBytes, end_bytes / kInsnBytes,
                                     f.bind == llvm::ELF::STB_GLOBAL || f.bind == llvm::ELF::STB_WEAK,
                                     f.visibility == llvm::ELF::STV_HIDDEN || f.visibility == llvm::ELF::STV_INTERNAL});
    }
  }

  // --- maps ---
  void read_maps(const MapCreator& create_map) {
    for (const Section& s : sections_) {
      if (s.kind == SecKind::LegacyMaps) read_legacy_maps(s);
      if (s.kind == SecKind::BtfMaps) read_btf_maps(s);
    }
    for (const Section& s : sections_)
      if (s.kind == SecKind::Data && s.size() > 0) {
        MapDef d = global_data_map(s.name, uint32_t(s.size()), starts_with(s.name, ".rodata"));
        d.initial.assign(s.bytes.begin(), s.bytes.end());
        add_map(std::move(d), s.index, 0);
      }
    read_kconfig();
    for (MapSlot& slot : slots_) {
      const MapDef& d = out_.maps[slot.def];
      try {
        slot.addr = create_map(d);
      } catch (const Error& e) {
        fail(fmt::format("{}: map '{}'", name_, d.name), e.message());
      }
    }
  }

  // `extern ... __kconfig` variables (undefined symbols the BTF puts in
  // DATASEC .kconfig): one read-only global-data map ".kconfig" holding
  // their values (frontend/kconfig.h), each at its natural alignment, as
  // libbpf's bpf_object__init_kconfig_map. An lddw of one becomes the
  // address of its value (lddw_value).
  void read_kconfig() {
    const Section* btf_sec = btf_section();
    const bool externs = std::any_of(symbols_.begin(), symbols_.end(),
                                     [](const Symbol& sym) { return sym.shndx == 0 && !sym.name.empty(); });
    if (!btf_sec || !externs) return;  // an object without externs needs no BTF here
    const Btf& btf = *this->btf();
    const auto vars = btf.datasec_vars(".kconfig");
    if (vars.empty()) return;
    MapDef d = global_data_map(".kconfig", 0, /*rdonly=*/true);
    for (const Symbol& sym : symbols_) {
      if (sym.shndx != 0 || sym.name.empty()) continue;
      const auto v = std::find_if(vars.begin(), vars.end(), [&](const auto& p) { return p.first == sym.name; });
      if (v == vars.end() || kconfig_offsets_.count(sym.name)) continue;
      const std::string at = fmt::format("{}: extern '{}'", name_, sym.name);
      std::optional<KconfigExtern> e = btf.kconfig_type(v->second);
      if (!e)
        fail(at, fmt::format("a __kconfig extern of BTF type {} ({}): libbpf's kconfig types are bool, tristate, "
                             "char, integers of 1, 2, 4 or 8 bytes and char arrays of at most {} bytes",
                             v->second, btf.kind_name(btf.resolve(v->second)), kMaxKconfigBytes));
      e->name = sym.name;
      e->weak = sym.bind == llvm::ELF::STB_WEAK;
      const uint64_t align = std::min<uint64_t>(8, e->type == KconfigType::CharArray ? 1 : e->size);
      const uint64_t off = (d.initial.size() + align - 1) / align * align;
      if (off + e->size > kMaxKconfigBytes)
        fail(at, fmt::format("the __kconfig externs need more than {} bytes together (this one ends at {})",
                             kMaxKconfigBytes, off + e->size));
      const std::vector<uint8_t> bytes = kconfig_value(*e, running_kernel_config(), at);
      d.initial.resize(off);
      d.initial.insert(d.initial.end(), bytes.begin(), bytes.end());
      kconfig_offsets_[sym.name] = off;
    }
    if (kconfig_offsets_.empty()) return;
    d.value_size = uint32_t(d.initial.size());
    kconfig_map_ = slots_.size();
    add_map(std::move(d), UINT32_MAX, 0);
  }

  // One array element holding a data section or the kconfig values, as libbpf maps them.
  static MapDef global_data_map(std::string name, uint32_t value_size, bool rdonly) {
    MapDef d;
    d.name = std::move(name);
    d.type = kMapTypeArray;
    d.key_size = 4;
    d.value_size = value_size;
    d.max_entries = 1;
    d.flags = kMapFlagMmapable | (rdonly ? kMapFlagRdonlyProg : 0);
    d.global_data = true;
    return d;
  }

  // The object's .BTF parsed (once), or null when it has none.
  const Btf* btf() {
    if (!btf_) {
      const Section* s = btf_section();
      if (!s) return nullptr;
      btf_.emplace(s->bytes, name_ + ": .BTF");
    }
    return &*btf_;
  }

  // The object's .BTF (the last, should there be several), or null.
  const Section* btf_section() const {
    const Section* found = nullptr;
    for (const Section& c : sections_)
      if (c.kind == SecKind::Btf) found = &c;
    return found;
  }

  void add_map(MapDef d, uint32_t shndx, uint64_t offset) {
    slots_.push_back({shndx, offset, out_.maps.size(), {}});
    out_.maps.push_back(std::move(d));
  }

  std::vector<const Symbol*> symbols_in(const Section& s) const {
    std::vector<const Symbol*> out;
    for (const Symbol& sym : symbols_)
      if (sym.shndx == s.index && sym.type != llvm::ELF::STT_SECTION) out.push_back(&sym);
    std::sort(out.begin(), out.end(), [](const Symbol* a, const Symbol* b) { return a->value < b->value; });
    return out;
  }

  // struct bpf_map_def { u32 type, key_size, value_size, max_entries, map_flags; }, one per symbol.
  void read_legacy_maps(const Section& s) {
    constexpr uint64_t kDefSize = 20;
    std::vector<const Symbol*> syms = symbols_in(s);
    if (syms.empty()) {
      if (s.size() != 0) fail(at_section(s), "map definitions without symbols");
      return;
    }
    const uint64_t def_size = s.size() / syms.size();
    if (def_size < kDefSize)
      fail(at_section(s), fmt::format("{} maps in {} bytes: shorter than struct bpf_map_def ({} bytes)", syms.size(),
                                      s.size(), kDefSize));
    for (const Symbol* sym : syms) {
      if (sym->value > s.size() || s.size() - sym->value < kDefSize)
        fail(fmt::format("{}: map '{}'", at_section(s), sym->name),
             fmt::format("definition at offset {:#x} goes past the end of the section (size {:#x})", sym->value, s.size()));
      const uint8_t* p = s.bytes.data() + sym->value;
      MapDef d;
      d.name = sym->name;
      d.type = read32(p);
      d.key_size = read32(p + 4);
      d.value_size = read32(p + 8);
      d.max_entries = read32(p + 12);
      d.flags = read32(p + 16);
      add_map(std::move(d), s.index, sym->value);
    }
  }

  // struct { __uint(type, T); __type(key, K); ... } name SEC(".maps"): the
  // variable's BTF type is a struct whose members encode each field:
  //   __uint(f, N)  -> `int (*f)[N]`      pointer to an array of N elements
  //   __type(f, T)  -> `typeof(T) *f`     pointer to T (f's size is sizeof(T))
  void read_btf_maps(const Section& s) {
    std::vector<const Symbol*> syms = symbols_in(s);
    std::vector<Initialiser> initialisers;
    if (syms.empty()) return read_slot_initialisers(s, initialisers);
    if (!btf_section()) fail(at_section(s), "BTF-defined maps need a .BTF section (compile with -g)");
    const Btf& btf = *this->btf();
    for (const Symbol* sym : syms) {
      const std::string at = fmt::format("{}: map '{}'", at_section(s), sym->name);
      std::optional<uint32_t> var = btf.var_type(".maps", sym->name);
      if (!var) fail(at, "no BTF variable of that name in DATASEC .maps");
      const uint32_t st = btf.resolve(*var);
      std::optional<uint64_t> values_at;  // byte offset of `values` in the definition
      MapDef d = map_definition(btf, st, at, &values_at);
      d.name = sym->name;
      // The symbol's size covers an initialised `values` (a flexible array, 0 bytes in BTF).
      initialisers.push_back({out_.maps.size(), sym->value, std::max<uint64_t>(sym->size, btf.size_of(st)), values_at});
      add_map(std::move(d), s.index, sym->value);
    }
    read_slot_initialisers(s, initialisers);
  }

  // A BTF map definition, struct type `st`, as libbpf's
  // parse_btf_map_def: __uint(type, ...), __type(key, ...), ..., and for a
  // map of maps `__array(values, struct { ... })`, the inner maps' template.
  MapDef map_definition(const Btf& btf, uint32_t st, const std::string& at, std::optional<uint64_t>* values_at,
                        int depth = 0) const {
    enum class How { Uint, TypeSize, Ignored };
    struct Field {
      const char* name;
      How how;
      uint32_t MapDef::*dst;
    };
    static constexpr Field kFields[] = {
        {"type", How::Uint, &MapDef::type},
        {"key_size", How::Uint, &MapDef::key_size},
        {"value_size", How::Uint, &MapDef::value_size},
        {"max_entries", How::Uint, &MapDef::max_entries},
        {"map_flags", How::Uint, &MapDef::flags},
        {"key", How::TypeSize, &MapDef::key_size},
        {"value", How::TypeSize, &MapDef::value_size},
        {"numa_node", How::Ignored, nullptr},
        {"pinning", How::Ignored, nullptr},
        {"map_extra", How::Uint, &MapDef::map_extra},
        {"values", How::Ignored, nullptr},  // an initialiser (its relocations) or an inner template: below
    };
    if (btf.type(st).kind() != kBtfStruct)
      fail(at, fmt::format("BTF type {} is a {}, not a struct", st, btf.kind_name(st)));
    MapDef d;
    std::optional<uint32_t> values_type;
    for (const Btf::Member& m : btf.members(st)) {
      if (m.name == "values") {
        if (values_at) *values_at = m.bit_offset / 8;
        values_type = m.type;
      }
      const Field* f = nullptr;
      for (const Field& c : kFields)
        if (m.name == c.name) f = &c;
      const std::string field_at = fmt::format("{}: field '{}'", at, m.name);
      if (!f) fail(field_at, "unknown map field");
      if (f->how == How::Ignored) continue;
      const uint32_t ptr = btf.resolve(m.type);
      if (btf.type(ptr).kind() != kBtfPtr)
        fail(field_at, fmt::format("BTF type {} is a {}, not a pointer (use __uint or __type)", ptr, btf.kind_name(ptr)));
      const uint32_t target = btf.type(ptr).size_or_type;
      uint64_t value;
      if (f->how == How::Uint) {
        const uint32_t arr = btf.resolve(target);
        if (btf.type(arr).kind() != kBtfArray)
          fail(field_at, fmt::format("BTF type {} is a {}, not an array (use __uint)", arr, btf.kind_name(arr)));
        value = read32(btf.type(arr).extra + 8);  // nelems
      } else {
        value = btf.size_of(target);
        if (value > UINT32_MAX) fail(field_at, fmt::format("size {} does not fit 32 bits", value));
      }
      if (f->how == How::TypeSize && d.*(f->dst) != 0 && d.*(f->dst) != value)
        fail(field_at, fmt::format("size {} contradicts the size {} given before", value, d.*(f->dst)));
      d.*(f->dst) = uint32_t(value);
      if (m.name == "value") d.spin_lock_offset = spin_lock_offset(btf, target, field_at);
    }
    if (d.type == kMapTypeArrayOfMaps || d.type == kMapTypeHashOfMaps) {
      const std::string values_at_field = fmt::format("{}: field 'values'", at);
      if (depth > 0) fail(values_at_field, "a map of maps inside a map of maps");
      if (!values_type) fail(at, "a map of maps needs __array(values, struct {...}), its inner maps' template");
      // values: an array of pointers to the inner definition's struct.
      const uint32_t arr = btf.resolve(*values_type);
      const uint32_t elem = btf.type(arr).kind() == kBtfArray ? btf.resolve(read32(btf.type(arr).extra)) : 0;
      if (!elem || btf.type(elem).kind() != kBtfPtr)
        fail(values_at_field, "not __array(values, struct {...}): an array of pointers to the inner definition");
      d.inner = std::make_shared<MapDef>(
          map_definition(btf, btf.resolve(btf.type(elem).size_or_type), values_at_field, nullptr, depth + 1));
      if (d.value_size == 0) d.value_size = 4;  // a file descriptor's size, as libbpf sets it
    }
    return d;
  }

  // libbpf's static initialisation of a program array or a map of maps, in .rel.maps:
  //   struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); ...; __array(values, int (void *)); }
  //     jmp_table SEC(".maps") = { .values = { [1] = (void *)&stage1 } };
  //   struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); ...; __array(values, struct inner); }
  //     outer SEC(".maps") = { .values = { [0] = &inner_a } };
  // Each slot that names a program or a map is an R_BPF_64_ABS64
  // relocation at values + 8 * index against its symbol.
  struct Initialiser {
    size_t def;
    uint64_t offset, size;
    std::optional<uint64_t> values_at;
  };
  void read_slot_initialisers(const Section& s, const std::vector<Initialiser>& defs) {
    for (const MapReloc& r : map_relocs_) {
      const std::string at = fmt::format("{}: relocation {}", r.where, r.number);
      const Initialiser* init = nullptr;
      for (const Initialiser& i : defs)
        if (r.offset >= i.offset && r.offset - i.offset < i.size) init = &i;
      if (!init) fail(at, fmt::format("offset {:#x} is not inside a map definition of '{}'", r.offset, s.name));
      MapDef& d = out_.maps[init->def];
      const std::string map_at = fmt::format("{}: map '{}'", at_section(s), d.name);
      const bool maps = d.type == kMapTypeArrayOfMaps || d.type == kMapTypeHashOfMaps;
      if (d.type != kMapTypeProgArray && !maps)
        fail(map_at, fmt::format("an initialised map of type {}: only program arrays and maps of maps are", d.type));
      if (r.type != llvm::ELF::R_BPF_64_ABS64)
        fail(at, fmt::format("relocation type {} in a map's `values` initialiser", r.type));
      const uint64_t rel = r.offset - init->offset;
      if (!init->values_at || rel < *init->values_at || (rel - *init->values_at) % 8 != 0)
        fail(at, fmt::format("offset {:#x} in map '{}' is not a slot of its `values`", rel, d.name));
      const uint64_t index = (rel - *init->values_at) / 8;
      if (index >= d.max_entries)
        fail(map_at, fmt::format("slot {} is past max_entries {}", index, d.max_entries));
      if (r.sym == 0 || r.sym >= symbols_.size())
        fail(at, fmt::format("symbol index {} out of range [1, {})", r.sym, symbols_.size()));
      const Symbol& sym = symbols_[r.sym];
      const Section* ts = section_of(sym);
      if (maps) {
        if (!ts || ts->kind != SecKind::BtfMaps || sym.type != llvm::ELF::STT_OBJECT)
          fail(at, fmt::format("slot {} of '{}' names '{}', which is not a map", index, d.name, sym.name));
        if (d.key_size != 4) fail(map_at, "an initialised hash of maps needs 4-byte keys (the slot's index)");
        d.inner_maps.push_back({uint32_t(index), sym.name});
        continue;
      }
      if (sym.type != llvm::ELF::STT_FUNC || !ts || ts->kind != SecKind::Code || ts == text_)
        fail(at, fmt::format("slot {} of '{}' names '{}', which is not a program", index, d.name, sym.name));
      d.programs.push_back({uint32_t(index), {ts->name, sym.name}});
    }
  }

  // --- selection ---
  // Every program a selection can name: each global function of a program
  // section (a section without one is one program), in section order.
  std::vector<std::pair<const Section*, const Func*>> programs() const {
    std::vector<std::pair<const Section*, const Func*>> all;
    for (const Section& s : sections_) {
      if (s.kind != SecKind::Code || &s == text_) continue;
      const size_t before = all.size();
      for (const Func& f : functions_of(s))
        if (f.global) all.push_back({&s, &f});
      if (all.size() == before) all.push_back({&s, nullptr});
    }
    return all;
  }

  // The programs, for messages; with none, the .text functions a
  // --function can still choose.
  std::string program_list() const {
    std::vector<std::string> names;
    for (const auto& [s, f] : programs())
      names.push_back(f ? fmt::format("{} in '{}'", f->name, s->name) : fmt::format("section '{}'", s->name));
    if (names.empty() && text_)
      for (const Func& f : functions_of(*text_))
        if (f.global) names.push_back(fmt::format("{} in '.text'", f.name));
    if (names.empty()) return "none";
    std::string out;
    for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
  }

  const std::vector<Func>& functions_of(const Section& s) const {
    static const std::vector<Func> kNone;
    auto it = functions_.find(s.index);
    return it == functions_.end() ? kNone : it->second;
  }

  void select(const ElfSelection& which) {
    const Section* sec = nullptr;
    const Func* fn = nullptr;
    if (!which.function.empty()) {
      for (const Section& s : sections_)
        if (s.kind == SecKind::Code)
          for (const Func& f : functions_of(s))
            if (f.name == which.function) sec = &s, fn = &f;
      if (!fn) fail(name_, fmt::format("no function '{}' (programs: {})", which.function, program_list()));
      if (!which.section.empty() && sec->name != which.section)
        fail(name_, fmt::format("function '{}' is in section '{}', not '{}'", which.function, sec->name, which.section));
    } else if (!which.section.empty()) {
      for (const Section& s : sections_)
        if (s.kind == SecKind::Code && s.name == which.section) sec = &s;
      if (!sec) fail(name_, fmt::format("no program section '{}' (programs: {})", which.section, program_list()));
      std::vector<const Func*> entries;
      for (const Func& f : functions_of(*sec))
        if (f.global) entries.push_back(&f);
      if (entries.size() > 1)
        fail(name_, fmt::format("section '{}' holds {} programs ({}); choose one by function name", sec->name,
                                entries.size(), program_list()));
      if (entries.size() == 1) fn = entries[0];
    } else {
      const std::vector<std::pair<const Section*, const Func*>> all = programs();
      if (all.empty())
        fail(name_, fmt::format("no program section (SEC(\"...\")); functions in .text: {}; choose one by function name",
                                program_list()));
      if (all.size() != 1)
        fail(name_, fmt::format("{} programs ({}); choose one by section or function name", all.size(), program_list()));
      sec = all[0].first;
      fn = all[0].second;
    }
    if (sec->insn_count() == 0) fail(at_section(*sec), "empty program section");
    out_.section = sec->name;
    if (const auto t = program_type_for_section(out_.section)) out_.type = t->type;
    out_.function = fn ? fn->name : "";
    pieces_.push_back({sec, fn ? fn->begin : 0, fn ? fn->end : sec->insn_count(), 0, fn});
    total_ = pieces_[0].end - pieces_[0].begin;
  }

  // --- linking ---
  Insn insn_at(const Section& s, uint64_t i) const {
    uint64_t word;
    std::memcpy(&word, s.bytes.data() + i * kInsnBytes, kInsnBytes);
    return from_word(word);
  }

  const Reloc* reloc_at(const Section& s, uint64_t i) const {
    auto it = s.relocs.find(i * kInsnBytes);
    return it == s.relocs.end() ? nullptr : &it->second;
  }

  // The instruction a local call at `i` of `s` goes to, as (section, index).
  std::pair<const Section*, uint64_t> call_target(const Section& s, uint64_t i, const Insn& in) const {
    const Reloc* r = reloc_at(s, i);
    if (!r) {
      const int64_t t = int64_t(i) + 1 + in.imm;
      if (t < 0 || uint64_t(t) >= s.insn_count())
        fail(at_insn(s, i), fmt::format("call target {} out of range [0, {})", t, s.insn_count()));
      return {&s, uint64_t(t)};
    }
    const std::string at = fmt::format("{}: relocation {}", at_insn(s, i), r->number);
    if (r->type != llvm::ELF::R_BPF_64_32) fail(at, fmt::format("relocation type {} on a call", r->type));
    const Symbol& sym = symbols_[r->sym];
    const Section* ts = section_of(sym);
    if (!ts) fail(at, fmt::format("call to undefined symbol '{}' (a kfunc or extern is not supported)", sym.name));
    if (ts != text_) fail(at, fmt::format("call to '{}' in section '{}': only .text subprograms can be called", sym.name, ts->name));
    if (sym.value % kInsnBytes) fail(at, fmt::format("symbol '{}' value {:#x} is not on an instruction", sym.name, sym.value));
    const int64_t t = int64_t(sym.value / kInsnBytes) + 1 + in.imm;
    if (t < 0 || uint64_t(t) >= ts->insn_count())
      fail(at, fmt::format("call target .text+{} out of range [0, {})", t, ts->insn_count()));
    return {ts, uint64_t(t)};
  }

  // The piece holding `index` of `s`, adding the .text function around it.
  const Piece& piece_for(const Section& s, uint64_t index, const std::string& from) {
    for (const Piece& p : pieces_)
      if (p.sec == &s && index >= p.begin && index < p.end) return p;
    if (&s != text_)
      fail(from, fmt::format("call target {} is outside the program (instructions [{}, {}) of section '{}')", index,
                             pieces_[0].begin, pieces_[0].end, s.name));
    for (const Func& f : functions_of(s))
      if (index >= f.begin && index < f.end) {
        for (const Piece& p : pieces_)
          if (p.sec == &s && p.begin < f.end && f.begin < p.end)
            fail(from, fmt::format("function '{}' overlaps code already linked", f.name));
        pieces_.push_back({&s, f.begin, f.end, total_, &f});
        total_ += f.end - f.begin;
        return pieces_.back();
      }
    fail(from, fmt::format("call target .text+{} is not inside a function symbol", index));
  }

  // The function an lddw's relocation names, as (section, index), when it
  // names code: clang writes `r2 = callback ll` for bpf_loop's argument
  // as an lddw relocated against .text (a section symbol with the byte
  // offset in imm, or the function's own symbol with imm 0).
  std::optional<std::pair<const Section*, uint64_t>> code_target(const Section& s, uint64_t i, const Insn& in,
                                                                 const Reloc& r) const {
    const Symbol& sym = symbols_[r.sym];
    const Section* ts = section_of(sym);
    if (!ts || ts->kind != SecKind::Code) return std::nullopt;
    const std::string at = fmt::format("{}: relocation {}", at_insn(s, i), r.number);
    if (r.type != llvm::ELF::R_BPF_64_64) fail(at, fmt::format("relocation type {} on lddw", r.type));
    if (ts != text_)
      fail(at, fmt::format("lddw of the address of '{}' in section '{}': only .text functions can be callbacks",
                           sym.name, ts->name));
    const uint64_t off = sym.value + uint32_t(in.imm);
    if (off % kInsnBytes) fail(at, fmt::format("'{}'+{:#x} is not on an instruction", sym.name, uint32_t(in.imm)));
    if (off / kInsnBytes >= ts->insn_count())
      fail(at, fmt::format("callback .text+{} out of range [0, {})", off / kInsnBytes, ts->insn_count()));
    return std::pair{ts, off / kInsnBytes};
  }

  // Resolves an lddw's pseudo source to the 64-bit value it loads, and
  // notes which map it names (ElfProgram::map_refs) at `code_index`.
  uint64_t lddw_value(const Section& s, uint64_t i, const Insn& in, const Reloc& r, size_t code_index) {
    const std::string at = fmt::format("{}: relocation {}", at_insn(s, i), r.number);
    if (r.type != llvm::ELF::R_BPF_64_64) fail(at, fmt::format("relocation type {} on lddw", r.type));
    const Symbol& sym = symbols_[r.sym];
    const Section* ts = section_of(sym);
    if (!ts) {
      if (auto k = kconfig_offsets_.find(sym.name); k != kconfig_offsets_.end()) {
        const MapSlot& m = slots_[*kconfig_map_];
        const uint64_t off = k->second + uint32_t(in.imm);
        out_.map_refs.push_back({code_index, m.def, off, true});
        return m.addr.value + off;
      }
      fail(at, fmt::format("lddw of undefined symbol '{}' (only __kconfig externs are supported; a __ksym names "
                           "kernel memory, which user space does not have)",
                           sym.name));
    }
    const uint64_t off = sym.value + uint32_t(in.imm);
    switch (ts->kind) {
      case SecKind::LegacyMaps:
      case SecKind::BtfMaps:
        for (const MapSlot& m : slots_)
          if (m.shndx == ts->index && m.offset == off) {
            out_.map_refs.push_back({code_index, m.def, 0, false});
            return m.addr.handle;
          }
        fail(at, fmt::format("'{}'+{:#x} in '{}' is not the start of a map definition", sym.name, uint32_t(in.imm), ts->name));
      case SecKind::Data:
        if (off > ts->size())
          fail(at, fmt::format("'{}'+{:#x} is past the end of '{}' (size {:#x})", sym.name, uint32_t(in.imm), ts->name, ts->size()));
        for (const MapSlot& m : slots_)
          if (m.shndx == ts->index) {
            out_.map_refs.push_back({code_index, m.def, off, true});
            return m.addr.value + off;
          }
        fail(at, fmt::format("'{}' in empty section '{}'", sym.name, ts->name));
      default:
        fail(at, fmt::format("lddw of '{}' in section '{}', which holds neither maps nor global data", sym.name, ts->name));
    }
  }

  void link() {
    struct CallFix {
      size_t at;
      const Section* sec;
      uint64_t target;
      std::string where;
    };
    std::vector<CallFix> calls;
    std::vector<Insn>& code = out_.program.insns;
    for (size_t pi = 0; pi < pieces_.size(); ++pi) {
      const Piece piece = pieces_[pi];  // a copy: piece_for grows the vector
      const Section& s = *piece.sec;
      code.resize(piece.base + (piece.end - piece.begin));
      for (uint64_t i = piece.begin; i < piece.end; ++i) {
        Insn in = insn_at(s, i);
        const size_t at = piece.base + (i - piece.begin);
        const Reloc* r = reloc_at(s, i);
        if (in.opcode == make_opcode(JMP, CALL, K) && in.src == CALL_LOCAL) {
          auto [ts, t] = call_target(s, i, in);
          piece_for(*ts, t, at_insn(s, i));
          calls.push_back({at, ts, t, at_insn(s, i)});
        } else if (is_lddw(in)) {
          if (i + 1 == piece.end) fail(at_insn(s, i), "lddw is cut off by the end of its function");
          Insn hi = insn_at(s, i + 1);
          if (r && code_target(s, i, in, *r)) {
            // A callback's address (libbpf's RELO_SUBPROG_ADDR): the kernel's BPF_PSEUDO_FUNC.
            auto [ts, t] = *code_target(s, i, in, *r);
            piece_for(*ts, t, at_insn(s, i));
            calls.push_back({at, ts, t, at_insn(s, i)});
            in.src = LDDW_CODE_ADDR;
            hi.imm = 0;
          } else if (r) {
            const uint64_t v = lddw_value(s, i, in, *r, at);
            in.src = LDDW_IMM64;
            in.imm = int32_t(uint32_t(v));
            hi.imm = int32_t(uint32_t(v >> 32));
          } else if (in.src != LDDW_IMM64) {
            fail(at_insn(s, i), fmt::format("lddw with pseudo source {} has no relocation", unsigned(in.src)));
          }
          code[at] = in;
          code[at + 1] = hi;
          ++i;
          continue;
        } else if (r) {
          fail(fmt::format("{}: relocation {}", at_insn(s, i), r->number),
               fmt::format("relocation type {} on an instruction that is neither lddw nor a local call (opcode {:#04x})",
                           r->type, in.opcode));
        }
        code[at] = in;
      }
    }
    for (const CallFix& c : calls) {
      const Piece& p = piece_for(*c.sec, c.target, c.where);
      const int64_t rel = int64_t(p.base + (c.target - p.begin)) - int64_t(c.at + 1);
      if (rel < INT32_MIN || rel > INT32_MAX) fail(c.where, "call offset does not fit 32 bits");
      code[c.at].imm = int32_t(rel);
    }
    out_.program.name = name_;
    note_global_functions();
    for (const MapRef& r : out_.map_refs) {
      const MapDef& d = out_.maps[r.map];
      bpf::MapUse u{r.insn, d.name, d.type, d.key_size, d.value_size, d.max_entries, r.value, r.offset, d.spin_lock_offset};
      if (d.inner) u.inner = inner_map_use(d.name, *d.inner);
      out_.program.maps.push_back(std::move(u));
    }
  }

  // Every linked .text function but the entry that BTF calls global, with
  // its prototype, for the verifier (Program::globals), but hidden ones,
  // which libbpf makes static. Without BTF there is none: the kernel then
  // treats every function as static.
  void note_global_functions() {
    const Btf* btf = this->btf();
    if (!btf) return;
    for (size_t pi = 1; pi < pieces_.size(); ++pi) {
      const Piece& p = pieces_[pi];
      if (!p.func || p.func->hidden) continue;
      const Btf::Type* fn = btf->func(p.func->name);
      if (fn && fn->vlen() == Btf::kFuncGlobal) out_.program.globals.push_back(btf->global_func(*fn, p.func->name, p.base));
    }
  }

  std::string name_;
  std::vector<uint64_t> storage_;
  size_t size_ = 0;
  std::optional<llvm::object::ELFFile<ELFT>> obj_;
  std::vector<Section> sections_;
  std::vector<Symbol> symbols_;
  std::map<uint32_t, std::vector<Func>> functions_;  // by section index, ascending
  const Section* text_ = nullptr;
  std::vector<MapSlot> slots_;
  std::map<std::string, uint64_t> kconfig_offsets_;  // a __kconfig extern -> its offset in ".kconfig"
  std::optional<size_t> kconfig_map_;                // its slot in slots_
  struct MapReloc {
    uint64_t offset;
    uint32_t type, sym;
    size_t number;
    std::string where;
  };
  std::vector<MapReloc> map_relocs_;  // .rel.maps
  std::vector<Piece> pieces_;
  size_t total_ = 0;
  std::optional<Btf> btf_;  // btf(): parsed on first use
  ElfProgram out_;
};

}  // namespace

bool looks_like_elf(std::span<const uint8_t> bytes) {
  return bytes.size() >= 4 && std::memcmp(bytes.data(), "\x7f" "ELF", 4) == 0;
}

ElfProgram load_elf(std::span<const uint8_t> bytes, const std::string& name, const ElfSelection& which,
                    const MapCreator& create_map) {
  return Loader(bytes, name).run(which, create_map);
}

std::vector<ElfSelection> list_elf_programs(std::span<const uint8_t> bytes, const std::string& name) {
  return Loader(bytes, name).list();
}

std::optional<std::string> btf_signature(std::span<const uint8_t> bytes, const std::string& name,
                                         std::string_view function) {
  return Loader(bytes, name).btf_signature(function);
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, std::string("cannot open: ") + std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path, "read error");
  return bytes;
}

ElfProgram read_elf_file(const std::string& path, const ElfSelection& which, const MapCreator& create_map) {
  return load_elf(read_file(path), path, which, create_map);
}

}  // namespace sb::bpf
