#!/usr/bin/env bash
# `springboard verify`: the verifier alone. An object's program verifies as
# its section's type (a typed context), with what was processed; a refusal
# names the file, program and instruction and exits 1; --log prints the
# state before each instruction processed; bad input is a clear error.
#   usage: verify.sh path/to/springboard DIR_OF_PROGTYPES_OBJECTS
set -u
sb=$1
objs=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
. "$(dirname "$0")/lib.sh"
check "typed object" 0 "verified: " "$sb" verify "$objs/xdp_parse.o"
check "processed" 0 "instructions processed" "$sb" verify "$objs/xdp_eth.o"
check "refused" 1 "xdp_global.o: xdp: instruction 1: R1 invalid access to packet" "$sb" verify "$objs/xdp_global.o" --function unchecked_packet
check "candidates" 1 "choose one by section or function name" "$sb" verify "$objs/xdp_global.o"
printf 'mov %%r0, 0\njeq %%r0, 1, +1\nja -2\nexit\n' > "$dir/loop.s"
check "infinite loop" 1 "loop.s: raw: instruction 1: infinite loop detected" "$sb" verify "$dir/loop.s"
printf 'ldxdw %%r0, [%%r1]\nexit\n' > "$dir/raw.s"
check "raw memory" 0 "verified: 2 instructions processed" "$sb" verify "$dir/raw.s"
check "log" 0 "0: (79) ldxdw %r0, [%r1]" "$sb" verify "$dir/raw.s" --log
printf 'mov %%r0, %%r5\nexit\n' > "$dir/uninit.s"
check "unset register" 1 "uninit.s: raw: instruction 0: R5 !read_ok" "$sb" verify "$dir/uninit.s"
check "missing" 1 "cannot open" "$sb" verify "$dir/none.o"
check "bad flag" 2 "--nope" "$sb" verify "$dir/raw.s" --nope
echo "$failures failed"
[ "$failures" -eq 0 ]
