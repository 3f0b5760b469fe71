#!/usr/bin/env bash
# Builds the libFuzzer targets in test/fuzz with clang (ASan + UBSan) and runs
# one or all of them. Crashes land in build-fuzz/<target>/ as crash-* files;
# turn each into a regression test before fixing it.
#
#   tools/fuzz.sh                  every target for 60 seconds
#   tools/fuzz.sh elf 600          one target for 10 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(bytecode assembler elf trampoline)
[ $# -ge 1 ] && targets=("$1")
seconds=${2:-60}
CXX=${CXX:-clang++}
flags=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. -I/usr/lib/llvm-19/include)
frontend=(frontend/decoder.cpp frontend/validator.cpp frontend/disassembler.cpp frontend/assembler.cpp
          frontend/conformance_file.cpp ir/diag.cpp)
declare -A sources=(
  [bytecode]="${frontend[*]}"
  [assembler]="${frontend[*]}"
  [elf]="${frontend[*]} frontend/elf_loader.cpp"
  [trampoline]="${frontend[*]} frontend/trampoline.cpp ir/printer.cpp ir/verifier.cpp"
)
for t in "${targets[@]}"; do
  out=build-fuzz/$t
  mkdir -p "$out/corpus"
  echo "fuzz: building $t"
  # shellcheck disable=SC2086
  $CXX "${flags[@]}" "test/fuzz/fuzz_$t.cpp" ${sources[$t]} -o "$out/fuzz_$t" \
    -L/usr/lib/llvm-19/lib -lLLVM-19 -Wl,-rpath,/usr/lib/llvm-19/lib -lfmt
  echo "fuzz: running $t for ${seconds}s"
  (cd "$out" && ./fuzz_$t -max_total_time="$seconds" -print_final_stats=1 corpus 2>&1 | tail -15)
done
