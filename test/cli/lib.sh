# Shared by the CLI test scripts: `check NAME WANT_EXIT WANT_TEXT CMD...`
# runs CMD and counts a failure unless it exits WANT_EXIT and its output
# (stdout and stderr) contains WANT_TEXT. Source it, then `exit $failures`.
failures=0
check() {  # check NAME WANT_EXIT WANT_TEXT CMD...
  local name=$1 want=$2 text=$3
  shift 3
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$want" ] || ! grep -qF -- "$text" <<<"$out"; then
    echo "FAIL $name: exit $rc (want $want), output: $out (want: $text)"
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}
