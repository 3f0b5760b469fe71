#!/usr/bin/env bash
# `springboard trace OBJ -- PROGRAM ARGS`: the bundled example's probes
# attached to an unmodified program (tools/examples/trace): its output and
# exit status unchanged, each entry's bpf_printk line with the arguments
# and the pid, the return probe's ring-buffer records, each link's run
# count and the maps at exit; and the errors: a program that does not
# exist, an object that is not ELF, a probe on a function the program does
# not have, a missing command; and `ls` with a probe on libc's opendir.
# The same demo built without PIE (absolute addresses, no load bias) too.
#   usage: trace.sh path/to/springboard demo.bpf.o path/to/demo path/to/demo-nopie
set -u
sb=$1
obj=$2
demo=$3
demo_nopie=$4
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
. "$(dirname "$0")/lib.sh"

check "program output" 0 "total 23" "$sb" trace "$obj" -- "$demo" 3
check "attached" 0 "3 programs attached" "$sb" trace "$obj" -- "$demo" 3
check "printk with arguments" 0 "compute(3, 4) from pid" "$sb" trace "$obj" -- "$demo" 3
check "entry runs" 0 "on_compute_return: uretprobe" "$sb" trace "$obj" -- "$demo" 3
check "run count" 0 ":compute: 3 runs" "$sb" trace "$obj" -- "$demo" 3
# The trace goes to the command's standard error, the program's output to its own.
out=$("$sb" trace "$obj" -- "$demo" 3 2>/dev/null)
if [ "$out" != "total 23" ]; then echo "FAIL stdout is the program's: $out"; failures=$((failures + 1)); else echo "ok   stdout is the program's"; fi
# compute(2, 3) = 7: the ring buffer record and the results map's element.
check "ring buffer" 0 "ringbuf events: 07 00 00 00 00 00 00 00" "$sb" trace "$obj" -- "$demo" 3
# compute(3, 4)'s arguments as a perf event record.
check "perf event" 0 "perf arguments: 03 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00" "$sb" trace "$obj" -- "$demo" 3
check "hash map at exit" 0 "07 00 00 00 00 00 00 00 (7): 01 00 00 00 00 00 00 00 (1)" "$sb" trace "$obj" -- "$demo" 3
check "usdt map at exit" 0 "03 00 00 00 00 00 00 00 (3): 17 00 00 00 00 00 00 00 (23)" "$sb" trace "$obj" -- "$demo" 3
check "usdt link" 0 "on_step: usdt demo:step (1 site): 3 runs" "$sb" trace "$obj" -- "$demo" 3
check "array map at exit" 0 "00 00 00 00 (0): 03 00 00 00 00 00 00 00 (3)" "$sb" trace "$obj" -- "$demo" 3
# Not PIE: the uprobe, uretprobe and USDT sites at their link-time addresses.
check "non-PIE uprobe" 0 "compute(3, 4) from pid" "$sb" trace "$obj" -- "$demo_nopie" 3
check "non-PIE uretprobe" 0 "on_compute_return: uretprobe $demo_nopie:compute: 3 runs" "$sb" trace "$obj" -- "$demo_nopie" 3
check "non-PIE usdt" 0 "03 00 00 00 00 00 00 00 (3): 17 00 00 00 00 00 00 00 (23)" "$sb" trace "$obj" -- "$demo_nopie" 3
# Its exit status is the program's, and its output is its own.
check "exit status" 3 "total 3" "$sb" trace "$obj" -- "$demo" 1 3
check "stdout redirected" 0 "compute(2, 3) from pid" sh -c "\"$sb\" trace \"$obj\" -- \"$demo\" 2 > /dev/null"
# A forked child exits through the agent's exit handler too: it neither
# hangs nor crashes, and the report is the parent's (its 2 calls).
check "fork" 0 ":compute: 2 runs" "$sb" trace "$obj" -- "$demo" 2 0 fork
check "no such program" 127 "cannot run 'no-such-program-here'" "$sb" trace "$obj" -- no-such-program-here
printf 'not an object' > "$dir/bad.o"
check "not ELF" 1 "bad.o" "$sb" trace "$dir/bad.o" -- "$demo" 1
check "missing object" 1 "missing.o: cannot open" "$sb" trace "$dir/missing.o" -- "$demo" 1
check "no command" 2 "COMMAND is required" "$sb" trace "$obj"
# The probes name compute in /proc/self/exe: a program without it is refused
# before its main runs, naming the section and the symbol.
check "symbol missing" 1 "compute" "$sb" trace "$obj" -- /bin/true
# An unmodified system program (stripped, PIE) and a probe on its C
# library: each directory `ls` opens, read from its memory, and the count.
mkdir -p "$dir/listed/sub"
check "ls: opendir's argument" 0 "opendir($dir/listed)" "$sb" trace "$(dirname "$obj")/opendir.bpf.o" -- ls "$dir/listed"
check "ls: its output" 0 "sub" "$sb" trace "$(dirname "$obj")/opendir.bpf.o" -- ls "$dir/listed"
check "ls: the count" 0 "01 00 00 00 (1): 01 00 00 00 00 00 00 00 (1)" \
  "$sb" trace "$(dirname "$obj")/opendir.bpf.o" -- ls "$dir/listed"
exit $failures
