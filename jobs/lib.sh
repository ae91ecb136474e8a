# Shared helpers of the genesis job scripts (sourced by jobs/slurm/*.sbatch and jobs/pbs/*.pbs).
#
# genesis_run SUBCOMMAND ARGS...   launches genesis under MPI in the background, forwards SIGUSR1 and
#                                  SIGTERM to the job step (the trainer then checkpoints and exits
#                                  with 75, "continue me"), waits, and returns genesis's status.
#                                  SIGINT asks for a stop: forwarded as SIGUSR1 (checkpoint), and
#                                  genesis_stop_requested is then true (the scripts end the chain).
#                                  For train it first checks the layout (genesis_check_layout) and
#                                  returns 2 with what to change when it cannot work.
# Variables: GENESIS          the genesis executable (default: genesis on PATH, else build/genesis
#                             of the checkout holding these scripts)
#            GENESIS_LAUNCHER srun | mpirun (default: srun under Slurm, mpirun otherwise)
#            GENESIS_NP       ranks (default: the scheduler's task count), for srun (-n) and mpirun
#            GENESIS_THREADS  threads per rank (default: Slurm's cpus per task, else
#                             OMP_NUM_THREADS (PBS Pro: ompthreads), else PBS's NCPUS, else 1);
#                             passed to genesis train as --set train.threads=T unless the arguments
#                             set train.threads themselves, and each rank is bound to T cores
#                             (srun -n NP -c T --cpu-bind=verbose,cores with SRUN_CPUS_PER_TASK=T,
#                             mpirun -np NP --map-by slot:PE=T --bind-to core --report-bindings;
#                             OMP_PLACES=cores OMP_PROC_BIND=close); the launcher's binding report
#                             goes to the job's output
#            GENESIS_SRUN_ARGS, GENESIS_MPIRUN_ARGS
#                             extra launcher options for site needs, separated by blanks, placed
#                             after genesis's own (e.g. GENESIS_SRUN_ARGS="--mpi=pmi2")
#            GENESIS_CHECK_LAYOUT  0 skips genesis_check_layout (default 1)
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
# genesis_check_layout NP THREADS CONFIG ARG...
#                                  reads the resolved [train] batch and output (genesis config
#                                  --check CONFIG with the --set ARGs): genesis_batch,
#                                  genesis_run_dir; fails (status 2, saying what to change) when the
#                                  batch is not a multiple of NP, or NP x THREADS exceeds the
#                                  allocation's cores (genesis_allocated_cores)
# genesis_stop_requested           true after SIGINT, or when the run folder holds a file STOP
#                                  (removed when acted on): the pretraining scripts then end their
#                                  chain instead of requeueing/resubmitting
# genesis_encode VALUE             prints b64:BASE64 of VALUE (no '=' padding, no comma): a value that
#                                  survives qsub -v NAME=VALUE,... whatever it holds
# genesis_decode_vars NAME...      replaces each variable whose value starts with b64: by its decoded
#                                  value (users may pass such values too: a GENESIS_SETS with commas)
# genesis_pbs_request              prints the resources of this PBS job as qsub options, one per line
#                                  (-q QUEUE, -l NAME=VALUE for select, place, nodes, walltime, mem,
#                                  vmem, pmem, ncpus), from `qstat -f $PBS_JOBID` (GENESIS_QSTAT)
# genesis_job_end STATUS WHAT      logs "WHAT finished" (STATUS 0) or "WHAT failed (status STATUS)"
#                                  and exits with STATUS; status 65 (GENESIS_EXIT_NONFINITE: the
#                                  training diverged, non-finite numbers) is said so: only 75 is ever
#                                  requeued/resubmitted, and a diverged run would diverge again

GENESIS_EXIT_CONTINUE=75
GENESIS_EXIT_NONFINITE=65

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

genesis_encode() { printf 'b64:%s' "$(printf '%s' "$1" | base64 -w0 | tr -d '=')"; }

