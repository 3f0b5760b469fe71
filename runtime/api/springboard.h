/* springboard.h: Springboard's embeddable C API (C99; usable from C++).
 *
 * A VM owns everything else: the helpers (the kernel's, runtime/helpers/std_helpers.h,
 * plus the embedder's), the maps, the loaded programs and their compiled
 * code. Programs are loaded from raw bytecode, the conformance suite's
 * assembly or a `clang -target bpf` ELF object; a program is compiled for an
 * engine ("interp", "x86_64_native", "arm64_emu", ...; sb_engine_name lists
 * them) and then run any number of times over a memory buffer (r1 = its
 * address, r2 = its size), giving r0.
 *
 *   sb_vm *vm;  sb_program *p;  sb_code *c;  uint64_t r0;
 *   sb_vm_create(NULL, &vm);
 *   if (sb_vm_load_file(vm, "prog.o", "xdp", NULL, &p) != SB_OK ||
 *       sb_program_compile(p, "x86-64", &c) != SB_OK ||
 *       sb_code_run(c, packet, sizeof packet, &r0) != SB_OK)
 *     fprintf(stderr, "%s\n", sb_vm_last_error(vm));
 *   sb_vm_destroy(vm);
 *
 * Errors: every function that can fail returns an sb_status; the message of
 * the last failed call on a VM (per calling thread) is sb_vm_last_error's,
 * and names the file, the instruction or field and the fault, e.g.
 * "bad.bin: instruction 1: jump into the middle of lddw at 2". A success
 * leaves the last message as it was (a VM keeps the messages of up to 1024
 * threads, then starts afresh). No C++ exception crosses this API.
 *
 * Threads: sb_code_run, map operations and sb_vm_last_error may be called
 * from any number of threads at once. Loading, compiling, registering
 * helpers, creating maps and destroying handles must not run concurrently
 * with other calls on the same VM.
 *
 * Lifetimes: programs, code and maps belong to their VM and are freed by
 * sb_vm_destroy (sb_program_destroy / sb_code_destroy free them earlier).
 * A code stays valid when its program is destroyed. Strings returned are
 * owned by the handle they came from.
 */
#ifndef SPRINGBOARD_H
#define SPRINGBOARD_H

#include <stddef.h>
#include <stdint.h>

#define SPRINGBOARD_VERSION_MAJOR 0
#define SPRINGBOARD_VERSION_MINOR 1
#define SPRINGBOARD_VERSION_PATCH 0
#define SPRINGBOARD_VERSION_STRING "0.1.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, for #if comparisons. */
#define SPRINGBOARD_VERSION (SPRINGBOARD_VERSION_MAJOR * 10000 + SPRINGBOARD_VERSION_MINOR * 100 + SPRINGBOARD_VERSION_PATCH)

#if defined(__GNUC__)
#define SB_API __attribute__((visibility("default")))
#else
#define SB_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ---- */

typedef enum sb_status {
  SB_OK = 0,
  SB_ERR_NULL = 1,             /* a required handle or pointer argument is NULL */
  SB_ERR_INVALID_ARGUMENT = 2, /* a size, flag or name that cannot be right */
  SB_ERR_IO = 3,               /* a file cannot be read */
  SB_ERR_BAD_PROGRAM = 4,      /* malformed bytecode or assembly */
  SB_ERR_BAD_ELF = 5,          /* malformed ELF object, or no such section/function */
  SB_ERR_UNKNOWN_ENGINE = 6,   /* no engine or architecture of that name */
  SB_ERR_UNAVAILABLE = 7,      /* the engine exists but not in this build or on this host */
  SB_ERR_COMPILE = 8,          /* the program was rejected while compiling (e.g. unknown helper) */
  SB_ERR_NOT_FOUND = 9,        /* no map of that name, no element with that key */
  SB_ERR_MAP = 10,             /* a map operation failed (full, exists, bad type or sizes) */
  SB_ERR_EXEC = 11,            /* the program faulted at run time (trap, budget, bad helper id) */
  SB_ERR_NO_MEMORY = 12,
  SB_ERR_INTERNAL = 13,        /* anything else: a bug in Springboard */
  SB_STATUS_MAX_ENUM = 0x7fffffff /* not a status: makes every int a valid sb_status */
} sb_status;

