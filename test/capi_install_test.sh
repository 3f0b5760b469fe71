#!/usr/bin/env bash
# The C API as an installed user sees it: installs this build into a
# prefix under the build directory, builds tools/examples/capi_example.c
# twice against it (a separate CMake project with find_package(springboard),
# and `cc $(pkg-config --cflags --libs springboard)`), runs both and checks
# what they print.
#
# Also builds a C++17 program with the C++ wrapper (springboard.hpp).
#
#   capi_install_test.sh BUILD_DIR SOURCE_DIR WORK_DIR C_COMPILER CXX_COMPILER ENGINE [FLAGS]
# ENGINE: the Unicorn engine the example runs besides the JIT (arm64_emu).
# FLAGS: the sanitizer flags in a SPRINGBOARD_SANITIZE build, whose
# library needs the ASan runtime loaded first, i.e. by the executable.
set -euo pipefail
build=$1 src=$2 work=$3 cc=$4 cxx=$5 other=$6 flags=${7:-}
prefix=$work/prefix
rm -rf "$work"
mkdir -p "$work"

cmake --install "$build" --prefix "$prefix" >"$work/install.log"
for f in include/springboard.h include/springboard.hpp bin/springboard; do
  [ -e "$prefix/$f" ] || { echo "capi_install_test: $f was not installed"; exit 1; }
done

echo "== the installed CLI"
cli_out=$("$prefix/bin/springboard" run "$src/tools/examples/checksum.s" \
          --mem-hex "45 00 00 73 00 00 40 00 40 11 00 00 c0 a8 00 01 c0 a8 00 c7")
echo "$cli_out"
grep -q 0xb861 <<<"$cli_out" || { echo "capi_install_test: the installed CLI printed $cli_out"; exit 1; }

echo "== find_package(springboard)"
cmake -S "$src/tools/examples" -B "$work/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" >"$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/cmake"

echo "== pkg-config --cflags --libs springboard"
pcfile=$(find "$prefix" -name springboard.pc | head -n 1)
[ -n "$pcfile" ] || { echo "capi_install_test: springboard.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH=${pcfile%/*}
libdir=$(pkg-config --variable=libdir springboard)
pc=$(pkg-config --cflags --libs springboard)
echo "$cc -std=c99 -pedantic -Wall -Wextra -Werror capi_example.c $pc"
# shellcheck disable=SC2086
"$cc" -std=c99 -pedantic -Wall -Wextra -Werror $flags "$src/tools/examples/capi_example.c" $pc \
  -Wl,-rpath,"$libdir" -o "$work/capi_example_pc"

echo "== C++17 with springboard.hpp"
cat >"$work/wrapper.cpp" <<'CPP'
#include <springboard.hpp>
#include <cstdio>
int main() {
  springboard::vm vm;
  springboard::program p = vm.load_asm("mov %r0, 3\nexit", "three.s");
  try {
    p.compile("no-such-engine");
  } catch (const springboard::error& e) {
    std::printf("%s\n", sb_status_name(e.code()));
  }
  return p.compile("interp").run() == 3 ? 0 : 1;
}
CPP
# shellcheck disable=SC2086
"$cxx" -std=c++17 -Wall -Wextra -Werror $flags "$work/wrapper.cpp" $pc -Wl,-rpath,"$libdir" -o "$work/wrapper"
"$work/wrapper" | grep -qx SB_ERR_UNKNOWN_ENGINE || { echo "capi_install_test: the C++ program failed"; exit 1; }

expect=(
  "checksum on x86_64_native: r0 = 0xb861"
  "checksum on $other: r0 = 0xb861"
  "checksum: 2 runs"
  "helper and map on x86_64_native: r0 = 0x2a"
  "helper and map on $other: r0 = 0x2a"
  "calls[0] = 2; counter: 2 runs"
  "malformed program rejected: SB_ERR_BAD_PROGRAM: bad.bin: instruction 0: jump into the middle of lddw"
)
for exe in "$work/cmake/capi_example" "$work/capi_example_pc"; do
  echo "== $exe"
  out=$("$exe" "$src/tools/examples/checksum.s" "$other")
  echo "$out"
  for line in "${expect[@]}"; do
    grep -qF -- "$line" <<<"$out" || { echo "capi_install_test: missing: $line"; exit 1; }
  done
done
echo "capi_install_test: both builds of the example ran as expected"
