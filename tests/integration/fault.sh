#!/usr/bin/env bash
# Faults during long runs: a rank killed mid-step ends the job (no hang) and the run resumes from
# its last checkpoint; a crash while a checkpoint is written leaves the previous one valid and used;
# a truncated or corrupted newest checkpoint is detected on resume and the previous one used with a
# warning; a full filesystem gives a clear error and keeps the previous checkpoint. Every resumed
# run ends bitwise equal to an uninterrupted one.
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
MPIEXEC=${MPIEXEC:-mpirun}
t=$(mktemp -d)
trap 'umount $t/full 2>/dev/null; rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"
same() { # same CKPT_A CKPT_B: params, BN buffers and optimizer state bitwise equal
  for g in params buffers optim; do h5diff -q "$1" "$2" /$g /$g || return 1; done
}

cat > $t/run.ini <<INI
[model]
width = 4
[prep]
normalize = ct
filter = none
border_xy = 8
border_z = 4
cubes_per_scan = 8
validation_fraction = 0.5
test_fraction = 0
[train]
data = $t/cubes.h5
batch = 2
learning_rate = 0.1
log_every = 1
checkpoint_steps = 5
checkpoint_minutes = 0
INI
make_cubes $t/run.ini $t 2 128,128,64
expect "phantoms and prep" test $rc -eq 0
train() { "$MPIEXEC" -np 2 "$G" train $t/run.ini "$@"; }
train --set train.output=$t/ref10 --set train.max_steps=10 > $t/ref10.log 2>&1
train --set train.output=$t/ref30 --set train.max_steps=30 > $t/ref30.log 2>&1
expect "reference runs" test -s $t/ref10/ckpt/step-00000010.h5 -a -s $t/ref30/ckpt/step-00000030.h5

# 1. kill -9 of one rank mid-step
train --set train.output=$t/killed --set train.max_steps=30 > $t/killed.log 2>&1 &
mpirun_pid=$!
for i in $(seq 1 600); do grep -q "step-00000010.h5" $t/killed.log && break; sleep 0.1; done
rank=$(rank_pids "train.output=$t/killed" | tail -1)
start=$(date +%s)
kill -9 $rank
wait $mpirun_pid; rc=$?
took=$(( $(date +%s) - start ))
expect "a rank killed mid-step ends the job (exit $rc) within 30 s (took $took s)" test $rc -ne 0 -a $took -le 30
train --set train.output=$t/killed --set train.max_steps=30 > $t/killed2.log 2>&1
expect "the run resumes from its last checkpoint" grep -q "resuming from $t/killed/ckpt/step-000000[1-2][05].h5" $t/killed2.log
expect "and ends equal to the uninterrupted run" same $t/ref30/ckpt/step-00000030.h5 $t/killed/ckpt/step-00000030.h5

# 2. a crash (SIGKILL) in the middle of writing the second checkpoint (step 10)
GENESIS_FAULT=checkpoint.write.step:0:2 train --set train.output=$t/crash --set train.max_steps=30 > $t/crash.log 2>&1
expect "the job ended with the crash" test $? -ne 0
expect "latest still names the step-5 checkpoint" grep -qx "step-00000005.h5" $t/crash/ckpt/latest
expect "no step-10 checkpoint under its final name" test ! -e $t/crash/ckpt/step-00000010.h5
train --set train.output=$t/crash --set train.max_steps=30 > $t/crash2.log 2>&1
expect "resume uses the step-5 checkpoint" grep -q "resuming from $t/crash/ckpt/step-00000005.h5" $t/crash2.log
expect "and ends equal to the uninterrupted run" same $t/ref30/ckpt/step-00000030.h5 $t/crash/ckpt/step-00000030.h5

# 3. a truncated, then a corrupted, newest checkpoint
for damage in truncated corrupted; do
  d=$t/$damage
  train --set train.output=$d --set train.max_steps=10 > $d.log 2>&1 || true
  f=$d/ckpt/step-00000010.h5
  size=$(stat -c %s $f)
  if [ $damage = truncated ]; then truncate -s $((size / 2)) $f
  else printf '\xff\xff\xff\xff\xff\xff\xff\xff%.0s' $(seq 1 64) | dd of=$f bs=1 seek=$((size / 2)) conv=notrunc status=none
  fi
  train --set train.output=$d --set train.max_steps=10 > $d.resume.log 2>&1
  expect "$damage newest checkpoint: detected with a warning" grep -q "warning on rank 0: cannot resume from $f" $d.resume.log
  expect "$damage newest checkpoint: the previous one is used" grep -q "resuming from $d/ckpt/step-00000005.h5" $d.resume.log
  expect "$damage newest checkpoint: the run ends equal to the uninterrupted one" same $t/ref10/ckpt/step-00000010.h5 $f
done

# 4. a full filesystem: a checkpoint is 2.8 MB; best.h5 (step 4) and step 5 fit, the next write
#    (best.h5 at step 8 or step 10) does not
mkdir -p $t/full
if mount -t tmpfs -o size=7000k tmpfs $t/full; then
  train --set train.output=$t/full/run --set train.max_steps=30 > $t/full.log 2>&1
  rc=$?
  expect "full filesystem: non-zero exit ($rc)" test $rc -ne 0
  expect "full filesystem: a clear error" grep -q "genesis: error: cannot write $t/full/run/ckpt/.*No space left on device (disk full?)" $t/full.log
  expect "full filesystem: the previous checkpoint is kept and readable" \
    bash -c "grep -qx step-00000005.h5 $t/full/run/ckpt/latest && h5ls $t/full/run/ckpt/step-00000005.h5/params >/dev/null"
  expect "full filesystem: no partial file left" test -z "$(ls $t/full/run/ckpt | grep tmp)"
else
  bad "cannot mount a tmpfs for the full-filesystem test (needs root)"
fi


# 5. a fault on one rank while the data loader is made (GENESIS_FAULT=loader.create:1): every rank
#    takes part in the agreement, so the job ends within the time limit with that rank's error,
#    reported once as a collective error (no MPI_Abort, no rank left in a collective)
RUN_TIMEOUT=120 run "$MPIEXEC" -np 2 env GENESIS_FAULT=loader.create:1 "$G" train $t/run.ini \
  --set train.output=$t/loader --set train.max_steps=2
expect "a fault on rank 1 at loader creation: exit 1 within the time limit (exit $rc, $secs s)" test $rc -eq 1
expect "a fault on rank 1 at loader creation: a clear error" has "genesis: error: injected fault at 'loader.create'"

# 6. updating ckpt/latest fails after its temporary file is closed (GENESIS_FAULT=checkpoint.latest:0):
#    a clear error, the FILE closed once (a double fclose aborts), latest never written
RUN_TIMEOUT=120 run "$MPIEXEC" -np 2 env GENESIS_FAULT=checkpoint.latest:0 "$G" train $t/run.ini \
  --set train.output=$t/latest --set train.max_steps=5
expect "latest cannot be updated: exit 1 (exit $rc)" test $rc -eq 1
expect "latest cannot be updated: a clear error" has "genesis: error: injected fault at 'checkpoint.latest'"
expect "latest cannot be updated: no latest" test ! -e $t/latest/ckpt/latest

finish
