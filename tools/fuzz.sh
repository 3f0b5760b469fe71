#!/usr/bin/env bash
# Builds the libFuzzer targets of test/fuzz with clang (the whole library
# instrumented, with ASan and UBSan, in build-fuzz/) and runs one or all of
# them. Each target keeps its corpus in build-fuzz/<target>/corpus, seeded
# from the repository's own inputs; crashes land in build-fuzz/<target>/ as
# crash-* files: turn each into a regression test before fixing it.
#
#   tools/fuzz.sh                       every target for 60 seconds
#   tools/fuzz.sh elf 600               one target for 10 minutes
#   tools/fuzz.sh all 30                every target for 30 seconds (CI)
#   FUZZ_FAST=1 tools/fuzz.sh verifier 3600
#                                       without ASan/UBSan (build-fuzz-fast/),
#                                       several times the executions, for long
#                                       runs of the targets that check themselves
#   FUZZ_ARGS="-entropic=0" ...         more libFuzzer flags (this one: twice
#                                       the executions, less scheduling)
# Exit status: non-zero when a target crashed or did not build.
set -euo pipefail
cd "$(dirname "$0")/.."
all=(bytecode assembler elf trampoline differential verifier test_run)
targets=("${all[@]}")
[ $# -ge 1 ] && [ "$1" != all ] && targets=("$1")
seconds=${2:-60}
jobs=${FUZZ_BUILD_JOBS:-2}
bdir=build-fuzz sanitize=ON
[ -n "${FUZZ_FAST:-}" ] && bdir=build-fuzz-fast sanitize=OFF

cmake -S . -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_C_COMPILER=clang -DSPRINGBOARD_FUZZ=ON -DSPRINGBOARD_FUZZ_SANITIZE=$sanitize -DSPRINGBOARD_TESTS=OFF \
  -DSPRINGBOARD_BENCHMARKS=OFF >/dev/null
cmake --build "$bdir" -j"$jobs" --target "${targets[@]/#/fuzz_}"

# Seeds: the conformance corpus (programs, assembly), the examples, the
# trampoline descriptions and any clang-built BPF objects of a test build.
seed() {
  local dir=$bdir/$1/corpus
  mkdir -p "$dir"
  [ -n "$(ls -A "$dir")" ] && return 0
  case $1 in
    assembler) cp ../shared/conformance/*.data tools/examples/*.s "$dir" 2>/dev/null || true ;;
    trampoline) cp tools/examples/*.json test/trampoline/*.json "$dir" 2>/dev/null || true ;;
    elf) cp build/test/programs/*.o build/test/progtypes/*.o "$dir" 2>/dev/null || true ;;
    test_run)  # no ctx, then an xdp_md of 24 bytes, before IPv4 frames
      printf '\x00\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x08\x00\x10\x20' > "$dir/plain"
      printf '\x19\x04\x00\x00\x00\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xaa\xbb\xcc\xdd\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x08\x00\xf8\x03\x01' > "$dir/meta" ;;
    bytecode|differential)
      for f in tools/examples/*.bin; do [ -f "$f" ] && cp "$f" "$dir"; done ;;
    verifier)  # generator seeds 1..32: kernel, raw with global functions, raw with callbacks, both; the examples as raw bytecode (0x00 first)
      local modes=(1 2 4 6)
      for i in $(seq 1 32); do
        printf "\\x$(printf %02x "${modes[$((i % 4))]}")\\x$(printf %02x "$i")\\x00\\x00\\x00\\x00\\x00\\x00\\x00" > "$dir/seed$i"
      done
      # bpf_loop(1000000, ...): the run is longer than the budget but for the harness's loop cap
      printf '\x00\xb7\x01\x00\x00\x40\x42\x0f\x00\x18\x42\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xb7\x03\x00\x00\x00\x00\x00\x00\xb7\x04\x00\x00\x00\x00\x00\x00\x85\x00\x00\x00\xb5\x00\x00\x00\x95\x00\x00\x00\x00\x00\x00\x00\xb7\x00\x00\x00\x00\x00\x00\x00\x95\x00\x00\x00\x00\x00\x00\x00' > "$dir/long_loop"
      for f in tools/examples/*.bin; do [ -f "$f" ] && { printf '\0'; cat "$f"; } > "$dir/$(basename "$f")"; done ;;
  esac
  return 0
}

status=0
for t in "${targets[@]}"; do
  seed "$t"
  echo "fuzz: running $t for ${seconds}s"
  if ! (cd "$bdir/$t" && "$OLDPWD/$bdir/test/fuzz/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 ${FUZZ_ARGS:-} \
          -rss_limit_mb=4096 corpus > fuzz.log 2>&1); then
    echo "fuzz: $t FAILED ($bdir/$t/fuzz.log):"
    tail -40 "$bdir/$t/fuzz.log"
    status=1
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|Done [0-9]+ runs" "$bdir/$t/fuzz.log" | sed "s/^/fuzz: $t: /"
done
exit $status
