// Trampolines attached to functions of this process (x86-64 hosts), as the
// kernel's kernel/bpf/trampoline.c: a table keyed by target with reference
// counts (get / lookup / put), programs linked and unlinked at any time,
// each change generating a new image that calls arriving afterwards use.
//
// Nothing is freed while a thread may still run it. An image that a change
// replaced, and the programs only it calls, are freed once no thread can be
// running it: each thread keeps a stack of the images it is inside (the
// trampoline pushes its token on entry and pops it on its way out, plain
// stores to the thread's own memory, where the kernel takes a percpu_ref on
// the trampoline), and a retired image is freed when a stop round
// (runtime/hook/live_patch.h) finds it on no thread's stack and no thread
// standing in its code: a thread inside but not on the stack is in the few
// instructions before the push or after the pop, where the round sees it. The
// statistics of an unlinked program stay readable until then.
// A detached hook (thunk, stub, the slot its jump reads) is freed by the
// stop round that follows the detach, or a later one, once no thread
// stands in its thunk or stub and no retired image that calls its stub is
// left; its pages near the function are then free for the next attach. A
// stub that calls out through a displaced indirect call is kept while the
// trampoline lives, since a thread may return into it at any time (a
// displaced direct call returns to the function itself). A
// trampoline the table dropped is destroyed once it has nothing retired
// left (looked at on each get and put). Callers never take a lock.
// Not covered: a thread that a signal interrupted inside an image, thunk
// or stub and whose handler is still running when the round stops it is
// seen in the handler, not where it will return to (the image's counts
// still hold such an image; a thunk or stub could be freed under it).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "frontend/trampoline.h"
#include "runtime/exec/exec_memory.h"
#include "runtime/helpers/helpers.h"
#include "runtime/hook/hook_x86_64.h"
#include "runtime/exec/native.h"
#include "runtime/hook/tramp_runtime.h"

namespace sb::rt {

struct TrampolineOptions {
  bool call_original = true;
  bool ip_arg = false;
  bool stats = false;  // as tramp::Description: count and time runs on request only
  bool recursion_guard = true;
  // A probe at an instruction (uprobe and uretprobe links, ctx the
  // pt_regs) instead of a trampoline around a call (fentry, fexit,
  // fmod_ret); the signature is then not used. Uretprobes need the target
  // to be a function's entry (its return address on top of the stack).
  bool probe = false;
};

using LinkId = uint64_t;

class Trampoline {
 public:
  Trampoline(void* target, ir::Signature sig, TrampolineOptions opts, std::string name);
  ~Trampoline();

  // Compiles `p` and links it; the first link hooks the target. Throws
  // sb::Error (bad program, more than 38 links, target not hookable).
  LinkId link(tramp::Kind kind, const bpf::Program& p, uint64_t cookie, const HelperTable& helpers);
  // The same with `p` compiled already (NativeProgram of p and helpers),
  // shared with other links: a USDT probe's sites run one compiled copy.
  LinkId link(tramp::Kind kind, const bpf::Program& p, std::shared_ptr<const NativeProgram> compiled, uint64_t cookie,
              const HelperTable& helpers);
  // Unlinks; the last unlink restores the target's original bytes.
  void unlink(LinkId id);
  void unlink_all();  // and detach
  ProgStats stats(LinkId id) const;
  const ReturnSite* return_site() const { return return_site_; }

  void* target() const { return target_; }
  const ir::Signature& signature() const { return sig_; }
  const TrampolineOptions& options() const { return opts_; }
  size_t links() const;
  bool attached() const;
  // Runs the original function (valid while attached); for tests and
  // for programs that want to call through.
  const void* original() const;
  // Whether the probe took a breakpoint (Hook::breakpoint: a trap per hit).
  bool breakpoint() const;
  // The current image's code (for listings); empty when detached.
  std::vector<uint8_t> image() const;
  // Frees now what a change retired and no thread can still be running
  // (a stop round); whether nothing retired is left.
  bool collect();

 private:
  struct LinkData {  // shared by the images that call it
    LinkId id;
    std::shared_ptr<const NativeProgram> program;  // may be shared with other links (USDT sites)
    ProgState state;
    bool calls_helpers = false;  // may run C code that uses vector registers (probes save them then)
    bool overrides_return = false;  // calls bpf_override_return: the probe may go on elsewhere
  };
  struct Link {
    LinkId id;
    tramp::Kind kind;
    uint64_t cookie;
    std::shared_ptr<LinkData> data;
  };
  struct Image {
    std::unique_ptr<ExecMemory> code;
    std::unique_ptr<ExecMemory> return_code;  // probes with uretprobe links: lower_return's image
    uint64_t token = 0;  // what it pushes on the in-flight stacks (tramp_runtime.h)
    std::vector<std::shared_ptr<LinkData>> links;  // the programs it calls
    const Hook* hook = nullptr;                    // whose stub it calls as the original
  };
  void update();   // regenerate and publish the image; mu_ held
  void detach();   // restore the target, retire hook and image; mu_ held
  // Frees the retired images and hooks no thread can be running; mu_ held.
  // `all`: look now, not only once a batch of images has gathered.
  void reclaim(bool all);
  friend class TrampolineTable;

  mutable std::mutex mu_;
  void* target_;
  ir::Signature sig_;
  TrampolineOptions opts_;
  std::string name_;
  std::vector<Link> links_;
  LinkId next_id_ = 1;
  std::unique_ptr<Hook> hook_;
  std::optional<Image> image_;
  mc::CodeImage image_code_;
  // Replaced and maybe still running: freed by reclaim() once no thread can
  // be (with them the programs only they call).
  std::vector<Image> retired_images_;
  std::vector<std::unique_ptr<Hook>> retired_hooks_;
  std::vector<std::unique_ptr<Hook>> kept_hooks_;  // stubs that call out: a thread may return into them
  ReturnSite* return_site_ = nullptr;  // uretprobes: never freed (tramp_runtime.h)
};

// Where a function with a uretprobe returns to (lower_return_landing's
// code, made on first use and never freed).
const void* return_landing();

// How many returns a uretprobe missed because a thread's return stack was
// full (tramp_runtime.h, kMaxReturnDepth); 0 for other trampolines.
uint64_t return_misses(const Trampoline& t);

class TrampolineTable {
 public:
  // Finds or creates the trampoline of `target` and takes a reference.
  // Throws sb::Error if it exists with a different signature or different
  // options (statistics, recursion guard, call_original, ip_arg).
  Trampoline& get(void* target, const ir::Signature& sig, const TrampolineOptions& opts = {},
                  const std::string& name = "target");
  Trampoline* lookup(void* target) const;  // no reference taken
  // Drops a reference; the last one unlinks everything and detaches.
  void put(void* target);
  ~TrampolineTable();

 private:
  struct Entry {
    std::unique_ptr<Trampoline> trampoline;
    int refs = 0;
  };
  void sweep_graveyard();  // mu_ held
  mutable std::mutex mu_;
  std::map<void*, Entry> table_;
  std::vector<std::unique_ptr<Trampoline>> graveyard_;  // dropped, something retired still in use
};

}  // namespace sb::rt
