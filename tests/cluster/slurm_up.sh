#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine for tests/test_cluster.py (and for trying
# profiles/slurm by hand). Idempotent: run it again and it reuses what is already up.
#
#   sudo tests/cluster/slurm_up.sh          # install if needed, configure, start, wait for idle
#   sudo tests/cluster/slurm_down.sh        # stop exactly the daemons this script started
#
# What it does:
#   1. installs slurm-wlm and munge with apt-get when slurmctld/slurmd/sbatch/munged are missing
#      (service start-up during the install is suppressed, so apt starts no daemon behind our back);
#   2. writes /etc/slurm/slurm.conf (+ gres.conf) for this host: one node with the CPUs `slurmd -C`
#      reports (memory: at least 64 GB advertised, see below), one partition "debug"; refuses to
#      overwrite a slurm.conf it did not write;
#   3. creates /etc/munge/munge.key when missing;
#   4. starts munged, slurmctld and slurmd unless they already answer, records the PIDs of the
#      daemons IT started in $SLURM_TEST_DIR/daemons.pids (slurm_down.sh stops only those);
#   5. waits until `sinfo` shows the node idle.
#
# Job status: squeue, not sacct. sacct needs slurmdbd plus a MariaDB server, a cluster and an
# account registered with sacctmgr: two more daemons and ~150 MB of packages for a test. Instead
# MinJobAge=3600 keeps finished jobs in slurmctld's memory for an hour, so `squeue --states=all`
# (the plugin's `slurm-status-command: squeue`) still sees COMPLETED/FAILED states, and the test
# can read each job's name and comment (the rule) with squeue/scontrol. The plugin falls back to
# sacct when MinJobAge < 3 x its first-status-check delay, so MinJobAge must stay large.
#
# GPUs: the node declares GRES "gpu" backed by fake device nodes (char 1,3 like /dev/null, made in
# the scratch dir; Slurm 22.05 drops GPUs declared without File=), as many as it has CPUs, so
# sbatch --gpus=1 from profiles/slurm is accepted unchanged; the job then finds no CUDA device
# and modelfp's `device: auto` trains on the CPU. Set SLURM_TEST_GPUS=0 to declare none (then the
# GPU rule needs `--set-resources synthesize:gpu=0`).
#
# Environment: SLURM_TEST_DIR (scratch: state, spool, logs, pid files; default /tmp/modelfp-slurm),
#              SLURM_TEST_PARTITION (default debug), SLURM_TEST_GPUS (fake GPU count, default = CPUs),
#              SLURM_TEST_MEM_MB (memory advertised if the machine has less, default 65536),
#              SLURM_UP_TIMEOUT (seconds to wait for the node, default 60).
set -euo pipefail

DIR=${SLURM_TEST_DIR:-/tmp/modelfp-slurm}
PARTITION=${SLURM_TEST_PARTITION:-debug}
TIMEOUT=${SLURM_UP_TIMEOUT:-60}
CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
MARKER="# written by modelfp tests/cluster/slurm_up.sh"
STATE=$DIR/daemons.pids

# Exit status: 0 up; 3 this machine cannot host the test cluster (not root, no apt-get, install
# failed, a Slurm configuration that is not ours): tests skip; 1 any other failure: tests fail.
die() { echo "slurm_up: ERROR: $*" >&2; exit 1; }
unfit() { echo "slurm_up: UNAVAILABLE: $*" >&2; exit 3; }
say() { echo "slurm_up: $*"; }

[ "$(id -u)" -eq 0 ] || unfit "must run as root (installs packages, writes /etc/slurm, starts daemons)"

# --- 1. packages ------------------------------------------------------------------------------
missing=()
for bin in slurmctld slurmd sbatch squeue sinfo scontrol munged munge; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || unfit "missing ${missing[*]} and no apt-get to install slurm-wlm/munge"
    say "installing slurm-wlm munge (missing: ${missing[*]})"
    tmp_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then   # keep apt from starting munge/slurm services itself
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        tmp_policy=1
    fi
    rc=0
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge \
        || { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -q --no-install-recommends slurm-wlm munge; }; } \
        >"/tmp/slurm_up.apt.log" 2>&1 || rc=$?
    [ -n "$tmp_policy" ] && rm -f /usr/sbin/policy-rc.d
    [ $rc -eq 0 ] || unfit "apt-get install slurm-wlm munge failed (see /tmp/slurm_up.apt.log)"
    for bin in slurmctld slurmd sbatch munged; do
        command -v "$bin" >/dev/null 2>&1 || unfit "$bin still missing after installing slurm-wlm munge"
    done
