// Trampoline descriptions: the Linux kernel's BPF trampoline
// (kernel/bpf/trampoline.c) brought to user space. Around a target
// function, run fentry programs, then fmod_ret programs (a non-zero result
// skips the original and becomes the return value), the original, then
// fexit programs, with cookies, statistics and recursion protection.
//
// JSON schema (docs: README "Trampolines"):
//   {
//     "arch": "x86-64",                       optional; the CLI's --arch wins
//     "target": {
//       "name": "add",                        for messages and symbols
//       "args": ["i32", "ptr", "f64", {"struct": ["i32", "i64"]}],
//       "ret": "i64"                          or "void", "f32", ...
//     },
//     "flags": {"call_original": true, "ip_arg": false,
//               "stats": false, "recursion_guard": true},   (the defaults)
//     "programs": [
//       {"kind": "fentry", "file": "count.s", "cookie": 7},
//       {"kind": "fexit", "asm": "mov %r0, 0\nexit"}
//     ]
//   }
// Types: i8 u8 i16 u16 i32 u32 i64 u64 ptr f32 f64, and structs of integer
// fields up to 16 bytes (natural C layout). At most 12 arguments and 38
// programs, as the kernel. A program is bytecode: "file" (raw, or .s/.asm
// assembled; relative to the description) or inline "asm".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/bpf.h"
#include "ir/ir.h"

