#!/usr/bin/env bash
# `springboard test-run`: the issue's XDP example on a 16-byte IPv4 frame
# passes on every engine, --data-out/--ctx-out/--repeat/--json/--dump-maps
# do what they say, and bad input (a truncated frame, a context of the wrong
# size, an unknown section or type, raw bytecode without --type) exits 1
# naming the file and field.
#   usage: test_run.sh path/to/springboard DIR_OF_PROGTYPES_OBJECTS
set -u
sb=$1
objs=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
. "$(dirname "$0")/lib.sh"
printf '\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x08\x00\x00\x00' > "$dir/ip4.bin"
printf '\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x86\xdd\x00\x00' > "$dir/ip6.bin"
for engine in "--engine interp" "--engine jit" "--engine emu --arch x86-64" "--engine emu --arch arm64" \
              "--engine emu --arch riscv64"; do
  # shellcheck disable=SC2086
  check "ipv4 passes ($engine)" 0 "retval: 2 (XDP_PASS)" "$sb" test-run "$objs/xdp_eth.o" --data-in "$dir/ip4.bin" $engine
done
check "ipv6 bounces" 0 "retval: 3 (XDP_TX)" "$sb" test-run "$objs/xdp_eth.o" --data-in "$dir/ip6.bin"
check "context out" 0 "ctx_out: data 0, data_end 16, data_meta 0" "$sb" test-run "$objs/xdp_eth.o" --data-in "$dir/ip4.bin"
check "repeat" 0 "per run (5 runs)" "$sb" test-run "$objs/xdp_eth.o" --data-in "$dir/ip4.bin" --repeat 5
check "json" 0 '"retval": 2' "$sb" test-run "$objs/xdp_eth.o" --data-in "$dir/ip4.bin" --json
# selector 2 (after the Ethernet header): 8 bytes pushed at the front.
printf '\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x08\x00\x02' > "$dir/push.bin"
check "data out" 0 "data_out: 23 bytes" "$sb" test-run "$objs/xdp_adjust.o" --data-in "$dir/push.bin" \
  --data-out "$dir/out.bin" --ctx-out "$dir/ctx.bin"
if [ "$(wc -c < "$dir/out.bin")" -ne 23 ] || [ "$(wc -c < "$dir/ctx.bin")" -ne 24 ]; then
  echo "FAIL data-out/ctx-out sizes"; failures=$((failures + 1))
fi
check "maps" 0 '"name": "results"' "$sb" test-run "$objs/xdp_adjust.o" --data-in "$dir/push.bin" --dump-maps
printf '\x00\x01\x02' > "$dir/short.bin"
check "truncated frame" 1 "short.bin: 3 bytes: an XDP frame holds at least an Ethernet header" \
  "$sb" test-run "$objs/xdp_eth.o" --data-in "$dir/short.bin"
head -c 32 /dev/urandom | tr '\0' '\1' > "$dir/ctx32.bin"
check "context too big" 1 "ctx32.bin: byte 24 is not zero, past the 24 bytes of struct xdp_md" \
  "$sb" test-run "$objs/xdp_eth.o" --data-in "$dir/ip4.bin" --ctx-in "$dir/ctx32.bin"
check "missing packet" 1 "nope.bin: cannot open" "$sb" test-run "$objs/xdp_eth.o" --data-in "$dir/nope.bin"
check "unknown type" 1 "--type: unknown program type 'no_such_type'" \
  "$sb" test-run "$objs/xdp_eth.o" --data-in "$dir/ip4.bin" --type no_such_type
check "kprobe has no test run" 1 "a kprobe program has no test run (types with one: xdp, tc, socket)" \
  "$sb" test-run "$objs/xdp_eth.o" --data-in "$dir/ip4.bin" --type kprobe
check "raw has no test run" 1 "a raw program has no test run (types with one: xdp, tc, socket)" \
  "$sb" test-run "$objs/xdp_eth.o" --data-in "$dir/ip4.bin" --type raw
printf 'mov %%r0, 2\nexit\n' > "$dir/two.s"
check "bytecode needs --type" 1 "raw bytecode has no program type: give --type" \
  "$sb" test-run "$dir/two.s" --data-in "$dir/ip4.bin"
check "bytecode with --type" 0 "retval: 2" "$sb" test-run "$dir/two.s" --data-in "$dir/ip4.bin" --type xdp
check "run refuses a typed program" 1 "section 'xdp' holds a xdp program: its r1 is the kernel's context" \
  "$sb" run "$objs/xdp_eth.o" --mem "$dir/ip4.bin"
# As raw bytecode, ctx->data is a number read from the packet: the verifier stops the dereference.
check "run --type raw" 1 "raw: instruction 6: R1 invalid mem access 'scalar'" \
  "$sb" run "$objs/xdp_eth.o" --mem "$dir/ip4.bin" --type raw
check "raw diff refuses too" 1 "run it with \`springboard test-run" "$sb" diff "$objs/xdp_eth.o" --mem "$dir/ip4.bin"
# springboard diff on typed programs: every engine agrees; the kernel too, as root.
check "diff typed" 0 "riscv64_emu      2 " "$sb" diff "$objs/xdp_eth.o" --data-in "$dir/ip4.bin"
check "diff chosen engines" 0 "x86_64_native    3 " "$sb" diff "$objs/xdp_eth.o" --data-in "$dir/ip6.bin" \
  --engine interp --engine x86_64_native
check "diff refuses alike" 0 "refused: $dir/short.bin: 3 bytes" "$sb" diff "$objs/xdp_eth.o" --data-in "$dir/short.bin"
check "diff unknown engine" 1 "unknown engine 'nope'" "$sb" diff "$objs/xdp_eth.o" --data-in "$dir/ip4.bin" --engine nope
check "diff without a packet" 1 "a typed program's diff needs --data-in" "$sb" diff "$objs/xdp_eth.o" --type xdp
# What a run leaves besides the packet: the redirect target, the tunnel key, perf event records.
{ head -c 12 /dev/zero; printf '\x08\x00\x45'; head -c 45 /dev/zero; printf '\x02'; } > "$dir/tc_part2.bin"
check "redirect target" 0 "redirect: ifindex 1 (flags 0x0)" "$sb" test-run "$objs/tc_helpers.o" --data-in "$dir/tc_part2.bin"
check "tunnel key" 0 "tunnel_key: 0500000001000" "$sb" test-run "$objs/tc_helpers.o" --data-in "$dir/tc_part2.bin"
printf '\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x08\x00\x01\x02\x03\x04' > "$dir/events.bin"
check "perf event records" 0 "perf event events[" "$sb" test-run "$objs/xdp_events.o" --data-in "$dir/events.bin"
check "perf event records as JSON" 0 '"data": "111111110100000002000000"' "$sb" test-run "$objs/xdp_events.o" \
  --data-in "$dir/events.bin" --json
if [ "$(id -u)" -eq 0 ]; then
  check "diff with the kernel" 0 "kernel           2 " "$sb" diff "$objs/xdp_eth.o" --data-in "$dir/ip4.bin" --engine kernel
  printf '\x00\x00\x00\x00\x00\x00\x22\x22\x22\x22\x22\x22\x86\xdd' > "$dir/v6.bin"
  head -c 40 /dev/zero >> "$dir/v6.bin"
  check "diff tc with the kernel" 0 "kernel           0 " "$sb" diff "$objs/tc_classify.o" --data-in "$dir/v6.bin" \
    --engine kernel
else
  echo "skip diff --engine kernel: not root"
fi
exit $failures