/* "SB_ERR_BAD_PROGRAM" for SB_ERR_BAD_PROGRAM; "SB_UNKNOWN_STATUS" otherwise. */
SB_API const char* sb_status_name(sb_status status);
/* The library's version, "0.1.0" (may differ from the header's). */
SB_API const char* sb_version(void);

/* ---- the VM ---- */

typedef struct sb_vm sb_vm;
typedef struct sb_program sb_program;
typedef struct sb_code sb_code;
typedef struct sb_map sb_map;

/* sb_vm_options.flags */
#define SB_VM_NO_TIMING 1u /* count runs but do not time them: saves two cycle-counter reads per run */
#define SB_VM_NO_STATS 2u  /* neither count nor time runs: sb_code_run adds about 1 ns to the code's own time */
#define SB_VM_NO_VERIFY 4u /* trusted code: sb_program_compile skips the verifier's proof of safety */

/* Zero-initialized options are the defaults. */
typedef struct sb_vm_options {
  uint32_t num_cpus;     /* copies in per-CPU maps; 0: the host's CPU count */
  uint32_t flags;        /* SB_VM_* */
  uint64_t prandom_seed; /* get_prandom_u32's sequence; 0: seeded at random */
} sb_vm_options;

/* `options` may be NULL. On failure *out is NULL. */
SB_API sb_status sb_vm_create(const sb_vm_options* options, sb_vm** out);
SB_API void sb_vm_destroy(sb_vm* vm); /* NULL is ignored */

/* The message of this thread's last failed call on `vm` ("" when none). */
SB_API const char* sb_vm_last_error(const sb_vm* vm);
SB_API sb_status sb_vm_last_status(const sb_vm* vm);

/* An embedder's pointer, for helpers to reach through sb_current_vm(). */
SB_API void sb_vm_set_user_data(sb_vm* vm, void* user_data);
SB_API void* sb_vm_user_data(const sb_vm* vm);
/* Inside a helper: the VM whose program runs on this thread (else NULL). */
SB_API sb_vm* sb_current_vm(void);

/* bpf_trace_printk output since the last call (owned by the VM, valid
 * until the next call). */
SB_API const char* sb_vm_take_trace(sb_vm* vm);

/* ---- helpers ---- */

/* A helper gets r1-r5 and returns r0. The kernel's ids 1-7 and 130-133
 * (map operations, probe_read, ktime_get_ns, trace_printk,
 * get_prandom_u32, ring buffers) and the tracing helpers 8, 14-16, 27, 67,
 * 109, 112-115, 117, 173 and 174 (get_smp_processor_id,
 * get_current_pid_tgid / uid_gid / comm, get_stackid and get_stack (x86-64
 * probes), send_signal / send_signal_thread, probe_read_user / kernel
 * (_str): a bad address gives -EFAULT, never a crash; get_func_ip,
 * get_attach_cookie) are registered by sb_vm_create;
 * registering an id again replaces it. Register helpers before compiling
 * the programs that call them: compiled code calls the helper it was
 * compiled with. `name` may be NULL. */
typedef uint64_t (*sb_helper_fn)(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);
SB_API sb_status sb_vm_register_helper(sb_vm* vm, uint32_t id, const char* name, sb_helper_fn fn);

/* ---- maps ---- */

/* The kernel's numbering (BPF_MAP_TYPE_*). */
typedef enum sb_map_type {
  SB_MAP_HASH = 1,
  SB_MAP_ARRAY = 2,
  SB_MAP_PROG_ARRAY = 3,
  SB_MAP_PERF_EVENT_ARRAY = 4,
  SB_MAP_PERCPU_HASH = 5,
  SB_MAP_PERCPU_ARRAY = 6,
  SB_MAP_STACK_TRACE = 7,
  SB_MAP_LRU_HASH = 9,
  SB_MAP_LRU_PERCPU_HASH = 10,
  SB_MAP_LPM_TRIE = 11,
  SB_MAP_ARRAY_OF_MAPS = 12, /* sb_vm_create_map_of_maps */
  SB_MAP_HASH_OF_MAPS = 13,
  SB_MAP_DEVMAP = 14,
  SB_MAP_CPUMAP = 16,
  SB_MAP_XSKMAP = 17,
  SB_MAP_QUEUE = 22,
  SB_MAP_STACK = 23,
  SB_MAP_DEVMAP_HASH = 25,
  SB_MAP_RINGBUF = 27,
  SB_MAP_BLOOM_FILTER = 30,
  SB_MAP_TYPE_MAX_ENUM = 0x7fffffff /* not a type: makes every int a valid sb_map_type */
} sb_map_type;

