#!/usr/bin/env bash
# Resuming and starting over (README: The run folder): a checkpoint that does not fit the
# configuration (another width) is named with what differs, never with advice that loses the run;
# resume = never in a folder holding a run is refused; --fresh moves the old run aside first; a
# resume after a kill drops metrics.csv/validation.csv rows written after the checkpoint (no
# duplicate steps); a missing `latest` target is named as missing; a failed start leaves no empty
# run folder behind.
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
MPIEXEC=${MPIEXEC:-mpirun}
PY=/usr/bin/python3
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"
RUN_TIMEOUT=120
refused_with() { [ "$rc" -ne 0 ] && has "$1"; }

tiny_run_ini "$t/r.ini"
echo "checkpoint_steps = 2" >> "$t/r.ini"
make_cubes "$t/r.ini" "$t" 3 96,96,48
expect "scans and cubes" test $rc -eq 0
train() { run "$G" train "$t/r.ini" --set train.data="$t/cubes.h5" --set train.output="$t/run" "$@"; }

# 8 training cubes, batch 2: 4 steps per epoch; checkpoints at steps 2, 4 (before epoch 0's
# validation) and 5 (the end)
train --set train.max_steps=5
expect "a 5-step run" test $rc -eq 0 -a -f "$t/run/ckpt/step-00000005.h5"
# as if killed after step 5 before its checkpoint: latest names step 4, whose validation is pending
rm "$t/run/ckpt/step-00000005.h5"; echo step-00000004.h5 > "$t/run/ckpt/latest"
printf '6,1,0.1,0.5' >> "$t/run/metrics.csv" # a row cut by the kill
train --set train.max_steps=6
expect "resume after a kill" succeeded_with "resuming from $t/run/ckpt/step-00000004.h5"
expect "resume after a kill: the dropped rows are reported" has "row(s) of metrics.csv and 1 of validation.csv"
expect "metrics.csv: every step once, epoch 0's validation once, no cut row" $PY - "$t/run" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + '/metrics.csv')))
steps = [int(r['step']) for r in rows if r['train_loss']]
vals = [int(r['step']) for r in rows if r['validation_loss']]
assert steps == [1, 2, 3, 4, 5, 6], steps
assert vals == [4], vals
v = [int(r['step']) for r in csv.DictReader(open(sys.argv[1] + '/validation.csv'))]
assert v == [4], v
PY

# latest naming a file that is gone
echo step-00000099.h5 > "$t/run/ckpt/latest"
train --set train.max_steps=7
expect "a missing latest target is named as missing" has "latest names step-00000099.h5, which does not exist"
expect "a missing latest target: not called corrupted" lacks "truncated or corrupted"
expect "a missing latest target: resumes from the newest step file" has "resuming from $t/run/ckpt/step-00000006.h5"

# another width: what differs, no advice to set resume = never
sum=$(sha256sum < "$t/run/metrics.csv")
train --set train.max_steps=8 --set model.width=2
expect "width change: refused, naming both widths" refused_with "the checkpoint has \[model\] width 4, the configuration says 2"
expect "width change: no 'no readable checkpoint'" lacks "no readable checkpoint"
expect "width change: no advice to set resume = never" lacks "resume = never"
expect "width change: metrics.csv untouched" test "$(sha256sum < "$t/run/metrics.csv")" = "$sum"

# resume = never in a folder holding a run: refused; --fresh moves the old run aside
train --set train.max_steps=2 --set train.resume=never
expect "resume = never onto a run: refused, --fresh named" refused_with "holds another run .* add --fresh"
expect "resume = never onto a run: metrics.csv untouched" test "$(sha256sum < "$t/run/metrics.csv")" = "$sum"
train --set train.max_steps=2 --set model.width=2 --fresh
expect "--fresh: a new run starts" succeeded_with "moved to $t/run/previous-"
old=$(ls -d "$t"/run/previous-* | head -1)
expect "--fresh: the old run's files are in previous-*/" test -f "$old/ckpt/step-00000007.h5" -a -f "$old/ckpt/best.h5" \
  -a "$(sha256sum < "$old/metrics.csv")" = "$sum"
expect "--fresh: the new run's folder holds only its own checkpoints" \
  test "$(ls "$t/run/ckpt")" = "$(printf 'latest\nstep-00000002.h5')"
expect "--fresh: the new metrics.csv has the new run's 2 steps" \
  test "$(tail -n +2 "$t/run/metrics.csv" | wc -l)" = 2

# SIGTERM to a rank under mpirun (what mpirun sends the ranks on a Ctrl-C): the message does not
# pretend that the shell sees 75 whatever the launcher does
"$MPIEXEC" -np 1 "$G" train "$t/r.ini" --set train.data="$t/cubes.h5" --set train.output="$t/term" \
  --set train.max_steps=1000 > "$t/term.log" 2>&1 &
job=$!
for i in $(seq 1 600); do grep -q "step 2/" "$t/term.log" 2>/dev/null && break; sleep 0.1; done
rank=$(sed -n 's/^pid //p' "$t/term/heartbeat")
kill -TERM "$rank"; wait $job; rc=$?
out=$(cat "$t/term.log")
expect "SIGTERM to the rank: mpirun passes on 75 ($rc)" test $rc -eq 75
expect "SIGTERM under mpirun: the message says what mpirun reports after a Ctrl-C" \
  has "exiting with status 75 (continue me); if this SIGTERM is mpirun's forwarding of a Ctrl-C, mpirun itself exits with status 1"

# a failed start leaves no empty run folder
mkdir -p "$t/new"
train --set train.output="$t/new/run" --set train.data="$t/missing.h5"
expect "a failed start: the error names the data" refused_with "missing.h5: No such file"
expect "a failed start: no empty run/ckpt left" test ! -e "$t/new/run"
finish
