# The integration tests' checks (sourced by tests/integration/*.sh):
#   expect WHAT CMD...  runs CMD; counts it as passed ("ok: WHAT") or failed ("FAILED: WHAT",
#                       and returns 1)
#   ok WHAT / bad WHAT  count a check directly
#   run CMD...          runs CMD with a time limit (RUN_TIMEOUT seconds, default 600); sets
#                       $out (stdout and stderr), $rc and $secs
#   has TEXT            does $out contain TEXT (a grep pattern)?
#   has_all TEXT...     does $out contain every TEXT?
#   lacks TEXT          does $out not contain TEXT?
#   once TEXT           does exactly one line of $out contain TEXT (an error printed once)?
#   succeeded_with TEXT did the last run exit 0 with TEXT in $out?
#   finish              prints "N passed, M failed" and returns the status ctest reads
# $out is only ever passed to grep as data, never spliced into a command string: output with
# quotes or $ in it cannot break a check.
#
# Set-up of scans and cubes (need $G, the genesis executable, and $MPIEXEC); NP is a rank count
# for $MPIEXEC -np, or "-" for the executable alone (no mpirun):
#   make_scans NP DIR COUNT [SIZE]
#                       COUNT phantom scans into folder DIR (SIZE voxels, e.g. 128,128,64; default
#                       the phantom's own); sets $out, $rc, $secs
#   prep_cubes NP INI SCANS OUTPUT [ARG...]
#                       genesis prep INI --set prep.inputs=SCANS --set prep.output=OUTPUT ARG...,
#                       SCANS a pattern that genesis expands (e.g. "$t/scans/*.nii.gz"), ARGs e.g.
#                       --set prep.strict=true; sets $out, $rc, $secs
#   make_cubes INI DIR COUNT [SIZE]
#                       the usual set-up: COUNT phantoms into DIR/scans (make_scans -), then a
#                       2-rank prep of them with INI into DIR/cubes.h5; $out and $rc are the
#                       phantom's if it failed, else the prep's
failures=0; checks=0
ok() { checks=$((checks + 1)); echo "ok: $*"; }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAILED: $*"; }
expect() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; return 1; fi; }
run() {
  local start; start=$(date +%s.%N)
  out=$(timeout "${RUN_TIMEOUT:-600}" "$@" 2>&1); rc=$?
  secs=$(echo "$(date +%s.%N) - $start" | bc)
}
# PIDs of the genesis ranks (process name genesis, not the launcher) whose command line contains $1:
# under Open MPI the ranks are mpirun's children, under MPICH's Hydra they are its proxy's children.
rank_pids() { local p; for p in $(pgrep -x genesis); do grep -qaF -- "$1" /proc/$p/cmdline 2>/dev/null && echo $p; done; }
has() { grep -q -- "$1" <<<"$out"; }
has_all() { local text; for text in "$@"; do has "$text" || return 1; done; }
lacks() { ! has "$1"; }
once() { [ "$(grep -c -- "$1" <<<"$out")" -eq 1 ]; }
succeeded_with() { [ "$rc" -eq 0 ] && has "$1"; }
finish() {
  echo "$((checks - failures)) passed, $failures failed"
  [ $failures -eq 0 ]
}

# genesis_on NP ARG...: genesis ARG... on NP ranks (or alone when NP is "-"), through run
genesis_on() {
  local np=$1; shift
  if [ "$np" = - ]; then run "$G" "$@"; else run "$MPIEXEC" -np "$np" "$G" "$@"; fi
}
make_scans() {
  local np=$1 dir=$2 count=$3 size=${4:-}
  mkdir -p "$dir"
  genesis_on "$np" phantom --count "$count" --output-dir "$dir" ${size:+--size "$size"}
}
prep_cubes() {
  local np=$1 ini=$2 scans=$3 output=$4; shift 4
  genesis_on "$np" prep "$ini" --set "prep.inputs=$scans" --set "prep.output=$output" "$@"
}
make_cubes() {
  local ini=$1 dir=$2 count=$3 size=${4:-}
  make_scans - "$dir/scans" "$count" "$size" || return
  [ "$rc" -eq 0 ] || return
  prep_cubes 2 "$ini" "$dir/scans/*.nii.gz" "$dir/cubes.h5"
}

# tiny_ct_ini FILE: a configuration of width-2 runs on 16^3 cubes of small CT phantoms (make_scans NP
# DIR COUNT 48,48,32; no filter, 4 cubes a scan): a step takes milliseconds. It ends with a [train]
# section (batch 2, a progress line every step, checkpoints only at the end, no previews) that the
# caller may append keys to.
tiny_ct_ini() {
  cat > "$1" <<INI
[model]
width = 2
[prep]
normalize = ct
filter = none
border_xy = 8
border_z = 4
cubes_per_scan = 4
validation_fraction = 0.34
test_fraction = 0
cube_rows = 16
cube_cols = 16
cube_deps = 16
crop_sizes = 16
[train]
batch = 2
log_every = 1
checkpoint_minutes = 0
preview_epochs = 0
INI
}

# tiny_run_ini FILE: a run of seconds on 96x96x48 phantoms (make_scans NP DIR 3 96,96,48): width 4,
# filter none, no borders, 4 cubes per scan (8 training cubes from 3 scans), batch 2, a log line per
# step, no timed checkpoints; [train] is last (the caller may append keys to it).
tiny_run_ini() {
  cat > "$1" <<INI
[model]
width = 4
[prep]
filter = none
border_xy = 0
border_z = 0
cubes_per_scan = 4
validation_fraction = 0.34
test_fraction = 0
[train]
batch = 2
log_every = 1
checkpoint_minutes = 0
INI
}

# phantom_ct_ini FILE: the [model] and [prep] sections of the width-4 runs on CT phantoms (lung
# filter, small borders); the caller appends its [train] section (cat >> FILE <<INI).
phantom_ct_ini() {
  cat > "$1" <<INI
[model]
width = 4
[prep]
normalize = ct
filter = lung
border_xy = 24
border_z = 8
cubes_per_scan = 12
validation_fraction = 0.34
test_fraction = 0
INI
}