/* sb_map_update's flags: BPF_ANY, BPF_NOEXIST, BPF_EXIST. */
#define SB_UPDATE_ANY 0
#define SB_UPDATE_NOEXIST 1
#define SB_UPDATE_EXIST 2

typedef struct sb_map_info {
  const char* name; /* owned by the map */
  uint32_t type;    /* sb_map_type */
  uint32_t key_size;
  uint32_t value_size;
  uint32_t max_entries;
  uint64_t handle; /* what a program's lddw loads to name this map */
} sb_map_info;

/* The kernel's checks on sizes apply; names are unique per VM. */
SB_API sb_status sb_vm_create_map(sb_vm* vm, const char* name, sb_map_type type, uint32_t key_size,
                                  uint32_t value_size, uint32_t max_entries, sb_map** out);
/* An array or hash of maps (SB_MAP_ARRAY_OF_MAPS, SB_MAP_HASH_OF_MAPS;
 * an array's key_size is 4): each slot holds a map like `inner`, the
 * template (the kernel's inner_map_fd): of its type, key and value sizes
 * and flags, and of its max_entries unless the template has BPF_F_INNER_MAP.
 * The value size is 4, as the kernel's (a file descriptor there). Programs
 * look inner maps up; user space fills the slots with sb_map_set_inner. */
SB_API sb_status sb_vm_create_map_of_maps(sb_vm* vm, const char* name, sb_map_type type, uint32_t key_size,
                                          uint32_t max_entries, const sb_map* inner, sb_map** out);
/* Maps created here or by loading an ELF object. SB_ERR_NOT_FOUND when absent. */
SB_API sb_status sb_vm_find_map(sb_vm* vm, const char* name, sb_map** out);
SB_API size_t sb_vm_map_count(const sb_vm* vm);
SB_API sb_map* sb_vm_map_at(sb_vm* vm, size_t index); /* creation order; NULL past the end */

SB_API sb_status sb_map_get_info(const sb_map* map, sb_map_info* out);
/* The helpers' semantics (bpf_map_lookup_elem / update / delete): sizes
 * must equal the map's; lookup copies the value (a per-CPU array: the
 * copy of the calling thread's CPU; a stack trace map: the stack's ips,
 * zero-padded). An absent key (lookup, delete,
 * update with SB_UPDATE_EXIST) is SB_ERR_NOT_FOUND; any other failure
 * (a full map: E2BIG, SB_UPDATE_NOEXIST on a present key: EEXIST, a map
 * type without elements) is SB_ERR_MAP, its message naming the errno. */
SB_API sb_status sb_map_lookup(sb_map* map, const void* key, size_t key_size, void* value, size_t value_size);
SB_API sb_status sb_map_update(sb_map* map, const void* key, size_t key_size, const void* value,
                               size_t value_size, uint64_t flags);
SB_API sb_status sb_map_delete(sb_map* map, const void* key, size_t key_size);
/* A slot of an array or hash of maps, as the kernel's update with an
 * inner map's descriptor: `flags` as sb_map_update's (an array's only
 * SB_UPDATE_ANY). SB_ERR_MAP naming the errno for a map unlike the template
 * or other flags (EINVAL), an index past the array or a full hash (E2BIG),
 * SB_UPDATE_NOEXIST on a present key (EEXIST); SB_ERR_NOT_FOUND for
 * SB_UPDATE_EXIST on an absent one. The inner map must belong to the same
 * vm. sb_map_delete empties a slot (arrays too, as the kernel's);
 * sb_map_lookup and sb_map_update on these maps are SB_ERR_MAP naming these
 * two functions. */
