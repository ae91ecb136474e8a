#!/usr/bin/env bash
# A stop always leaves time to requeue: a stop request (SIGUSR1 from the job script) that arrives
# during a validation pass ends the pass after the current batch, writes a checkpoint and exits 75
# within seconds; the resumed run runs that epoch's validation again and goes on. A stop rule that
# the configured margin cannot meet is warned about.
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
MPIEXEC=${MPIEXEC:-mpirun}
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"

# A short epoch and a long validation: 32x32x16 cubes, batch 2, 4 scans of 40 cubes, 3 of them for
# validation: 20 steps, then 60 validation batches.
phantom_ct_ini $t/run.ini
cat >> $t/run.ini <<INI
cube_rows = 32
cube_cols = 32
cube_deps = 16
crop_sizes = 32
[train]
batch = 2
max_epochs = 2
preview_epochs = 0
checkpoint_minutes = 0
INI
sed -i 's/^cubes_per_scan = .*/cubes_per_scan = 40/; s/^validation_fraction = .*/validation_fraction = 0.75/; s/^filter = .*/filter = none/' $t/run.ini
make_cubes $t/run.ini $t 4 96,96,48
expect "cubes for the stop test" test $rc -eq 0
genesis_on - info $t/cubes.h5
val=$(sed -n 's/.*validation \([0-9]*\).*/\1/p' <<<"$out" | head -1)
expect "three times as many validation cubes as training cubes ($val)" test "${val:-0}" -eq 120

sets=(--set train.data=$t/cubes.h5 --set train.output=$t/run)
"$MPIEXEC" -np 2 "$G" train $t/run.ini "${sets[@]}" >$t/train.log 2>&1 &
job=$!
for i in $(seq 1 1200); do grep -q "epoch 0 step 20/20" $t/train.log && break; sleep 0.05; done
sleep 0.3
signalled=$(date +%s.%N)
kill -USR1 $job
wait $job; rc=$?
secs=$(awk -v a=$signalled -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b - a}')
out=$(cat $t/train.log)
expect "a stop during validation exits 75 (continue me)" test $rc -eq 75
expect "it stopped inside the validation" has "stop requested during the validation of epoch 0 (after [0-9]* of [0-9]* batches"
expect "it wrote a checkpoint" has "checkpoint written after step"
expect "within a few seconds of the signal (took $secs s)" awk -v s=$secs 'BEGIN{exit !(s < 5)}'
expect "the epoch's validation had not finished" lacks "epoch 0 done"

genesis_on 2 train $t/run.ini "${sets[@]}"
expect "the resumed run succeeds" test $rc -eq 0
expect "it runs epoch 0's validation again" has "epoch 0 done: validation loss"
expect "and goes on with epoch 1" has "epoch 1 step"
expect "the epoch line gives the validation's time" has "epoch 0 done: .*(validation [0-9.]* s)"

# A margin shorter than a checkpoint and a step is warned about (once).
genesis_on 2 train $t/run.ini --set train.data=$t/cubes.h5 --set train.output=$t/margin --set train.max_steps=3 \
  --set train.checkpoint_steps=1 --set train.deadline_margin_minutes=0.00001
expect "a margin too short for a stop is warned about" once "deadline_margin_minutes = 1e-05 .* is shorter than what a stop needs"
finish
