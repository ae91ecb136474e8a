# A private single-node Slurm for the tests (sourced): munge, slurmctld and slurmd with a
# configuration and state in a temporary folder; stopped by PID.
#   slurm_start DIR   starts it (sets SLURM_CONF, exported); returns non-zero if it cannot
#   slurm_stop        stops the daemons it started
#   slurm_wait_job ID SECONDS   waits until job ID has left the queue (and accounting says so)
slurm_start() {
  SLURM_DIR=$1
  mkdir -p "$SLURM_DIR"/{state,spool,log,run}
  local host; host=$(hostname)
  local cpus; cpus=$(getconf _NPROCESSORS_ONLN)  # not nproc: it obeys OMP_NUM_THREADS
  export SLURM_CONF=$SLURM_DIR/slurm.conf
  cat > "$SLURM_CONF" <<CONF
ClusterName=genesis-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
SchedulerParameters=sched_interval=2,bf_interval=1
MpiDefault=none
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/run/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/run/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  if [ ! -S /run/munge/munge.socket.2 ]; then   # (not pgrep: a munged of another root may run)
    mkdir -p /run/munge; chown munge:munge /run/munge 2>/dev/null
    runuser -u munge -- /usr/sbin/munged || return 1
    SLURM_STARTED_MUNGE=1
  fi
  slurmctld || return 1
  slurmd || return 1
  for i in $(seq 1 100); do
    sinfo -h -o %T 2>/dev/null | grep -q idle && return 0
    sleep 0.2
  done
  echo "slurm did not become idle"; sinfo 2>&1; tail -5 "$SLURM_DIR"/log/*.log
  return 1
}

slurm_stop() {
  [ -n "${SLURM_DIR:-}" ] || return 0
  for d in slurmd slurmctld; do
    local pidfile=$SLURM_DIR/run/$d.pid
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  done
  sleep 0.5
  if [ -n "${SLURM_STARTED_MUNGE:-}" ] && [ -f /run/munge/munged.pid ]; then kill "$(cat /run/munge/munged.pid)" 2>/dev/null; fi
}

# Waits until job $1 is no longer pending/running (up to $2 seconds); prints its final state.
slurm_wait_job() {
  local id=$1 limit=$2 state
  for i in $(seq 1 $((limit * 2))); do
    state=$(scontrol show job -o "$id" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
    case $state in PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED|REQUEUE_HOLD|SUSPENDED|"") ;; *) echo "$state"; return 0 ;; esac
    sleep 0.5
  done
  echo "TIMEOUT($state)"
  return 1
}
