#!/usr/bin/env bash
# The job scripts' logic without a scheduler (fast; tests/integration/slurm.sh runs them on a real
# private Slurm): stand-in srun/mpirun/scontrol/qsub/qstat on PATH record what the scripts ask for,
# and the stand-in launcher behaves as genesis train does on a signal (SIGUSR1: exit 75).
#   - the layout checks: a batch that the ranks do not divide, ranks x threads above the allocation
#     (both stop before launching, status 2, saying what to change)
#   - the launch lines: srun -n NP -c T --cpu-bind, SRUN_CPUS_PER_TASK, GENESIS_NP, GENESIS_SRUN_ARGS;
#     mpirun --map-by slot:PE=T --bind-to core --report-bindings, GENESIS_MPIRUN_ARGS
#   - a self-requeuing chain: USR1 requeues; SIGINT or RUN_DIR/STOP ends it (status 0, no requeue);
#     the requeue cap
#   - every mpirun/srun/sbatch/qsub example of README.md, INSTALL.md, jobs/ and conf/ runs as
#     written (tests/jobs/examples.py)
#   - PBS: qsub -v values encoded (commas, blanks survive), the job's resources (qstat -f, PBS Pro
#     select syntax, a continued line) carried to the resubmission, the walltime as the deadline
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
SRC=${GENESIS_SOURCE_DIR:?}
t=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"
export GENESIS=$G GENESIS_JOBS_DIR=$SRC/jobs

# --- stand-ins: every command appends its arguments (and what matters of its environment) to a log
mkdir -p $t/bin
cat > $t/bin/launcher <<'SH'
#!/usr/bin/env bash
echo "$(basename "$0") $* SRUN_CPUS_PER_TASK=${SRUN_CPUS_PER_TASK:-} OMP_NUM_THREADS=$OMP_NUM_THREADS" >> "$JOBS_TEST_LOG"
[ -n "${LAUNCHER_EXIT:-}" ] && exit "$LAUNCHER_EXIT"
trap 'echo "launcher: checkpoint, exiting with status 75"; exit 75' USR1
echo "launcher: training"
for i in $(seq 1 300); do sleep 0.1; done
exit 0
SH
chmod +x $t/bin/launcher; ln -s launcher $t/bin/srun; ln -s launcher $t/bin/mpirun
cat > $t/bin/scontrol <<'SH'
#!/usr/bin/env bash
[ "$1" = requeue ] && echo "scontrol $*" >> "$JOBS_TEST_LOG"
exit 0
SH
chmod +x $t/bin/scontrol
export PATH=$t/bin:$PATH JOBS_TEST_LOG=$t/calls.log

cat > $t/run.ini <<INI
[train]
data = $t/cubes.h5
output = $t/run
batch = 6
INI
mkdir -p $t/run

