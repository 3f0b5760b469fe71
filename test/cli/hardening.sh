#!/usr/bin/env bash
# The CLI's hardening flags: an out-of-bounds access and an endless loop are
# stopped with an error naming the file and the instruction and exit 1 on
# every engine; a valid program gives the same r0 hardened; a bad flag value
# is refused with exit 2.   usage: hardening.sh path/to/springboard
set -u
sb=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
. "$(dirname "$0")/lib.sh"
printf 'ldxdw %%r0, [%%r1+12]\nexit\n' > "$dir/oob.s"
printf 'mov %%r0, 0\nadd %%r0, 1\nja -2\nexit\n' > "$dir/loop.s"
printf 'ldxw %%r0, [%%r1]\nadd %%r0, 0x12345678\nexit\n' > "$dir/ok.s"
for engine in "--engine interp" "--engine jit" "--engine emu --arch arm64" "--engine emu --arch riscv64"; do
  # shellcheck disable=SC2086
  check "oob $engine" 1 "oob.s: instruction 0: out-of-bounds access of 8 bytes at 0x" \
    "$sb" run "$dir/oob.s" $engine --mem-hex "01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10" --bounds-check
  # shellcheck disable=SC2086
  check "loop $engine" 1 "loop.s: instruction 2: time budget of 50000 us exhausted" \
    "$sb" run "$dir/loop.s" $engine --no-verify --time-limit-ms 50 --insn-budget 100000000000
  # shellcheck disable=SC2086
  check "valid $engine" 0 "0x16345679" \
    "$sb" run "$dir/ok.s" $engine --mem-hex "01 00 00 04" --bounds-check --blind-constants
done
check "diff hardened" 0 "x86_64_native" "$sb" diff "$dir/ok.s" --mem-hex "01 00 00 04" --bounds-check --blind-constants
check "ir shows the checks" 0 "frame.entry" "$sb" compile "$dir/oob.s" --emit ir --bounds-check
check "bad time limit" 2 "--time-limit-ms" "$sb" run "$dir/ok.s" --time-limit-ms -3
echo "$failures failed"
[ "$failures" -eq 0 ]