SB_API sb_status sb_map_set_inner(sb_map* outer, const void* key, size_t key_size, sb_map* inner, uint64_t flags);
/* The map in a slot; SB_ERR_NOT_FOUND for an empty one. */
SB_API sb_status sb_map_get_inner(sb_map* outer, const void* key, size_t key_size, sb_map** out);
/* A ring buffer's submitted records, or a perf event array's records
 * (bpf_perf_event_output, every slot), in order, each once: `fn` is called
 * once per record; *count (may be NULL) says how many. Another type of map
 * is SB_ERR_MAP. */
typedef void (*sb_record_fn)(void* ctx, const void* data, size_t size);
SB_API sb_status sb_map_consume(sb_map* map, sb_record_fn fn, void* ctx, size_t* count);

/* Every element as user space reads it (BPF_MAP_GET_NEXT_KEY and
 * BPF_MAP_LOOKUP_ELEM over the keys: arrays by index, hashes in no set
 * order): `fn` gets the key and `value_count` values of `value_size` bytes
 * one after the other (one per possible CPU for per-CPU maps, else one).
 * Types whose contents are not elements (ring buffers, program arrays,
 * queues) have none. *count (may be NULL) says how many. The map must not
 * change meanwhile from this thread's callback. */
typedef void (*sb_entry_fn)(void* ctx, const void* key, size_t key_size, const void* values, size_t value_size,
                            size_t value_count);
SB_API sb_status sb_map_for_each(sb_map* map, sb_entry_fn fn, void* ctx, size_t* count);

/* ---- programs ---- */

/* Raw bytecode: little-endian 8-byte slots. `name` (may be NULL) appears
 * in error messages. Structural faults are reported here
 * (SB_ERR_BAD_PROGRAM); helper ids are checked when compiling. */
SB_API sb_status sb_vm_load_bytecode(sb_vm* vm, const char* name, const void* bytes, size_t size,
                                     sb_program** out);
/* The conformance suite's assembly syntax (frontend/assembler.h). */
SB_API sb_status sb_vm_load_asm(sb_vm* vm, const char* name, const char* source, sb_program** out);
/* A `clang -O2 -target bpf -c` object: the program in `section` and/or
 * `function` (either may be NULL; both NULL: the only program) with the
 * subprograms it calls. The object's maps are created in the VM, so one
 * object is loaded once per VM. */
SB_API sb_status sb_vm_load_elf(sb_vm* vm, const char* name, const void* bytes, size_t size, const char* section,
                                const char* function, sb_program** out);
/* A file: an ELF object (by its magic), assembly (a name ending in .s or
 * .asm) or else raw bytecode. `section`/`function` apply to objects. */
SB_API sb_status sb_vm_load_file(sb_vm* vm, const char* path, const char* section, const char* function,
                                 sb_program** out);
/* Every program of the ELF object at `path` (list order: by section), its
 * maps created once and shared by them, into programs[0..*count). With
 * more than `capacity` programs none is kept and SB_ERR_INVALID_ARGUMENT
 * says how many (*count). sb_program_name gives each one's function. */
SB_API sb_status sb_vm_load_object(sb_vm* vm, const char* path, sb_program** programs, size_t capacity,
                                   size_t* count);
SB_API void sb_program_destroy(sb_program* program); /* NULL is ignored */

SB_API const char* sb_program_name(const sb_program* program);
SB_API size_t sb_program_slot_count(const sb_program* program); /* 8-byte slots */

/* ---- engines and compiled code ---- */

/* The engines of this build on this host: "interp", "x86_64_native" (on
 * x86-64 hosts), then "<arch>_emu" for each backend (Unicorn).
 * sb_program_compile also takes "jit" (x86_64_native) and architecture
 * names "x86-64", "arm64", "riscv64" (native when the host runs it, else
 * Unicorn). sb_engine_name is NULL past the end. */
SB_API size_t sb_engine_count(void);
SB_API const char* sb_engine_name(size_t index);

