# The integration tests' checks (sourced by tests/integration/*.sh):
#   expect WHAT CMD...  runs CMD; counts it as passed ("ok: WHAT") or failed ("FAILED: WHAT",
#                       and returns 1)
#   ok WHAT / bad WHAT  count a check directly
#   run CMD...          runs CMD with a time limit (RUN_TIMEOUT seconds, default 600); sets
#                       $out (stdout and stderr), $rc and $secs
#   has TEXT            does $out contain TEXT?
#   finish              prints "N passed, M failed" and returns the status ctest reads
failures=0; checks=0
ok() { checks=$((checks + 1)); echo "ok: $*"; }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAILED: $*"; }
expect() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; return 1; fi; }
run() {
  local start; start=$(date +%s.%N)
  out=$(timeout "${RUN_TIMEOUT:-600}" "$@" 2>&1); rc=$?
  secs=$(echo "$(date +%s.%N) - $start" | bc)
}
has() { grep -q -- "$1" <<<"$out"; }
finish() {
  echo "$((checks - failures)) passed, $failures failed"
  [ $failures -eq 0 ]
}
