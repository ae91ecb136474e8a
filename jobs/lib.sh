# Shared helpers of the genesis job scripts (sourced by jobs/slurm/*.sbatch and jobs/pbs/*.pbs).
#
# genesis_run SUBCOMMAND ARGS...   launches genesis under MPI in the background, forwards SIGUSR1 and
#                                  SIGTERM to the job step (the trainer then checkpoints and exits
#                                  with 75, "continue me"), waits, and returns genesis's status.
# Variables: GENESIS          the genesis executable (default: genesis on PATH, else build/genesis
#                             of the checkout holding these scripts)
#            GENESIS_LAUNCHER srun | mpirun (default: srun under Slurm, mpirun otherwise)
#            GENESIS_NP       ranks (default: the scheduler's task count)
#            GENESIS_THREADS  threads per rank (default: Slurm's cpus per task, else PBS's ompthreads
#                             or ncpus, else 1); passed to genesis train as --set train.threads=T
#                             unless the arguments set train.threads themselves, and each rank is
#                             bound to T cores (srun -c T --cpu-bind=cores, mpirun --map-by
#                             slot:PE=T --bind-to core; OMP_PLACES=cores OMP_PROC_BIND=close)
#
# The scripts' common steps:
# genesis_job_config USAGE [CONFIG [ARG...]]   genesis_config=CONFIG, genesis_args=(ARG...);
#                                  without CONFIG: logs USAGE and exits 2
# genesis_sets_from VALUE          the array genesis_sets: --set ITEM for each ITEM of VALUE (the
#                                  PBS scripts' GENESIS_SETS), ITEMs section.key=value separated by
#                                  blanks or newlines. Nothing in VALUE is expanded: a pattern such
#                                  as prep.inputs=/data/*.nii.gz reaches genesis as written (genesis
#                                  expands it); a value cannot hold a blank (put such a setting in
#                                  the configuration file). An ITEM that is not section.key=value:
#                                  exits 2.
# genesis_job_end STATUS WHAT      logs "WHAT finished" (STATUS 0) or "WHAT failed (status STATUS)"
#                                  and exits with STATUS

GENESIS_EXIT_CONTINUE=75

genesis_log() { echo "genesis-job [$(date '+%F %T')]: $*"; }

genesis_job_config() {
  local usage=$1; shift
  [ $# -gt 0 ] && [ -n "$1" ] || { genesis_log "$usage"; exit 2; }
  genesis_config=$1; shift
  genesis_args=("$@")
}

genesis_sets_from() {
  local items item
  genesis_sets=()
  # read splits on blanks and newlines and expands nothing (no globbing, unlike an unquoted $VALUE)
  read -r -d '' -a items <<<"$1" || true
  for item in "${items[@]}"; do
    if ! [[ $item =~ ^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*= ]]; then
      genesis_log "GENESIS_SETS: '$item' is not section.key=value (items are separated by blanks)"
      exit 2
    fi
    genesis_sets+=(--set "$item")
  done
}

genesis_job_end() {
  local status=$1 what=$2
  if [ "$status" -eq 0 ]; then genesis_log "$what finished"
  else genesis_log "$what failed (status $status)"
  fi
  exit "$status"
}

genesis_find_executable() {
  if [ -n "${GENESIS:-}" ]; then return; fi
  if command -v genesis >/dev/null 2>&1; then GENESIS=$(command -v genesis)
  elif [ -x "$GENESIS_JOBS_DIR/../build/genesis" ]; then GENESIS=$(cd "$GENESIS_JOBS_DIR/../build" && pwd)/genesis
  else genesis_log "cannot find the genesis executable: set GENESIS=/path/to/genesis"; exit 1
  fi
}

genesis_forward() {
  local sig=$1
  genesis_log "received SIG$sig: forwarding SIGUSR1 to the job step (checkpoint, then continue)"
  [ -n "${genesis_child:-}" ] && kill -USR1 "$genesis_child" 2>/dev/null
}

genesis_run() {
  genesis_find_executable
  local launcher=${GENESIS_LAUNCHER:-}
  if [ -z "$launcher" ]; then
    if [ -n "${SLURM_JOB_ID:-}" ] && command -v srun >/dev/null; then launcher=srun; else launcher=mpirun; fi
  fi
  local threads=${GENESIS_THREADS:-${SLURM_CPUS_PER_TASK:-${OMP_NUM_THREADS:-${NCPUS:-1}}}}
  # genesis's layers thread themselves (OpenMP) around one-thread OpenBLAS calls
  export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$threads OMP_PLACES=cores OMP_PROC_BIND=close
  local args=("$@")
  if [ "${1:-}" = train ] && [[ " $* " != *" train.threads="* && " $* " != *" --set=train.threads="* ]]; then
    args+=(--set "train.threads=$threads")
  fi
  local np=${GENESIS_NP:-${SLURM_NTASKS:-${PBS_NP:-}}}
  if [ -z "$np" ] && [ -n "${PBS_NODEFILE:-}" ] && [ -f "$PBS_NODEFILE" ]; then np=$(wc -l < "$PBS_NODEFILE"); fi
  [ -n "$np" ] || np=1
  local cmd
  case $launcher in
    srun)
      cmd=(srun --mpi=pmix --kill-on-bad-exit=1)
      # since Slurm 22.05 srun does not inherit --cpus-per-task: say it again
      if [ "$threads" -gt 1 ]; then export SRUN_CPUS_PER_TASK=$threads; cmd+=(-c "$threads" --cpu-bind=cores); fi
      cmd+=("$GENESIS" "${args[@]}") ;;
    mpirun)
      cmd=(mpirun -np "$np")
      if [ -n "${PBS_NODEFILE:-}" ] && [ -f "$PBS_NODEFILE" ]; then cmd+=(--hostfile "$PBS_NODEFILE"); fi
      if [ "$threads" -gt 1 ]; then cmd+=(--map-by "slot:PE=$threads" --bind-to core); fi
      cmd+=("$GENESIS" "${args[@]}") ;;
    *) genesis_log "GENESIS_LAUNCHER must be srun or mpirun, not '$launcher'"; return 2 ;;
  esac
  genesis_log "${cmd[*]} (ranks $np, threads per rank $threads)"
  trap 'genesis_forward USR1' USR1
  trap 'genesis_forward TERM' TERM
  "${cmd[@]}" &
  genesis_child=$!
  local status
  while :; do
    wait "$genesis_child"; status=$?
    # a trapped signal interrupts `wait` (status > 128) while the step still runs: wait again
    kill -0 "$genesis_child" 2>/dev/null || break
  done
  trap - USR1 TERM
  genesis_child=
  genesis_log "genesis exited with status $status"
  return $status
}
