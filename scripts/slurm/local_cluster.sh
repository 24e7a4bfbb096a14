#!/usr/bin/env bash
# A throwaway single-node Slurm cluster (slurmctld + slurmd + munged) in a private folder, for
# testing the job arrays on one machine: `local_cluster.sh start DIR` prints the SLURM_CONF to
# export, `local_cluster.sh stop DIR` stops it. Needs root (the daemons run as root here) and the
# Debian packages slurm-wlm and munge. Ports and sockets are private to DIR, so it never touches a
# real cluster's configuration.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)

stop() {
    for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
        if [ -s "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    done
}

start() {
    for tool in munged slurmctld slurmd sbatch; do
        command -v "$tool" >/dev/null || { echo "$0: $tool not found (apt-get install slurm-wlm munge)" >&2; exit 1; }
    done
    [ "$(id -u)" -eq 0 ] || { echo "$0: the local test cluster runs its daemons as root" >&2; exit 1; }
    mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/munge"
    chmod 700 "$dir/munge"
    if [ ! -s "$dir/munge/munge.key" ]; then
        dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
        chmod 400 "$dir/munge/munge.key"
    fi
    local host port_base
    host=$(hostname -s)
    # Ports from the folder's name hash, so two test clusters on one machine do not collide.
    port_base=$((20000 + $(printf '%s' "$dir" | cksum | cut -d' ' -f1) % 20000))
    cat > "$dir/slurm.conf" <<CONF
ClusterName=mixdqtest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=$port_base
SlurmdPort=$((port_base + 1))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$(( $(free -m | awk '/^Mem:/{print $2}') * 3 / 4 )) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    munged --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/seed" --force
    SLURM_CONF="$dir/slurm.conf" slurmctld
    SLURM_CONF="$dir/slurm.conf" slurmd
    # Wait until the node is schedulable.
    for _ in $(seq 1 30); do
        if SLURM_CONF="$dir/slurm.conf" sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
            echo "$dir/slurm.conf"
            return 0
        fi
        sleep 1
    done
    echo "$0: the test cluster did not come up; logs in $dir/log" >&2
    stop
    exit 1
}

case "$action" in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
