#!/usr/bin/env bash
# The performance suite in one command (issue 6): builds the benchmarks
# (Release, in build-bench/), runs sb_jit_bench (compile time per
# architecture, execution on the JIT, the kernel's JIT, native C and the
# interpreter, code size) and sb_trampoline_bench, and writes
#
#   tools/bench/results.json   both runs' Google Benchmark JSON, merged
#   tools/bench/results.md     the tables (tools/bench_chart.py)
#   tools/bench/results.png    the chart (needs: apt-get install python3-matplotlib)
#   tools/bench/api.json       sb_api_bench (the C API's run path, compile to runnable code)
#   tools/bench/first_compile.txt  sb_first_compile, five fresh processes per architecture
#
# Run it as root for the kernel rows (BPF_PROG_TEST_RUN); otherwise they
# are skipped with a message. Run it on a quiet machine: it prints the load
# average, which the results record too.
#
#   tools/bench.sh                      # 5 repetitions, medians
#   REPS=1 MIN_TIME=0.1 tools/bench.sh  # a quick look
#   BUILD_DIR=build JOBS=2 tools/bench.sh
#   tools/bench.sh --benchmark_filter=exec/   # extra arguments go to sb_jit_bench
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
reps=${REPS:-5}
min_time=${MIN_TIME:-0.5}
jobs=${JOBS:-2}
out=$root/tools/bench
mkdir -p "$out"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$jobs" --target sb_jit_bench sb_trampoline_bench sb_api_bench sb_first_compile

[ "$(id -u)" -eq 0 ] || echo "bench: not root: the kernel rows will be skipped" >&2
echo "bench: load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs" >&2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(--benchmark_repetitions="$reps" --benchmark_min_time="$min_time" --benchmark_out_format=json)
if [ "$reps" -gt 1 ]; then
  common+=(--benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true)
fi
"$build/test/bench/sb_jit_bench" "${common[@]}" --benchmark_out="$tmp/jit.json" "$@"
"$build/test/bench/sb_trampoline_bench" "${common[@]}" --benchmark_out="$tmp/trampoline.json"

# The public API's run path and compile to runnable code (issue 17), and
# the first compile of fresh processes, each arch five times.
"$build/test/bench/sb_api_bench" "${common[@]}" --benchmark_out="$out/api.json"
for arch in x86-64 arm64 riscv64; do
  for i in 1 2 3 4 5; do "$build/test/bench/sb_first_compile" "$arch"; done
done | tee "$out/first_compile.txt"

# Debian's python3 (where python3-matplotlib installs) before any other.
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
"$py" - "$tmp/jit.json" "$tmp/trampoline.json" "$out/results.json" <<'EOF'
import json, sys
jit, tramp = (json.load(open(p)) for p in sys.argv[1:3])
jit["benchmarks"] += tramp["benchmarks"]
json.dump(jit, open(sys.argv[3], "w"), indent=1)
EOF
if "$py" -c "import matplotlib" 2>/dev/null; then
  "$py" "$root/tools/bench_chart.py" "$out/results.json" --markdown "$out/results.md" --png "$out/results.png"
  echo "bench: wrote $out/results.json, results.md and results.png" >&2
else
  "$py" "$root/tools/bench_chart.py" "$out/results.json" --markdown "$out/results.md"
  echo "bench: wrote $out/results.json and results.md; for the chart: apt-get install python3-matplotlib" >&2
fi
cat "$out/results.md"
