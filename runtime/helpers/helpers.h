// Helper functions a program calls by id (`call N`), registered by the
// embedder. Every engine (interpreter, native JIT, Unicorn) resolves ids
// through one HelperTable, so a helper behaves the same everywhere.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "frontend/verifier/helper_protos.h"
#include "frontend/verifier/verifier.h"

namespace sb::rt {

using HelperFn = uint64_t (*)(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);

// A range of host memory, page-aligned where HelperContext says so.
struct HostRange {
  uint64_t addr = 0;
  uint64_t size = 0;
};

// What the helpers of a table work on beyond their arguments: maps, trace
// output, readable ranges (rt::Environment for the standard set). A helper
// is a plain function of r1-r5, so each engine makes its table's context the
// calling thread's current one for the length of a run (ContextScope) and a
// helper finds it with HelperContext::current(). That pointer, the run's
// tail-call state (runtime/helpers/tail_call.h) and a hardened run's record
// (runtime/exec/hardening.h) are the runtime's only per-thread state, all kept
// by CurrentScope below; they go away once helper calls pass a context
// argument (a backend change).
class HelperContext {
 public:
  virtual ~HelperContext() = default;
  // Host memory a program may reach besides its input and stack (map values,
  // global data, ring buffers), page-aligned. The emulator maps each range
  // into the guest at the same address, so a pointer means the same thing on
  // every engine and to helpers running on the host.
  virtual std::vector<HostRange> host_ranges() const = 0;
  // The map whose handle is `handle`, as the verifier types an lddw of it
  // (VerifyOptions::map_at); nullopt: not a map of this context.
  virtual std::optional<bpf::MapUse> map_use(uint64_t handle) const { return std::nullopt; }
  // The context of the run on this thread, or null.
  static HelperContext* current();
};

// Initial-exec TLS: an fs-relative access, no __tls_get_addr call per use,
// also in the shared library (loaded with the program, not dlopen'ed).
// Not under the sanitizers: GCC 12's UBSan null check computes such an
// address without the thread pointer and reports every store as one to null.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define SB_TLS_INITIAL_EXEC
#else
#define SB_TLS_INITIAL_EXEC __attribute__((tls_model("initial-exec")))
#endif

// The runtime's per-thread state, in one form: a run makes its object (a
// helper context, a hardened run's record, a tail-call run) this thread's
// current one for its length, and code that a run calls (helpers, on every
// engine) finds it with current(). Runs may nest: a helper may run a
// program; the previous object comes back when the scope ends.
template <typename T>
class CurrentScope {
 public:
  explicit CurrentScope(T* value) : saved_(slot()) { slot() = value; }
  ~CurrentScope() { slot() = saved_; }
  CurrentScope(const CurrentScope&) = delete;
  CurrentScope& operator=(const CurrentScope&) = delete;
  static T* current() { return slot(); }
  // Makes `value` current and returns the previous one (for code that
  // brackets a run with two calls rather than a scope: trampolines).
  static T* exchange(T* value) {
    T* previous = slot();
    slot() = value;
    return previous;
  }

 private:
  static T*& slot() {
    thread_local T* value SB_TLS_INITIAL_EXEC = nullptr;
    return value;
  }
  T* saved_;
};

// Makes `ctx` the current context of this thread until destroyed.
using ContextScope = CurrentScope<HelperContext>;

struct Helper {
  uint32_t id = 0;
  std::string name;
  HelperFn fn = nullptr;
  // ubpf's "unwind" extension: when the helper returns 0 the whole program
  // ends with r0 = 0 (conformance helper 5, see call_unwind_fail.data).
  bool unwind_on_zero = false;
  // bpf_tail_call (runtime/helpers/tail_call.h): `fn` returns the code the target
  // program starts at, or 0 to fall through; compiled code jumps there and
  // the interpreter switches programs.
  bool tail_call = false;
  // What the verifier checks at a call (frontend/verifier/helper_protos.h);
  // null: an embedder's helper, called unchecked.
  const bpf::verifier::HelperProto* proto = nullptr;
};

// One of the kernel's helpers as Springboard has it: its id, name and function.
struct KernelHelper {
  uint32_t id;
  const char* name;
  HelperFn fn;
};

class HelperTable {
 public:
  // Adds each helper with its prototype (bpf::verifier::standard_helper_proto).
  void add_kernel_helpers(std::span<const KernelHelper> helpers);
  // Replaces an existing helper with the same id.
  void add(uint32_t id, std::string name, HelperFn fn, bool unwind_on_zero = false);
  // A tail-call helper (Helper::tail_call), replacing one with the same id.
  void add_tail_call(uint32_t id, std::string name, HelperFn fn);
  const Helper* find(uint32_t id) const;
  // Gives helper `id` (already added) its prototype.
  void set_proto(uint32_t id, const bpf::verifier::HelperProto* proto);
  // What the verifier needs of this table: its helpers' prototypes and
  // its context's maps (VerifyOptions::helper, map_at). The table must
  // outlive the options.
  bpf::verifier::VerifyOptions verify_options() const;
  const std::vector<Helper>& all() const { return helpers_; }  // ascending ids

  // The context engines make current while they run a program (may be null).
  void set_context(HelperContext* ctx) { context_ = ctx; }
  HelperContext* context() const { return context_; }

  // The set the conformance suite expects: helper 5 "unwind" returns its
  // argument and unwinds when that argument is 0.
  static HelperTable conformance();

 private:
  std::vector<Helper> helpers_;
  HelperContext* context_ = nullptr;
};

}  // namespace sb::rt
