# A private single-node Slurm for the tests (sourced): its own munged (private socket), slurmctld
# and slurmd, with configuration and state in a temporary folder; stopped by PID. Every command
# that talks to a daemon runs under `timeout`, so a broken daemon fails the test instead of hanging it.
# Two copies of the suite on one machine do not collide: free ports from the kernel, a cluster name
# of its own (SLURM_CLUSTER), and the daemons it started checked alive and answering with that name.
#   slurm_start DIR   starts it (sets SLURM_CONF, exported); returns non-zero, at once and saying
#                     why, if it cannot (a daemon dead, another cluster answering)
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
  # A cluster name of this copy only: the daemons that answer must say it (a second copy of the
  # suite on this machine, or a system Slurm, is never taken for ours)
  SLURM_CLUSTER=gtest$$x$RANDOM
  export SLURM_CONF=$SLURM_DIR/slurm.conf
  SLURM_MUNGE_SOCKET=$SLURM_DIR/munge/munge.socket
  # A private munged on a private socket: neither a system munged nor a stale socket of a dead
  # one (seen: /run/munge/munge.socket.2 left behind, every Slurm command then hanging) matters.
  echo "slurm: starting munged, slurmctld and slurmd of cluster $SLURM_CLUSTER for node $host ($cpus CPUs) in $SLURM_DIR"
  timeout 20 runuser -u munge -- /usr/sbin/munged --socket="$SLURM_MUNGE_SOCKET" \
    --pid-file="$SLURM_DIR/munge/munged.pid" --log-file="$SLURM_DIR/munge/munged.log" \
    --seed-file="$SLURM_DIR/munge/seed" </dev/null >>"$SLURM_DIR/log/start.log" 2>&1 || { slurm_diagnose "munged did not start"; return 1; }
  timeout 20 munge -S "$SLURM_MUNGE_SOCKET" -n </dev/null | timeout 20 unmunge -S "$SLURM_MUNGE_SOCKET" >/dev/null ||
    { slurm_diagnose "munge cannot encode and decode a credential"; return 1; }
  # Free TCP ports from the kernel (no fixed numbers: two copies of the suite must not collide). A
  # port is free when asked but may be taken before slurmctld binds it: then another pair is tried.
  local attempt
  for attempt in 1 2 3; do
    _slurm_write_conf "$host" "$cpus" || { echo "slurm: cannot find free ports"; return 1; }
    _slurm_start_daemons && return 0
    [ "${SLURM_PORT_TAKEN:-0}" = 1 ] || return 1
    echo "slurm: a port was taken before the daemons bound it (attempt $attempt); trying other ports"
    _slurm_stop_daemons
  done
  slurm_diagnose "no free ports after 3 attempts"
  return 1
}

# Writes $SLURM_CONF with two free ports.
_slurm_write_conf() {
  local host=$1 cpus=$2 ctld_port slurmd_port
  read -r ctld_port slurmd_port < <(/usr/bin/python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])') || return 1
  SLURM_PORTS="$ctld_port $slurmd_port"
  cat > "$SLURM_CONF" <<CONF
ClusterName=$SLURM_CLUSTER
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
}

# Whether daemon $1 (slurmctld or slurmd) that we started is alive; else says why and returns 1
# (SLURM_PORT_TAKEN=1 when its log says its port was in use).
_slurm_alive() {
  local name=$1 pid=""
  [ -f "$SLURM_DIR/run/$name.pid" ] && pid=$(cat "$SLURM_DIR/run/$name.pid")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then return 0; fi
  grep -qi "address already in use" "$SLURM_DIR/log/$name.log" 2>/dev/null && SLURM_PORT_TAKEN=1
  slurm_diagnose "$name (PID ${pid:-none}) is not running (ports $SLURM_PORTS)"
  return 1
}

# Starts slurmctld and slurmd and waits for the node to be idle, checking all along that our daemons
# live and that the controller that answers is ours (its ClusterName).
_slurm_start_daemons() {
  SLURM_PORT_TAKEN=0
  rm -f "$SLURM_DIR"/run/slurm*.pid "$SLURM_DIR"/log/slurm*.log
  timeout 60 slurmctld </dev/null >>"$SLURM_DIR/log/start.log" 2>&1 || { slurm_diagnose "slurmctld did not start"; return 1; }
  timeout 60 slurmd </dev/null >>"$SLURM_DIR/log/start.log" 2>&1 || { slurm_diagnose "slurmd did not start"; return 1; }
  local deadline=$((SECONDS + 60)) named=""
  while [ $SECONDS -lt $deadline ]; do
    sleep 0.5
    _slurm_alive slurmctld && _slurm_alive slurmd || return 1
    named=$(timeout 10 scontrol show config 2>/dev/null | awk '$1 == "ClusterName" {print $3}')
    [ -z "$named" ] && continue
    [ "$named" = "$SLURM_CLUSTER" ] || { slurm_diagnose "the controller that answers is cluster '$named', not ours ($SLURM_CLUSTER)"; return 1; }
    timeout 10 sinfo -h -o %T 2>/dev/null | grep -q idle && { echo "slurm: cluster $SLURM_CLUSTER, node idle after $SECONDS s"; return 0; }
  done
  slurm_diagnose "the node did not become idle within 60 s"
  return 1
}

_slurm_stop_daemons() { _slurm_kill_pidfiles "$SLURM_DIR"/run/slurmd.pid "$SLURM_DIR"/run/slurmctld.pid; }

# Stops the processes named by the PID files given (TERM, then KILL after 5 s).
_slurm_kill_pidfiles() {
  local pids="" f
  for f in "$@"; do
    [ -f "$f" ] && pids="$pids $(cat "$f")"
  done
  [ -n "$pids" ] || return 0
  kill $pids 2>/dev/null
  for i in $(seq 1 20); do kill -0 $pids 2>/dev/null || return 0; sleep 0.25; done
  kill -9 $pids 2>/dev/null
  return 0
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
  _slurm_kill_pidfiles "$SLURM_DIR"/run/slurmd.pid "$SLURM_DIR"/run/slurmctld.pid "$SLURM_DIR"/munge/munged.pid
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
