#!/usr/bin/env bash
# Long runs on a real scheduler: a private single-node Slurm (munge, slurmctld, slurmd) runs
# jobs/slurm/pretrain.sbatch; SIGUSR1 (scancel --signal=USR1 --batch) makes it checkpoint, exit 75
# and requeue itself; the requeued job resumes and finishes with weights bitwise equal to an
# uninterrupted run's. The PBS script goes through qsub (slurm-wlm-torque) on the same Slurm, with
# a resubmission, and runs directly with PBS_* variables set. prep.sbatch prepares the cubes;
# prep.pbs, run directly, passes the patterns of GENESIS_SETS to genesis unexpanded. scancel
# --signal=INT --batch ends a self-requeuing chain after a checkpoint. A second private Slurm started
# beside the first (as a second copy of the suite would) gets its own ports and cluster name.
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
SRC=${GENESIS_SOURCE_DIR:?}
export GENESIS=$G
t=$(mktemp -d)
. "$(dirname "$0")/../lib/harness.sh"
. "$SRC/tests/jobs/slurm_cluster.sh"
# Every wait below is bounded; should the whole still run too long, the watchdog prints where it
# stands before ctest's limit (900 s) ends it.
( sleep 840 </dev/null >/dev/null 2>&1
  echo "FAILED: the Slurm test is still running after 840 s; where it stands:"
  slurm_diagnose "watchdog"; for f in $t/*.out; do echo "--- $f"; tail -5 "$f"; done ) &
watchdog=$!
trap 'kill $watchdog 2>/dev/null; slurm_stop; rm -rf "$t"' EXIT
if ! command -v slurmctld >/dev/null || ! command -v qsub >/dev/null; then
  echo "FAILED: slurm-wlm and slurm-wlm-torque are not installed (scripts/setup --test installs them)"; exit 1
fi
expect "private Slurm starts" slurm_start $t/slurm || { finish; exit 1; }
ours=$(timeout 10 scontrol show config | awk '$1 == "ClusterName" {print $3}')
expect "private Slurm: the controller that answers is ours ($ours)" test "$ours" = "$SLURM_CLUSTER"
# A second private Slurm beside it (as a second copy of the suite would start): its own ports and
# name, both answer with their own names, and stopping it leaves ours running.
second=$( (slurm_start $t/slurm2 >$t/slurm2.log 2>&1 &&
           timeout 10 scontrol show config | awk '$1 == "ClusterName" {print $3}'; slurm_stop) )
expect "a second private Slurm starts beside the first, with its own name ($second)" \
  test -n "$second" -a "$second" != "$ours" || cat $t/slurm2.log
expect "the first Slurm still answers with its own name after the second stopped" \
  test "$(timeout 10 scontrol show config | awk '$1 == "ClusterName" {print $3}')" = "$ours"

cat > $t/run.ini <<INI
[model]
width = 4
[prep]
inputs = $t/scans/*.nii.gz
output = $t/cubes.h5
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
max_steps = 30
log_every = 1
checkpoint_minutes = 0
INI
make_scans - $t/scans 2 128,128,64

# prep as a batch job
id=$(cd $t && timeout 30 sbatch --parsable --output=$t/prep-%j.out "$SRC/jobs/slurm/prep.sbatch" $t/run.ini)
state=$(slurm_wait_job $id 120)
expect "prep.sbatch completes ($state)" test "$state" = COMPLETED ||
  { slurm_diagnose "prep job $id: $state"; tail -20 $t/prep-$id.out; }
expect "prep.sbatch wrote the cubes" test -s $t/cubes.h5

# prep.pbs run directly with patterns in GENESIS_SETS: they reach genesis as written, not expanded
# by the script in its working folder (where a decoy file matches one of them)
mkdir -p $t/pbs-prep && touch "$t/pbs-prep/prep.test_scans=decoy_phantom_0001"
(cd $t/pbs-prep && PBS_O_WORKDIR=$t/pbs-prep PBS_JOBID=3.local GENESIS_LAUNCHER=mpirun GENESIS_NP=2 \
   GENESIS_CONFIG=$t/run.ini GENESIS_SETS="prep.output=$t/pbs-cubes.h5 prep.test_scans=*phantom_0001*" \
   timeout 120 bash "$SRC/jobs/pbs/prep.pbs" > $t/pbs-prep.out 2>&1)
expect "prep.pbs with patterns in GENESIS_SETS completes" test $? -eq 0 || tail -5 $t/pbs-prep.out
run "$G" info $t/pbs-cubes.h5
expect "prep.pbs: the pattern reached genesis unexpanded (phantom_0001 is the test scan)" \
  has "test .*phantom_0001"

# the uninterrupted reference
timeout 300 mpirun -np 2 "$G" train $t/run.ini --set train.output=$t/reference >$t/reference.log 2>&1
expect "uninterrupted reference run" test -s $t/reference/ckpt/step-00000030.h5

# waits until FILE shows that training is in its second epoch (5 steps done: 4 steps per epoch)
wait_for_step() {
  for i in $(seq 1 900); do grep -q "epoch 1 step" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# signalled_job NAME SIGNAL [VAR=VALUE...]: submits pretrain.sbatch (with the VARs; output $t/NAME.out,
# run folder $t/NAME), waits for 5 trained steps, sends SIGNAL to the batch script (scancel --batch)
# and waits until the job has left the queue; checks that it completed after genesis checkpointed
# and exited with 75. Sets out and id.
signalled_job() {
  local name=$1 signal=$2 state; shift 2
  out=$t/$name.out
  id=$(cd $t && env "$@" timeout 30 sbatch --parsable --ntasks-per-node=2 --time=10 --output=$out \
       "$SRC/jobs/slurm/pretrain.sbatch" $t/run.ini --set train.output=$t/$name)
  expect "[$name] job started and trained 5 steps" wait_for_step $out 5
  timeout 30 scancel --signal=$signal --batch $id
  state=$(slurm_wait_job $id 240)
  expect "[$name] job completes after SIG$signal ($state)" test "$state" = COMPLETED ||
    { slurm_diagnose "job $id: $state"; tail -20 $out; }
  expect "[$name] genesis checkpointed and asked to continue" grep -q "exiting with status 75 (continue me)" $out
}

# Slurm: signal, checkpoint, requeue, resume, finish
for launcher in srun mpirun; do
  signalled_job slurm-$launcher USR1 GENESIS_LAUNCHER=$launcher
  expect "[$launcher] the script requeued the job" grep -q "requeueing job $id" $out
  expect "[$launcher] the requeued run resumed" grep -q "resuming from $t/slurm-$launcher/ckpt/step-" $out
  expect "[$launcher] restart count seen" grep -q "(run 2)" $out
  for group in params buffers optim; do
    expect "[$launcher] final /$group bitwise equal to the uninterrupted run's" \
      h5diff -q $t/reference/ckpt/step-00000030.h5 $t/slurm-$launcher/ckpt/step-00000030.h5 /$group /$group
  done
done

# Slurm: stopping the chain for good: scancel --signal=INT --batch checkpoints and ends the job
# (COMPLETED, no requeue) with a checkpoint before the last step
signalled_job slurm-stop INT
expect "[stop] the script ended the chain" grep -q "stopped by request: not requeueing" $out
expect "[stop] no requeue, one run" test -z "$(grep -e 'requeueing job' -e '(run 2)' $out)"
expect "[stop] a checkpoint before the last step" test -n "$(ls $t/slurm-stop/ckpt/ | grep "^step-" | grep -v step-00000030)"
expect "[stop] the launch line is in the output" \
  grep -q "srun --mpi=pmix --kill-on-bad-exit=1 -n 2 -c 1 --cpu-bind=verbose,cores" $out

# PBS through qsub (slurm-wlm-torque): signal, checkpoint, resubmission by qsub, finish
printf '[train]\noutput = %s/pbs-qsub\n' $t > $t/pbs.ini
cat $t/run.ini > $t/pbs-full.ini; sed -i "s#^batch = 2#batch = 2\noutput = $t/pbs-qsub#" $t/pbs-full.ini
first=$(cd $t && timeout 30 qsub -V -v "GENESIS_CONFIG=$t/pbs-full.ini,GENESIS_JOB_SCRIPT=$SRC/jobs/pbs/pretrain.pbs" \
        -o $t/pbs-qsub.out "$SRC/jobs/pbs/pretrain.pbs" 2>&1 | tail -1)
out=$t/pbs-qsub.out
for i in $(seq 1 100); do ls $t/slurm-*.out $out 2>/dev/null | xargs grep -l "pbs-full.ini" >/dev/null 2>&1 && break; sleep 0.2; done
pbsout=$(grep -l "pretraining with $t/pbs-full.ini" $t/*.out 2>/dev/null | head -1)
expect "qsub started the PBS script (job $first)" test -n "$pbsout"
if [ -n "$pbsout" ]; then
  expect "PBS job trained 5 steps" wait_for_step $pbsout 5
  timeout 30 scancel --signal=USR1 --batch $first
  for i in $(seq 1 600); do [ -s $t/pbs-qsub/ckpt/step-00000030.h5 ] && break; sleep 0.5; done
  sleep 2
  expect "PBS job resubmitted itself and the new job finished" test -s $t/pbs-qsub/ckpt/step-00000030.h5
  expect "PBS script resubmitted with qsub" grep -q "resubmitting $SRC/jobs/pbs/pretrain.pbs" $t/*.out
  for group in params buffers optim; do
    expect "PBS (qsub) final /$group bitwise equal to the uninterrupted run's" \
      h5diff -q $t/reference/ckpt/step-00000030.h5 $t/pbs-qsub/ckpt/step-00000030.h5 /$group /$group
  done
fi

# PBS directly, with the PBS_* variables set; the resubmission goes to a stand-in qsub that records
# the command and runs the script again as the next job would.
cat > $t/qsub-here <<'SH'
#!/usr/bin/env bash
echo "$@" > "$PBS_TEST_DIR/qsub-args"
script=${@: -1}; vars=${@: -2:1}
IFS=, read -ra kv <<< "$vars"; for a in "${kv[@]}"; do export "$a"; done
PBS_JOBID=2.local exec bash "$script" > "$PBS_TEST_DIR/pbs-direct-2.out" 2>&1
SH
chmod +x $t/qsub-here
echo "$(hostname)" > $t/nodefile; echo "$(hostname)" >> $t/nodefile
(cd $t && PBS_O_WORKDIR=$t PBS_NODEFILE=$t/nodefile PBS_JOBID=1.local PBS_TEST_DIR=$t GENESIS_QSUB=$t/qsub-here \
   GENESIS_CONFIG=$t/run.ini GENESIS_SETS="train.output=$t/pbs-direct" \
   exec bash "$SRC/jobs/pbs/pretrain.pbs" > $t/pbs-direct-1.out 2>&1) &
pid=$!
expect "direct PBS run trained 5 steps" wait_for_step $t/pbs-direct-1.out 5
kill -TERM $pid   # what PBS does at the walltime
for i in $(seq 1 1200); do kill -0 $pid 2>/dev/null || break; sleep 0.25; done
kill -0 $pid 2>/dev/null && { bad "direct PBS run still running 300 s after SIGTERM"; kill -9 $pid; }
wait $pid
expect "direct PBS run: SIGTERM forwarded, checkpoint, exit 75" grep -q "exiting with status 75" $t/pbs-direct-1.out
expect "direct PBS run: resubmitted with the job's variables (encoded)" \
  grep -q -- "-V -v GENESIS_CONFIG=b64:[A-Za-z0-9+/]*,GENESIS_RESUBMIT_COUNT=1," $t/qsub-args
expect "direct PBS run: the next job resumed and finished" grep -q "pretraining finished" $t/pbs-direct-2.out
expect "direct PBS run: the nodefile set 2 ranks" grep -q "ranks 2" $t/pbs-direct-1.out
for group in params buffers optim; do
  expect "direct PBS final /$group bitwise equal to the uninterrupted run's" \
    h5diff -q $t/reference/ckpt/step-00000030.h5 $t/pbs-direct/ckpt/step-00000030.h5 /$group /$group
done

finish
