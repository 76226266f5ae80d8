#!/usr/bin/env bash
# tests/slurm/cluster.sh -- a one-node Slurm cluster on loopback for the
# Slurm executor's tests: munged with a generated key, slurmctld and slurmd
# as root, every file under DIR, ports picked free.
#
#   cluster.sh start DIR   -> prints SLURM_CONF=DIR/slurm.conf on success;
#                             exit 77 (with the reason on stderr) when the
#                             packages are missing or we are not root
#   cluster.sh stop DIR    -> stops the daemons by the pids they recorded
#   cluster.sh stopctld DIR / startctld DIR -> stop / restart slurmctld only
#                             (the tests' "controller unreachable" case)
set -u
cmd=${1:-} dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|stopctld|startctld DIR" >&2; exit 2; }

need() {
    for b in munged slurmctld slurmd sbatch squeue scontrol scancel; do
        command -v "$b" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin command -v "$b" >/dev/null 2>&1 ||
            { echo "slurm: '$b' is not installed (make deps installs slurmctld slurmd slurm-client munge)" >&2; exit 77; }
    done
    [ "$(id -u)" = 0 ] || { echo "slurm: the test cluster runs slurmd as root (SlurmUser=root); not root here" >&2; exit 77; }
}
export PATH=$PATH:/usr/sbin

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop_pidfile() {
    local f=$1 pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null)
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    return 0
}

start_ctld() {
    slurmctld -f "$dir/slurm.conf" -i -L "$dir/slurmctld.log" >>"$dir/daemons.err" 2>&1 || return 1
    for _ in $(seq 100); do
        SLURM_CONF=$dir/slurm.conf timeout 5 scontrol ping 2>/dev/null | grep -q UP && return 0
        sleep 0.1
    done
    echo "slurm: slurmctld did not come up; see $dir/slurmctld.log" >&2
    return 1
}

case "$cmd" in
start)
    need
    mkdir -p "$dir/munge" "$dir/state" "$dir/spool" && chmod 700 "$dir/munge" || exit 1
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none && chmod 400 "$dir/munge/munge.key"
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed" >>"$dir/daemons.err" 2>&1 ||
        { echo "slurm: munged did not start: $(tail -n3 "$dir/daemons.err" "$dir/munge/munged.log" 2>/dev/null)" >&2; exit 1; }
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ { print int($2 / 1024 / 2) }' /proc/meminfo)
    cat >"$dir/slurm.conf" <<CONF
ClusterName=lumentest
SlurmctldHost=localhost
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.sock
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
OverTimeLimit=0
KillWait=2
MinJobAge=300
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
MessageTimeout=5
SchedulerParameters=sched_interval=1
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    start_ctld || exit 1
    slurmd -f "$dir/slurm.conf" -N localhost -L "$dir/slurmd.log" >>"$dir/daemons.err" 2>&1 ||
        { echo "slurm: slurmd did not start: $(tail -n3 "$dir/slurmd.log" 2>/dev/null)" >&2; exit 1; }
    for _ in $(seq 150); do
        st=$(SLURM_CONF=$dir/slurm.conf timeout 5 sinfo -h -o %t 2>/dev/null)
        case "$st" in idle*|mix*|alloc*) echo "SLURM_CONF=$dir/slurm.conf"; exit 0 ;; esac
        sleep 0.1
    done
    echo "slurm: the node did not become idle (state '$st'); see $dir/slurmd.log" >&2
    exit 1
    ;;
stop)
    stop_pidfile "$dir/slurmd.pid"
    stop_pidfile "$dir/slurmctld.pid"
    stop_pidfile "$dir/munge/munged.pid"
    ;;
stopctld)
    stop_pidfile "$dir/slurmctld.pid"
    ;;
startctld)
    start_ctld
    ;;
*) echo "usage: $0 start|stop|stopctld|startctld DIR" >&2; exit 2 ;;
esac