fi

mkdir -p "$DIR"/state "$DIR"/spool "$DIR"/log
touch "$STATE"

# PIDs recorded by an earlier run whose process is gone are dropped (keeps the file truthful).
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
prune_state() {
    local tmp=$STATE.tmp name pid
    : >"$tmp"
    while read -r name pid; do
        [ -n "${name:-}" ] || continue
        if alive "$pid" && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$name" ]; then
            echo "$name $pid" >>"$tmp"
        fi
    done <"$STATE"
    mv "$tmp" "$STATE"
}
record() { echo "$1 $2" >>"$STATE"; say "started $1 (pid $2)"; }
recorded_pid() { awk -v n="$1" '$1 == n {print $2}' "$STATE"; }
stop_recorded() {  # stop_recorded NAME: stop a daemon this script started earlier (config changed)
    local pid; pid=$(recorded_pid "$1")
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && die "$1 (pid $pid) did not stop for a restart"
    awk -v n="$1" '$1 != n' "$STATE" >"$STATE.tmp" && mv "$STATE.tmp" "$STATE"
    say "stopped $1 (pid $pid) to apply the new configuration"
}
prune_state

# --- 2. slurm.conf -----------------------------------------------------------------------------
if [ -e "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
    unfit "$CONF exists and was not written by this script; refusing to overwrite it.
  This machine seems to have its own Slurm: point the test at it or move $CONF away."
fi
HOST=$(hostname -s)
# `slurmd -C` prints this machine's node line, e.g.
#   NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105
hw=$(slurmd -C 2>/dev/null) || die "slurmd -C failed: cannot read this machine's CPUs and memory"
node_line=$(grep '^NodeName=' <<<"$hw" | head -n1 | sed 's/ UpTime=.*//' || true)
[ -n "$node_line" ] || die "slurmd -C printed no NodeName line"
CPUS=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node_line")
REAL_MEM=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")
# Advertise at least SLURM_TEST_MEM_MB (default 65536) so the GPU rule's production memory request
# (profiles/slurm: mem_mb 32000) is schedulable here too; SlurmdParameters=config_overrides makes
# slurmd accept a configured size above the real one. Not enforced: no cgroups, no OOM kills.
MEM=$(( REAL_MEM > ${SLURM_TEST_MEM_MB:-65536} ? REAL_MEM : ${SLURM_TEST_MEM_MB:-65536} ))
node_line=$(sed "s/ RealMemory=[0-9]*/ RealMemory=$MEM/" <<<"$node_line")
GPUS=${SLURM_TEST_GPUS:-$CPUS}
gres_types="" node_gres=""
if [ "$GPUS" -gt 0 ]; then gres_types="GresTypes=gpu"; node_gres="Gres=gpu:$GPUS"; fi

new_conf=$(cat <<EOF
$MARKER -- safe to delete
# One node (this machine), one partition; daemons run as root from $DIR.
ClusterName=modelfp
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups: works in containers/VMs without a delegated cgroup tree
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd: job states come from squeue; finished jobs stay visible for MinJobAge seconds
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.log
MinJobAge=3600
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmdParameters=config_overrides
MpiDefault=none
$gres_types
$node_line $node_gres NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
)
# Fake GPUs: Slurm drops file-less GPU GRES, so each one gets a device node with /dev/null's
# numbers (c 1 3) in the scratch dir. Nothing opens them; they only make --gpus=N schedulable.
gres_line=""
if [ "$GPUS" -gt 0 ]; then
    mkdir -p "$DIR/fakegpu"
    for i in $(seq 0 $((GPUS - 1))); do
        [ -c "$DIR/fakegpu/gpu$i" ] || mknod "$DIR/fakegpu/gpu$i" c 1 3 \
            || unfit "mknod $DIR/fakegpu/gpu$i failed (set SLURM_TEST_GPUS=0 to declare no GPU)"
    done
    if [ "$GPUS" -eq 1 ]; then files=gpu0; else files="gpu[0-$((GPUS - 1))]"; fi
    gres_line="NodeName=$HOST Name=gpu File=$DIR/fakegpu/$files"
fi
new_gres="$MARKER
# fake GPUs (device nodes that are /dev/null): lets sbatch --gpus=N through on a GPU-less machine
$gres_line"

mkdir -p /etc/slurm
conf_changed=""
if [ ! -e "$CONF" ] || [ "$(cat "$CONF")" != "$new_conf" ]; then
    printf '%s\n' "$new_conf" >"$CONF.tmp" && mv "$CONF.tmp" "$CONF"
    conf_changed=1
    say "wrote $CONF"
fi
if [ -e "$GRES_CONF" ] && ! grep -qF "$MARKER" "$GRES_CONF"; then
    unfit "$GRES_CONF exists and was not written by this script; refusing to overwrite it"
fi
if [ ! -e "$GRES_CONF" ] || [ "$(cat "$GRES_CONF")" != "$new_gres" ]; then
    printf '%s\n' "$new_gres" >"$GRES_CONF"
    conf_changed=1
fi

# --- 3. munge ----------------------------------------------------------------------------------
id munge >/dev/null 2>&1 || unfit "user 'munge' missing (the munge package creates it)"
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    say "created /etc/munge/munge.key"
fi
chown munge:munge /etc/munge /etc/munge/munge.key /var/lib/munge /var/log/munge /run/munge
chmod 0400 /etc/munge/munge.key
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if munge_ok; then
    say "munged already answers; reusing it"
else
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged || die "munged failed to start (see /var/log/munge/munged.log)"
    for _ in $(seq 50); do munge_ok && break; sleep 0.1; done
    munge_ok || die "munged started but munge -n | unmunge fails"
    record munged "$(cat /run/munge/munged.pid)"
fi

# --- 4. slurmctld, slurmd ----------------------------------------------------------------------
ctld_ok() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
pid_of() { [ -s "$1" ] && cat "$1"; }

if [ -n "$conf_changed" ]; then  # node/GRES changes need a daemon restart, not just reconfigure
    stop_recorded slurmd
    stop_recorded slurmctld
fi
if ctld_ok; then
    say "slurmctld already answers; reusing it"
    if [ -n "$conf_changed" ]; then
        say "WARNING: slurm.conf changed but this slurmctld was not started here: scontrol reconfigure"
        scontrol reconfigure || die "scontrol reconfigure failed"
    fi
else
    slurmctld || die "slurmctld failed to start (see $DIR/log/slurmctld.log)"
    for _ in $(seq 100); do ctld_ok && break; sleep 0.2; done
    ctld_ok || die "slurmctld does not answer scontrol ping (see $DIR/log/slurmctld.log)"
    record slurmctld "$(pid_of "$DIR/slurmctld.pid")"
fi

sd_pid=$(pid_of "$DIR/slurmd.pid" || true)
if alive "$sd_pid" && [ "$(cat /proc/"$sd_pid"/comm 2>/dev/null)" = slurmd ]; then
    say "slurmd already running (pid $sd_pid); reusing it"
else
    slurmd || die "slurmd failed to start (see $DIR/log/slurmd.log)"
    for _ in $(seq 50); do sd_pid=$(pid_of "$DIR/slurmd.pid" || true); alive "$sd_pid" && break; sleep 0.1; done
    alive "$sd_pid" || die "slurmd exited right after start (see $DIR/log/slurmd.log)"
    record slurmd "$sd_pid"
fi

# --- 5. wait for the node --------------------------------------------------------------------
state=""
for _ in $(seq $((TIMEOUT * 2))); do
    state=$(sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -1)
    case "$state" in
        idle|mixed|allocated) break ;;
        down*|drain*|inval*) scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
case "$state" in
    idle|mixed|allocated) ;;
    *) die "node $HOST is '${state:-unknown}' after ${TIMEOUT}s, not idle (logs: $DIR/log/)" ;;
esac
say "cluster up: node $HOST $state, partition $PARTITION, $CPUS CPUs, $MEM MB, $GPUS fake GPU(s)"
say "daemons started by this script (stopped by slurm_down.sh): $(tr '\n' ' ' <"$STATE")"