# sbatch_direct NAME ENV... : runs jobs/slurm/pretrain.sbatch in the background as Slurm would
# (job 7 on a node of SLURM_JOB_CPUS_PER_NODE cores); output in $t/NAME.out, pid in $job
sbatch_direct() {
  local name=$1; shift
  : > $t/calls.log
  # as under Slurm, SIGINT is not ignored (a background job of a script has it ignored: restore it)
  /usr/bin/python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp("env", ["env"] + sys.argv[1:])' \
    SLURM_JOB_ID=7 SLURM_NTASKS=2 SLURM_JOB_CPUS_PER_NODE=2 GENESIS_LAUNCHER=srun "$@" \
    bash "$SRC/jobs/slurm/pretrain.sbatch" $t/run.ini > $t/$name.out 2>&1 &
  job=$!
}
wait_training() { for i in $(seq 1 200); do grep -q "launcher: training" "$1" && return 0; sleep 0.05; done; return 1; }
finished() { for i in $(seq 1 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done; return 1; }

# --- layout checks (nothing is launched)
sbatch_direct layout-batch GENESIS_NP=4 SLURM_JOB_CPUS_PER_NODE=4; wait $job; rc=$?
out=$(cat $t/layout-batch.out)
expect "batch 6 on 4 ranks: refused before launching (status 2)" test $rc -eq 2
expect "batch 6 on 4 ranks: says which rank counts fit" has "not a multiple of the 4 ranks.*(1 2 3 6"
expect "batch 6 on 4 ranks: points to the large-batch recipe" has "train.lr_scaling=none"
expect "batch 6 on 4 ranks: no launcher started" test ! -s $t/calls.log
sbatch_direct layout-cores GENESIS_THREADS=2; wait $job; rc=$?
out=$(cat $t/layout-cores.out)
expect "2 ranks x 2 threads on 2 cores: refused (status 2)" test $rc -eq 2
expect "2 ranks x 2 threads on 2 cores: names both numbers" has "2 ranks x 2 threads = 4 cores, but the allocation has 2"
expect "allocation cores from SLURM_JOB_CPUS_PER_NODE=32(x4),16" \
  test "$(bash -c '. "$GENESIS_JOBS_DIR/lib.sh"; SLURM_JOB_CPUS_PER_NODE="32(x4),16" genesis_allocated_cores')" = 144

# --- srun launch line; SIGUSR1: checkpoint and requeue
sbatch_direct srun GENESIS_NP=3 GENESIS_THREADS=2 SLURM_JOB_CPUS_PER_NODE='3(x2)' GENESIS_SRUN_ARGS="--mpi=pmi2 --exclusive"
expect "srun job started" wait_training $t/srun.out
out=$(cat $t/calls.log)
expect "srun: -n 3 -c 2 --cpu-bind=verbose,cores (GENESIS_NP honoured)" has "srun --mpi=pmix --kill-on-bad-exit=1 -n 3 -c 2 --cpu-bind=verbose,cores"
expect "srun: GENESIS_SRUN_ARGS after genesis's own options" has "cores --mpi=pmi2 --exclusive $G train"
expect "srun: SRUN_CPUS_PER_TASK and OMP_NUM_THREADS = 2, train.threads=2" has_all "SRUN_CPUS_PER_TASK=2 " "OMP_NUM_THREADS=2" "train.threads=2"
kill -USR1 $job; finished $job; wait $job; rc=$?
out=$(cat $t/calls.log)
expect "USR1: the job requeues itself (exit 0)" test $rc -eq 0
expect "USR1: scontrol requeue 7" has "scontrol requeue 7"

# --- mpirun launch line
sbatch_direct mpirun GENESIS_LAUNCHER=mpirun GENESIS_THREADS=1 GENESIS_MPIRUN_ARGS="--mca btl self,vader"
expect "mpirun job started" wait_training $t/mpirun.out
out=$(cat $t/calls.log)
expect "mpirun: -np 2 --map-by slot:PE=1 --bind-to core --report-bindings + GENESIS_MPIRUN_ARGS" \
  has "mpirun -np 2 --map-by slot:PE=1 --bind-to core --report-bindings --mca btl self,vader $G train"
kill -USR1 $job; finished $job; wait $job

# --- stopping the chain: SIGINT (scancel --signal=INT --batch)
sbatch_direct stop-int
expect "stop by SIGINT: job started" wait_training $t/stop-int.out
kill -INT $job; finished $job; wait $job; rc=$?
out=$(cat $t/stop-int.out)
expect "stop by SIGINT: genesis checkpointed (75) and the job ended with status 0" test $rc -eq 0
expect "stop by SIGINT: checkpoint requested as SIGUSR1" has "launcher: checkpoint, exiting with status 75"
expect "stop by SIGINT: says it stopped by request" has "stopped by request: not requeueing"
expect "stop by SIGINT: no requeue" test -z "$(grep requeue $t/calls.log)"

# --- stopping the chain: RUN_DIR/STOP, acted on at the next checkpoint-and-continue
sbatch_direct stop-file
expect "stop file: job started" wait_training $t/stop-file.out
touch $t/run/STOP; kill -USR1 $job; finished $job; wait $job; rc=$?
out=$(cat $t/stop-file.out)
expect "stop file: status 0, no requeue" test $rc -eq 0 -a -z "$(grep requeue $t/calls.log)"
expect "stop file: found and removed" test ! -e $t/run/STOP
expect "stop file: logged" has "found $t/run/STOP: stop requested"
touch $t/run/STOP
sbatch_direct stop-file-at-start; wait $job; rc=$?
expect "stop file at start: ends at once with status 0, nothing launched" test $rc -eq 0 -a ! -s $t/calls.log

# --- the requeue cap
sbatch_direct cap SLURM_RESTART_COUNT=3 GENESIS_MAX_REQUEUES=3
expect "requeue cap: job started" wait_training $t/cap.out
kill -USR1 $job; finished $job; wait $job; rc=$?
out=$(cat $t/cap.out)
expect "requeue cap: after 3 requeues it stops requeueing (status 75)" test $rc -eq 75 -a -z "$(grep requeue $t/calls.log)"
expect "requeue cap: says so" has "3 requeues already"

# --- PBS: values that qsub -v would split survive encoding
sets=$'train.seed=3 prep.inputs=/d/a*,/d/b*\ntrain.patience=9'
got=$(bash -c '. "$GENESIS_JOBS_DIR/lib.sh"; X=$(genesis_encode "$1"); [[ $X != *,* && $X != *=* ]] || exit 1
               genesis_decode_vars X; printf %s "$X"' - "$sets")
expect "genesis_encode/genesis_decode_vars: commas, blanks, newlines round-trip (no , or = encoded)" test "$got" = "$sets"

# --- PBS Pro without PBS_WALLTIME: resources from qstat -f, resubmitted with them; settings encoded
cat > $t/bin/qstat <<'SH'
#!/usr/bin/env bash
cat <<QSTAT
Job Id: $2
    Job_Name = genesis-pretrain
    queue = workq
    Resource_List.mpiprocs = 2
    Resource_List.ncpus = 2
    Resource_List.nodect = 1
    Resource_List.place = scatter:exclhost
    Resource_List.select = 1:ncpus=2:mpiprocs=2:ompthreads=1:mem=4gb:host=node01
	23
    Resource_List.walltime = 01:30:00
QSTAT
SH
cat > $t/bin/qsub <<'SH'
#!/usr/bin/env bash
# as PBS: -v NAME=VALUE pairs split on commas
echo "qsub $*" >> "$JOBS_TEST_LOG"
vars=${@: -2:1}; IFS=, read -ra kv <<<"$vars"
for a in "${kv[@]}"; do echo "var $a" >> "$JOBS_TEST_LOG.vars"; done
SH
chmod +x $t/bin/qstat $t/bin/qsub
: > $t/calls.log
(cd $t && PBS_JOBID=5.server PBS_O_WORKDIR=$t PBS_NODEFILE=$t/nodes GENESIS_JOB_SCRIPT=$SRC/jobs/pbs/pretrain.pbs \
   GENESIS_CONFIG=$t/run.ini GENESIS_SETS="train.seed=3 prep.inputs=/d/a*,/d/b*" GENESIS_LAUNCHER=mpirun \
   exec bash "$SRC/jobs/pbs/pretrain.pbs" > $t/pbs.out 2>&1) &
job=$!
printf 'node01\nnode01\n' > $t/nodes
expect "PBS job started" wait_training $t/pbs.out
kill -TERM $job; finished $job; wait $job; rc=$?
out=$(cat $t/calls.log)
expect "PBS: walltime 01:30:00 from qstat -f became the deadline (90 minutes)" has "train.deadline_minutes=90 "
expect "PBS: resubmitted (status 0)" test $rc -eq 0
expect "PBS: resubmitted with the job's queue and select (continued line joined), place, walltime" \
  has_all "qsub -V " "-q workq" "-l select=1:ncpus=2:mpiprocs=2:ompthreads=1:mem=4gb:host=node0123" \
          "-l place=scatter:exclhost" "-l walltime=01:30:00"
expect "PBS: ncpus not repeated beside select" lacks "-l ncpus="
vars=$(cat $t/calls.log.vars)
expect "PBS: GENESIS_SETS survives qsub's comma split" \
  test "$(GENESIS_SETS=$(sed -n 's/^var GENESIS_SETS=//p' <<<"$vars") bash -c '. "$GENESIS_JOBS_DIR/lib.sh"; genesis_decode_vars GENESIS_SETS; printf %s "$GENESIS_SETS"')" \
       = "train.seed=3 prep.inputs=/d/a*,/d/b*"
expect "PBS: resubmission count 1 and the request carried as GENESIS_QSUB_ARGS" \
  grep -q "var GENESIS_RESUBMIT_COUNT=1" $t/calls.log.vars
expect "PBS: GENESIS_QSUB_ARGS carried" grep -q "var GENESIS_QSUB_ARGS=b64:" $t/calls.log.vars

# --- every launch example of README.md, INSTALL.md, jobs/ and conf/ (tests/jobs/examples.py)
mkdir -p $t/examples
/usr/bin/python3 "$SRC/tests/jobs/examples.py" "$SRC" "$G" $t/examples > $t/examples.out 2>&1
rc=$?
grep -E '^(ok|FAILED|skip)' $t/examples.out
expect "the launch examples of README.md, INSTALL.md, jobs/ and conf/ run as written" test $rc -eq 0 ||
  grep -v -E '^(ok|skip)' $t/examples.out | tail -30

finish