SB_API sb_status sb_program_compile(sb_program* program, const char* engine, sb_code** out);
SB_API void sb_code_destroy(sb_code* code); /* NULL is ignored */

/* The engine's name as sb_engine_name spells it. */
SB_API const char* sb_code_engine(const sb_code* code);
/* The machine code (NULL and 0 for the interpreter). */
SB_API const uint8_t* sb_code_machine_code(const sb_code* code, size_t* size);
/* One native instruction per line, "offset: text" (the interpreter: the
 * bytecode); NULL on failure. Computed on first use. */
SB_API const char* sb_code_disassembly(sb_code* code);

/* Runs over `mem` (r1 = mem, r2 = size; the program reads and writes it in
 * place; mem may be NULL when size is 0). r0 goes to *r0 (may be NULL).
 * A fault gives SB_ERR_EXEC naming the instruction. */
SB_API sb_status sb_code_run(sb_code* code, void* mem, size_t size, uint64_t* r0);

/* The compiled function itself, for the hottest loops: a call of it is a
 * plain call, without sb_code_run's checks, statistics and error message.
 *
 *   sb_native_fn fn;
 *   if (sb_code_function(code, &fn) == SB_OK)
 *     for (...) { sb_native_result r = fn(packet, size); if (r.status) ...; use(r.r0); }
 *
 * A status of 0 means r0 is the program's r0; any other status means the
 * run faulted (where sb_code_run gives SB_ERR_EXEC), and r0 is then the
 * index of the faulting instruction. Only for native code of a program that
 * calls no helpers (helpers need the VM made current around the run, which
 * sb_code_run does): otherwise SB_ERR_UNAVAILABLE, saying why, and *out is
 * NULL. The function is valid as long as the code; it may be called from
 * any number of threads at once. */
typedef struct sb_native_result {
  uint64_t r0;
  uint64_t status;
} sb_native_result;
typedef sb_native_result (*sb_native_fn)(void* mem, uint64_t size);
SB_API sb_status sb_code_function(const sb_code* code, sb_native_fn* out);

/* ---- test runs ---- */

/* BPF_PROG_TEST_RUN: the program as a typed program (`type`: "xdp", or NULL
 * for its ELF section's type) on `engine` (as sb_program_compile names
 * them), on a packet with the kernel's context: XDP gets a 4096-byte frame
 * with 256 bytes of headroom and `struct xdp_md` (ctx_in, if given, as the
 * kernel reads it). The program runs `repeat` times on the same context.
 * Out: retval, the output packet (XDP: from data_meta to data_end) and the
 * context, each copied into the caller's buffer as far as it holds them,
 * with its whole size in *_size_out; a buffer too small gives
 * SB_ERR_INVALID_ARGUMENT after copying what fits, as the kernel's ENOSPC
 * (a NULL buffer is not wanted: nothing is copied, as the kernel's). Input the kernel refuses (a frame shorter than an
 * Ethernet header, a context field it may not set, bytes past the uapi
 * struct that are not zero) and a type without a test run are
 * SB_ERR_INVALID_ARGUMENT naming the field; a program the verifier refuses
 * SB_ERR_COMPILE; a fault SB_ERR_EXEC. Maps keep what the runs wrote. */
