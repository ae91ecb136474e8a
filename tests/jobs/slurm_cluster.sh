# A private single-node Slurm for the tests (sourced): its own munged (private socket), slurmctld
# and slurmd, with configuration and state in a temporary folder; stopped by PID. Every command
# that talks to a daemon runs under `timeout`, so a broken daemon fails the test instead of hanging it.
#   slurm_start DIR   starts it (sets SLURM_CONF, exported); returns non-zero if it cannot
#   slurm_stop        cancels its jobs and stops the daemons it started
#   slurm_diagnose WHY  prints WHY, the queue and the daemons' last log lines
#   slurm_wait_job ID SECONDS   waits until job ID has left the queue (and accounting says so)
slurm_start() {
  SLURM_DIR=$1
  mkdir -p "$SLURM_DIR"/{state,spool,log,run,munge}
  # munged (as user munge) must traverse to its socket: open the folders on the way for reading
  local d=$SLURM_DIR; while [ "$d" != / ] && [ "$d" != /tmp ]; do chmod a+x "$d" 2>/dev/null; d=$(dirname "$d"); done
  chown munge:munge "$SLURM_DIR/munge"
  local host; host=$(hostname -s)   # Slurm names nodes by the short host name
  local cpus; cpus=$(getconf _NPROCESSORS_ONLN)  # not nproc: it obeys OMP_NUM_THREADS
  # Two free TCP ports from the kernel (no fixed numbers: two copies of the suite must not collide)
  local ctld_port slurmd_port
  read -r ctld_port slurmd_port < <(/usr/bin/python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])') || { echo "slurm: cannot find free ports"; return 1; }
  export SLURM_CONF=$SLURM_DIR/slurm.conf
  SLURM_MUNGE_SOCKET=$SLURM_DIR/munge/munge.socket
  cat > "$SLURM_CONF" <<CONF
ClusterName=genesis-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=10,socket=$SLURM_MUNGE_SOCKET
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
MessageTimeout=5
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/run/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/run/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  # A private munged on a private socket: neither a system munged nor a stale socket of a dead
  # one (seen: /run/munge/munge.socket.2 left behind, every Slurm command then hanging) matters.
  echo "slurm: starting munged, slurmctld and slurmd for node $host ($cpus CPUs) in $SLURM_DIR"
  timeout 20 runuser -u munge -- /usr/sbin/munged --socket="$SLURM_MUNGE_SOCKET" \
    --pid-file="$SLURM_DIR/munge/munged.pid" --log-file="$SLURM_DIR/munge/munged.log" \
    --seed-file="$SLURM_DIR/munge/seed" </dev/null >>"$SLURM_DIR/log/start.log" 2>&1 || { slurm_diagnose "munged did not start"; return 1; }
  timeout 20 munge -S "$SLURM_MUNGE_SOCKET" -n </dev/null | timeout 20 unmunge -S "$SLURM_MUNGE_SOCKET" >/dev/null ||
    { slurm_diagnose "munge cannot encode and decode a credential"; return 1; }
  timeout 60 slurmctld </dev/null >>"$SLURM_DIR/log/start.log" 2>&1 || { slurm_diagnose "slurmctld did not start"; return 1; }
  timeout 60 slurmd </dev/null >>"$SLURM_DIR/log/start.log" 2>&1 || { slurm_diagnose "slurmd did not start"; return 1; }
  local deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    timeout 10 sinfo -h -o %T 2>/dev/null | grep -q idle && { echo "slurm: node idle after $SECONDS s"; return 0; }
    sleep 0.5
  done
  slurm_diagnose "the node did not become idle within 60 s"
  return 1
}

# Prints WHY, the queue and the daemons' last log lines (for a failed start or job).
slurm_diagnose() {
  echo "slurm: $1"
  timeout 10 sinfo 2>&1 | head -5
  timeout 10 squeue 2>&1 | head -10
  local f; for f in "$SLURM_DIR"/log/*.log "$SLURM_DIR"/munge/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }; done
}

slurm_stop() {
  [ -n "${SLURM_DIR:-}" ] || return 0
  timeout 10 scancel --full --quiet --partition=test 2>/dev/null
  local pids="" f
  for f in "$SLURM_DIR"/run/slurmd.pid "$SLURM_DIR"/run/slurmctld.pid "$SLURM_DIR"/munge/munged.pid; do
    [ -f "$f" ] && pids="$pids $(cat "$f")"
  done
  [ -n "$pids" ] || return 0
  kill $pids 2>/dev/null
  for i in $(seq 1 20); do kill -0 $pids 2>/dev/null || return 0; sleep 0.25; done
  kill -9 $pids 2>/dev/null
  return 0
}

# Waits until job $1 is no longer pending/running (up to $2 seconds); prints its final state.
slurm_wait_job() {
  local id=$1 deadline=$((SECONDS + $2)) state=""
  while [ $SECONDS -lt $deadline ]; do
    state=$(timeout 10 scontrol show job -o "$id" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
    case $state in PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED|REQUEUE_HOLD|SUSPENDED|"") ;; *) echo "$state"; return 0 ;; esac
    sleep 0.5
  done
  echo "TIMEOUT($state)"
  return 1
}
