#!/usr/bin/env bash
# `springboard inspect`: an object's programs (section, function, type,
# instructions, helpers) and maps, as text and JSON; an object whose
# functions are all in .text, a file that is not ELF and a truncated object
# are clear errors with exit 1, and choosing no program of a multi-program
# object names the candidates.
#   usage: inspect.sh path/to/springboard DIR_OF_TEST_PROGRAM_OBJECTS
set -u
sb=$1
objs=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
. "$(dirname "$0")/lib.sh"
check "programs" 0 "multi.o: 3 programs, 0 maps" "$sb" inspect "$objs/multi.o"
check "a program" 0 "program random_pair in section 'xdp': type xdp" "$sb" inspect "$objs/multi.o"
check "its helpers" 0 "calls get_prandom_u32 (7)" "$sb" inspect "$objs/multi.o"
check "maps" 0 "map jmp_table: type prog_array, key 4 bytes, value 4 bytes, 4 entries" "$sb" inspect "$objs/tailcall.o"
check "json" 0 '"name": "ringbuf_reserve"' "$sb" inspect "$objs/ringbuf.o" --json
check "candidates" 1 "3 programs (read_pointer in 'xdp', random_pair in 'xdp', elapsed in 'tc')" \
  "$sb" run "$objs/multi.o"
printf '__attribute__((noinline)) int helper_fn(int x) { return x + 1; }\nint entry(int x) { return helper_fn(x); }\n' \
  > "$dir/text_only.c"
if clang -O2 -target bpf -c "$dir/text_only.c" -o "$dir/text_only.o" 2>/dev/null; then
  check "text only" 1 "no program section" "$sb" run "$dir/text_only.o"
  check "text candidates" 1 "entry in '.text'" "$sb" run "$dir/text_only.o"
  check "inspect text only" 0 "text_only.o: 0 programs" "$sb" inspect "$dir/text_only.o"
else
  echo "FAIL: clang -target bpf is needed to build the .text-only object"
  failures=$((failures + 1))
fi
check "not elf" 1 "not an ELF object" "$sb" inspect "$0"
head -c 100 "$objs/multi.o" > "$dir/truncated.o"
check "truncated" 1 "truncated.o: section headers" "$sb" inspect "$dir/truncated.o"
check "missing" 1 "cannot open" "$sb" inspect "$dir/none.o"
echo "$failures failed"
[ "$failures" -eq 0 ]