typedef struct sb_test_run {
  const void* data_in;
  size_t data_size_in;
  const void* ctx_in; /* NULL: no context in */
  size_t ctx_size_in;
  uint32_t repeat; /* 0 runs once */
  void* data_out;  /* may be NULL with data_size_out 0 */
  size_t data_size_out; /* in: the buffer's size; out: the output packet's */
  void* ctx_out;
  size_t ctx_size_out;
  uint32_t retval;      /* out: r0's low 32 bits, as the kernel's */
  uint64_t duration_ns; /* out: mean wall time per run */
  /* out: where the packet goes when the last run returned XDP_REDIRECT or
   * TC_ACT_REDIRECT (the kernel would send it; a test run records it) */
  uint32_t redirect;         /* SB_REDIRECT_NONE, SB_REDIRECT_IFINDEX (bpf_redirect), SB_REDIRECT_MAP */
  uint32_t redirect_ifindex; /* SB_REDIRECT_IFINDEX: the device */
  sb_map* redirect_map;      /* SB_REDIRECT_MAP: bpf_redirect_map's map and key */
  uint32_t redirect_key;
  uint64_t redirect_flags;   /* BPF_F_INGRESS, BPF_F_BROADCAST, ... */
  /* in: called for each packet bpf_clone_redirect sent, in order (NULL: not
   * called); out: how many there were */
  void (*on_clone)(void* ctx, uint32_t ifindex, uint64_t flags, const void* packet, size_t size);
  void* on_clone_ctx;
  size_t clone_count;
  /* out: the struct bpf_tunnel_key bpf_skb_set_tunnel_key last set (its
   * size 0: none) */
  uint8_t tunnel_key[44];
  size_t tunnel_key_size;
} sb_test_run;
#define SB_REDIRECT_NONE 0
#define SB_REDIRECT_IFINDEX 1
#define SB_REDIRECT_MAP 2
SB_API sb_status sb_program_test_run(sb_program* program, const char* engine, const char* type, sb_test_run* run);

/* ---- statistics ---- */

typedef struct sb_stats {
  uint64_t run_count;   /* runs, faulting ones included */
  uint64_t run_time_ns; /* their total wall time: the CPU's cycle counter (rdtsc, cntvct_el0, rdtime)
                           calibrated once against CLOCK_MONOTONIC; 0 with SB_VM_NO_TIMING */
  uint64_t misses;      /* links: runs skipped by the recursion guard, and for a uretprobe the returns
                           not caught (a thread's 64 pending returns were all taken); 0 for codes */
} sb_stats;

/* Both are 0 with SB_VM_NO_STATS. */

SB_API sb_status sb_code_stats(const sb_code* code, sb_stats* out);
/* Every run of every code compiled from this program. */
SB_API sb_status sb_program_stats(const sb_program* program, sb_stats* out);

/* ---- attaching to functions of this process (x86-64 hosts) ----
 *
 * A program runs around a function of this process, as the kernel's BPF
 * trampoline runs fentry / fexit / fmod_ret programs: fentry before the
 * function, with ctx[i] its i-th argument as a 64-bit word; fexit after it,
 * with ctx[n] (n = the number of argument words) its return value; fmod_ret
 * between, where a non-zero r0 becomes the return value and the function is
 * not called. The function keeps running in every other thread while links
 * are made and destroyed. One trampoline per function is shared by every
 * link (of any VM); its statistics follow the VM's flags (timed statistics:
 * on; SB_VM_NO_STATS: off), and a VM whose flags differ from the first
 * link's gets SB_ERR_INVALID_ARGUMENT. The program's helpers see its VM
 * (maps, sb_current_vm), as in sb_code_run. The verifier checks a probe's
 * program as a kprobe program (ctx: pt_regs) and an fentry / fexit /
 * fmod_ret one from an ELF section as a tracing program (ctx: the argument
 * words), others as raw; an ELF program of another section's type (an xdp
 * program as a uprobe, a uprobe as an fentry) is SB_ERR_INVALID_ARGUMENT. */

typedef enum sb_attach_kind {
  SB_ATTACH_FENTRY = 1,
  SB_ATTACH_FEXIT = 2,
  SB_ATTACH_FMOD_RET = 3,
  /* A probe at an instruction: the program (ctx = struct pt_regs *, as the
   * kernel's x86-64 uprobes give it: PT_REGS_PARM1..6, PT_REGS_SP, PT_REGS_IP
   * of libbpf's bpf_tracing.h) runs before the instruction at target (or
   * symbol) + offset, which must start an instruction; every register and
   * flag is kept. No signature is needed. */
  SB_ATTACH_UPROBE = 4,
  /* When the function at target/symbol (offset 0) returns: ctx the pt_regs
   * there (PT_REGS_RC = the return value, PT_REGS_IP = where it returns to).
   * The return address on the thread's stack is replaced while the call
   * runs, as the kernel's uretprobes do; recursion and threads each see
   * their own returns (up to 64 pending per thread, as the kernel). */
  SB_ATTACH_URETPROBE = 5,
  /* A USDT probe (<sys/sdt.h> STAP_PROBE / DTRACE_PROBE): symbol is
   * "PROVIDER:NAME" (the executable and every loaded library) or
   * "OBJECT:PROVIDER:NAME"; the program runs at every site of it as a
   * uprobe, and libbpf's <bpf/usdt.bpf.h> works in it: bpf_usdt_arg,
   * bpf_usdt_arg_cnt, BPF_USDT(), and bpf_usdt_cookie() gives `cookie`.
   * A probe's semaphore counts the link while it is attached. target and
   * offset are ignored. No such probe: SB_ERR_NOT_FOUND. */
  SB_ATTACH_USDT = 6,
  SB_ATTACH_KIND_MAX_ENUM = 0x7fffffff
} sb_attach_kind;