genesis_decode_vars() {
  local name value
  for name in "$@"; do
    value=${!name:-}
    [[ $value == b64:* ]] || continue
    value=${value#b64:}
    while [ $((${#value} % 4)) -ne 0 ]; do value="$value="; done
    value=$(printf '%s' "$value" | base64 -d) || { genesis_log "$name: not valid b64:BASE64"; exit 2; }
    printf -v "$name" '%s' "$value"; export "${name?}"
  done
}

genesis_pbs_request() {
  [ -n "${PBS_JOBID:-}" ] || return 0
  # qstat -f: "    Resource_List.NAME = VALUE", long values continued on lines starting with a tab
  timeout 30 "${GENESIS_QSTAT:-qstat}" -f "$PBS_JOBID" 2>/dev/null | awk '
    /^\t/ { if (last != "") { sub(/^\t/, ""); value[last] = value[last] $0 }; next }
    { last = "" }
    $1 == "queue" && $2 == "=" { print "-q"; print $3 }
    $1 ~ /^Resource_List\./ && $2 == "=" {
      name = substr($1, 15); v = $0; sub(/^[^=]*= */, "", v)
      if (name ~ /^(select|place|nodes|walltime|mem|vmem|pmem|ncpus)$/) { value[name] = v; last = name }
    }
    END {
      for (name in value) {
        if (name == "ncpus" && (("select" in value) || ("nodes" in value))) continue
        print "-l"; print name "=" value[name]
      }
    }'
}

genesis_job_end() {
  local status=$1 what=$2
  if [ "$status" -eq 0 ]; then genesis_log "$what finished"
  elif [ "$status" -eq $GENESIS_EXIT_NONFINITE ]; then
    genesis_log "$what stopped: non-finite loss, gradients or input (status $status, see the run's train.log);" \
                "not requeued: fix the cause (learning rate, data, weights) and submit again"
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
  if [ "$sig" = INT ]; then
    genesis_stop=1
    genesis_log "received SIGINT: stop requested; forwarding SIGUSR1 to the job step (checkpoint, then end)"
  else
    genesis_log "received SIG$sig: forwarding SIGUSR1 to the job step (checkpoint, then continue)"
  fi
  [ -n "${genesis_child:-}" ] && kill -USR1 "$genesis_child" 2>/dev/null
}

# Cores of the allocation: Slurm's SLURM_JOB_CPUS_PER_NODE (e.g. "32(x4),16"), PBS's node file
# (Torque: one line per core; PBS Pro: mpiprocs lines per chunk, NCPUS cores per chunk), else this
# node's online CPUs.
genesis_allocated_cores() {
  local total=0 item count times
  if [ -n "${SLURM_JOB_CPUS_PER_NODE:-}" ]; then
    IFS=, read -ra items <<<"$SLURM_JOB_CPUS_PER_NODE"
    for item in "${items[@]}"; do
      count=${item%%(*}; times=1
      [[ $item == *"(x"* ]] && { times=${item#*(x}; times=${times%)}; }
      total=$((total + count * times))
    done
  elif [ -n "${PBS_NODEFILE:-}" ] && [ -f "$PBS_NODEFILE" ]; then
    local lines hosts
    lines=$(wc -l < "$PBS_NODEFILE"); hosts=$(sort -u "$PBS_NODEFILE" | wc -l)
    total=$lines
    [ -n "${NCPUS:-}" ] && [ $((NCPUS * hosts)) -gt "$total" ] && total=$((NCPUS * hosts))
    [ -n "${PBS_NUM_NODES:-}" ] && [ -n "${PBS_NUM_PPN:-}" ] &&
      [ $((PBS_NUM_NODES * PBS_NUM_PPN)) -gt "$total" ] && total=$((PBS_NUM_NODES * PBS_NUM_PPN))
  else
    total=$(getconf _NPROCESSORS_ONLN)
  fi
  echo "$total"
}

genesis_check_layout() {
  local np=$1 threads=$2 config=$3; shift 3
  local sets=() resolved cores
  while [ $# -gt 0 ]; do
    case $1 in
      --set) [ $# -gt 1 ] && sets+=(--set "$2"); shift ;;
      --set=*) sets+=(--set "${1#--set=}") ;;
    esac
    shift
  done
  resolved=$("$GENESIS" config --check "$config" "${sets[@]}" 2>&1) ||
    { genesis_log "the configuration does not check:"; echo "$resolved" | grep -i error >&2; return 2; }
  # "key = value    ; origin" lines of the [train] section
  genesis_batch=$(awk '/^\[/ { s = $0 } s == "[train]" && $1 == "batch" { print $3 }' <<<"$resolved")
  genesis_run_dir=$(awk '/^\[/ { s = $0 } s == "[train]" && $1 == "output" { print $3 }' <<<"$resolved")
  if [ -n "$genesis_batch" ] && { [ "$np" -gt "$genesis_batch" ] || [ $((genesis_batch % np)) -ne 0 ]; }; then
    local fits="" r
    for r in $(seq 1 "$genesis_batch"); do [ $((genesis_batch % r)) -eq 0 ] && fits="$fits $r"; done
    genesis_log "train.batch = $genesis_batch is not a multiple of the $np ranks: every rank takes" \
      "batch / ranks cubes per step. Run a number of ranks that divides it (${fits# }: fewer tasks" \
      "with more --cpus-per-task / threads each, or GENESIS_NP), or a batch that is a multiple of" \
      "$np (--set train.batch=B; README \"Large global batches\" says which learning rate: at batch" \
      "48 the paper's, --set train.lr_scaling=none, measured)"
    return 2
  fi
  cores=$(genesis_allocated_cores)
  if [ $((np * threads)) -gt "$cores" ]; then
    genesis_log "$np ranks x $threads threads = $((np * threads)) cores, but the allocation has $cores:" \
      "ask for more cores (Slurm: --ntasks x --cpus-per-task; PBS: ncpus/ppn) or lower GENESIS_NP /" \
      "GENESIS_THREADS (ranks x threads <= cores)"
    return 2
  fi
  return 0
}

genesis_stop_requested() {
  [ "${genesis_stop:-0}" = 1 ] && return 0
  if [ -n "${genesis_run_dir:-}" ] && [ -e "$genesis_run_dir/STOP" ]; then
    genesis_log "found $genesis_run_dir/STOP: stop requested (removing it)"
    rm -f "$genesis_run_dir/STOP"
    genesis_stop=1
    return 0
  fi
  return 1
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
  if [ "${1:-}" = train ] && [ "${GENESIS_CHECK_LAYOUT:-1}" != 0 ]; then
    genesis_check_layout "$np" "$threads" "${@:2}" || return 2
    if genesis_stop_requested; then
      genesis_log "not starting: a stop was requested"; return $GENESIS_EXIT_CONTINUE
    fi
  fi
  local cmd extra=()
  case $launcher in
    srun)
      read -ra extra <<<"${GENESIS_SRUN_ARGS:-}"
      # since Slurm 22.05 srun does not inherit --cpus-per-task: say it again
      export SRUN_CPUS_PER_TASK=$threads
      cmd=(srun --mpi=pmix --kill-on-bad-exit=1 -n "$np" -c "$threads" --cpu-bind=verbose,cores "${extra[@]}"
           "$GENESIS" "${args[@]}") ;;
    mpirun)
      read -ra extra <<<"${GENESIS_MPIRUN_ARGS:-}"
      cmd=(mpirun -np "$np")
      if [ -n "${PBS_NODEFILE:-}" ] && [ -f "$PBS_NODEFILE" ]; then cmd+=(--hostfile "$PBS_NODEFILE"); fi
      cmd+=(--map-by "slot:PE=$threads" --bind-to core --report-bindings "${extra[@]}" "$GENESIS" "${args[@]}") ;;
    *) genesis_log "GENESIS_LAUNCHER must be srun or mpirun, not '$launcher'"; return 2 ;;
  esac
  genesis_log "${cmd[*]} (ranks $np, threads per rank $threads, cores allocated $(genesis_allocated_cores))"
  trap 'genesis_forward USR1' USR1
  trap 'genesis_forward TERM' TERM
  trap 'genesis_forward INT' INT
  "${cmd[@]}" &
  genesis_child=$!
  local status
  while :; do
    wait "$genesis_child"; status=$?
    # a trapped signal interrupts `wait` (status > 128) while the step still runs: wait again
    kill -0 "$genesis_child" 2>/dev/null || break
  done
  trap - USR1 TERM INT
  genesis_child=
  genesis_log "genesis exited with status $status"
  return $status
}
