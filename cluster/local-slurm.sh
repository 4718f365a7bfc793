#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, to try profiles/slurm and to test it
# (tests/test_slurm.py): Debian's slurmctld + slurmd + munge, run as root, no GPUs, no
# accounting database.
#
#   cluster/local-slurm.sh start    install (apt-get) if missing, write the config, start
#   cluster/local-slurm.sh status   exit 0 when all three daemons run and the node is up
#   cluster/local-slurm.sh stop     cancel every job, stop the daemons, remove the config link
#
# Environment:
#   ROBUSTARCH_SLURM_DIR        state, logs, munge key and slurm.conf [${TMPDIR:-/tmp}/robustarch-slurm]
#   ROBUSTARCH_SLURM_PARTITION  name of the one (CPU) partition [cpu]
#
# SLURM's client commands find slurm.conf at its compiled-in path /etc/slurm/slurm.conf, so
# `start` links that path to the config in ROBUSTARCH_SLURM_DIR (SLURM_CONF alone is not
# enough: the executor plugin's job step drops every SLURM_* variable before calling srun).
# `start` refuses to run where /etc/slurm/slurm.conf is a real file (a real SLURM node), and
# `stop` removes the link only if it is ours.
set -euo pipefail

DIR=${ROBUSTARCH_SLURM_DIR:-${TMPDIR:-/tmp}/robustarch-slurm}
PARTITION=${ROBUSTARCH_SLURM_PARTITION:-cpu}
CONF_LINK=/etc/slurm/slurm.conf
CONF=$DIR/slurm.conf
PACKAGES=(slurmctld slurmd slurm-client munge)

die() { echo "local-slurm: $*" >&2; exit 1; }
say() { echo "local-slurm: $*"; }

need_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (the daemons run as root)"
}

installed() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null
}

install_packages() {
    installed && return 0
    command -v apt-get >/dev/null || die "slurmctld/slurmd/munge missing and no apt-get"
    say "installing ${PACKAGES[*]}"
    # Keep the packages' init scripts from starting system-wide daemons during the install
    # (Docker images ship such a policy; CI machines may not).
    local policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
    fi
    local rc=0
    {
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" \
            || { apt-get update -q && apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"; }
    } >"${TMPDIR:-/tmp}/robustarch-slurm-apt.log" 2>&1 || rc=$?
    [[ -n $policy ]] && rm -f "$policy"
    [[ $rc -eq 0 ]] || die "apt-get failed (rc $rc); see ${TMPDIR:-/tmp}/robustarch-slurm-apt.log"
    installed || die "packages installed but daemons not found"
}

daemon_pid() {  # pid file, daemon name: the pid if that daemon runs under it
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    # A stale pid file may name another process by now.
    [[ -n $pid && $(ps -p "$pid" -o comm= 2>/dev/null) == "$2" ]] && echo "$pid"
}

node_memory_mb() {
    # The machine's memory, or a smaller cgroup limit (containers), less 10% for the OS.
    local mem limit
    mem=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    for f in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do
        if [[ -r $f ]]; then
            limit=$(cat "$f")
            if [[ $limit =~ ^[0-9]+$ ]] && ((limit / 1048576 < mem)); then
                mem=$((limit / 1048576))
            fi
        fi
    done
    echo $((mem * 9 / 10))
}

