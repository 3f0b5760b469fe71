/* Embedding Springboard from C (runtime/api/springboard.h), built against the
 * installed library:
 *
 *   cc capi_example.c $(pkg-config --cflags --libs springboard) -o capi_example
 *   ./capi_example tools/examples/checksum.s [ENGINE]
 *
 * or with CMake (tools/examples/CMakeLists.txt, find_package(springboard)).
 * It runs the bundled checksum on the JIT and on another architecture in
 * Unicorn (ENGINE, default arm64), then a program that calls a helper of
 * this file and counts its runs in a map, prints the statistics, and shows
 * the error a malformed program gets. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <springboard.h>

/* Helper 1000, called by the program below: doubles its first argument. */
static uint64_t double_it(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5) {
  (void)r2, (void)r3, (void)r4, (void)r5;
  return r1 * 2;
}

static int ok(sb_vm* vm, sb_status status, const char* what) {
  if (status == SB_OK) return 1;
  fprintf(stderr, "capi_example: %s: %s: %s\n", what, sb_status_name(status), sb_vm_last_error(vm));
  return 0;
}

/* Compiles `prog` for each engine and runs it once over `mem`. */
static int run_everywhere(sb_vm* vm, sb_program* prog, const char* const* engines, int n, uint8_t* mem,
                          size_t size, const char* label) {
  int i;
  for (i = 0; i < n; i++) {
    sb_code* code = NULL;
    uint64_t r0 = 0;
    size_t bytes = 0;
    if (!ok(vm, sb_program_compile(prog, engines[i], &code), "compile") ||
        !ok(vm, sb_code_run(code, mem, size, &r0), "run"))
      return 0;
    sb_code_machine_code(code, &bytes);
    printf("%s on %s: r0 = %#" PRIx64 " (%zu bytes of machine code)\n", label, sb_code_engine(code), r0, bytes);
    sb_code_destroy(code);
  }
  return 1;
}

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "tools/examples/checksum.s";
  const char* engines[2];
  /* An IPv4 header with a zero checksum field: its checksum is 0xb861. */
  uint8_t header[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                        0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  /* ja +1 jumps into the second slot of the lddw that follows it. */
  const uint8_t bad[] = {0x05, 0, 1, 0, 0, 0, 0, 0, 0x18, 0, 0, 0, 0, 0, 0, 0,
                         0, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0};
  char source[512];
  sb_vm* vm = NULL;
  sb_program* checksum = NULL;
  sb_program* counter = NULL;
  sb_program* broken = NULL;
  sb_map* calls = NULL;
  sb_map_info info;
  sb_stats stats;
  uint32_t key = 0;
  uint64_t count = 0;
  sb_status status;
  int good;

  engines[0] = "x86-64";  /* native on an x86-64 host */
  engines[1] = argc > 2 ? argv[2] : "arm64";  /* Unicorn */
  printf("springboard %s (header %s)\n", sb_version(), SPRINGBOARD_VERSION_STRING);
  if (!ok(NULL, sb_vm_create(NULL, &vm), "create")) return 1;

  /* 1. The bundled checksum on the JIT and in Unicorn. */
  good = ok(vm, sb_vm_load_file(vm, path, NULL, NULL, &checksum), "load") &&
         run_everywhere(vm, checksum, engines, 2, header, sizeof header, "checksum") &&
         ok(vm, sb_program_stats(checksum, &stats), "stats");
  if (good)
    printf("checksum: %" PRIu64 " runs, %" PRIu64 " ns in all\n", stats.run_count, stats.run_time_ns);

  /* 2. A helper of ours, and a map the program counts its runs in. */
  good = good && ok(vm, sb_vm_register_helper(vm, 1000, "double_it", double_it), "helper") &&
         ok(vm, sb_vm_create_map(vm, "calls", SB_MAP_ARRAY, 4, 8, 1, &calls), "map") &&
         ok(vm, sb_map_get_info(calls, &info), "map info");
  if (good) {
    snprintf(source, sizeof source,
             "lddw %%r1, %#" PRIx64 "\n"  /* the map */
             "mov %%r2, %%r10\n"
             "add %%r2, -4\n"
             "stw [%%r10-4], 0\n"         /* key 0 */
             "call 1\n"                   /* bpf_map_lookup_elem */
             "jeq %%r0, 0, out\n"
             "mov %%r1, 1\n"
             "lock add [%%r0+0], %%r1\n"  /* calls[0] += 1 */
             "mov %%r1, 21\n"
             "call 1000\n"                /* double_it(21) */
             "out:\n"
             "exit\n",
             info.handle);
    good = ok(vm, sb_vm_load_asm(vm, "counter.s", source, &counter), "load") &&
           run_everywhere(vm, counter, engines, 2, NULL, 0, "helper and map") &&
           ok(vm, sb_map_lookup(calls, &key, sizeof key, &count, sizeof count), "lookup") &&
           ok(vm, sb_program_stats(counter, &stats), "stats");
  }
  if (good)
    printf("calls[0] = %" PRIu64 "; counter: %" PRIu64 " runs, %" PRIu64 " ns in all\n", count, stats.run_count,
           stats.run_time_ns);

  /* 3. A malformed program: the status and a message naming the instruction. */
  if (good) {
    status = sb_vm_load_bytecode(vm, "bad.bin", bad, sizeof bad, &broken);
    if (status == SB_OK) {
      fprintf(stderr, "capi_example: a malformed program was accepted\n");
      good = 0;
    } else {
      printf("malformed program rejected: %s: %s\n", sb_status_name(status), sb_vm_last_error(vm));
    }
  }
  sb_vm_destroy(vm);
  return good ? 0 : 1;
}
