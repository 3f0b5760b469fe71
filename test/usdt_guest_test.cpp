// USDT probes in arm64 and riscv64 guests: probes/usdt_targets.c
// cross-compiled by gcc (-O0, -O2) and clang (-O2, arm64), its notes read
// by runtime/trace/usdt.h (the arguments in each architecture's syntax,
// at their offsets in user_pt_regs / user_regs_struct), and the programs
// of probes/usdt.bpf.c, built for __TARGET_ARCH_arm64 / _riscv against
// libbpf's <bpf/usdt.bpf.h>, attached at each site by a guest probe
// (runtime/hook/hook_guest.h, frontend/trampoline.h lower_probe) with the
// site's spec in the object's __bpf_usdt_specs and its id as the cookie,
// as attach_usdt does in this process. What they read must be what the
// code passed, as on x86-64 (usdt_test.cpp): registers of each width,
// stack slots, constants, addresses, memory at a register plus an offset.
//
// The image is linked at kImage and mapped there in this process as well
// as in the guest (Guest::map_host), as the guest's stack is: a pointer
// the program or the probed code holds (a stack slot, the table, the
// pt_regs) means the same to the helpers, which run in this process.
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <llvm/Object/ELFObjectFile.h>
#include <llvm/Object/ObjectFile.h>

#include "backends/compile.h"
#include "frontend/trampoline.h"
#include "ir/diag.h"
#include "runtime/exec/guest.h"
#include "runtime/helpers/std_helpers.h"
#include "runtime/helpers/tracing_helpers.h"
#include "runtime/hook/hook_guest.h"
#include "runtime/hook/tramp_runtime.h"
#include "runtime/trace/usdt.h"
#include "guest_prog_runtime.h"
#include "usdt_expected.h"