namespace sb::tramp {

// Uprobe and Uretprobe programs make a probe instead (lower_probe): at an
// instruction, every register saved in the architecture's pt_regs
// (backends/native_abi.h, ProbeRegs), which is the programs' ctx; a
// uretprobe runs when the probed function returns, ctx the pt_regs there
// (PT_REGS_RC the return value). A description holds probes or the
// others, not both.
enum class Kind : uint8_t { Fentry, FmodRet, Fexit, Uprobe, Uretprobe };
const char* kind_name(Kind k);
bool is_probe(Kind k);

constexpr size_t kMaxArgs = 12;      // as the kernel's MAX_BPF_FUNC_ARGS
constexpr size_t kMaxPrograms = 38;  // as the kernel's BPF_MAX_TRAMP_LINKS

struct AttachedProgram {
  Kind kind = Kind::Fentry;
  bpf::Program program;
  uint64_t cookie = 0;
  // It calls bpf_override_return (overrides_return(program)), said where
  // `program` is left empty because it is compiled apart.
  bool overrides_return = false;
};

struct Description {
  std::string file;     // where errors point
  std::string arch;     // empty: not given
  std::string target;   // the target function's name
  ir::Signature signature;  // args and ret (spill_off is set by lowering)
  bool call_original = true;
  bool ip_arg = false;
  bool stats = false;  // off by default, as the kernel's bpf_stats_enabled: two counter reads per program
  bool recursion_guard = true;
  // enter/exit run around every program even without statistics or guard:
  // they make each program's helper context current (set by whoever binds
  // the trampoline in this process; not a description field).
  bool run_context = false;
  // Probes: no program calls a helper (what may use vector registers),
  // so the probe need not save them (ir::Function::Probe::vectors;
  // set by whoever binds it, who knows the compiled programs).
  bool no_vector_use = false;
  std::vector<AttachedProgram> programs;
  std::vector<size_t> of_kind(Kind k) const;  // indexes into programs, in order
  bool probe() const;  // its programs are uprobes and uretprobes
};

// Throws sb::Error whose where is "FILE: field PATH" (e.g. programs[2].kind).
Description parse_description(std::string_view json, const std::string& file,
                              const std::string& base_dir = ".");
Description read_description(const std::string& path);

// A target's signature written compactly, as the C API and the command
// line take it: argument types, "->", the return type ("i64, i64 -> i64",
// "ptr, {i64, i32} -> void", "-> f64"; no arrow: void). The type names and
// rules are the description's (target.args / target.ret). Throws sb::Error
// located "WHERE: field signature.args[N]".
ir::Signature parse_signature(std::string_view text, const std::string& where);

// The addresses a trampoline calls, chosen by whoever places it in memory
// (runtime/hook/trampoline.cpp in this process; the emulator in a guest).
struct Bindings {
  uint64_t ip = 0;          // the target's address, for the ip argument
  uint64_t original = 0;    // code that runs the original function
  uint64_t prog_enter = 0;  // uint64_t enter(ProgState*, RunCtx*): 0 = skip the program
  uint64_t prog_exit = 0;   // void exit(ProgState*, uint64_t start, RunCtx*)
  std::vector<uint64_t> entries;  // each program's compiled entry, by program index
  std::vector<uint64_t> states;   // each program's ProgState*, by program index
  // When set: the offset from the thread pointer of the running thread's
  // in-flight stack (runtime/hook/tramp_runtime.h, InFlightStack: a depth,
  // then `in_flight_capacity` tokens). The trampoline pushes `image_token`
  // on entry before it calls anything and pops it just before it returns;
  // runtime/hook/trampoline.h frees a replaced image once no thread holds
  // its token or stands in its code.
  std::optional<int32_t> in_flight_tls;
  uint32_t in_flight_capacity = 0;
  uint64_t image_token = 0;
  // When set (a host trampoline): the offset from the thread pointer of
  // the running thread's guard state (runtime/hook/tramp_runtime.h,
  // ThreadGuard; kGuard* below), and for each program (by index) whether
  // it is plain: no statistics and no helper context. A plain program's
  // enter and exit then run inline when no other program is running on
  // the thread, doing what prog_enter and prog_exit would; any other case
  // calls them.
  std::optional<int32_t> guard_tls;
  std::vector<uint8_t> plain;
  // Probes: `ip` is the probed instruction, `original` where execution
  // goes on (the displaced instructions' copy). With uretprobe programs
  // the probe calls void ret_enter(pt_regs*, ret_site, ret_landing)
  // (runtime/hook/tramp_runtime.h).
  uint64_t ret_enter = 0;
  uint64_t ret_site = 0;
  uint64_t ret_landing = 0;
  // lower_return_probe: uint64_t ret_pop(pt_regs*), the real return address.
  uint64_t ret_pop = 0;
};

// Addresses for a trampoline printed on its own (CLI, golden files):
// recognisable constants an embedder replaces when placing it: 0x1000...
// ip and original, 0x2000... enter/exit, 0x3000...+0x100*i program i's
// entry, 0x4000...+0x100*i its state.
Bindings placeholder_bindings(const Description& d);

// The frame every trampoline builds (r10-relative), kernel order:
//   r10 - 8           return value       = ctx[words]
//   ctx = r10 - 8*(words+1)  argument words ctx[0..words)
//   ctx - 8           number of argument words
//   ctx - 16          ip of the target (when ip_arg)
//   ctx - 56          run context (runtime/hook/tramp_runtime.h, RunCtx,
//                     kRunCtxBytes): r10 at +0 (0 in a probe), the cookie
//                     at +8 (= ctx - 48), the target's ip at +24
inline constexpr int32_t kRunCtxBytes = 40;
inline constexpr int32_t kRunCtxFrame = 0;    // RunCtx::frame
inline constexpr int32_t kRunCtxCookie = 8;   // RunCtx::cookie
inline constexpr int32_t kRunCtxFuncIp = 24;  // RunCtx::func_ip
inline constexpr int32_t kRunCtxPrev = 32;    // RunCtx::prev
// ThreadGuard (Bindings::guard_tls): the current run context, the number
// of running programs (32 bits), the running programs' states.
inline constexpr int32_t kGuardRunCtx = 0, kGuardDepth = 8, kGuardRunning = 16;
struct Frame {
  int32_t ret, ctx, nr_args, ip, run_ctx;
  uint32_t size;
};
Frame frame_of(const ir::Signature& sig);

// Whether the program calls bpf_override_return (helper 58), which may
// change where its probe goes on: only at a function's entry.
bool overrides_return(const bpf::Program& p);

// A description's trampoline; for probes, lower_probe's.
ir::Module lower(const Description& d, const Bindings& b);
// A probe at b.ip (ir::Function::probe): the uprobe programs, then
// ret_enter when there are uretprobe programs; continues at b.original.
ir::Module lower_probe(const Description& d, const Bindings& b);
// The uretprobe programs, as a native function (pt_regs*) -> 0 that the
// return landing's dispatch calls when the probed function returns.
ir::Module lower_return(const Description& d, const Bindings& b);
// A return probe that is its own return landing, for one function (a
// guest's: runtime/hook/hook_guest.h, GuestReturnStack): ret_pop, then
// the uretprobe programs, then on at the real return address.
ir::Module lower_return_probe(const Description& d, const Bindings& b);
// The code a probed function returns into while a uretprobe waits: a
// probe whose body continues where uint64_t dispatch(pt_regs*) says.
ir::Module lower_return_landing(uint64_t dispatch);

}  // namespace sb::tramp