write_config() {
    local node cpus mem
    node=$(hostname -s)
    # slurmd -C reports what slurmd itself will detect; the node must not claim more.
    cpus=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p')
    mem=$(node_memory_mb)
    cat >"$CONF" <<EOF
# Written by cluster/local-slurm.sh: a one-node test cluster (no GPUs, no accounting).
ClusterName=robustarch-local
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# Containers rarely allow cgroup plugins; process tracking by parent pid works everywhere.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
# No accounting database: finished jobs are known to squeue (the executor's status
# command here) only while slurmctld keeps them, MinJobAge seconds.
MinJobAge=86400
# Seconds between SIGTERM and SIGKILL at a time limit or scancel (the training script
# checkpoints in between).
KillWait=30
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

running() {
    daemon_pid "$DIR/munge/munged.pid" munged >/dev/null \
        && daemon_pid "$DIR/slurmctld.pid" slurmctld >/dev/null \
        && daemon_pid "$DIR/slurmd.pid" slurmd >/dev/null
}

node_up() {
    local state
    state=$(sinfo -h -p "$PARTITION" -o %T 2>/dev/null | head -1)
    [[ $state == idle* || $state == mix* || $state == alloc* ]]
}

start() {
    need_root
    if [[ -e $CONF_LINK && ! -L $CONF_LINK ]]; then
        die "$CONF_LINK is a real SLURM config; this script only runs on machines without one"
    fi
    if [[ -d $DIR ]] && running; then
        say "already running (state in $DIR)"
        return 0
    fi
    if [[ -L $CONF_LINK && $(readlink "$CONF_LINK") != "$CONF" && -e $CONF_LINK ]]; then
        die "another local cluster is configured ($(readlink "$CONF_LINK")); stop it first"
    fi
    install_packages
    stop_daemons  # leftovers of an earlier, unclean run
    rm -rf "$DIR/state" "$DIR/spool" "$DIR/munge"
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/munge"
    chmod 700 "$DIR/munge"
    mungekey --create --keyfile="$DIR/munge/munge.key" --force
    chmod 600 "$DIR/munge/munge.key"
    write_config
    mkdir -p /etc/slurm
    ln -sfn "$CONF" "$CONF_LINK"

    munged --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
        --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" \
        --seed-file="$DIR/munge/munged.seed" --force
    # -c: a fresh controller, no state from an earlier cluster.
    slurmctld -c
    slurmd
    local i
    for i in $(seq 60); do
        node_up && break
        sleep 1
        # A node that was down in an earlier life comes back only on request.
        ((i % 10 == 0)) && scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null
    done
    if ! node_up; then
        sinfo -N -l >&2 || true
        tail -20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
        die "the node did not come up; logs in $DIR/log"
    fi
    say "running: partition $PARTITION on $(hostname -s), state and logs in $DIR"
}

stop_daemon() {  # pid file, daemon name
    local pid i
    pid=$(daemon_pid "$1" "$2") || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 30); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

stop_daemons() {
    if [[ -L $CONF_LINK ]] && daemon_pid "$DIR/slurmctld.pid" slurmctld >/dev/null; then
        # Cancel every job first: its processes (slurmstepd and below) outlive slurmd.
        scancel --full --quiet --user=root 2>/dev/null || true
        local i
        for i in $(seq 60); do
            [[ -z $(squeue -h -t PENDING,RUNNING,COMPLETING,CONFIGURING,SUSPENDED \
                -o %i 2>/dev/null) ]] && break
            sleep 1
        done
    fi
    stop_daemon "$DIR/slurmd.pid" slurmd
    stop_daemon "$DIR/slurmctld.pid" slurmctld
    stop_daemon "$DIR/munge/munged.pid" munged
}

stop() {
    need_root
    stop_daemons
    if [[ -L $CONF_LINK && $(readlink "$CONF_LINK") == "$CONF" ]]; then
        rm -f "$CONF_LINK"
    fi
    say "stopped (logs kept in $DIR/log)"
}

status() {
    local name file pid rc=0
    for name in munged slurmctld slurmd; do
        file=$DIR/$name.pid
        [[ $name == munged ]] && file=$DIR/munge/munged.pid
        if pid=$(daemon_pid "$file" "$name"); then
            echo "$name: running (pid $pid)"
        else
            echo "$name: stopped"
            rc=3
        fi
    done
    if [[ $rc -eq 0 ]]; then
        sinfo -N -o "%N %P %T %c %m" || rc=3
        node_up || rc=3
    fi
    return $rc
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