namespace sb::test {
namespace {

constexpr uint64_t kImage = 0x30000000;       // -Ttext (test/CMakeLists.txt)
constexpr uint64_t kProbes = 0x30080000;      // the probes and stubs, within jal's 1 MiB
constexpr uint64_t kProbeStep = 0x2000;       // per site: its probe, then its stub's page
constexpr uint64_t kPrograms = 0x30400000;    // the compiled programs, 64 KiB each

struct Variant {
  Arch arch;
  const char* tag;  // the build: gcc/clang and its -O
};
const Variant kVariants[] = {
#include "usdt_guest_variants.h"
};

std::string arch_file(Arch arch) { return arch == Arch::Arm64 ? "arm64" : "riscv64"; }
std::string bpf_arch(Arch arch) { return arch == Arch::Arm64 ? "arm64" : "riscv"; }

// The linked target, mapped at its link address in this process.
class Image {
 public:
  explicit Image(const std::string& path) : path_(path) {
    auto file = llvm::object::ObjectFile::createObjectFile(path);
    if (!file) throw Error(path, llvm::toString(file.takeError()));
    const llvm::object::ObjectFile& obj = *file->getBinary();
    uint64_t lo = UINT64_MAX, hi = 0;
    for (const llvm::object::SectionRef& sec : obj.sections()) {
      const llvm::object::ELFSectionRef elf(sec);
      if (!(elf.getFlags() & 2 /* SHF_ALLOC */) || !sec.getSize()) continue;
      lo = std::min(lo, sec.getAddress());
      hi = std::max(hi, sec.getAddress() + sec.getSize());
    }
    if (lo != kImage) throw Error(path, fmt::format("linked at {:#x}, not {:#x}", lo, kImage));
    size_ = (hi - lo + 0xfff) & ~uint64_t(0xfff);
    void* at = mmap(reinterpret_cast<void*>(kImage), size_, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (at != reinterpret_cast<void*>(kImage))
      throw Error(path, fmt::format("{:#x} is taken in this process", kImage));
    for (const llvm::object::SectionRef& sec : obj.sections()) {
      const llvm::object::ELFSectionRef elf(sec);
      if (!(elf.getFlags() & 2) || sec.isBSS() || !sec.getSize()) continue;
      auto bytes = sec.getContents();
      if (!bytes) throw Error(path, "a section does not read");
      std::memcpy(reinterpret_cast<void*>(sec.getAddress()), bytes->data(), bytes->size());
    }
    for (const llvm::object::SymbolRef& sym : obj.symbols()) {
      auto name = sym.getName();
      auto value = sym.getValue();
      if (name && value && llvm::object::ELFSymbolRef(sym).getSize())
        functions_[name->str()] = {*value, llvm::object::ELFSymbolRef(sym).getSize()};
      if (!name) llvm::consumeError(name.takeError());
      if (!value) llvm::consumeError(value.takeError());
    }
  }
  ~Image() { munmap(reinterpret_cast<void*>(kImage), size_); }
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;

  uint64_t size() const { return size_; }
  // The symbol's address and size.
  std::pair<uint64_t, uint64_t> symbol(const std::string& name) const {
    auto it = functions_.find(name);
    if (it == functions_.end()) throw Error(path_, "no symbol " + name);
    return it->second;
  }
  // The function the address is in: its address and size.
  std::pair<uint64_t, uint64_t> function_at(uint64_t address) const {
    for (const auto& [name, f] : functions_)
      if (f.first <= address && address < f.first + f.second && name.find("_fire_") != std::string::npos) return f;
    throw Error(path_, fmt::format("no function holds {:#x}", address));
  }

 private:
  std::string path_;
  uint64_t size_ = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> functions_;
};

// One guest with a build of the targets and the object's programs.
class UsdtGuest : public testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    const Variant& v = GetParam();
    image_path_ = fmt::format("{}/usdt_{}.{}", SB_PROBES_DIR, v.tag, arch_file(v.arch));
    image_.emplace(image_path_);
    guest_.emplace(v.arch);
    guest_->map_host(kImage, image_->size(), /*executable=*/true);
    runtime_.emplace(*guest_);
    helpers_ = rt::standard_helpers(env_);
    rt::add_tracing_helpers(helpers_);
    const std::string object = fmt::format("{}/usdt.{}.bpf.o", SB_PROBES_DIR, bpf_arch(v.arch));
    object_ = env_.load_elf_all(read_file(object), object);
  }

  std::string provider() const { return fmt::format("sb_usdt_{}", GetParam().tag); }
  uint64_t fn(const char* name) const { return image_->symbol(provider() + "_fire_" + name).first; }

  // Compiles `function` of probes/usdt.bpf.c for the guest (the object's
  // programs were loaded once, with one set of maps, in env_).
  uint64_t load(const std::string& function) {
    const bpf::ElfProgram* p = nullptr;
    for (const bpf::ElfProgram& e : object_)
      if (e.function == function) p = &e;
    if (!p) throw Error("usdt.bpf.o", "no program " + function);
    CompileOptions opts;
    opts.arch = GetParam().arch;
    opts.helper_address = [this](uint32_t id) {
      auto it = slots_.find(id);
      if (it != slots_.end()) return it->second;
      const rt::Helper* h = helpers_.find(id);
      if (!h) throw Error("usdt.bpf.o", fmt::format("helper {} is not in the table", id));
      const rt::HelperFn f = h->fn;
      return slots_[id] = guest_->add_host_function(
                 [f](const std::array<uint64_t, 5>& a) { return f(a[0], a[1], a[2], a[3], a[4]); });
    };
    const uint64_t at = kPrograms + 0x10000 * programs_loaded_++;
    guest_->map_code(at, compile(p->program, helpers_, opts).image.text);
    programs_[at] = p->program;
    // Maps (and their values) exist now: the guest sees them where this process does.
    for (const rt::HostRange& r : env_.host_ranges())
      if (!mapped_.count(r.addr)) {
        guest_->map_host(r.addr, r.size);
        mapped_.insert(r.addr);
      }
    return at;
  }

