# slurm_cluster.sh — a one-node Slurm cluster for tests, from Debian's packages (sourced).
#   slurm_cluster_missing            print why a cluster cannot start here ("" when it can)
#   slurm_cluster_start DIR          munged, slurmctld and slurmd on this machine, all state in DIR,
#                                    2 CPUs, one partition "debug"; exports SLURM_CONF; waits (bounded)
#                                    until the node is idle
#   slurm_cluster_stop               stops the daemons started above (safe to call twice)
#
# Nothing outside DIR is touched: munged gets its own key and socket (slurm.conf AuthInfo points at
# it), the daemons their own ports, pid, log, spool and state files. A requeued job waits 6 s
# (cred_expire=5) and the schedulers run every second or two, so tests need not wait minutes.

slurm_cluster_missing() {
    if [[ $(id -u) -ne 0 ]]; then echo "the Slurm daemons must be started as root (this test runs as $(id -un))"; return; fi
    local p missing=()
    for p in munged slurmctld slurmd sbatch squeue scontrol scancel sinfo pgrep; do
        command -v "$p" >/dev/null 2>&1 || [[ -x /usr/sbin/$p ]] || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "not installed: ${missing[*]} (Debian packages munge slurmctld slurmd slurm-client procps; installer/setup.sh installs them)"
    fi
}

slurm_cluster_start() {
    SLURM_TEST_DIR=$1
    local d=$SLURM_TEST_DIR host port
    host=$(hostname -s)
    port=$(( 20000 + RANDOM % 20000 ))
    mkdir -p "$d/state" "$d/spool" "$d/munge"
    chmod 700 "$d/munge"
    head -c 1024 /dev/urandom >"$d/munge/munge.key"
    chmod 400 "$d/munge/munge.key"
    PATH=$PATH:/usr/sbin munged --force --key-file="$d/munge/munge.key" --socket="$d/munge/munge.socket" \
        --pid-file="$d/munge/munged.pid" --log-file="$d/munge/munged.log" --seed-file="$d/munge/munged.seed" ||
        { echo "munged did not start: $(tail -n 5 "$d/munge/munged.log" 2>/dev/null)" >&2; return 1; }
    cat >"$d/slurm.conf" <<CONF
ClusterName=mefttest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$d/munge/munge.socket,cred_expire=5
CredType=cred/munge
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldPort=$port
SlurmdPort=$(( port + 1 ))
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
KillWait=20
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF=$d/slurm.conf
    PATH=$PATH:/usr/sbin slurmctld -i || { echo "slurmctld did not start: $(tail -n 5 "$d/slurmctld.log")" >&2; return 1; }
    PATH=$PATH:/usr/sbin slurmd || { echo "slurmd did not start: $(tail -n 5 "$d/slurmd.log")" >&2; return 1; }
    local i
    for i in $(seq 60); do
        [[ $(sinfo -h -o %t 2>/dev/null) == idle ]] && return 0
        sleep 0.5
    done
    echo "the Slurm node did not become idle in 30 s: $(sinfo 2>&1); slurmctld: $(tail -n 5 "$d/slurmctld.log"); slurmd: $(tail -n 5 "$d/slurmd.log")" >&2
    return 1
}

slurm_cluster_stop() {
    local d=${SLURM_TEST_DIR:-} f
    [[ -n $d ]] || return 0
    scancel --user=root >/dev/null 2>&1 || true
    for f in slurmd.pid slurmctld.pid munge/munged.pid; do
        [[ -s $d/$f ]] && kill "$(cat "$d/$f")" 2>/dev/null || true
    done
    sleep 1
    for f in slurmd.pid slurmctld.pid munge/munged.pid; do
        [[ -s $d/$f ]] && kill -9 "$(cat "$d/$f")" 2>/dev/null || true
    done
    SLURM_TEST_DIR=
}
