#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for tests and trying `marl sweep --backend
# slurm`: Debian's packages (slurmctld, slurmd, slurm-client, munge), started by hand without
# systemd, stopped by PID.
#
#   scripts/slurm-cluster.sh up [--max-array-size N]   # idempotent; prints `export SLURM_CONF=...`
#   scripts/slurm-cluster.sh status                    # exit 0 when the node is up and idle/busy
#   scripts/slurm-cluster.sh down                      # stops the daemons it started, by PID
#   scripts/slurm-cluster.sh env                       # prints `export SLURM_CONF=...`
#
# Everything lives in $MARL_SLURM_DIR (default /tmp/marl-slurm): slurm.conf, logs, PID files,
# and a StateSaveLocation made fresh at every start (job ids start again at 1). Clients find the
# cluster through SLURM_CONF=$MARL_SLURM_DIR/slurm.conf; /etc/slurm is never written. `up` with
# another --max-array-size than the running cluster's restarts it. Accounting is off (sacct
# answers that it is disabled; marl then reads the run directories and squeue only).
#
# Needs root and apt-get for the installation (skipped when the binaries are already there).
# Exit codes: 0 up (or down), 1 failed, 3 impossible here (not root, no apt-get): callers such
# as the test suite skip on 3.
set -euo pipefail

DIR=${MARL_SLURM_DIR:-/tmp/marl-slurm}
CONF=$DIR/slurm.conf
MAX_ARRAY=1001
ACTION=${1:-up}
shift || true
while [ $# -gt 0 ]; do
    case $1 in
        --max-array-size) MAX_ARRAY=$2; shift 2 ;;
        --max-array-size=*) MAX_ARRAY=${1#*=}; shift ;;
        *) echo "slurm-cluster.sh: unknown option $1" >&2; exit 1 ;;
    esac
done

say() { echo "slurm-cluster: $*" >&2; }
impossible() { say "$*"; exit 3; }

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return
    fi
    [ "$(id -u)" = 0 ] || impossible "Slurm is not installed and installing it needs root"
    command -v apt-get >/dev/null || impossible "Slurm is not installed and there is no apt-get"
    say "installing slurmctld slurmd slurm-client munge"
    local pkgs="slurmctld slurmd slurm-client munge"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends $pkgs >"$DIR/apt.log" 2>&1; then
        apt-get update -q >>"$DIR/apt.log" 2>&1 || true
        apt-get install -y -q --no-install-recommends $pkgs >>"$DIR/apt.log" 2>&1 \
            || impossible "apt-get install $pkgs failed (see $DIR/apt.log)"
    fi
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return # a working munged (ours from an earlier start, or the machine's)
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key >/dev/null 2>&1 \
            || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 2>/dev/null
    fi
    if id munge >/dev/null 2>&1; then
        chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
        chmod 700 /etc/munge
        chmod 400 /etc/munge/munge.key
        runuser -u munge -- munged --pid-file=/run/munge/munged.pid 9>&-
        cp /run/munge/munged.pid "$DIR/munged.pid"
    else
        munged --force --pid-file="$DIR/munged.pid" 9>&-
    fi
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.1
    done
    say "munged did not come up"
    exit 1
}

write_conf() {
    local host cpus
    host=$(hostname -s)
    cpus=$(nproc)
    cat >"$1" <<EOF
# Written by scripts/slurm-cluster.sh: a single-node test cluster.
ClusterName=marl
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MaxArraySize=$MAX_ARRAY
KillWait=10
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

node_ready() {
    local state
    state=$(SLURM_CONF=$CONF sinfo -h -o %t 2>/dev/null | head -1) || return 1
    case $state in idle* | mix* | alloc*) return 0 ;; *) return 1 ;; esac
}

running() {
    alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && node_ready
}

stop() {
    for d in slurmd slurmctld; do
        if alive "$DIR/$d.pid"; then
            local pid
            pid=$(cat "$DIR/$d.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$DIR/$d.pid"
    done
    if alive "$DIR/munged.pid"; then
        kill "$(cat "$DIR/munged.pid")" 2>/dev/null || true
    fi
    rm -f "$DIR/munged.pid"
}

up() {
    mkdir -p "$DIR"
    install_packages
    local wanted
    wanted=$(mktemp)
    write_conf "$wanted"
    if running && cmp -s "$wanted" "$CONF"; then
        rm -f "$wanted"
        return
    fi
    stop
    mv "$wanted" "$CONF"
    start_munge
    rm -rf "$DIR/state" "$DIR/spool"
    mkdir -p "$DIR/state" "$DIR/spool"
    slurmctld -f "$CONF" 9>&-
    # slurmctld answers before slurmd registers.
    for _ in $(seq 100); do
        SLURM_CONF=$CONF scontrol ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    slurmd -f "$CONF" 9>&-
    for _ in $(seq 300); do
        if node_ready; then
            say "up: $(SLURM_CONF=$CONF sinfo -h -o '%P %D node(s) %t, %c CPUs' | head -1), MaxArraySize=$MAX_ARRAY"
            return
        fi
        sleep 0.1
    done
    say "the node did not become idle; see $DIR/slurmctld.log and $DIR/slurmd.log"
    SLURM_CONF=$CONF sinfo -N -l >&2 || true
    exit 1
}

case $ACTION in
    up)
        mkdir -p "$DIR"
        # One `up` at a time (tests start it from parallel threads); the daemons must not inherit
    # the lock (9>&- where they start).
        exec 9>"$DIR.lock"
        flock 9
        up
        echo "export SLURM_CONF=$CONF"
        ;;
    down)
        exec 9>"$DIR.lock"
        flock 9
        stop
        say "down"
        ;;
    status)
        if running; then
            SLURM_CONF=$CONF sinfo -h -N -o '%N %t %c CPUs'
        else
            say "not running"
            exit 1
        fi
        ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *)
        echo "usage: $0 up [--max-array-size N] | down | status | env" >&2
        exit 1
        ;;
esac