  static std::vector<uint8_t> read_file(const std::string& path) {
    std::vector<uint8_t> out(std::filesystem::file_size(path));
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f || std::fread(out.data(), 1, out.size(), f) != out.size()) throw Error(path, "cannot read");
    std::fclose(f);
    return out;
  }

  // Attaches the program at `entry` to every site of PROVIDER:name, each
  // with its spec (the next free id) and that id as the cookie.
  void attach(uint64_t entry, const char* name, uint64_t usdt_cookie) {
    const std::vector<rt::UsdtProbe> sites = rt::read_usdt_notes(image_path_, 0, provider(), name);
    ASSERT_FALSE(sites.empty()) << provider() << ":" << name;
    rt::Map* specs = env_.find_map("__bpf_usdt_specs");
    ASSERT_NE(specs, nullptr);
    for (const rt::UsdtProbe& site : sites) {
      EXPECT_EQ(site.arch, GetParam().arch);
      if (site.semaphore) ++*reinterpret_cast<uint16_t*>(site.semaphore);  // the image is this process's memory
      const uint32_t id = next_spec_++;
      const std::vector<uint8_t> spec = rt::usdt_spec(site.args, usdt_cookie);
      specs->update(&id, spec.data(), 0);
      auto& state = states_.emplace_back(std::make_unique<rt::ProgState>());
      state->context = &env_;
      state->stats = true;
      tramp::Description d;
      d.file = d.target = fmt::format("{}:{}", provider(), name);
      d.no_vector_use = true;  // a guest's helpers are host functions: they leave its registers alone
      d.programs.push_back({tramp::Kind::Uprobe, programs_.at(entry), id});
      const auto [func, size] = image_->function_at(site.address);
      const uint64_t probe = kProbes + kProbeStep * hooks_.size(), stub = probe + kProbeStep / 2;
      tramp::Bindings b;
      b.ip = site.address;
      b.original = stub;
      b.prog_enter = runtime_->enter;
      b.prog_exit = runtime_->exit;
      b.entries.push_back(entry);
      b.states.push_back(reinterpret_cast<uint64_t>(state.get()));
      CompileOptions opts;
      opts.arch = GetParam().arch;
      const ir::Module m = tramp::lower_probe(d, b);
      ir::check(m);
      guest_->map_code(probe, generate(m, opts).text);
      const std::span<const uint8_t> code(reinterpret_cast<const uint8_t*>(func), size);
      const rt::GuestHook hook =
          rt::build_guest_hook({GetParam().arch, func, code, size, probe, stub, true, site.address - func});
      rt::install(*guest_, hook);
      hooks_.push_back(hook);
    }
  }

  uint64_t call(uint64_t f, int64_t arg) {
    ir::Signature sig;
    sig.args = {{ir::Type::I64, 8}};
    sig.ret = {ir::Type::I64, 8};
    return guest_->call(f, sig, {uint64_t(arg)});
  }
  uint64_t call_int(uint64_t f, int32_t arg) {
    ir::Signature sig;
    sig.args = {{ir::Type::I32, 4}};
    sig.ret = {ir::Type::I64, 8};
    return guest_->call(f, sig, {uint64_t(int64_t(arg))});
  }

  long seen(uint32_t key) {
    long v = 0;
    rt::Map* m = env_.find_map("seen");
    EXPECT_NE(m, nullptr);
    const void* value = m ? m->lookup(&key) : nullptr;
    EXPECT_NE(value, nullptr);
    if (value) std::memcpy(&v, value, sizeof v);
    return v;
  }
  std::map<long, uint64_t> values() {
    std::map<long, uint64_t> out;
    rt::Map* m = env_.find_map("values");
    EXPECT_NE(m, nullptr);
    if (m)
      for (const rt::MapEntry& e : m->entries()) {
        long k = 0;
        uint64_t n = 0;
        std::memcpy(&k, e.key.data(), sizeof k);
        std::memcpy(&n, e.values.at(0).data(), sizeof n);
        out[k] = n;
      }
    return out;
  }