typedef struct sb_attach_opts {
  sb_attach_kind kind;
  const void* target;    /* the function's address; NULL: find `symbol` */
  const char* symbol;    /* "NAME" (the executable, then each loaded library, static functions
                            included) or "OBJECT:NAME" ("libc.so.6:getpid"); used when target is NULL */
  const char* signature; /* its argument and return types: "i64, i64 -> i64", "ptr, {i64, i32} -> void"
                            (i8 u8 i16 u16 i32 u32 i64 u64 ptr f32 f64, {..} a struct of up to 16 bytes) */
  uint64_t cookie;       /* what the program's run context holds (bpf_get_attach_cookie) */
  uint64_t offset;       /* SB_ATTACH_UPROBE: bytes past target or the symbol (FUNC+OFF); else ignored */
} sb_attach_opts;

typedef struct sb_link sb_link;

/* Attaches `program` (compiled for x86-64 here) as opts says. Errors name
 * the symbol or the field: SB_ERR_NOT_FOUND (no such function),
 * SB_ERR_INVALID_ARGUMENT (a bad signature or kind, options that differ
 * from the trampoline's), SB_ERR_UNAVAILABLE (not an x86-64 host, or a
 * function that cannot be hooked safely, saying why), SB_ERR_COMPILE. */
SB_API sb_status sb_program_attach(sb_program* program, const sb_attach_opts* opts, sb_link** out);
/* Loads every program of the `clang -target bpf` object at `path` (its
 * maps created once, shared by them) and attaches each whose ELF section
 * names a target as libbpf spells it: "uprobe/PATH:FUNC[+OFF]",
 * "uretprobe/PATH:FUNC", "usdt/PATH:PROVIDER:NAME" (PATH an object of this
 * process: "/proc/self/exe" or the executable's path, a library's path or
 * file name "libc.so.6"),
 * "fentry/FUNC", "fexit/FUNC", "fmod_ret/FUNC" (FUNC's signature from the
 * object's BTF: a function of that name the object declares, e.g. a static
 * stub nothing calls).
 * Other programs (bare "uprobe", xdp, ...) are loaded and left alone. The
 * links go to links[0..*count); with more than `capacity` of them nothing
 * stays attached and SB_ERR_INVALID_ARGUMENT says how many (*count). On any
 * failure nothing stays attached; errors name the section and symbol:
 * SB_ERR_NOT_FOUND (no such function), SB_ERR_INVALID_ARGUMENT (a section
 * that does not parse, an offset not at an instruction, a program of
 * another type), SB_ERR_UNAVAILABLE (an fentry/fexit/fmod_ret section whose
 * function the object's BTF does not declare). */
SB_API sb_status sb_vm_attach_object(sb_vm* vm, const char* path, sb_link** links, size_t capacity, size_t* count);
/* Detaches (the function runs as before once no other link is left) and
 * frees the link. NULL is ignored. Destroying the VM destroys its links. */
SB_API void sb_link_destroy(sb_link* link);
/* The program's runs through this link. */
SB_API sb_status sb_link_stats(const sb_link* link, sb_stats* out);
/* "PROGRAM: KIND TARGET" ("handle_compute: uprobe /usr/bin/app:compute+0x4"),
 * owned by the link. */
SB_API const char* sb_link_name(const sb_link* link);

#ifdef __cplusplus
}
#endif

#endif /* SPRINGBOARD_H */