  std::string image_path_;
  std::optional<Image> image_;
  rt::Environment env_;
  rt::HelperTable helpers_;
  std::optional<rt::Guest> guest_;
  std::optional<GuestProgRuntime> runtime_;
  std::map<uint32_t, uint64_t> slots_;
  std::vector<bpf::ElfProgram> object_;
  std::map<uint64_t, bpf::Program> programs_;
  std::set<uint64_t> mapped_;
  size_t programs_loaded_ = 0;
  uint32_t next_spec_ = 0;
  std::vector<std::unique_ptr<rt::ProgState>> states_;
  std::vector<rt::GuestHook> hooks_;
};

// Every argument kind reads what the code passed, as on x86-64.
TEST_P(UsdtGuest, ArgumentsOfEveryKind) {
  attach(load("on_args"), "args", 0xc00c1e);
  const uint64_t table = image_->symbol(provider() + "_table").first;
  for (int i : {3, 7}) {
    SCOPED_TRACE(i);
    EXPECT_EQ(int64_t(call_int(fn("args"), i)), fire_args_result(i));
    expect_on_args([this](uint32_t k) { return seen(k); }, i, long(table), 0xc00c1e);
  }
  EXPECT_EQ(rt::stats_of(*states_.at(0)).run_count, 2u);
}

// Two sites of one probe (an inlined function used twice), each with its
// own spec; a static variable's value (gcc -O2: arm64 "[x0, 64]", riscv64
// "%lo(SYM)(a5)", memory at a register plus an offset); a site right
// before the function's return.
TEST_P(UsdtGuest, EverySiteAStaticVariableAndTheLastInstruction) {
  const uint64_t on_value = load("on_value");
  attach(on_value, "twice", 0);
  EXPECT_EQ(states_.size(), 2u) << "two sites";
  EXPECT_EQ(call(fn("twice"), 100), 300u);
  attach(on_value, "global", 0);
  EXPECT_EQ(call(fn("global"), 4242), 8484u);
  attach(on_value, "tail", 0);
  call(fn("tail"), 77);
  const std::map<long, uint64_t> v = values();
  EXPECT_EQ(v, (std::map<long, uint64_t>{{77, 1}, {100, 1}, {101, 1}, {4242, 1}}));
  for (const auto& s : states_) EXPECT_EQ(rt::stats_of(*s).run_count, 1u);
}

// A probe behind its semaphore fires once the attach counted it up; the
// program sees this process's ids and the calling thread's name, as a
// uprobe in this process would (the helpers run here).
TEST_P(UsdtGuest, SemaphoreAndWhoRuns) {
  const uint64_t guarded = fn("guarded");
  EXPECT_EQ(call(guarded, 1), 0u) << "nobody listens yet";
  attach(load("on_who"), "guarded", 0);
  EXPECT_EQ(call(guarded, 42), 1u);
  EXPECT_EQ(seen(0), 42);
  EXPECT_EQ(uint64_t(seen(1)), uint64_t(getpid()) << 32 | uint64_t(gettid()));
  char comm[16] = {};
  pthread_getname_np(pthread_self(), comm, sizeof comm);
  char got[16];
  const long words[2] = {seen(2), seen(3)};
  std::memcpy(got, words, sizeof got);
  EXPECT_STREQ(got, comm);
}

std::vector<Variant> variants() { return {std::begin(kVariants), std::end(kVariants)}; }

INSTANTIATE_TEST_SUITE_P(Builds, UsdtGuest, testing::ValuesIn(variants()),
                         [](const testing::TestParamInfo<Variant>& i) {
                           return arch_file(i.param.arch) + "_" + i.param.tag;
                         });

}  // namespace
}  // namespace sb::test
